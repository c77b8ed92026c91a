"""Benchmark distillation steps: the naive (authors') path side by side with ours, each in its own process.

    python bench/bench_distill.py                               # 58M student, LLaMA 768x12 + GPT-2 768x12, batch 8x128
    python bench/bench_distill.py --batch 32 --steps 5 --paths naive,default,cache
    python bench/bench_distill.py --teachers llama:1024x24 gpt2:1536x24 --inner 3072   # the paper's teachers

Paths (``--paths``, comma-separated):
  naive      fp32 everywhere; teachers called with labels (unused CE); each teacher's full [B,T,V] logits stacked and
             averaged; softmax and log_softmax materialised; KLDivLoss(reduction="batchmean") (the authors' code)
  fp32       our loss (losses.distillation_loss) and teacher call (DistillationTrainer.teacher_logits), fp32
  default    ours as run by distill_train.py with precision/teacher_precision auto on this CPU: student under bf16
             autocast, bf16 teacher weights in inference mode, fused chunked loss
  compile    default + torch.compile(student)
  cache      default, but the teachers' top-k distribution is read from the teacher cache (babyllama/teacher_cache.py), as in
             epochs after the first; the cache is built before timing (its build time is printed separately)

Every path starts from the same random weights (seeded) and the same batches; the loss on the first batch before any
update is compared with the naive path's. Times are medians over the timed steps (+- half the min-max spread).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import (STUDENT_58M, TINY_HELP, TINY_STUDENT, build, emit, forward_flops, gemm_peak,  # noqa: E402
                    load_real_ids, parse_model, peak_rss_gib, print_table, random_batches, run_worker, summarise)

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

ALPHA, TEMP = 0.5, 2.0


def naive_step_loss(student, teachers, batch, timer=None):
    """The authors' DistillationTrainer.compute_loss, fp32."""
    out = student(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], labels=batch["labels"])
    if timer:
        timer("student_fwd")
    with torch.no_grad():
        all_teacher_logits = [t(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"],
                                labels=batch["labels"]).logits for t in teachers]
        avg_teacher_logits = torch.stack(all_teacher_logits).mean(dim=0)
    if timer:
        timer("teacher")
    loss_function = torch.nn.KLDivLoss(reduction="batchmean")
    loss_logits = loss_function(F.log_softmax(out.logits / TEMP, dim=-1), F.softmax(avg_teacher_logits / TEMP, dim=-1)) \
        * TEMP ** 2
    loss = ALPHA * out.loss + (1 - ALPHA) * loss_logits
    return loss, out.logits, out.loss.item(), loss_logits.item() / TEMP ** 2


