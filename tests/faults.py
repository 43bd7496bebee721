"""Fault helpers for tests: real components made to fail (no mocks)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from core.config import PROJECT_ROOT
from tests.factories import entry_rows

FETCHER_SCRIPT = "import asyncio; from flows.profiles import profile_fetcher; asyncio.run(profile_fetcher(batch_size=10))"


async def kill_fetcher_mid_batch(url: str, env: dict[str, str], *, after_completed: int, settle: float) -> None:
    """Run the profile fetcher as a script (``FETCHER_SCRIPT``, in ``env``) in a process group of
    its own, and SIGKILL the group once ``after_completed`` entries of ``url`` are COMPLETED and
    ``settle`` s more have passed: mid-batch, requests out, answers being stored."""
    proc = subprocess.Popen([sys.executable, "-c", FETCHER_SCRIPT], cwd=PROJECT_ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.monotonic() + 240
        while sum(e.status == "COMPLETED" for e in entry_rows(url).values()) < after_completed:
            assert time.monotonic() < deadline and proc.poll() is None, "the script's run did not get going"
            await asyncio.sleep(0.1)
        await asyncio.sleep(settle)
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)


class TcpProxy:
    """A loopback TCP proxy to ``target`` in a thread of its own. ``down()`` closes the
    listening socket and every open connection (clients get refused or reset: an outage of
    what is behind it); ``up()`` listens again on the same port."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = int(sock.getsockname()[1])
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True, name=f"proxy-{self.port}")
        self._thread.start()
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self.up()

    def _run(self, coro: object) -> object:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout=30)  # type: ignore[arg-type]

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError, OSError):
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        writer.close()

    async def _handle(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        try:
            server_r, server_w = await asyncio.open_connection(*self.target)
        except OSError:
            client_w.close()
            return
        self._writers |= {client_w, server_w}
        await asyncio.gather(self._pipe(client_r, server_w), self._pipe(server_r, client_w))
        self._writers -= {client_w, server_w}

    def up(self) -> None:
        async def start() -> asyncio.Server:
            return await asyncio.start_server(self._handle, "127.0.0.1", self.port, reuse_address=True)
        self._server = self._run(start())  # type: ignore[assignment]

    def down(self) -> None:
        async def stop() -> None:
            if self._server is not None:
                self._server.close()
                self._server = None
            for writer in list(self._writers):
                writer.transport.abort()
            self._writers.clear()
        self._run(stop())

    def close(self) -> None:
        self.down()
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)


class PrivatePostgres:
    """A PostgreSQL server of the test's own (``initdb`` + ``pg_ctl``, trust auth, a free port),
    to stop and start: never the machine's shared one. Run as the ``postgres`` system user when
    the tests run as root (PostgreSQL refuses root)."""

    def __init__(self) -> None:
        # In /tmp itself: the postgres user must reach it (pytest's tmp_path is root's alone).
        self.base = Path(tempfile.mkdtemp(prefix="jobpipes-pg-"))
        self.data = self.base / "pgdata"
        self.port = _free_port()
        self.url = f"postgresql://postgres@127.0.0.1:{self.port}/jobpipes"
        self.log = self.base / "postgres.log"
        if os.geteuid() == 0:
            shutil.chown(self.base, "postgres")
        self._cmd("initdb", "-D", str(self.data), "-A", "trust", "-U", "postgres", "--no-sync")
        self.start()
        subprocess.run([*self._as_user(), "psql", "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres",
                        "-c", "CREATE DATABASE jobpipes"], check=True, capture_output=True)

    @staticmethod
    def _as_user() -> list[str]:
        return ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []

    def _cmd(self, tool: str, *args: str) -> None:
        exe = shutil.which(tool) or f"/usr/lib/postgresql/15/bin/{tool}"
        done = subprocess.run([*self._as_user(), exe, *args], capture_output=True, text=True, timeout=120)
        if done.returncode != 0:
            raise RuntimeError(f"{tool} {' '.join(args)} failed: {done.stdout[-2000:]}{done.stderr[-2000:]}")

    def start(self) -> None:
        self._cmd("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-w", "start", "-o",
                  f"-p {self.port} -k {self.data} -c listen_addresses=127.0.0.1 -c fsync=off")

    def stop(self) -> None:
        """An outage: the server shuts down at once, every connection dropped."""
        self._cmd("pg_ctl", "-D", str(self.data), "-w", "-m", "immediate", "stop")

    def close(self) -> None:
        with contextlib.suppress(RuntimeError):
            self.stop()
        shutil.rmtree(self.base, ignore_errors=True)


class SmallDisk:
    """A tmpfs of ``size`` mounted at ``path`` (root only): ``fill()`` leaves no byte free,
    ``read_only()`` remounts it read-only; ``restore()`` undoes either."""

    def __init__(self, path: Path, size: str = "8m") -> None:
        self.path = path
        path.mkdir(parents=True, exist_ok=True)
        subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], check=True)
        self._filler = path / ".filler"

    def fill(self) -> None:
        with self._filler.open("wb") as out:
            with contextlib.suppress(OSError):  # ENOSPC: full
                while True:
                    out.write(b"\0" * 65536)
                    out.flush()

    def read_only(self) -> None:
        """Remount read-only; the kernel refuses while a file is open for writing ("busy"), so
        this tries again until the writes in flight let it (at most 10 s)."""
        deadline = time.monotonic() + 10
        while subprocess.run(["mount", "-o", "remount,ro", str(self.path)], capture_output=True).returncode:
            if time.monotonic() > deadline:
                raise RuntimeError(f"could not remount {self.path} read-only")
            time.sleep(0.005)

    def restore(self) -> None:
        subprocess.run(["mount", "-o", "remount,rw", str(self.path)], check=True)
        self._filler.unlink(missing_ok=True)

    def close(self) -> None:
        subprocess.run(["umount", "-l", str(self.path)], check=False)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
