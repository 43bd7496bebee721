"""The one skeleton of every provider client: HTTP client, retry and 429 policy, call
counting, pacing, lifecycle. A family's client keeps only its endpoints and their mapping.

Subclasses set their retry ``policy`` and headers through ``__init__``, may override
``error_message`` (where the provider puts its error text) and ``quota_exhausted`` (a 429
that waiting cannot cure), and call ``request``/``get_json`` from their endpoint methods.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any, Protocol, Self

import httpx

from core.db.outage import DEFAULT_BUDGET_S
from core.errors import MalformedResponseError
from core.http.limiter import Window
from core.http.retry import (
    AnswerCut,
    RetryPolicy,
    Sent,
    Sleep,
    send_with_retries,
    shared_ssl_context,
)
from core.http.shared_limiter import SharedWindowLimiter, key_fingerprint


class Pacer(Protocol):
    """Anything a request waits on before it is sent; returns the seconds it waited."""

    async def acquire(self) -> float: ...


Observe = Callable[[httpx.Response], Awaitable[None]]
OnSend = Callable[[], Awaitable[None]]

_WRITE = ("http11.send_request_headers.started", "http2.send_request_headers.started")


class Permit(Protocol):
    """A booked moment (``core.http.shared_limiter.Permit``) that can renew itself if it went
    stale before the request was written."""

    waited: float

    async def keep_fresh(self) -> float: ...


class ProviderClient:
    """An httpx client built on first use, ``send_with_retries`` around every request, and
    ``api_calls`` counting every HTTP attempt (retries included).

    ``limits_url`` is the app database: ``shared_pacer`` then returns a budget that every
    process on that database shares for one API key (``core.http.shared_limiter``), whose
    database steps wait out an outage for up to ``outage_budget`` seconds
    (``database.outageBudgetSeconds``).
    """

    def __init__(
        self,
        *,
        policy: RetryPolicy,
        timeout: float,
        headers: dict[str, str] | None = None,
        base_url: str = "",
        transport: httpx.AsyncBaseTransport | None = None,
        sleep: Sleep | None = None,
        limits_url: str | None = None,
        max_connections: int | None = None,
        outage_budget: float = DEFAULT_BUDGET_S,
    ) -> None:
        self._policy = policy
        self._sleep = sleep
        self._limits_url = limits_url
        self._outage_budget = outage_budget
        self._http_options: dict[str, Any] = {
            "base_url": base_url, "headers": {"accept": "application/json", **(headers or {})},
            "timeout": timeout, "transport": transport, "verify": shared_ssl_context()}
        if max_connections:
            # As many connections as requests may be in flight: every idle connection more is
            # one more liveness check on each request the pool assigns.
            self._http_options["limits"] = httpx.Limits(max_connections=max_connections)
        # Our own connection pool (httpcore): a request's last steps run once its connection is
        # made, just before its headers are written (the ``trace`` extension).
        self._at_write = transport is None
        self._http: httpx.AsyncClient | None = None
        self.api_calls = 0
        self.waited_seconds = 0.0

    def _client(self) -> httpx.AsyncClient:
        """Built on first use: its TLS set-up costs tens of milliseconds, which a run that finds
        nothing to fetch should not pay."""
        if self._http is None:
            options = dict(self._http_options)
            if options["transport"] is None:
                options["transport"] = httpx.AsyncHTTPTransport(
                    verify=options.pop("verify"), **({"limits": options.pop("limits")} if "limits" in options else {}))
            self._http = httpx.AsyncClient(**options)
        return self._http

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        if self._http is not None:
            await self._http.aclose()
            self._http = None

    def shared_pacer(self, name: str, secret: str, windows: list[Window]) -> SharedWindowLimiter | None:
        """The budget of the key ``secret`` (stored under ``name:<fingerprint>``, never the key),
        shared with every process on the app database; None without ``limits_url``."""
        if not self._limits_url:
            return None
        return SharedWindowLimiter(self._limits_url, f"{name}:{key_fingerprint(secret)}", windows,
                                   sleep=self._sleep, configured=True, outage_budget=self._outage_budget)

    def error_message(self, response: httpx.Response) -> str:
        """The provider's error text; the default takes ``message`` or ``error`` of a JSON body."""
        body = json_or_none(response)
        if isinstance(body, dict):
            for field in ("message", "error"):
                if isinstance(body.get(field), str) and body[field]:
                    return str(body[field])
        return response.text[:200]

    def quota_exhausted(self, response: httpx.Response, message: str) -> bool:
        """True for a 429 that waiting cannot cure (raised at once as QuotaExhaustedError)."""
        return False

    async def _acquire(self, pacers: tuple[Pacer | None, ...]) -> list[Permit]:
        permits: list[Permit] = []
        for pacer in pacers:
            if pacer is None:
                continue
            if hasattr(pacer, "permit"):  # a shared budget: its permit can renew itself
                permits.append(await pacer.permit())
                self.waited_seconds += permits[-1].waited
            else:
                self.waited_seconds += await pacer.acquire() or 0.0
        return permits

    async def request(self, method: str, url: str, *, pacers: tuple[Pacer | None, ...] = (),
                      observe: Observe | None = None, on_send: OnSend | None = None, **kwargs: Any) -> Sent:
        """Send with retries; returns (2xx response, attempts, billed) or raises a ProviderError.

        Each attempt takes its permits first, then its connection; then, just before its
        headers are written, ``on_send`` is awaited (before every attempt, retries included)
        and a permit that went stale meanwhile (a connection to open, a slow ``on_send``) is
        taken again. What ``on_send`` records ("requested") is then true of every request that
        may reach the provider, and of none still waiting for a permit or a connection. With a
        transport of the caller's (tests), the connection is not seen: all of it happens just
        before the request is handed over.

        The body is read apart from the status line, so an answer whose body is cut off is
        known to have been answered (``AnswerCut``): a 200 the provider bills."""
        async def send() -> httpx.Response:
            # Built before the permit: the client's set-up must not make the request late.
            http = self._client()
            built = http.build_request(method, url, **kwargs)
            permits = await self._acquire(pacers)

            async def last_steps() -> None:
                if on_send is not None:
                    await on_send()
                for permit in permits:
                    self.waited_seconds += await permit.keep_fresh()

            if self._at_write:
                built.extensions["trace"] = _once_at_write(last_steps)
            else:
                await last_steps()
            self.api_calls += 1
            response = await http.send(built, stream=True)
            try:
                await response.aread()
            except httpx.TransportError as exc:
                raise AnswerCut(response.status_code, exc) from exc
            finally:
                await response.aclose()
            if observe is not None:
                await observe(response)
            return response

        return await send_with_retries(send, policy=self._policy, message=self.error_message,
                                       quota_exhausted=self.quota_exhausted, sleep=self._sleep)

    async def get_json(self, url: str, *, params: dict[str, Any] | None = None,
                       pacers: tuple[Pacer | None, ...] = (), observe: Observe | None = None,
                       on_send: OnSend | None = None) -> Any:
        """GET and parse; a body that is not JSON is a MalformedResponseError naming ``url``."""
        response, attempts, billed = await self.request("GET", url, params=params, pacers=pacers, observe=observe,
                                                        on_send=on_send)
        return parse_json(response, url, attempts, billed)


def _once_at_write(steps: Callable[[], Awaitable[None]]) -> Callable[[str, dict[str, Any]], Awaitable[None]]:
    """An httpcore ``trace`` callback that runs ``steps`` once, as the request's headers are
    about to be written."""
    done = False

    async def trace(event: str, info: dict[str, Any]) -> None:
        nonlocal done
        if event in _WRITE and not done:
            done = True
            await steps()

    return trace


def parse_json(response: httpx.Response, what: str, attempts: int, billed: int | None = None) -> Any:
    try:
        return json.loads(response.content)
    except ValueError as exc:
        raise MalformedResponseError(f"malformed JSON from {what}: {exc}", status=response.status_code,
                                     attempts=attempts, billed=billed) from None


def json_or_none(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None
