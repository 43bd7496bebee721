"""The AI-answer collector client against the collectors sandbox: shapes, page tokens, faults, keys."""

from __future__ import annotations

import logging
import re
import socket
from collections.abc import Iterator

import httpx
import pytest

from core.brands.client import COLLECTORS, CollectorClient
from core.brands.settings import CollectorsSettings
from core.errors import (
    AuthError,
    ConfigError,
    MalformedResponseError,
    NetworkError,
    QuotaExhaustedError,
    RateLimitedError,
    ServerError,
)
from sandbox.collectors import CollectorsSandbox, create_app, needs_page_token
from sandbox.server import start_in_thread

KEYS = {"openaiApiKey": "sk-test-openai-5f1c9a7e", "perplexityApiKey": "pplx-test-8d2b6e40",
        "serpapiApiKey": "serp-test-3a9f0c21b7"}
QUERY = "best crm for a small sales team"


@pytest.fixture(scope="module")
def server_sandbox() -> Iterator[CollectorsSandbox]:
    sandbox = CollectorsSandbox()
    with start_in_thread(create_app(sandbox)) as server:
        sandbox.url = server.url
        yield sandbox


@pytest.fixture
def sandbox(server_sandbox: CollectorsSandbox) -> CollectorsSandbox:
    server_sandbox.reset()
    return server_sandbox


def make_settings(url: str, **overrides: object) -> CollectorsSettings:
    return CollectorsSettings.model_validate({
        "openaiBaseUrl": url, "perplexityBaseUrl": url, "serpapiBaseUrl": url, **KEYS,
        "maxRetries": 2, "backoffMs": 10, "backoffMaxMs": 50, "timeoutSeconds": 5, **overrides})


