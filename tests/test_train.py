"""train.py: model factory sizes, tiny runs that learn and load back, exact resume, one-line errors."""

import json
import math
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from babyllama import config
from babyllama import schema
import train
from babyllama import run_folder, trainer_setup
from conftest import Killed, kill_at, tiny_run_config, write_split
from babyllama.models import build_model, count_parameters

ROOT = Path(__file__).resolve().parents[1]


class FakeTokenizer:
    """Only what the factory reads: the vocab size and the special ids of the paper's 16000-entry tokenizer."""
    bos_token_id, eos_token_id, pad_token_id = 1, 2, 0

    def __len__(self):
        return 16000


@pytest.mark.parametrize("name, expected", [("gpt2-705M.yaml", 705e6), ("llama-360M.yaml", 360e6),
                                            ("llama-58M.yaml", 58e6), ("baby-llama-58M.yaml", 58e6)])
def test_paper_models_have_the_paper_sizes(name, expected):
    cls = schema.DistillConfig if name.startswith("baby") else schema.TrainConfig
    cfg = config.load_config(cls, ROOT / "config" / name)
    model = build_model(cfg.model, FakeTokenizer(), cfg.data.seq_length, device="meta")
    n = count_parameters(model)
    assert abs(n - expected) / expected < 0.01, f"{name}: {n:,} parameters"


@pytest.mark.parametrize("model_type", ["llama", "gpt2", "gptj"])
def test_tiny_model_learns_and_loads_back(tmp_path, tiny_corpus, tiny_tokenizer_dir, model_type):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    cfg = tiny_run_config(tmp_path, tiny_corpus, tiny_tokenizer_dir, model_type, ["training.max_steps=40"])
    metrics = train.run(cfg)
    start = math.log(320)  # a random init predicts ~uniformly over the 320 tokens
    assert metrics["eval_loss"] < start - 2.0, metrics["eval_loss"]
    out = Path(cfg.training.output_dir)
    saved = json.loads((out / "metrics.json").read_text())
    assert saved["eval_loss"] == pytest.approx(metrics["eval_loss"]) and saved["global_step"] == 40
    assert config.load_config(schema.TrainConfig, out / "config.yaml") == cfg
    assert "## Hyperparameters" in (out / "README.md").read_text()
    model = AutoModelForCausalLM.from_pretrained(str(out))
    tok = AutoTokenizer.from_pretrained(str(out))
    ids = tok("The dog", return_tensors="pt").input_ids
    gen = model.generate(ids, max_new_tokens=8, do_sample=False, pad_token_id=tok.pad_token_id)
    assert gen.shape[1] == ids.shape[1] + 8 and isinstance(tok.decode(gen[0]), str)


def test_resume_matches_uninterrupted_run(tmp_path, tiny_corpus, tiny_tokenizer_dir):
    # logs every 5 steps: the kill at step 6 falls between two logs, which the whole run's train_loss must still count
    k, over = 6, ["training.max_steps=12", "training.eval_steps=100", "training.load_best_model_at_end=false",
                  "training.logging_steps=5"]
    full = train.run(tiny_run_config(tmp_path / "full", tiny_corpus, tiny_tokenizer_dir, overrides=over))
    part_cfg = tiny_run_config(tmp_path / "part", tiny_corpus, tiny_tokenizer_dir, overrides=over)
    with pytest.raises(Killed):
        train.run(part_cfg, callbacks=[kill_at(k)])
    assert [p.name for p in run_folder.checkpoints_in(part_cfg.training.output_dir)] == [f"checkpoint-{k}"]
    with pytest.raises(config.UserError, match="pass --resume"):
        train.run(part_cfg)  # never starts over a folder that holds checkpoints
    resumed = train.run(part_cfg, resume=True)
    assert resumed["global_step"] == 12
    assert resumed["last_train_loss"] == pytest.approx(full["last_train_loss"], abs=1e-5)
    assert resumed["eval_loss"] == pytest.approx(full["eval_loss"], abs=1e-5)
    # train_loss is the mean over all 12 steps, not over the 6 resumed ones only
    assert resumed["train_loss"] == pytest.approx(full["train_loss"], abs=1e-5) and "train_loss_steps" not in resumed
    logs = {h["step"]: h["loss"] for h in json.loads((Path(part_cfg.training.output_dir) / "checkpoint-12" /
                                                       "trainer_state.json").read_text())["log_history"] if "loss" in h}
    assert sorted(logs) == [5, 6, 10, 12]  # logged at the save of step 6, so the checkpoint covers steps 1-6
    assert abs(full["train_loss"] - (4 * logs[10] + 2 * logs[12]) / 6) > 1e-3  # the resumed steps' mean differs


