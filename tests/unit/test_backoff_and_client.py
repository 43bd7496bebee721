"""The RapidAPI client against httpx.MockTransport: 429 backoff, Retry-After, fatal errors, and
the moment ``on_send`` runs (after the permit, before the request goes out)."""

from __future__ import annotations

import httpx
import pytest

from core.errors import (
    AuthError,
    MalformedResponseError,
    NetworkError,
    NotFoundError,
    QuotaExhaustedError,
    RateLimitedError,
    ServerError,
)
from core.http.backoff import backoff_seconds, parse_retry_after
from core.profiles.client import RapidApiClient
from core.profiles.settings import RapidApiSettings

PROFILE = {"urn": "ACoAAbc", "username": "jdoe", "firstName": "Jane"}


def make_client(responses: list, **knobs: object) -> tuple[RapidApiClient, list[float], list[httpx.Request]]:
    sleeps: list[float] = []
    requests: list[httpx.Request] = []
    queue = list(responses)

    def handler(request: httpx.Request) -> httpx.Response:
        requests.append(request)
        item = queue.pop(0)
        if isinstance(item, Exception):
            raise item
        return item

    async def fake_sleep(seconds: float) -> None:
        sleeps.append(seconds)

    settings = RapidApiSettings(baseUrl="http://api.test", key="secret-key", **knobs)
    client = RapidApiClient(settings, transport=httpx.MockTransport(handler), sleep=fake_sleep)
    return client, sleeps, requests


def r429(retry_after: str | None = None, message: str = "You have exceeded the rate limit per second for your plan, BASIC, by the API provider") -> httpx.Response:
    headers = {"Retry-After": retry_after} if retry_after else {}
    return httpx.Response(429, headers=headers, json={"message": message})


@pytest.mark.parametrize(
    ("index", "retry_after", "expected"),
    [(0, None, 1.0), (1, None, 2.0), (2, None, 4.0), (3, None, 8.0), (4, None, 8.0),
     (0, 3.0, 3.0), (0, 30.0, 8.0), (5, 0.5, 0.5)],
)
def test_backoff_is_exponential_capped_and_honours_retry_after(index, retry_after, expected):
    assert backoff_seconds(index, base_ms=1000, max_ms=8000, retry_after=retry_after) == expected


def test_parse_retry_after_accepts_seconds_and_http_dates():
    assert parse_retry_after("2") == 2.0
    assert parse_retry_after(None) is None
    assert parse_retry_after("soon") is None
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0  # in the past


async def test_429_then_success_honours_retry_after_and_counts_every_attempt():
    client, sleeps, requests = make_client([r429("2"), r429(), httpx.Response(200, json=PROFILE)])
    async with client:
        result = await client.fetch_profile("ACoAAbc")
    assert result.data == PROFILE
    assert result.attempts == 3
    assert sleeps == [2.0, 2.0]  # Retry-After 2 s, then exponential 1 s * 2^1
    assert requests[0].headers["x-rapidapi-key"] == "secret-key"
    assert requests[0].headers["x-rapidapi-host"] == "linkedin-data-api.p.rapidapi.com"
    assert requests[0].url.params["username"] == "ACoAAbc"


async def test_retries_exhausted_raise_rate_limited_with_reason():
    client, sleeps, _ = make_client([r429()] * 4, rateLimitMaxRetries=3)
    async with client:
        with pytest.raises(RateLimitedError, match="after 3 retries") as info:
            await client.fetch_profile("ACoAAbc")
    assert info.value.attempts == 4
    assert sleeps == [1.0, 2.0, 4.0]


async def test_retry_after_is_capped_at_max_backoff():
    client, sleeps, _ = make_client([r429("120"), httpx.Response(200, json=PROFILE)])
    async with client:
        await client.fetch_profile("ACoAAbc")
    assert sleeps == [8.0]


async def test_monthly_quota_429_is_not_retried():
    monthly = "You have exceeded the MONTHLY quota for Requests on your current plan, BASIC."
    client, sleeps, _ = make_client([r429(message=monthly)])
    async with client:
        with pytest.raises(QuotaExhaustedError):
            await client.fetch_profile("ACoAAbc")
    assert sleeps == []


