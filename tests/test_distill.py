"""losses.py and distill_train.py: the pure loss against F.kl_div references, the trainer on tiny teachers, accumulation, checks."""

import json
import math
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from babyllama import config
from conftest import save_random_model, tiny_run_config
from babyllama.losses import distillation_loss

B, T, V = 3, 6, 17


@pytest.fixture
def batch():
    g = torch.Generator().manual_seed(0)
    s = torch.randn(B, T, V, generator=g, dtype=torch.float64).float().requires_grad_(True)
    t1, t2 = torch.randn(B, T, V, generator=g) * 2, torch.randn(B, T, V, generator=g)
    labels = torch.randint(0, V, (B, T), generator=g)
    labels[1, 4:] = -100  # padding at the end of one row
    return s, t1, t2, labels


def reference(s, teacher, labels, alpha, temp, norm):
    """The textbook formula, written independently: F.cross_entropy + F.kl_div on the unmasked positions."""
    ce = F.cross_entropy(s[:, :-1].reshape(-1, V), labels[:, 1:].reshape(-1), ignore_index=-100)
    m = labels.ne(-100)
    kl = F.kl_div(F.log_softmax(s[m] / temp, -1), F.softmax(teacher[m] / temp, -1), reduction="sum")
    kl = kl / (B if norm == "batchmean" else m.sum())
    return alpha * ce + (1 - alpha) * temp ** 2 * kl, ce, kl


@pytest.mark.parametrize("norm", ["batchmean", "token_mean"])
@pytest.mark.parametrize("temp", [1.0, 2.0])
def test_matches_reference_value_and_gradient(batch, norm, temp):
    s, t1, t2, labels = batch
    out = distillation_loss(s, [t1, t2], labels, alpha=0.3, temperature=temp, kl_normalization=norm, chunk_size=5)
    (g,) = torch.autograd.grad(out.loss, s)
    ref, ce, kl = reference(s, (t1 + t2) / 2, labels, 0.3, temp, norm)
    (g_ref,) = torch.autograd.grad(ref, s)
    assert out.loss.item() == pytest.approx(ref.item(), rel=1e-5)
    assert out.ce.item() == pytest.approx(ce.item(), rel=1e-5) and out.kl.item() == pytest.approx(kl.item(), rel=1e-5)
    torch.testing.assert_close(g, g_ref, rtol=1e-4, atol=1e-7)


def test_batchmean_is_authors_kldivloss_on_unpadded_chunks(batch):
    s, t1, _, labels = batch
    labels = labels.clamp_min(0)  # no padding: the authors' setting
    out = distillation_loss(s, t1, labels, alpha=0.0, temperature=2.0, kl_normalization="batchmean")
    authors = torch.nn.KLDivLoss(reduction="batchmean")(F.log_softmax(s / 2, -1), F.softmax(t1 / 2, -1)) * 4
    assert out.loss.item() == pytest.approx(authors.item(), rel=1e-5)
    tok = distillation_loss(s, t1, labels, alpha=0.0, temperature=2.0, kl_normalization="token_mean")
    assert out.loss.item() == pytest.approx(tok.loss.item() * T, rel=1e-5)  # batchmean weighs the KL T times more


def test_alpha_one_is_ce_alone(batch):
    s, t1, _, labels = batch
    out = distillation_loss(s, t1, labels, alpha=1.0)
    ce = F.cross_entropy(s[:, :-1].reshape(-1, V), labels[:, 1:].reshape(-1), ignore_index=-100)
    assert out.loss.item() == pytest.approx(ce.item(), rel=1e-6)
    (g,) = torch.autograd.grad(out.loss, s)
    (g_ref,) = torch.autograd.grad(ce, s)
    torch.testing.assert_close(g, g_ref)


def test_student_equal_to_teacher_gives_zero_kl(batch):
    s, _, _, labels = batch
    out = distillation_loss(s, s.detach().clone(), labels, alpha=0.5, temperature=2.0)
    assert abs(out.kl.item()) < 1e-6