def test_the_saved_model_is_the_best_epoch_through_a_resume(tmp_path, tiny_corpus, tiny_tokenizer_dir):
    """15 lines a source, lr 3e-2, 10 epochs: the dev CE bottoms out at epoch 7 and rises. A kill after the best
    epoch and a resume must still end with that epoch's weights (its checkpoint never rotated away, save_total_limit
    2), and metrics.json must name it."""
    from safetensors.torch import load_file

    small = {"train": write_split(tmp_path / "train", ".train", 15, 0), "dev": tiny_corpus["dev"]}
    over = ["training.num_epochs=10", "training.lr=3e-2", "training.batch_size=2",
            "training.lr_scheduler=constant_with_warmup"]
    cfg = tiny_run_config(tmp_path, small, tiny_tokenizer_dir, overrides=over)
    with pytest.raises(Killed):
        train.run(cfg, callbacks=[kill_at(34)])  # epoch 8.5: after the best epoch's checkpoint
    m = train.run(cfg, resume=True)
    ces = [r["dev_ce"] for r in m["curve"]]
    assert len(ces) == 10 and m["epochs_run"] == 10
    best = ces.index(min(ces))
    assert m["best_epoch"] == m["curve"][best]["epoch"] < 10 and ces[-1] > min(ces) + 0.05  # the test's premise
    assert m["best_step"] == m["curve"][best]["step"] and m["eval_loss"] == pytest.approx(min(ces))
    out = Path(cfg.training.output_dir)
    saved, chosen = load_file(out / "model.safetensors"), load_file(out / f"checkpoint-{m['best_step']}" /
                                                                     "model.safetensors")
    assert saved.keys() == chosen.keys() and all(torch.equal(saved[k], chosen[k]) for k in saved)
    assert json.loads((out / "metrics.json").read_text())["best_epoch"] == m["best_epoch"]


@pytest.mark.parametrize("max_steps, eval_steps, evaluated", [(4, 2, [2, 4]), (5, 2, [2, 4, 5])])
def test_the_final_evaluation_runs_once(tmp_path, tiny_corpus, tiny_tokenizer_dir, max_steps, eval_steps, evaluated):
    """The Trainer evaluates the last step; the epoch-end evaluation must not repeat it."""
    from transformers import TrainerCallback

    class Count(TrainerCallback):
        def __init__(self):
            self.steps = []

        def on_evaluate(self, args, state, control, **kw):
            self.steps.append(state.global_step)

    cfg = tiny_run_config(tmp_path, tiny_corpus, tiny_tokenizer_dir,
                          overrides=[f"training.max_steps={max_steps}", f"training.eval_steps={eval_steps}"])
    count = Count()
    m = train.run(cfg, callbacks=[count])
    assert count.steps == evaluated and m["global_step"] == max_steps


@pytest.mark.parametrize("overrides, needle", [
    (["model.type=mamba"], "model.type: got 'mamba'"),
    (["model.num_heads=3"], "model.num_heads: 3 heads do not divide hidden_size 128"),
    (["model.max_position_embeddings=32", "data.seq_length=64"], "is below data.seq_length 64"),
    (["data.tokenizer_dir={tmp}/nope"], "nope: no tokenizer.json here"),
])
def test_train_cli_errors(tmp_path, overrides, needle):
    args = [o.format(tmp=tmp_path) for o in overrides]
    # a train/dev folder that exists, so only the tested error can fire
    for split, suffix in (("train", ".train"), ("dev", ".dev")):
        (tmp_path / split).mkdir()
        (tmp_path / split / f"aochildes{suffix}").write_text("hello there.\n" * 50)
    cmd = [sys.executable, "train.py", "--config", "config/tiny-llama.yaml", f"data.train_dir={tmp_path / 'train'}",
           f"data.dev_dir={tmp_path / 'dev'}", f"training.output_dir={tmp_path / 'out'}", *args]
    r = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=120)
    lines = r.stderr.strip().splitlines()
    assert r.returncode == 2 and len(lines) == 1 and needle in lines[0] and "Traceback" not in r.stderr, r.stderr