@pytest.mark.parametrize("status", [401, 403])
async def test_auth_errors_are_fatal_and_not_retried(status):
    client, sleeps, _ = make_client([httpx.Response(status, json={"message": "You are not subscribed to this API."})])
    async with client:
        with pytest.raises(AuthError, match="not subscribed") as info:
            await client.fetch_profile("ACoAAbc")
    assert info.value.fatal and info.value.attempts == 1 and sleeps == []


async def test_server_errors_are_retried_then_reported_as_such():
    client, _, _ = make_client([httpx.Response(503, json={"message": "down"})] * 2,
                               transientErrorRetries=1)
    async with client:
        with pytest.raises(ServerError, match="server error HTTP 503") as info:
            await client.fetch_profile("ACoAAbc")
    assert info.value.attempts == 2


async def test_network_errors_are_reported_as_such():
    client, _, _ = make_client([httpx.ConnectError("refused")] * 2, transientErrorRetries=1)
    async with client:
        with pytest.raises(NetworkError, match="network error: ConnectError"):
            await client.fetch_profile("ACoAAbc")


async def test_malformed_json_and_404():
    client, _, _ = make_client([httpx.Response(200, content=b'{"urn": "ACo'),
                                httpx.Response(404, json={"message": "Profile not found"})])
    async with client:
        with pytest.raises(MalformedResponseError, match="malformed JSON"):
            await client.fetch_profile("ACoAAbc")
        with pytest.raises(NotFoundError, match="Profile not found"):
            await client.fetch_profile("ACoAAbc")


class RecordingPacer:
    """A pacer that notes each permit it gives in a shared list of events."""

    def __init__(self, events: list[str]) -> None:
        self.events = events

    async def acquire(self) -> float:
        self.events.append("acquire")
        return 0.0


def client_with_events(responses: list, events: list[str]) -> RapidApiClient:
    queue = list(responses)

    def handler(request: httpx.Request) -> httpx.Response:
        events.append("send")
        return queue.pop(0)

    async def fake_sleep(seconds: float) -> None:
        pass

    settings = RapidApiSettings(baseUrl="http://api.test", key="secret-key")
    client = RapidApiClient(settings, transport=httpx.MockTransport(handler), sleep=fake_sleep)
    client._pacer = RecordingPacer(events)  # type: ignore[assignment]  # a budget without a database
    return client


async def test_on_send_runs_once_the_permit_is_held_and_before_each_attempt_is_sent():
    events: list[str] = []

    async def on_send() -> None:
        events.append("on_send")

    async with client_with_events([r429(), httpx.Response(200, json=PROFILE)], events) as client:
        result = await client.fetch_profile("ACoAAbc", on_send=on_send)
    assert result.attempts == 2
    assert events == ["acquire", "on_send", "send", "acquire", "on_send", "send"]


async def test_a_shared_permit_is_checked_for_freshness_after_on_send_just_before_the_send():
    events: list[str] = []

    class FreshnessPermit:
        waited = 0.0

        async def keep_fresh(self) -> float:  # a permit gone stale would be taken again here
            events.append("keep_fresh")
            return 0.0

    class SharedLike(RecordingPacer):
        async def permit(self) -> FreshnessPermit:
            events.append("permit")
            return FreshnessPermit()

    async def on_send() -> None:
        events.append("on_send")

    async with client_with_events([r429(), httpx.Response(200, json=PROFILE)], events) as client:
        client._pacer = SharedLike(events)  # type: ignore[assignment]
        await client.fetch_profile("ACoAAbc", on_send=on_send)
    assert events == ["permit", "on_send", "keep_fresh", "send"] * 2


async def test_a_request_that_never_got_its_permit_is_never_reported_sent():
    events: list[str] = []

    class Refusing(RecordingPacer):
        async def acquire(self) -> float:
            raise RuntimeError("database gone past its outage budget")

    async def on_send() -> None:
        events.append("on_send")

    async with client_with_events([httpx.Response(200, json=PROFILE)], events) as client:
        client._pacer = Refusing(events)  # type: ignore[assignment]
        with pytest.raises(RuntimeError, match="outage budget"):
            await client.fetch_profile("ACoAAbc", on_send=on_send)
    assert events == [] and client.api_calls == 0