def test_identical_teachers_equal_one_teacher(batch):
    s, t1, _, labels = batch
    for combine in ("logits", "probs"):
        one = distillation_loss(s, [t1], labels, teacher_combine=combine)
        three = distillation_loss(s, [t1, t1.clone(), t1.clone()], labels, teacher_combine=combine)
        assert three.loss.item() == pytest.approx(one.loss.item(), rel=1e-5)


def test_probs_combination_and_weights(batch):
    s, t1, t2, labels = batch
    out = distillation_loss(s, [t1, t2], labels, alpha=0.0, temperature=2.0, teacher_combine="probs",
                            teacher_weights=[3, 1], kl_normalization="token_mean")
    m = labels.ne(-100)
    p = 0.75 * F.softmax(t1[m] / 2, -1) + 0.25 * F.softmax(t2[m] / 2, -1)
    kl = F.kl_div(F.log_softmax(s[m] / 2, -1), p, reduction="sum") / m.sum() * 4
    assert out.loss.item() == pytest.approx(kl.item(), rel=1e-5)


def test_masked_positions_change_nothing(batch):
    s, t1, t2, labels = batch
    base = distillation_loss(s, [t1, t2], labels)
    m = labels.eq(-100)
    s2 = s.detach().clone()
    s2[m] = 100 * torch.randn_like(s2[m])
    t1b = t1.clone()
    t1b[m] = -50.0
    other = distillation_loss(s2.requires_grad_(True), [t1b, t2], labels)
    # position 3 of row 1 predicts a masked token: its CE is not scored, but its own token is real, so its KL is
    assert other.ce.item() == pytest.approx(base.ce.item(), rel=1e-6)
    assert other.kl.item() == pytest.approx(base.kl.item(), rel=1e-6)


def test_temperature_squared_factor(batch):
    s, t1, _, labels = batch
    for temp in (1.0, 2.0, 4.0):
        out = distillation_loss(s, t1, labels, alpha=0.0, temperature=temp)
        assert out.loss.item() == pytest.approx(temp ** 2 * out.kl.item(), rel=1e-6)


# ----------------------------------------------------------------------------------------------------------------------
# the trainer


@pytest.fixture(scope="module")
def teachers(tiny_tokenizer_dir, tmp_path_factory):
    root = tmp_path_factory.mktemp("teachers")
    return [save_random_model(root / "gpt2", "gpt2", tiny_tokenizer_dir, seed=1),
            save_random_model(root / "llama", "llama", tiny_tokenizer_dir, seed=2)]


def test_tiny_distillation(tmp_path, tiny_corpus, tiny_tokenizer_dir, teachers):
    import distill_train
    from transformers import AutoModelForCausalLM, TrainerCallback
    from babyllama.models import load_causal_lm

    before = [{k: v.clone() for k, v in load_causal_lm(t).state_dict().items()} for t in teachers]
    seen = {}

    class Spy(TrainerCallback):
        def on_step_end(self, args, state, control, **kw):
            seen["trainer_teachers"] = seen.get("trainer_teachers") or spy_trainer.teachers

    cfg = tiny_run_config(tmp_path, tiny_corpus, tiny_tokenizer_dir, overrides=["training.max_steps=30"],
                          distill_teachers=teachers)
    spy_trainer = None
    orig = distill_train.DistillationTrainer.__init__

    def capture(self, *a, **k):
        nonlocal spy_trainer
        orig(self, *a, **k)
        spy_trainer = self

    distill_train.DistillationTrainer.__init__ = capture
    (teachers[0] / "metrics.json").write_text('{"words_seen": 12345}')  # a teacher's own count, recorded beside
    try:
        metrics = distill_train.run(cfg, callbacks=[Spy()])
    finally:
        distill_train.DistillationTrainer.__init__ = orig
        (teachers[0] / "metrics.json").unlink()
    assert metrics["teacher_words_seen"] == {str(teachers[0]): 12345, str(teachers[1]): None}
    logs = [h for h in spy_trainer.state.log_history if "loss" in h]
    # the random teachers are near-uniform, so the KL term starts small: the CE carries most of the fall
    assert logs[-1]["loss"] < logs[0]["loss"] - 0.3 and logs[-1]["ce"] < logs[0]["ce"] - 0.8, (logs[0], logs[-1])
    assert {"ce", "kl"} <= set(logs[0]) and {"eval_ce", "eval_kl", "eval_loss"} <= set(metrics)
    seen = [h["words_seen"] for h in logs]  # 8 chunks of about 20 words a step
    assert all(100 < b - a < 300 for a, b in zip(seen, seen[1:])) and metrics["words_seen"] == seen[-1]
    assert metrics["eval_loss"] == pytest.approx(0.5 * metrics["eval_ce"] + 0.5 * 4 * metrics["eval_kl"], rel=1e-3)
    for t, ref in zip(spy_trainer.teachers, before):
        assert not t.training and all(p.grad is None and not p.requires_grad for p in t.parameters())
        for k, v in t.state_dict().items():
            assert torch.equal(v.float(), ref[k].to(v.dtype).float()), k  # bit-identical (in the held dtype)
    model = AutoModelForCausalLM.from_pretrained(cfg.training.output_dir)
    assert model.config.hidden_size == 32


