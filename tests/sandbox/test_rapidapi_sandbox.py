"""The RapidAPI sandbox over real HTTP: shapes, headers, errors, fault knobs, admin endpoints."""

from __future__ import annotations

import re
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from sandbox.rapidapi import (
    BAD_KEY_MESSAGE,
    MONTHLY_MESSAGE,
    NOT_SUBSCRIBED_MESSAGE,
    TOO_FAST_MESSAGE,
    RapidApiKnobs,
    RapidApiSandbox,
    create_app,
    generate_profile,
    seconds_until_monthly_reset,
    username_from_url,
)
from sandbox.server import RunningServer, start_in_thread

HEADERS = {"x-rapidapi-key": "sandbox-key", "x-rapidapi-host": "linkedin-data-api.p.rapidapi.com"}
URN = "ACoAAAEkwwAB9KEc2TrQgOLEQ-vzRyZeCDyc6DQ"
URN_RE = re.compile(r"ACoA[A-Za-z0-9_-]+")
GATEWAY = ("x-ratelimit-requests-limit", "x-ratelimit-requests-remaining", "x-ratelimit-requests-reset")


@pytest.fixture(scope="module")
def served() -> Iterator[tuple[RapidApiSandbox, RunningServer]]:
    sandbox = RapidApiSandbox(RapidApiKnobs(monthly_limit=1000))
    with start_in_thread(create_app(sandbox)) as server:
        yield sandbox, server


@pytest.fixture
def rapid(served) -> Iterator[tuple[RapidApiSandbox, httpx.Client]]:
    sandbox, server = served
    sandbox.reset()
    with httpx.Client(base_url=server.url, headers=HEADERS) as client:
        yield sandbox, client


def get(client: httpx.Client, who: str, **kwargs) -> httpx.Response:
    return client.get("/", params={"username": who}, **kwargs)


def test_body_is_flat_deterministic_and_echoes_the_urn(rapid):
    _, client = rapid
    first, again = get(client, URN), get(client, URN)
    assert first.status_code == 200 and first.headers["content-type"] == "application/json"
    assert first.content == again.content
    body = first.json()
    assert body["urn"] == URN and "data" not in body and "message" not in body
    assert isinstance(body["id"], int) and body["username"] and body["firstName"] and body["lastName"]
    assert set(body["geo"]) == {"country", "city", "full", "countryCode"}
    assert {"start", "end", "fieldOfStudy", "degree", "schoolName"} <= set(body["educations"][0])
    position = body["fullPositions"][0]
    assert {"companyName", "companyId", "companyUsername", "title", "location", "start", "end"} <= set(position)
    assert position["end"] is None and set(position["start"]) == {"year", "month", "day"}
    assert body["position"] and {"name", "passedSkillAssessment", "endorsementsCount"} == set(body["skills"][0])
    assert {"isPremium", "profilePicture", "isOpenToWork", "isHiring", "supportedLocales"} <= set(body)
    assert get(client, URN + "x").json()["urn"] == URN + "x"


def test_username_and_url_lookups_agree(rapid):
    _, client = rapid
    by_name = get(client, "jdoe").json()
    by_url = client.get("/get-profile-data-by-url", params={"url": "https://www.linkedin.com/in/jdoe/"})
    assert by_url.status_code == 200 and by_url.json() == by_name
    assert by_name["username"] == "jdoe" and URN_RE.fullmatch(by_name["urn"]) and len(by_name["urn"]) == 39
    assert get(client, "someone-else").json()["urn"] != by_name["urn"]
    assert client.get("/get-profile-data-by-url", params={"url": "https://example.com/"}).status_code == 400
    assert username_from_url("https://www.linkedin.com/in/a-b-1/?trk=x") == "a-b-1"
    assert username_from_url("https://www.linkedin.com/in/") is None


def test_generated_profiles_are_stable_across_calls():
    assert generate_profile(URN) == generate_profile(URN)
    assert generate_profile("jdoe")["username"] == "jdoe"
    assert generate_profile(URN)["id"] != generate_profile(URN + "2")["id"]


