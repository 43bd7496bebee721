"""Pure profile logic: URN validation, object keys, cleaning, run status."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from core.errors import InvalidUrnError
from core.profiles.cleaning import (
    CLEANED_FIELDS,
    clean_profile,
    object_keys,
    profile_row,
    validate_urn,
)
from core.profiles.tally import RunTally


@pytest.mark.parametrize(
    "urn", ["../etc/passwd", "a/b", "..", "", "ACo AA", "ACo\nAA", "x" * 129, "\\evil", ".hidden", None]
)
def test_hostile_or_malformed_urns_are_rejected(urn):
    with pytest.raises(InvalidUrnError, match="invalid URN"):
        validate_urn(urn)


def test_object_keys_follow_the_seed_layout():
    moment = datetime(2026, 11, 23, 12, 0, 0, tzinfo=UTC)
    raw, cleaned = object_keys("ACoAAAEkwwAB9KEc", moment)
    assert raw == f"profiles/ACoAAAEkwwAB9KEc-{int(moment.timestamp())}-raw.json"
    assert cleaned == f"profiles/ACoAAAEkwwAB9KEc-{int(moment.timestamp())}-cleaned.json"


def test_clean_profile_keeps_only_the_seed_fields():
    raw = {f: f"v-{f}" for f in CLEANED_FIELDS} | {"summary": "x", "isPremium": True, "id": 1}
    cleaned = clean_profile(raw)
    assert list(cleaned) == list(CLEANED_FIELDS)
    assert "summary" not in cleaned and "isPremium" not in cleaned
    assert clean_profile({})["headline"] is None


def test_profile_row_uses_the_requested_urn_and_drops_wrong_types():
    now = datetime.now(UTC)
    row = profile_row("ACoA1", {"urn": "other", "firstName": 5, "geo": "nope", "skills": [{"name": "x"}]},
                      raw_key="r", cleaned_key="c", fetched_at=now)
    assert row["urn"] == "ACoA1" and row["first_name"] is None and row["geo"] is None
    assert row["skills"] == [{"name": "x"}]


@pytest.mark.parametrize(
    ("setup", "expected"),
    [
        ({}, "SUCCESS"),
        ({"ok": 3}, "SUCCESS"),
        ({"ok": 2, "bad": 1}, "PARTIAL"),
        ({"bad": 2}, "FAILED"),
        ({"ok": 2, "stopped_by_quota": True}, "PARTIAL"),
        ({"quota_exceeded_at_start": True}, "QUOTA_EXCEEDED"),
        ({"ok": 1, "fatal_error": "HTTP 403"}, "FAILED"),
    ],
)
def test_run_status_rules(setup, expected):
    tally = RunTally()
    tally.add_batch(succeeded=setup.pop("ok", 0),
                    errors=[{"item": "u", "error": "e"}] * setup.pop("bad", 0), api_calls=0)
    for key, value in setup.items():
        setattr(tally, key, value)
    assert tally.status().value == expected


def test_the_sink_is_down_after_three_failures_in_a_row_and_a_late_success_does_not_hide_them():
    from tasks.profiles.batch import SinkWatch

    watch = SinkWatch()
    before = watch.ticket()  # a store under way as the outage begins
    watch.failed("reset")
    watch.failed("reset")
    watch.ok(before)  # it finished on its old connection: says nothing about the sink now
    assert not watch.down
    watch.failed("refused")
    assert watch.down and watch.reason == "refused"

    watch = SinkWatch()
    watch.failed("reset")
    watch.failed("reset")
    watch.ok(watch.ticket())  # began after the failures, and stored: the sink is back
    watch.failed("reset")
    watch.failed("reset")
    assert not watch.down and watch.streak == 2
