"""Imitation of the RapidAPI LinkedIn profile API (API_SHAPES.md section A), with fault knobs."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import random
import time
from collections import Counter, deque
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field, ValidationError

MONTHLY_MESSAGE = (
    "You have exceeded the MONTHLY quota for Requests on your current plan, BASIC. "
    "Upgrade your plan at https://rapidapi.com/rockapis-rockapis-default/api/linkedin-data-api"
)
TOO_FAST_MESSAGE = "You have exceeded the rate limit per second for your plan, BASIC, by the API provider"
BAD_KEY_MESSAGE = "Invalid API key. Go to https://docs.rapidapi.com/docs/keys for more info."
NOT_SUBSCRIBED_MESSAGE = "You are not subscribed to this API."
NOT_FOUND_MESSAGE = "Profile not found"
NO_INPUT_MESSAGE = "Please provide a valid username or LinkedIn profile url"
SERVER_ERROR_MESSAGES = {502: "Bad Gateway", 503: "Service Unavailable"}

_FIRST = ["Jane", "John", "Aiko", "Carlos", "Fatima", "Liam", "Priya", "Chen", "Olga", "Noah"]
_LAST = ["Doe", "Smith", "Tanaka", "Garcia", "Khan", "Murphy", "Patel", "Wei", "Ivanova", "Brown"]
_COMPANIES = [("Example Corp", "example-corp", "Software Development"), ("Acme Inc", "acme", "Manufacturing"),
              ("Globex", "globex", "Financial Services"), ("Initech", "initech", "IT Services"),
              ("Umbrella", "umbrella-co", "Pharmaceuticals"), ("Hooli", "hooli", "Internet")]
_TITLES = ["Chief Executive", "Software Engineer", "Data Scientist", "Product Manager",
           "Sales Director", "Designer"]
_CITIES = [("Springfield", "Illinois", "United States", "US"), ("Berlin", "Berlin", "Germany", "DE"),
           ("Tokyo", "Tokyo", "Japan", "JP"), ("Madrid", "Community of Madrid", "Spain", "ES")]
_SKILLS = ["Leadership", "Python", "SQL", "Negotiation", "Machine Learning", "Design", "Sales",
           "Strategic Planning"]
_SCHOOLS = ["State University", "Institute of Technology", "Business School", "City College"]
_DEGREES = [("MBA", "Business Administration"), ("BSc", "Computer Science"), ("MSc", "Economics"),
            ("BA", "Communication")]


class RapidApiKnobs(BaseModel):
    """Behaviour of the sandbox; every fault is off by default."""

    model_config = ConfigDict(extra="forbid")  # a misspelt knob must fail, not be ignored

    api_key: str = "sandbox-key"
    host: str = "linkedin-data-api.p.rapidapi.com"
    unsubscribed_keys: list[str] = Field(default_factory=list)
    latency_ms: float = Field(0, ge=0)
    per_second_limit: int = Field(0, ge=0)  # 0 = off
    retry_after_seconds: float | None = None  # None = no Retry-After header on 429s
    monthly_limit: int = Field(100_000, ge=0)
    monthly_used: int = Field(0, ge=0)
    rate_limit_first: dict[str, int] = Field(default_factory=dict)
    rate_limit_always: list[str] = Field(default_factory=list)
    server_error_first: dict[str, int] = Field(default_factory=dict)
    server_error_rate: float = Field(0.0, ge=0, le=1)
    malformed_urns: list[str] = Field(default_factory=list)
    missing_urns: list[str] = Field(default_factory=list)
    # urn -> the first N answers are a 200 whose body is cut off mid-way (billed, like any 200)
    truncate_first: dict[str, int] = Field(default_factory=dict)


def _date(rng: random.Random, year: int) -> dict[str, int]:
    return {"year": year, "month": rng.randint(1, 12), "day": rng.randint(1, 28)}


def generate_profile(identifier: str) -> dict[str, Any]:
    """A realistic flat profile body, the same every time for the same URN/username."""
    seed = hashlib.sha256(identifier.encode()).digest()
    rng = random.Random(seed)
    first, last = rng.choice(_FIRST), rng.choice(_LAST)
    if identifier.startswith("ACoA"):
        urn, username = identifier, f"{first}-{last}-{seed.hex()[:8]}".lower()
    else:  # a 39-character URN of the same alphabet as real ones
        urn, username = "ACoAA" + base64.urlsafe_b64encode(seed).decode()[:34], identifier
    city, region, country, code = rng.choice(_CITIES)
    location = f"{city}, {region}, {country}"
    positions, year = [], 2026
    for i in range(rng.randint(1, 4)):
        company, slug, industry = rng.choice(_COMPANIES)
        start = year - rng.randint(1, 5)
        title = rng.choice(_TITLES)
        positions.append({
            "companyId": rng.randint(1000, 99999), "companyName": company, "companyUsername": slug,
            "companyURL": f"https://www.linkedin.com/company/{slug}/",
            "companyIndustry": industry, "companyStaffCountRange": "1001 - 5000",
            "title": title, "multiLocaleTitle": {"en_US": title},
            "multiLocaleCompanyName": {"en_US": company}, "location": location,
            "description": "", "employmentType": "Full-time",
            "start": _date(rng, start), "end": None if i == 0 else _date(rng, year),
        })
        year = start
    degree, field = rng.choice(_DEGREES)
    school_start = year - rng.randint(3, 6)
    picture_id = base64.urlsafe_b64encode(seed[8:20]).decode()
    return {
        "id": rng.randint(1_000_000, 999_999_999),
        "urn": urn,
        "username": username,
        "firstName": first,
        "lastName": last,
        "isTopVoice": rng.random() < 0.05,
        "isCreator": rng.random() < 0.1,
        "isPremium": rng.random() < 0.3,
        "isOpenToWork": rng.random() < 0.2,
        "isHiring": rng.random() < 0.1,
        "profilePicture": ("https://media.licdn.com/dms/image/v2/" + picture_id
                           + "/profile-displayphoto-shrink_800_800/0/1700000000000?e=1790000000&v=beta"),
        "summary": f"{first} builds things at {positions[0]['companyName']}.",
        "headline": f"{positions[0]['title']} at {positions[0]['companyName']}",
        "geo": {"country": country, "city": city, "full": location, "countryCode": code},
        "languages": [{"name": "English", "proficiency": "FULL_PROFESSIONAL"}],
        "educations": [{
            "start": _date(rng, school_start), "end": _date(rng, school_start + 2),
            "fieldOfStudy": field, "degree": degree, "grade": "", "schoolName": rng.choice(_SCHOOLS),
            "description": "", "activities": "", "url": "", "schoolId": str(rng.randint(1000, 99999)),
        }],
        "position": positions[:1],
        "fullPositions": positions,
        "skills": [{"name": s, "passedSkillAssessment": rng.random() < 0.3,
                    "endorsementsCount": rng.randint(0, 200)}
                   for s in rng.sample(_SKILLS, rng.randint(1, 4))],
        "projects": {}, "courses": [], "certifications": [], "honors": [], "volunteering": [],
        "supportedLocales": [{"country": "US", "language": "en"}],
        "multiLocaleFirstName": {"en": first},
        "multiLocaleLastName": {"en": last},
        "multiLocaleHeadline": {"en": f"{positions[0]['title']} at {positions[0]['companyName']}"},
    }


@lru_cache(maxsize=8192)
def _profile_body(identifier: str) -> bytes:
    # Cached: retries and repeated runs ask for the same profiles again.
    return json.dumps(generate_profile(identifier), separators=(",", ":")).encode()


def seconds_until_monthly_reset(now: float | None = None) -> int:
    """Seconds until 00:00 UTC on the 1st of next month (what x-ratelimit-requests-reset says)."""
    now = time.time() if now is None else now
    today = datetime.fromtimestamp(now, UTC)
    reset = datetime(today.year + today.month // 12, today.month % 12 + 1, 1, tzinfo=UTC)
    return max(1, int(reset.timestamp() - now))


@lru_cache(maxsize=64)
def _message(message: str) -> bytes:
    return json.dumps({"message": message}).encode()


class RapidApiSandbox:
    """Knobs plus counters; one instance backs one app."""

    def __init__(self, knobs: RapidApiKnobs | None = None) -> None:
        self.initial = knobs or RapidApiKnobs()
        self.url = ""  # set by whoever serves it, for fixtures
        self.reset()

    def reset(self) -> None:
        """Restore the construction-time knobs and clear the counters."""
        self.knobs = self.initial.model_copy(deep=True)
        self.total = 0
        self._per_urn: Counter[str] = Counter()
        self._statuses: Counter[int] = Counter()
        self._window: deque[float] = deque()
        self._max_per_second = 0
        self._in_flight = self._max_in_flight = 0
        self._rng = random.Random(7)  # seeded, so server_error_rate runs are reproducible

    def update_knobs(self, **changes: Any) -> RapidApiKnobs:
        """Change some knobs (validated; unknown names raise), keep the rest."""
        self.knobs = RapidApiKnobs.model_validate(self.knobs.model_dump() | changes)
        return self.knobs

    def stats(self) -> dict[str, Any]:
        """Counters since the last reset (status codes as int keys)."""
        return {"total_requests": self.total, "statuses": dict(self._statuses),
                "per_urn": dict(self._per_urn), "max_requests_per_second": self._max_per_second,
                "max_in_flight": self._max_in_flight, "monthly_used": self.knobs.monthly_used}

    def _reply(self, status: int, body: bytes, extra: dict[str, str] | None = None) -> Response:
        k = self.knobs
        self._statuses[status] += 1
        headers = {  # the gateway's headers, on every answer
            "x-ratelimit-requests-limit": str(k.monthly_limit),
            "x-ratelimit-requests-remaining": str(max(0, k.monthly_limit - k.monthly_used)),
            "x-ratelimit-requests-reset": str(seconds_until_monthly_reset()),
        }
        if extra:
            headers.update(extra)
        return Response(body, status, headers, media_type="application/json")

    def _too_many(self, message: str) -> Response:
        seconds = self.knobs.retry_after_seconds
        extra = None if seconds is None else {"Retry-After": f"{seconds:g}"}
        return self._reply(429, _message(message), extra)

    async def handle(self, request: Request, identifier: str | None) -> Response:
        """Answer one profile request as RapidAPI would."""
        arrived = time.monotonic()
        self.total += 1
        window = self._window  # arrivals within the last second, for the per-second limit
        while window and arrived - window[0] >= 1.0:
            window.popleft()
        window.append(arrived)
        self._max_per_second = max(self._max_per_second, burst := len(window))
        attempt = 0
        if identifier:  # every request naming it counts, whatever the answer
            self._per_urn[identifier] += 1
            attempt = self._per_urn[identifier]
        self._in_flight += 1
        self._max_in_flight = max(self._max_in_flight, self._in_flight)  # client concurrency
        try:
            if self.knobs.latency_ms:
                await asyncio.sleep(self.knobs.latency_ms / 1000)
            return self._answer(request, identifier, burst, attempt)
        finally:
            self._in_flight -= 1

    def _answer(self, request: Request, identifier: str | None, burst: int, attempt: int) -> Response:
        k = self.knobs  # read after the latency, so knobs changed meanwhile apply
        key = request.headers.get("x-rapidapi-key")
        if key in k.unsubscribed_keys:
            return self._reply(403, _message(NOT_SUBSCRIBED_MESSAGE))
        if key != k.api_key:
            return self._reply(401, _message(BAD_KEY_MESSAGE))
        if request.headers.get("x-rapidapi-host") != k.host:
            return self._reply(403, _message(NOT_SUBSCRIBED_MESSAGE))
        if k.monthly_used >= k.monthly_limit:
            return self._too_many(MONTHLY_MESSAGE)
        if k.per_second_limit and burst > k.per_second_limit:
            return self._too_many(TOO_FAST_MESSAGE)
        if not identifier:
            return self._reply(400, _message(NO_INPUT_MESSAGE))
        if identifier in k.rate_limit_always or attempt <= k.rate_limit_first.get(identifier, 0):
            return self._too_many(TOO_FAST_MESSAGE)
        if attempt <= k.server_error_first.get(identifier, 0):
            return self._reply(503, _message(SERVER_ERROR_MESSAGES[503]))
        if k.server_error_rate and self._rng.random() < k.server_error_rate:
            status = self._rng.choice((502, 503))
            return self._reply(status, _message(SERVER_ERROR_MESSAGES[status]))
        if identifier in k.missing_urns:
            return self._reply(404, _message(NOT_FOUND_MESSAGE))
        k.monthly_used += 1  # only 200s use up the allowance
        body = _profile_body(identifier)
        if identifier in k.malformed_urns:
            body = body[: len(body) // 2]
        if attempt <= k.truncate_first.get(identifier, 0):
            return _Truncated(self._reply(200, body))
        return self._reply(200, body)


class _Truncated(Response):
    """A 200 whose Content-Length promises the whole body but whose connection closes after
    half of it: the client sees the status line, then a dropped body."""

    def __init__(self, whole: Response) -> None:
        super().__init__(whole.body, whole.status_code, dict(whole.headers), media_type="application/json")

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers})
        await send({"type": "http.response.body", "body": self.body[: len(self.body) // 2], "more_body": True})
        # Returning with the body incomplete: uvicorn closes the connection mid-body.


def username_from_url(url: str | None) -> str | None:
    """``jdoe`` from ``https://www.linkedin.com/in/jdoe/`` (None if it is no profile URL)."""
    parts = [p for p in (url or "").split("?")[0].split("#")[0].split("/") if p]
    if "in" not in parts:
        return None
    after = parts.index("in") + 1
    return parts[after] if after < len(parts) else None


