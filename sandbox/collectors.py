"""Imitation of three AI-answer APIs (API_SHAPES.md section D): OpenAI Responses, Perplexity, SerpAPI.

Answers are deterministic from (collector, query): the same brands, tones and sources every time.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import random
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field

COLLECTORS = ("chatgpt", "google_aio", "perplexity")
DEFAULT_BRANDS = ["Acme CRM", "Globex", "Initech", "Umbrella", "Hooli"]
PAGE_TOKEN_SHARE = 0.3  # share of google queries whose overview needs a second call
SERPAPI_BAD_KEY = "Invalid API key. Your API key should be here: https://serpapi.com/manage-api-key"

# (url, title, snippet): the sources an answer may cite
SOURCES = [
    ("https://www.g2.com/categories/crm", "Best CRM Software in 2025 | G2",
     "Compare the best CRM software using real user reviews and ratings."),
    ("https://www.capterra.com/customer-relationship-management-software/",
     "Best CRM Software 2025 - Reviews & Pricing | Capterra",
     "Find the top CRM software with verified reviews, pricing and demos."),
    ("https://techcrunch.com/2025/02/11/the-crm-market-is-consolidating/",
     "The CRM market is consolidating | TechCrunch",
     "Smaller CRM vendors are being bought up as the market matures."),
    ("https://en.wikipedia.org/wiki/Customer_relationship_management",
     "Customer relationship management - Wikipedia",
     "Customer relationship management is a process in which a business manages interactions."),
    ("https://www.forbes.com/advisor/business/software/best-crm-software/",
     "Best CRM Software Of 2025 - Forbes Advisor",
     "Our experts compared pricing, features and support of popular CRM tools."),
    ("https://www.pcmag.com/picks/the-best-crm-software", "The Best CRM Software for 2025 | PCMag",
     "We tested the leading CRM platforms to help you pick one."),
    ("https://zapier.com/blog/best-crm-app/", "The 8 best CRM software in 2025 | Zapier",
     "We looked at dozens of CRMs and picked the ones worth using."),
    ("https://www.reddit.com/r/sales/comments/1b2c3d4/which_crm_do_you_actually_like/",
     "Which CRM do you actually like? : r/sales",
     "Salespeople share which CRM tools they enjoy and which they avoid."),
]
_TONES: dict[str, list[str]] = {
    "positive": [
        "{b} is an excellent choice and is loved by users for its clean interface.",
        "Reviewers call {b} reliable and great value for growing teams.",
        "{b} is often named the best option for managing a sales pipeline.",
        "Teams switching to {b} describe it as reliable, and it is loved by users on review sites.",
    ],
    "negative": [
        "{b} can be expensive, and several reviews mention poor support.",
        "Users describe {b} as buggy and slow at times, which is disappointing.",
        "{b} has a reputation for poor support, and its higher tiers are expensive.",
        "Some teams found {b} disappointing because reports are slow to load.",
    ],
    "neutral": [
        "{b} offers a standard feature set with monthly and annual plans.",
        "{b} is a long-standing vendor in this category.",
        "{b} integrates with common email and calendar tools.",
    ],
}
_INTROS = [
    "Several tools stand out for this question.",
    "Based on recent reviews and comparisons, here are the main options.",
    "The answer depends on team size and budget, but a few names come up repeatedly.",
]
_DECOYS = ["Not to be confused with {w}, which is unrelated.",
           "Some forum threads drift into {w}, which has nothing to do with software."]
_DECOY_SUFFIXES = ["ganism", "ville", "ware", "s"]
_CLOSINGS = ["Pricing and support quality vary, so compare free trials before committing.",
             "Most of these offer a free trial, which is the best way to decide."]
_BARE_URL_FORMS = [" A side-by-side comparison is at {u}.", " (see {u}).", " More details: {u}, with pricing."]


class CollectorsKnobs(BaseModel):
    """Behaviour of the sandbox; every fault is off by default."""

    model_config = ConfigDict(extra="forbid")  # a misspelt knob must fail, not be ignored

    brands: list[str] = Field(default_factory=lambda: list(DEFAULT_BRANDS))
    unmentioned: list[str] = Field(default_factory=list)  # never appear in any answer, not even inside a word
    valid_keys: list[str] | None = None  # None = any non-empty key
    latency_ms: float = Field(0, ge=0)
    fail_next: int = Field(0, ge=0)  # the next N requests get 500
    rate_limit_next: int = Field(0, ge=0)  # the next N requests get 429
    retry_after_seconds: float | None = 1  # None = no retry-after header on 429s
    fail_collectors: list[str] = Field(default_factory=list)  # these always get 500
    rate_limit_collectors: list[str] = Field(default_factory=list)  # these always get 429 (+ retry-after)
    malformed_next: int = Field(0, ge=0)  # the next N requests get 200 with a body of the wrong shape
    page_token_always: bool = False  # every google overview needs the page_token follow-up


def _rng(key: str) -> random.Random:
    return random.Random(hashlib.sha256(key.encode()).digest())


def needs_page_token(query: str) -> bool:
    """Whether the google overview for ``query`` comes back as a page_token (without the knob)."""
    return _rng(f"google_aio-page|{query}").random() < PAGE_TOKEN_SHARE


@dataclass
class Plan:
    """The content of one answer, before each API renders it in its own shape."""

    intro: str
    decoy: str | None
    items: list[tuple[str, str, str, list[int]]]  # (brand, tone, sentence, indexes into sources)
    closing: str
    sources: list[tuple[str, str, str]] = field(default_factory=list)
    bare_url: str | None = None  # a closing form with a bare cited URL and trailing punctuation


def plan_answer(collector: str, query: str, brands: list[str], unmentioned: list[str]) -> Plan:
    """Deterministic answer content for (collector, query)."""
    rng = _rng(f"{collector}|{query}")
    candidates = [b for b in brands if b not in unmentioned]
    chosen = rng.sample(candidates, rng.randint(min(2, len(candidates)), min(5, len(candidates))))
    spare = [b for b in candidates if b not in chosen]
    decoy = None
    if spare and rng.random() < 0.4:  # a brand inside another word: only whole-word matching skips it
        word = rng.choice(spare) + rng.choice(_DECOY_SUFFIXES)
        decoy = rng.choice(_DECOYS).format(w=word)
    sources = rng.sample(SOURCES, rng.randint(2, 4))
    items = []
    for i, brand in enumerate(chosen):
        tone = rng.choice(list(_TONES))
        cited = sorted({i % len(sources), rng.randrange(len(sources))})
        items.append((brand, tone, rng.choice(_TONES[tone]).format(b=brand), cited))
    cited_any = {s for *_, c in items for s in c}
    for missing in sorted(set(range(len(sources))) - cited_any):  # every source is cited somewhere
        if items:
            items[-1][3].append(missing)
    bare = rng.choice(_BARE_URL_FORMS).format(u=rng.choice(sources)[0]) if rng.random() < 0.5 else None
    return Plan(rng.choice(_INTROS), decoy, items, rng.choice(_CLOSINGS), sources, bare)


def render_openai(plan: Plan) -> tuple[str, list[dict[str, Any]]]:
    """Text with markdown links, and url_citation annotations whose indexes cover each link."""
    text = plan.intro + (" " + plan.decoy if plan.decoy else "") + "\n\n"
    annotations: list[dict[str, Any]] = []
    for n, (_, _, sentence, cited) in enumerate(plan.items):
        text += (" " if n else "") + sentence
        for s in cited:
            url, title, _ = plan.sources[s]
            link = f"[{title}]({url})"
            text += " ("
            annotations.append({"type": "url_citation", "start_index": len(text),
                                "end_index": len(text) + len(link), "url": url, "title": title})
            text += link + ")"
    return text + "\n\n" + plan.closing + (plan.bare_url or ""), annotations


def render_perplexity(plan: Plan) -> str:
    """Text with ``[n]`` markers, 1-based into the sources."""
    body = " ".join(sentence + "".join(f"[{s + 1}]" for s in cited) for _, _, sentence, cited in plan.items)
    intro = plan.intro + (" " + plan.decoy if plan.decoy else "")
    return f"{intro}\n\n{body}\n\n{plan.closing}{plan.bare_url or ''}"


def render_overview(plan: Plan) -> dict[str, Any]:
    """SerpAPI's ``ai_overview``: text blocks with reference indexes, and the references."""
    blocks: list[dict[str, Any]] = [
        {"type": "paragraph", "snippet": plan.intro + (" " + plan.decoy if plan.decoy else ""),
         "reference_indexes": [0]},
        {"type": "list", "list": [{"title": brand, "snippet": sentence, "reference_indexes": cited}
                                  for brand, _, sentence, cited in plan.items]},
        {"type": "paragraph", "snippet": plan.closing, "reference_indexes": []},
    ]
    references = [{"title": title, "link": url, "snippet": snippet,
                   "source": title.rsplit("|", 1)[-1].rsplit(" - ", 1)[-1].strip(), "index": i}
                  for i, (url, title, snippet) in enumerate(plan.sources)]
    return {"text_blocks": blocks, "references": references}


