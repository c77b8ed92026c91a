"""Scoring a text stream: the log-probability of every token of a flat id array, read in overlapping windows as the
model was trained (dev cross-entropy in eval_text.py, word surprisal in eval_aoa.py), and the --model / --ensemble
flags those stages share. The pair and multiple-choice scorer is scoring.py."""

import sys
from pathlib import Path

import numpy as np
import torch
from transformers import AutoConfig

from babylm_dataset import trained_data, trained_separator
from babyllama.config import UserError
from babyllama.losses import teacher_log_probs
from babyllama.models import TeacherEnsemble, check_model_folder, check_same_vocab, max_positions
from babyllama.scoring import model_device
from tokenizer import load_tokenizer

DEFAULT_WINDOW = 128  # tokens, for models without a config.yaml that says their training chunk length


def stream_scorers(models, ensembles) -> dict[str, list[str]]:
    """{name: [folders]} from ``--model NAME=PATH`` (or a bare folder, named after it) and ``--ensemble
    NAME=PATH1,PATH2`` flags of the text-stream stages (eval_text.py, eval_aoa.py)."""
    scorers = {}
    for text in models:
        name, sep, path = text.partition("=")
        name, path = (name, path) if sep else (Path(text).name, text)
        scorers[name] = [path]
    for text in ensembles:
        name, sep, paths = text.partition("=")
        if not sep or not name or not paths:
            raise UserError(f"--ensemble {text!r}: expected NAME=PATH1,PATH2")
        if name in scorers:
            raise UserError(f"name {name!r} is given twice; names must be unique")
        scorers[name] = [p for p in paths.split(",") if p]
    if not scorers:
        raise UserError("give at least one --model NAME=PATH or --ensemble NAME=PATH1,PATH2")
    if len(scorers) != len(models) + len(ensembles):
        raise UserError("two --model flags have the same name; name them: --model NAME=PATH")
    return scorers


def window_length(scorers: dict[str, list[str]], asked: int | None) -> int:
    """The window of a text-stream stage: ``asked`` (--seq-length), else the shortest chunk length the scorers' models
    were trained on (their config.yaml's data.seq_length), so no model reads a position it never trained."""
    if asked is not None:
        return asked
    known = [n for paths in scorers.values() for p in paths if (n := trained_data(p).get("seq_length"))]
    return min(known, default=DEFAULT_WINDOW)


def warn_untrained(name: str, paths, positions: int, what: str, fix: str):
    """Warn when ``positions`` tokens (``what``, e.g. "a window of 128 tokens") go past the chunks a model of ``paths``
    was trained on (its config.yaml): a GPT-2's learned position rows past them are still at their initialisation."""
    for p in paths:
        trained = trained_data(p).get("seq_length")
        if trained and trained < positions:
            print(f"warning: {name}: {what}, but {p} was trained on {trained}-token chunks (its config.yaml): "
                  f"positions {trained}-{positions - 1} were never trained; {fix}", file=sys.stderr)


def check_stream_scorers(scorers: dict[str, list[str]], seq_length: int, separator: str = "auto",
                         every: str = "lines") -> dict[str, tuple[str, str]]:
    """Before the first forward pass of a text-stream stage: every folder loads, takes ``seq_length`` positions, and an
    ensemble's models share a tokenizer and were trained with one separator; a window longer than a model's training
    chunks is warned about. Returns {name: (separator, every)} to encode its text with (``auto``: as trained, from
    its config.yaml)."""
    if seq_length < 2:
        raise UserError(f"--seq-length {seq_length}: give at least 2")
    seps = {}
    for name, paths in scorers.items():
        for p in paths:
            check_model_folder(p)
        warn_untrained(name, paths, seq_length, f"a window of {seq_length} tokens",
                       "lower the window (eval_text.py, eval_aoa.py: leave --seq-length out)")
        toks = [load_tokenizer(p) for p in paths] if len(paths) > 1 else []
        for p, tok in zip(paths[1:], toks[1:]):
            check_same_vocab(f"ensemble {name!r}: {paths[0]}", toks[0], str(p), tok)
        limit = min(filter(None, (max_positions(AutoConfig.from_pretrained(str(p))) for p in paths)), default=None)
        if limit and limit < seq_length:
            raise UserError(f"model {name!r} accepts {limit} positions; lower --seq-length (now {seq_length})")
        found = {trained_separator(p) if separator == "auto" else (separator, every) for p in paths}
        if len(found) > 1:
            raise UserError(f"ensemble {name!r}: its models were trained with different data.separator settings "
                            f"{sorted(found)}; give --separator to score them alike")
        seps[name] = found.pop()
    return seps


@torch.inference_mode()
def stream_log_probs(model, ids, seq_length: int, batch_size: int = 16) -> list[np.ndarray]:
    """log p(t_i | the tokens before it in its window) for i = 1 .. len(ids) - 1 of a flat id array (float32), read in
    windows of ``seq_length`` tokens that overlap by one: every token but the first is predicted exactly once, from at
    most seq_length - 1 tokens before it (as in training chunks). For a ``TeacherEnsemble`` the list holds the
    ensemble first, then each member, all from one forward pass per member; for a plain model, one array."""
    members = list(model.models) if isinstance(model, TeacherEnsemble) else [model]
    device = model_device(model)
    ids = torch.as_tensor(np.asarray(ids, dtype=np.int64))
    n = max(len(ids) - 1, 0)
    starts = list(range(0, n, seq_length - 1))
    out = [np.zeros(n, dtype=np.float32) for _ in range(len(members) + isinstance(model, TeacherEnsemble))]
    for b in range(0, len(starts), batch_size):
        batch = [ids[s:s + seq_length] for s in starts[b:b + batch_size]]
        width = max(len(w) for w in batch)
        x = torch.zeros(len(batch), width, dtype=torch.long)
        mask = torch.zeros(len(batch), width, dtype=torch.long)
        for r, w in enumerate(batch):
            x[r, :len(w)], mask[r, :len(w)] = w, 1
        x, mask = x.to(device), mask.to(device)
        target = x[:, 1:, None]
        logits = [m(input_ids=x, attention_mask=mask).logits[:, :-1].float() for m in members]
        # log p(target) = logit[target] - logsumexp(logits): no [B, T, V] log-softmax is written
        outputs = [t.gather(-1, target).squeeze(-1) - torch.logsumexp(t, -1) for t in logits]
        if len(out) > len(members):  # the ensemble's distribution, from the same member logits
            outputs.insert(0, teacher_log_probs(logits, model.weights, model.combine).gather(-1, target).squeeze(-1))
        for arr, logp in zip(out, outputs):
            logp = logp.cpu().numpy()
            for r, s in enumerate(starts[b:b + batch_size]):
                arr[s:s + len(batch[r]) - 1] = logp[r, :len(batch[r]) - 1]
    return out
