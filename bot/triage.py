"""Suggest a complaint's category (and so its OPD) from its free text.

The citizen always confirms or changes the suggestion; this module only ranks categories.

Pipeline (kept small and explainable):

1. **Normalise** the text (`TextNormalizer`): lower-case, drop URLs, e-mails, masked ids,
   digits and punctuation; fold reduplication (``lubang2``, ``lubang-lubang`` → ``lubang``) and
   stretched letters (``bangettt`` → ``banget``); map slang and abbreviations through the
   lexicon file (``gk`` → ``tidak``, ``jln`` → ``jalan``, ``pju`` → ``lampu jalan``); drop
   stopwords; stem each remaining token with Sastrawi (``berlubang`` → ``lubang``), with an LRU
   cache per token because the stemmer is slow.
2. **Match** the category keywords, which go through the same pipeline, against the stem
   sequence.  At each position the longest matching keyword wins, so a phrase such as
   "lampu jalan" consumes its words and "jalan" is not counted again for road damage.
3. **Score**: each keyword has a weight.  A single word weighs its IDF over the categories
   (a stem used by many categories, like ``jalan``, matters less); a phrase weighs more than a
   single word.  Repeats add ``log(count)``.  A category's score is the sum of its hits.
4. **Confidence** is a category's share of the total score plus a constant *prior* mass that
   stands for "none of these": one weak, generic hit gives low confidence; several specific
   hits give high confidence.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Protocol

from Sastrawi.Dictionary.ArrayDictionary import ArrayDictionary
from Sastrawi.Stemmer.Stemmer import Stemmer
from Sastrawi.Stemmer.StemmerFactory import StemmerFactory

DEFAULT_LEXICON = Path(__file__).resolve().parent / "lexicon" / "slang_id.txt"

# Texts longer than this are cut: the topic of a complaint is stated early, and the cap keeps
# the cost of a pasted essay (or garbage) bounded.
MAX_CHARS = 4000
# Tokens longer than this are not stemmed (no Indonesian word is; garbage often is).
MAX_STEM_LEN = 25


class CategoryLike(Protocol):
    """What triage needs from a city profile's category (read-only)."""

    @property
    def key(self) -> str: ...

    @property
    def opd(self) -> str: ...

    @property
    def keywords(self) -> Sequence[str]: ...


@dataclass(frozen=True)
class Suggestion:
    """One ranked guess: category key, its OPD code and a confidence in 0..1."""

    category: str
    opd: str
    confidence: float


@dataclass(frozen=True)
class Hit:
    """One keyword found in a text (for explaining a suggestion)."""

    category: str
    keyword: str
    weight: float
    count: int


# --------------------------------------------------------------------------- lexicon


@dataclass(frozen=True)
class Lexicon:
    """Slang map (word → one or more normal words) and stopwords."""

    slang: dict[str, tuple[str, ...]] = field(default_factory=dict)
    stopwords: frozenset[str] = frozenset()
    keep: frozenset[str] = frozenset()  # words not to stem (their root means something else)


def load_lexicon(path: Path = DEFAULT_LEXICON) -> Lexicon:
    """Read the ``[slang]``, ``[stopwords]`` and ``[keep]`` sections of a lexicon file."""
    slang: dict[str, tuple[str, ...]] = {}
    stopwords: set[str] = set()
    keep: set[str] = set()
    section = ""
    for lineno, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("[") and line.endswith("]"):
            section = line[1:-1].strip()
            continue
        words = line.lower().split()
        if section == "slang":
            if len(words) < 2:
                raise ValueError(f"{path}:{lineno}: slang entry needs a replacement")
            slang[words[0]] = tuple(words[1:])
        elif section == "stopwords":
            stopwords.update(words)
        elif section == "keep":
            keep.update(words)
        else:
            raise ValueError(f"{path}:{lineno}: entry outside [slang] / [stopwords] / [keep]")
    return Lexicon(slang=slang, stopwords=frozenset(stopwords), keep=frozenset(keep))


# --------------------------------------------------------------------------- normaliser