def _page_token(query: str) -> str:
    payload = base64.urlsafe_b64encode(query.encode()).decode().rstrip("=")
    return payload + "." + hashlib.sha256(f"aio|{payload}".encode()).hexdigest()[:16]


def _query_of_token(token: str) -> str | None:
    payload, _, sig = token.partition(".")
    if not payload or hashlib.sha256(f"aio|{payload}".encode()).hexdigest()[:16] != sig:
        return None
    try:
        return base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError):
        return None


def _openai_error(message: str, type_: str, code: str | None) -> dict[str, Any]:
    return {"error": {"message": message, "type": type_, "param": None, "code": code}}


def _perplexity_error(message: str, type_: str, code: int) -> dict[str, Any]:
    return {"error": {"message": message, "type": type_, "code": code}}


_ERRORS: dict[str, dict[int, Any]] = {
    "chatgpt": {
        401: None,  # built per key, like the real masked message
        429: _openai_error("Rate limit reached for requests per min (RPM): Limit 500, Used 500, "
                           "Requested 1. Please try again in 120ms.", "requests", "rate_limit_exceeded"),
        500: _openai_error("The server had an error while processing your request. Sorry about that!",
                           "server_error", None),
    },
    "perplexity": {
        401: _perplexity_error("Invalid API key provided.", "invalid_api_key", 401),
        429: _perplexity_error("Rate limit exceeded. Please slow down.", "rate_limit_exceeded", 429),
        500: _perplexity_error("Internal server error", "internal_server_error", 500),
    },
    "google_aio": {
        401: {"error": SERPAPI_BAD_KEY},
        429: {"error": "Your account has exceeded the hourly searches limit."},
        500: {"error": "Internal server error. Please retry."},
    },
}


