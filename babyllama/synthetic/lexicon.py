"""The lexicon: word lists read from ``synthetic/lexicon/*`` (one entry a line, most frequent first), Zipfian sampling.

Real English words head each list; the tail is pseudo-words (``blukusk``, ``sloutrat``) with regular morphology, each
with its own arbitrary class (person/animal/thing/food/place, transitive/intransitive, gender) that a model can only
learn from how the corpus uses it. About 6,400 word types in all, so a small student cannot memorise them.
"""

from __future__ import annotations

import bisect
import itertools
from collections import namedtuple
from pathlib import Path

HERE = Path(__file__).resolve().parent / "lexicon"
ZIPF_SHIFT = 2.7  # p(rank r) ~ 1 / (r + shift): the first words are frequent, the tail is seen a handful of times

Noun = namedtuple("Noun", "sg pl cls gender")    # cls: p person, a animal, t thing, f food, l place; gender m f n
Verb = namedtuple("Verb", "base s past pp ing frame")  # frame: T needs an object, I takes none
Name = namedtuple("Name", "name gender")


def _rows(file: str) -> list[list[str]]:
    lines = (HERE / file).read_text(encoding="utf-8").splitlines()
    return [line.split() for line in lines if line.strip() and not line.startswith("#")]


NOUNS = tuple(Noun(*r) for r in _rows("nouns.tsv"))
VERBS = tuple(Verb(*r) for r in _rows("verbs.tsv"))
ADJECTIVES = tuple(r[0] for r in _rows("adjectives.txt"))
NAMES = tuple(Name(*r) for r in _rows("names.tsv"))

NOUNS_BY = {c: tuple(n for n in NOUNS if n.cls in c) for c in ("p", "a", "t", "f", "l", "pa", "tf", "patf")}
TRANSITIVE = tuple(v for v in VERBS if v.frame == "T")
INTRANSITIVE = tuple(v for v in VERBS if v.frame == "I")
IRREGULAR_PP = tuple(v for v in TRANSITIVE if v.past != v.pp)  # broke/broken, saw/seen
IRREGULAR_PLURAL = tuple(n for n in NOUNS if n.pl not in (n.sg + "s", n.sg + "es", n.sg[:-1] + "ies"))  # men, mice
GENDERED = tuple(n for n in NOUNS_BY["p"] if n.gender in "mf")
NAMES_BY = {g: tuple(n for n in NAMES if n.gender == g) for g in "mf"}
CLASS_WORD = {"p": "person", "a": "animal", "t": "thing", "f": "food", "l": "place"}  # hypernyms

_CUM: dict[int, list[float]] = {}


def zipf_index(rng, n: int) -> int:
    """A rank in [0, n) drawn with p ~ 1 / (rank + ZIPF_SHIFT)."""
    cum = _CUM.get(n)
    if cum is None:
        cum = _CUM[n] = list(itertools.accumulate(1.0 / (i + ZIPF_SHIFT) for i in range(n)))
    return bisect.bisect_right(cum, rng.random() * cum[-1])


def word_types() -> set[str]:
    """Every open-class word form of the lexicon."""
    out = {f for n in NOUNS for f in (n.sg, n.pl)} | {f for v in VERBS for f in v[:5]} | set(ADJECTIVES)
    return out | {n.name for n in NAMES}
