"""Every job of the product, from the specs each family declares beside its flows (``JOBS``).

``deployments.deploy``, ``deployments.serve``, the operations API's catalog and ``prefect.yaml``
read this one list. ``prefect.yaml`` stays the user's file (``prefect deploy --all`` reads
it); its ``deployments:`` section is written from here:

    uv run python -m deployments.control.registry write-prefect-yaml   # rewrite the section
    uv run python -m deployments.control.registry check-prefect-yaml   # exit 1 when it differs

and ``tests/unit/test_deployments.py`` fails when the committed file differs.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from core.config import PROJECT_ROOT
from core.settings import Settings, file_defaults
from flows import brands, crypto, jobqueue, profiles, recovery, riot
from flows.spec import JobSpec

FAMILIES: tuple[str, ...] = ("profiles", "riot", "jobqueue", "brands", "crypto")
JOBS: tuple[JobSpec, ...] = (*profiles.JOBS, *riot.JOBS, *jobqueue.JOBS, *brands.JOBS, *crypto.JOBS,
                             *recovery.JOBS)
BY_ID: dict[str, JobSpec] = {job.id: job for job in JOBS}
PREFECT_YAML = PROJECT_ROOT / "prefect.yaml"
_SECTION = "\ndeployments:\n"


def configured() -> list[JobSpec]:
    """The jobs with a config row and a schedule of their own (the operations API's fixed jobs)."""
    return [job for job in JOBS if job.config_table is not None]


def _yaml_deployment(job: JobSpec, settings: Settings) -> str:
    q = json.dumps  # a JSON string is a valid YAML scalar, quoted
    lines = [f"  # {line}" for line in (job.note or "").splitlines()]
    lines += [f"  - name: {job.id}", f"    description: {q(job.description)}",
              f"    entrypoint: {job.entrypoint}", f"    tags: [{', '.join(job.tags)}]", "    work_pool: *pool"]
    if job.concurrency is not None:
        lines.append(f"    concurrency_limit: {job.concurrency}")
    schedule = job.default_schedule(settings)
    if schedule is not None:
        lines += ["    schedules:", f"      - cron: {q(schedule.cron)}", f"        timezone: {q(schedule.timezone)}",
                  f"        active: {'true' if schedule.active else 'false'}"]
    return "\n".join(lines)


def prefect_yaml(current: str, settings: Settings | None = None) -> str:
    """``current`` (prefect.yaml's text) with its ``deployments:`` section written from the specs,
    scheduled with the defaults of ``config/config.yml`` (no environment)."""
    settings = settings or file_defaults()
    head, found, _ = current.partition(_SECTION)
    if not found:
        raise ValueError("prefect.yaml: no top-level 'deployments:' section")
    body = "\n\n".join(_yaml_deployment(job, settings) for job in JOBS)
    return f"{head}{_SECTION}{body}\n"


def main(argv: list[str]) -> int:
    command = argv[0] if argv else "check-prefect-yaml"
    path = Path(argv[1]) if len(argv) > 1 else PREFECT_YAML
    current = path.read_text()
    wanted = prefect_yaml(current)
    if command == "write-prefect-yaml":
        path.write_text(wanted)
        print(f"{path}: {len(JOBS)} deployments written")
        return 0
    if command == "check-prefect-yaml":
        if current != wanted:
            print(f"{path} differs from the job specs: run `python -m deployments.control.registry write-prefect-yaml`",
                  file=sys.stderr)
            return 1
        print(f"{path}: up to date ({len(JOBS)} deployments)")
        return 0
    print("usage: python -m deployments.control.registry [write-prefect-yaml|check-prefect-yaml] [path]", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
