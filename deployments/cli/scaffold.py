"""``jobpipes new-job``: the skeleton of a new job, seen by every reader of the registry at once.

One job, three new modules (``flows/<family>_<name>.py``: its flow and spec;
``tasks/<family>_<name>.py``: its task; ``tests/integration/test_<family>_<name>.py``: its test),
then one line in ``flows/local_jobs.py``, which the registry reads, and ``prefect.yaml``'s
``deployments:`` section written again from the registry. A generator never edits a family's
own modules: a module per job keeps every file it writes its own.
"""

from __future__ import annotations

import ast
import builtins
import json
import keyword
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from string import Template
from typing import Annotated, Any

import typer

from core.config import PROJECT_ROOT
from core.cron import check_timezone, next_run, to_prefect_cron
from core.db.types import utcnow
from deployments.cli import scaffold_templates as templates
from deployments.cli.common import BAD_INPUT, JsonOption, err, out, print_json
from deployments.control import registry
from deployments.control.catalog import ROW_KINDS

_NAME = re.compile(r"[a-z][a-z0-9]*(?:[-_][a-z0-9]+)*")
_FAMILY = re.compile(r"[a-z][a-z0-9]*(?:_[a-z0-9]+)*")
# Names the generated modules bind (imports, locals of the flow and of the test): a flow function
# of the same name would shadow one or be shadowed.
_GENERATED_NAMES = {"flow", "task", "run_job", "count_items", "annotations", "config", "items", "chosen",
                    "body", "counts", "m", "history_rows", "file_defaults", "result", "row", "spec",
                    "defaults", "app_env"}
_LOCAL_JOBS = Path("flows/local_jobs.py")


class BadInput(ValueError):
    """One line naming the option or argument at fault (exit 2)."""


@dataclass(frozen=True)
class NewJob:
    job_id: str  # coin-count: the flow's and deployment's name
    family: str
    cron: str
    timezone: str
    title: str
    description: str

    @property
    def ident(self) -> str:  # coin_count: the flow function and the history name
        return self.job_id.replace("-", "_")

    @property
    def module(self) -> str:
        return f"{self.family}_{self.ident}"

    @property
    def config_key(self) -> str:  # job_configurations.job_type
        return self.ident.upper()

    @property
    def files(self) -> dict[Path, str]:
        """Each new file, relative to the project, and its text."""
        names = {"job_id": self.job_id, "ident": self.ident, "family": self.family, "cron": self.cron,
                 "timezone": self.timezone, "title": self.title, "description": self.description,
                 "title_literal": json.dumps(self.title, ensure_ascii=False),
                 "description_literal": json.dumps(self.description, ensure_ascii=False),
                 "history_name": self.ident, "config_key": self.config_key, "marker": templates.MARKER,
                 "config_class": "".join(p.capitalize() for p in self.ident.split("_")) + "Config",
                 "task_module": f"tasks.{self.module}", "flow_module": f"flows.{self.module}"}
        flow = templates.FLOW.substitute(names, imports=_imports(templates.FLOW_IMPORTS, names))
        test = templates.TEST.substitute(names, imports=_imports(templates.TEST_IMPORTS, names))
        return {Path("flows") / f"{self.module}.py": flow, Path("tasks") / f"{self.module}.py": templates.TASK.substitute(names),
                Path("tests/integration") / f"test_{self.module}.py": test}


def _imports(lines: tuple[str, ...], names: dict[str, str]) -> str:
    """First-party ``from`` imports as ruff's isort keeps them: by module (case-blind), a line
    longer than 100 characters wrapped one name a line."""
    filled = sorted((Template(line).substitute(names) for line in lines), key=lambda line: line.split()[1].lower())
    return "\n".join(_wrapped(line) for line in filled)


def _wrapped(line: str) -> str:
    if len(line) <= 100:
        return line
    module, _, imported = line.removeprefix("from ").partition(" import ")
    return f"from {module} import (\n" + "".join(f"    {name.strip()},\n" for name in imported.split(",")) + ")"


def check_name(name: str) -> str:
    """The job id ``name`` gives (underscores become dashes, as every job id spells them)."""
    if not _NAME.fullmatch(name) or len(name) > 50:  # job_configurations.job_type holds 50
        raise BadInput(f"name: {name!r} is not a job name: lowercase letters and digits, words joined by "
                       "'-' or '_', starting with a letter, at most 50 characters")
    job_id = name.replace("_", "-")
    ident = job_id.replace("-", "_")
    if keyword.iskeyword(ident) or ident in dir(builtins) or ident in _GENERATED_NAMES:
        raise BadInput(f"name: {name!r} would name its flow function {ident!r}, a name Python or the "
                       "generated module already uses; choose another")
    for kind in ROW_KINDS:
        if job_id.startswith(kind.prefix):
            raise BadInput(f"name: job ids starting with {kind.prefix!r} are those of the {kind.family} "
                           "family's scheduled_jobs rows")
    return job_id


