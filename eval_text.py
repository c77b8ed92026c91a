"""Score models and ensembles on held-out text: per-source token cross-entropy and perplexity over a whole split.

    python eval_text.py --data data/clean/babylm_dev --model student=models/llama-58M \\
        --model baby-llama=models/baby-llama-58M --ensemble teachers=models/llama-360M,models/gpt2-705M
    python eval_text.py --data runs/embedded/clean/babylm_dev --model runs/embedded/models/distilled --seq-length 64

Every file of the split folder (``<source>.dev``, ``<source>.test``, ``<source>.train``) is a source. Its text is
encoded as in training (``--separator`` as ``data.separator``), then read in windows of ``--seq-length`` tokens that
overlap by one token, so every token but the file's first is predicted exactly once, from the tokens before it in its
window (at most seq_length - 1 of them, as in training chunks):

    CE(source) = - sum_i log p(t_i | t_window_start .. t_{i-1}) / (number of predicted tokens);  perplexity = exp(CE)

The ``all`` row pools every predicted token of the split. An ensemble's distribution is the softmax of its models'
mean logits (the distribution the student is distilled from, ``models.TeacherEnsemble``). Unlike the training eval
loss, nothing is sampled: the whole split is scored.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

import numpy as np
import torch
from transformers import AutoConfig

from babylm_dataset import encode_files, split_files
from config import UserError, run_cli
from files import write_atomic
from models import TeacherEnsemble, check_model_folder, check_same_vocab, freeze, load_causal_lm, max_positions
from tokenizer import load_tokenizer


@torch.inference_mode()
def score_ids(model, ids, seq_length: int, batch_size: int = 16) -> tuple[float, int]:
    """(sum of log p over every token but the first, number of such tokens) for a flat id array, in windows of
    ``seq_length`` that overlap by one token."""
    ids = torch.as_tensor(np.asarray(ids, dtype=np.int64))
    step = seq_length - 1
    windows = [ids[s:s + seq_length] for s in range(0, max(len(ids) - 1, 0), step)]
    windows = [w for w in windows if len(w) >= 2]
    device = next(model.parameters()).device
    total, count = 0.0, 0
    for b in range(0, len(windows), batch_size):
        batch = windows[b:b + batch_size]
        width = max(len(w) for w in batch)
        x = torch.zeros(len(batch), width, dtype=torch.long)
        mask = torch.zeros(len(batch), width, dtype=torch.long)
        for r, w in enumerate(batch):
            x[r, :len(w)], mask[r, :len(w)] = w, 1
        x, mask = x.to(device), mask.to(device)
        logits = model(input_ids=x, attention_mask=mask).logits[:, :-1].float()
        logp = torch.log_softmax(logits, -1).gather(-1, x[:, 1:, None]).squeeze(-1)
        keep = mask[:, 1:].bool()
        total += logp[keep].double().sum().item()
        count += int(keep.sum())
    return total, count


def load_scorer(paths, dtype):
    """One model, or a logit-averaging ensemble of several that share a tokenizer (checked first)."""
    for p in paths:
        check_model_folder(p)
    toks = [load_tokenizer(p) for p in paths]
    for p, t in zip(paths[1:], toks[1:]):
        check_same_vocab(str(paths[0]), toks[0], str(p), t)
    if len(paths) == 1:
        return freeze(load_causal_lm(paths[0], dtype=dtype))
    return freeze(TeacherEnsemble.from_pretrained(list(paths), dtype=dtype))


def evaluate(data_dir, scorers: dict[str, list[str]], seq_length: int = 128, batch_size: int = 16,
             precision: str = "fp32", separator: str = "none", every: str = "lines") -> dict:
    """{model name: {source: {"ce", "ppl", "tokens"}}} for every file of ``data_dir``, plus an ``all`` row."""
    files = split_files(data_dir)
    dtype = torch.bfloat16 if precision == "bf16" else torch.float32
    for name, paths in scorers.items():  # everything a user can get wrong fails before the first forward pass
        for p in paths:
            check_model_folder(p)
        limit = min(filter(None, (max_positions(AutoConfig.from_pretrained(str(p))) for p in paths)), default=None)
        if limit and limit < seq_length:
            raise UserError(f"model {name!r} accepts {limit} positions; lower --seq-length (now {seq_length})")
    out = {}
    for name, paths in scorers.items():
        model = load_scorer(paths, dtype)
        rows, pooled = {}, [0.0, 0]
        for f in files:
            s, n = score_ids(model, encode_files([f], paths[0], separator, every), seq_length, batch_size)
            rows[f.stem] = {"ce": -s / max(n, 1), "ppl": math.exp(min(-s / max(n, 1), 50.0)), "tokens": n}
            pooled[0] += s
            pooled[1] += n
        ce = -pooled[0] / max(pooled[1], 1)
        rows["all"] = {"ce": ce, "ppl": math.exp(min(ce, 50.0)), "tokens": pooled[1]}
        out[name] = rows
        print(f"{name}: CE {ce:.4f} nats/token over {pooled[1]:,} tokens", file=sys.stderr)
        del model
    return out


def markdown(results: dict) -> str:
    names = list(results)
    sources = list(next(iter(results.values())))
    lines = ["| source | tokens | " + " | ".join(f"{n} CE (ppl)" for n in names) + " |",
             "| --- | ---: |" + " ---: |" * len(names)]
    for s in sources:
        cells = [f"{results[n][s]['ce']:.3f} ({results[n][s]['ppl']:.1f})" for n in names]
        label = f"*{s}*" if s == "all" else s
        lines.append(f"| {label} | {results[names[0]][s]['tokens']:,} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", required=True, help="split folder of text files (BabyLM layout)")
    parser.add_argument("--model", action="append", default=[], metavar="NAME=PATH", help="a model folder (repeatable)")
    parser.add_argument("--ensemble", action="append", default=[], metavar="NAME=PATH1,PATH2",
                        help="model folders scored as one logit-averaged model (repeatable)")
    parser.add_argument("--seq-length", type=int, default=128, help="tokens per window (the training chunk length)")
    parser.add_argument("--batch-size", type=int, default=16, help="windows per forward pass")
    parser.add_argument("--precision", choices=["fp32", "bf16"], default="fp32")
    parser.add_argument("--separator", choices=["none", "<s>", "</s>"], default="none",
                        help="as data.separator in training")
    parser.add_argument("--separator-every", choices=["lines", "files"], default="lines")
    parser.add_argument("--output", help="also write the results as JSON here (and the table next to it as .md)")
    args = parser.parse_args(argv)
    scorers = {}
    for text in args.model:
        name, sep, path = text.partition("=")
        name, path = (name, path) if sep else (Path(text).name, text)
        scorers[name] = [path]
    for text in args.ensemble:
        name, sep, paths = text.partition("=")
        if not sep or not name or not paths:
            raise UserError(f"--ensemble {text!r}: expected NAME=PATH1,PATH2")
        if name in scorers:
            raise UserError(f"name {name!r} is given twice; names must be unique")
        scorers[name] = [p for p in paths.split(",") if p]
    if not scorers:
        raise UserError("give at least one --model NAME=PATH or --ensemble NAME=PATH1,PATH2")
    if len(scorers) != len(args.model) + len(args.ensemble):
        raise UserError("two --model flags have the same name; name them: --model NAME=PATH")
    if args.seq_length < 2:
        raise UserError(f"--seq-length {args.seq_length}: give at least 2")
    results = evaluate(args.data, scorers, args.seq_length, args.batch_size, args.precision, args.separator,
                       args.separator_every)
    table = markdown(results)
    print(table)
    if args.output:
        write_atomic(args.output, json.dumps({"data": str(args.data), "seq_length": args.seq_length,
                                              "results": results}, indent=1))
        write_atomic(Path(args.output).with_suffix(".md"), table)
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
