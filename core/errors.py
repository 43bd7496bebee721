"""Error hierarchy shared by clients, storage and tasks.

    JobError
    ├── ConfigError              bad settings or job configuration (fatal, names the key)
    ├── InvalidUrnError          a URN that cannot be fetched or stored safely (fails one entry)
    ├── StorageError             object storage write/read failed (fails one entry)
    └── ProviderError            a third-party API call failed; ``attempts`` counts HTTP calls made
        ├── RateLimitedError     HTTP 429 after every allowed retry (fails one entry)
        │   └── QuotaExhaustedError  the provider says the monthly plan is spent (stops the run)
        ├── AuthError            HTTP 401/403 (fatal: stops the run, entries go back to PENDING)
        ├── NotFoundError        HTTP 404 (fails one entry)
        ├── ServerError          HTTP 5xx after the allowed transient retries (fails one entry)
        ├── NetworkError         connect/read failure or timeout (fails one entry)
        └── MalformedResponseError  a body that is not the JSON object promised (fails one entry)

Fatal errors (``fatal = True``) end the whole run; every other error fails only the item.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pydantic import ValidationError


class JobError(Exception):
    """Base of every error this product raises on purpose."""

    fatal: bool = False


class ConfigError(JobError):
    """A setting or job configuration is invalid; the message names the key."""

    fatal = True


class InvalidUrnError(JobError, ValueError):
    """A URN is empty, too long, or could escape its storage prefix."""


class StorageError(JobError):
    """Writing to or reading from object storage failed."""


class ProviderError(JobError):
    """A call to a third-party API failed."""

    def __init__(self, message: str, *, status: int | None = None, attempts: int = 1, billed: int | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.attempts = attempts
        # Attempts the provider answered with HTTP 200 (it bills those), whatever their body was;
        # None: unknown, read it off ``status``.
        self.billed = billed if billed is not None else int(status == 200)


class RateLimitedError(ProviderError):
    """HTTP 429 persisted through every allowed retry."""

    retry_after: float | None = None  # seconds, from Retry-After when the provider sent it
    limit_type: str | None = None  # Riot's X-Rate-Limit-Type: application | method | service


class QuotaExhaustedError(RateLimitedError):
    """The provider reports the monthly plan allowance as spent."""

    fatal = True


class AuthError(ProviderError):
    """HTTP 401/403: the key is wrong or not subscribed. Always fatal."""

    fatal = True


class NotFoundError(ProviderError):
    """HTTP 404: the requested item does not exist at the provider."""


class ServerError(ProviderError):
    """HTTP 5xx from the provider."""


class NetworkError(ProviderError):
    """The request did not get an HTTP answer (connect error, timeout)."""


class MalformedResponseError(ProviderError):
    """The provider answered 200 with a body that is not the promised JSON object."""


class JobRunFailed(JobError):
    """Raised by a flow after recording a FAILED run, so Prefect marks the run failed."""


def field_errors(exc: ValidationError, prefix: str = "", empty: str = "<root>") -> str:
    """``field: message; ...`` for every error of a pydantic ValidationError, each field
    path under ``prefix`` (``empty`` names an error of the whole value when there is no
    prefix)."""
    return "; ".join(
        f"{'.'.join(str(p) for p in (prefix, *e['loc']) if p != '') or empty}: {e['msg']}"
        for e in exc.errors())
