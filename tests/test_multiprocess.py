"""Multi-process training: ``train.py`` and ``distill_train.py`` under ``torchrun`` (2 CPU processes, gloo) give the
same per-step losses and final weights as one process with the same global batch, and write one output folder.

Why the data order is the same: the Trainer hands accelerate a ``RandomSampler``; accelerate (``use_seedable_sampler``,
on by default in transformers) swaps it for a ``SeedableRandomSampler`` seeded with ``training.seed`` in both runs, so
both draw the same permutation. Under N processes the loader batches that permutation by the per-device size and
``BatchSamplerShard`` deals micro-batch i to rank i mod N, so global batch k (4 + 4 sequences) holds exactly the 8
sequences of single-process batch k. No test-only hook is needed. What can differ is float summation order (the
gradients are all-reduced over 2 halves instead of summed over one batch), hence the 1e-4 tolerance. Pretraining
runs 8 x 1 against 4 x 1 x 2 processes; distillation 8 x 1 against 2 x 2 accumulation x 2 processes, so its CE/KL
normalisers must span micro-batches and processes.

About 30 s on 2 idle cores, so it runs with the default suite.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
TOL = 1e-4
STEPS = 4


def launch(script: str, config: Path, nproc: int, cwd: Path, *overrides: str) -> str:
    """Run a stage script in 1 process (plain python) or ``nproc`` (torchrun); return stdout + stderr."""
    env = dict(os.environ, OMP_NUM_THREADS="1", TOKENIZERS_PARALLELISM="false", PYTHONUNBUFFERED="1")
    for k in ("RANK", "LOCAL_RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT", "CUDA_VISIBLE_DEVICES"):
        env.pop(k, None)
    env["CUDA_VISIBLE_DEVICES"] = ""  # CPU + gloo even where a GPU exists: the comparison is about the launch logic
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    if nproc == 1:
        cmd = [sys.executable, str(ROOT / script)]
    else:
        cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(nproc),
               str(ROOT / script)]
    cmd += ["--config", str(config), *overrides]
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=900)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, f"{' '.join(cmd)} failed ({proc.returncode}):\n{out[-6000:]}"
    return out


def write_config(path: Path, corpus, tokenizer_dir, output_dir: Path, cache_dir: Path, distill=None) -> Path:
    cfg = {
        "data": {"train_dir": str(corpus["train"]), "dev_dir": str(corpus["dev"]), "tokenizer_dir": str(tokenizer_dir),
                 "seq_length": 32, "eval_samples": 16, "cache_dir": str(cache_dir)},
        "model": {"type": "llama", "hidden_size": 32, "num_layers": 2, "num_heads": 4, "intermediate_size": 64,
                  "dropout": 0.0},
        "training": {"output_dir": str(output_dir), "max_steps": STEPS, "batch_size": 8, "lr": 1e-3,
                     "lr_scheduler": "constant_with_warmup", "warmup_steps": 0, "precision": "fp32", "seed": 0,
                     "logging_steps": 1, "eval_steps": 2, "save_total_limit": 3, "report_to": "none"},
    }
    if distill is not None:
        cfg["distillation"] = distill
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return path


def final_state(output_dir: Path) -> dict:
    ckpts = sorted(output_dir.glob("checkpoint-*"), key=lambda p: int(p.name.split("-")[-1]))
    return json.loads((ckpts[-1] / "trainer_state.json").read_text())


def step_logs(state: dict) -> dict[int, dict]:
    """{step: merged training + eval log entries of that step}."""
    out: dict[int, dict] = {}
    for h in state["log_history"]:
        if "loss" in h or "eval_loss" in h:
            out.setdefault(h["step"], {}).update(h)
    return out


def weights(output_dir: Path) -> dict:
    from safetensors.torch import load_file

    return load_file(str(output_dir / "model.safetensors"))


def compare(single: Path, multi: Path, keys: tuple[str, ...]) -> dict[str, float]:
    """Max |difference| per logged key over all steps, and over the final weights; asserts each is within TOL."""
    a, b = step_logs(final_state(single)), step_logs(final_state(multi))
    assert sorted(a) == sorted(b) == list(range(1, STEPS + 1)), (sorted(a), sorted(b))
    diffs = {}
    for key in keys:
        diffs[key] = max(abs(a[s][key] - b[s][key]) for s in a if key in a[s])
        # ce/kl are logged rounded to 4 decimals: two values 1e-7 apart may round 1e-4 apart
        tol = TOL + 1e-9 if key not in ("ce", "kl") else TOL * 1.01
        assert diffs[key] <= tol, (key, [(s, a[s].get(key), b[s].get(key)) for s in a])
    wa, wb = weights(single), weights(multi)
    assert wa.keys() == wb.keys()
    diffs["weights"] = max((wa[k] - wb[k]).abs().max().item() for k in wa)
    assert diffs["weights"] <= TOL, diffs
    ma, mb = (json.loads((d / "metrics.json").read_text()) for d in (single, multi))
    assert Path(ma["best_checkpoint"]).name == Path(mb["best_checkpoint"]).name
    assert ma["global_step"] == mb["global_step"] == STEPS
    assert ma["tokens_seen"] == mb["tokens_seen"]
    assert ma["words_seen"] == mb["words_seen"] > 0  # each step's words summed over both processes
    diffs["final eval_loss"] = abs(ma["eval_loss"] - mb["eval_loss"])
    assert diffs["final eval_loss"] <= TOL
    return diffs


def check_one_output(run_root: Path, output_dir: Path, single_output: Path, log: str, saved_line: str):
    """One output folder with one config/metrics/card, the same checkpoints as one process, one log line per event,
    and the token cache built once: one file per split, tokenized by rank 0 only."""
    assert sorted(p.name for p in run_root.iterdir()) == sorted(["cache", output_dir.name, "config.yaml"])
    top = sorted(p.name for p in output_dir.iterdir() if not p.name.startswith("checkpoint-"))
    assert top == sorted(p.name for p in single_output.iterdir() if not p.name.startswith("checkpoint-"))
    for name in ("config.yaml", "metrics.json", "README.md", "model.safetensors"):
        assert name in top
    assert not [p for p in output_dir.rglob("*") if p.suffix == ".tmp"]
    ckpts = sorted(p.name for p in output_dir.glob("checkpoint-*"))
    assert ckpts and ckpts == sorted(p.name for p in single_output.glob("checkpoint-*"))
    # one process logs: each step's training log and the final "saved" line appear once
    assert log.count(saved_line) == 1, log[-3000:]
    assert len(re.findall(r"'loss': '?[0-9.]+", log)) == STEPS, log[-3000:]
    assert log.count("train chunks") == 1  # the run summary line
    # token cache: rank 0 tokenized each split once, rank 1 read the cache
    cache = sorted(p.name for p in (run_root / "cache").iterdir())
    assert len(cache) == 2 and all(n.endswith(".npy") for n in cache), cache
    assert len(re.findall(r"token ids: [0-9,]+ tokens from 2 files", log)) == 2, log[:3000]
    assert "(rank 1)" not in log, log[:3000]


@pytest.fixture(scope="module")
def teachers(tiny_tokenizer_dir, tmp_path_factory):
    """A tiny GPT-2 and a tiny LLaMA teacher, random init, saved with the tokenizer."""
    import torch

    from babyllama.schema import ModelSection
    from babyllama.models import build_model
    from tokenizer import load_tokenizer

    tok = load_tokenizer(tiny_tokenizer_dir)
    root = tmp_path_factory.mktemp("teachers")
    folders = []
    for i, m in enumerate([ModelSection(type="gpt2", hidden_size=32, num_layers=2, num_heads=4),
                           ModelSection(type="llama", hidden_size=32, num_layers=2, num_heads=4, intermediate_size=64)]):
        torch.manual_seed(100 + i)
        model = build_model(m, tok, 32)
        folder = root / m.type
        model.save_pretrained(str(folder))
        tok.save_pretrained(str(folder))
        folders.append(str(folder))
    return folders


def run_pair(tmp_path, script, corpus, tokenizer_dir, per_device: int, distill=None):
    """The same global batch of 8: one process 8 x 1, two processes ``per_device`` x accumulation each."""
    outs = {}
    for nproc, overrides in ((1, ()), (2, (f"training.per_device_batch_size={per_device}",))):
        run_root = tmp_path / f"np{nproc}"
        run_root.mkdir()
        out_dir = run_root / "out"
        cfg = write_config(run_root / "config.yaml", corpus, tokenizer_dir, out_dir, run_root / "cache", distill)
        outs[nproc] = (run_root, out_dir, launch(script, cfg, nproc, ROOT, *overrides))
    return outs


def test_pretraining_two_processes_match_one(tmp_path, tiny_corpus, tiny_tokenizer_dir):
    outs = run_pair(tmp_path, "train.py", tiny_corpus, tiny_tokenizer_dir, per_device=4)
    (_, single, _), (root2, multi, log2) = outs[1], outs[2]
    assert "4 x 1 accumulation x 2 processes" in log2 and "8 x 1 accumulation x 1 processes" in outs[1][2]
    diffs = compare(single, multi, ("loss", "grad_norm", "eval_loss"))
    print("pretraining |single - 2 processes|:", diffs)
    check_one_output(root2, multi, single, log2, "saved pretraining model")


def test_distillation_two_processes_match_one(tmp_path, tiny_corpus, tiny_tokenizer_dir, teachers):
    distill = {"teachers": teachers, "alpha": 0.5, "temperature": 2.0, "kl_normalization": "batchmean",
               "best_metric": "ce", "teacher_precision": "fp32"}
    # 2 x 2 accumulation per process: the CE/KL normalisers must span both micro-batches and both processes
    outs = run_pair(tmp_path, "distill_train.py", tiny_corpus, tiny_tokenizer_dir, 2, distill)
    (_, single, _), (root2, multi, log2) = outs[1], outs[2]
    assert "2 x 2 accumulation x 2 processes" in log2
    diffs = compare(single, multi, ("loss", "ce", "kl", "grad_norm", "eval_loss", "eval_ce", "eval_kl"))
    print("distillation |single - 2 processes|:", diffs)
    check_one_output(root2, multi, single, log2, "saved distillation model")
