"""scoring.py, babyllama/report.py, eval_blimp.py and the BLiMP callback on tiny random models: scores against a
one-sentence-at-a-time reference, the fast path against the plain one, context layouts, ensembles (logits, probs,
weights), grouping and averages, the CLI end to end with its per-pair logs, and every input it refuses."""

import json

import pytest
import torch

import eval_blimp as eb
from babyllama import scoring as sc
from babyllama.callbacks import BlimpCallback
from babyllama.config import run_cli
from babyllama.files import model_fingerprint

PAIRS = [
    ("The dog sees the cat.", "The dog see the cat."),
    ("The dogs like my ball!", "The dogs likes my ball!"),
    ("Mommy has a bird.", "Mommy have a bird."),
    ("Daddy throws the big truck?", "Daddy throw the big truck?"),
    ("The cats find the baby.", "The cats finds the baby."),
    ("A bird wants the dogs.", "A bird want the dogs."),
    ("The baby likes daddy and the dog sees mommy.", "The baby like daddy."),
    ("My ball.", "My ball the the the big big truck truck sees."),
]
DIALOGUE = ("A: Where is the dog?\nB: The dog is here.", "A: Where is the dog?\nB: The dog are here.")


def _save(model, tok, folder):
    model.save_pretrained(str(folder))
    tok.save_pretrained(str(folder))
    return folder


def _tiny(kind, tok, seed):
    from transformers import AutoModelForCausalLM, GPT2Config, LlamaConfig

    torch.manual_seed(seed)
    special = dict(vocab_size=len(tok), bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id,
                   pad_token_id=tok.pad_token_id)
    if kind == "llama":
        cfg = LlamaConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
                          max_position_embeddings=128, **special)
    else:
        cfg = GPT2Config(n_embd=32, n_layer=2, n_head=4, n_positions=128, **special)
    cfg.initializer_range = 0.2  # sharper than the default: distributions far from uniform, scores well apart
    return AutoModelForCausalLM.from_config(cfg).eval()


@pytest.fixture(scope="module")
def tok(tiny_tokenizer_dir):
    from tokenizer import load_tokenizer

    return load_tokenizer(tiny_tokenizer_dir)


@pytest.fixture(scope="module")
def folders(tok, tmp_path_factory):
    """Saved tiny models: two LLaMAs and a GPT-2, each with the tokenizer."""
    root = tmp_path_factory.mktemp("models")
    return {name: _save(_tiny(kind, tok, seed), tok, root / name)
            for name, kind, seed in [("llama_a", "llama", 0), ("llama_b", "llama", 1), ("gpt2", "gpt2", 2)]}


def _load(folder):
    from babyllama.models import freeze, load_causal_lm

    return freeze(load_causal_lm(folder))


def reference_score(model, tok, sentence, prefix_id, forward=None):
    """The test's own scoring: one sentence, [prefix] + tokens(" " + sentence), log_softmax, sum over tokens 1.."""
    ids = [prefix_id] + tok(" " + sentence, add_special_tokens=False)["input_ids"]
    x = torch.tensor([ids])
    with torch.no_grad():
        logits = forward(x) if forward else model(input_ids=x).logits
    logp = torch.log_softmax(logits[0].float(), dim=-1)
    return sum(logp[t - 1, ids[t]].item() for t in range(1, len(ids)))


def test_scores_and_decisions_match_reference(folders, tok):
    model = _load(folders["llama_a"])
    scores = sc.score_pairs(model, tok, PAIRS, batch_size=4)
    for (good, bad), (sg, sb) in zip(PAIRS, scores):
        rg, rb = reference_score(model, tok, good, tok.bos_token_id), reference_score(model, tok, bad, tok.bos_token_id)
        assert sg == pytest.approx(rg, abs=1e-4) and sb == pytest.approx(rb, abs=1e-4)
        assert (sg >= sb) == (rg >= rb)
    assert len({round(s, 3) for pair in scores for s in pair}) > 8  # the sentences really get different scores


def test_prefix_token(tok):
    enc = sc.encode_pairs(tok, [("Mommy has a bird.", "Mommy have a bird.")], "bos")
    assert [s[0] for s in enc.seqs] == [tok.bos_token_id] * 2 and enc.starts == [1, 1]
    assert enc.seqs[0][1:] == tok(" Mommy has a bird.", add_special_tokens=False)["input_ids"]  # the leading space
    assert [s[0] for s in sc.encode_pairs(tok, [("a", "b")], "eos").seqs] == [tok.eos_token_id] * 2


@pytest.mark.parametrize("name", ["llama_a", "gpt2"])
def test_batch_size_does_not_change_scores(folders, tok, name):
    model = _load(folders[name])
    pairs = PAIRS + [DIALOGUE] + [(g + " " + g, b) for g, b in PAIRS]  # lengths from 3 to ~40 tokens
    one = sc.score_pairs(model, tok, pairs, batch_size=1)
    many = sc.score_pairs(model, tok, pairs, batch_size=32)
    assert torch.allclose(torch.tensor(one), torch.tensor(many), atol=1e-4)


def test_ensemble_of_one_equals_the_model(folders, tok):
    from babyllama.models import TeacherEnsemble

    model = _load(folders["llama_a"])
    single = sc.score_pairs(model, tok, PAIRS, batch_size=8)
    ens = sc.score_pairs(TeacherEnsemble.from_pretrained([folders["llama_a"]]), tok, PAIRS, batch_size=8)
    assert torch.allclose(torch.tensor(single), torch.tensor(ens), atol=1e-5)


def test_ensemble_of_two_is_the_mean_of_logits(folders, tok):
    from babyllama.models import TeacherEnsemble

    a, g = _load(folders["llama_a"]), _load(folders["gpt2"])
    ens = TeacherEnsemble.from_pretrained([folders["llama_a"], folders["gpt2"]])
    scores = sc.score_pairs(ens, tok, PAIRS, batch_size=3)

    def mean_logits(x):
        return (a(input_ids=x).logits + g(input_ids=x).logits) / 2

    for (good, bad), (sg, sb) in zip(PAIRS, scores):
        assert sg == pytest.approx(reference_score(None, tok, good, tok.bos_token_id, mean_logits), abs=1e-4)
        assert sb == pytest.approx(reference_score(None, tok, bad, tok.bos_token_id, mean_logits), abs=1e-4)


def test_ties_count_as_correct(folders, tok):
    model = _load(folders["llama_a"])
    pairs = [sc.Pair("same", i + 1, s, s, None) for i, (s, _) in enumerate(PAIRS)]
    scores = sc.score_pairs(model, tok, pairs)
    assert all(g == b for g, b in scores)
    assert sc.summarize(pairs, scores)["files"]["same"]["acc"] == 1.0


def test_multiline_dialogue_is_scored(folders, tok):
    model = _load(folders["llama_b"])
    (sg, sb), = sc.score_pairs(model, tok, [DIALOGUE])
    ids = tok(" " + DIALOGUE[0], add_special_tokens=False)["input_ids"]
    assert "\n" in tok.decode(ids)  # the newline is a token, not dropped
    assert sg == pytest.approx(reference_score(model, tok, DIALOGUE[0], tok.bos_token_id), abs=1e-4)
    assert sb == pytest.approx(reference_score(model, tok, DIALOGUE[1], tok.bos_token_id), abs=1e-4)