def _masked(key: str) -> str:
    return key[:3] + "*" * 8 + key[-4:] if len(key) > 12 else "***"


class CollectorsSandbox:
    def __init__(self, knobs: CollectorsKnobs | None = None) -> None:
        self.initial = knobs or CollectorsKnobs()
        self.url = ""
        self.reset()

    def reset(self) -> None:
        self.knobs = self.initial.model_copy(deep=True)
        self.statuses: Counter[int] = Counter()
        self.requests: Counter[str] = Counter()
        self.by_collector: dict[str, Counter[int]] = {c: Counter() for c in COLLECTORS}
        self.total = 0
        self._malformed_served = 0

    def update_knobs(self, **changes: Any) -> CollectorsKnobs:
        self.knobs = CollectorsKnobs.model_validate(self.knobs.model_dump() | changes)
        return self.knobs

    def stats(self) -> dict[str, Any]:
        return {"total_requests": self.total, "requests": dict(self.requests),
                "statuses": dict(self.statuses),
                "by_collector": {c: dict(s) for c, s in self.by_collector.items() if s}}

    def plan(self, collector: str, query: str) -> Plan:
        return plan_answer(collector, query, self.knobs.brands, self.knobs.unmentioned)

    def reply(self, collector: str, body: Any, status: int = 200,
              headers: dict[str, str] | None = None) -> Response:
        self.statuses[status] += 1
        self.by_collector[collector][status] += 1
        return JSONResponse(body, status_code=status, headers=headers)

    def _malformed(self, collector: str) -> Response:
        self._malformed_served += 1
        self.statuses[200] += 1
        self.by_collector[collector][200] += 1
        if self._malformed_served % 2:  # a proxy's HTML page, then JSON of the wrong shape
            return Response("<html><body><h1>upstream returned an unexpected page</h1></body></html>",
                            media_type="text/html")
        return JSONResponse({"ok": True, "detail": "sandbox: not the promised shape"})

    async def gate(self, collector: str, key: str | None) -> Response | None:
        """Key check and fault knobs, before any endpoint does its work."""
        k = self.knobs
        self.total += 1
        self.requests[collector] += 1
        if k.latency_ms:
            await asyncio.sleep(k.latency_ms / 1000)
        if not key or (k.valid_keys is not None and key not in k.valid_keys):
            body = _ERRORS[collector][401] or _openai_error(
                f"Incorrect API key provided: {_masked(key)}. You can find your API key at "
                "https://platform.openai.com/account/api-keys." if key else
                "You didn't provide an API key. You need to provide your API key in an Authorization "
                "header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).",
                "invalid_request_error", "invalid_api_key")
            return self.reply(collector, body, 401)
        if collector in k.fail_collectors:
            return self.reply(collector, _ERRORS[collector][500], 500)
        limited = collector in k.rate_limit_collectors
        if not limited and k.rate_limit_next:
            k.rate_limit_next -= 1
            limited = True
        if limited:
            headers = {"retry-after": f"{k.retry_after_seconds:g}"} if k.retry_after_seconds is not None else {}
            return self.reply(collector, _ERRORS[collector][429], 429, headers)
        if k.fail_next:
            k.fail_next -= 1
            return self.reply(collector, _ERRORS[collector][500], 500)
        if k.malformed_next:
            k.malformed_next -= 1
            return self._malformed(collector)
        return None


