"""Benchmark plain pretraining of the 58M LLaMA student: fp32 (naive) side by side with our default, each in its own
process.

    python bench/bench_pretrain.py                          # batch 8 x 128
    python bench/bench_pretrain.py --batch 32 --paths default

Paths: ``fp32`` (everything fp32, the model called with labels: HF's CE, foreach AdamW); ``default`` (what train.py
runs with precision auto on this CPU: bf16 autocast around the forward, as accelerate does, fused AdamW); ``compile``
(default + torch.compile). Same seeded weights and batches in every path; the first batch's loss is compared.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import (STUDENT_58M, TINY_HELP, TINY_STUDENT, build, emit, forward_flops, gemm_peak,  # noqa: E402
                    load_real_ids, peak_rss_gib, print_table, random_batches, run_worker, summarise)

import torch  # noqa: E402


def worker(args):
    torch.set_num_threads(args.threads)
    from babyllama.schema import ModelSection

    path = args.worker
    bf16 = path != "fp32"
    model = build(ModelSection(**(TINY_STUDENT if args.tiny else STUDENT_58M)), args.vocab, args.seq, seed=0)
    ids = load_real_ids(args.data, args.tokenizer) if args.data else None
    batches = random_batches(args.warmup + args.steps, args.batch, args.seq, args.vocab, seed=123, ids=ids)
    flops = 3 * forward_flops(model, args.batch, args.seq)
    if path == "compile":
        model = torch.compile(model)
    params = list(model.parameters())
    opt = torch.optim.AdamW(params, lr=1e-4, fused=bf16)

    def forward(b):
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            return model(input_ids=b["input_ids"], attention_mask=b["attention_mask"], labels=b["labels"]).loss

    with torch.no_grad():
        first = float(forward(batches[0]))
    fb, op, tot = [], [], []
    for i, b in enumerate(batches):
        t0 = time.perf_counter()
        forward(b).backward()
        t1 = time.perf_counter()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        t2 = time.perf_counter()
        if i >= args.warmup:
            fb.append(t1 - t0)
            op.append(t2 - t1)
            tot.append(t2 - t0)
    step, spread = summarise(tot)
    return emit({"path": path, "first": first, "step_s": step, "step_spread": spread, "fwd_bwd_s": summarise(fb)[0],
          "optimizer_s": summarise(op)[0], "flops_per_step": flops, "peak_rss_gib": peak_rss_gib(),
          "tokens_per_s": args.batch * args.seq / step,
          "tps": f"{args.batch * args.seq / step:.0f} ({args.batch * args.seq / (step + spread):.0f}-"
                 f"{args.batch * args.seq / max(step - spread, 1e-9):.0f})"})


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--paths", default="fp32,default")
    p.add_argument("--vocab", type=int, default=16000)
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--seq", type=int, default=128)
    p.add_argument("--steps", type=int, default=6)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--data", default=None, help="split folder of real text (needs --tokenizer); default random ids")
    p.add_argument("--tokenizer", default=None)
    p.add_argument("--tiny", action="store_true", help=TINY_HELP)
    p.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.tiny:
        args.vocab, args.batch, args.seq, args.steps, args.warmup, args.threads = 300, 2, 16, 1, 0, 1
    if args.worker:
        worker(args)
        return 0
    peak = gemm_peak(args.threads, n=128 if args.tiny else 2048)
    print(f"GEMM peak ({args.threads} threads): fp32 {peak['fp32'] / 1e9:.0f} GFLOP/s, "
          f"bf16 {peak['bf16'] / 1e9:.0f} GFLOP/s")
    print(f"llama {'32x2' if args.tiny else '512x16 (inner 1024, 58M)'}; vocab {args.vocab}; batch {args.batch} x "
          f"{args.seq}; {args.warmup} warm-up + {args.steps} timed steps")
    rows = []
    for path in args.paths.split(","):
        r = worker(argparse.Namespace(**{**vars(args), "worker": path})) if args.tiny else \
            run_worker(__file__, path, sys.argv[1:] if argv is None else list(argv), args.threads)
        achieved = r["flops_per_step"] / r["step_s"]
        r["mfu_fp32"], r["mfu_bf16"] = 100 * achieved / peak["fp32"], 100 * achieved / peak["bf16"]
        rows.append(r)
    base = rows[0]
    for r in rows:
        r["speedup"] = r["tokens_per_s"] / base["tokens_per_s"]
        r["dloss"] = abs(r["first"] - base["first"])
    print_table(rows, [("path", "path", "s"), ("tps", "tokens/s (range)", "s"), ("speedup", f"x {base['path']}", ".2f"),
                       ("step_s", "s/step", ".3f"), ("fwd_bwd_s", "fwd+bwd", ".3f"), ("optimizer_s", "optim", ".3f"),
                       ("peak_rss_gib", "peak RSS GiB", ".2f"), ("mfu_fp32", "MFU% fp32 pk", ".1f"),
                       ("mfu_bf16", "MFU% bf16 pk", ".1f"), ("first", "loss batch 0", ".5f"),
                       ("dloss", f"|loss - {base['path']}|", ".1e")])
    return 0


if __name__ == "__main__":
    sys.exit(main())
