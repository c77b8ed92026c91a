"""eval_aoa.py: the AoA regression against a hand computation on a 12-word table, a multi-token word's surprisal as the
sum of its tokens', the command end to end (contexts, missing words, baseline), and a word list without a column."""

import csv
import json

import numpy as np
import pytest
import torch

import eval_aoa
from conftest import save_random_model
from babyllama.config import run_cli
from tokenizer import load_tokenizer

KEYS = ("overall", "nouns", "predicates", "function_words")
CATS = ["nouns"] * 4 + ["predicates"] * 4 + ["function_words"] * 4


def _toy_rows(seed=0):
    rng = np.random.default_rng(seed)
    return [{"word": f"w{i}", "category": c, "aoa": float(rng.uniform(16, 30)),
             "concreteness": float(rng.uniform(1, 5)), "frequency": int(rng.integers(10, 5000))}
            for i, c in enumerate(CATS)], rng.uniform(2, 12, len(CATS))


def _hand_loo_mad(rows, surprisal):
    """The pipeline's steps written out with numpy alone: lstsq fits, population-sd z-scores, centred lstsq for a
    regression with intercept (the minimum-norm solution where a held-out word leaves too few of its category)."""
    f = np.array([r["frequency"] for r in rows], float)
    u = -np.log(f / f.sum())
    cols = [np.array([r["concreteness"] for r in rows])]
    if surprisal is not None:
        a = np.column_stack([np.ones_like(u), u])
        cols.append(surprisal - a @ np.linalg.lstsq(a, surprisal, rcond=None)[0])
    cols.append(u)
    z = [(c - c.mean()) / c.std() for c in cols]
    fw = np.array([r["category"] == "function_words" for r in rows], float)
    pr = np.array([r["category"] == "predicates" for r in rows], float)
    x = np.column_stack([fw, pr] + z + [fw * c for c in z] + [pr * c for c in z])
    y = np.array([r["aoa"] for r in rows])
    dev = []
    for i in range(len(y)):
        keep = np.arange(len(y)) != i
        xm, ym = x[keep].mean(0), y[keep].mean()
        coef = np.linalg.lstsq(x[keep] - xm, y[keep] - ym, rcond=None)[0]
        dev.append(abs(y[i] - (ym + (x[i] - xm) @ coef)))
    dev = np.array(dev)
    return dev.mean(), [dev[np.array(CATS) == c].mean() for c in ("nouns", "predicates", "function_words")]


@pytest.mark.parametrize("with_lm", [True, False])
def test_loo_mad_equals_a_hand_computation_on_12_words(with_lm):
    rows, surprisal = _toy_rows()
    got = eval_aoa.loo_mad(rows, surprisal if with_lm else None)
    overall, per = _hand_loo_mad(rows, surprisal if with_lm else None)
    assert got["overall"] == pytest.approx(overall, rel=1e-6)
    assert [got[c] for c in ("nouns", "predicates", "function_words")] == pytest.approx(per, rel=1e-6)
    assert got["n"] == {"overall": 12, "nouns": 4, "predicates": 4, "function_words": 4}
    # the surprisal column matters: another one changes the fit
    if with_lm:
        assert eval_aoa.loo_mad(rows, surprisal[::-1])["overall"] != pytest.approx(overall)


def test_multi_token_word_surprisal_is_the_sum_of_its_tokens(tmp_path, tiny_tokenizer_dir):
    m = save_random_model(tmp_path / "m", "llama", tiny_tokenizer_dir, seed=5)
    text = "the dog sees a bulldozer .\nmommy has ice  cream !\nthe bulldozer likes my ball .\n"
    f = tmp_path / "aochildes.dev"
    f.write_text(text)
    words = ["bulldozer", "ice cream", "dog", "zebra"]
    occ = eval_aoa.find_occurrences(text, words)
    assert [len(occ[w]) for w in words] == [2, 1, 1, 0]
    model = eval_aoa.load_scorer([str(m)], torch.float32, device="cpu")
    got = eval_aoa.word_surprisals(model, m, [f], [occ], seq_length=64)
    # by hand: the training stream (lines with their newlines), one forward pass, the word's tokens located by ids
    tok = load_tokenizer(tiny_tokenizer_dir)
    ids = [t for line in text.splitlines(keepends=True) for t in tok(line, add_special_tokens=False)["input_ids"]]
    logp = torch.log_softmax(model(input_ids=torch.tensor([ids])).logits[0].double(), -1)

    def at(piece):
        w = tok(piece, add_special_tokens=False)["input_ids"]
        return w, [i for i in range(1, len(ids)) if ids[i:i + len(w)] == w]

    for word, piece in (("bulldozer", " bulldozer"), ("ice cream", " ice  cream")):
        w, starts = at(piece)
        assert len(w) > 1 and len(starts) == len(occ[word])
        hand = [-sum(logp[s + j - 1, t].item() for j, t in enumerate(w)) for s in starts]
        assert got[word] == pytest.approx(hand, rel=1e-5)
    assert "zebra" not in got