def _bearer(request: Request) -> str | None:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    return (token.strip() or None) if scheme.lower() == "bearer" else None


def _openai_query(raw: Any) -> str | None:
    """The last user text of a Responses ``input``: a string or a list of messages."""
    if isinstance(raw, str):
        return raw
    if isinstance(raw, list):
        for message in reversed(raw):
            if isinstance(message, dict) and message.get("role", "user") == "user":
                content = message.get("content")
                if isinstance(content, list):
                    content = " ".join(p.get("text", "") for p in content if isinstance(p, dict))
                return content if isinstance(content, str) else None
    return None


def _id(prefix: str, *parts: object) -> str:
    return prefix + hashlib.sha256("|".join(map(str, parts)).encode()).hexdigest()[:24]


def create_app(sandbox: CollectorsSandbox | None = None) -> FastAPI:
    """The ASGI app: OpenAI, Perplexity and SerpAPI paths on one host."""
    sb = sandbox or CollectorsSandbox()
    app = FastAPI(title="AI-answer collectors sandbox", docs_url=None, redoc_url=None)
    app.state.sandbox = sb

    async def json_body(request: Request) -> dict[str, Any]:
        try:
            body = await request.json()
        except ValueError:
            return {}
        return body if isinstance(body, dict) else {}

    @app.post("/v1/responses")
    async def responses(request: Request) -> Response:
        if (refused := await sb.gate("chatgpt", _bearer(request))) is not None:
            return refused
        body = await json_body(request)
        query = _openai_query(body.get("input"))
        for name, value in (("model", body.get("model")), ("input", query)):
            if not value:
                return sb.reply("chatgpt", {"error": {
                    "message": f"Missing required parameter: '{name}'.", "type": "invalid_request_error",
                    "param": name, "code": "missing_required_parameter"}}, 400)
        assert query is not None
        searched = any(isinstance(t, dict) and t.get("type") in ("web_search_preview", "web_search")
                       for t in body.get("tools") or [])
        plan = sb.plan("chatgpt", query)
        if not searched:  # no web search tool: an answer from memory, without citations
            plan.items = [(b, t, s, []) for b, t, s, _ in plan.items]
            plan.sources, plan.bare_url = [], None
        text, annotations = render_openai(plan)
        output: list[dict[str, Any]] = []
        if searched:
            output.append({"type": "web_search_call", "id": _id("ws_", query, sb.total), "status": "completed"})
        output.append({"type": "message", "id": _id("msg_", query, sb.total), "role": "assistant",
                       "status": "completed",
                       "content": [{"type": "output_text", "text": text, "annotations": annotations}]})
        used_in, used_out = len(query.split()) + 12, len(text.split())
        return sb.reply("chatgpt", {
            "id": _id("resp_", query, sb.total), "object": "response", "created_at": int(time.time()),
            "model": body["model"], "status": "completed", "output": output,
            "usage": {"input_tokens": used_in, "output_tokens": used_out, "total_tokens": used_in + used_out},
        })

    @app.post("/chat/completions")
    async def chat_completions(request: Request) -> Response:
        if (refused := await sb.gate("perplexity", _bearer(request))) is not None:
            return refused
        body = await json_body(request)
        messages = body.get("messages")
        user = [m.get("content") for m in messages or [] if isinstance(m, dict) and m.get("role") == "user"]
        query = user[-1] if user and isinstance(user[-1], str) and user[-1] else None
        if not body.get("model") or query is None:
            missing = "model" if not body.get("model") else "messages"
            return sb.reply("perplexity", _perplexity_error(
                f"Invalid request: '{missing}' is required and must contain a user message",
                "invalid_request_error", 400), 400)
        plan = sb.plan("perplexity", query)
        content = render_perplexity(plan)
        used_in, used_out = len(query.split()) + 8, len(content.split())
        return sb.reply("perplexity", {
            "id": _id("", query, sb.total), "model": body["model"], "object": "chat.completion",
            "created": int(time.time()),
            "choices": [{"index": 0, "finish_reason": "stop",
                         "message": {"role": "assistant", "content": content}}],
            "citations": [url for url, _, _ in plan.sources],
            "search_results": [{"title": title, "url": url, "date": f"2025-0{i + 1}-1{i}", "snippet": snippet}
                               for i, (url, title, snippet) in enumerate(plan.sources)],
            "usage": {"prompt_tokens": used_in, "completion_tokens": used_out,
                      "total_tokens": used_in + used_out},
        })

    @app.get("/search.json")
    async def search(request: Request, engine: str = "google", q: str | None = None,
                     page_token: str | None = None, api_key: str | None = None) -> Response:
        if (refused := await sb.gate("google_aio", api_key)) is not None:
            return refused
        metadata = {"id": _id("", engine, q or page_token, sb.total), "status": "Success",
                    "created_at": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
                    "total_time_taken": 1.42}
        if engine == "google_ai_overview":
            query = _query_of_token(page_token) if page_token else None
            if query is None:
                message = "Invalid `page_token` parameter." if page_token else "Missing `page_token` parameter."
                return sb.reply("google_aio", {"error": message}, 400)
            return sb.reply("google_aio", {
                "search_metadata": metadata,
                "search_parameters": {"engine": engine, "page_token": page_token},
                "ai_overview": render_overview(sb.plan("google_aio", query)),
            })
        if engine != "google":
            return sb.reply("google_aio", {"error": f"Unsupported `{engine}` search engine."}, 400)
        if not q:
            return sb.reply("google_aio", {"error": "Missing query `q` parameter."}, 400)
        plan = sb.plan("google_aio", q)
        if sb.knobs.page_token_always or needs_page_token(q):
            token = _page_token(q)
            overview: dict[str, Any] = {
                "page_token": token,
                "serpapi_link": f"{str(request.base_url).rstrip('/')}/search.json"
                                f"?engine=google_ai_overview&page_token={token}"}
        else:
            overview = render_overview(plan)
        return sb.reply("google_aio", {
            "search_metadata": metadata,
            "search_parameters": {"engine": engine, "q": q, "google_domain": "google.com", "device": "desktop"},
            "ai_overview": overview,
            "organic_results": [{"position": i + 1, "title": title, "link": url, "snippet": snippet}
                                for i, (url, title, snippet) in enumerate(plan.sources)],
        })

    return app
