"""The embedded synthetic corpus: a small language with a Zipfian lexicon of about 6,400 word types, agreement across
attractors and relative clauses, filler-gap dependencies, islands, NPI scope and clauses nested three deep.

    python -m babyllama.synthetic --out data/synthetic        # the BabyLM layout and the minimal pairs (``write_corpus``)

``run_pipeline.py`` writes it when no real data is given. Modules: ``lexicon`` (word lists in ``lexicon/``, Zipfian
sampling), ``grammar`` (the sentence generator and spelling), ``paradigms`` (BLiMP's 12 phenomena and the supplement's
tasks as minimal pairs), ``writer`` (the ten sources with their quirks, the pair files). Output is a pure function of
the seed: every file draws from its own ``random.Random``.

For fine-tuning tasks, ``acceptability`` yields labelled grammatical and ungrammatical sentences (CoLA-like) and
``feature_pairs`` sentences whose linguistic and surface features agree or conflict (MSGS-like).
"""

from __future__ import annotations

from random import Random
from typing import Iterator

from babyllama.synthetic.grammar import Grammar, plain, verb_group
from babyllama.synthetic.lexicon import INTRANSITIVE, TRANSITIVE
from babyllama.synthetic.paradigms import PARADIGMS, blimp_pair
from babyllama.synthetic.writer import SOURCES, minimal_pairs, split_words, write_corpus

__all__ = ["write_corpus", "minimal_pairs", "split_words", "SOURCES", "PARADIGMS", "acceptability", "feature_pairs"]


def acceptability(n: int, seed: int = 0, paradigms=None) -> Iterator[dict]:
    """``n`` CoLA-like examples {"sentence", "label" (1 grammatical, 0 not), "phenomenon", "uid"}: each from a fresh
    minimal pair of a paradigm drawn in turn, its good or its bad sentence with equal chance."""
    uids = list(paradigms or PARADIGMS)
    unknown = [u for u in uids if u not in PARADIGMS]
    if unknown:
        raise ValueError(f"unknown paradigm {unknown[0]!r}; known: {', '.join(PARADIGMS)}")
    g, r = Grammar(Random(f"cola-{seed}")), Random(f"cola-label-{seed}")
    for i in range(n):
        uid = uids[i % len(uids)]
        good, bad = blimp_pair(g, uid)
        label = int(r.random() < 0.5)
        yield {"sentence": good if label else bad, "label": label, "phenomenon": PARADIGMS[uid][1], "uid": uid}


LINGUISTIC = {"plural_subject": "the main clause's subject is plural (its verb agrees; attractors may be singular)",
              "main_verb_ing": "the main verb is progressive -ing (an -ing may also sit in a relative clause)"}
SURFACE = {"length": "the sentence has more than 9 words", "has_the": "the word 'the' occurs"}


def _clause(g: Grammar, value: bool, feature: str) -> list[str]:
    s = g.np("pa", ("pl" if value else "sg") if feature == "plural_subject" else None, depth=1)
    ing = value if feature == "main_verb_ing" else g.coin(0.3)
    tense = g.choice(("prog", "pprog")) if ing else g.choice(("pres", "past", "perf", "modal"))
    if g.coin(0.3):
        return s.toks + verb_group(g.pick(INTRANSITIVE), tense, s.num, g.modal())
    return s.toks + verb_group(g.pick(TRANSITIVE), tense, s.num, g.modal()) + g.np(depth=2).toks


def feature_pairs(n: int, seed: int = 0, linguistic: str = "plural_subject", surface: str = "length") -> Iterator[dict]:
    """``n`` MSGS-like examples {"sentence", "linguistic", "surface", "agree"}: the four combinations of a linguistic
    feature (``LINGUISTIC``) and a surface feature (``SURFACE``) in turn, so ``agree`` examples are ambiguous training
    data and the others tell which feature a classifier generalises on."""
    if linguistic not in LINGUISTIC or surface not in SURFACE:
        raise ValueError(f"linguistic must be one of {list(LINGUISTIC)} and surface one of {list(SURFACE)}, "
                         f"got {linguistic!r}, {surface!r}")
    g = Grammar(Random(f"msgs-{seed}-{linguistic}-{surface}"))
    for i in range(n):
        want_l, want_s = bool(i % 2), bool(i // 2 % 2)
        while True:  # draw until the surface feature comes out as wanted (a few tries)
            toks = _clause(g, want_l, linguistic)
            text = plain(toks + ["."])
            s = len(text.split()) > 9 if surface == "length" else "the" in text.lower().split()
            if s == want_s:
                break
        yield {"sentence": text, "linguistic": want_l, "surface": want_s, "agree": want_l == want_s}
