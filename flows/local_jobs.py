"""The jobs of this installation beyond the families': one module each, written by
``jobpipes new-job`` (which adds its line here), ending with its ``JOBS`` like a family's flow
module. ``deployments.control.registry`` lists their specs after the families', so deploy,
serve, ``prefect.yaml``, the operations API and page and ``jobpipes`` see them with no other
edit. Retire one by removing its line (and its files), then rewrite prefect.yaml:
``uv run python -m deployments.control.registry write-prefect-yaml``."""

MODULES: tuple[str, ...] = ()
