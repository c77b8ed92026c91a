"""eval_text.py: held-out text scoring equals a hand computation; an ensemble scores with the mean of its logits."""

import json
import math

import pytest
import torch

import eval_text
from conftest import save_random_model
from babyllama.config import UserError, run_cli
from tokenizer import load_tokenizer


def test_text_scoring_equals_a_hand_computation(tmp_path, tiny_tokenizer_dir):
    model_dir = save_random_model(tmp_path / "m", "llama", tiny_tokenizer_dir, seed=3)
    data = tmp_path / "dev"
    data.mkdir()
    text = "The dog sees the cat.\nMommy has my ball!\n" * 4
    (data / "aochildes.dev").write_text(text)
    (data / "switchboard.dev").write_text("Daddy likes the baby?\n")
    res = eval_text.evaluate(data, {"m": [str(model_dir)]}, seq_length=8, batch_size=3)["m"]
    model = eval_text.load_scorer([str(model_dir)], torch.float32)
    ids = load_tokenizer(tiny_tokenizer_dir)(text, add_special_tokens=False)["input_ids"]
    total, n = 0.0, 0
    for start in range(0, len(ids) - 1, 7):  # windows of 8 overlapping by one: each token but the first once
        w = torch.tensor([ids[start:start + 8]])
        logp = torch.log_softmax(model(input_ids=w).logits[0].double(), -1)
        for i in range(1, w.shape[1]):
            total += logp[i - 1, w[0, i]].item()
            n += 1
    assert n == len(ids) - 1 and res["aochildes"]["tokens"] == n
    assert res["aochildes"]["ce"] == pytest.approx(-total / n, rel=1e-5)
    assert res["aochildes"]["ppl"] == pytest.approx(math.exp(-total / n), rel=1e-5)
    pooled = (res["aochildes"]["ce"] * n + res["switchboard"]["ce"] * res["switchboard"]["tokens"])
    assert res["all"]["ce"] == pytest.approx(pooled / (n + res["switchboard"]["tokens"]), rel=1e-6)


def test_ensemble_text_ce_uses_the_mean_of_logits(tmp_path, tiny_tokenizer_dir):
    a = save_random_model(tmp_path / "a", "llama", tiny_tokenizer_dir, seed=1)
    b = save_random_model(tmp_path / "b", "gpt2", tiny_tokenizer_dir, seed=2)
    data = tmp_path / "dev"
    data.mkdir()
    text = "The cats see the dog.\n" * 3
    (data / "cbt.dev").write_text(text)
    res = eval_text.evaluate(data, {"ens": [str(a), str(b)]}, seq_length=64)["ens"]["cbt"]
    ids = torch.tensor([load_tokenizer(tiny_tokenizer_dir)(text, add_special_tokens=False)["input_ids"]])
    la, lb = (eval_text.load_scorer([str(p)], torch.float32)(input_ids=ids).logits[0, :-1] for p in (a, b))
    tgt = ids[0, 1:, None]
    by_logits = -torch.log_softmax((la + lb) / 2, -1).gather(-1, tgt).mean().item()
    by_probs = -torch.log((la.softmax(-1) + lb.softmax(-1)) / 2).gather(-1, tgt).mean().item()
    assert res["ce"] == pytest.approx(by_logits, rel=1e-5) and abs(by_logits - by_probs) > 1e-4


def test_text_scoring_errors(tmp_path, tiny_tokenizer_dir, capsys):
    m = save_random_model(tmp_path / "m", "llama", tiny_tokenizer_dir)
    (tmp_path / "dev").mkdir()
    (tmp_path / "dev" / "cbt.dev").write_text("hello .\n")
    capsys.readouterr()
    assert run_cli(eval_text.main, ["--data", str(tmp_path / "dev"), "--model", str(m),
                                    "--model", str(tmp_path / "x" / "m")]) == 2
    assert "same name" in capsys.readouterr().err
    assert run_cli(eval_text.main, ["--data", str(tmp_path / "dev"), "--model", f"a={tmp_path / 'nope'}"]) == 2
    assert "no config.json" in capsys.readouterr().err
    with pytest.raises(UserError, match="accepts 64 positions"):
        eval_text.evaluate(tmp_path / "dev", {"m": [str(m)]}, seq_length=128)