def _word_list(path, rows, columns=eval_aoa.COLUMNS):
    with path.open("w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(columns), extrasaction="ignore")
        w.writeheader()
        for r in rows:
            w.writerow({"word_clean": r[0], "lexical_category": r[1], "aoa": r[2], "concreteness": r[3],
                        "frequency": r[4]})
    return path


WORDS = [("dog", "nouns"), ("cat", "nouns"), ("bird", "nouns"), ("ball", "nouns"), ("truck", "nouns"),
         ("baby", "nouns"), ("mommy", "nouns"), ("daddy", "nouns"), ("zebra", "nouns"),
         ("sees", "predicates"), ("likes", "predicates"), ("wants", "predicates"), ("has", "predicates"),
         ("throws", "predicates"), ("big", "predicates"),
         ("the", "function_words"), ("a", "function_words"), ("my", "function_words"), ("and", "function_words"),
         ("is", "function_words")]


def test_cli_end_to_end(tmp_path, tiny_tokenizer_dir, capsys):
    a = save_random_model(tmp_path / "a", "llama", tiny_tokenizer_dir, seed=1)
    b = save_random_model(tmp_path / "b", "llama", tiny_tokenizer_dir, seed=2)
    rng = np.random.default_rng(3)
    words = _word_list(tmp_path / "words.csv", [(w, c, 16 + 10 * rng.random(), 1 + 4 * rng.random(), 100 + i * 37)
                                                for i, (w, c) in enumerate(WORDS)])
    text = tmp_path / "childes.dev"
    text.write_text("the dog sees a cat and my ball is big .\nmommy has the truck and daddy likes the baby .\n"
                    "a bird wants my ball .\nthe baby throws a big ball and the cat is big .\n" * 3)
    out = tmp_path / "aoa.json"
    assert run_cli(eval_aoa.main, ["--words", str(words), "--text", str(text), "--model", f"a={a}", "--model",
                                   f"b={b}", "--ensemble", f"ab={a},{b}", "--seq-length", "32",
                                   "--output", str(out)]) == 0
    res = json.loads(out.read_text())
    assert res["missing"] == ["zebra"] and res["contexts"][0]["file"] == str(text)
    assert res["contexts"][0]["lines"] == 12
    rows = [r for r in eval_aoa.read_word_list(words) if r["word"] != "zebra"]
    assert res["mad"][eval_aoa.BASELINE]["overall"] == pytest.approx(eval_aoa.loo_mad(rows)["overall"])
    for name in ("a", "b", "ab"):
        s = [res["surprisal"][name][r["word"]] for r in rows]
        want = eval_aoa.loo_mad(rows, s)
        assert [res["mad"][name][k] for k in KEYS] == pytest.approx([want[k] for k in KEYS], rel=1e-9)
    # the ensemble's surprisals are its own (mean logits), not a member's
    assert res["surprisal"]["ab"]["dog"] not in (res["surprisal"]["a"]["dog"], res["surprisal"]["b"]["dog"])
    printed = capsys.readouterr()
    table = out.with_suffix(".md").read_text()
    assert table.splitlines()[0] == f"| MAD (months) | a | b | ab | {eval_aoa.BASELINE} |"
    assert [line.split(" |")[0] for line in table.splitlines()[2:]] == [
        "| Overall (19)", "| Nouns (8)", "| Predicates (6)", "| Function words (5)"]
    assert table in printed.out and "1 of 20 words never occur there and are left out: zebra" in printed.err
    assert f"contexts: {text} (12 lines," in printed.err


def test_the_window_defaults_to_the_training_chunks_and_an_ensemble_is_checked_before_any_scoring(
        tmp_path, tiny_tokenizer_dir, tiny_corpus, capsys, monkeypatch):
    from tokenizer import build_tokenizer, train_files

    a = save_random_model(tmp_path / "a", "gpt2", tiny_tokenizer_dir, seed=1)
    b = save_random_model(tmp_path / "b", "llama", tiny_tokenizer_dir, seed=2)
    for folder, seq in ((a, 16), (b, 32)):  # what train.py saves beside the weights
        (folder / "config.yaml").write_text(f"data:\n  seq_length: {seq}\n")
    words = _word_list(tmp_path / "words.csv", [(w, c, 16 + i, 1 + i % 4, 100 + i) for i, (w, c) in enumerate(WORDS)])
    text = tmp_path / "childes.dev"
    text.write_text("the dog sees a cat and my ball is big .\nmommy has the truck and daddy likes the baby .\n"
                    "a bird wants my ball .\nthe baby throws a big ball and the cat is big .\n" * 3)
    base = ["--words", str(words), "--text", str(text), "--model", f"a={a}", "--model", f"b={b}"]
    capsys.readouterr()
    assert run_cli(eval_aoa.main, base + ["--output", str(tmp_path / "aoa.json")]) == 0
    assert json.loads((tmp_path / "aoa.json").read_text())["seq_length"] == 16  # a's chunks: no model reads beyond
    err = capsys.readouterr().err
    assert "warning" not in err
    assert run_cli(eval_aoa.main, base + ["--seq-length", "32"]) == 0
    err = capsys.readouterr().err
    assert (f"warning: a: a window of 32 tokens, but {a} was trained on 16-token chunks (its config.yaml): positions "
            "16-31 were never trained") in err and "warning: b" not in err
    # an ensemble whose tokenizers differ is refused before the first model is scored, not after it
    other = tmp_path / "tok300"
    build_tokenizer(train_files(tiny_corpus["train"]), vocab_size=300).save_pretrained(str(other))
    c = save_random_model(tmp_path / "c", "llama", other, seed=3)

    def scored(*args, **kw):
        raise AssertionError("a model was scored before the ensemble's tokenizers were checked")

    monkeypatch.setattr(eval_aoa, "word_surprisals", scored)
    assert run_cli(eval_aoa.main, base + ["--ensemble", f"ac={a},{c}"]) == 2
    assert f"error: vocab size differs: ensemble 'ac': {a} has 320, {c} has 300" in capsys.readouterr().err


def test_word_list_without_a_column_is_a_one_line_error(tmp_path, capsys):
    bad = _word_list(tmp_path / "w.csv", [("dog", "nouns", 20, 4, 10)],
                     [c for c in eval_aoa.COLUMNS if c != "concreteness"])
    capsys.readouterr()
    assert run_cli(eval_aoa.main, ["--words", str(bad), "--model", str(tmp_path / "m")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and f"{bad}: no column 'concreteness'" in err and "word_clean" in err