def _write_jsonl(path, records):
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")


def test_grouping_and_macro_averages(tmp_path):
    specs = {  # file -> (linguistics_term, number of pairs, number correct)
        "anaphor_gender_agreement": ("anaphor_agreement", 4, 3),
        "anaphor_number_agreement": ("anaphor_agreement", 2, 2),
        "animate_subject_passive": ("s-selection", 5, 1),
        "causative": ("argument_structure", 4, 4),
        "hypernym": (None, 4, 2),
        "turn_taking": (None, 2, 1),
    }
    scores = []
    for name, (term, n, correct) in specs.items():
        recs = [{"sentence_good": f"g{i}", "sentence_bad": f"b{i}", **({"linguistics_term": term} if term else {})}
                for i in range(n)]
        _write_jsonl(tmp_path / f"{name}.jsonl", recs)
        scores += [(0.0, -1.0)] * correct + [(-1.0, 0.0)] * (n - correct)
    pairs = sc.load_pairs(tmp_path)
    assert [p.file for p in pairs][:4] == ["anaphor_gender_agreement"] * 4
    res = sc.summarize(pairs, scores)
    assert res["files"]["animate_subject_passive"]["phenomenon"] == "argument_structure"
    assert list(res["phenomena"]) == ["anaphor_agreement", "argument_structure"]  # Table 1 order
    assert res["phenomena"]["anaphor_agreement"]["acc"] == pytest.approx((3 / 4 + 2 / 2) / 2)
    assert res["phenomena"]["argument_structure"]["acc"] == pytest.approx((1 / 5 + 4 / 4) / 2)
    assert res["phenomena"]["argument_structure"]["files"] == ["animate_subject_passive", "causative"]
    assert res["supplement"] == {"hypernym": 0.5, "turn_taking": 0.5}
    assert res["averages"]["phenomena"] == pytest.approx(((3 / 4 + 1) / 2 + (1 / 5 + 1) / 2) / 2)
    assert res["averages"]["supplement"] == pytest.approx(0.5)
    assert res["averages"]["files"] == pytest.approx((3 / 4 + 1 + 1 / 5 + 1 + 1 / 2 + 1 / 2) / 6)
    assert res["counts"] == {"pairs": 21, "correct": 13, "files": 6, "phenomena": 2, "supplement_files": 2}
    assert len(sc.load_pairs(tmp_path, max_pairs_per_file=1)) == 6


def _blimp_folder(root):
    root.mkdir()
    _write_jsonl(root / "regular_plural_subject_verb_agreement_1.jsonl",
                 [{"sentence_good": g, "sentence_bad": b, "linguistics_term": "subject_verb_agreement"}
                  for g, b in PAIRS])
    _write_jsonl(root / "animate_subject_trans.jsonl",
                 [{"sentence_good": g, "sentence_bad": b, "linguistics_term": "s-selection"} for g, b in PAIRS[:4]])
    _write_jsonl(root / "turn_taking.jsonl", [{"sentence_good": DIALOGUE[0], "sentence_bad": DIALOGUE[1]}] * 3)
    return root


def test_cli_end_to_end(folders, tmp_path, capsys):
    blimp, out = _blimp_folder(tmp_path / "blimp"), tmp_path / "results"
    rc = run_cli(eb.main, [
        "--blimp-dir", str(blimp), "--model", f"a={folders['llama_a']}", "--model", f"gpt2={folders['gpt2']}",
        "--ensemble", f"ens={folders['llama_a']},{folders['llama_b']}", "--output-dir", str(out), "--batch-size", "3",
        "--no-progress"])
    assert rc == 0
    for name in ("a", "gpt2", "ens"):
        r = json.loads((out / f"{name}.json").read_text())
        assert r["model"] == name and r["counts"]["pairs"] == 15 and r["settings"]["prefix"] == "bos"
        assert set(r["phenomena"]) == {"subject_verb_agreement", "argument_structure"}
        assert list(r["supplement"]) == ["turn_taking"]
    # each result names the weights it is of (a model's fingerprint; an ensemble's, one per member)
    assert json.loads((out / "a.json").read_text())["weights"] == model_fingerprint(folders["llama_a"])
    assert json.loads((out / "ens.json").read_text())["weights"] == [model_fingerprint(folders["llama_a"]),
                                                                     model_fingerprint(folders["llama_b"])]
    table = (out / "table.md").read_text()
    assert table.splitlines()[0] == "| Task | a | gpt2 | ens |"
    assert "S-V Agr." in table and "Arg. Structure" in table and "Turn Taking" in table
    assert table in capsys.readouterr().out  # printed too
    import matplotlib.image

    img = matplotlib.image.imread(str(out / "blimp.png"))
    assert img.ndim == 3 and img.shape[0] > 100 and img.shape[1] > 100

    # redraw from the saved JSONs alone
    again = tmp_path / "again"
    assert run_cli(eb.main, ["--plot-only", str(out / "a.json"), str(out / "ens.json"), "--output-dir", str(again)]) == 0
    assert (again / "table.md").read_text().splitlines()[0] == "| Task | a | ens |"
    assert (again / "blimp.png").stat().st_size > 1000


def test_cli_config_file_and_overrides(folders, tmp_path):
    blimp, out = _blimp_folder(tmp_path / "blimp"), tmp_path / "results"
    cfg = tmp_path / "eval.yaml"
    cfg.write_text(f"eval:\n  blimp_dir: {blimp}\n  models:\n    a: {folders['llama_a']}\n  output_dir: {out}\n"
                   "  prefix: eos\n")
    assert run_cli(eb.main, ["--config", str(cfg), "eval.max_pairs_per_file=2", "--no-progress"]) == 0
    r = json.loads((out / "a.json").read_text())
    assert r["counts"]["pairs"] == 6 and r["settings"]["prefix"] == "eos"


def _error_line(capsys):
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(err) == 1 and err[0].startswith("error: ")
    return err[0]


