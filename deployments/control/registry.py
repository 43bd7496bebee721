"""Every job of the product, from the specs each family declares beside its flows (``JOBS``).

``deployments.deploy``, ``deployments.serve``, the operations API's catalog and ``prefect.yaml``
read this one list. ``prefect.yaml`` stays the user's file (``prefect deploy --all`` reads
it); its ``deployments:`` section is written from here:

    uv run python -m deployments.control.registry write-prefect-yaml   # rewrite the section
    uv run python -m deployments.control.registry check-prefect-yaml   # exit 1 when it differs

and ``tests/unit/test_deployments.py`` fails when the committed file differs. Jobs of modules of
your own join through ``flows/local_jobs.py`` (the modules ``jobpipes new-job`` writes) or
``JOBPIPES_JOB_MODULES`` (each module's ``JOBS``, like a family's).
"""

from __future__ import annotations

import importlib
import json
import os
import sys
from pathlib import Path

from core.config import PROJECT_ROOT
from core.errors import ConfigError
from core.settings import Settings, file_defaults
from flows import brands, crypto, jobqueue, local_jobs, profiles, recovery, riot
from flows.spec import JobSpec

JOB_MODULES_ENV = "JOBPIPES_JOB_MODULES"


def _more_jobs() -> tuple[JobSpec, ...]:
    """The specs of the modules listed in ``flows.local_jobs.MODULES`` (committed, written by
    ``jobpipes new-job``), then of those named in ``JOBPIPES_JOB_MODULES`` (comma-separated):
    jobs of a code location of your own, seen by everything below with no other edit."""
    named = dict.fromkeys(local_jobs.MODULES, "flows.local_jobs.MODULES")
    for name in filter(None, (n.strip() for n in os.environ.get(JOB_MODULES_ENV, "").split(","))):
        named.setdefault(name, JOB_MODULES_ENV)
    found: list[JobSpec] = []
    for name, source in named.items():
        try:
            module = importlib.import_module(name)
        except ImportError as exc:
            raise ConfigError(f"{source}: cannot import {name!r}: {exc}") from None
        jobs = getattr(module, "JOBS", None)
        if not isinstance(jobs, tuple) or not all(isinstance(j, JobSpec) for j in jobs):
            raise ConfigError(f"{source}: {name}.JOBS must be a tuple of JobSpec")
        found.extend(jobs)
    return tuple(found)


JOBS: tuple[JobSpec, ...] = (*profiles.JOBS, *riot.JOBS, *jobqueue.JOBS, *brands.JOBS, *crypto.JOBS,
                             *recovery.JOBS, *_more_jobs())
BY_ID: dict[str, JobSpec] = {job.id: job for job in JOBS}
if len(BY_ID) != len(JOBS):
    raise ConfigError(f"job specs: two jobs share an id ({', '.join(sorted({j.id for j in JOBS if sum(k.id == j.id for k in JOBS) > 1}))})")
# The families an operator filters by: those with a job of their own to operate (a config row,
# or rows of scheduled_jobs), in the order their specs come.
FAMILIES: tuple[str, ...] = tuple(dict.fromkeys(j.family for j in JOBS if j.config_table or j.shared))
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
