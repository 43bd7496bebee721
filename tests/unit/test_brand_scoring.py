"""Brand scoring rules (API_SHAPES.md D) on small hand-made answers."""

from __future__ import annotations

import math
from types import SimpleNamespace

import pandas as pd
import pytest

from core.brands.scoring import (
    AGGREGATE_COLUMNS,
    BrandScore,
    Citation,
    aggregate,
    brand_pattern,
    count_mentions,
    domain_of,
    extract_citations,
    first_mentions,
    positions,
    score_answer,
    scores_frame,
    sentiment_label,
    sentiment_score,
)

BRANDS = ["Acme CRM", "Hooli", "Globex", "Initech"]


def test_positions_follow_first_mention_not_list_order():
    text = "Globex leads, then Acme CRM and Hooli. Globex again."
    assert first_mentions(text, BRANDS) == {"Acme CRM": 19, "Hooli": 32, "Globex": 0}
    assert positions(text, BRANDS) == {"Acme CRM": 2, "Hooli": 3, "Globex": 1, "Initech": None}
    assert list(positions(text, BRANDS)) == BRANDS


@pytest.mark.parametrize(
    ("text", "brand", "count"),
    [("Hooliganism is rising.", "Hooli", 0),
     ("Hooli's app and HOOLI's API; hooli.", "Hooli", 3),
     ("Acme CRM's pricing beats acme crm support.", "Acme CRM", 2),
     ("AcmeCRM and Acme CRMs are other products.", "Acme CRM", 0),
     ("AT&T's network (AT&T) beats AT&Tx.", "AT&T", 2),
     ("We use C++, not C++x, Cx++ or C.", "C++", 1),
     ("", "Hooli", 0)],
)
def test_whole_word_case_insensitive_mentions(text, brand, count):
    assert count_mentions(text, brand) == count
    assert (brand_pattern(brand).search(text) is not None) == (count > 0)


def test_a_name_inside_a_longer_name_ties_to_the_longer_one():
    text = "Acme CRM beats Acme Mail."
    assert positions(text, ["Acme", "Acme CRM"]) == {"Acme": 2, "Acme CRM": 1}
    assert count_mentions(text, "Acme") == 2


def test_duplicate_brands_keep_the_first_spelling_and_empty_names_fail():
    assert positions("hooli wins", ["Hooli", "hooli", " HOOLI "]) == {"Hooli": 1}
    assert [s.brand for s in score_answer("x", ["Hooli", "HOOLI", "Globex"])] == ["Hooli", "Globex"]
    for bad in ("", "   "):
        with pytest.raises(ValueError, match="brand name must not be empty"):
            positions("text", ["Hooli", bad])


def test_sentiment_counts_only_words_near_the_first_mention():
    far = "Hooli is excellent. " + "filler " * 57 + "Terrible and buggy."
    assert far.index("Terrible") - far.index("Hooli") > 400
    assert sentiment_score(far, "Hooli") == 1.0
    assert sentiment_score(far, "Hooli", window=1000) == pytest.approx(-1 / 3)
    before = "Awful, buggy, slow. " + "filler " * 57 + "Hooli is great."
    assert before.index("Hooli") - before.index("slow") > 400
    assert sentiment_score(before, "Hooli") == 1.0
    assert sentiment_score("Globex is great.", "Hooli") is None


def test_sentiment_window_takes_whole_words_only():
    text = "Hooli" + " " * 10 + "excellent"  # "excellent" spans characters 15..24
    assert sentiment_score(text, "Hooli", window=10) == 0.0
    assert sentiment_score(text, "Hooli", window=18) == 0.0  # would cut the word
    assert sentiment_score(text, "Hooli", window=19) == 1.0


def test_the_brands_own_name_is_not_sentiment():
    assert sentiment_score("Best Buy stores are everywhere.", "Best Buy") == 0.0
    assert sentiment_score("Best Buy is the best for TVs.", "Best Buy") == 1.0


@pytest.mark.parametrize(
    ("text", "score", "label"),
    [("Hooli is fast, reliable and easy, but expensive and slow.", 0.2, "neutral"),
     ("Hooli is fast and easy, but expensive, slow and buggy.", -0.2, "neutral"),
     ("Hooli is fast and easy, but expensive.", 1 / 3, "positive"),
     ("Hooli is slow and buggy, but easy.", -1 / 3, "negative"),
     ("Hooli exists.", 0.0, "neutral")],
)
def test_sentiment_scores_and_labels(text, score, label):
    assert sentiment_score(text, "Hooli") == pytest.approx(score)
    [scored] = score_answer(text, ["Hooli"])
    assert scored.sentiment_label == label


@pytest.mark.parametrize(
    ("score", "label"),
    [(0.2, "neutral"), (-0.2, "neutral"), (0.2001, "positive"), (-0.2001, "negative"),
     (0.0, "neutral"), (1.0, "positive"), (-1.0, "negative")],
)
def test_label_boundaries(score, label):
    assert sentiment_label(score) == label


