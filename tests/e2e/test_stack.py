"""README.md as written, top to bottom, on the stack ``jobpipes up`` starts (issues 20 and 21).

In a subprocess with a user's environment (no PREFECT_API_URL, the embedded SQLite defaults,
a data folder of its own):

- every shell block, as written and in order, each in a fresh ``bash -e`` (the first block's
  ``jobpipes down`` runs last);
- every Python block, as the cells of ``examples/readme.ipynb`` (written from the README,
  ``tests/unit/test_readme_notebook.py``), in a real Jupyter kernel through nbclient, from a
  shell that ran ``eval "$(uv run jobpipes env)"``;
- every SQL block, statement by statement, against the stack's database.

Blocks of the sections in ``SKIPPED`` are left out, each for the reason given there.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import nbformat
import pytest
from nbclient import NotebookClient
from sqlalchemy import create_engine, text

from core import frames
from core.config import PROJECT_ROOT
from tests.e2e.conftest import assert_server_healthy, prefect_database
from tests.e2e.test_readme_commands import README, readme_command, user_env

UP = readme_command(r"uv run jobpipes up")
STATUS = readme_command(r"uv run jobpipes status")
RUN = readme_command(r"uv run jobpipes run top-coins-collection --param limit=5")
ENV = readme_command(r'eval "\$\(uv run jobpipes env\)"')
DOWN = readme_command(r"uv run jobpipes down")
NOTEBOOK = PROJECT_ROOT / "examples" / "readme.ipynb"
SKIPPED = {
    "The two commands": "CI runs `make test` on a fresh clone; the closing check runs both there",
    "Add your own job": "it writes into the project: tests/integration/test_scaffold.py runs it in a copy",
    "Deploying with a work pool and workers": "a production set-up (your Prefect server, PostgreSQL and S3, "
                                              "long-running workers): tests/e2e/test_deploy_and_run.py and "
                                              "tests/e2e/test_workers.py run these commands",
}
_HEADING = re.compile(r"^#{2,3} (.+)$", re.M)
_SECTION = re.compile(r"^## (.+)$", re.M)


def readme_blocks(lang: str) -> list[tuple[str, str]]:
    """(heading, body) of every ``lang`` block, in order, outside the skipped sections (a
    skipped ``##`` section with its ``###`` subsections)."""
    found = []
    for match in re.finditer(rf"```{lang}\n(.*?)```", README, re.S):
        before = README[:match.start()]
        heading, section = _HEADING.findall(before)[-1], _SECTION.findall(before)[-1]
        if heading not in SKIPPED and section not in SKIPPED:
            found.append((heading, match.group(1)))
    return found


def _sh(command: str, env: dict[str, str], timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["bash", "-c", command], cwd=PROJECT_ROOT, env=env, capture_output=True, text=True,
                          timeout=timeout)


def _json_values(output: str) -> list[dict[str, object]]:
    """The JSON objects curl printed back to back (no newline between them)."""
    decoder, found, at = json.JSONDecoder(), [], output.find("{")
    while at != -1:
        value, end = decoder.raw_decode(output, at)
        found.append(value)
        at = output.find("{", end)
    return found


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_skipped_sections_exist_and_say_why():
    headings = set(_HEADING.findall(README))
    assert set(SKIPPED) <= headings, "a skipped section was renamed or removed: update SKIPPED"
    assert "```bash" in README.split("\n## Deploying with a work pool and workers\n", 1)[1].split("\n## ", 1)[0]


@pytest.fixture
def prefect_db() -> Iterator[str]:
    with prefect_database() as url:
        yield url


def test_the_readme_runs_as_written_on_the_stack(tmp_path: Path, project_kernel: str, monkeypatch, prefect_db):
    env = {k: v for k, v in user_env(tmp_path).items()
           if not k.startswith(("PREFECT_API_URL", "RAPIDAPI_", "COINGECKO_", "RIOT_", "BRAND_ADMIN_TOKEN",
                                "OPENAI_", "PERPLEXITY_", "SERPAPI_", "SMTP_", "JOBPIPES_"))}
    env["COLUMNS"] = "200"
    data = tmp_path / "data"
    # The local Prefect server on PostgreSQL, as README "Configuration" recommends for a busy
    # machine: on SQLite, a loaded server logs `database is locked` from its own services.
    env["PREFECT_API_DATABASE_CONNECTION_URL"] = prefect_db
    first, *others = (body for _, body in readme_blocks("bash"))
    assert DOWN in first and others[0].startswith(ENV), "README 'Using it' no longer starts with up ... down, env"
    parts: dict[str, dict[str, object]] = {}
    try:
        # The first block as written, but for its last line (`down`: at the end of the test).
        up = _sh("set -e\n" + first.replace(DOWN, "true"), env)
        assert up.returncode == 0, up.stdout[-2000:] + up.stderr[-3000:]
        for shown in ("Prefect UI", "operator page", "API docs", "token", "riot http://127.0.0.1:"):
            assert shown in up.stdout, up.stdout
        # Its run went through serve to the CoinGecko sandbox: SUCCESS.
        assert RUN in first and "top-coins-collection: SUCCESS" in up.stdout and "processed 5" in up.stdout

        status = json.loads(_sh(STATUS + " --json", env).stdout)
        parts = {p["name"]: p for p in status["parts"]}
        assert set(parts) == {"prefect", "sandboxes", "serve", "api"} and all(p["running"] for p in parts.values())
        assert status["env"]["RIOT_BASE_URL_TEMPLATE"] == parts["sandboxes"]["urls"]["riot"] + "/{route}"
        # A second `up` keeps what runs (same processes).
        again = _sh(UP + " --json", env)
        assert again.returncode == 0, again.stderr[-2000:]
        assert {p["name"]: p["pid"] for p in json.loads(again.stdout)["parts"]} == \
            {name: p["pid"] for name, p in parts.items()}

        # `jobpipes env` points a shell at the same world: Prefect's CLI sees the served
        # deployments, and the token opens the operations API (and nothing else does).
        shell = _sh(f'{ENV} && uv run prefect deployment ls && env', env)
        assert shell.returncode == 0, shell.stderr[-2000:]
        assert "top-coins-collection/top-coins-collection" in shell.stdout
        stack_env = dict(re.findall(r"^(PREFECT_API_URL|BRAND_ADMIN_TOKEN|JOBPIPES_API_URL|[A-Z]+_BASE_URL\w*|"
                                    r"[A-Z]+_API_KEY|RAPIDAPI_KEY|COINGECKO_\w+)=(.*)$", shell.stdout, re.M))
        api = parts["api"]["url"]
        assert stack_env["JOBPIPES_API_URL"] == api
        assert httpx.get(f"{api}/api/v1/jobs", timeout=30).status_code == 401
        jobs = httpx.get(f"{api}/api/v1/jobs", headers={"Authorization": f"Bearer {stack_env['BRAND_ADMIN_TOKEN']}"},
                         timeout=30)
        assert jobs.status_code == 200 and any(j["id"] == "top-coins-collection" for j in jobs.json())
        assert (data / "stack" / "token").stat().st_mode & 0o077 == 0  # the token file is the owner's only

        # Every other shell block of the README, as written and in order.
        for block in others[1:]:
            done = _sh("set -e\n" + block, env)
            assert done.returncode == 0, f"README block failed:\n{block}\n{done.stdout[-2000:]}{done.stderr[-3000:]}"
            if "collect-top-coins" in block:  # the seed-004 commands: the coins known by now, updated
                answers = _json_values(done.stdout)
                assert [(a["status"], a["metrics"]["items_created"], a["metrics"]["items_updated"])  # type: ignore[index]
                        for a in answers] == [("SUCCESS", 0, 10)] * 2, done.stdout[-1000:]

        # Every Python block, in a Jupyter kernel started from a shell that ran `jobpipes env`.
        for name, value in {**env, **stack_env}.items():
            monkeypatch.setenv(name, value)
        for name in [k for k in os.environ if k.startswith(("DATABASE_", "STORAGE_", "CONFIG_FILE"))]:
            monkeypatch.delenv(name)
        notebook = nbformat.read(NOTEBOOK, as_version=4)
        assert sum(c.cell_type == "code" for c in notebook.cells) == len(readme_blocks("python"))
        NotebookClient(notebook, kernel_name=project_kernel, timeout=600,
                       resources={"metadata": {"path": str(PROJECT_ROOT)}}).execute()  # raises on a failing cell
        outputs = [o for c in notebook.cells if c.cell_type == "code" for o in c.outputs]
        assert not [o for o in outputs if o.output_type == "error"]

        # Every SQL block, statement by statement, against the stack's database.
        engine = create_engine(f"sqlite:///{data / 'jobpipes.db'}")
        with engine.begin() as conn:
            for _, block in readme_blocks("sql"):
                for statement in filter(str.strip, re.sub(r"--[^\n]*", "", block).split(";")):
                    rows = conn.execute(text(statement))
                    if "HAVING COUNT(*) > 1" in statement:
                        assert rows.fetchall() == []  # no ranking stored twice
        engine.dispose()

        db = f"sqlite:///{data / 'jobpipes.db'}"
        urns = set(frames.profile_entries(url=db)["urn"])
        assert {"ACoAAAEkwwAB9KEc", "ACoAABxyz", "ACoAAB1", "ACoAAB2", "ACoAAFromOtherSystem1"} <= urns
        assert "Faker" in set(frames.riot_players(url=db)["game_name"])
        assert "ResizeImageJob" in set(frames.queue_jobs(url=db)["short_type"])
        assert_server_healthy(Path(str(parts["prefect"]["log"])))
    finally:
        down = _sh(DOWN, env, timeout=120)
    assert down.returncode == 0, down.stderr
    assert "prefect" in down.stdout and "serve" in down.stdout
    deadline = time.monotonic() + 30
    while any(_alive(int(str(p["pid"]))) for p in parts.values()) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert not [name for name, p in parts.items() if _alive(int(str(p["pid"])))]
    assert _sh(STATUS, env).returncode == 1  # nothing runs: status says so with its exit code
