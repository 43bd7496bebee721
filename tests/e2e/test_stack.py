"""README "Using it", every shell block as written, in order, in a subprocess with a user's
environment (no PREFECT_API_URL, the embedded SQLite defaults, a data folder of its own):
``jobpipes up`` starts the local stack, a run goes through its serve process to the
sandboxes, the everyday and family commands work against it, and ``down`` stops every
process it started."""

from __future__ import annotations

import json
import os
import re
import subprocess
import time
from pathlib import Path

import httpx

from core import frames
from core.config import PROJECT_ROOT
from tests.e2e.conftest import assert_server_healthy
from tests.e2e.test_readme_commands import README, readme_command, user_env

UP = readme_command(r"uv run jobpipes up")
STATUS = readme_command(r"uv run jobpipes status")
RUN = readme_command(r"uv run jobpipes run top-coins-collection --param limit=5")
ENV = readme_command(r'eval "\$\(uv run jobpipes env\)"')
DOWN = readme_command(r"uv run jobpipes down")
# Up to the next heading ("### Add your own job" writes files: test_scaffold runs it in a copy).
USING_IT = re.split(r"\n##+ ", README.split("\n## Using it\n", 1)[1], maxsplit=1)[0]
BLOCKS = re.findall(r"```bash\n(.*?)```", USING_IT, re.S)


def _sh(command: str, env: dict[str, str], timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["bash", "-c", command], cwd=PROJECT_ROOT, env=env, capture_output=True, text=True,
                          timeout=timeout)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_up_runs_a_job_through_the_stack_and_down_stops_everything(tmp_path: Path):
    env = {k: v for k, v in user_env(tmp_path).items()
           if not k.startswith(("PREFECT_API_URL", "RAPIDAPI_", "COINGECKO_", "RIOT_", "BRAND_ADMIN_TOKEN"))}
    env["COLUMNS"] = "200"
    data = tmp_path / "data"
    first, *others = BLOCKS
    assert DOWN in first and ENV in others[0], "README 'Using it' no longer starts with up ... down, then env"
    try:
        # The first block as written, but for its last line (`down`: at the end of the test).
        up = _sh("set -e\n" + first.replace(DOWN, "true"), env)
        assert up.returncode == 0, up.stdout[-2000:] + up.stderr[-3000:]
        for shown in ("Prefect UI", "operator page", "API docs", "token", "riot http://127.0.0.1:"):
            assert shown in up.stdout, up.stdout

        status = json.loads(_sh(STATUS + " --json", env).stdout)
        parts = {p["name"]: p for p in status["parts"]}
        assert set(parts) == {"prefect", "sandboxes", "serve", "api"} and all(p["running"] for p in parts.values())
        assert status["env"]["RIOT_BASE_URL_TEMPLATE"] == parts["sandboxes"]["urls"]["riot"] + "/{route}"

        # A second `up` keeps what runs (same processes) and says where it is.
        again = _sh(UP + " --json", env)
        assert again.returncode == 0, again.stderr[-2000:]
        assert {p["name"]: p["pid"] for p in json.loads(again.stdout)["parts"]} == \
            {name: p["pid"] for name, p in parts.items()}

        # The block's run went through serve to the CoinGecko sandbox: SUCCESS.
        assert RUN in first and "top-coins-collection: SUCCESS" in up.stdout and "processed 5" in up.stdout

        # `jobpipes env` points a shell at the same world: Prefect's own CLI sees the served
        # deployments, and the token opens the operations API.
        shell = _sh(f'{ENV} && uv run prefect deployment ls && echo "token=$BRAND_ADMIN_TOKEN"', env)
        assert shell.returncode == 0, shell.stderr[-2000:]
        assert "top-coins-collection/top-coins-collection" in shell.stdout
        token = shell.stdout.rsplit("token=", 1)[1].strip()
        api = parts["api"]["url"]
        assert httpx.get(f"{api}/api/v1/jobs", timeout=30).status_code == 401
        jobs = httpx.get(f"{api}/api/v1/jobs", headers={"Authorization": f"Bearer {token}"}, timeout=30)
        assert jobs.status_code == 200 and any(j["id"] == "top-coins-collection" for j in jobs.json())
        assert (data / "stack" / "token").stat().st_mode & 0o077 == 0  # the token file is the owner's only

        # Every other block of the section, as written and in order (each exits 0 as a whole).
        for block in others[1:]:
            done = _sh("set -e\n" + block, env)
            assert done.returncode == 0, f"README block failed:\n{block}\n{done.stdout[-2000:]}{done.stderr[-3000:]}"
        db = f"sqlite:///{data / 'jobpipes.db'}"
        assert {"ACoAAAEkwwAB9KEc", "ACoAABxyz", "ACoAAB1", "ACoAAB2"} <= set(frames.profile_entries(url=db)["urn"])
        assert "Faker" in set(frames.riot_players(url=db)["game_name"])
        assert_server_healthy(Path(parts["prefect"]["log"]))
    finally:
        down = _sh(DOWN, env, timeout=120)
    assert down.returncode == 0, down.stderr
    assert "prefect" in down.stdout and "serve" in down.stdout
    deadline = time.monotonic() + 30
    while any(_alive(p["pid"]) for p in parts.values()) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert not [name for name, p in parts.items() if _alive(p["pid"])]
    assert _sh(STATUS, env).returncode == 1  # nothing runs: status says so with its exit code
