"""A notebook with no PREFECT_API_URL (issue 20 item 6): importing the flows in a Jupyter kernel
uses this checkout's local Prefect server when one answers, or says how to start one."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import httpx
import nbformat
from nbclient import NotebookClient

from core.config import PROJECT_ROOT
from tests.conftest import free_port

HEALTH = """
import http.server, sys
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200 if self.path == "/api/health" else 404); self.end_headers(); self.wfile.write(b"true")
    def log_message(self, *a): pass
http.server.HTTPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
"""
CELL = "import os\nimport flows  # noqa: F401\nprint('API', os.environ.get('PREFECT_API_URL'))"


def _run_cell(kernel: str) -> tuple[str, str]:
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(CELL)])
    NotebookClient(notebook, kernel_name=kernel, timeout=300,
                   resources={"metadata": {"path": str(PROJECT_ROOT)}}).execute()
    streams = notebook.cells[0].outputs
    return ("".join(o.text for o in streams if o.get("name") == "stdout"),
            "".join(o.text for o in streams if o.get("name") == "stderr"))


def test_a_notebook_uses_the_running_local_server_or_says_how_to_start_one(tmp_path: Path, project_kernel, monkeypatch):
    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    monkeypatch.setenv("DATA_DIR", str(tmp_path / "data"))

    stdout, stderr = _run_cell(project_kernel)  # nothing runs
    assert "API None" in stdout
    assert "no Prefect server is configured" in stderr and "uv run jobpipes up" in stderr

    port = free_port()
    server = subprocess.Popen([sys.executable, "-c", HEALTH, str(port)])
    try:
        api_url = f"http://127.0.0.1:{port}/api"
        for _ in range(100):
            try:
                if httpx.get(f"{api_url}/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
        state = tmp_path / "data" / "prefect"
        state.mkdir(parents=True)
        (state / "server.json").write_text(json.dumps({"pid": os.getpid(), "api_url": api_url}))

        stdout, stderr = _run_cell(project_kernel)
    finally:
        server.kill()
        server.wait()
    assert f"API {api_url}" in stdout
    assert f"using the local Prefect server at {api_url}" in stderr