def test_cli_errors(folders, tmp_path, capsys):
    blimp = _blimp_folder(tmp_path / "blimp")
    base = ["--output-dir", str(tmp_path / "out"), "--no-progress"]

    assert run_cli(eb.main, ["--blimp-dir", str(blimp), "--model", f"x={tmp_path / 'missing'}"] + base) == 2
    assert "missing: model folder not found" in _error_line(capsys)

    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "p.jsonl").write_text('{"sentence_good": "a", "sentence_bad": "b"}\n{"sentence_good": "a",\n')
    assert run_cli(eb.main, ["--blimp-dir", str(bad), "--model", f"a={folders['llama_a']}"] + base) == 2
    assert "p.jsonl:2: not valid JSON" in _error_line(capsys)

    (bad / "p.jsonl").write_text('{"sentence_good": "a"}\n')
    assert run_cli(eb.main, ["--blimp-dir", str(bad), "--model", f"a={folders['llama_a']}"] + base) == 2
    assert "p.jsonl:1: sentence_bad is missing" in _error_line(capsys)

    empty = tmp_path / "empty"
    empty.mkdir()
    assert run_cli(eb.main, ["--blimp-dir", str(empty), "--model", f"a={folders['llama_a']}"] + base) == 2
    assert "no *.jsonl" in _error_line(capsys)

    assert run_cli(eb.main, ["--blimp-dir", str(tmp_path / "nope"), "--model", f"a={folders['llama_a']}"] + base) == 2
    assert "BLiMP folder not found" in _error_line(capsys)

    assert run_cli(eb.main, ["--model", f"a={folders['llama_a']}", "--config", str(tmp_path / "no.yaml")] + base) == 2
    assert "config file not found" in _error_line(capsys)

    assert not (tmp_path / "out" / "a.json").exists()  # nothing was scored


def test_callback_logs_through_the_trainer(folders, tok, tmp_path):
    from transformers import Trainer, TrainingArguments

    blimp = _blimp_folder(tmp_path / "blimp")
    model = _load(folders["llama_a"])
    for p in model.parameters():
        p.requires_grad_(True)
    ids = torch.tensor(sc.encode_pairs(tok, PAIRS[:1], "bos").seqs[0])
    data = [{"input_ids": ids, "labels": ids}] * 8
    args = TrainingArguments(output_dir=str(tmp_path / "run"), max_steps=2, per_device_train_batch_size=2,
                             logging_steps=100, report_to=[], save_strategy="no", use_cpu=True)
    trainer = Trainer(model=model, args=args, train_dataset=data, processing_class=tok)
    cb = BlimpCallback(blimp, every_steps=1, pairs_per_file=2, batch_size=4).attach(trainer)
    seen_modes = []
    orig = cb.evaluate
    cb.evaluate = lambda m, t=None: (seen_modes.append(m.training), orig(m, t))[1]
    trainer.train()
    logged = [h for h in trainer.state.log_history if "blimp_acc" in h]
    assert [h["step"] for h in logged] == [1, 2]
    assert {"blimp_acc", "blimp_acc_files", "blimp_subject_verb_agreement", "blimp_argument_structure",
            "blimp_supplement"} <= set(logged[0])
    # the last scoring saw the final weights: the first 2 pairs of each file, scored like score_pairs
    pairs = sc.load_pairs(blimp, 2)
    expect = sc.summarize(pairs, sc.score_pairs(model, tok, pairs))["averages"]
    model.train()
    assert logged[-1]["blimp_acc"] == pytest.approx(expect["phenomena"])
    assert logged[-1]["blimp_acc_files"] == pytest.approx(expect["files"])
    assert seen_modes == [True, True] and model.training  # trained in train mode, restored after each scoring


# ----------------------------------------------------------------------------------------------------------------------
# the fast path: one row per pair, the shared prefix once


def _ids_reference(model, seq):
    """log p(token t | tokens < t), t = 1.., of one sequence alone."""
    with torch.no_grad():
        logp = torch.log_softmax(model(input_ids=torch.tensor([seq])).logits[0].float(), dim=-1)
    return [logp[t - 1, seq[t]].item() for t in range(1, len(seq))]


@pytest.mark.parametrize("name", ["llama_a", "gpt2"])
def test_fast_path_equals_plain_path_across_batch_sizes(folders, tok, name):
    model = _load(folders[name])
    pairs = PAIRS + [DIALOGUE] + [(g + " " + g, b) for g, b in PAIRS] + [("My ball.", "My ball. The dog sees it.")]
    plain = sc.score_pairs(model, tok, pairs, batch_size=5, plain=True)
    for bs in (1, 3, 64):
        fast = sc.score_pairs(model, tok, pairs, batch_size=bs)
        assert torch.allclose(torch.tensor(fast), torch.tensor(plain), atol=1e-4, rtol=0)
        assert [g >= b for g, b in fast] == [g >= b for g, b in plain]
    enc = sc.encode_pairs(tok, pairs)
    plain_lp = sc.token_logprobs_plain(model, enc.seqs)
    for row_tokens in (4, 16, 1000):  # rows split often, sometimes, never
        fast_lp = sc.token_logprobs(model, enc.seqs, batch_size=2, row_tokens=row_tokens)
        assert [len(x) for x in fast_lp] == [len(x) for x in plain_lp]
        assert torch.allclose(torch.tensor(sum(fast_lp, [])), torch.tensor(sum(plain_lp, [])), atol=1e-4, rtol=0)
    assert sc.computed_positions(enc.seqs) < sc.computed_positions(enc.seqs, plain=True)  # really shares work


def test_prefix_sharing_without_a_shared_prefix_and_with_one_sentence_a_prefix(folders, tok):
    model = _load(folders["llama_a"])
    seqs = [[5, 6, 7, 8], [9, 10, 11],  # not even the first token shared
            [1, 5, 6], [1, 5, 6, 7, 8],  # the first sequence is a prefix of the second
            [1, 40, 41, 42], [1, 40],  # ... and the second of the first
            [1, 5, 6], [1, 50, 51]]  # a sequence seen before: scored once, in its first row
    for bs, row_tokens in [(1, 4), (2, 8), (8, 128)]:
        got = sc.token_logprobs(model, seqs, batch_size=bs, row_tokens=row_tokens)
        for seq, lp in zip(seqs, got):
            assert lp == pytest.approx(_ids_reference(model, seq), abs=1e-5)
    tokens, _, members = sc.tree_rows([tuple(s) for s in seqs[2:6]])[0]  # one tree: [1, 5, 6, 7, 8] + [40, 41, 42]
    assert tokens == [1, 5, 6, 7, 8, 40, 41, 42] and len(members) == 4
    # the same through text: " My ball." is a token prefix of " My ball. The dog sees it."
    short, long_ = "My ball.", "My ball. The dog sees it."
    enc = sc.encode_pairs(tok, [(short, long_)])
    assert enc.seqs[1][:len(enc.seqs[0])] == enc.seqs[0]
    (g, b), = sc.score_pairs(model, tok, [(short, long_)])
    assert g == pytest.approx(reference_score(model, tok, short, tok.bos_token_id), abs=1e-4)
    assert b == pytest.approx(reference_score(model, tok, long_, tok.bos_token_id), abs=1e-4)


def _context_reference(model, tok, context, continuation):
    """log P(" " + continuation | <bos> + context), by hand: the continuation's tokens after the context's."""
    ctx = [tok.bos_token_id] + tok(context, add_special_tokens=False)["input_ids"]
    cont = tok(" " + continuation, add_special_tokens=False)["input_ids"]
    ids = ctx + cont
    with torch.no_grad():
        logp = torch.log_softmax(model(input_ids=torch.tensor([ids])).logits[0].float(), dim=-1)
    return sum(logp[t - 1, ids[t]].item() for t in range(len(ctx), len(ids)))


