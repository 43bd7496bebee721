"""Run an ASGI app with uvicorn in a background thread on a free loopback port."""

from __future__ import annotations

import socket
import threading
import time
from typing import Any

import uvicorn


class RunningServer:
    """A uvicorn server in a thread; ``.url`` while running, ``.stop()`` to end it."""

    def __init__(self, app: Any, host: str = "127.0.0.1", port: int = 0) -> None:
        # Bind here and hand uvicorn the socket: port=0 then needs no free-port guess (no race),
        # and the URL is known before the thread starts.
        # IPPROTO_TCP explicitly: accepted sockets inherit it, and asyncio only sets TCP_NODELAY
        # when it is set (with proto 0, Nagle adds ~40 ms to every keep-alive response).
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self._sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            self._sock.bind((host, port))
        except OSError:
            self._sock.close()
            raise
        self.host, self.port = host, self._sock.getsockname()[1]
        self.url = f"http://[{host}]:{self.port}" if ":" in host else f"http://{host}:{self.port}"
        # log_config=None: do not let uvicorn re-run logging.dictConfig in the host process
        # (pytest, Prefect) each time a server starts.
        config = uvicorn.Config(app, log_level="warning", access_log=False, log_config=None,
                                timeout_graceful_shutdown=2)
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": [self._sock]},
                                        daemon=True, name=f"uvicorn-{self.port}")

    def start(self, timeout: float = 15) -> RunningServer:
        """Start the thread and return once the server accepts connections."""
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"server on {self.url} did not start")
            time.sleep(0.005)
        return self

    @property
    def running(self) -> bool:
        return self._thread.is_alive() and self._server.started

    def stop(self, timeout: float = 10) -> None:
        """Shut down gracefully (forcefully after ``timeout``); safe to call twice."""
        if self._thread.is_alive():
            self._server.should_exit = True
            self._thread.join(timeout)
            if self._thread.is_alive():  # a hung request: drop the connections
                self._server.force_exit = True
                self._thread.join(timeout)
        self._sock.close()

    def __enter__(self) -> RunningServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def start_in_thread(app: Any, host: str = "127.0.0.1", port: int = 0) -> RunningServer:
    """Start ``app`` and return once it accepts connections."""
    return RunningServer(app, host, port).start()
