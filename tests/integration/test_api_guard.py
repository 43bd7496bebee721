"""The operations API checks the token and the body's size before it reads a body, and a
malformed body from an authenticated caller is a 422 naming the position (issue 19 item 6).

The API runs in uvicorn on a port; raw sockets send a request's head without its body, which
shows the answer comes before any of the body is read."""

from __future__ import annotations

import socket

import httpx
import pytest

from deployments.api.app import create_app
from sandbox.server import RunningServer
from tests.conftest import reload_settings

TOKEN = "guard-token"


@pytest.fixture
def api_url(app_env, monkeypatch):
    monkeypatch.setenv("BRAND_ADMIN_TOKEN", TOKEN)
    monkeypatch.setenv("API_MAX_BODY_BYTES", "65536")
    reload_settings()
    with RunningServer(create_app()).start() as server:
        yield server.url


def _head_only(url: str, head: str) -> str:
    """Send a request's head (announcing a 32 MB body that never comes); the first answer line."""
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=20) as sock:
        sock.sendall(head.encode())
        answer = b""
        while b"}" not in answer:  # the head, then the JSON body (maybe in two packets)
            chunk = sock.recv(4096)
            if not chunk:
                break
            answer += chunk
        return answer.decode(errors="replace")


def test_no_token_is_a_401_before_any_body_is_read(api_url):
    answer = _head_only(api_url, "POST /api/v1/jobs/collect-top-coins HTTP/1.1\r\nHost: x\r\n"
                                 "Content-Type: application/json\r\nContent-Length: 33554432\r\n\r\n")
    assert answer.startswith("HTTP/1.1 401") and "a valid bearer token is required" in answer

    bad = httpx.post(f"{api_url}/api/v1/jobs/collect-top-coins", content=b"{not json", timeout=20,
                     headers={"Authorization": "Bearer wrong", "Content-Type": "application/json"})
    assert bad.status_code == 401 and bad.json() == {"detail": "a valid bearer token is required"}


def test_a_body_over_the_limit_is_a_413_whether_announced_or_streamed(api_url):
    answer = _head_only(api_url, f"POST /api/v1/jobs/collect-top-coins HTTP/1.1\r\nHost: x\r\n"
                                 f"Authorization: Bearer {TOKEN}\r\nContent-Type: application/json\r\n"
                                 "Content-Length: 33554432\r\n\r\n")
    assert answer.startswith("HTTP/1.1 413") and "larger than 65536 bytes" in answer

    def chunks():  # no Content-Length: chunked, 100 KB in all
        for _ in range(10):
            yield b" " * 10_000

    streamed = httpx.post(f"{api_url}/api/v1/jobs/collect-top-coins", content=chunks(), timeout=20,
                          headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"})
    assert streamed.status_code == 413


def test_malformed_json_with_the_token_is_a_422_naming_the_position_only(api_url):
    bad = httpx.post(f"{api_url}/api/v1/jobs/collect-top-coins", content=b'{"limit": 10,,}', timeout=20,
                     headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"})
    assert bad.status_code == 422
    assert bad.json() == {"detail": "body: malformed JSON at character 13"}
