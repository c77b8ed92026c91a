"""The reading task (babyllama/reading.py, eval_reading.py): the OLS fits against a numpy least-squares hand computation
on a table made here, word surprisal under both conventions against a hand computation of each rule (a multi-word-piece
word, a tokenizer with and without a BOS post-processor, an ensemble), the command end to end, and a table without a
column."""

import json
import math

import numpy as np
import pandas as pd
import pytest
import torch
from tokenizers import processors

import eval_reading
from babyllama import reading
from babyllama.config import UserError, run_cli
from babyllama.models import TeacherEnsemble, load_scorer
from conftest import save_random_model
from tokenizer import load_tokenizer


def _table(n=40, seed=0) -> pd.DataFrame:
    """A reading table of n rows with random predictors and measures (some missing), sentences from the tiny corpus."""
    rng = np.random.default_rng(seed)
    words = "the dog sees a big cat and my ball likes the baby".split()
    rows = []
    for i in range(n):
        k = 1 + i % (len(words) - 1)
        first = k == 1
        rows.append({"item": " ".join(words[:k]).capitalize(), "word": words[k] if i % 7 else "bulldozer",
                     "prev_item": None if first else " ".join(words[:k - 1]).capitalize(),
                     "prev_word": None if first else words[k - 1], "Subtlex_log10": rng.uniform(1, 5),
                     "length": int(rng.integers(1, 10)), "context_length": k, "prev_length": -1 if first else
                     len(words[k - 1])})
    t = pd.DataFrame(rows)
    for dv in reading.MEASURES:
        t[dv] = rng.normal(200, 30, n) if dv.startswith(("RT", "self")) else rng.normal(0, 1, n)
    t.loc[3, "RTgopast"] = np.nan
    t.loc[5, "Subtlex_log10"] = np.nan
    return t


def _hand_fit(t: pd.DataFrame, dv, terms, pred=None):
    """(R2, coefficient of pred, its t value) of OLS with an intercept, main effects and pairwise products, by lstsq."""
    data = t.assign(pred=pred) if pred is not None else t
    cols = [dv, *terms] + (["pred"] if pred is not None else [])
    d = data[cols].dropna()
    x = [np.ones(len(d))] + [d[a].to_numpy(float) for a in terms]
    x += [d[a].to_numpy(float) * d[b].to_numpy(float) for i, a in enumerate(terms) for b in terms[i + 1:]]
    if pred is not None:
        x.append(d["pred"].to_numpy(float))
    x, y = np.column_stack(x), d[dv].to_numpy(float)
    beta = np.linalg.lstsq(x, y, rcond=None)[0]
    ssr = ((y - x @ beta) ** 2).sum()
    r2 = 1 - ssr / ((y - y.mean()) ** 2).sum()
    se = math.sqrt(ssr / (len(y) - x.shape[1]) * np.linalg.inv(x.T @ x)[-1, -1])
    return r2, beta[-1], beta[-1] / se


def test_fits_equal_a_numpy_least_squares_hand_computation():
    t = _table()
    rng = np.random.default_rng(1)
    pred = rng.uniform(2, 15, len(t))
    prev = np.where(t["prev_item"].isna(), np.nan, rng.uniform(2, 15, len(t)))
    got = reading.reading_scores(t, pred, prev)
    t2 = t.assign(prev_pred=prev)
    scores = {}
    for key, terms in (("fits", list(reading.BASELINE)), ("spillover_fits", list(reading.SPILLOVER))):
        for dv in reading.MEASURES:
            r2_base = _hand_fit(t2, dv, terms)[0]
            r2, coef, tval = _hand_fit(t2, dv, terms, pred)
            g = got[key][dv]
            assert [g["r2"], g["delta_r2"], g["coef"], g["t"]] == pytest.approx([r2, r2 - r2_base, coef, tval],
                                                                              rel=1e-6, abs=1e-9)
            scores[key, dv] = (r2 - r2_base) / (1 - r2_base) * 100
            assert g["score"] == pytest.approx(scores[key, dv], rel=1e-6, abs=1e-9)
    assert got["fits"]["RTgopast"]["n"] == len(t) - 2 and got["spillover_fits"]["RTgopast"]["n"] < len(t) - 2
    assert got["eye_tracking"] == pytest.approx(np.mean([scores["fits", dv] for dv in reading.EYE_TRACKING]))
    assert got["self_paced_reading"] == pytest.approx(scores["spillover_fits", reading.SELF_PACED])
    assert got["correlations"]["N400"] == pytest.approx(np.corrcoef(pred, t["N400"])[0, 1])
    # surprisal matters: another column changes the scores
    assert reading.reading_scores(t, pred[::-1], prev)["eye_tracking"] != pytest.approx(got["eye_tracking"])