def test_context_pairs_equal_a_hand_computation(folders, tok, tmp_path):
    model = _load(folders["llama_b"])
    _write_jsonl(tmp_path / "ctx.jsonl", [
        {"context": "Mommy has a bird.", "sentence_good": "The bird sees mommy.",
         "sentence_bad": "The bird see mommy."},
        {"context": "A: Where is the dog?\nB:", "sentence_good": "The dog is here.",
         "sentence_bad": "The dog are here."}])
    _write_jsonl(tmp_path / "two.jsonl", [{"context_good": "The dogs like my ball.",
                                           "context_bad": "The dogs likes my ball.", "target": "Daddy sees it."}])
    layouts = {}
    pairs = sc.load_pairs(tmp_path, layouts=layouts)
    assert layouts == {"ctx.jsonl": ("context", {"good": "sentence_good", "bad": "sentence_bad", "context": "context"}),
                       "two.jsonl": ("two-context", {"good": "context_good", "bad": "context_bad", "target": "target"})}
    for bs in (1, 4):
        scores = sc.score_pairs(model, tok, pairs, batch_size=bs)
        expect = [(_context_reference(model, tok, p.context, p.good), _context_reference(model, tok, p.context, p.bad))
                  for p in pairs[:2]]
        expect.append((_context_reference(model, tok, pairs[2].good, pairs[2].target),
                       _context_reference(model, tok, pairs[2].bad, pairs[2].target)))
        assert torch.allclose(torch.tensor(scores), torch.tensor(expect), atol=1e-4, rtol=0)
    # custom field names, from the config
    from babyllama.schema import PairFields

    _write_jsonl(tmp_path / "ctx.jsonl", [{"prompt": "Mommy has a bird.", "yes": "The bird sees mommy.", "no": "x"}])
    (tmp_path / "two.jsonl").unlink()
    p, = sc.load_pairs(tmp_path, fields=PairFields(good=["yes"], bad=["no"], context=["prompt"]))
    assert (p.layout, p.context, p.good, p.bad) == ("context", "Mommy has a bird.", "The bird sees mommy.", "x")


def _ensemble_reference(models, weights, combine, tok, sentence):
    ids = [tok.bos_token_id] + tok(" " + sentence, add_special_tokens=False)["input_ids"]
    with torch.no_grad():
        logits = [m(input_ids=torch.tensor([ids])).logits[0].float() for m in models]
    if combine == "logits":
        logp = torch.log_softmax(sum(w * x for w, x in zip(weights, logits)), dim=-1)
    else:
        logp = torch.log(sum(w * torch.softmax(x, dim=-1) for w, x in zip(weights, logits)))
    return sum(logp[t - 1, ids[t]].item() for t in range(1, len(ids)))


@pytest.mark.parametrize("combine", ["logits", "probs"])
def test_ensemble_combine_and_weights(folders, tok, combine):
    from babyllama.models import TeacherEnsemble

    a, g = _load(folders["llama_a"]), _load(folders["gpt2"])
    ens = TeacherEnsemble.from_pretrained([folders["llama_a"], folders["gpt2"]], weights=[0.7, 0.3], combine=combine)
    for plain in (False, True):
        scores = sc.score_pairs(ens, tok, PAIRS, batch_size=3, plain=plain)
        for (good, bad), (sg, sb) in zip(PAIRS, scores):
            assert sg == pytest.approx(_ensemble_reference([a, g], [0.7, 0.3], combine, tok, good), abs=1e-4)
            assert sb == pytest.approx(_ensemble_reference([a, g], [0.7, 0.3], combine, tok, bad), abs=1e-4)
    # weights matter: the 0.7/0.3 ensemble is not the equal one
    equal = sc.score_pairs(TeacherEnsemble.from_pretrained([folders["llama_a"], folders["gpt2"]], combine=combine),
                           tok, PAIRS)
    assert max(abs(x[0] - y[0]) for x, y in zip(scores, equal)) > 1e-2


def test_cli_ensemble_flags_and_yaml(folders, tok, tmp_path):
    blimp, out = _blimp_folder(tmp_path / "blimp"), tmp_path / "results"
    a, g = folders["llama_a"], folders["gpt2"]
    assert run_cli(eb.main, ["--blimp-dir", str(blimp), "--ensemble", f"ens={a},{g}", "--ensemble-combine", "probs",
                             "--ensemble-weights", "0.7,0.3", "--output-dir", str(out), "--log-pairs",
                             "--no-progress"]) == 0
    r = json.loads((out / "ens.json").read_text())
    assert r["settings"]["combine"] == "probs" and r["settings"]["weights"] == [0.7, 0.3]
    log = [json.loads(x) for x in (out / "ens.pairs.jsonl").read_text().splitlines()]
    models = [_load(a), _load(g)]
    for rec in log[:3]:
        assert rec["logp_good"] == pytest.approx(_ensemble_reference(models, [0.7, 0.3], "probs", tok, rec["good"]),
                                                 abs=1e-4)
    # the YAML form of the same ensemble gives the same numbers
    cfg = tmp_path / "eval.yaml"
    cfg.write_text(f"eval:\n  blimp_dir: {blimp}\n  output_dir: {tmp_path / 'y'}\n  log_pairs: true\n  ensembles:\n"
                   f"    ens: {{models: [{a}, {g}], combine: probs, weights: [0.7, 0.3]}}\n")
    assert run_cli(eb.main, ["--config", str(cfg), "--no-progress"]) == 0
    again = [json.loads(x) for x in (tmp_path / "y" / "ens.pairs.jsonl").read_text().splitlines()]
    assert [x["logp_good"] for x in again] == pytest.approx([x["logp_good"] for x in log], abs=1e-6)


def test_log_pairs_round_trip_into_the_tables(folders, tok, tmp_path, capsys):
    blimp, out = _blimp_folder(tmp_path / "blimp"), tmp_path / "results"
    _write_jsonl(blimp / "ctx.jsonl", [{"context": "Mommy has a bird.", "sentence_good": "The bird sees mommy.",
                                        "sentence_bad": "The bird see mommy."}] * 2)
    assert run_cli(eb.main, ["--blimp-dir", str(blimp), "--model", f"a={folders['llama_a']}", "--model",
                             f"b={folders['gpt2']}", "--output-dir", str(out), "--log-pairs", "--no-progress"]) == 0
    err = capsys.readouterr().err
    assert "layout blimp (good=sentence_good, bad=sentence_bad): 3 file(s)" in err
    assert "layout context (good=sentence_good, bad=sentence_bad, context=context): 1 file(s)" in err
    log = [json.loads(x) for x in (out / "a.pairs.jsonl").read_text().splitlines()]
    assert len(log) == 17
    first = log[0]  # files in name order: animate_subject_trans first
    assert (first["file"], first["line"], first["good"], first["bad"]) == ("animate_subject_trans", 1, *PAIRS[0])
    (sg, sb), = sc.score_pairs(_load(folders["llama_a"]), tok, [PAIRS[0]])
    assert (first["logp_good"], first["logp_bad"]) == pytest.approx((sg, sb), abs=1e-4)
    assert first["tokens_good"] == len(tok(" " + PAIRS[0][0], add_special_tokens=False)["input_ids"])
    ctx = next(x for x in log if x["file"] == "ctx")
    assert ctx["context"] == "Mommy has a bird." and ctx["layout"] == "context"
    assert ctx["tokens_bad"] == len(tok(" The bird see mommy.", add_special_tokens=False)["input_ids"])

    from_json, from_logs = tmp_path / "j", tmp_path / "l"
    assert run_cli(eb.main, ["--plot-only", str(out / "a.json"), str(out / "b.json"), "--output-dir",
                             str(from_json)]) == 0
    assert run_cli(eb.main, ["--plot-only", str(out / "a.pairs.jsonl"), str(out / "b.pairs.jsonl"),
                             "--output-dir", str(from_logs)]) == 0
    table = (from_logs / "table.md").read_text()
    assert table == (from_json / "table.md").read_text() == (out / "table.md").read_text()
    assert table.splitlines()[0] == "| Task | a | b |" and (from_logs / "blimp.png").stat().st_size > 1000


