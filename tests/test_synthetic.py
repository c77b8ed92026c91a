"""synthetic/: layout, determinism, quirks and their cleaning, minimal pairs, a tiny model beating unigrams."""

import json
import math
import re
from collections import Counter
from pathlib import Path

import pytest

from babyllama import synthetic
from babyllama.synthetic import lexicon
from babyllama.synthetic.grammar import MODALS
from babyllama.synthetic.paradigms import PARADIGMS, SUPPLEMENT
from babyllama.synthetic.writer import SOURCES, split_words

TRAIN_WORDS, DEV_WORDS, PAIRS = 40_000, 8_000, 40
PHENOMENA = {"anaphor_agreement", "argument_structure", "binding", "control_raising", "determiner_noun_agreement",
             "ellipsis", "filler_gap_dependency", "irregular_forms", "island_effects", "npi_licensing", "quantifiers",
             "subject_verb_agreement"}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    out = tmp_path_factory.mktemp("synthetic") / "data"
    return synthetic.write_corpus(out, seed=0, train_words=TRAIN_WORDS, dev_words=DEV_WORDS, pairs_per_paradigm=PAIRS)


def all_files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def read_pairs(res) -> dict[str, list[dict]]:
    return {uid: [json.loads(line) for line in p.read_text(encoding="utf-8").splitlines()]
            for uid, p in res["blimp"].items()}


def words(text: str) -> list[str]:
    """Lower-case words without punctuation, clitics split off: plain and pre-tokenized text agree."""
    text = re.sub(r"<[^>]*>", " ", text).replace("``", " ").replace("''", " ").replace('"', " ")
    text = re.sub(r"n't\b", " n't", text)
    return re.sub(r"[.,?!:]", " ", text).lower().split()


# -- layout, sizes, determinism ----------------------------------------------------------------------------------------

def test_layout_and_word_counts(corpus):
    root = corpus["root"]
    assert {p.name for p in (root / "babylm_10M").iterdir()} == {f"{s}.train" for s in SOURCES}
    assert {p.name for p in (root / "babylm_dev").iterdir()} == {f"{s}.dev" for s in SOURCES}
    assert {p.name for p in (root / "blimp").iterdir()} == {f"{u}.jsonl" for u in (*PARADIGMS, *SUPPLEMENT)}
    for split, total in (("train", TRAIN_WORDS), ("dev", DEV_WORDS)):
        counts = {s: len(p.read_text(encoding="utf-8").split()) for s, p in corpus[split].items()}
        assert counts == corpus["words"][split]
        for s, n in counts.items():
            target = split_words(total)[s]
            assert target <= n <= target + 200, (split, s, n, target)
    assert sum(split_words(12_345).values()) == 12_345


def test_generator_is_deterministic_per_seed(tmp_path):
    kw = dict(train_words=4000, dev_words=1000, pairs_per_paradigm=10)
    a = all_files(synthetic.write_corpus(tmp_path / "a", seed=3, **kw)["root"])
    b = all_files(synthetic.write_corpus(tmp_path / "b", seed=3, **kw)["root"])
    c = all_files(synthetic.write_corpus(tmp_path / "c", seed=4, **kw)["root"])
    assert a == b
    assert a.keys() == c.keys() and all(a[k] != c[k] for k in a)


def test_lexicon_is_large_and_zipfian(corpus):
    assert 3000 <= len(lexicon.word_types()) <= 10_000
    counts = Counter(w for p in corpus["train"].values() for w in words(p.read_text(encoding="utf-8")))
    nouns = [n.sg for n in lexicon.NOUNS]
    head, tail = sum(counts[w] for w in nouns[:50]), sum(counts[w] for w in nouns[-500:])
    assert head > 5 * tail > 0  # the tail is seen, rarely
    assert len(counts) > 2000


# -- quirks ------------------------------------------------------------------------------------------------------------

QUIRKS = {
    "wikipedia": [r"^= = = .+ = = =$", r"<ref>.*</ref>", r"<br />", r"<b>[^<]+</b>"],
    "simple_wikipedia": [r"^= = .+ = =$", r"<ref>.*</ref>", r"<br />"],
    "open_subtitles": [r"^(Subtitles by|Synced and corrected by|Sync and|Subtitles downloaded) ",
                       r"\[[a-z ]+\]", r"\([a-z ]+\)", r"♪ .+ ♪"],
    "qed": [r"^(?=.*l)[A-Zl0-9 ,.?!'\"-]+$"],
    "aochildes": [r" n't ", r"\w \.$", r"\w \?$"],
    "cbt": [r"^_BOOK_TITLE_ : \S+$", r"``", r"''", r" n't ", r"\w \.$"],
    "gutenberg": [r"\S  \S", r"\w [.,?!]"],
    "bnc_spoken": [r"\S  \S", r"\w [.,?!]"],
    "children_stories": [r"\S  \S", r"\w [.,?!]"],
}


