"""``jobpipes new-job`` as a user types it, into a copy of the project: the job it writes passes
its own test, lint and the prefect.yaml check, and a fresh ``jobpipes jobs`` lists it with no
environment variable; bad input is one line naming it, exit code 2, and writes nothing.

The copy runs on this project's virtual environment, with ``PYTHONPATH`` naming the copy first
(the environment's editable install names this checkout, which must stay untouched)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from prefect.settings import get_current_settings

from core.config import PROJECT_ROOT
from core.settings import ENV_KEYS

BIN = Path(sys.executable).parent  # the console scripts of this environment (jobpipes, ruff, lint-imports)
GENERATED = ["flows/crypto_coin_count.py", "tasks/crypto_coin_count.py",
             "tests/integration/test_crypto_coin_count.py"]


def test_the_readme_shows_the_commands_this_test_runs():
    readme = (PROJECT_ROOT / "README.md").read_text()
    for command in ('uv run jobpipes new-job coin-count --family crypto --cron "0 * * * *"',
                    "uv run pytest tests/integration/test_crypto_coin_count.py",
                    "uv run jobpipes jobs --family crypto",
                    "uv run python -m deployments.control.registry check-prefect-yaml"):
        assert command in readme, f"README no longer shows {command!r}: keep it and this test in step"


def test_new_job_writes_a_job_that_every_reader_of_the_registry_sees(prefect_harness, tmp_path):
    root = tmp_path / "project"
    _copy_project(root)
    untouched = {rel: (PROJECT_ROOT / rel).read_text() for rel in ("prefect.yaml", "flows/local_jobs.py")}
    # The settings of the copy alone (its config.yml, SQLite under its .data/), as on a fresh checkout.
    env = {k: v for k, v in os.environ.items() if k not in ENV_KEYS and k not in (
        "CONFIG_FILE", "JOBPIPES_JOB_MODULES", "PREFECT_API_URL")} | {"PYTHONPATH": str(root)}

    made = _run(root, env, BIN / "jobpipes", "new-job", "coin-count", "--family", "crypto", "--cron", "0 * * * *")
    assert made.returncode == 0, made.stderr
    for rel in GENERATED:
        assert f"wrote    {rel}" in made.stdout and (root / rel).is_file(), made.stdout
    assert "updated  flows/local_jobs.py" in made.stdout and "prefect.yaml (16 deployments written)" in made.stdout
    assert "uv run pytest tests/integration/test_crypto_coin_count.py" in made.stdout
    assert "uv run jobpipes run coin-count" in made.stdout
    assert '"flows.crypto_coin_count",' in (root / "flows/local_jobs.py").read_text()

    lint = _run(root, env, BIN / "ruff", "check", *GENERATED, "flows/local_jobs.py")
    assert lint.returncode == 0, lint.stdout
    contracts = _run(root, env, BIN / "lint-imports")
    assert contracts.returncode == 0 and "0 broken" in contracts.stdout, contracts.stdout[-2000:]
    check = _run(root, env, sys.executable, "-m", "deployments.control.registry", "check-prefect-yaml")
    assert check.returncode == 0 and "up to date (16 deployments)" in check.stdout, check.stderr

    # A fresh jobpipes: the job is listed with its default schedule and config (a Prefect API
    # to ask: the session's harness, instead of an ephemeral server per command).
    api = {"PREFECT_API_URL": str(get_current_settings().api.url)}
    jobs = _run(root, env | api, BIN / "jobpipes", "jobs", "--family", "crypto", "--json")
    assert jobs.returncode == 0, jobs.stderr
    [row] = [j for j in json.loads(jobs.stdout)["jobs"] if j["id"] == "coin-count"]
    assert (row["family"], row["schedule"], row["timezone"], row["active"]) == ("crypto", "0 * * * *", "UTC", True)
    assert row["config"] == {"items": ["alpha", "beta", "gamma"]} and row["last_run"] is None

    # Bad input, all at once (each only reads): one line naming what is wrong, exit 2, nothing written.
    before = _tree(root)
    bad = {
        "name: 'Coin Count' is not a job name": ("new-job", "Coin Count", "--family", "crypto"),
        "name: 'price-collection' is the id of the job 'price-collection' (flows/crypto.py:price_collection)":
            ("new-job", "price_collection", "--family", "crypto"),
        "name: 'coin-count' is the id of the job 'coin-count' (flows/crypto_coin_count.py:coin_count); "
        "--force writes it again": ("new-job", "coin-count", "--family", "crypto"),
        "cron: '61 * * * *' is not a valid cron expression": ("new-job", "hourly", "--family", "crypto",
                                                             "--cron", "61 * * * *"),
        "name: tests/integration/test_crypto_jobs.py exists and was not written by jobpipes new-job":
            ("new-job", "jobs", "--family", "crypto", "--force"),
    }
    started = {message: _start(root, env, BIN / "jobpipes", *args) for message, args in bad.items()}
    for message, process in started.items():
        stdout, stderr = process.communicate(timeout=120)
        assert process.returncode == 2 and stderr.startswith(message) and stderr.count("\n") == 1, (
            message, process.returncode, stderr, stdout)
    assert _tree(root) == before

    # --force writes the job again (here from elsewhere, with --dir), with its new schedule.
    again = _run(tmp_path, env, BIN / "jobpipes", "new-job", "coin-count", "--family", "crypto", "--cron",
                 "*/5 * * * *", "--dir", str(root), "--force", "--json")
    assert again.returncode == 0, again.stderr
    view = json.loads(again.stdout)
    assert view["written"] == GENERATED and view["schedule"] == {"cron": "*/5 * * * *", "timezone": "UTC"}
    assert (root / "flows/local_jobs.py").read_text().count("flows.crypto_coin_count") == 1
    assert 'cron: "*/5 * * * *"' in (root / "prefect.yaml").read_text()

    # The generated test passes in the copy, on its real PostgreSQL and Prefect harness.
    tested = _run(root, env, sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", GENERATED[2])
    assert tested.returncode == 0 and "2 passed" in tested.stdout, tested.stdout[-3000:]

    assert {rel: (PROJECT_ROOT / rel).read_text() for rel in untouched} == untouched
    assert not (PROJECT_ROOT / GENERATED[0]).exists()


def _copy_project(dest: Path) -> None:
    """The project's files as they are now (tracked and new, not ignored): no .venv, no .data."""
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                            cwd=PROJECT_ROOT, capture_output=True, text=True, check=True).stdout
    for rel in filter(None, listed.split("\0")):
        source = PROJECT_ROOT / rel
        if source.is_file():  # a tracked file deleted in the working tree is not copied
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, dest / rel)


def _tree(root: Path) -> dict[str, int]:
    return {str(p.relative_to(root)): p.stat().st_mtime_ns for p in sorted(root.rglob("*.py")) if
            "__pycache__" not in p.parts} | {"prefect.yaml": (root / "prefect.yaml").stat().st_mtime_ns}


def _start(cwd: Path, env: dict[str, str], *command: str | Path) -> subprocess.Popen[str]:
    return subprocess.Popen([str(c) for c in command], cwd=cwd, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def _run(cwd: Path, env: dict[str, str], *command: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(c) for c in command], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=180)
