"""Score models and ensembles on held-out text: per-source token cross-entropy and perplexity over a whole split.

    python eval_text.py --data data/clean/babylm_dev --model student=models/llama-58M \\
        --model baby-llama=models/baby-llama-58M --ensemble teachers=models/llama-360M,models/gpt2-705M
    python eval_text.py --data runs/embedded/clean/babylm_dev --model runs/embedded/models/distilled --seq-length 64

Every file of the split folder (``<source>.dev``, ``<source>.test``, ``<source>.train``) is a source. Its text is
encoded as the model was trained (its ``data.separator``, or ``--separator``), then read in windows of ``--seq-length``
tokens (default: the models' training chunk length, from their config.yaml) that overlap by one token, so every token
but the file's first is predicted exactly once, from the tokens before it in its window (at most seq_length - 1 of
them, as in training chunks):

    CE(source) = - sum_i log p(t_i | t_window_start .. t_{i-1}) / (number of predicted tokens);  perplexity = exp(CE)

Separator tokens are read but never counted as targets, so models trained with and without them are scored on the
same text tokens. The ``all`` row pools every predicted token of the split. A file with no token to predict gets a
row with ``tokens`` 0 and no CE (``null``); a split with none at all is an error. An ensemble's distribution is the
softmax of its models' mean logits (the distribution the student is distilled from, ``models.TeacherEnsemble``).
An ensemble whose models are also given as ``--model`` (N seeds of one config: a homogeneous ensemble) is scored in
one pass with them, and its gain over their mean and over the best of them is printed (and written as
``ensemble_gains``).
Unlike the training eval loss, nothing is sampled: the whole split is scored.
"""

from __future__ import annotations

import argparse
import math
import sys

import numpy as np
import torch

from babylm_dataset import encode_files, split_files
from babyllama.config import UserError, run_cli
from babyllama.files import write_results
from babyllama.models import load_scorer
from babyllama.report import ensemble_gains, gain_lines
from babyllama.stream_scoring import check_stream_scorers, stream_log_probs, stream_scorers, window_length
from tokenizer import load_tokenizer


def score_ids(model, ids, seq_length: int, batch_size: int = 16, skip_id: int | None = None) -> list[tuple[float, int]]:
    """(sum of log p over every token but the first, number of such tokens) for a flat id array, in windows of
    ``seq_length`` that overlap by one token (``stream_scoring.stream_log_probs``). Targets equal to ``skip_id`` (a separator)
    are not counted, so models trained with and without separators are scored on the same text tokens. For a
    ``TeacherEnsemble`` the list holds the ensemble first, then each member; for a plain model, one entry."""
    ids = np.asarray(ids, dtype=np.int64)
    keep = ids[1:] != skip_id if skip_id is not None else np.ones(max(len(ids) - 1, 0), dtype=bool)
    return [(float(lp[keep].sum(dtype=np.float64)), int(keep.sum()))
            for lp in stream_log_probs(model, ids, seq_length, batch_size)]


def evaluate(data_dir, scorers: dict[str, list[str]], seq_length: int = 128, batch_size: int = 16,
             precision: str = "fp32", separator: str = "auto", every: str = "lines", share: float = 1.0) -> dict:
    """{model name: {source: {"ce", "ppl", "tokens"}}} for every file of ``data_dir``, plus an ``all`` row.
    ``separator`` ``auto``: each model's text is encoded as it was trained (its config.yaml), else as given; separator
    tokens are never counted as targets. ``share``: the first share of each file's lines (a fixed subset). An ensemble
    whose members are also scored alone (with the same folders)
    computes them in its own pass: each member's logits are computed once."""
    files = split_files(data_dir)
    if not any(f.read_bytes().strip() for f in files):
        raise UserError(f"{data_dir}: every text file here is empty or blank, so there is nothing to score; point --data "
                        "at a split folder with text (e.g. data/clean/babylm_dev)")
    dtype = torch.bfloat16 if precision == "bf16" else torch.float32
    seps = check_stream_scorers(scorers, seq_length, separator, every)
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
            for n, (s, k) in zip(mine, score_ids(model, encode_files([f], paths[0], sep, sep_every, share), seq_length,
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
    parser.add_argument("--seq-length", type=int, help="tokens per window (default: the chunk length the models were "
                        "trained on, their config.yaml's data.seq_length; the shortest of them)")
    parser.add_argument("--batch-size", type=int, default=16, help="windows per forward pass")
    parser.add_argument("--precision", choices=["fp32", "bf16"], default="fp32")
    parser.add_argument("--separator", choices=["auto", "none", "<s>", "</s>"], default="auto",
                        help="as data.separator in training (auto: as each model was trained, from its config.yaml); "
                             "separator tokens are never counted as targets")
    parser.add_argument("--separator-every", choices=["lines", "files"], default="lines")
    parser.add_argument("--output", help="also write the results as JSON here (and the table next to it as .md)")
    args = parser.parse_args(argv)
    scorers = stream_scorers(args.model, args.ensemble)
    seq_length = window_length(scorers, args.seq_length)
    results = evaluate(args.data, scorers, seq_length, args.batch_size, args.precision, args.separator,
                       args.separator_every)
    table = markdown(results)
    gains = ensemble_gains(scorers, {n: r["all"]["ce"] for n, r in results.items()})
    print(table + gain_lines(gains, "dev CE"))
    if args.output:
        write_results(args.output, {"data": str(args.data), "seq_length": seq_length, "results": results,
                                    "ensemble_gains": gains}, table)
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