def _lm_eval_hand(model, tok, context, word):
    ids = [tok.bos_token_id] + tok(context, add_special_tokens=False)["input_ids"]
    w = tok(" " + word, add_special_tokens=False)["input_ids"]
    logp = torch.log_softmax(model(input_ids=torch.tensor([ids + w])).logits[0].double(), -1)
    return -sum(logp[len(ids) - 1 + j, t].item() for j, t in enumerate(w))


def _babylm2025_hand(model, tok, context, word):
    """The organisers' rule written out: the context string tokenized with its special tokens, the next-token
    softmax at its last position; a word's later tokens after the context grown by the decoded tokens before them."""
    def p_next(text, piece):
        ids = tok(text)["input_ids"]
        probs = torch.softmax(model(input_ids=torch.tensor([ids])).logits[0, -1], -1)
        return probs[tok(piece, add_special_tokens=False)["input_ids"][0]].item()

    target = tok(word, add_special_tokens=False)["input_ids"]
    ps, text = [p_next(context, word)], context + tok.decode(target[0])
    for t in target[1:]:
        piece = tok.decode(t)
        ps.append(p_next(text, piece))
        text += piece
    return -math.log(np.prod(ps))


@pytest.mark.parametrize("bos", [False, True])
def test_word_surprisal_follows_each_convention(tmp_path, tiny_tokenizer_dir, bos):
    m = save_random_model(tmp_path / "m", "llama", tiny_tokenizer_dir, seed=4)
    model = load_scorer([str(m)], device="cpu")
    tok = load_tokenizer(m)
    if bos:  # a post-processor that adds BOS: the organisers' rule then conditions on it
        tok.backend_tokenizer.post_processor = processors.Sequence([
            processors.ByteLevel(trim_offsets=False),
            processors.TemplateProcessing(single="<s> $A", special_tokens=[("<s>", tok.bos_token_id)])])
    assert (tok("The dog")["input_ids"][0] == tok.bos_token_id) == bos
    contexts, words = ["The dog sees", "Mommy", "The big cat likes"], ["a", "bulldozer", "zebras."]
    assert len(tok("bulldozer", add_special_tokens=False)["input_ids"]) > 2
    got = {}
    with torch.no_grad():
        for conv, hand in (("lm-eval", _lm_eval_hand), ("babylm2025", _babylm2025_hand)):
            got[conv] = reading.word_surprisals(model, tok, contexts, words, conv)
            assert got[conv] == pytest.approx([hand(model, tok, c, w) for c, w in zip(contexts, words)], rel=1e-4)
    # the conventions differ (the word's leading space, BOS, how later pieces are found)
    assert all(abs(x - y) > 1e-3 for x, y in zip(got["lm-eval"], got["babylm2025"]))


def test_ensemble_surprisal_uses_its_mean_logits(tmp_path, tiny_tokenizer_dir):
    a = save_random_model(tmp_path / "a", "llama", tiny_tokenizer_dir, seed=1)
    b = save_random_model(tmp_path / "b", "gpt2", tiny_tokenizer_dir, seed=2)
    ens = TeacherEnsemble.from_pretrained([str(a), str(b)], device="cpu")
    tok = load_tokenizer(a)
    ids = [tok.bos_token_id] + tok("The dog sees", add_special_tokens=False)["input_ids"]
    w = tok(" bulldozer", add_special_tokens=False)["input_ids"]
    with torch.no_grad():
        logits = sum(m(input_ids=torch.tensor([ids + w])).logits[0].double() for m in ens.models) / 2
        got = reading.word_surprisals(ens, tok, ["The dog sees"], ["bulldozer"])
    logp = torch.log_softmax(logits, -1)
    assert got[0] == pytest.approx(-sum(logp[len(ids) - 1 + j, t].item() for j, t in enumerate(w)), rel=1e-4)