def test_gateway_headers_on_success_and_error(rapid):
    _, client = rapid
    for response in (get(client, URN), get(client, URN, headers={"x-rapidapi-key": "nope"})):
        assert all(h in response.headers for h in GATEWAY)
        reset = response.headers["x-ratelimit-requests-reset"]
        assert reset.isdigit() and 0 < int(reset) <= 31 * 86400  # seconds left, not an epoch
    assert seconds_until_monthly_reset(datetime(2026, 12, 31, 23, 59, tzinfo=UTC).timestamp()) == 60
    assert seconds_until_monthly_reset(datetime(2026, 11, 30, tzinfo=UTC).timestamp()) == 86400


def test_auth_errors(rapid):
    sandbox, client = rapid
    missing = client.get("/", params={"username": URN}, headers={"x-rapidapi-key": ""})
    assert (missing.status_code, missing.json()) == (401, {"message": BAD_KEY_MESSAGE})
    assert get(client, URN, headers={"x-rapidapi-key": "wrong"}).status_code == 401
    sandbox.update_knobs(unsubscribed_keys=["other-key"])
    refused = get(client, URN, headers={"x-rapidapi-key": "other-key"})
    assert (refused.status_code, refused.json()) == (403, {"message": NOT_SUBSCRIBED_MESSAGE})
    assert get(client, URN, headers={"x-rapidapi-host": "other.p.rapidapi.com"}).status_code == 403
    assert sandbox.knobs.monthly_used == 0


def test_per_second_limit_with_and_without_retry_after(rapid):
    sandbox, client = rapid
    sandbox.update_knobs(per_second_limit=3)
    codes = [get(client, f"ACoAAfast{i}") for i in range(5)]
    assert [r.status_code for r in codes] == [200, 200, 200, 429, 429]
    assert codes[3].json() == {"message": TOO_FAST_MESSAGE} and "retry-after" not in codes[3].headers
    assert codes[3].headers["x-ratelimit-requests-remaining"] == "997"  # 429s are free
    sandbox.update_knobs(retry_after_seconds=1.5)
    limited = get(client, "ACoAAfast9")
    assert limited.status_code == 429 and limited.headers["retry-after"] == "1.5"
    time.sleep(1.05)  # the rolling window empties
    assert get(client, "ACoAAfast9").status_code == 200
    assert sandbox.stats()["max_requests_per_second"] >= 6


def test_monthly_quota(rapid):
    sandbox, client = rapid
    sandbox.update_knobs(monthly_limit=3, retry_after_seconds=5)
    remaining = [get(client, f"ACoAAm{i}").headers["x-ratelimit-requests-remaining"] for i in range(3)]
    assert remaining == ["2", "1", "0"]
    for _ in range(2):
        spent = get(client, "ACoAAm9")
        assert (spent.status_code, spent.json()) == (429, {"message": MONTHLY_MESSAGE})
        assert spent.headers["x-ratelimit-requests-remaining"] == "0"
        assert spent.headers["x-ratelimit-requests-limit"] == "3"
    assert sandbox.knobs.monthly_used == 3
    sandbox.update_knobs(monthly_used=0)
    assert get(client, "ACoAAm9").headers["x-ratelimit-requests-remaining"] == "2"


def test_rate_limit_first_then_success_and_always(rapid):
    sandbox, client = rapid
    sandbox.update_knobs(rate_limit_first={"ACoAAflaky": 2}, rate_limit_always=["ACoAAnever"])
    assert [get(client, "ACoAAflaky").status_code for _ in range(3)] == [429, 429, 200]
    assert [get(client, "ACoAAnever").status_code for _ in range(3)] == [429] * 3
    assert get(client, "ACoAAnever").json() == {"message": TOO_FAST_MESSAGE}


def test_malformed_missing_and_server_errors(rapid):
    sandbox, client = rapid
    sandbox.update_knobs(malformed_urns=["ACoAAbad"], missing_urns=["ACoAAgone"],
                         server_error_first={"ACoAAdown": 1})
    bad = get(client, "ACoAAbad")
    assert bad.status_code == 200 and bad.headers["content-type"] == "application/json"
    with pytest.raises(ValueError):
        bad.json()
    gone = get(client, "ACoAAgone")
    assert (gone.status_code, gone.json()) == (404, {"message": "Profile not found"})
    down = get(client, "ACoAAdown")
    assert down.status_code == 503 and set(down.json()) == {"message"}
    assert get(client, "ACoAAdown").status_code == 200
    assert sandbox.knobs.monthly_used == 2  # the malformed 200 and the recovered one