def test_report_is_generic(tmp_path):
    from babyllama import report
    rows = [report.Row("CoLA", "tasks", {"a": -12.5, "b": 30.0}), report.Row("MRPC", "tasks", {"a": 40.0, "b": None}),
            report.Row("Average", "averages", {"a": 13.75, "b": 30.0})]
    table = report.format_table(rows, ["a", "b"], header="GLUE (MCC x 100)")
    assert table.splitlines() == ["| GLUE (MCC x 100) | a | b |", "| --- | ---: | ---: |",
                                  "| CoLA | -12.5 | **30.0** |",
                                  "| MRPC | **40.0** | – |", "| *Average* | 13.8 | **30.0** |"]
    png = report.parallel_plot(rows, ["a", "b"], tmp_path / "glue.png", "MCC x 100", (-100, 100), chance=0)
    assert png.stat().st_size > 1000


def _copy(src, dst):
    import shutil

    shutil.copytree(src, dst)
    return dst


def test_cli_refuses_wrong_inputs_before_scoring(folders, tmp_path, capsys):
    """Issue 15.5: each broken input is one line naming what and where, exit 2, and nothing is scored."""
    blimp, out = _blimp_folder(tmp_path / "blimp"), tmp_path / "out"
    a = folders["llama_a"]
    base = ["--output-dir", str(out), "--no-progress"]

    def refused(argv, expect, data=blimp):
        assert run_cli(eb.main, ["--blimp-dir", str(data)] + argv + base) == 2
        assert expect in _error_line(capsys)
        assert not list(out.glob("*.json")) if out.exists() else True

    # two folders with the same base name, and two names that write the same file
    one, two = _copy(a, tmp_path / "x" / "model"), _copy(a, tmp_path / "y" / "model")
    refused(["--model", str(one), "--model", str(two)], "are both named 'model'")
    refused(["--model", f"a/b={a}", "--model", f"a_b={a}"], "'a/b' and 'a_b' would both write a_b.json")
    refused(["--model", f"t={a}", "--ensemble", f"t={a},{a}"], "the name 't' is given twice")

    # pairs with identical, empty, or identically tokenized sentences: file and line
    bad = tmp_path / "bad"
    bad.mkdir()
    _write_jsonl(bad / "p.jsonl", [{"sentence_good": "a b", "sentence_bad": "b a"},
                                   {"sentence_good": "The dog.", "sentence_bad": "The dog."}])
    refused(["--model", f"a={a}", "eval.identical_pairs=error"], "p.jsonl:2: sentence_good and sentence_bad are "
            "identical", bad)
    assert run_cli(eb.main, ["--blimp-dir", str(bad), "--model", f"a={a}", "eval.identical_pairs=tie"] + base) == 0
    assert "warning: 1 pair(s) have identical sentences for 'a' (first: p line 2)" in capsys.readouterr().err
    assert json.loads((out / "a.json").read_text())["files"]["p"]["total"] == 2  # the tie is counted (correct)
    (out / "a.json").unlink()
    _write_jsonl(bad / "p.jsonl", [{"sentence_good": "The dog.", "sentence_bad": " "}])
    refused(["--model", f"a={a}"], "p.jsonl:1: sentence_bad is empty", bad)
    _write_jsonl(bad / "p.jsonl", [{"sentence_good": "The dog.", "sentence_bad": "The cat."},
                                   {"sentence_good": "\ufb01sh", "sentence_bad": "fish"}])  # NFKC: the same ids
    refused(["--model", f"a={a}", "eval.identical_pairs=error"], "p line 2: the two sentences tokenize to the same "
            "ids", bad)

    # a model folder without weights, a corrupt tokenizer.json, an ensemble whose tokenizers differ
    no_weights = _copy(a, tmp_path / "no_weights")
    for f in no_weights.glob("*.safetensors"):
        f.unlink()
    refused(["--model", f"a={no_weights}"], "no_weights: no weights (*.safetensors) in this model folder")
    corrupt = _copy(a, tmp_path / "corrupt")
    (corrupt / "tokenizer.json").write_text('{"version": "1.0", "model": {')
    refused(["--model", f"a={a}", "--model", f"c={corrupt}"], "corrupt: cannot load its tokenizer")
    other = _copy(a, tmp_path / "other_vocab")
    from conftest import make_lines
    from tokenizer import build_tokenizer

    corpus = tmp_path / "c.train"
    corpus.write_text("\n".join(make_lines(300, 7)) + "\n")
    build_tokenizer([corpus], vocab_size=300).save_pretrained(str(other))
    refused(["--model", f"a={a}", "--ensemble", f"e={a},{other}"], "vocab size differs")
    refused(["--model", f"a={a}", "--ensemble", f"e={a},{a}", "--ensemble-weights", "1,2,3"],
            "eval.ensembles.e.weights: 3 weights for 2 models")


# ----------------------------------------------------------------------------------------------------------------------
# the BabyLM 2024/2025 suites: EWoK, entity tracking, wug (records as the organisers publish them, made up here)

EWOK = [{"Domain": "social-relations", "ConceptA": "friend", "ConceptB": "enemy", "ContextType": "direct",
         "ContextDiff": "antonym", "TargetDiff": "concept swap", "Context1": "Mommy likes the dog.",
         "Context2": "Mommy hates the dog.", "Target1": "The dog is her friend.", "Target2": "The dog is her enemy."}]
ENTITY = [{"sample_id": 7, "numops": 0, "input_prefix": "Box 0 contains the ball, Box 1 contains the cat. Box 1 contains ",
           "options": ["the cat.", "the ball.", "nothing."], "example_id": 0},
          {"sample_id": 9, "numops": 1, "input_prefix": "Box 0 contains the dog. Move the dog to Box 1. Box 1 contains ",
           "options": ["the dog.", "nothing.", "the dog and the cat.", "the cat."], "example_id": 1},
          {"sample_id": 3, "numops": 0, "input_prefix": "Box 0 contains nothing. Box 0 contains ",
           "options": ["nothing.", "the big truck."], "example_id": 2}]
