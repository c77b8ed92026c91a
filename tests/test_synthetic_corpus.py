"""Tests for synthetic_corpus.py: layout, determinism, sizes, per-source quirks, BLiMP-format pairs, grammaticality."""

import json
import re
from pathlib import Path

import pytest

import synthetic_corpus as sc

TRAIN_WORDS, DEV_WORDS, PAIRS = 60_000, 12_000, 60

# linguistics_term values that occur in the real BLiMP, and their fields
BLIMP_TERMS = {"anaphor_agreement": "morphology", "argument_structure": "syntax", "binding": "syntax",
               "control_raising": "syntax_semantics", "determiner_noun_agreement": "morphology",
               "ellipsis": "syntax", "filler_gap_dependency": "syntax", "irregular_forms": "morphology",
               "island_effects": "syntax", "npi_licensing": "semantics", "quantifiers": "semantics",
               "subject_verb_agreement": "morphology", "s-selection": "syntax_semantics"}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    out = tmp_path_factory.mktemp("synthetic") / "data"
    return sc.write_corpus(out, seed=0, train_words=TRAIN_WORDS, dev_words=DEV_WORDS, pairs_per_paradigm=PAIRS)


def all_files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def read_pairs(res) -> dict[str, list[dict]]:
    return {uid: [json.loads(l) for l in p.read_text(encoding="utf-8").splitlines()] for uid, p in res["blimp"].items()}


def normalize(text: str) -> str:
    """Lower-case, no tags or quotes, punctuation and clitics as separate tokens: plain and tokenized text agree."""
    text = re.sub(r"<[^>]*>", " ", text).replace("``", " ").replace("''", " ").replace('"', " ")
    text = re.sub(r"n't\b", " n't", text)
    text = re.sub(r"'(s|re|m|ll)\b", r" '\1", text)
    text = re.sub(r"([.,?!])", r" \1 ", text)
    return " ".join(text.lower().split())


def sentences(text: str) -> list[str]:
    return [s.strip() + " ." for s in re.split(r"[.?!](?:\s|$)", normalize(text) + " ") if s.strip()]


def train_text(res) -> str:
    return "\n".join(p.read_text(encoding="utf-8") for p in res["train"].values())


# -- layout, sizes, determinism ------------------------------------------------------------------------------------------

def test_layout(corpus):
    root = corpus["root"]
    for s in sc.SOURCES:
        assert (root / "babylm_10M" / f"{s}.train").is_file()
        assert (root / "babylm_dev" / f"{s}.dev").is_file()
    assert len(sc.SOURCES) == 10
    assert {p.name for p in (root / "blimp").iterdir()} == {f"{uid}.jsonl" for uid in sc.Grammar.PARADIGMS}
    assert set(corpus["train"]) == set(corpus["dev"]) == set(sc.SOURCES)
    for p in list(corpus["train"].values()) + list(corpus["dev"].values()):
        text = p.read_text(encoding="utf-8")
        assert text.endswith("\n") and "\n\n" not in text and "\r" not in text


def test_word_counts(corpus):
    for split, total in (("train", TRAIN_WORDS), ("dev", DEV_WORDS)):
        counts = {s: len(p.read_text(encoding="utf-8").split()) for s, p in corpus[split].items()}
        assert counts == corpus["words"][split]
        assert abs(sum(counts.values()) - total) <= 0.1 * total
        targets = sc.split_words(total)
        for s, n in counts.items():
            assert abs(n - targets[s]) <= max(0.1 * targets[s], 80), (split, s, n, targets[s])
    big = corpus["words"]["train"]
    assert big["open_subtitles"] == max(big.values()) and big["switchboard"] == min(big.values())


def test_deterministic_by_seed(tmp_path):
    kw = dict(train_words=8000, dev_words=2000, pairs_per_paradigm=20)
    a = all_files(sc.write_corpus(tmp_path / "a", seed=3, **kw)["root"])
    b = all_files(sc.write_corpus(tmp_path / "b", seed=3, **kw)["root"])
    c = all_files(sc.write_corpus(tmp_path / "c", seed=4, **kw)["root"])
    assert a == b
    assert a.keys() == c.keys()
    assert all(a[k] != c[k] for k in a)


def test_train_and_dev_differ(corpus):
    for s in sc.SOURCES:
        train = set(corpus["train"][s].read_text(encoding="utf-8").splitlines())
        dev = corpus["dev"][s].read_text(encoding="utf-8").splitlines()
        assert sum(line in train for line in dev) < 0.5 * len(dev)


# -- quirks ------------------------------------------------------------------------------------------------------------