def create_app(sandbox: RapidApiSandbox | None = None) -> FastAPI:
    """The ASGI app: the two profile endpoints plus ``/__sandbox/`` admin endpoints."""
    sb = sandbox or RapidApiSandbox()
    app = FastAPI(title="RapidAPI LinkedIn sandbox", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.sandbox = sb

    # Query strings are read by hand: FastAPI parameter validation would cost per request
    # and answer bad input with its own 422 shape rather than the API's {"message": ...}.
    @app.get("/")
    async def by_username(request: Request) -> Response:
        return await sb.handle(request, request.query_params.get("username"))

    @app.get("/get-profile-data-by-url")
    async def by_url(request: Request) -> Response:
        return await sb.handle(request, username_from_url(request.query_params.get("url")))

    @app.get("/__sandbox/knobs")
    async def get_knobs() -> dict[str, Any]:
        return sb.knobs.model_dump()

    @app.patch("/__sandbox/knobs")
    async def patch_knobs(changes: dict[str, Any]) -> Any:
        try:
            return sb.update_knobs(**changes).model_dump()
        except ValidationError as exc:
            return JSONResponse({"message": "invalid knobs", "errors": json.loads(exc.json())}, 422)

    @app.get("/__sandbox/stats")
    async def get_stats() -> dict[str, Any]:
        return sb.stats()

    @app.post("/__sandbox/reset")
    async def reset() -> dict[str, Any]:
        sb.reset()
        return sb.knobs.model_dump()

    return app