WUG = [{"sentences": "Make a noun of the adjective: blickable. blickability\t"
                     "Make a noun of the adjective: blickable. blickableness", "ratio": 0.8},
       {"sentences": "Make a noun of the adjective: dax. daxity\tMake a noun of the adjective: dax. daxness",
        "ratio": 0.2}]


def _suites(root):
    """One folder per suite, as the organisers ship them."""
    for name, recs in (("ewok_filtered/social-relations", EWOK), ("entity_tracking/regular", ENTITY),
                       ("wug_adj_nominalization/wug_adj_nominalization", WUG)):
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        _write_jsonl(root / f"{name}.jsonl", recs)
    return {k: root / k for k in ("ewok_filtered", "entity_tracking", "wug_adj_nominalization")}


def test_each_suite_is_detected_from_its_fields(tmp_path):
    dirs = _suites(tmp_path)
    blimp = _blimp_folder(tmp_path / "blimp")
    found = {}
    ewok, = sc.load_pairs(dirs["ewok_filtered"], layouts=found)
    ents = sc.load_pairs(dirs["entity_tracking"], layouts=found)
    wug = sc.load_pairs(dirs["wug_adj_nominalization"], layouts=found)
    bl = sc.load_pairs(blimp, layouts=found)
    assert found["social-relations.jsonl"] == ("context", {"context": "Context1", "good": "Target1", "bad": "Target2"})
    assert (ewok.suite, ewok.context, ewok.good, ewok.bad) == ("ewok", "Mommy likes the dog.", "The dog is her friend.",
                                                               "The dog is her enemy.")
    assert ewok.texts() == (("Mommy likes the dog.", "The dog is her friend."),
                            ("Mommy likes the dog.", "The dog is her enemy."))
    assert found["regular.jsonl"][0] == "choice"
    e = ents[1]
    assert (e.suite, e.subset, e.good, e.bad, e.others) == ("entity_tracking", "regular_1_ops", "the dog.", "nothing.",
                                                            ("the dog and the cat.", "the cat."))
    assert e.context == "Box 0 contains the dog. Move the dog to Box 1. Box 1 contains"  # its space joins the option
    assert [p.subset for p in ents] == ["regular_0_ops", "regular_1_ops", "regular_0_ops"]
    assert found["wug_adj_nominalization.jsonl"] == ("wug", {"sentences": "sentences", "ratio": "ratio"})
    assert [(p.suite, p.good, p.bad, p.ratio) for p in wug][1] == (
        "wug", "Make a noun of the adjective: dax. daxity", "Make a noun of the adjective: dax. daxness", 0.2)
    assert {p.file: p.suite for p in bl} == {"animate_subject_trans": "blimp", "regular_plural_subject_verb_agreement_1":
                                             "blimp", "turn_taking": "supplement"}
    # the cap counts per entity-tracking subset: one item of each
    assert [p.line for p in sc.load_pairs(dirs["entity_tracking"], max_pairs_per_file=1)] == [1, 2]
    # a broken record of a suite: file, line, what is expected
    _write_jsonl(dirs["wug_adj_nominalization"] / "wug_adj_nominalization.jsonl", [{"sentences": "one", "ratio": 0.5}])
    with pytest.raises(sc.UserError, match=r"wug_adj_nominalization.jsonl:1: expected two forms separated by a tab"):
        sc.load_pairs(dirs["wug_adj_nominalization"])


def test_multiple_choice_equals_a_hand_computation(folders, tok, tmp_path):
    model = _load(folders["llama_b"])
    pairs = sc.load_pairs(_suites(tmp_path)["entity_tracking"])
    scores = sc.score_pairs(model, tok, pairs, batch_size=2)
    assert [len(s) for s in scores] == [3, 4, 2]
    hand = []
    for rec in ENTITY:
        ctx = rec["input_prefix"][:-1]
        # the context + " " + option tokens are the whole sentence's, as the organisers tokenize it
        whole = tok(rec["input_prefix"] + rec["options"][0], add_special_tokens=False)["input_ids"]
        assert whole == tok(ctx, add_special_tokens=False)["input_ids"] + tok(
            " " + rec["options"][0], add_special_tokens=False)["input_ids"]
        hand.append([_context_reference(model, tok, ctx, o) for o in rec["options"]])
    for got, want in zip(scores, hand):
        assert got == pytest.approx(want, abs=1e-4)
    picked = [max(range(len(h)), key=lambda i: (h[i], -i)) for h in hand]  # argmax, the first of equal maxima
    res = sc.summarize(pairs, scores)["suites"]["entity_tracking"]
    right = [int(k == 0) for k in picked]
    assert res["rows"] == {"regular_0_ops": pytest.approx((right[0] + right[2]) / 2), "regular_1_ops": right[1]}
    # the right option picked on given scores: a win, a loss, a tie (counted right, as lm-eval's argmax)
    res = sc.summarize(pairs, [(-1.0, -2.0, -3.0), (-2.0, -1.0, -3.0, -4.0), (-5.0, -5.0)])
    assert res["files"]["regular"] == {"suite": "entity_tracking", "phenomenon": "supplement", "correct": 2,
                                       "total": 3, "acc": 2 / 3}
    assert res["suites"]["entity_tracking"] == {"rows": {"regular_0_ops": 1.0, "regular_1_ops": 0.0},
                                                "splits": {"regular": 0.5}, "avg": 0.5}
    assert res["averages"] == {"phenomena": None, "supplement": None, "files": None}  # nothing of BLiMP's


@pytest.mark.parametrize("row_tokens", [128, 24])
def test_prefix_tree_equals_plain_path_on_multiple_choice(folders, tok, tmp_path, monkeypatch, row_tokens):
    monkeypatch.setattr(sc, "ROW_TOKENS", row_tokens)  # 24: every item is wider than a row, which then holds one item
    model = _load(folders["gpt2"])
    pairs = sc.load_pairs(_suites(tmp_path)["entity_tracking"]) + [sc.Pair("x", 1, *PAIRS[0])]
    enc = sc.encode_pairs(tok, pairs)
    s0 = sorted(enc.seqs[0:3])
    assert sc.item_tree_tokens(enc) >= len(s0[0]) + sum(len(b) - sc._lcp(a, b) for a, b in zip(s0, s0[1:]))
    plain = sc.score_encoded(model, enc, plain=True)
    for bs in (1, 3, 64):
        fast = sc.score_encoded(model, enc, batch_size=bs)
        assert [len(s) for s in fast] == [3, 4, 2, 2]
        assert torch.allclose(torch.tensor([x for s in fast for x in s]), torch.tensor([x for s in plain for x in s]),
                              atol=1e-4, rtol=0)