def test_blimp_callback_logs_during_training(tmp_path, tiny_corpus, tiny_tokenizer_dir):

    blimp = tmp_path / "blimp"
    blimp.mkdir()
    pairs = [{"sentence_good": "The dog sees the cat.", "sentence_bad": "The dog see the cat.",
              "linguistics_term": "subject_verb_agreement"},
             {"sentence_good": "The dogs see mommy.", "sentence_bad": "The dogs sees mommy.",
              "linguistics_term": "subject_verb_agreement"}]
    (blimp / "sva.jsonl").write_text("\n".join(json.dumps(p) for p in pairs) + "\n")
    cfg = tiny_run_config(tmp_path, tiny_corpus, tiny_tokenizer_dir,
                          overrides=["training.max_steps=4", f"training.blimp_dir={blimp}", "training.blimp_steps=2"])
    train.run(cfg)
    state = json.loads(next(Path(cfg.training.output_dir).glob("checkpoint-*/trainer_state.json")).read_text())
    scored = [h for h in state["log_history"] if "blimp_acc" in h]
    assert [h["step"] for h in scored] == [2, 4] and all(h["blimp_acc"] in (0.0, 0.5, 1.0) for h in scored)


def test_tensorboard_logging(tmp_path, tiny_corpus, tiny_tokenizer_dir):

    cfg = tiny_run_config(tmp_path, tiny_corpus, tiny_tokenizer_dir,
                          overrides=["training.max_steps=2", "training.report_to=tensorboard"])
    train.run(cfg)
    assert list(Path(cfg.training.output_dir).rglob("events.out.tfevents.*"))


def test_resume_skips_a_half_written_or_truncated_checkpoint(tmp_path, capsys):
    cfg = SimpleNamespace(training=SimpleNamespace(output_dir=str(tmp_path)))
    for step, complete in ((10, True), (20, True), (30, False)):
        c = tmp_path / f"checkpoint-{step}"
        c.mkdir()
        if complete:
            (c / "trainer_state.json").write_text(json.dumps({"global_step": step}))
    assert run_folder.prepare_output_dir(cfg, resume=True, overwrite=False) == str(tmp_path / "checkpoint-20")
    assert "skipping" in capsys.readouterr().out
    (tmp_path / "checkpoint-20" / "trainer_state.json").write_text('{"global_st')  # cut mid-write
    assert run_folder.prepare_output_dir(cfg, resume=True, overwrite=False) == str(tmp_path / "checkpoint-10")
    # a full disk can cut the optimizer state or the weights short while trainer_state.json is fine
    (tmp_path / "checkpoint-20" / "trainer_state.json").write_text(json.dumps({"global_step": 20}))
    torch.save({"state": torch.zeros(1000)}, tmp_path / "checkpoint-20" / "optimizer.pt")
    data = (tmp_path / "checkpoint-20" / "optimizer.pt").read_bytes()
    (tmp_path / "checkpoint-20" / "optimizer.pt").write_bytes(data[: len(data) // 2])
    assert run_folder.prepare_output_dir(cfg, resume=True, overwrite=False) == str(tmp_path / "checkpoint-10")
    assert "optimizer.pt: unreadable" in capsys.readouterr().out


def test_bf16_pretraining_through_the_trainer(tmp_path, tiny_corpus, tiny_tokenizer_dir):
    cfg = tiny_run_config(tmp_path, tiny_corpus, tiny_tokenizer_dir, overrides=["training.max_steps=30",
                                                                                 "training.precision=bf16"])
    metrics = train.run(cfg)
    assert metrics["precision"] == "bf16" and metrics["eval_loss"] < math.log(320) - 1.5, metrics["eval_loss"]


@pytest.mark.parametrize("fp32_s, bf16_s, expected", [(0.01, 0.04, False), (0.04, 0.01, True)])
def test_auto_precision_takes_bf16_only_where_it_is_faster(monkeypatch, fp32_s, bf16_s, expected):
    """CPUs with the same bf16 flags differ (one of ours: bf16 4x slower than fp32): auto times one matmul of each."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", lambda: True)
    clock = {"t": 0.0}
    real_matmul_dtypes = []

    def fake_perf_counter():
        return clock["t"]

    class FakeTensor:
        def __init__(self, dtype):
            self.dtype = dtype

        def to(self, dtype):
            return FakeTensor(dtype)

        def __matmul__(self, other):
            real_matmul_dtypes.append(self.dtype)
            clock["t"] += bf16_s if self.dtype == torch.bfloat16 else fp32_s
            return self

    monkeypatch.setattr(trainer_setup.time, "perf_counter", fake_perf_counter)
    monkeypatch.setattr(trainer_setup.torch, "randn", lambda *a: FakeTensor(torch.float32))
    assert trainer_setup.bf16_supported.__wrapped__() is expected
    assert torch.bfloat16 in real_matmul_dtypes and torch.float32 in real_matmul_dtypes