def test_server_error_rate_is_seeded(rapid):
    sandbox, client = rapid

    def run() -> list[int]:
        sandbox.reset()
        sandbox.update_knobs(server_error_rate=0.5)
        return [get(client, f"ACoAAr{i}").status_code for i in range(30)]

    codes = run()
    assert codes == run() and set(codes) >= {200} and set(codes) - {200} <= {502, 503}
    assert 5 <= sum(c != 200 for c in codes) <= 25


def test_stats_count_requests_statuses_urns_and_concurrency(rapid):
    sandbox, client = rapid
    sandbox.update_knobs(latency_ms=100)
    started = time.monotonic()
    with ThreadPoolExecutor(8) as pool:
        codes = list(pool.map(lambda i: get(client, f"ACoAAc{i % 4}").status_code, range(8)))
    assert codes == [200] * 8 and time.monotonic() - started >= 0.1
    get(client, URN, headers={"x-rapidapi-key": "nope"})
    stats = client.get("/__sandbox/stats").json()
    assert stats["total_requests"] == 9 and stats["statuses"] == {"200": 8, "401": 1}
    assert stats["per_urn"] == {"ACoAAc0": 2, "ACoAAc1": 2, "ACoAAc2": 2, "ACoAAc3": 2, URN: 1}
    assert stats["max_requests_per_second"] == 9 and stats["max_in_flight"] >= 4
    assert sandbox.stats()["statuses"][200] == 8


def test_admin_patch_validates_and_reset_restores_construction_knobs(rapid):
    sandbox, client = rapid
    assert client.get("/__sandbox/knobs").json() == RapidApiKnobs(monthly_limit=1000).model_dump()
    patched = client.patch("/__sandbox/knobs", json={"per_second_limit": 1, "missing_urns": [URN]})
    assert patched.status_code == 200 and patched.json()["per_second_limit"] == 1
    assert patched.json()["monthly_limit"] == 1000 and sandbox.knobs.missing_urns == [URN]
    assert get(client, URN).status_code == 404
    for wrong in ({"per_second_limt": 2}, {"server_error_rate": 2}, {"latency_ms": "slow"}):
        refused = client.patch("/__sandbox/knobs", json=wrong)
        assert refused.status_code == 422 and refused.json()["errors"]
    assert sandbox.knobs.per_second_limit == 1
    assert client.post("/__sandbox/reset").json()["missing_urns"] == []
    assert sandbox.knobs.monthly_limit == 1000
    assert client.get("/__sandbox/stats").json()["total_requests"] == 0
    assert get(client, URN).status_code == 200


def test_servers_start_and_stop_repeatedly():
    for _ in range(3):
        with start_in_thread(create_app()) as server:
            assert httpx.get(server.url + "/", params={"username": "x"}, headers=HEADERS).status_code == 200
        server.stop()  # a second stop is harmless
        assert not server.running
    port = server.port  # the port is free again right away
    with start_in_thread(create_app(), port=port) as again:
        assert again.url == f"http://127.0.0.1:{port}"


def test_command_line_runs_the_sandbox():
    with RunningServer(create_app()) as probe:  # a free port, released on exit
        port = probe.port
    proc = subprocess.Popen([sys.executable, "-m", "sandbox", "rapidapi", "--port", str(port),
                             "--monthly-limit", "7", "--api-key", "k"],
                            cwd=Path(__file__).parents[2], stdout=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                response = httpx.get(f"http://127.0.0.1:{port}/", params={"username": "x"},
                                     headers={**HEADERS, "x-rapidapi-key": "k"})
                break
            except httpx.TransportError:
                assert proc.poll() is None and time.monotonic() < deadline
                time.sleep(0.05)
        assert response.status_code == 200 and response.headers["x-ratelimit-requests-limit"] == "7"
    finally:
        proc.terminate()
        proc.wait(10)
