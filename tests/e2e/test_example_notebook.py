"""examples/operations.ipynb as a user runs it: `make demo` fills a database (its own data
folder, a Prefect server of the test's), then the notebook runs top to bottom in the
project's kernel against that database."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from core.config import PROJECT_ROOT

NOTEBOOK = PROJECT_ROOT / "examples" / "operations.ipynb"
DEMO = ["uv", "run", "python", "-m", "deployments.dev.demo"]  # what `make demo` runs
DEMO_TIMEOUT_S = 420  # about 50 s on an idle machine
APP_PREFIXES = ("DATABASE_", "STORAGE_", "DATA_DIR", "CONFIG_FILE", "PYTHONPATH", "MPLBACKEND")
PROBE = "import sys; print(sys.executable); print(sys.prefix)"


@pytest.fixture
def demo_data_dir(prefect_server, tmp_path: Path) -> Path:
    """The data folder of one `make demo` run (SQLite at ``jobpipes.db``)."""
    data = tmp_path / "data"
    env = {k: v for k, v in prefect_server.env.items() if not k.startswith(APP_PREFIXES)} | {"DATA_DIR": str(data)}
    result = subprocess.run(DEMO, cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=DEMO_TIMEOUT_S)
    assert result.returncode == 0, (f"the demo exited {result.returncode}\n{result.stdout[-4000:]}\n"
                                    f"{result.stderr[-4000:]}")
    assert (data / "jobpipes.db").exists()
    return data


def test_the_notebook_runs_after_the_demo_and_draws_two_plots(demo_data_dir, project_kernel, monkeypatch):
    nb = nbformat.read(NOTEBOOK, as_version=4)
    code = [cell for cell in nb.cells if cell.cell_type == "code"]
    assert all(not cell.outputs and cell.execution_count is None for cell in code), "commit it with outputs cleared"

    # The kernel inherits this environment: the demo's data folder, nothing of the test session.
    for name in [k for k in os.environ if k.startswith(APP_PREFIXES)]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("DATA_DIR", str(demo_data_dir))
    nb.cells.append(nbformat.v4.new_code_cell(PROBE))  # in memory only: which interpreter ran it

    NotebookClient(nb, kernel_name=project_kernel, timeout=600,
                   resources={"metadata": {"path": str(NOTEBOOK.parent)}}).execute()  # raises on a failing cell

    outputs = [output for cell in nb.cells if cell.cell_type == "code" for output in cell.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    images = [o for o in outputs if o.output_type == "display_data" and "image/png" in o.get("data", {})]
    assert len(images) == 2, f"{len(images)} plots"
    printed = "".join(o.text for o in outputs if o.output_type == "stream" and o.name == "stdout")
    assert f"database: sqlite:///{demo_data_dir / 'jobpipes.db'}" in printed
    executable, prefix = printed.strip().splitlines()[-2:]
    assert (executable, prefix) == (sys.executable, sys.prefix)
    tables = [o for o in outputs if "text/html" in o.get("data", {})]
    assert len(tables) >= 5  # the frames' head()s