def test_wug_correlation_matches_scipy_on_a_toy_list():
    import math

    from scipy.stats import spearmanr

    scores = [(-10.0, -12.0), (-8.0, -7.5), (-20.0, -20.0), (-3.0, -9.0), (-6.0, -5.0), (-9.0, -11.0)]
    ratios = [0.7, 0.3, 0.5, 0.9, 0.3, 0.6]
    pref = [1 / (1 + math.exp(b - a)) for a, b in scores]  # softmax over the two forms, the first one's share

    def ranks(xs):  # 1-based, ties get their mean rank
        return [sum(y < x for y in xs) + (sum(y == x for y in xs) + 1) / 2 for x in xs]

    rp, rr = ranks(pref), ranks(ratios)
    mp, mr = sum(rp) / len(rp), sum(rr) / len(rr)
    cov = sum((a - mp) * (b - mr) for a, b in zip(rp, rr))
    hand = cov / math.sqrt(sum((a - mp) ** 2 for a in rp) * sum((b - mr) ** 2 for b in rr))
    rho = sc.wug_correlation(scores, ratios)
    assert rho == pytest.approx(hand) == pytest.approx(spearmanr(pref, ratios).statistic)
    assert rho == pytest.approx(spearmanr([a - b for a, b in scores], ratios).statistic)  # only the order counts
    assert sc.wug_correlation([(-1.0, -2.0)] * 3, [0.1, 0.2, 0.3]) is None  # a constant preference: undefined
    pairs = [sc.Pair("wug", i, f"a{i}", f"b{i}", layout="wug", suite="wug", ratio=r) for i, r in enumerate(ratios)]
    res = sc.summarize(pairs, scores)
    assert res["suites"]["wug"] == {"rows": {"wug": pytest.approx(hand)}, "avg": pytest.approx(hand)}


def test_a_folder_mixing_suites_is_split_with_a_message(folders, tmp_path, capsys):
    from babyllama import report
    dirs = _suites(tmp_path / "suites")
    mixed = _blimp_folder(tmp_path / "mixed")
    for d in dirs.values():
        for f in d.iterdir():
            f.rename(mixed / f.name)
    out = tmp_path / "out"
    assert run_cli(eb.main, ["--blimp-dir", str(mixed), "--model", f"a={folders['llama_a']}", "--output-dir",
                             str(out), "--no-progress"]) == 0
    err = capsys.readouterr().err
    assert (f"note: {mixed} mixes suites (blimp: 3 file(s), e.g. animate_subject_trans; entity_tracking: 1 file(s), "
            "e.g. regular; ewok: 1 file(s), e.g. social-relations; wug: 1 file(s), e.g. wug_adj_nominalization); each "
            "is reported in its own table, never in another's average") in err
    r = json.loads((out / "a.json").read_text())
    assert list(r["supplement"]) == ["turn_taking"]  # EWoK, entity tracking and wug are not supplement tasks
    assert r["averages"]["supplement"] == r["files"]["turn_taking"]["acc"]
    assert r["averages"]["files"] == pytest.approx(sum(r["files"][f]["acc"] for f in (
        "animate_subject_trans", "regular_plural_subject_verb_agreement_1", "turn_taking")) / 3)
    assert r["suites"]["ewok"] == {"rows": {"social-relations": r["files"]["social-relations"]["acc"]},
                                   "avg": r["files"]["social-relations"]["acc"]}
    table = (out / "table.md").read_text()
    assert table == report.markdown_table({"a": r})
    sections = table.split("\n### ")
    assert [s.splitlines()[0] for s in sections[1:]] == [
        "EWoK (accuracy %)", "Entity tracking (accuracy %)",
        "Wug adjective nominalization (Spearman's rho with the human ratio)"]
    assert "| social-relations |" in sections[1] and "Supplement avg." in sections[0]
    assert "| *regular (mean of its subsets)* |" in sections[2] and "| regular_1_ops |" in sections[2]
    # the same suites given as separate folders, in one command: the same results
    again = tmp_path / "again"
    assert run_cli(eb.main, ["--blimp-dir", str(_blimp_folder(tmp_path / "b2"))] + sum(
        (["--blimp-dir", str(_suites(tmp_path / "s2")[k])] for k in dirs), []) + [
        "--model", f"a={folders['llama_a']}", "--output-dir", str(again), "--no-progress"]) == 0
    assert "mixes suites" not in capsys.readouterr().err
    assert (again / "table.md").read_text() == table
    # a file name in two folders would share a row: refused
    assert run_cli(eb.main, ["--blimp-dir", str(tmp_path / "b2"), "--blimp-dir", str(mixed), "--model",
                             f"a={folders['llama_a']}", "--output-dir", str(again), "--no-progress"]) == 2
    assert "two files named 'animate_subject_trans' would share one result row" in _error_line(capsys)


def test_long_items_are_refused_or_lose_their_contexts_first_tokens():
    enc = sc.Encoded([[0, 1, 2, 3, 4, 5], [0, 1, 2, 3, 9], [0, 7, 8], [0, 7, 6], [0, 1, 2, 3, 4, 5], [0, 5]],
                     [4, 4, 1, 1, 2, 1], [2, 2, 2])
    pairs = [sc.Pair("f", k + 1, "a", "b") for k in range(3)]
    with pytest.raises(sc.UserError, match=r"f line 1: 6 tokens exceed the model's 4 positions; set "
                                           r"eval.long_items=truncate"):
        sc.check_encoded(pairs[:2], sc.Encoded(enc.seqs[:4], enc.starts[:4], [2, 2]), 4)
    short, cut = sc.truncate_encoded(enc, 4)
    # item 1: both options lose the context's first 2 tokens (the longest's excess), the prefix token kept; item 2
    # fits; item 3's continuation alone (4 tokens after the prefix and 1 context token) cannot fit: left as it is
    assert cut == 1
    assert short.seqs[:4] == [[0, 3, 4, 5], [0, 3, 9], [0, 7, 8], [0, 7, 6]] and short.starts[:4] == [2, 2, 1, 1]
    assert short.seqs[4:] == enc.seqs[4:] and short.sizes == enc.sizes
    with pytest.raises(sc.UserError, match=r"f line 3: 6 tokens exceed"):
        sc.check_encoded(pairs, short, 4)


def test_homogeneous_ensemble_gain_over_its_members(folders, tmp_path, capsys):
    """Two seeds of one config scored as an ensemble beside both: ensemble_gains.json holds its gain in BLiMP points
    over the members' mean and the best member, from the result files."""
    from babyllama.report import ensemble_gain

    g = ensemble_gain(71.0, [67.0, 70.5, 69.5], higher_is_better=True)  # accuracy: higher is better
    assert (g["members_mean"], g["best_member"]) == (69.0, 70.5)
    assert (g["gain_over_mean"], g["gain_over_best"]) == pytest.approx((2.0, 0.5))
    loss = ensemble_gain(3.66, [3.77, 3.70])  # the paper's eval loss: lower is better, so the gain is positive
    assert (loss["gain_over_mean"], loss["gain_over_best"]) == pytest.approx((0.075, 0.04))
    blimp, out = _blimp_folder(tmp_path / "blimp"), tmp_path / "results"
    a, b = folders["llama_a"], folders["llama_b"]
    assert run_cli(eb.main, ["--blimp-dir", str(blimp), "--model", f"a={a}", "--model", f"b={b}",
                             "--ensemble", f"ab={a},{b}", "--output-dir", str(out), "--no-progress"]) == 0
    avg = {n: 100 * json.loads((out / f"{n}.json").read_text())["averages"]["phenomena"] for n in ("a", "b", "ab")}
    gains = json.loads((out / "ensemble_gains.json").read_text())
    assert list(gains) == ["ab"] and gains["ab"]["members"] == ["a", "b"]
    assert gains["ab"]["gain_over_mean"] == pytest.approx(avg["ab"] - (avg["a"] + avg["b"]) / 2)
    assert gains["ab"]["gain_over_best"] == pytest.approx(avg["ab"] - max(avg["a"], avg["b"]))
    assert f"ensemble ab: BLiMP avg {avg['ab']:.1f}; members (a, b)" in capsys.readouterr().out