def test_citations_markdown_then_bare_deduplicated_with_known_titles():
    text = (
        "See [Acme review](https://www.example.com/acme) and [](https://docs.acme.io/start). "
        "![logo](https://cdn.acme.io/logo.png) "
        "Also https://news.site.org/story?id=1). More at "
        "(https://en.wikipedia.org/wiki/Acme_(company)), https://www.example.com/acme again, "
        "and http://blog.test/post, ok. Sources: https://x.com/a[1] and **https://y.org/b**"
    )
    known = [("https://docs.acme.io/start", "Acme docs"),
             SimpleNamespace(url="https://x.com/a", title="Post A"),
             {"url": "https://www.example.com/acme", "title": "Other title"},
             ("https://new.example.org/", "New"),
             "https://y.org/b"]
    assert extract_citations(text, known) == [
        Citation("https://www.example.com/acme", "example.com", "Acme review"),
        Citation("https://docs.acme.io/start", "docs.acme.io", "Acme docs"),
        Citation("https://news.site.org/story?id=1", "news.site.org"),
        Citation("https://en.wikipedia.org/wiki/Acme_(company)", "en.wikipedia.org"),
        Citation("http://blog.test/post", "blog.test"),
        Citation("https://x.com/a", "x.com", "Post A"),
        Citation("https://y.org/b", "y.org"),
        Citation("https://new.example.org/", "new.example.org", "New"),
    ]
    assert extract_citations("") == []
    assert extract_citations("no links here", [("https://a.io", None)]) == [
        Citation("https://a.io", "a.io")]


@pytest.mark.parametrize(
    ("url", "domain"),
    [("https://WWW.Example.COM:8080/x", "example.com"), ("http://www2.example.com", "www2.example.com"),
     ("https://user@sub.www.test/", "sub.www.test"), ("example.org/path", "example.org"), ("", "")],
)
def test_domain_of(url, domain):
    assert domain_of(url) == domain


ANSWERS = {
    "a1": "For small teams, Acme CRM is the best choice. Hooli is fine too, and Acme CRM's pricing is great.",
    "a2": "Hooli and Globex lead the market; acme crm trails.",
    "a3": "Hooli is reliable, and Hooli support is fast. Globex is expensive.",
    "a4": "No clear winner here; Hooliganism aside, try a spreadsheet.",
}


def test_score_answer_per_brand():
    assert score_answer(ANSWERS["a1"], BRANDS) == [
        BrandScore("Acme CRM", 1, 2, 1.0, "positive"),
        BrandScore("Hooli", 2, 1, 1.0, "positive"),
        BrandScore("Globex", None, 0, None, None),
        BrandScore("Initech", None, 0, None, None),
    ]
    bare = score_answer(ANSWERS["a3"], BRANDS, with_positions=False, with_sentiment=False)
    assert [(s.position, s.mentions, s.sentiment, s.sentiment_label) for s in bare] == [
        (None, 0, None, None), (None, 2, None, None), (None, 1, None, None), (None, 0, None, None)]


def test_aggregates_by_hand():
    frame = scores_frame((answer_id, score_answer(text, BRANDS)) for answer_id, text in ANSWERS.items())
    assert list(frame.columns) == ["answer_id", "brand", "position", "mentions", "sentiment"]
    assert len(frame) == 16
    out = aggregate(frame, BRANDS, answers=4)
    assert list(out.columns) == AGGREGATE_COLUMNS
    assert list(out["brand"]) == BRANDS
    rows = out.set_index("brand")
    # mentions: Acme CRM 2+1+0 = 3, Hooli 1+1+2 = 4, Globex 0+1+1 = 2; total 9
    # positions: a1 Acme 1, Hooli 2 | a2 Hooli 1, Globex 2, Acme 3 | a3 Hooli 1, Globex 2
    # sentiment per answer: a1 (best, great) 1.0 | a2 0.0 | a3 (reliable, fast / expensive) 1/3
    expected = {
        "Acme CRM": (4, 2, 3, 2 / 4, 3 / 9, 1 / 4, 2.0, 0.5),
        "Hooli": (4, 3, 4, 3 / 4, 4 / 9, 2 / 4, 4 / 3, 4 / 9),
        "Globex": (4, 2, 2, 2 / 4, 2 / 9, 0.0, 2.0, 1 / 6),
    }
    for brand, values in expected.items():
        assert tuple(rows.loc[brand, AGGREGATE_COLUMNS[1:]]) == pytest.approx(values), brand
    initech = rows.loc["Initech"]
    assert (initech["mentioned_answers"], initech["mentions"]) == (0, 0)
    assert (initech["visibility"], initech["share_of_voice"], initech["first_mention_rate"]) == (0, 0, 0)
    assert math.isnan(initech["average_position"]) and math.isnan(initech["average_sentiment"])
    assert out["mentions"].dtype.kind == "i" and out["average_position"].dtype.kind == "f"


def test_aggregate_counts_answers_outside_the_frame_and_ignores_untracked_brands():
    frame = scores_frame([("a", score_answer("Hooli first, then Globex.", ["Hooli", "Globex"]))])
    out = aggregate(frame, ["hooli"], answers=2).set_index("brand")
    # "hooli" matches the frame's "Hooli"; Globex is not tracked, so all voice is Hooli's
    assert tuple(out.loc["hooli", ["visibility", "share_of_voice", "first_mention_rate"]]) == (
        0.5, 1.0, 0.5)
    with pytest.raises(ValueError, match="answers=0"):
        aggregate(frame, ["Hooli"], answers=0)


def test_empty_input():
    assert score_answer("", ["Hooli"]) == [BrandScore("Hooli", None, 0, None, None)]
    assert positions("", ["Hooli"]) == {"Hooli": None}
    for frame in (scores_frame([]), pd.DataFrame()):
        out = aggregate(frame, ["Hooli", "Globex"], answers=0)
        assert list(out["brand"]) == ["Hooli", "Globex"]
        assert out[["answers", "mentioned_answers", "mentions"]].to_numpy().tolist() == [[0, 0, 0]] * 2
        assert out[["visibility", "share_of_voice", "first_mention_rate"]].to_numpy().sum() == 0.0
        assert out[["average_position", "average_sentiment"]].isna().all().all()
    assert aggregate(scores_frame([]), [], answers=0).empty