@pytest.mark.parametrize("norm", ["batchmean", "token_mean"])
def test_accumulation_gives_the_same_first_update(tmp_path, tiny_corpus, tiny_tokenizer_dir, teachers, norm):
    import distill_train
    from babyllama.models import load_causal_lm

    # max_grad_norm huge: never clips, but the Trainer logs the gradient norm, which sees any scale error that
    # Adam's scale-invariant first update would hide
    common = ["training.max_steps=1", "training.warmup_steps=0", "training.lr_scheduler=constant_with_warmup",
              "training.max_grad_norm=1e9", "distillation.teacher_precision=fp32",
              "training.load_best_model_at_end=false", "training.logging_steps=1",
              f"distillation.kl_normalization={norm}"]
    params, logs = [], []
    for name, micro in (("one", 8), ("two", 4)):
        cfg = tiny_run_config(tmp_path / name, tiny_corpus, tiny_tokenizer_dir, distill_teachers=teachers,
                              overrides=common + [f"training.per_device_batch_size={micro}"])
        distill_train.run(cfg)
        params.append(load_causal_lm(cfg.training.output_dir).state_dict())
        state = json.loads(next(Path(cfg.training.output_dir).glob("checkpoint-*/trainer_state.json")).read_text())
        logs.append(next(h for h in state["log_history"] if "grad_norm" in h))
    for key in ("loss", "grad_norm", "ce", "kl"):
        assert logs[0][key] == pytest.approx(logs[1][key], rel=1e-5), key
    for k in params[0]:
        # Adam's first step is lr * g / (|g| + eps): where |g| is near eps (1e-8) a 1e-6 relative difference in g
        # moves the step by up to ~0.3 % of lr (3e-3), so the weights agree to about 1e-5, not bit for bit
        torch.testing.assert_close(params[0][k], params[1][k], rtol=1e-5, atol=2e-5)
    # and the update is real: the weights moved away from the shared initialisation
    from transformers import set_seed
    from babyllama.models import build_model
    from tokenizer import load_tokenizer

    set_seed(0)
    init = build_model(cfg.model, load_tokenizer(tiny_tokenizer_dir), 32).state_dict()
    moved = max((params[0][k] - init[k]).abs().max().item() for k in init)
    assert moved > 1e-4


