"""The BabyLM layout: ten source files per split, each with its source's quirks, and the minimal-pair files.

    out/babylm_10M/<source>.train    words split like the real 10M track
    out/babylm_dev/<source>.dev
    out/blimp/<uid>.jsonl            BLiMP-format pairs (linguistics_term set) and supplement tasks (none)

The quirks give the cleaner (``mrclean.py``) work: HTML tags and ``= = Title = =`` headings in the Wikipedias, credit
lines and ``[laughs]`` / ``(music)`` / ``♪ ... ♪`` cues in OpenSubtitles, upper-case OCR lines with ``l`` for ``I``
in QED, pre-tokenized text (``do n't``, ``dog .``) in AO-CHILDES and CBT, ``_BOOK_TITLE_`` lines and `````/``''``
quotes in CBT, doubled spaces and spaces before punctuation in Gutenberg / BNC / children's stories. Dialogue turns
carry speaker labels (``A:`` / ``B:`` in Switchboard as in BabyLM 2024, names elsewhere), the supplement's multi-line
format.
"""

from __future__ import annotations

import json
from pathlib import Path
from random import Random

from babyllama.synthetic.grammar import Grammar, plain, tokenized
from babyllama.synthetic.lexicon import NAMES, NOUNS_BY
from babyllama.synthetic.paradigms import PARADIGMS, SUPPLEMENT, blimp_pair

# Millions of words per source in the BabyLM 2023 strict-small (10M) track; only the proportions are used.
SOURCE_SHARES = {"aochildes": 0.44, "bnc_spoken": 0.86, "cbt": 0.57, "children_stories": 0.34, "gutenberg": 0.99,
                 "open_subtitles": 3.09, "qed": 1.04, "simple_wikipedia": 1.52, "switchboard": 0.12, "wikipedia": 0.99}
SOURCES = tuple(SOURCE_SHARES)
TRAIN_DIR, DEV_DIR, BLIMP_DIR = "babylm_10M", "babylm_dev", "blimp"
# Embedding depth per source (0-3): child-directed speech is shallow, books and encyclopedias nest deepest.
DEPTH = {"aochildes": 1, "switchboard": 2, "bnc_spoken": 2, "open_subtitles": 2, "qed": 2, "cbt": 3,
         "children_stories": 3, "gutenberg": 3, "simple_wikipedia": 2, "wikipedia": 3}

_CREDITS = ("Subtitles by {}", "Synced and corrected by {}", "Subtitles downloaded from www.OpenSubtitles.org",
            "Sync and corrections by {}")
_CREDIT_NAMES = ("explosiveskull", "GoldenBeard", "Marty", "n17t01", "SubCentral", "Lucy Smith")
_CUES = ("[laughs]", "[sighs]", "(music)", "(door closes)", "[applause]", "(laughing)", "[music playing]")
_SONGS = ("♪ la la la ♪", "♪ twinkle twinkle little star ♪", "♪ happy birthday to you ♪", "♪ la la ♪")
_WIKI_TOPICS = ("History", "Life", "Food", "Habitat", "Name", "Description", "Behaviour", "Other websites", "Culture")
_REFS = ("Smith , John ( 2004 ) . Animals of the World . p. 12", "{{cite web | title = Animals }}",
         "Brown 1998 , p. 45", "{{cite book | author = Miller | year = 2010 }}")
_BOOKS = ("The_Little_Red_Hen", "Peter_Rabbit", "The_Three_Bears", "Jack_and_the_Beanstalk", "Black_Beauty",
          "Alice_in_Wonderland", "The_Secret_Garden")
_FILLERS = (["uh"], ["um"], ["well", ","], ["you", "know", ","], ["yeah", ","], ["so"])


def _messy(line: str, r: Random) -> str:
    """Gutenberg/BNC/stories noise: a doubled space and/or a space before punctuation."""
    if r.random() < 0.6 and " " in line:
        i = r.choice([i for i, c in enumerate(line) if c == " "])
        line = line[:i] + "  " + line[i + 1:]
    if r.random() < 0.7:
        for p in (".", ",", "?", "!"):
            j = line.find(p, 1)
            if j > 0 and line[j - 1] != " ":
                return line[:j] + " " + line[j:]
    return line