# ----------------------------------------------------------------------------------------------------------------------
# the babylm2025 convention: the organisers' rule written out here from their read_files.py, dataset.py and
# compute_results.py (babylm/evaluation-pipeline-2025), applied to raw records


def _organisers_sentences(rec):
    """(sentences, completions) of a raw record, as their read_files decodes each task."""
    if "Context1" in rec:  # ewok
        return [rec["Context1"] + " " + rec[t] for t in ("Target1", "Target2")], [" " + rec["Target1"],
                                                                                " " + rec["Target2"]]
    if "input_prefix" in rec:  # entity tracking
        return [rec["input_prefix"] + o for o in rec["options"]], rec["options"]
    if "ratio" in rec:  # wug
        return rec["sentences"].split("\t"), rec["sentences"].split("\t")
    return [rec["sentence_good"], rec["sentence_bad"]], [rec["sentence_good"], rec["sentence_bad"]]


def _organisers_score(model, tok, sentence, completion):
    """The whole sentence tokenized with its special tokens; inputs all but the last token, targets all but the first;
    a target counts when its character span ends past len(sentence) - len(completion) + the first token's start."""
    enc = tok(sentence, return_offsets_mapping=True)
    ids, offs = enc["input_ids"], enc["offset_mapping"]
    start = len(sentence) - len(completion) + offs[0][0]
    mask = torch.tensor([float(end > start) for _, end in offs])[1:]
    logp = torch.log_softmax(model(input_ids=torch.tensor([ids[:-1]])).logits[0], -1)
    return float((logp.gather(-1, torch.tensor(ids[1:])[:, None])[:, 0] * mask).sum())


@pytest.mark.parametrize("bos", [False, True])
def test_babylm2025_scores_equal_a_hand_computation_of_the_organisers_rule(folders, tmp_path, bos):
    from scipy.stats import spearmanr
    from tokenizers import processors

    from tokenizer import load_tokenizer

    tok = load_tokenizer(folders["llama_a"])
    if bos:  # a post-processor that adds BOS: the only way BOS enters their sentences
        tok.backend_tokenizer.post_processor = processors.Sequence([
            processors.ByteLevel(trim_offsets=False),
            processors.TemplateProcessing(single="<s> $A", special_tokens=[("<s>", tok.bos_token_id)])])
    model = _load(folders["llama_a"])
    dirs = {**_suites(tmp_path), "blimp": _blimp_folder(tmp_path / "blimp")}
    raw = {"blimp": [{"sentence_good": g, "sentence_bad": b} for g, b in PAIRS[:4]] + [
        {"sentence_good": DIALOGUE[0], "sentence_bad": DIALOGUE[1]}], "ewok_filtered": EWOK, "entity_tracking": ENTITY,
        "wug_adj_nominalization": WUG}
    for name, folder in dirs.items():
        pairs = sc.load_pairs(folder, max_pairs_per_file=4 if name == "blimp" else None)
        if name == "blimp":  # animate_subject_trans (PAIRS[:4]), regular_plural (first 4), turn_taking (first of 3)
            pairs = [p for p in pairs if p.file != "regular_plural_subject_verb_agreement_1"][:5]
        enc = sc.encode_pairs(tok, pairs, convention="babylm2025")
        got = sc.score_encoded(model, enc, batch_size=3)
        with torch.no_grad():
            hand = [[_organisers_score(model, tok, s, c) for s, c in zip(*_organisers_sentences(rec))]
                    for rec in raw[name]]
        assert [list(g) for g in got] == [pytest.approx(h, abs=1e-4) for h in hand], name
        # the rules differ wherever there is no BOS, and where a text starts a sentence (its leading space); with BOS,
        # a continuation after a context differs only where its space is a token of its own (entity tracking's
        # "contains" + " " + "nothing.": the organisers score the space with the context)
        lm_eval = sc.score_encoded(model, sc.encode_pairs(tok, pairs), batch_size=3)
        differ = [abs(a - b) > 1e-3 for g, h in zip(got, lm_eval) for a, b in zip(g, h)]
        assert all(differ) or bos and name in ("ewok_filtered", "entity_tracking"), name
        if name == "wug_adj_nominalization":
            p = torch.softmax(torch.tensor(hand, dtype=torch.float32), 1)[:, 0]
            res = sc.summarize(pairs, got, "babylm2025")["suites"]["wug"]["avg"]
            assert res == pytest.approx(spearmanr(p.numpy(), [r["ratio"] for r in WUG]).statistic)


def test_babylm2025_wug_softmax_is_float32():
    from scipy.stats import spearmanr

    scores = [(0.0, -20.0), (0.0, -25.0), (0.0, -1.0), (0.0, -2.0), (0.0, 3.0)]
    ratios = [0.2, 0.9, 0.3, 0.4, 0.1]
    f32 = torch.softmax(torch.tensor(scores, dtype=torch.float32), 1)[:, 0]
    assert f32[0] == f32[1] == 1.0  # float32 rounds both to 1: a tie that float64 keeps apart
    rho32, rho64 = sc.wug_correlation(scores, ratios, "babylm2025"), sc.wug_correlation(scores, ratios)
    assert rho32 == pytest.approx(spearmanr(f32.numpy(), ratios).statistic)
    assert rho64 == pytest.approx(spearmanr([a - b for a, b in scores], ratios).statistic) and rho64 != rho32


def test_cli_convention_is_recorded_and_named_in_the_table(folders, tmp_path):
    blimp, out = _blimp_folder(tmp_path / "blimp"), tmp_path / "results"
    assert run_cli(eb.main, ["--blimp-dir", str(blimp), "--model", f"a={folders['llama_a']}", "--convention",
                             "babylm2025", "--output-dir", str(out), "--log-pairs", "--no-progress"]) == 0
    res = json.loads((out / "a.json").read_text())
    assert res["settings"]["convention"] == "babylm2025"
    table = (out / "table.md").read_text()
    assert "Scored with the babylm2025 convention" in table
    log = out / "a.pairs.jsonl"
    assert json.loads(log.read_text().splitlines()[0])["convention"] == "babylm2025"
    again = tmp_path / "again"
    assert run_cli(eb.main, ["--plot-only", str(log), "--output-dir", str(again)]) == 0
    assert (again / "table.md").read_text() == table
