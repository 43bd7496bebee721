"""Riot IDs and platforms as the add-tracked-player flow takes them (issue 12 item 9)."""

from __future__ import annotations

import pytest

from core.riot.players import parse_platform, parse_riot_id


@pytest.mark.parametrize(("riot_id", "parsed"), [
    ("Faker#KR1", ("Faker", "KR1")), (" Hide on bush # KR1 ", ("Hide on bush", "KR1")),
    ("Señor Ñu#EUW", ("Señor Ñu", "EUW")), ("abc#12345", ("abc", "12345")),
])
def test_valid_riot_ids(riot_id, parsed):
    assert parse_riot_id(riot_id) == parsed


@pytest.mark.parametrize("riot_id", ["Faker", "Faker#", "#KR1", "Fa#KR1", "A#B#KR1", "Faker#K", "Faker#KR1234",
                                     "Faker#K-1", "SeventeenCharName#KR1", ""])
def test_malformed_riot_ids_name_the_field(riot_id):
    with pytest.raises(ValueError, match="^riot_id: "):
        parse_riot_id(riot_id)


def test_platforms():
    assert parse_platform(" EUW1 ") == "euw1"
    with pytest.raises(ValueError, match="^platform: unknown platform 'xx1'"):
        parse_platform("xx1")
