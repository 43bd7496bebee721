"""Brand scoring of AI answers as public trackers do it (pure functions; API_SHAPES.md D).

Per answer: each tracked brand's position (order of first whole-word mention), mention count
and a word-list sentiment around its first mention; the answer's citations. Over many
answers: visibility, share of voice, first-mention rate, average position and sentiment.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import pandas as pd

from core.brands.citations import Citation, domain_of

POSITIVE_WORDS: frozenset[str] = frozenset({
    "excellent", "reliable", "best", "great", "loved", "recommended", "value", "fast", "easy",
    "innovative", "good", "outstanding", "impressive", "powerful", "intuitive", "popular",
    "trusted", "robust", "affordable", "seamless", "efficient", "flexible", "secure", "superior",
    "favorite", "favourite", "praised", "helpful", "love", "recommend", "strong", "excels",
})
NEGATIVE_WORDS: frozenset[str] = frozenset({
    "expensive", "buggy", "poor", "disappointing", "slow", "difficult", "outdated", "complaints",
    "worst", "unreliable", "bad", "clunky", "confusing", "overpriced", "frustrating", "problems",
    "crashes", "complicated", "weak", "costly", "insecure", "inferior", "drawbacks", "criticized",
    "criticised", "complaint", "terrible", "awful", "hate", "hated", "laggy", "lacking",
})
POSITIVE_THRESHOLD = 0.2  # label "positive" above this score
NEGATIVE_THRESHOLD = -0.2  # label "negative" below this score

SCORE_COLUMNS = ["answer_id", "brand", "position", "mentions", "sentiment"]
AGGREGATE_COLUMNS = ["brand", "answers", "mentioned_answers", "mentions", "visibility",
                     "share_of_voice", "first_mention_rate", "average_position",
                     "average_sentiment"]

_WORD = re.compile(r"\w+(?:['’]\w+)*")
# [title](url) with an optional "link title"; one level of parentheses inside the URL
# (Wikipedia style). A leading "!" marks an image, which is masked but not a citation.
_MARKDOWN_LINK = re.compile(
    r"(!?)\[([^\]\n]*)\]\(\s*<?(https?://[^\s()<>]*(?:\([^\s()<>]*\)[^\s()<>]*)*)>?"
    r"(?:\s+[\"'][^\"'\n]*[\"'])?\s*\)",
    re.IGNORECASE,
)
# Brackets and quotes never belong to a bare URL, so "https://a.com[1]" stops before the marker.
_BARE_URL = re.compile(r"https?://[^\s<>\"\[\]`]+", re.IGNORECASE)
_TRAILING = ".,;:!?)]}'\"*"  # the spec's list, plus "*" from markdown bold around a URL
_CLOSERS = {")": "(", "]": "[", "}": "{"}


@dataclass(frozen=True)
class BrandScore:
    """One brand in one answer; position, sentiment and label are None when not mentioned."""

    brand: str
    position: int | None
    mentions: int
    sentiment: float | None
    sentiment_label: str | None


@lru_cache(maxsize=1024)
def brand_pattern(name: str) -> re.Pattern[str]:
    """Whole-word, case-insensitive pattern for a brand name (surrounding spaces ignored)."""
    name = name.strip()
    if not name:
        raise ValueError("brand name must not be empty")
    return re.compile(r"(?<!\w)" + re.escape(name) + r"(?!\w)", re.IGNORECASE)


def _unique_brands(brands: Sequence[str]) -> list[str]:
    """Brands stripped, validated and de-duplicated case-insensitively, first spelling kept."""
    if isinstance(brands, str):
        raise TypeError("brands must be a sequence of names, not a single string")
    seen: set[str] = set()
    out: list[str] = []
    for brand in brands:
        brand_pattern(brand)  # validates
        name = brand.strip()
        if name.casefold() not in seen:
            seen.add(name.casefold())
            out.append(name)
    return out


def first_mentions(text: str, brands: Sequence[str]) -> dict[str, int]:
    """Brand -> character index of its first mention, for mentioned brands only."""
    found: dict[str, int] = {}
    for brand in _unique_brands(brands):
        match = brand_pattern(brand).search(text)
        if match:
            found[brand] = match.start()
    return found


def positions(text: str, brands: Sequence[str]) -> dict[str, int | None]:
    """Brand -> 1, 2, 3... in order of first mention; None when not mentioned.

    Ties (one name inside another, "Acme" in "Acme CRM") go to the longer name, then to the
    order of `brands`.
    """
    unique = _unique_brands(brands)
    found = first_mentions(text, unique)
    ranked = sorted(found, key=lambda b: (found[b], -len(b), unique.index(b)))
    rank = {brand: i for i, brand in enumerate(ranked, start=1)}
    return {brand: rank.get(brand) for brand in unique}


def count_mentions(text: str, brand: str) -> int:
    """Number of whole-word, case-insensitive occurrences of the brand."""
    return sum(1 for _ in brand_pattern(brand).finditer(text))


def sentiment_score(text: str, brand: str, window: int = 150) -> float | None:
    """(pos - neg) / (pos + neg) over words within `window` characters of the first mention.

    Only words lying wholly inside the window count, and words inside any mention of the
    brand itself are skipped ("Best Buy" is not praise). 0.0 when no listed word is near;
    None when the brand is not mentioned.
    """
    if window < 0:
        raise ValueError("window must not be negative")
    pattern = brand_pattern(brand)
    first = pattern.search(text)
    if first is None:
        return None
    lo, hi = first.start() - window, first.end() + window
    # Whole-text scans: with pos/endpos a word cut by the window edge would match in part.
    own = [m.span() for m in pattern.finditer(text)]
    pos = neg = 0
    for word in _WORD.finditer(text):
        if word.end() > hi:
            break
        if word.start() < lo:
            continue
        if any(start <= word.start() and word.end() <= end for start, end in own):
            continue
        token = word.group().lower()
        pos += token in POSITIVE_WORDS
        neg += token in NEGATIVE_WORDS
    return (pos - neg) / (pos + neg) if pos + neg else 0.0


def sentiment_label(score: float) -> str:
    """"positive" above 0.2, "negative" below -0.2, else "neutral" (boundaries are neutral)."""
    if score > POSITIVE_THRESHOLD:
        return "positive"
    if score < NEGATIVE_THRESHOLD:
        return "negative"
    return "neutral"


def _trim_bare_url(url: str) -> str:
    """Strip trailing punctuation, keeping a closing bracket that balances one in the URL."""
    while url and url[-1] in _TRAILING:
        opener = _CLOSERS.get(url[-1])
        if opener and url.count(opener) >= url.count(url[-1]):
            break
        url = url[:-1]
    return url


def _known_pair(item: Any) -> tuple[str | None, str | None]:
    """(url, title) from a str, a (url, title) tuple, a mapping or an object with .url/.title."""
    if isinstance(item, str):
        return item, None
    if isinstance(item, Mapping):
        return item.get("url"), item.get("title")
    if isinstance(item, tuple | list):
        return (item[0] if item else None), (item[1] if len(item) > 1 else None)
    return getattr(item, "url", None), getattr(item, "title", None)


def extract_citations(text: str, known: Iterable[Any] = ()) -> list[Citation]:
    """Markdown links, then bare http(s) URLs, then `known` ones; unique by URL, in that order.

    A later duplicate (or a known citation) only fills a missing title.
    """
    titles: dict[str, str | None] = {}

    def add(url: str | None, title: str | None) -> None:
        url = (url or "").strip()
        title = (title or "").strip() or None
        if not url:
            return
        if titles.get(url) is None:
            titles[url] = title

    def take_link(match: re.Match[str]) -> str:
        if not match.group(1):
            add(match.group(3), match.group(2))
        return " " * len(match.group())  # so the bare-URL pass does not see it again

    rest = _MARKDOWN_LINK.sub(take_link, text)
    for match in _BARE_URL.finditer(rest):
        add(_trim_bare_url(match.group()), None)
    for item in known:
        add(*_known_pair(item))
    return [Citation(url=url, domain=domain_of(url), title=title) for url, title in titles.items()]


def score_answer(text: str, brands: Sequence[str], *, with_positions: bool = True,
                 with_sentiment: bool = True) -> list[BrandScore]:
    """One BrandScore per (de-duplicated) brand, in the order of `brands`."""
    unique = _unique_brands(brands)
    ranks = positions(text, unique)
    scores = []
    for brand in unique:
        mentions = count_mentions(text, brand)
        score = sentiment_score(text, brand) if with_sentiment and mentions else None
        scores.append(BrandScore(
            brand=brand,
            position=ranks[brand] if with_positions else None,
            mentions=mentions,
            sentiment=score,
            sentiment_label=None if score is None else sentiment_label(score),
        ))
    return scores


def scores_frame(scored: Iterable[tuple[Any, Sequence[BrandScore]]]) -> pd.DataFrame:
    """(answer_id, scores) pairs -> rows of answer_id, brand, position, mentions, sentiment.

    position and sentiment are floats with NaN for None; mentions is int.
    """
    rows = [(answer_id, s.brand, s.position, s.mentions, s.sentiment)
            for answer_id, scores in scored for s in scores]
    frame = pd.DataFrame(rows, columns=SCORE_COLUMNS)
    return frame.astype({"position": float, "mentions": int, "sentiment": float})


def aggregate(scores: pd.DataFrame, brands: Sequence[str], answers: int) -> pd.DataFrame:
    """One row per brand (order of `brands`) with the visibility aggregates over `answers`.

    `answers` counts every answer considered, including those that mention no brand, so it
    may exceed the answers present in `scores`. Rows for brands not in `brands` are ignored;
    brand names match case-insensitively. Rates are 0.0 when there is nothing to divide by;
    average_position and average_sentiment are float NaN when the brand was never mentioned
    (convert with `frame.astype(object).where(frame.notna(), None)` for JSON/SQL).
    """
    unique = _unique_brands(brands)
    if answers < 0:
        raise ValueError("answers must not be negative")
    if scores.empty and len(scores.columns) == 0:
        scores = pd.DataFrame(columns=SCORE_COLUMNS)
    missing = [c for c in SCORE_COLUMNS if c not in scores.columns]
    if missing:
        raise ValueError(f"scores frame lacks columns: {', '.join(missing)}")

    canonical = {brand.casefold(): brand for brand in unique}
    df = scores[SCORE_COLUMNS].copy()
    df["brand"] = df["brand"].astype(str).str.strip().str.casefold().map(canonical)
    df = df[df["brand"].notna()]
    if df["answer_id"].nunique() > answers:
        raise ValueError(f"answers={answers} is less than the {df['answer_id'].nunique()} "
                         "answers in the scores frame")
    df["mentions"] = pd.to_numeric(df["mentions"]).fillna(0).astype(int)
    df["position"] = pd.to_numeric(df["position"]).astype(float)
    df["sentiment"] = pd.to_numeric(df["sentiment"]).astype(float)

    mentioned = df[df["mentions"] > 0].groupby("brand")
    out = pd.DataFrame(index=pd.Index(unique, name="brand"))
    out["answers"] = answers
    out["mentioned_answers"] = mentioned["answer_id"].nunique().reindex(unique, fill_value=0)
    out["mentions"] = df.groupby("brand")["mentions"].sum().reindex(unique, fill_value=0)
    firsts = df[df["position"] == 1].groupby("brand")["answer_id"].nunique()
    total_mentions = int(out["mentions"].sum())
    out["visibility"] = out["mentioned_answers"] / answers if answers else 0.0
    out["share_of_voice"] = out["mentions"] / total_mentions if total_mentions else 0.0
    out["first_mention_rate"] = (firsts.reindex(unique, fill_value=0) / answers
                                 if answers else 0.0)
    out["average_position"] = mentioned["position"].mean().reindex(unique)
    out["average_sentiment"] = mentioned["sentiment"].mean().reindex(unique)
    out = out.reset_index().astype({
        "answers": int, "mentioned_answers": int, "mentions": int, "visibility": float,
        "share_of_voice": float, "first_mention_rate": float, "average_position": float,
        "average_sentiment": float})
    return out[AGGREGATE_COLUMNS]