def test_the_window_defaults_to_the_chunks_the_model_was_trained_on(tmp_path, tiny_tokenizer_dir, capsys):
    m = save_random_model(tmp_path / "m", "gpt2", tiny_tokenizer_dir)
    (m / "config.yaml").write_text("data:\n  seq_length: 24\n")
    (tmp_path / "dev").mkdir()
    (tmp_path / "dev" / "cbt.dev").write_text("the dog sees the cat .\n" * 20)
    out = tmp_path / "text.json"
    assert run_cli(eval_text.main, ["--data", str(tmp_path / "dev"), "--model", str(m), "--output", str(out)]) == 0
    res = json.loads(out.read_text())
    assert res["seq_length"] == 24
    assert res["results"] == eval_text.evaluate(tmp_path / "dev", {"m": [str(m)]}, seq_length=24)


def test_separator_targets_are_not_counted_and_the_stream_is_the_trained_one(tmp_path, tiny_tokenizer_dir):
    """A model trained with data.separator <s> (its config.yaml says so) reads <s> before every line, but only the
    text tokens are targets: the same tokens as a model trained without separators, plus the stream's first."""
    m = save_random_model(tmp_path / "m", "llama", tiny_tokenizer_dir, seed=4)
    (m / "config.yaml").write_text("data: {separator: <s>, separator_every: lines}\n")
    data = tmp_path / "dev"
    data.mkdir()
    lines = ["The dog sees the cat.\n", "Mommy has my ball!\n", "Daddy likes the baby?\n"]
    (data / "cbt.dev").write_text("".join(lines))
    res = eval_text.evaluate(data, {"m": [str(m)]}, seq_length=64)["m"]["cbt"]
    tok = load_tokenizer(tiny_tokenizer_dir)
    bos = tok.convert_tokens_to_ids("<s>")
    ids = [t for line in lines for t in [bos] + tok(line, add_special_tokens=False)["input_ids"]]
    model = eval_text.load_scorer([str(m)], torch.float32)
    logp = torch.log_softmax(model(input_ids=torch.tensor([ids])).logits[0].double(), -1)
    picked = [logp[i - 1, ids[i]].item() for i in range(1, len(ids)) if ids[i] != bos]
    assert res["tokens"] == len(picked) == len(ids) - len(lines)
    assert res["ce"] == pytest.approx(-sum(picked) / len(picked), rel=1e-5)
    plain = eval_text.evaluate(data, {"m": [str(m)]}, seq_length=64, separator="none")["m"]["cbt"]
    assert plain["tokens"] == res["tokens"] - 1 and plain["ce"] != pytest.approx(res["ce"])


def test_members_scored_in_their_ensembles_pass_equal_scoring_them_alone(tmp_path, tiny_tokenizer_dir):
    a = save_random_model(tmp_path / "a", "llama", tiny_tokenizer_dir, seed=1)
    b = save_random_model(tmp_path / "b", "gpt2", tiny_tokenizer_dir, seed=2)
    data = tmp_path / "dev"
    data.mkdir()
    (data / "cbt.dev").write_text("The cats see the dog.\nA ball is red.\n" * 5)
    together = eval_text.evaluate(data, {"a": [str(a)], "b": [str(b)], "ens": [str(a), str(b)]}, seq_length=16,
                                  batch_size=2)
    assert list(together) == ["a", "b", "ens"]
    for name, paths in {"a": [a], "b": [b], "ens": [a, b]}.items():
        alone = eval_text.evaluate(data, {name: [str(p) for p in paths]}, seq_length=16, batch_size=5)[name]
        assert together[name]["all"]["tokens"] == alone["all"]["tokens"]
        assert together[name]["all"]["ce"] == pytest.approx(alone["all"]["ce"], abs=1e-6)
    (a / "config.yaml").write_text("data: {separator: <s>}\n")
    with pytest.raises(UserError, match="different data.separator"):
        eval_text.evaluate(data, {"ens": [str(a), str(b)]}, seq_length=16)


