"""AI-answer collectors (API_SHAPES.md section D): ChatGPT, Perplexity and Google AI Overviews.

ChatGPT is the OpenAI Responses API with web search, Perplexity its chat completions, Google AI
Overviews come through SerpAPI (a second call when the overview arrives as a ``page_token``).
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from typing import Any

import httpx

from core.brands.citations import Citation, domain_of
from core.brands.settings import CollectorsSettings
from core.db.outage import DEFAULT_BUDGET_S
from core.errors import ConfigError, MalformedResponseError, ProviderError
from core.http.client import ProviderClient, json_or_none
from core.http.retry import RetryPolicy, Sleep, shared_ssl_context

COLLECTORS = ("chatgpt", "google_aio", "perplexity")
_QUERY_KEY = "collectors.serpapi_key"  # request extension: add SerpAPI's api_key in the transport
_API_KEY_PARAM = re.compile(r"(api_key=)[^&\s\"']+")
_QUOTA_MARKERS = ("insufficient_quota", "exceeded your current quota", "run out of searches")


@dataclass
class CollectedAnswer:
    collector: str
    query: str
    answer_text: str
    citations: list[Citation]
    raw: dict[str, Any]  # the JSON body; google with a page_token: {"search": ..., "ai_overview": ...}
    latency_ms: int
    api_calls: int


def _citations(pairs: list[tuple[Any, Any]]) -> list[Citation]:
    """(url, title) pairs to citations, deduplicated by URL in order; non-string URLs skipped."""
    seen: dict[str, Citation] = {}
    for url, title in pairs:
        if isinstance(url, str) and url and url not in seen:
            seen[url] = Citation(url, domain_of(url), title if isinstance(title, str) and title else None)
    return list(seen.values())


def _malformed(collector: str, missing: str, attempts: int) -> MalformedResponseError:
    return MalformedResponseError(f"{collector}: malformed response: missing {missing}",
                                  status=200, attempts=attempts)


class _QueryKeyTransport(httpx.AsyncBaseTransport):
    """Adds SerpAPI's ``api_key`` query parameter on the way out.

    The client's own request, which httpx logs and attaches to its errors, never holds the key.
    """

    def __init__(self, inner: httpx.AsyncBaseTransport, key: str) -> None:
        self._inner = inner
        self._key = key

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.extensions.get(_QUERY_KEY):
            extensions = {k: v for k, v in request.extensions.items() if k != _QUERY_KEY}
            request = httpx.Request(request.method, request.url.copy_add_param("api_key", self._key),
                                    headers=request.headers, stream=request.stream, extensions=extensions)
        return await self._inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self._inner.aclose()


class CollectorClient(ProviderClient):
    """Collects one AI answer per (collector, query). ``api_calls`` counts every HTTP attempt."""

    def __init__(
        self,
        settings: CollectorsSettings,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        sleep: Sleep | None = None,
        limits_url: str | None = None,
        outage_budget: float = DEFAULT_BUDGET_S,
    ) -> None:
        """``limits_url``: the app database; with ``requestsPerMinute`` set, each provider key's
        budget is shared by every process on that database (``core.http.shared_limiter``)."""
        self._keys = {
            "chatgpt": ("openaiApiKey", settings.openai_api_key.get_secret_value()),
            "perplexity": ("perplexityApiKey", settings.perplexity_api_key.get_secret_value()),
            "google_aio": ("serpapiApiKey", settings.serpapi_api_key.get_secret_value()),
        }
        inner = transport or httpx.AsyncHTTPTransport(verify=shared_ssl_context())
        super().__init__(
            policy=RetryPolicy(settings.max_retries, settings.backoff_ms, settings.backoff_max_ms,
                               transient_retries=settings.max_retries),
            timeout=settings.timeout_seconds, transport=_QueryKeyTransport(inner, self._keys["google_aio"][1]),
            sleep=sleep, limits_url=limits_url if settings.requests_per_minute else None,
            outage_budget=outage_budget)
        self._settings = settings

    def error_message(self, response: httpx.Response) -> str:
        body = json_or_none(response)
        error = body.get("error") if isinstance(body, dict) else None
        if isinstance(error, dict) and error.get("message"):
            return str(error["message"])
        if isinstance(error, str) and error:
            return error
        return response.text[:200]

    def quota_exhausted(self, response: httpx.Response, message: str) -> bool:
        text = (message + " " + response.text[:500]).lower()
        return any(marker in text for marker in _QUOTA_MARKERS)

    def _redact(self, text: str) -> str:
        for _, key in self._keys.values():
            if key:
                text = text.replace(key, "***")
        return _API_KEY_PARAM.sub(r"\1***", text)

    def _key(self, collector: str) -> str:
        name, key = self._keys[collector]
        if not key:
            raise ConfigError(f"collectors.{name} is not set: {collector} cannot be collected")
        return key

    async def _call(self, collector: str, method: str, url: str, **kwargs: Any) -> tuple[Any, int]:
        """One API call with retries; returns (JSON body, attempts). Errors name the collector."""
        pacer = (self.shared_pacer(f"collectors:{collector}", self._key(collector),
                                   [(self._settings.requests_per_minute, 60.0)]) if self._limits_url else None)
        try:
            response, attempts, _ = await self.request(method, url, pacers=(pacer,), **kwargs)
        except ProviderError as exc:
            exc.args = (f"{collector}: {self._redact(str(exc))}",)
            raise
        try:
            return response.json(), attempts
        except ValueError:
            kind = response.headers.get("content-type", "no content-type").split(";")[0]
            raise _malformed(collector, f"a JSON body (got {kind})", attempts) from None

    async def collect(self, collector: str, query: str) -> CollectedAnswer:
        """Ask ``collector`` the ``query``; raise ConfigError for an unknown collector."""
        if collector not in COLLECTORS:
            raise ConfigError(f"unknown collector {collector!r}; known collectors: {', '.join(COLLECTORS)}")
        key = self._key(collector)
        started = time.monotonic()
        if collector == "chatgpt":
            raw, text, citations, calls = await self._chatgpt(query, key)
        elif collector == "perplexity":
            raw, text, citations, calls = await self._perplexity(query, key)
        else:
            raw, text, citations, calls = await self._google_aio(query)
        return CollectedAnswer(collector, query, text, citations, raw,
                               round((time.monotonic() - started) * 1000), calls)

    async def _chatgpt(self, query: str, key: str) -> tuple[dict[str, Any], str, list[Citation], int]:
        s = self._settings
        body, calls = await self._call(
            "chatgpt", "POST", s.openai_base_url.rstrip("/") + "/v1/responses",
            headers={"authorization": f"Bearer {key}"},
            json={"model": s.openai_model, "input": query, "tools": [{"type": "web_search_preview"}]})
        if not isinstance(body, dict) or not isinstance(body.get("output"), list):
            raise _malformed("chatgpt", "'output' list", calls)
        if body.get("status") == "failed":
            error = body.get("error")
            reason = error.get("message") if isinstance(error, dict) else None
            raise ProviderError(f"chatgpt: response failed: {reason or 'no reason given'}",
                                status=200, attempts=calls)
        texts: list[str] = []
        pairs: list[tuple[Any, Any]] = []
        for item in body["output"]:
            if not isinstance(item, dict) or item.get("type") != "message":
                continue  # web_search_call, reasoning: no text of their own
            parts = []
            for part in item.get("content") or []:
                if not isinstance(part, dict):
                    continue
                if part.get("type") == "output_text" and isinstance(part.get("text"), str):
                    parts.append(part["text"])
                    pairs += [(a.get("url"), a.get("title")) for a in part.get("annotations") or []
                              if isinstance(a, dict) and a.get("type") == "url_citation"]
                elif part.get("type") == "refusal" and isinstance(part.get("refusal"), str):
                    parts.append(part["refusal"])
            if parts:
                texts.append("".join(parts))
        if not texts:
            raise _malformed("chatgpt", "output_text in 'output'", calls)
        return body, "\n\n".join(texts), _citations(pairs), calls

    async def _perplexity(self, query: str, key: str) -> tuple[dict[str, Any], str, list[Citation], int]:
        s = self._settings
        body, calls = await self._call(
            "perplexity", "POST", s.perplexity_base_url.rstrip("/") + "/chat/completions",
            headers={"authorization": f"Bearer {key}"},
            json={"model": s.perplexity_model, "messages": [{"role": "user", "content": query}]})
        choices = body.get("choices") if isinstance(body, dict) else None
        first = choices[0] if isinstance(choices, list) and choices else None
        message = first.get("message") if isinstance(first, dict) else None
        content = message.get("content") if isinstance(message, dict) else None
        if not isinstance(content, str):
            raise _malformed("perplexity", "'choices[0].message.content'", calls)
        results = [r for r in body.get("search_results") or [] if isinstance(r, dict)]
        titles = {r.get("url"): r.get("title") for r in results}
        urls = body.get("citations")
        if not isinstance(urls, list):  # newer responses may carry only search_results
            urls = [r.get("url") for r in results]
        return body, content, _citations([(u, titles.get(u)) for u in urls]), calls

    async def _google_aio(self, query: str) -> tuple[dict[str, Any], str, list[Citation], int]:
        url = self._settings.serpapi_base_url.rstrip("/") + "/search.json"
        marker = {_QUERY_KEY: True}
        search, calls = await self._call("google_aio", "GET", url, params={"engine": "google", "q": query},
                                         extensions=marker)
        overview = self._serp_overview(search, "search", calls)
        if overview is None:  # Google shows no overview for many queries: not visible, not an error
            return search, "", [], calls
        raw = search
        if "text_blocks" not in overview and overview.get("page_token"):
            second, more = await self._call(
                "google_aio", "GET", url, extensions=marker,
                params={"engine": "google_ai_overview", "page_token": overview["page_token"]})
            calls += more
            overview = self._serp_overview(second, "page_token follow-up", calls)
            raw = {"search": search, "ai_overview": second}
        if overview is None or not isinstance(overview.get("text_blocks"), list):
            raise _malformed("google_aio", "'ai_overview.text_blocks' (or a page_token)", calls)
        references = [r for r in overview.get("references") or [] if isinstance(r, dict)]
        return (raw, _render_blocks(overview["text_blocks"]),
                _citations([(r.get("link"), r.get("title")) for r in references]), calls)

    def _serp_overview(self, body: Any, call: str, calls: int) -> dict[str, Any] | None:
        """``ai_overview`` of a SerpAPI body (None when Google shows none); checks the body's shape."""
        if isinstance(body, dict) and isinstance(body.get("error"), str):
            # SerpAPI reports some failures with HTTP 200 and an "error" field
            raise ProviderError(f"google_aio: serpapi error: {self._redact(body['error'])}",
                                status=200, attempts=calls)
        if not isinstance(body, dict) or not isinstance(body.get("search_metadata"), dict):
            raise _malformed("google_aio", f"'search_metadata' in the {call} response", calls)
        overview = body.get("ai_overview")
        if overview is not None and not isinstance(overview, dict):
            raise _malformed("google_aio", f"'ai_overview' object in the {call} response", calls)
        return overview


def _list_lines(items: list[Any], depth: int = 0) -> list[str]:
    lines = []
    for item in items:
        if not isinstance(item, dict):
            continue
        title = str(item.get("title") or "").strip().rstrip(":")
        snippet = str(item.get("snippet") or "").strip()
        line = f"{title}: {snippet}" if title and snippet else title or snippet
        if line:
            lines.append("  " * depth + "- " + line)
        if isinstance(item.get("list"), list):
            lines += _list_lines(item["list"], depth + 1)
    return lines


def _render_blocks(blocks: list[Any]) -> str:
    """SerpAPI text blocks as text: paragraphs apart, lists as ``- title: snippet`` lines."""
    chunks: list[str] = []
    for block in blocks:
        if not isinstance(block, dict):
            continue
        if block.get("type") == "list" and isinstance(block.get("list"), list):
            lines = _list_lines(block["list"])
            if lines:
                chunks.append("\n".join(lines))
        elif isinstance(block.get("text_blocks"), list):  # expandable sections nest blocks
            if inner := _render_blocks(block["text_blocks"]):
                chunks.append(inner)
        elif isinstance(block.get("snippet"), str) and block["snippet"].strip():
            chunks.append(block["snippet"].strip())
    return "\n\n".join(chunks)
