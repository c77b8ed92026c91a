"""Approximation error of the teacher cache's top-k loss vs the exact teachers, on real BabyLM batches.

    python bench/bench_cache_error.py --data /work/shared/data/babylm_dev --tokenizer TOKENIZER_DIR

Random-init teachers are near-uniform, which would make any top-k look terrible, so two small teachers (LLaMA and
GPT-2, ``--teacher-size``) and a smaller student are first trained for ``--train-steps`` steps on the text (bf16
autocast, or fp32 with ``--train-precision fp32``). Then, on ``--eval-batches`` held batches, for each k and tail (renorm / uniform / student): the relative error of
the KL term, the absolute error of the total loss, and the gradient w.r.t. the student logits (relative L2 error
and cosine) against the exact dense loss (losses.distillation_loss), plus the teacher mass inside the top-k.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import TINY_HELP, build, load_real_ids, parse_model, print_table, random_batches  # noqa: E402

import torch  # noqa: E402


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", required=True)
    p.add_argument("--tokenizer", required=True)
    p.add_argument("--teacher-size", default="256x4")
    p.add_argument("--student-size", default="128x2")
    p.add_argument("--train-steps", type=int, default=150)
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--seq", type=int, default=128)
    p.add_argument("--eval-batches", type=int, default=2)
    p.add_argument("--ks", default="16,64,256")
    p.add_argument("--temperature", type=float, default=2.0)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--train-precision", choices=["bf16", "fp32"], default="bf16",
                   help="the models' training (fp32 where the CPU's bf16 matmuls are slow); scoring is fp32 either way")
    p.add_argument("--tiny", action="store_true", help=TINY_HELP)
    args = p.parse_args(argv)
    if args.tiny:
        args.teacher_size, args.student_size, args.train_steps, args.batch, args.seq = "32x2", "16x2", 3, 2, 16
        args.eval_batches, args.ks, args.threads, args.train_precision = 1, "4,8", 1, "fp32"
    torch.set_num_threads(args.threads)
    from babyllama.losses import TopKTeacher, distillation_loss
    from tokenizer import load_tokenizer

    vocab = len(load_tokenizer(args.tokenizer))
    ids = load_real_ids(args.data, args.tokenizer)
    h, layers = args.teacher_size.split("x")
    models = [build(parse_model(f"llama:{args.teacher_size}", 4 * int(h)), vocab, args.seq, seed=1),
              build(parse_model(f"gpt2:{args.teacher_size}", 4 * int(h)), vocab, args.seq, seed=2),
              build(parse_model(f"llama:{args.student_size}", 4 * int(args.student_size.split("x")[0])), vocab,
                    args.seq, seed=3)]
    train = random_batches(args.train_steps, args.batch, args.seq, vocab, seed=1, ids=ids)
    held = random_batches(args.eval_batches, 8, args.seq, vocab, seed=999, ids=ids)
    for j, m in enumerate(models):
        opt = torch.optim.AdamW(m.parameters(), lr=2e-3)
        steps = args.train_steps if j < 2 else args.train_steps // 3  # the student lags behind its teachers
        for i, b in enumerate(train[:steps]):
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=args.train_precision == "bf16"):
                loss = m(input_ids=b["input_ids"], labels=b["labels"]).loss
            loss.backward()
            opt.step()
            opt.zero_grad()
        print(f"model {j}: trained {steps} steps, last train loss {loss.item():.3f}", flush=True)
    teachers, student = [m.eval() for m in models[:2]], models[2].eval()
    rows = []
    T = args.temperature
    for b in held:
        with torch.no_grad():
            t_logits = [t(input_ids=b["input_ids"]).logits for t in teachers]
            s_logits = student(input_ids=b["input_ids"]).logits
        s = s_logits.detach().requires_grad_(True)
        exact = distillation_loss(s, t_logits, b["labels"], temperature=T)
        exact.loss.backward()
        g_exact = s.grad.clone()
        lp = torch.log_softmax((t_logits[0] + t_logits[1]) / 2 / T, dim=-1)
        for k in [int(x) for x in args.ks.split(",")]:
            vals, idx = lp.topk(k, dim=-1)
            teacher = TopKTeacher(idx, vals.half().float())  # as stored: fp16 log-probs
            mass = vals.exp().sum(-1).mean().item()
            for tail in ("renorm", "uniform", "student"):
                s2 = s_logits.detach().requires_grad_(True)
                got = distillation_loss(s2, teacher, b["labels"], temperature=T, tail=tail)
                got.loss.backward()
                diff = (s2.grad - g_exact).norm() / g_exact.norm()
                cos = torch.nn.functional.cosine_similarity(s2.grad.flatten(), g_exact.flatten(), dim=0)
                rows.append({"k": k, "tail": tail, "mass": mass, "kl_exact": exact.kl.item(), "kl": got.kl.item(),
                             "kl_rel": abs(got.kl.item() - exact.kl.item()) / exact.kl.item(),
                             "dloss": abs(got.loss.item() - exact.loss.item()), "grad_rel": diff.item(),
                             "grad_cos": cos.item()})
    # average over the held batches
    out = {}
    for r in rows:
        out.setdefault((r["k"], r["tail"]), []).append(r)
    table = [{**{key: sum(r[key] for r in rs) / len(rs) for key in rs[0] if key not in ("k", "tail")},
              "k": k, "tail": tail} for (k, tail), rs in sorted(out.items())]
    print(f"vocab {vocab}; T {T}; {len(held)} held batches of 8 x {args.seq}; teachers {args.teacher_size}, "
          f"student {args.student_size}")
    print_table(table, [("k", "k", "d"), ("tail", "tail", "s"), ("mass", "teacher mass in top-k", ".3f"),
                        ("kl_exact", "KL exact", ".3f"), ("kl", "KL top-k", ".3f"), ("kl_rel", "KL rel. err", ".3f"),
                        ("dloss", "|loss diff|", ".3f"), ("grad_rel", "grad rel. L2 err", ".3f"),
                        ("grad_cos", "grad cosine", ".4f")])
    return 0


if __name__ == "__main__":
    sys.exit(main())
