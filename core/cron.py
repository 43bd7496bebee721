"""Cron text and fire times, shared by every schedule (5-field crons, timezone-aware)."""

from __future__ import annotations

import re
import zoneinfo
from datetime import UTC, datetime

from croniter import croniter

_FIELD_NAMES = ("minute", "hour", "day-of-month", "month", "day-of-week")
_FIELD_SPANS = (59, 23, 31, 12, 7)


def check_cron(value: str) -> str:
    """``value`` if it is a valid 5-field cron expression; ValueError naming the problem."""
    fields = value.split()
    if len(fields) != 5:
        raise ValueError(
            f"{value!r} is not a 5-field cron expression (minute hour day month weekday);"
            f" got {len(fields)} fields"
        )
    if not croniter.is_valid(value):
        raise ValueError(f"{value!r} is not a valid cron expression")
    if any(f.casefold() in ("r", "h") for f in fields):  # croniter's random/hashed forms; Prefect refuses them
        raise ValueError(f"{value!r}: random (R) and hashed (H) fields are not supported")
    for field, name, span in zip(fields, _FIELD_NAMES, _FIELD_SPANS, strict=True):
        for part in field.split(","):
            _, _, step = part.partition("/")
            if step.isdigit() and int(step) > span:  # croniter takes */61 and fires hourly: a typo, not a wish
                raise ValueError(f"{value!r}: the step /{step} of the {name} field exceeds its range ({span})")
    return value


def check_timezone(value: str) -> str:
    """``value`` if it is an IANA zone that schedules accept (``posixrules`` and such are not)."""
    if value not in zoneinfo.available_timezones():
        raise ValueError(f"unknown timezone {value!r}")
    return value


_INTERVAL = re.compile(r"\s*interval\(\s*(seconds|minutes|hours)\s*=\s*(\d+)\s*\)\s*", re.IGNORECASE)


def interval_to_cron(value: str) -> str | None:
    """The seed's ``interval(seconds=300)`` form as the cron that fires at the same pace
    (``*/5 * * * *``); None when ``value`` is no interval. An interval that no cron keeps
    (7 minutes, 90 seconds) is refused, naming the nearest one to use."""
    match = _INTERVAL.fullmatch(value)
    if match is None:
        return None
    unit, amount = match.group(1).lower(), int(match.group(2))
    seconds = amount * {"seconds": 1, "minutes": 60, "hours": 3600}[unit]
    minutes, rest = divmod(seconds, 60)
    if rest == 0 and 1 <= minutes < 60 and 60 % minutes == 0:
        return "* * * * *" if minutes == 1 else f"*/{minutes} * * * *"
    hours, rest = divmod(minutes, 60)
    if rest == 0 and 1 <= hours <= 24 and 24 % hours == 0:
        return "0 * * * *" if hours == 1 else "0 0 * * *" if hours == 24 else f"0 */{hours} * * *"
    nearest = next((f"*/{m} * * * *" for m in (1, 2, 3, 4, 5, 6, 10, 12, 15, 20, 30) if m * 60 >= seconds),
                   "0 * * * *")
    raise ValueError(f"{value!r}: an interval of {seconds} s is no whole division of an hour or a day, "
                     f"which a schedule needs; use a cron expression, e.g. {nearest!r}")


def to_prefect_cron(value: str) -> str:
    """Accept 5-field cron, the seed's 6-field cron with a leading seconds field of 0, or the
    seed's ``interval(seconds=N)`` (``interval_to_cron``).

    ``"0 0 0 * * *"`` becomes ``"0 0 * * *"``. Any other seconds value is refused rather
    than silently misread: Prefect schedules fire on whole minutes.
    """
    if (cron := interval_to_cron(value)) is not None:
        return cron
    fields = value.split()
    if len(fields) == 6:
        if fields[0] not in ("0", "00"):
            raise ValueError(
                f"{value!r} is a 6-field cron with seconds={fields[0]!r}; only a seconds field"
                " of 0 can be honoured (schedules run on whole minutes)"
            )
        fields = fields[1:]
    return check_cron(" ".join(fields))


def validate_schedule(cron: str, timezone: str) -> str:
    """The 5-field cron to use; raises ValueError naming what is wrong."""
    try:
        check_timezone(timezone)
    except ValueError as exc:
        raise ValueError(f"timezone: {exc}") from None
    try:
        return to_prefect_cron(cron)
    except ValueError as exc:
        raise ValueError(f"cron_expression: {exc}") from None


def next_run(cron: str, timezone: str, after: datetime) -> datetime:
    """The first fire time strictly after ``after``, in UTC."""
    local = after.astimezone(zoneinfo.ZoneInfo(timezone))
    return croniter(cron, local).get_next(datetime).astimezone(UTC)


def previous_run(cron: str, timezone: str, at: datetime) -> datetime:
    """The last fire time at or before ``at``, in UTC."""
    if fires_at(cron, timezone, at):
        return at.astimezone(UTC)
    return croniter(cron, at.astimezone(zoneinfo.ZoneInfo(timezone))).get_prev(datetime).astimezone(UTC)


def fires_at(cron: str, timezone: str, at: datetime) -> bool:
    """Whether ``cron`` in ``timezone`` fires at the instant ``at`` (a whole minute)."""
    if at.second or at.microsecond:
        return False
    return bool(croniter.match(cron, at.astimezone(zoneinfo.ZoneInfo(timezone))))
