"""Score models and ensembles on held-out text: per-source token cross-entropy and perplexity over a whole split.

    python eval_text.py --data data/clean/babylm_dev --model student=models/llama-58M \\
        --model baby-llama=models/baby-llama-58M --ensemble teachers=models/llama-360M,models/gpt2-705M
    python eval_text.py --data runs/embedded/clean/babylm_dev --model runs/embedded/models/distilled --seq-length 64

Every file of the split folder (``<source>.dev``, ``<source>.test``, ``<source>.train``) is a source. Its text is
encoded as the model was trained (its ``data.separator``, or ``--separator``), then read in windows of ``--seq-length`` tokens that
overlap by one token, so every token but the file's first is predicted exactly once, from the tokens before it in its
window (at most seq_length - 1 of them, as in training chunks):

    CE(source) = - sum_i log p(t_i | t_window_start .. t_{i-1}) / (number of predicted tokens);  perplexity = exp(CE)

Separator tokens are read but never counted as targets, so models trained with and without them are scored on the
same text tokens. The ``all`` row pools every predicted token of the split. A file with no token to predict gets a
row with ``tokens`` 0 and no CE (``null``); a split with none at all is an error. An ensemble's distribution is the
softmax of its models' mean logits (the distribution the student is distilled from, ``models.TeacherEnsemble``).
Unlike the training eval loss, nothing is sampled: the whole split is scored.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

import numpy as np
import torch
import yaml
from transformers import AutoConfig

from babylm_dataset import encode_files, split_files
from config import UserError, run_cli
from files import write_atomic
from losses import teacher_log_probs
from models import TeacherEnsemble, check_model_folder, check_same_vocab, freeze, load_causal_lm, max_positions
from tokenizer import load_tokenizer


def _windows(ids, seq_length: int) -> list[torch.Tensor]:
    ids = torch.as_tensor(np.asarray(ids, dtype=np.int64))
    step = seq_length - 1
    return [w for w in (ids[s:s + seq_length] for s in range(0, max(len(ids) - 1, 0), step)) if len(w) >= 2]


@torch.inference_mode()
def score_ids(model, ids, seq_length: int, batch_size: int = 16, skip_id: int | None = None) -> list[tuple[float, int]]:
    """(sum of log p over every token but the first, number of such tokens) for a flat id array, in windows of
    ``seq_length`` that overlap by one token. Targets equal to ``skip_id`` (a separator) are not counted, so models
    trained with and without separators are scored on the same text tokens. For a ``TeacherEnsemble`` the list holds
    the ensemble first, then each member, all from one forward pass per member; for a plain model, one entry."""
    members = list(model.models) if isinstance(model, TeacherEnsemble) else [model]
    device = next(model.parameters()).device
    windows = _windows(ids, seq_length)
    totals = [[0.0, 0] for _ in range(len(members) + (len(members) > 1 or members[0] is not model))]
    for b in range(0, len(windows), batch_size):
        batch = windows[b:b + batch_size]
        width = max(len(w) for w in batch)
        x = torch.zeros(len(batch), width, dtype=torch.long)
        mask = torch.zeros(len(batch), width, dtype=torch.long)
        for r, w in enumerate(batch):
            x[r, :len(w)], mask[r, :len(w)] = w, 1
        x, mask = x.to(device), mask.to(device)
        target, keep = x[:, 1:, None], mask[:, 1:].bool()
        if skip_id is not None:
            keep &= x[:, 1:] != skip_id
        logits = [m(input_ids=x, attention_mask=mask).logits[:, :-1].float() for m in members]
        # log p(target) = logit[target] - logsumexp(logits): no [B, T, V] log-softmax is written
        outputs = [t.gather(-1, target).squeeze(-1) - torch.logsumexp(t, -1) for t in logits]
        if len(totals) > len(members):  # the ensemble's distribution, from the same member logits
            outputs.insert(0, teacher_log_probs(logits, model.weights, model.combine).gather(-1, target).squeeze(-1))
        for tot, logp in zip(totals, outputs):
            tot[0] += logp[keep].double().sum().item()
            tot[1] += int(keep.sum())
    return [(a, n) for a, n in totals]


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


def trained_separator(folder) -> tuple[str, str]:
    """(data.separator, data.separator_every) a model folder was trained with, from its config.yaml; none if absent."""
    try:
        data = (yaml.safe_load((Path(folder) / "config.yaml").read_text()) or {}).get("data") or {}
    except (OSError, yaml.YAMLError):
        data = {}
    return data.get("separator") or "none", data.get("separator_every") or "lines"


def evaluate(data_dir, scorers: dict[str, list[str]], seq_length: int = 128, batch_size: int = 16,
             precision: str = "fp32", separator: str = "auto", every: str = "lines") -> dict:
    """{model name: {source: {"ce", "ppl", "tokens"}}} for every file of ``data_dir``, plus an ``all`` row.
    ``separator`` ``auto``: each model's text is encoded as it was trained (its config.yaml), else as given; separator
    tokens are never counted as targets. An ensemble whose members are also scored alone (with the same folders)
    computes them in its own pass: each member's logits are computed once."""
    files = split_files(data_dir)
    if not any(f.read_bytes().strip() for f in files):
        raise UserError(f"{data_dir}: every text file here is empty or blank, so there is nothing to score; point --data "
                        "at a split folder with text (e.g. data/clean/babylm_dev)")
    dtype = torch.bfloat16 if precision == "bf16" else torch.float32
    seps = {}
    for name, paths in scorers.items():  # everything a user can get wrong fails before the first forward pass
        for p in paths:
            check_model_folder(p)
        limit = min(filter(None, (max_positions(AutoConfig.from_pretrained(str(p))) for p in paths)), default=None)
        if limit and limit < seq_length:
            raise UserError(f"model {name!r} accepts {limit} positions; lower --seq-length (now {seq_length})")
        found = {trained_separator(p) if separator == "auto" else (separator, every) for p in paths}
        if len(found) > 1:
            raise UserError(f"ensemble {name!r}: its models were trained with different data.separator settings "
                            f"{sorted(found)}; give --separator to score them alike")
        seps[name] = found.pop()
    # names scored inside an ensemble's pass: single-model scorers whose folder is a member, with the same separator
    riders = {}
    for name, paths in scorers.items():
        if len(paths) > 1:
            for n2, p2 in scorers.items():
                if len(p2) == 1 and p2[0] in paths and seps[n2] == seps[name] and n2 not in riders:
                    riders[n2] = (name, paths.index(p2[0]))
    out = {}
    for name, paths in scorers.items():
        if name in riders:
            continue
        model = load_scorer(paths, dtype)
        sep, sep_every = seps[name]
        mine = [name] + [None] * (len(paths) if len(paths) > 1 else 0)
        for n2, (owner, i) in riders.items():
            if owner == name:
                mine[1 + i] = n2
        rows = {n: {} for n in mine if n}
        pooled = {n: [0.0, 0] for n in rows}
        skip = load_tokenizer(paths[0]).convert_tokens_to_ids(sep) if sep != "none" else None
        for f in files:
            for n, (s, k) in zip(mine, score_ids(model, encode_files([f], paths[0], sep, sep_every), seq_length,
                                                 batch_size, skip)):
                if n:  # a file with no predicted token gets a row that says so, never a perplexity of 1
                    rows[n][f.stem] = ({"ce": -s / k, "ppl": math.exp(min(-s / k, 50.0)), "tokens": k} if k else
                                       {"ce": None, "ppl": None, "tokens": 0})
                    pooled[n][0] += s
                    pooled[n][1] += k
        for n in rows:
            if not pooled[n][1]:
                raise UserError(f"{data_dir}: no file holds two tokens, so no token is predicted; give more text")
            ce = -pooled[n][0] / pooled[n][1]
            rows[n]["all"] = {"ce": ce, "ppl": math.exp(min(ce, 50.0)), "tokens": pooled[n][1]}
            out[n] = rows[n]
            print(f"{n}: CE {ce:.4f} nats/token over {pooled[n][1]:,} tokens", file=sys.stderr)
        del model
    return {n: out[n] for n in scorers}


def markdown(results: dict) -> str:
    names = list(results)
    sources = list(next(iter(results.values())))
    lines = ["| source | tokens | " + " | ".join(f"{n} CE (ppl)" for n in names) + " |",
             "| --- | ---: |" + " ---: |" * len(names)]
    for s in sources:
        cells = [f"{results[n][s]['ce']:.3f} ({results[n][s]['ppl']:.1f})" if results[n][s]["tokens"] else
                 "empty: no tokens" for n in names]
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
    parser.add_argument("--separator", choices=["auto", "none", "<s>", "</s>"], default="auto",
                        help="as data.separator in training (auto: as each model was trained, from its config.yaml); "
                             "separator tokens are never counted as targets")
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