def worker(args):
    torch.set_num_threads(args.threads)
    from babyllama.schema import ModelSection
    from distill_train import DistillationTrainer
    from babyllama.losses import distillation_loss

    path = args.worker
    bf16 = path in ("default", "compile", "cache")
    student = build(ModelSection(**(TINY_STUDENT if args.tiny else STUDENT_58M)), args.vocab, args.seq, seed=0)
    teachers = [build(parse_model(s, args.inner), args.vocab, args.seq, seed=1 + i) for i, s in enumerate(args.teachers)]
    for t in teachers:
        t.eval().requires_grad_(False)
        if bf16:
            t.to(torch.bfloat16)
    ids = load_real_ids(args.data, args.tokenizer) if args.data else None
    n_batches = args.warmup + args.steps
    batches = random_batches(n_batches, args.batch, args.seq, args.vocab, seed=123, ids=ids)
    # what DistillationTrainer.teacher_logits reads of its trainer (tests/test_bench.py fails when that grows)
    holder = SimpleNamespace(teachers=teachers, teacher_cache=None, cache_hits=0, cache_misses=0,
                             sam_second_pass=False, state=SimpleNamespace(global_step=0))
    flops = 3 * forward_flops(student, args.batch, args.seq)
    if path != "cache":
        flops += sum(forward_flops(t, args.batch, args.seq) for t in teachers)

    cache_build_s = None
    if path == "cache":
        import numpy as np

        from babylm_dataset import ChunkDataset
        from babyllama.teacher_cache import TeacherCache

        flat = torch.cat([b["input_ids"].reshape(-1) for b in batches]).numpy().astype(np.uint16)
        ds = ChunkDataset(flat, args.seq, return_index=True)
        tmp = tempfile.mkdtemp(prefix="bench-tcache-")
        t0 = time.perf_counter()
        cache = TeacherCache.open_or_build(tmp, "train", ds, teachers, k=args.topk, temperature=TEMP,
                                           combine="logits", weights=None, batch_size=args.batch, key="bench")
        cache_build_s = (time.perf_counter() - t0) / n_batches
        holder.teacher_cache = {"train": cache}
        for i, b in enumerate(batches):
            b["chunk_index"] = torch.arange(i * args.batch, (i + 1) * args.batch)

    if path == "compile":
        student = torch.compile(student)
    params = [p for p in student.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=1e-4, fused=(path != "naive"))

    def one_step(batch, timer):
        marks = {}
        if path == "naive":
            loss, logits, ce, kl = naive_step_loss(student, teachers, batch, timer)
            timer("loss_fwd")
        else:
            if path == "cache":
                teacher = DistillationTrainer.teacher_logits(holder, batch)
            else:
                teacher = DistillationTrainer.teacher_logits(holder, {k: v for k, v in batch.items()
                                                                      if k != "chunk_index"})
            timer("teacher")
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                out = student(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], use_cache=False)
            logits = out.logits
            timer("student_fwd")
            res = distillation_loss(logits, teacher, batch["labels"], alpha=ALPHA, temperature=TEMP,
                                    chunk_size=args.chunk, tail=args.tail)
            loss, ce, kl = res.loss, float(res.ce), float(res.kl)
            timer("loss_fwd")
        if logits.requires_grad:
            logits.register_hook(lambda g: marks.__setitem__("grad_logits", time.perf_counter()))
        return loss, ce, kl, marks

    # loss on the first batch before any update: compared across paths
    with torch.no_grad():
        l0, ce0, kl0, _ = one_step(batches[0], lambda name: None)
    first = {"loss": float(l0), "ce": ce0, "kl": kl0}

    parts = {k: [] for k in ("teacher", "student", "loss", "optimizer", "total")}
    for i, batch in enumerate(batches):
        stamps = {"start": time.perf_counter()}
        loss, ce, kl, marks = one_step(batch, lambda name: stamps.__setitem__(name, time.perf_counter()))
        loss.backward()
        stamps["backward"] = time.perf_counter()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        stamps["end"] = time.perf_counter()
        if i < args.warmup:
            continue
        g = marks.get("grad_logits", stamps["loss_fwd"])
        if path == "naive":  # order: student forward (with its CE), teachers, KL
            teacher = stamps["teacher"] - stamps["student_fwd"]
            student_fb = (stamps["student_fwd"] - stamps["start"]) + (stamps["backward"] - g)
        else:  # order: teachers, student forward, fused loss
            teacher = stamps["teacher"] - stamps["start"]
            student_fb = (stamps["student_fwd"] - stamps["teacher"]) + (stamps["backward"] - g)
        loss_t = (stamps["loss_fwd"] - stamps["teacher" if path == "naive" else "student_fwd"]) + (g - stamps["loss_fwd"])
        parts["teacher"].append(teacher)
        parts["student"].append(student_fb)
        parts["loss"].append(loss_t)
        parts["optimizer"].append(stamps["end"] - stamps["backward"])
        parts["total"].append(stamps["end"] - stamps["start"])
    res = {k: summarise(v) for k, v in parts.items()}
    step, spread = res["total"]
    return emit({"path": path, "first": first, "step_s": step, "step_spread": spread,
          "tokens_per_s": args.batch * args.seq / step, "tokens_per_s_min": args.batch * args.seq / (step + spread),
          "tokens_per_s_max": args.batch * args.seq / max(step - spread, 1e-9),
          **{f"{k}_s": v[0] for k, v in res.items() if k != "total"},
          "flops_per_step": flops, "peak_rss_gib": peak_rss_gib(), "cache_build_s_per_step": cache_build_s})


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--paths", default="naive,fp32,default,cache")
    p.add_argument("--teachers", nargs="+", default=["llama:768x12", "gpt2:768x12"],
                   help="TYPE:HIDDENxLAYERS[:HEADS] per teacher (heads default hidden/64)")
    p.add_argument("--inner", type=int, default=3072, help="teachers' MLP width")
    p.add_argument("--vocab", type=int, default=16000)
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--seq", type=int, default=128)
    p.add_argument("--steps", type=int, default=5, help="timed steps")
    p.add_argument("--warmup", type=int, default=2, help="untimed steps first")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--chunk", type=int, default=None, help="loss chunk size (default: DistillationSection's)")
    p.add_argument("--topk", type=int, default=64, help="cache path: teacher top-k")
    p.add_argument("--tail", default="uniform", choices=["renorm", "uniform"], help="cache path: top-k tail handling")
    p.add_argument("--data", default=None, help="split folder of real text (needs --tokenizer); default random ids")
    p.add_argument("--tokenizer", default=None)
    p.add_argument("--tiny", action="store_true", help=TINY_HELP)
    p.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.tiny:
        args.teachers, args.inner, args.vocab, args.batch, args.seq = ["llama:32x2", "gpt2:32x2"], 64, 300, 2, 16
        args.steps, args.warmup, args.threads, args.topk = 1, 0, 1, 8
    if args.chunk is None:
        from babyllama.schema import DistillationSection

        args.chunk = DistillationSection(teachers=["x"]).loss_chunk_size
    if args.worker:
        worker(args)
        return 0

    passthrough = [a for a in (argv if argv is not None else sys.argv[1:])]
    passthrough += ["--chunk", str(args.chunk)]
    peak = gemm_peak(args.threads, n=128 if args.tiny else 2048)
    print(f"GEMM peak ({args.threads} threads): fp32 {peak['fp32'] / 1e9:.0f} GFLOP/s, "
          f"bf16 {peak['bf16'] / 1e9:.0f} GFLOP/s")
    print(f"student llama {'32x2' if args.tiny else '512x16'}; teachers {' + '.join(args.teachers)} (inner "
          f"{args.inner}); vocab {args.vocab}; batch {args.batch} x {args.seq}; {args.warmup} warm-up + {args.steps} "
          f"timed steps; loss chunk {args.chunk}")
    rows = []
    for path in args.paths.split(","):
        r = worker(argparse.Namespace(**{**vars(args), "worker": path})) if args.tiny else \
            run_worker(__file__, path, passthrough, args.threads)
        achieved = r["flops_per_step"] / r["step_s"]
        r["mfu_fp32"] = 100 * achieved / peak["fp32"]
        r["mfu_bf16"] = 100 * achieved / peak["bf16"]
        r["loss_pct"] = 100 * r["loss_s"] / r["step_s"]
        rows.append(r)
        print(f"  {path}: done ({r['step_s']:.2f} s/step)", flush=True)
    base = next((r for r in rows if r["path"] == "naive"), rows[0])
    for r in rows:
        r["speedup"] = r["tokens_per_s"] / base["tokens_per_s"]
        r["rss_ratio"] = r["peak_rss_gib"] / base["peak_rss_gib"]
        r["dloss"] = abs(r["first"]["loss"] - base["first"]["loss"])
        r["dce"] = abs(r["first"]["ce"] - base["first"]["ce"])
        r["dkl"] = abs(r["first"]["kl"] - base["first"]["kl"])
        r["tps"] = f"{r['tokens_per_s']:.0f} ({r['tokens_per_s_min']:.0f}-{r['tokens_per_s_max']:.0f})"
    print()
    print_table(rows, [("path", "path", "s"), ("tps", "tokens/s (range)", "s"), ("speedup", "x naive", ".2f"),
                       ("step_s", "s/step", ".3f"), ("teacher_s", "teacher fwd", ".3f"),
                       ("student_s", "student fwd+bwd", ".3f"), ("loss_s", "loss", ".3f"), ("loss_pct", "loss %", ".1f"),
                       ("optimizer_s", "optim", ".3f"), ("peak_rss_gib", "peak RSS GiB", ".2f"),
                       ("rss_ratio", "RSS x naive", ".2f"), ("mfu_fp32", "MFU% fp32 pk", ".1f"),
                       ("mfu_bf16", "MFU% bf16 pk", ".1f")])
    print()
    print(f"loss on the first batch (same weights), naive: loss {base['first']['loss']:.6f} ce {base['first']['ce']:.6f} "
          f"kl {base['first']['kl']:.6f}")
    print_table(rows, [("path", "path", "s"), ("dloss", "|loss - naive|", ".2e"), ("dce", "|ce - naive|", ".2e"),
                       ("dkl", "|kl - naive|", ".2e")])
    for r in rows:
        if r.get("cache_build_s_per_step"):
            print(f"\ncache build (first epoch, live teachers + top-{args.topk} write): "
                  f"{r['cache_build_s_per_step']:.3f} s per batch of {args.batch}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