QUIRKS = {
    "wikipedia": [r"^= = = .+ = = =$", r"<ref>.*</ref>", r"<br />", r"<b>[^<]+</b>"],
    "simple_wikipedia": [r"^= = .+ = =$", r"<ref>.*</ref>", r"<br />", r"<b>[^<]+</b>"],
    "open_subtitles": [r"^(Subtitles by|Synced and corrected by) ", r"\[[a-z ]+\]", r"\([a-z ]+\)", r"♪ .+ ♪"],
    "qed": [r"^(?=.*l)[A-Zl0-9 ,.?!'\"-]+$"],
    "aochildes": [r" n't ", r" 's ", r"\w \.$", r"\w \?$"],
    "cbt": [r"^_BOOK_TITLE_ : \S+$", r"``", r"''", r" n't ", r"\w \.$"],
    "gutenberg": [r"\S  \S", r"\w [.,?!]"],
    "bnc_spoken": [r"\S  \S", r"\w [.,?!]"],
    "children_stories": [r"\S  \S", r"\w [.,?!]"],
}
# Line-level quirks the cleaner removes or repairs: should be a minority of lines.
MINORITY = {
    "wikipedia": r"^= |<ref>|<br />|<b>", "simple_wikipedia": r"^= |<ref>|<br />|<b>",
    "open_subtitles": r"^(Subtitles|Synced|Sync and|Translated)|\[|\(|♪", "qed": r"^[A-Zl0-9 ,.?!'\"-]+$",
    "gutenberg": r"\S  \S|\w [.,?!]", "bnc_spoken": r"\S  \S|\w [.,?!]", "children_stories": r"\S  \S|\w [.,?!]",
}


@pytest.mark.parametrize("source", sorted(QUIRKS))
def test_quirks_present_in_their_source(corpus, source):
    lines = corpus["train"][source].read_text(encoding="utf-8").splitlines()
    for pat in QUIRKS[source]:
        assert any(re.search(pat, line) for line in lines), (source, pat)


@pytest.mark.parametrize("source", sorted(MINORITY))
def test_quirk_lines_are_a_minority(corpus, source):
    lines = corpus["train"][source].read_text(encoding="utf-8").splitlines()
    frac = sum(bool(re.search(MINORITY[source], line)) for line in lines) / len(lines)
    assert 0.02 <= frac <= 0.2, (source, frac)


def test_switchboard_one_utterance_per_line(corpus):
    lines = corpus["train"]["switchboard"].read_text(encoding="utf-8").splitlines()
    assert all(len(re.findall(r"[.?!](?:\s|$)", line)) == 1 for line in lines)
    assert not any(re.search(r"<|\[|♪|  ", line) for line in lines)


def test_quirks_stay_in_their_source(corpus):
    for s, p in corpus["train"].items():
        text = p.read_text(encoding="utf-8")
        if "wikipedia" not in s:
            assert "<ref>" not in text and "<br />" not in text and not re.search(r"^= ", text, re.M)
        if s != "open_subtitles":
            assert "♪" not in text and "Subtitles by" not in text
        if s != "cbt":
            assert "_BOOK_TITLE_" not in text and "``" not in text


# -- minimal pairs -----------------------------------------------------------------------------------------------------

def test_pairs_schema(corpus):
    pairs = read_pairs(corpus)
    assert len(pairs) >= 6
    terms = set()
    for uid, rows in pairs.items():
        assert len(rows) == PAIRS
        for i, row in enumerate(rows):
            assert {"sentence_good", "sentence_bad", "field", "linguistics_term", "UID", "pairID"} <= row.keys()
            assert row["UID"] == uid and row["pairID"] == str(i)
            assert BLIMP_TERMS[row["linguistics_term"]] == row["field"]
            terms.add(row["linguistics_term"])
    assert {"subject_verb_agreement", "determiner_noun_agreement", "anaphor_agreement", "irregular_forms",
            "argument_structure"} <= terms
    for uid in ("regular_plural_subject_verb_agreement_1", "distractor_agreement_relational_noun",
                "determiner_noun_agreement_1", "anaphor_gender_agreement", "anaphor_number_agreement",
                "irregular_past_participle_verbs", "transitive"):
        assert uid in pairs


def test_pairs_are_minimal(corpus):
    for uid, rows in read_pairs(corpus).items():
        goods = [r["sentence_good"] for r in rows]
        assert len(set(goods)) >= 0.8 * len(goods), uid
        for r in rows:
            g, b = r["sentence_good"], r["sentence_bad"]
            for s in (g, b):
                assert s[0].isupper() and s.endswith(".") and not s.endswith(" ."), s
            gw, bw = g.split(), b.split()
            assert len(gw) == len(bw), (g, b)
            assert 1 <= sum(x != y for x, y in zip(gw, bw)) <= 2, (g, b)


CONTRASTS = {
    "anaphor_gender_agreement": {"himself", "herself"},
    "anaphor_number_agreement": {"himself", "herself", "themselves"},
    "determiner_noun_agreement_2": {"this", "that", "these", "those"},
    "sentential_negation_npi_licensor_present": {"not", "probably"},
    "existential_there_quantifiers_1": {"a", "an", "no", "some", "many", "few", "two", "three", "every", "each", "all",
                                        "most"},
}