def test_vocab_mismatch_is_refused_before_training(tmp_path, tiny_corpus, tiny_tokenizer_dir, teachers, capsys):
    import distill_train
    from babyllama.config import run_cli
    from tokenizer import build_tokenizer, train_files

    other_tok = tmp_path / "tok300"
    build_tokenizer(train_files(tiny_corpus["train"]), vocab_size=300).save_pretrained(str(other_tok))
    odd = save_random_model(tmp_path / "odd", "llama", other_tok)
    cfg_path = tmp_path / "d.yaml"
    cfg = tiny_run_config(tmp_path, tiny_corpus, tiny_tokenizer_dir, distill_teachers=[teachers[0], odd])
    config.save_config(cfg, tmp_path, "d.yaml")
    capsys.readouterr()
    rc = run_cli(distill_train.main, ["--config", str(cfg_path)])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and "vocab size differs" in err[0] and "odd" in err[0], err
    assert not list(Path(cfg.training.output_dir).glob("checkpoint-*"))


def test_distillation_resume_matches_uninterrupted_run(tmp_path, tiny_corpus, tiny_tokenizer_dir, teachers):
    import distill_train
    from transformers import TrainerCallback

    class Killed(Exception):
        pass

    class KillAtFirstSave(TrainerCallback):
        def on_save(self, args, state, control, **kw):
            raise Killed

    over = ["training.max_steps=6", "training.eval_steps=3", "training.load_best_model_at_end=false",
            "distillation.teacher_precision=fp32"]
    full = distill_train.run(tiny_run_config(tmp_path / "full", tiny_corpus, tiny_tokenizer_dir,
                                             distill_teachers=teachers, overrides=over))
    part = tiny_run_config(tmp_path / "part", tiny_corpus, tiny_tokenizer_dir, distill_teachers=teachers,
                           overrides=over)
    with pytest.raises(Killed):
        distill_train.run(part, callbacks=[KillAtFirstSave()])
    resumed = distill_train.run(part, resume=True)
    assert resumed["global_step"] == 6
    for key in ("last_train_loss", "eval_loss", "eval_ce", "eval_kl"):
        assert resumed[key] == pytest.approx(full[key], abs=1e-5), key


def test_bf16_distillation_through_the_trainer(tmp_path, tiny_corpus, tiny_tokenizer_dir, teachers):
    """precision bf16 on the CPU: the student runs under autocast with bf16 logits, the teachers in bf16."""
    import distill_train

    cfg = tiny_run_config(tmp_path, tiny_corpus, tiny_tokenizer_dir, distill_teachers=teachers,
                          overrides=["training.max_steps=12", "training.precision=bf16",
                                     "distillation.teacher_precision=bf16"])
    m = distill_train.run(cfg)
    state = json.loads(next(Path(cfg.training.output_dir).glob("checkpoint-*/trainer_state.json")).read_text())
    logs = [h for h in state["log_history"] if "ce" in h]
    assert m["precision"] == "bf16" and all(map(math.isfinite, (m["eval_loss"], m["eval_ce"], m["eval_kl"])))
    assert logs[-1]["ce"] < logs[0]["ce"] - 0.3, (logs[0], logs[-1])


def test_the_final_evaluation_runs_the_teachers_once(tmp_path, tiny_corpus, tiny_tokenizer_dir, teachers, monkeypatch):
    """eval_steps divides max_steps: the last step is evaluated once, so the live teachers score the eval set once."""
    import distill_train
    from transformers import TrainerCallback

    calls, evaluated = [], []
    load = distill_train.load_teachers

    def counted(*a, **k):
        models = load(*a, **k)
        for m in models:
            m.register_forward_hook(lambda mod, args, out: calls.append(mod.training))
        return models

    class Count(TrainerCallback):
        def on_evaluate(self, args, state, control, **kw):
            evaluated.append(state.global_step)

    monkeypatch.setattr(distill_train, "load_teachers", counted)
    cfg = tiny_run_config(tmp_path, tiny_corpus, tiny_tokenizer_dir, distill_teachers=teachers,
                          overrides=["training.max_steps=4", "training.eval_steps=2"])
    distill_train.run(cfg, callbacks=[Count()])
    # 2 teachers x (4 train batches + 2 evaluations x 2 eval batches of 8 of the 16 eval chunks)
    assert evaluated == [2, 4] and len(calls) == 2 * (4 + 2 * 2)