def test_quirks_are_in_the_raw_files_and_gone_after_cleaning(corpus, tmp_path):
    from clean_data import clean_folders
    from babyllama.schema import CleanSection

    for source, patterns in QUIRKS.items():
        lines = corpus["train"][source].read_text(encoding="utf-8").splitlines()
        for pat in patterns:
            assert any(re.search(pat, line) for line in lines), (source, pat)
    clean_folders(CleanSection(input_dirs=[str(corpus["train_dir"]), str(corpus["dev_dir"])],
                               output_dir=str(tmp_path / "clean")), log=lambda *a: None)
    for source, patterns in QUIRKS.items():
        lines = (tmp_path / "clean" / "babylm_10M" / f"{source}.train").read_text(encoding="utf-8").splitlines()
        for pat in patterns:
            hits = [line for line in lines if re.search(pat, line)]
            assert not hits, (source, pat, hits[:2])
    dialogue = (tmp_path / "clean" / "babylm_10M" / "switchboard.train").read_text(encoding="utf-8").splitlines()
    assert all(re.match(r"[AB]: \S", line) for line in dialogue)  # speaker labels survive cleaning


# -- minimal pairs -----------------------------------------------------------------------------------------------------

def test_every_phenomenon_has_pairs_that_differ(corpus):
    pairs = read_pairs(corpus)
    terms = {rows[0]["linguistics_term"] for uid, rows in pairs.items() if uid in PARADIGMS}
    assert terms == PHENOMENA
    for uid, rows in pairs.items():
        assert len(rows) == PAIRS and [r["pairID"] for r in rows] == [str(i) for i in range(PAIRS)]
        assert len({r["sentence_good"] for r in rows}) >= 0.8 * PAIRS, uid
        for r in rows:
            g, b = r["sentence_good"], r["sentence_bad"]
            assert g != b and g[0].isupper() and g[-1] in ".?", (uid, g, b)
            assert ("linguistics_term" in r) == (uid in PARADIGMS)
            if uid not in ("qa_congruence_easy", "qa_congruence_tricky", "hypernym", "turn_taking"):
                assert Counter(words(g)) != Counter(words(b)) or words(g) != words(b), (uid, g, b)


def test_dialogue_pairs_are_multi_line(corpus):
    for uid in ("qa_congruence_easy", "qa_congruence_tricky", "turn_taking"):
        for r in read_pairs(corpus)[uid]:
            for s in (r["sentence_good"], r["sentence_bad"]):
                lines = s.split("\n")
                assert len(lines) == 2 and all(re.match(r"[A-Z][a-z]+: [A-Z]", line) for line in lines), s
            assert r["sentence_good"].split("\n")[0] == r["sentence_bad"].split("\n")[0]  # same question


def test_bad_sentences_never_occur_in_the_corpus(corpus):
    seen = set()
    for p in list(corpus["train"].values()) + list(corpus["dev"].values()):
        for line in p.read_text(encoding="utf-8").splitlines():
            for s in re.split(r"(?<=[.?!])\s+", line):
                seen.add(" ".join(words(s)))
    for uid, rows in read_pairs(corpus).items():
        if uid in PARADIGMS:
            bad = {" ".join(words(r["sentence_bad"])) for r in rows}
            assert not bad & seen, (uid, sorted(bad & seen)[:3])


def test_subject_aux_inversion_fronts_the_main_modal(corpus):
    """Good: the main clause's modal fronted, the relative keeps its own; bad: the relative's modal fronted and the
    main one left after the relative's verb. Same words in both."""
    for r in read_pairs(corpus)["subject_aux_inversion"]:
        g, b = words(r["sentence_good"]), words(r["sentence_bad"])
        assert Counter(g) == Counter(b) and g[0] in MODALS and b[0] in MODALS, (g, b)
        i = g.index(b[0], 1)  # the relative's modal, in place in the good question
        assert g[i - 1] in ("who", "that") and b[b.index(g[0], 1) - 1] == g[i + 1], (g, b)
    assert any(" ".join(words(line)).startswith(tuple(MODALS)) and (" who " in line or " that " in line)
               for p in corpus["train"].values() for line in p.read_text(encoding="utf-8").splitlines())