def test_pairs_contrast_the_right_words(corpus):
    for uid, words in CONTRASTS.items():
        for r in read_pairs(corpus)[uid]:
            diff = [(x, y) for x, y in zip(r["sentence_good"].split(), r["sentence_bad"].split()) if x != y]
            assert all({x.lower().rstrip("."), y.lower().rstrip(".")} <= words for x, y in diff), (uid, diff)


def test_irregular_pairs_use_past_vs_participle(corpus):
    forms = {(v.past, v.pp) for v in sc.IRREGULAR_PP}
    for r in read_pairs(corpus)["irregular_past_participle_verbs"]:
        (diff,) = [(x, y) for x, y in zip(normalize(r["sentence_good"]).split(), normalize(r["sentence_bad"]).split())
                   if x != y]
        assert diff in forms


def test_bad_sentences_never_occur_in_corpus(corpus):
    seen = set()
    for p in list(corpus["train"].values()) + list(corpus["dev"].values()):
        seen.update(sentences(p.read_text(encoding="utf-8")))
    pairs = read_pairs(corpus)
    bad = {normalize(r["sentence_bad"]) for rows in pairs.values() for r in rows}
    good = {normalize(r["sentence_good"]) for rows in pairs.values() for r in rows}
    assert not bad & seen, sorted(bad & seen)[:5]
    assert len(good & seen) > 0  # same grammar: some good sentences do occur verbatim


def test_good_sentences_use_corpus_vocabulary(corpus):
    vocab = set(normalize(train_text(corpus)).split())
    for uid, rows in read_pairs(corpus).items():
        for r in rows:
            missing = set(normalize(r["sentence_good"]).split()) - vocab
            assert not missing, (uid, r["sentence_good"], missing)


def test_corpus_covers_the_tested_constructions(corpus):
    text = normalize(train_text(corpus))
    for needle in (" themselves ", " himself ", " herself ", " not ever ", " has probably ", " there are ",
                   " there is a ", " every ", " of the ", " who ", " these ", " those "):
        assert text.count(needle) >= 20, needle
    for v in sc.IRREGULAR_PP[:8]:
        assert f" {v.past} " in text and f" {v.pp} " in text, v


def test_agreement_is_correct_in_corpus(corpus):
    sg = {n.sg for n in sc.NOUNS} | set(sc.MASS)
    pl = {n.pl for n in sc.NOUNS}
    adjs = set(sc.ADJ_ANY) | set(sc.ADJ_ANIM) | set(sc.ADJ_FOOD)
    v_sg = {v.s for v in sc.VERBS} | {"is", "was", "has", "does"}
    v_pl = {v.base for v in sc.VERBS if v.base != v.past} | {"are", "were", "have", "do"}
    dets = {"the", "a", "an", "this", "that", "these", "those", "my", "your", "his", "her", "our", "their", "every",
            "each", "some", "many", "two", "three", "all", "most"}
    checked = violations = 0
    det_checked = 0
    for p in list(corpus["train"].values()) + list(corpus["dev"].values()):
        for s in sentences(p.read_text(encoding="utf-8")):
            w = s.split()
            # subject-verb: "DET (ADJ) NOUN VERB ..." at the start of a sentence
            if w[0] in dets:
                i = 2 if len(w) > 2 and w[1] in adjs else 1
                if len(w) > i + 1 and (w[i] in sg or w[i] in pl) and (w[i + 1] in v_sg or w[i + 1] in v_pl):
                    checked += 1
                    violations += (w[i] in sg) != (w[i + 1] in v_sg)
            # determiner-noun anywhere
            for j, d in enumerate(w[:-1]):
                if d in ("this", "that", "these", "those"):
                    k = j + 2 if w[j + 1] in adjs and j + 2 < len(w) else j + 1
                    if w[k] in sg or w[k] in pl:
                        det_checked += 1
                        assert (w[k] in sg) == (d in ("this", "that")), s
    assert checked > 500 and det_checked > 500
    assert violations == 0


# -- API / CLI ---------------------------------------------------------------------------------------------------------

def test_split_words_sums_exactly():
    for total in (0, 7, 40_000, 200_000):
        assert sum(sc.split_words(total).values()) == total


def test_rejects_negative_sizes(tmp_path):
    with pytest.raises(ValueError):
        sc.write_corpus(tmp_path, train_words=-1)


def test_cli(tmp_path, capsys):
    out = tmp_path / "syn"
    assert sc.main(["--out", str(out), "--seed", "1", "--train-words", "5000", "--dev-words", "1000",
                    "--pairs-per-paradigm", "5"]) == 0
    printed = capsys.readouterr().out
    assert "aochildes.train" in printed and "words" in printed and "transitive" in printed
    assert (out / "babylm_10M" / "wikipedia.train").is_file()
    assert len((out / "blimp" / "transitive.jsonl").read_text(encoding="utf-8").splitlines()) == 5