def _exchange(g: Grammar, r: Random, labels=None) -> list[str]:
    """Two dialogue lines with speaker labels: names, or the given pair."""
    a, b = labels or (g.pick(NAMES).name, g.pick(NAMES[1:]).name)
    return [f"{who}: {plain(t)}" for who, t in zip((a, b if b != a else NAMES[0].name), g.exchange())]


def _aochildes(g, r):
    while True:
        yield tokenized(g.sentence(), lower=True)


def _switchboard(g, r):
    while True:
        for i, line in enumerate(_exchange(g, r, ("A", "B"))):
            if i == 0 and r.random() < 0.3:  # a filler after the label
                label, text = line.split(": ", 1)
                line = f"{label}: {plain(list(r.choice(_FILLERS)) + [text[0].lower() + text[1:]])}"
            yield line


def _bnc(g, r):
    while True:
        lines = _exchange(g, r) if r.random() < 0.4 else [plain(g.sentence())]
        yield from (_messy(line, r) if r.random() < 0.1 else line for line in lines)


def _open_subtitles(g, r):
    while True:
        x = r.random()
        if x < 0.015:
            yield r.choice(_CREDITS).format(r.choice(_CREDIT_NAMES))
        elif x < 0.045:
            yield r.choice(_CUES)
        elif x < 0.07:
            yield r.choice(_SONGS)
        elif x < 0.1:
            yield r.choice(_CUES) + " " + plain(g.sentence())
        elif x < 0.4:
            yield from _exchange(g, r)
        else:
            line = plain(g.sentence())
            yield ("- " + line) if r.random() < 0.1 else line


def _qed(g, r):
    while True:
        toks = g.sentence()
        if r.random() < 0.08:  # OCR'd caption: upper case, I read as l
            yield tokenized(toks).upper().replace("I", "l")
        else:
            yield plain(toks)


def _narrative(g: Grammar, r: Random) -> list[str]:
    """A sentence, sometimes as quoted speech (`` ... '' tokens)."""
    toks = g.sentence()
    if r.random() < 0.15:
        s = g.subject(1, p_pron=0.0)
        end = [","] if toks[-1] == "." else [toks[-1]]
        return ["``"] + toks[:-1] + end + ["''", "said"] + s.toks + ["."]
    return toks


def _cbt(g, r):
    while True:
        yield f"_BOOK_TITLE_ : {r.choice(_BOOKS)}.txt.out"
        for _ in range(r.randint(25, 60)):
            yield tokenized(_narrative(g, r))


def _paragraphs(lo, hi):
    def gen(g, r):
        while True:
            line = " ".join(plain(_narrative(g, r)) for _ in range(r.randint(lo, hi)))
            yield _messy(line, r) if r.random() < 0.1 else line
    return gen


def _wiki(lo, hi, level):
    eq = " ".join(["="] * level)

    def gen(g, r):
        while True:
            title = r.choice(_WIKI_TOPICS) if r.random() < 0.5 else g.pick(NOUNS_BY["pa"]).pl.capitalize()
            yield f"{eq} {title} {eq}"
            for _ in range(r.randint(6, 12)):
                sents = [plain(g.hypernym() + ["."] if r.random() < 0.15 else g.sentence())
                         for _ in range(r.randint(lo, hi))]
                x = r.random()
                if x < 0.04:
                    sents[r.randrange(len(sents))] += f"<ref>{r.choice(_REFS)}</ref>"
                elif x < 0.07:
                    sents.insert(r.randint(1, len(sents)), "<br />")
                elif x < 0.1:
                    w = sents[0].split(" ")
                    i = r.randrange(len(w))
                    if w[i].isalpha():
                        w[i] = f"<b>{w[i]}</b>"
                        sents[0] = " ".join(w)
                    else:
                        sents[0] = "<b>" + sents[0] + "</b>"
                yield " ".join(sents)
    return gen