def test_agreement_holds_in_the_corpus(corpus):
    """Every 'DET ADJ* NOUN is/are/has/have' and 'this/these ADJ* NOUN' in the corpus agrees."""
    sg = {n.sg for n in lexicon.NOUNS}
    pl = {n.pl for n in lexicon.NOUNS}
    adjs = set(lexicon.ADJECTIVES)
    checked = 0
    for p in corpus["train"].values():
        w = words(p.read_text(encoding="utf-8"))
        for i, d in enumerate(w[:-4]):
            if d in ("this", "that", "these", "those"):
                k = i + 1
                while w[k] in adjs:
                    k += 1
                if w[k] in sg or w[k] in pl:
                    checked += 1
                    assert (w[k] in sg) == (d in ("this", "that")) or d == "that", w[i - 3:k + 3]
    assert checked > 300


# -- the APIs for fine-tuning ------------------------------------------------------------------------------------------

def test_acceptability_examples():
    ex = list(synthetic.acceptability(200, seed=1))
    assert ex == list(synthetic.acceptability(200, seed=1))
    assert {e["phenomenon"] for e in ex} == PHENOMENA
    assert 60 < sum(e["label"] for e in ex) < 140
    with pytest.raises(ValueError, match="unknown paradigm"):
        next(synthetic.acceptability(1, paradigms=["nope"]))


@pytest.mark.parametrize("linguistic, surface", [("plural_subject", "length"), ("main_verb_ing", "has_the")])
def test_feature_pairs_cover_the_four_combinations(linguistic, surface):
    ex = list(synthetic.feature_pairs(40, seed=0, linguistic=linguistic, surface=surface))
    assert Counter((e["linguistic"], e["surface"]) for e in ex) == {(a, b): 10 for a in (0, 1) for b in (0, 1)}
    for e in ex:
        w = e["sentence"].split()
        assert (len(w) > 9 if surface == "length" else "the" in e["sentence"].lower().split()) == e["surface"]
        assert e["agree"] == (e["linguistic"] == e["surface"])
        if linguistic == "main_verb_ing":
            assert any(x.rstrip(".").endswith("ing") for x in w) or not e["linguistic"], e


def test_cli(tmp_path, capsys):
    from babyllama.synthetic.__main__ import main

    assert main(["--out", str(tmp_path / "s"), "--train-words", "3000", "--dev-words", "1000",
                 "--pairs-per-paradigm", "3"]) == 0
    words = int(re.search(r"babylm_10M: ([\d,]+) words", capsys.readouterr().out).group(1).replace(",", ""))
    assert 3000 <= words < 3300  # each source stops at the sentence that reaches its share
    assert len((tmp_path / "s" / "blimp" / "transitive.jsonl").read_text().splitlines()) == 3
    with pytest.raises(ValueError, match="train_words"):
        synthetic.write_corpus(tmp_path / "x", train_words=-1)


# -- learnability ------------------------------------------------------------------------------------------------------

def test_a_tiny_model_beats_a_unigram_baseline_on_the_pairs(corpus, tmp_path):
    """A hidden-32 LLaMA trained for a few seconds on the corpus scores the pairs better than unigram frequencies."""
    import numpy as np

    import train
    from babylm_dataset import load_split_ids
    from conftest import tiny_run_config
    from babyllama.scoring import load_pairs, score_pairs
    from tokenizer import build_tokenizer, load_tokenizer, train_files

    tok_dir = tmp_path / "tok"
    build_tokenizer(train_files(corpus["train_dir"]), vocab_size=600).save_pretrained(str(tok_dir))
    cfg = tiny_run_config(tmp_path, {"train": corpus["train_dir"], "dev": corpus["dev_dir"]}, tok_dir, "llama",
                          ["training.max_steps=300", "training.batch_size=16", "training.lr=1e-2",
                           "training.logging_steps=50", "data.seq_length=64"])
    metrics = train.run(cfg)
    assert metrics["eval_loss"] < math.log(600) - 2.5, metrics

    from transformers import AutoModelForCausalLM
    model = AutoModelForCausalLM.from_pretrained(cfg.training.output_dir)
    tok = load_tokenizer(tok_dir)
    pairs = [p for p in load_pairs(corpus["blimp_dir"], max_pairs_per_file=25)]
    ids = load_split_ids(corpus["train_dir"], tok_dir, tmp_path / "cache", verbose=False)
    logp = np.log((np.bincount(ids, minlength=len(tok)) + 1) / (len(ids) + len(tok)))

    def unigram(s):
        return float(sum(logp[i] for i in tok(" " + s, add_special_tokens=False)["input_ids"]))

    def accuracy(scores):  # a tie counts half: the unigram ties on every pair that only reorders words
        return np.mean([1.0 if g > b else 0.5 if g == b else 0.0 for g, b in scores])

    lm = accuracy(score_pairs(model, tok, pairs))
    uni = accuracy([(unigram(p.good), unigram(p.bad)) for p in pairs])
    assert lm > uni + 0.05, (lm, uni)