class Sleeps:
    """Mocked time: records each wait instead of waiting."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


def mentions(text: str, brand: str) -> bool:
    return re.search(rf"(?<!\w){re.escape(brand)}(?!\w)", text, re.IGNORECASE) is not None


def query_where(page_token: bool) -> str:
    return next(q for q in (f"{QUERY} {i}" for i in range(100)) if needs_page_token(q) == page_token)


async def test_chatgpt_answer_has_the_brands_and_the_url_citations(sandbox):
    async with CollectorClient(make_settings(sandbox.url)) as client:
        answer = await client.collect("chatgpt", QUERY)
    plan = sandbox.plan("chatgpt", QUERY)
    assert all(mentions(answer.answer_text, brand) for brand, *_ in plan.items)
    assert {c.url for c in answer.citations} == {url for url, _, _ in plan.sources}
    assert len(answer.citations) == len({c.url for c in answer.citations})
    titles = {url: title for url, title, _ in plan.sources}
    for c in answer.citations:
        assert c.title == titles[c.url] and not c.domain.startswith("www.") and c.domain in c.url
    # each annotation's indexes cover the markdown link it stands for
    part = answer.raw["output"][-1]["content"][0]
    for a in part["annotations"]:
        assert part["text"][a["start_index"]:a["end_index"]] == f"[{a['title']}]({a['url']})"
    assert answer.raw["object"] == "response" and answer.api_calls == client.api_calls == 1
    assert answer.latency_ms >= 0


async def test_perplexity_answer_has_markers_and_titles_from_search_results(sandbox):
    async with CollectorClient(make_settings(sandbox.url)) as client:
        answer = await client.collect("perplexity", QUERY)
    plan = sandbox.plan("perplexity", QUERY)
    assert "[1]" in answer.answer_text
    assert all(mentions(answer.answer_text, brand) for brand, *_ in plan.items)
    assert [(c.url, c.title) for c in answer.citations] == [(u, t) for u, t, _ in plan.sources]
    assert answer.citations[0].domain == re.sub(r"^https://(www\.)?([^/]+)/.*", r"\2", plan.sources[0][0])
    assert answer.api_calls == 1


async def test_google_overview_renders_paragraphs_and_list_lines(sandbox):
    query = query_where(page_token=False)
    async with CollectorClient(make_settings(sandbox.url)) as client:
        answer = await client.collect("google_aio", query)
    plan = sandbox.plan("google_aio", query)
    for brand, _, sentence, _ in plan.items:
        assert f"\n- {brand}: {sentence}" in answer.answer_text
    assert answer.answer_text.startswith(plan.intro)
    assert [c.url for c in answer.citations] == [u for u, _, _ in plan.sources]
    assert answer.api_calls == 1 and "search_metadata" in answer.raw


async def test_google_page_token_is_followed_with_one_more_call(sandbox):
    query = query_where(page_token=True)
    async with CollectorClient(make_settings(sandbox.url)) as client:
        answer = await client.collect("google_aio", query)
        assert answer.api_calls == 2 and set(answer.raw) == {"search", "ai_overview"}
        assert "page_token" in answer.raw["search"]["ai_overview"] and answer.citations
        # the knob forces a token on any query; the overview is the same as without one
        direct_query = query_where(page_token=False)
        direct = await client.collect("google_aio", direct_query)
        sandbox.update_knobs(page_token_always=True)
        followed = await client.collect("google_aio", direct_query)
    assert (direct.api_calls, followed.api_calls, client.api_calls) == (1, 2, 5)
    assert followed.answer_text == direct.answer_text and followed.citations == direct.citations


async def test_answers_are_deterministic_per_collector_and_query(sandbox):
    async with CollectorClient(make_settings(sandbox.url)) as client:
        for collector in COLLECTORS:
            first = await client.collect(collector, QUERY)
            again = await client.collect(collector, QUERY)
            other = await client.collect(collector, "which crm has the best support")
            assert (first.answer_text, first.citations) == (again.answer_text, again.citations)
            assert first.answer_text != other.answer_text


async def test_429_then_success_counts_every_attempt(sandbox):
    sandbox.update_knobs(rate_limit_next=2, retry_after_seconds=3)
    sleeps = Sleeps()
    async with CollectorClient(make_settings(sandbox.url), sleep=sleeps) as client:
        answer = await client.collect("perplexity", QUERY)
    assert answer.api_calls == client.api_calls == 3
    assert sleeps.waits == [0.05, 0.05]  # Retry-After 3 s, capped by backoffMaxMs
    assert sandbox.stats()["by_collector"]["perplexity"] == {429: 2, 200: 1}


async def test_429_beyond_max_retries_is_rate_limited(sandbox):
    sandbox.update_knobs(rate_limit_next=5)
    async with CollectorClient(make_settings(sandbox.url), sleep=Sleeps()) as client:
        with pytest.raises(RateLimitedError) as info:
            await client.collect("chatgpt", QUERY)
    assert info.value.attempts == 3 and info.value.retry_after == 1
    assert str(info.value).startswith("chatgpt: ")


async def test_a_failing_collector_raises_server_error_after_retries(sandbox):
    sandbox.update_knobs(fail_collectors=["google_aio"])
    sleeps = Sleeps()
    async with CollectorClient(make_settings(sandbox.url), sleep=sleeps) as client:
        with pytest.raises(ServerError) as info:
            await client.collect("google_aio", QUERY)
        assert (await client.collect("chatgpt", QUERY)).answer_text  # the others still answer
    assert info.value.status == 500 and info.value.attempts == 3 and sleeps.waits == [0.01, 0.02]
    assert str(info.value).startswith("google_aio: ")


async def test_one_500_is_retried(sandbox):
    sandbox.update_knobs(fail_next=1)
    async with CollectorClient(make_settings(sandbox.url), sleep=Sleeps()) as client:
        answer = await client.collect("chatgpt", QUERY)
    assert answer.api_calls == 2


@pytest.mark.parametrize("collector", COLLECTORS)
async def test_a_body_of_the_wrong_shape_is_malformed(sandbox, collector):
    sandbox.update_knobs(malformed_next=2)  # an HTML page, then JSON without the promised fields
    async with CollectorClient(make_settings(sandbox.url)) as client:
        with pytest.raises(MalformedResponseError, match=f"^{collector}: .*JSON body"):
            await client.collect(collector, QUERY)
        with pytest.raises(MalformedResponseError, match=f"^{collector}: .*missing '"):
            await client.collect(collector, QUERY)
        assert (await client.collect(collector, QUERY)).answer_text


@pytest.mark.parametrize("collector", COLLECTORS)
async def test_a_refused_key_is_an_auth_error_that_never_shows_the_key(sandbox, collector, caplog):
    sandbox.update_knobs(valid_keys=["some-other-key"])
    caplog.set_level(logging.DEBUG)
    async with CollectorClient(make_settings(sandbox.url)) as client:
        with pytest.raises(AuthError) as info:
            await client.collect(collector, QUERY)
    assert info.value.status == 401 and info.value.fatal
    shown = str(info.value) + repr(info.value) + caplog.text
    assert not any(key in shown for key in KEYS.values())


async def test_the_serpapi_key_stays_out_of_network_errors_and_logs(caplog):
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{sock.getsockname()[1]}"
    caplog.set_level(logging.DEBUG)
    async with CollectorClient(make_settings(dead, maxRetries=0)) as client:
        with pytest.raises(NetworkError) as info:
            await client.collect("google_aio", QUERY)
    shown = str(info.value) + repr(info.value) + caplog.text + repr(info.value.__context__)
    assert KEYS["serpapiApiKey"] not in shown


async def test_the_serpapi_key_is_sent_as_the_api_key_parameter(sandbox, caplog):
    caplog.set_level(logging.INFO, logger="httpx")
    async with CollectorClient(make_settings(sandbox.url)) as client:
        await client.collect("google_aio", query_where(page_token=True))
    assert sandbox.stats()["by_collector"]["google_aio"] == {200: 2}
    assert "search.json" in caplog.text and KEYS["serpapiApiKey"] not in caplog.text


async def test_unknown_collector_and_missing_key_are_config_errors(sandbox):
    async with CollectorClient(make_settings(sandbox.url, perplexityApiKey="")) as client:
        with pytest.raises(ConfigError, match="'bing'.*chatgpt, google_aio, perplexity"):
            await client.collect("bing", QUERY)
        with pytest.raises(ConfigError, match="perplexityApiKey"):
            await client.collect("perplexity", QUERY)
    assert client.api_calls == 0


async def test_an_exhausted_openai_quota_is_not_retried():
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(429, json={"error": {
            "message": "You exceeded your current quota, please check your plan and billing details.",
            "type": "insufficient_quota", "param": None, "code": "insufficient_quota"}})

    settings = make_settings("https://api.openai.example")
    async with CollectorClient(settings, transport=httpx.MockTransport(handler), sleep=Sleeps()) as client:
        with pytest.raises(QuotaExhaustedError):
            await client.collect("chatgpt", QUERY)
    assert client.api_calls == 1


def test_sandbox_answers_respect_unmentioned_and_hide_brands_inside_words():
    sandbox = CollectorsSandbox()
    sandbox.update_knobs(unmentioned=["Hooli"])
    decoys = 0
    for i in range(40):
        for collector in COLLECTORS:
            plan = sandbox.plan(collector, f"query {i}")
            assert 2 <= len(plan.items) <= 4 and 2 <= len(plan.sources) <= 4
            text = " ".join(s for _, _, s, _ in plan.items) + (plan.decoy or "")
            assert "hooli" not in text.lower()
            if plan.decoy:
                decoys += 1
                word = re.search(r"(Acme CRM|Globex|Initech|Umbrella)\w+", plan.decoy)
                assert word and not mentions(plan.decoy, word.group(1))
    assert decoys > 10
