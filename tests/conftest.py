"""Shared fixtures: a tiny corpus in the BabyLM layout and a tokenizer trained on it, built once per test session."""

import random
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

NAMES = ["the dog", "the cat", "a bird", "mommy", "daddy", "the baby", "my ball", "the big truck"]
VERBS = ["sees", "likes", "wants", "has", "throws", "finds"]
PLURAL = ["the dogs", "the cats", "the birds", "the babies"]
PVERBS = ["see", "like", "want", "have", "throw", "find"]
ENDS = [".", "!", "?"]


def make_lines(n: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        if rng.random() < 0.5:
            s = f"{rng.choice(NAMES)} {rng.choice(VERBS)} {rng.choice(NAMES + PLURAL)}"
        else:
            s = f"{rng.choice(PLURAL)} {rng.choice(PVERBS)} {rng.choice(NAMES)}"
        out.append(s[0].upper() + s[1:] + rng.choice(ENDS))
    return out


def write_split(folder: Path, suffix: str, n_lines: int, seed: int) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for i, source in enumerate(["aochildes", "switchboard"]):
        lines = make_lines(n_lines, seed + i)
        (folder / f"{source}{suffix}").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return folder


@pytest.fixture(scope="session")
def tiny_corpus(tmp_path_factory):
    """{'train': folder of 2 *.train files, 'dev': folder of 2 *.dev files}, child-like sentences."""
    root = tmp_path_factory.mktemp("corpus")
    return {"train": write_split(root / "train", ".train", 600, 0), "dev": write_split(root / "dev", ".dev", 200, 100)}


@pytest.fixture(scope="session")
def tiny_tokenizer_dir(tiny_corpus, tmp_path_factory):
    """A byte-level BPE tokenizer folder (vocab 320) trained on tiny_corpus['train']."""
    from tokenizer import build_tokenizer, train_files

    out = tmp_path_factory.mktemp("tok") / "tokenizer"
    build_tokenizer(train_files(tiny_corpus["train"]), vocab_size=320).save_pretrained(str(out))
    return out


def tiny_run_config(tmp_path, corpus, tokenizer_dir, model_type="llama", overrides=(), distill_teachers=None):
    """A TrainConfig (or DistillConfig when teachers are given) for a 2-layer, hidden-32 model on the tiny corpus:
    fp32, no logger, seq 32."""
    from babyllama import config
    from babyllama import schema
    data = {
        "data": {"train_dir": str(corpus["train"]), "dev_dir": str(corpus["dev"]), "tokenizer_dir": str(tokenizer_dir),
                 "seq_length": 32, "eval_samples": 16, "cache_dir": str(tmp_path / "cache")},
        "model": {"type": model_type, "hidden_size": 32, "num_layers": 2, "num_heads": 4, "intermediate_size": 64},
        "training": {"output_dir": str(tmp_path / "out"), "num_epochs": 1, "batch_size": 8, "lr": 3e-3,
                     "warmup_steps": 2, "logging_steps": 1, "precision": "fp32", "report_to": "none", "seed": 0},
    }
    cls = schema.TrainConfig
    if distill_teachers is not None:
        data["distillation"] = {"teachers": [str(t) for t in distill_teachers]}
        cls = schema.DistillConfig
    return config.load_config(cls, data=data, overrides=list(overrides))


class Killed(Exception):
    """Raised by KillAt."""


def kill_at(k: int):
    """A Trainer callback that saves a checkpoint at step k, then dies: what a kill after a checkpoint leaves."""
    from transformers import TrainerCallback

    class KillAt(TrainerCallback):
        def on_step_end(self, args, state, control, **kw):
            if state.global_step == k:
                control.should_save = True

        def on_save(self, args, state, control, **kw):
            if state.global_step == k:
                raise Killed

    return KillAt()


def save_random_model(folder, model_type, tokenizer_dir, seed=0, hidden=32):
    """A random-init causal LM saved with the tokenizer: a stand-in teacher."""
    import torch

    from babyllama.schema import ModelSection
    from babyllama.models import build_model
    from tokenizer import load_tokenizer

    tok = load_tokenizer(tokenizer_dir)
    torch.manual_seed(seed)
    model = build_model(ModelSection(type=model_type, hidden_size=hidden, num_layers=2, num_heads=4,
                                     intermediate_size=2 * hidden), tok, 32)
    model.save_pretrained(str(folder))
    tok.save_pretrained(str(folder))
    return folder
