"""The sandboxes speak the real APIs' shapes: headers, bodies, errors and rate limits."""

from __future__ import annotations

import httpx
import pytest

from sandbox.coingecko import CoinGeckoSandbox
from sandbox.coingecko import create_app as coingecko_app
from sandbox.rapidapi import (
    MONTHLY_MESSAGE,
    TOO_FAST_MESSAGE,
    RapidApiKnobs,
    RapidApiSandbox,
    create_app,
)
from sandbox.server import start_in_thread

HEADERS = {"x-rapidapi-key": "sandbox-key", "x-rapidapi-host": "linkedin-data-api.p.rapidapi.com"}


@pytest.fixture
def rapid():
    sandbox = RapidApiSandbox(RapidApiKnobs(monthly_limit=5))
    with start_in_thread(create_app(sandbox)) as server:
        with httpx.Client(base_url=server.url, headers=HEADERS) as client:
            yield sandbox, client


def test_profile_body_is_flat_deterministic_and_echoes_the_urn(rapid):
    _, client = rapid
    first = client.get("/", params={"username": "ACoAAAEkwwAB9KEc"})
    again = client.get("/", params={"username": "ACoAAAEkwwAB9KEc"})
    assert first.status_code == 200 and first.json() == again.json()
    body = first.json()
    assert body["urn"] == "ACoAAAEkwwAB9KEc"
    assert {"firstName", "lastName", "headline", "geo", "educations", "fullPositions", "skills"} <= set(body)
    assert first.headers["x-ratelimit-requests-limit"] == "5"
    assert int(first.headers["x-ratelimit-requests-remaining"]) == 4  # 1 of 5 used
    assert int(first.headers["x-ratelimit-requests-reset"]) > 0
    by_url = client.get("/get-profile-data-by-url", params={"url": "https://www.linkedin.com/in/jdoe/"})
    assert by_url.json()["username"] == "jdoe"


def test_auth_errors_have_the_message_body(rapid):
    sandbox, client = rapid
    assert client.get("/", params={"username": "x1"}, headers={"x-rapidapi-key": "nope"}).status_code == 401
    sandbox.update_knobs(unsubscribed_keys=["other"])
    refused = client.get("/", params={"username": "x1"}, headers={"x-rapidapi-key": "other"})
    assert (refused.status_code, refused.json()) == (403, {"message": "You are not subscribed to this API."})


def test_rate_limits_per_second_and_monthly(rapid):
    sandbox, client = rapid
    sandbox.update_knobs(per_second_limit=2, retry_after_seconds=None)
    codes = [client.get("/", params={"username": f"ACoAAx{i}"}) for i in range(3)]
    assert [r.status_code for r in codes] == [200, 200, 429]
    assert codes[2].json() == {"message": TOO_FAST_MESSAGE} and "retry-after" not in codes[2].headers
    sandbox.update_knobs(per_second_limit=0, retry_after_seconds=2)
    sandbox.update_knobs(rate_limit_first={"ACoAAy": 1})
    limited = client.get("/", params={"username": "ACoAAy"})
    assert limited.status_code == 429 and limited.headers["retry-after"] == "2"
    assert client.get("/", params={"username": "ACoAAy"}).status_code == 200
    for i in range(5):
        client.get("/", params={"username": f"ACoAAz{i}"})
    spent = client.get("/", params={"username": "ACoAAlast"})
    assert (spent.status_code, spent.json()["message"]) == (429, MONTHLY_MESSAGE)
    assert spent.headers["x-ratelimit-requests-remaining"] == "0"
    assert sandbox.stats()["statuses"][429] >= 3


def test_fault_knobs(rapid):
    sandbox, client = rapid
    sandbox.update_knobs(malformed_urns=["ACoAAbad"], missing_urns=["ACoAAgone"], server_error_first={"ACoAAflaky": 1})
    bad = client.get("/", params={"username": "ACoAAbad"})
    assert bad.status_code == 200
    with pytest.raises(ValueError):
        bad.json()
    assert client.get("/", params={"username": "ACoAAgone"}).json() == {"message": "Profile not found"}
    assert client.get("/", params={"username": "ACoAAflaky"}).status_code == 503
    assert client.get("/", params={"username": "ACoAAflaky"}).status_code == 200
    assert client.patch("/__sandbox/knobs", json={"latency_ms": 1}).json()["latency_ms"] == 1
    client.post("/__sandbox/reset")
    assert client.get("/__sandbox/stats").json()["total_requests"] == 0


def test_coingecko_shapes_keys_and_429():
    sandbox = CoinGeckoSandbox()
    with start_in_thread(coingecko_app(sandbox)) as server, httpx.Client(base_url=server.url + "/api/v3") as client:
        assert client.get("/coins/markets", params={"vs_currency": "usd"}).status_code == 401
        client.headers["x-cg-demo-api-key"] = "sandbox-cg-key"
        page = client.get("/coins/markets", params={"vs_currency": "usd", "per_page": 250, "page": 2}).json()
        assert len(page) == 50 and page[-1]["market_cap_rank"] is None and page[0]["market_cap_rank"] == 251
        prices = client.get("/simple/price", params={"ids": "bitcoin,nope", "vs_currencies": "usd",
                                                     "include_last_updated_at": "true"}).json()
        assert set(prices) == {"bitcoin"} and set(prices["bitcoin"]) == {"usd", "last_updated_at"}
        coin = client.get("/coins/bitcoin").json()
        assert coin["platforms"] == {"": ""}
        sandbox.update_knobs(rate_limit_next=1, retry_after_seconds=7)
        limited = client.get("/coins/bitcoin")
        assert limited.status_code == 429 and limited.headers["retry-after"] == "7"
        assert limited.json()["status"]["error_code"] == 429