def test_cli_end_to_end(tmp_path, tiny_tokenizer_dir, capsys):
    a = save_random_model(tmp_path / "a", "llama", tiny_tokenizer_dir, seed=1)
    b = save_random_model(tmp_path / "b", "llama", tiny_tokenizer_dir, seed=2)
    csv = tmp_path / "reading_data.csv"
    _table(30).to_csv(csv)
    out = tmp_path / "reading.json"
    assert run_cli(eval_reading.main, ["--data", str(csv), "--model", f"a={a}", "--ensemble", f"ab={a},{b}",
                                       "--convention", "babylm2025", "--output", str(out)]) == 0
    res = json.loads(out.read_text())
    assert res["convention"] == "babylm2025" and list(res["results"]) == ["a", "ab"]
    want = reading.score_reading(load_scorer([str(a)], device="cpu"), load_tokenizer(a), csv, "babylm2025")
    got = res["results"]["a"]
    assert got["eye_tracking"] == pytest.approx(want["eye_tracking"]) and got["words"] == 30
    assert got["pred"] == pytest.approx(want["pred"]) and got["prev_pred"][0] is None
    assert res["results"]["ab"]["pred"][0] != pytest.approx(got["pred"][0])
    table = out.with_suffix(".md").read_text()
    assert "babylm2025 convention" in table and table in capsys.readouterr().out
    assert [line.split(" |")[0] for line in table.splitlines()[2:7:2]] == [
        "| score (%)", "| *Eye-tracking score*", "| RTfirstfix"]


def test_items_longer_than_the_training_chunks_are_warned_about(tmp_path, tiny_tokenizer_dir, capsys):
    short, long = (save_random_model(tmp_path / n, "gpt2", tiny_tokenizer_dir) for n in ("short", "long"))
    csv = tmp_path / "reading_data.csv"
    table = _table(30)  # fewer rows leave the spillover fit no residual (R2_base 1)
    table.to_csv(csv)
    n = reading.longest_item(load_tokenizer(tiny_tokenizer_dir), table)
    tok = load_tokenizer(tiny_tokenizer_dir)
    assert n == max(1 + len(tok(f"{i} {w}", add_special_tokens=False)["input_ids"])
                    for i, w in zip(table["item"], table["word"]))
    (short / "config.yaml").write_text(f"data:\n  seq_length: {n - 2}\n")  # trained on shorter chunks
    (long / "config.yaml").write_text(f"data:\n  seq_length: {n}\n")
    capsys.readouterr()
    assert run_cli(eval_reading.main, ["--data", str(csv), "--model", f"s={short}", "--model", f"l={long}"]) == 0
    err = capsys.readouterr().err
    assert (f"warning: s: the longest reading item is {n} tokens, but {short} was trained on {n - 2}-token chunks "
            f"(its config.yaml): positions {n - 2}-{n - 1} were never trained") in err and "warning: l" not in err


def test_table_without_a_column_is_a_one_line_error(tmp_path, capsys):
    csv = tmp_path / "r.csv"
    _table(5).drop(columns=["prev_item"]).to_csv(csv)
    assert run_cli(eval_reading.main, ["--data", str(csv), "--model", str(tmp_path / "m")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and f"{csv}: no column 'prev_item'" in err
    with pytest.raises(UserError, match="reading table not found"):
        reading.read_table(tmp_path / "none.csv")


def test_a_table_too_small_to_fit_is_a_one_line_error():
    rng = np.random.default_rng(0)
    terms = ["a", "b", "c"]  # 1 + 3 + 3 interactions = 7 baseline coefficients
    table = pd.DataFrame({k: rng.normal(size=7) for k in ["y", "pred", *terms]})
    with pytest.raises(UserError, match="7 rows with values for 7 baseline coefficients, too few to fit"):
        reading.fit_measure(table, "y", terms)
    big = pd.DataFrame({k: rng.normal(size=9) for k in ["y", "pred", *terms]})
    assert math.isfinite(reading.fit_measure(big, "y", terms)["score"])  # two rows to spare: a score