GENERATORS = {"aochildes": _aochildes, "bnc_spoken": _bnc, "cbt": _cbt, "children_stories": _paragraphs(2, 6),
              "gutenberg": _paragraphs(3, 8), "open_subtitles": _open_subtitles, "qed": _qed,
              "simple_wikipedia": _wiki(1, 4, 2), "switchboard": _switchboard, "wikipedia": _wiki(2, 6, 3)}


def source_lines(source: str, n_words: int, seed: int, split: str) -> list[str]:
    """Lines of one source until they hold at least ``n_words`` words (deterministic in seed, source, split)."""
    r = Random(f"babylm-{seed}-{split}-{source}")
    g = Grammar(Random(f"grammar-{seed}-{split}-{source}"), max_depth=DEPTH[source])
    lines, total, it = [], 0, GENERATORS[source](g, r)
    while total < n_words:
        line = next(it)
        lines.append(line)
        total += len(line.split())
    return lines


def split_words(total: int) -> dict[str, int]:
    """Words per source for a split of ``total`` words, in BabyLM proportions (sums exactly to ``total``)."""
    z = sum(SOURCE_SHARES.values())
    out = {s: int(total * v / z) for s, v in SOURCE_SHARES.items()}
    out["open_subtitles"] += total - sum(out.values())
    return out


def minimal_pairs(uid: str, n: int, seed: int) -> list[dict]:
    """``n`` pairs of a BLiMP paradigm or supplement task, as JSON-lines records (distinct where the grammar allows)."""
    g = Grammar(Random(f"blimp-{seed}-{uid}"))
    rows, seen, tries = [], set(), 0
    while len(rows) < n:
        good, bad = blimp_pair(g, uid) if uid in PARADIGMS else SUPPLEMENT[uid](g)
        tries += 1
        if good in seen and tries < 20 * n:
            continue
        seen.add(good)
        row = {"sentence_good": good, "sentence_bad": bad}
        if uid in PARADIGMS:
            field, term, _ = PARADIGMS[uid]
            row.update(field=field, linguistics_term=term, UID=uid, simple_LM_method=True, one_prefix_method=False,
                       two_prefix_method=False, lexically_identical=False)
        else:
            row["UID"] = uid
        rows.append({**row, "pairID": str(len(rows))})
    return rows


def write_corpus(out_dir, seed: int = 0, train_words: int = 200_000, dev_words: int = 40_000,
                 pairs_per_paradigm: int = 200) -> dict:
    """Write the BabyLM layout and the pair files under ``out_dir``.

    Returns {"root", "train_dir", "dev_dir", "blimp_dir": Path, "train"/"dev": {source: Path}, "blimp": {uid: Path},
    "words": {"train": {source: n}, "dev": {source: n}}}.
    """
    for name, v in (("train_words", train_words), ("dev_words", dev_words), ("pairs_per_paradigm", pairs_per_paradigm)):
        if not isinstance(v, int) or v < 0:
            raise ValueError(f"{name} must be a non-negative integer, got {v!r}")
    root = Path(out_dir)
    result = {"root": root, "train_dir": root / TRAIN_DIR, "dev_dir": root / DEV_DIR, "blimp_dir": root / BLIMP_DIR,
              "train": {}, "dev": {}, "blimp": {}, "words": {"train": {}, "dev": {}}}
    splits = (("train", train_words, TRAIN_DIR, ".train"), ("dev", dev_words, DEV_DIR, ".dev"))
    for split, total, folder, suffix in splits:
        (root / folder).mkdir(parents=True, exist_ok=True)
        for source, n in split_words(total).items():
            lines = source_lines(source, n, seed, split)
            path = root / folder / f"{source}{suffix}"
            path.write_text("".join(line + "\n" for line in lines), encoding="utf-8", newline="\n")
            result[split][source] = path
            result["words"][split][source] = sum(len(line.split()) for line in lines)
    (root / BLIMP_DIR).mkdir(parents=True, exist_ok=True)
    for uid in (*PARADIGMS, *SUPPLEMENT):
        path = root / BLIMP_DIR / f"{uid}.jsonl"
        rows = minimal_pairs(uid, pairs_per_paradigm, seed)
        path.write_text("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows), encoding="utf-8",
                        newline="\n")
        result["blimp"][uid] = path
    return result
