"""Benchmark the distillation loss alone (forward + backward w.r.t. the student logits), naive vs ours.

    python bench/bench_loss.py                      # batch 8 x 128, vocab 16000, two teachers, bf16 logits for ours
    python bench/bench_loss.py --chunks 64,256,1024,4096 --batch 32

naive: fp32 logits; the teachers' logits stacked and averaged, softmax and log_softmax materialised,
KLDivLoss(reduction="batchmean") plus the student's CE, autograd backward.
ours: losses.distillation_loss on bf16 student and teacher logits (as under precision auto), per chunk size;
also the teacher-cache loss (losses.distillation_loss with a TopKTeacher) for top-k teachers.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import TINY_HELP, print_table, summarise  # noqa: E402

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402


def naive(student, teachers, labels, T=2.0, alpha=0.5):
    ce = F.cross_entropy(student[:, :-1].flatten(0, 1), labels[:, 1:].flatten())
    avg = torch.stack(teachers).mean(0)
    kl = torch.nn.KLDivLoss(reduction="batchmean")(F.log_softmax(student / T, dim=-1), F.softmax(avg / T, dim=-1))
    return alpha * ce + (1 - alpha) * kl * T ** 2


def timeit(fn, reps):
    fn()
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return summarise(times)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--seq", type=int, default=128)
    p.add_argument("--vocab", type=int, default=16000)
    p.add_argument("--teachers", type=int, default=2)
    p.add_argument("--chunks", default="32,128,512,4096")
    p.add_argument("--topk", default="64,256")
    p.add_argument("--reps", type=int, default=5)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--tiny", action="store_true", help=TINY_HELP)
    args = p.parse_args(argv)
    if args.tiny:
        args.batch, args.seq, args.vocab, args.chunks, args.topk, args.reps, args.threads = 2, 8, 64, "4,16", "4", 1, 1
    torch.set_num_threads(args.threads)
    from babyllama.losses import TopKTeacher, distillation_loss

    B, T, V = args.batch, args.seq, args.vocab
    g = torch.Generator().manual_seed(0)
    s32 = torch.randn(B, T, V, generator=g) * 2
    t32 = [torch.randn(B, T, V, generator=g) * 3 for _ in range(args.teachers)]
    labels = torch.randint(0, V, (B, T), generator=g)
    s16, t16 = s32.bfloat16(), [t.bfloat16() for t in t32]
    rows = []

    def run_naive():
        s = s32.clone().requires_grad_(True)
        naive(s, t32, labels).backward()

    m, sp = timeit(run_naive, args.reps)
    rows.append({"what": "naive fp32", "ms": 1e3 * m, "spread": 1e3 * sp})
    for chunk in [int(c) for c in args.chunks.split(",")]:
        for name, s_in, t_in in (("ours fp32", s32, t32), ("ours bf16", s16, t16)):
            def run():
                s = s_in.detach().requires_grad_(True)
                distillation_loss(s, t_in, labels, chunk_size=chunk).loss.backward()

            m, sp = timeit(run, args.reps)
            rows.append({"what": f"{name} chunk {chunk}", "ms": 1e3 * m, "spread": 1e3 * sp})
    lp = torch.log_softmax(sum(t32) / len(t32) / 2.0, dim=-1)
    for k in [int(x) for x in args.topk.split(",") if x]:
        vals, idx = lp.topk(k, dim=-1)
        teacher = TopKTeacher(idx, vals.half().float())
        for chunk in (128, 512):
            for tail in ("renorm", "uniform"):
                def run():
                    s = s16.detach().requires_grad_(True)
                    distillation_loss(s, teacher, labels, chunk_size=chunk, tail=tail).loss.backward()

                m, sp = timeit(run, args.reps)
                rows.append({"what": f"cached top-{k} {tail} bf16 chunk {chunk}", "ms": 1e3 * m, "spread": 1e3 * sp})
    print(f"loss forward+backward, batch {B} x {T}, vocab {V}, {args.teachers} teachers, {args.threads} threads, "
          f"median of {args.reps}")
    print_table(rows, [("what", "loss", "s"), ("ms", "ms", ".1f"), ("spread", "+-", ".1f")])
    return 0


if __name__ == "__main__":
    sys.exit(main())