def test_homogeneous_ensemble_is_the_mean_of_its_seeds_logits_and_reports_its_gain(tmp_path, tiny_tokenizer_dir,
                                                                                     capsys):
    """N seeds of one config as one ensemble against its members: the ensemble's CE is that of the softmax of the
    seeds' mean logits, and the gain over the members' mean and over the best member is printed and written."""
    seeds = [save_random_model(tmp_path / f"s{s}", "llama", tiny_tokenizer_dir, seed=s) for s in (1, 2, 3)]
    data = tmp_path / "dev"
    data.mkdir()
    text = "The cats see the dog.\nMommy has my ball!\n" * 2
    (data / "cbt.dev").write_text(text)
    out = tmp_path / "text.json"
    argv = ["--data", str(data), "--seq-length", "64", "--output", str(out),
            "--ensemble", "seeds=" + ",".join(map(str, seeds))] + [f"--model=s{i}={p}" for i, p in enumerate(seeds)]
    assert run_cli(eval_text.main, argv) == 0
    res = json.loads(out.read_text())
    ids = torch.tensor([load_tokenizer(tiny_tokenizer_dir)(text, add_special_tokens=False)["input_ids"]])
    logits = [eval_text.load_scorer([str(p)], torch.float32)(input_ids=ids).logits[0, :-1].double() for p in seeds]
    tgt = ids[0, 1:, None]
    ce = [-torch.log_softmax(x, -1).gather(-1, tgt).mean().item() for x in logits]
    ens = -torch.log_softmax(sum(logits) / 3, -1).gather(-1, tgt).mean().item()
    assert res["results"]["seeds"]["all"]["ce"] == pytest.approx(ens, rel=1e-5)
    assert [res["results"][f"s{i}"]["all"]["ce"] for i in range(3)] == pytest.approx(ce, rel=1e-5)
    gain = res["ensemble_gains"]["seeds"]
    assert gain["members"] == ["s0", "s1", "s2"]
    assert gain["gain_over_mean"] == pytest.approx(sum(ce) / 3 - ens, rel=1e-4)
    assert gain["gain_over_best"] == pytest.approx(min(ce) - ens, rel=1e-4)
    assert (f"ensemble seeds: dev CE {ens:.3f}; members (s0, s1, s2) mean {sum(ce) / 3:.3f}, best {min(ce):.3f}; "
            f"gain over the mean {sum(ce) / 3 - ens:+.3f}, over the best {min(ce) - ens:+.3f}") in capsys.readouterr().out


def test_empty_files_get_a_row_without_perplexity_and_an_empty_folder_is_an_error(tmp_path, tiny_tokenizer_dir,
                                                                                    capsys):
    m = save_random_model(tmp_path / "m", "llama", tiny_tokenizer_dir, seed=5)
    data = tmp_path / "dev"
    data.mkdir()
    (data / "cbt.dev").write_text("")
    (data / "qed.dev").write_text("\n\n")
    out = tmp_path / "res.json"
    before = {p.name: p.read_bytes() for p in data.iterdir()}
    capsys.readouterr()
    assert run_cli(eval_text.main, ["--data", str(data), "--model", f"m={m}", "--output", str(out), "--seq-length", "32"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == (f"error: {data}: every text file here is empty or blank, so there is nothing to score; point "
                   "--data at a split folder with text (e.g. data/clean/babylm_dev)")
    assert not out.exists() and {p.name: p.read_bytes() for p in data.iterdir()} == before
    (data / "aochildes.dev").write_text("The dog sees the cat.\n" * 3)
    assert run_cli(eval_text.main, ["--data", str(data), "--model", f"m={m}", "--output", str(out), "--seq-length", "32"]) == 0
    res = json.loads(out.read_text())["results"]["m"]
    assert res["cbt"] == {"ce": None, "ppl": None, "tokens": 0}
    assert res["all"]["tokens"] == res["aochildes"]["tokens"] + res["qed"]["tokens"] > 0
    assert res["all"]["ce"] > 1 and "| cbt | 0 | empty: no tokens |" in out.with_suffix(".md").read_text()