_URL = re.compile(
    r"(?:https?://|www\.)\S+|\S+@\S+\.\S+|\b[\w-]+(?:\.[\w-]+)+\.(?:id|com|net|org)\S*"
)
_PLACEHOLDER = re.compile(r"<[A-Z_]+>")
# "lubang2", "kayu2an" → "lubang", "kayu"; "lubang-lubang", "sampah-sampahnya" → "lubang".
_REDUP_DIGIT = re.compile(r"\b([a-z]{2,})2(?:an|nya)?\b")
_REDUP_HYPHEN = re.compile(r"\b([a-z]{2,})-\1(?:an|nya)?\b")
_STRETCH = re.compile(r"([a-z])\1{2,}")
_TOKEN = re.compile(r"[a-z]+")


def _new_sastrawi_stemmer() -> Stemmer:
    """A Sastrawi stemmer *without* its unbounded result cache (we use an LRU cache)."""
    return Stemmer(ArrayDictionary(StemmerFactory().get_words()))


class TextNormalizer:
    """Turns Indonesian chat text into a list of stems."""

    def __init__(
        self,
        lexicon: Lexicon | None = None,
        stem: Callable[[str], str] | None = None,
        cache_size: int = 50_000,
    ) -> None:
        self.lexicon = lexicon if lexicon is not None else load_lexicon()
        raw_stem = stem if stem is not None else _new_sastrawi_stemmer().stem
        self._stem_cached = lru_cache(maxsize=cache_size)(raw_stem)

    def stem(self, token: str) -> str:
        """Stem one normalised token (cached); short or very long tokens pass unchanged."""
        if len(token) <= 3 or len(token) > MAX_STEM_LEN or token in self.lexicon.keep:
            return token
        return self._stem_cached(token) or token

    def words(self, text: str) -> list[str]:
        """Normalised surface words (slang mapped, stopwords dropped), before stemming."""
        text = _PLACEHOLDER.sub(" ", text[:MAX_CHARS])
        text = _URL.sub(" ", text.lower())
        text = _REDUP_HYPHEN.sub(r"\1", text)
        text = _REDUP_DIGIT.sub(r"\1", text)
        text = _STRETCH.sub(r"\1", text)
        slang, stop = self.lexicon.slang, self.lexicon.stopwords
        out: list[str] = []
        for token in _TOKEN.findall(text):
            for word in slang.get(token, (token,)):
                if word not in stop and len(word) > 1:
                    out.append(word)
        return out

    def stems(self, text: str) -> list[str]:
        """The stem sequence used for keyword matching."""
        return [self.stem(w) for w in self.words(text)]


# --------------------------------------------------------------------------- triage


@dataclass(frozen=True)
class _Keyword:
    text: str
    stems: tuple[str, ...]
    category: int
    weight: float