def check_family(family: str) -> str:
    if not _FAMILY.fullmatch(family) or len(family) > 30 or keyword.iskeyword(family):
        known = ", ".join(dict.fromkeys(j.family for j in registry.JOBS))
        raise BadInput(f"family: {family!r} is not a family name: lowercase letters and digits, words "
                       f"joined by '_', starting with a letter (known: {known})")
    return family


def check_schedule(cron: str, timezone: str) -> tuple[str, str]:
    """The 5-field cron (``core.cron``: the seconds and ``interval(...)`` forms translated)."""
    try:
        check_timezone(timezone)
    except ValueError as exc:
        raise BadInput(f"timezone: {exc}") from None
    try:
        five = to_prefect_cron(cron)
    except ValueError as exc:
        raise BadInput(f"cron: {exc}") from None
    try:
        next_run(five, timezone, utcnow())
    except Exception:  # noqa: BLE001 - croniter finds no fire time (31 February)
        raise BadInput(f"cron: {cron!r} never fires") from None
    return five, timezone


def _check_text(option: str, value: str) -> str:
    """A title or description, written into docstrings and string literals as it is."""
    if not value.strip() or not value.isprintable() or "\\" in value or '"""' in value or len(value) > 200:
        raise BadInput(f"{option}: expected one printable line of at most 200 characters, "
                       "without backslashes or triple quotes")
    return value.strip()


def check_unused(job: NewJob, force: bool) -> None:
    """No other job has its id, history name or config key; ``--force`` rewrites only a job
    this command wrote before, at the same place."""
    ours = f"flows.{job.module}"
    for spec in registry.JOBS:
        clash = next(((what, mine) for what, mine, theirs in (
            ("id", job.job_id, spec.id), ("history name", job.ident, spec.history_name),
            ("config key", job.config_key, spec.config_key)) if mine == theirs), None)
        if clash is None:
            continue
        same = spec.flow.fn.__module__ == ours
        if not (same and force):
            raise BadInput(f"name: {clash[1]!r} is the {clash[0]} of the job {spec.id!r} ({spec.entrypoint})"
                           + ("; --force writes it again" if same else ""))


def check_files(root: Path, job: NewJob, force: bool) -> None:
    for rel in job.files:
        path = root / rel
        if not path.exists():
            continue
        if not force:
            raise BadInput(f"name: {rel} exists; --force overwrites it")
        if templates.MARKER not in path.read_text(errors="replace"):
            raise BadInput(f"name: {rel} exists and was not written by jobpipes new-job; choose another name")


def with_module(text: str, module: str) -> str:
    """``flows/local_jobs.py``'s text with ``module`` in its ``MODULES`` (one line each)."""
    try:
        tree = ast.parse(text)
    except SyntaxError as exc:
        raise BadInput(f"dir: {_LOCAL_JOBS}: {exc}") from None
    for node in tree.body:
        target = node.targets[0] if isinstance(node, ast.Assign) else getattr(node, "target", None)
        if isinstance(target, ast.Name) and target.id == "MODULES" and node.end_lineno is not None:
            value = getattr(node, "value", None)
            try:
                modules = [str(m) for m in ast.literal_eval(value)] if value is not None else []
            except ValueError:
                raise BadInput(f"dir: {_LOCAL_JOBS}: MODULES must be a tuple of module names") from None
            if module in modules:
                return text
            body = "".join(f'    "{m}",\n' for m in [*modules, module])
            lines = text.splitlines(keepends=True)
            return "".join([*lines[:node.lineno - 1], f"MODULES: tuple[str, ...] = (\n{body})\n",
                            *lines[node.end_lineno:]])
    raise BadInput(f"dir: {_LOCAL_JOBS} has no MODULES tuple")


def _write_prefect_yaml(root: Path) -> int:
    """prefect.yaml's deployments section from the registry of ``root``, in a fresh process (the
    one that sees the new module); only the committed jobs, never those of the environment."""
    env = {k: v for k, v in os.environ.items() if k != registry.JOB_MODULES_ENV}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(root), env.get("PYTHONPATH")]))
    done = subprocess.run([sys.executable, "-m", "deployments.control.registry", "write-prefect-yaml",
                           str(root / "prefect.yaml")], cwd=root, env=env, capture_output=True, text=True,
                          timeout=300)
    if done.returncode != 0:
        lines = (done.stderr or done.stdout).strip().splitlines()
        raise RuntimeError(lines[-1] if lines else f"exit code {done.returncode}")
    return int(done.stdout.strip().rsplit(": ", 1)[-1].split()[0])  # "<path>: 16 deployments written"