class Triage:
    """Ranks a city's categories for a complaint text.

    ``fallback`` is the catch-all category key ("lainnya"): it is suggested with confidence 0
    when no keyword matches at all (if the city has it).  ``prior`` is the "none of these"
    mass added to the denominator of the confidence, ``min_confidence`` the threshold below
    which `best` declines to suggest, ``max_gap`` how many words a phrase may skip.
    """

    PHRASE_BONUS = 0.5  # added per extra word of a multi-word keyword

    def __init__(
        self,
        categories: Sequence[CategoryLike],
        fallback: str = "lainnya",
        *,
        normalizer: TextNormalizer | None = None,
        prior: float = 1.0,
        min_confidence: float = 0.4,
        max_gap: int = 1,
    ) -> None:
        self.normalizer = normalizer if normalizer is not None else TextNormalizer()
        self.prior = prior
        self.min_confidence = min_confidence
        self.max_gap = max_gap
        self._keys = [c.key for c in categories]
        self._opds = [c.opd for c in categories]
        self._fallback = self._keys.index(fallback) if fallback in self._keys else None
        self.dropped_keywords: list[str] = []  # keywords that normalise to nothing
        self._index = self._build_index(categories)

    # -- building ------------------------------------------------------------------------

    def _build_index(self, categories: Sequence[CategoryLike]) -> dict[str, list[_Keyword]]:
        per_cat: list[dict[tuple[str, ...], str]] = []
        for cat in categories:
            phrases: dict[tuple[str, ...], str] = {}
            for kw in cat.keywords:
                stems = tuple(self.normalizer.stems(kw))
                if stems:
                    phrases.setdefault(stems, kw)
                else:
                    self.dropped_keywords.append(kw)
            per_cat.append(phrases)
        df: dict[str, int] = {}
        for phrases in per_cat:
            for stem in {s for p in phrases for s in p}:
                df[stem] = df.get(stem, 0) + 1
        n = max(len(categories), 1)

        def idf(stem: str) -> float:
            return math.log((n + 1) / df[stem]) / math.log(n + 1)

        index: dict[str, list[_Keyword]] = {}
        for ci, phrases in enumerate(per_cat):
            for stems, text in phrases.items():
                weight = sum(idf(s) for s in stems) + self.PHRASE_BONUS * (len(stems) - 1)
                index.setdefault(stems[0], []).append(_Keyword(text, stems, ci, weight))
        for bucket in index.values():
            bucket.sort(key=lambda k: -len(k.stems))
        return index

    # -- scoring -------------------------------------------------------------------------

    def _hits(self, text: str) -> dict[_Keyword, int]:
        """Keyword hits over the stem sequence, with counts.

        At each position the longest keyword wins (then the one spanning fewest words) and
        its words are consumed.  A phrase may skip ``max_gap`` words in total, so "jalan
        depan rusak" still matches "jalan rusak".
        """
        stems = self.normalizer.stems(text)
        hits: dict[_Keyword, int] = {}
        covered = [False] * len(stems)
        for i, stem in enumerate(stems):
            if covered[i]:
                continue
            best: tuple[int, int] = (0, 0)  # (words, -span)
            chosen: list[tuple[_Keyword, list[int]]] = []
            for kw in self._index.get(stem, ()):
                if len(kw.stems) < best[0]:
                    break  # bucket is sorted longest first
                positions = self._match_at(stems, covered, i, kw.stems)
                if positions is None:
                    continue
                rank = (len(kw.stems), -(positions[-1] - i))
                if rank > best:
                    best, chosen = rank, [(kw, positions)]
                elif rank == best:
                    chosen.append((kw, positions))
            for kw, positions in chosen:
                hits[kw] = hits.get(kw, 0) + 1
                for p in positions:
                    covered[p] = True
        return hits

    def _match_at(
        self, stems: list[str], covered: list[bool], start: int, phrase: tuple[str, ...]
    ) -> list[int] | None:
        """Positions of ``phrase`` starting at ``start`` (gaps allowed), or None."""
        positions = [start]
        gaps_left = self.max_gap
        j = start + 1
        for want in phrase[1:]:
            while j < len(stems) and (stems[j] != want or covered[j]) and gaps_left > 0:
                j += 1
                gaps_left -= 1
            if j >= len(stems) or stems[j] != want or covered[j]:
                return None
            positions.append(j)
            j += 1
        return positions

    def scores(self, text: str) -> dict[str, float]:
        """Raw score per category key (only categories with at least one hit)."""
        out: dict[int, float] = {}
        for kw, count in self._hits(text).items():
            out[kw.category] = out.get(kw.category, 0.0) + kw.weight * (1 + math.log(count))
        return {self._keys[ci]: s for ci, s in out.items()}

    def explain(self, text: str) -> list[Hit]:
        """The keyword hits behind a suggestion, heaviest first."""
        hits = [
            Hit(self._keys[kw.category], kw.text, round(kw.weight, 3), count)
            for kw, count in self._hits(text).items()
        ]
        return sorted(hits, key=lambda h: -h.weight * h.count)

    def suggest(self, text: str, k: int = 3) -> list[Suggestion]:
        """Up to ``k`` categories, best first.

        When nothing matches: the fallback category with confidence 0, or ``[]`` if the city
        has no fallback category.
        """
        scores = self.scores(text)
        if not scores:
            if self._fallback is None or k <= 0:
                return []
            fb = self._fallback
            return [Suggestion(self._keys[fb], self._opds[fb], 0.0)]
        total = sum(scores.values()) + self.prior
        order = {key: i for i, key in enumerate(self._keys)}
        ranked = sorted(scores.items(), key=lambda kv: (-kv[1], order[kv[0]]))[:k]
        return [
            Suggestion(key, self._opds[order[key]], round(score / total, 4))
            for key, score in ranked
        ]

    def best(self, text: str) -> Suggestion | None:
        """The top suggestion, or None when its confidence is below ``min_confidence``."""
        top = self.suggest(text, k=1)
        if not top or top[0].confidence < self.min_confidence:
            return None
        return top[0]