def scaffold(root: Path, job: NewJob, force: bool) -> dict[str, Any]:
    """Write ``job``'s files into ``root``, list it in flows/local_jobs.py and rewrite prefect.yaml;
    on a failure every file is put back as it was."""
    check_unused(job, force)
    check_files(root, job, force)
    local_jobs = root / _LOCAL_JOBS
    current = local_jobs.read_text() if local_jobs.exists() else templates.LOCAL_JOBS
    changes = {**job.files, _LOCAL_JOBS: with_module(current, f"flows.{job.module}")}
    before = {rel: (root / rel).read_text() if (root / rel).exists() else None
              for rel in [*changes, Path("prefect.yaml")]}
    try:
        for rel, new in changes.items():
            (root / rel).parent.mkdir(parents=True, exist_ok=True)
            (root / rel).write_text(new)
        written = _write_prefect_yaml(root)
        if f"  - name: {job.job_id}\n" not in (root / "prefect.yaml").read_text():
            raise RuntimeError(f"prefect.yaml: the registry of {root} does not list {job.job_id}")
    except BaseException:
        for rel, old in before.items():
            if old is None:
                (root / rel).unlink(missing_ok=True)
            else:
                (root / rel).write_text(old)
        raise
    test = next(str(rel) for rel in job.files if rel.parts[0] == "tests")
    return {"job_id": job.job_id, "family": job.family, "title": job.title,
            "new_family": job.family not in {j.family for j in registry.JOBS},
            "schedule": {"cron": job.cron, "timezone": job.timezone},
            "written": [str(rel) for rel in job.files], "updated": [str(_LOCAL_JOBS), "prefect.yaml"],
            "deployments": written,
            "next": [f"uv run pytest {test}", f"uv run jobpipes jobs --family {job.family}",
                     f"uv run jobpipes run {job.job_id}"]}


def new_job(
    name: Annotated[str, typer.Argument(metavar="NAME", help="the job id: lowercase words joined by '-' (or '_')")],
    family: Annotated[str, typer.Option(help="its family: one of `jobpipes jobs`' families or a new one")],
    cron: Annotated[str, typer.Option(help="its default schedule, a 5-field cron")] = "0 * * * *",
    timezone: Annotated[str, typer.Option(help="the cron's IANA zone")] = "UTC",
    title: Annotated[str | None, typer.Option(help="its title (default: from NAME)")] = None,
    description: Annotated[str | None, typer.Option(help="one line on what it does")] = None,
    directory: Annotated[Path | None, typer.Option("--dir", help="the project to write into (default: this one)")] = None,
    force: Annotated[bool, typer.Option("--force", help="overwrite the files an earlier new-job wrote")] = False,
    as_json: JsonOption = False,
) -> None:
    """Write a new job: its flow and spec, its task and its test; list it for the registry.

    The job is served, deployed, written into prefect.yaml and shown by `jobpipes jobs` and the
    operations page with no other edit. Bad input is one line naming it, exit code 2."""
    root = (directory or PROJECT_ROOT).resolve()
    try:
        if not (root / "flows" / "spec.py").is_file() or not (root / "prefect.yaml").is_file():
            raise BadInput(f"dir: {root} is not a jobpipes project (no flows/spec.py or prefect.yaml)")
        job_id = check_name(name)
        five, zone = check_schedule(cron, timezone)
        job = NewJob(job_id, check_family(family), five, zone,
                     _check_text("title", title or job_id.replace("-", " ").capitalize()),
                     _check_text("description", description or "Counts its items; replace count_items with its work."))
        view = scaffold(root, job, force)
    except BadInput as exc:
        err.print(str(exc), markup=False, highlight=False, soft_wrap=True)  # one line, however long
        raise typer.Exit(BAD_INPUT) from None
    except (RuntimeError, subprocess.TimeoutExpired) as exc:
        err.print(f"new-job: nothing written: {exc}", markup=False, highlight=False, soft_wrap=True)
        raise typer.Exit(1) from None
    if as_json:
        print_json(view)
        return
    kind = "a new family" if view["new_family"] else "family"
    out.print(f"[bold]{job.job_id}[/bold] ({kind} {job.family}), default schedule {job.cron} ({job.timezone})")
    for path in view["written"]:
        out.print(f"  wrote    {path}", highlight=False)
    out.print(f"  updated  {_LOCAL_JOBS}", highlight=False)
    out.print(f"  updated  prefect.yaml ({view['deployments']} deployments written)", highlight=False)
    out.print("next:")
    if root != Path.cwd().resolve():
        out.print(f"  cd {root}", highlight=False)
    for command in view["next"][:2]:
        out.print(f"  {command}", highlight=False)
    out.print(f"  {view['next'][2]}   # once deployments.serve (or a worker) runs it: restart serve", highlight=False)


def register(app: typer.Typer) -> None:
    """Add this module's commands to ``app``."""
    app.command("new-job")(new_job)
