"""The GPU check (issue 27), for the day a GPU is lent: the smoke of the paper's pipeline on CUDA, then the 58M
distillation at its configured batch, live teachers and teacher cache, for a few hundred steps each; one JSON.

    bash bench/gpu_check.sh --data data --out runs/gpu_check.json      # data/ holds babylm_10M/, babylm_dev/, blimp/
    bash bench/gpu_check.sh --device cpu                                # the same path on a CPU, tiny (checks the script)

1. ``run_pipeline.py --config CONFIG --smoke`` (config/paper.yaml) in ``<work>-smoke``: on a GPU every training stage
   runs at its configured micro-batch, so the smoke's peak memory and utilisation are the real run's.
2. The distilled stage's own config (pipeline.distilled), with the smoke's trained teachers: ``--steps`` optimizer steps
   with the teachers live, then as many from the teacher cache (built over every train chunk first, timed): median
   s/step, tokens/s, achieved TFLOP/s and utilisation (compute_plan.py's FLOPs), peak memory.
3. compute_plan's projection of each training stage on this GPU at the measured utilisation, beside the smoke's.

The JSON holds the smoke's smoke.json, both benchmark paths and the projection. ``--device cpu`` swaps in the tiny
embedded pipeline (config/pipeline.yaml) and 6 steps, so the whole script runs in about a minute on a laptop.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def smoke(args, work: Path) -> dict:
    """Run the smoke in a subprocess (its memory apart from the benchmark's); its smoke.json, with the exit status."""
    cmd = [sys.executable, "run_pipeline.py", "--config", args.config, "--smoke", f"pipeline.work_dir={work}",
           *args.overrides]
    print("$ " + " ".join(cmd), flush=True)
    start = time.time()
    rc = subprocess.run(cmd, cwd=ROOT).returncode
    out = Path(f"{work}-smoke") / "smoke.json"
    data = json.loads(out.read_text()) if out.is_file() else {}
    return {"rc": rc, "wall_s": round(time.time() - start, 1), **data}


def distill_bench(args, work: Path) -> dict:
    """The distilled stage's config, with the smoke's teachers, live then cached."""
    import torch

    import distill_train
    import run_pipeline
    from babyllama import compute_plan
    from babyllama.config import load_config
    from babyllama.schema import PipelineConfig
    from babyllama.smoke import PeakMemory, StepTimer

    plan = run_pipeline.Plan(load_config(PipelineConfig, args.config, args.overrides
                                         + [f"pipeline.work_dir={work}-smoke"]).pipeline)
    stage = plan.by_name["distilled"]
    base = plan.config(stage)
    vocab = compute_plan.tokenizer_size(plan.tokenizer)
    out, memory = {}, PeakMemory()
    for path in ("live", "cache"):
        d = dataclasses.replace(base.distillation, teacher_cache=path == "cache",
                                teacher_cache_dir=str(work / "bench-teacher-cache"))
        t = dataclasses.replace(base.training, max_steps=args.steps, output_dir=str(work / f"bench-{path}"),
                                save_minutes=None, report_to="none")
        cfg = dataclasses.replace(base, distillation=d, training=t,
                                  data=dataclasses.replace(base.data, eval_samples=min(base.data.eval_samples, 512)))
        row = compute_plan.training_row(stage.name, "distill", cfg, {}, vocab, plan.clean,
                                        compute_plan.BYTES_PER_TOKEN, None)
        shutil.rmtree(t.output_dir, ignore_errors=True)  # the benchmark's own throwaway model, and cache: rebuilt
        shutil.rmtree(d.teacher_cache_dir, ignore_errors=True)
        memory.reset()
        timer = StepTimer()
        start = time.time()
        metrics = distill_train.run(cfg, callbacks=[timer])
        timed = timer.timed()
        tflops = row.step_flops * cfg.training.batch_size / timed["step_s"] / 1e12
        name = torch.cuda.get_device_name() if torch.cuda.is_available() else "cpu"
        peak = compute_plan.peak_of(name)
        out[path] = {"steps": args.steps, "batch": cfg.training.batch_size, "seq_length": cfg.data.seq_length,
                     **{k: round(v, 4) for k, v in timed.items()}, "setup_s": round(timer.setup_s or 0.0, 1),
                     "wall_s": round(time.time() - start, 1), "peak_gib": round(memory.peak_gib(), 2),
                     "tokens_per_s": round(cfg.training.batch_size * cfg.data.seq_length / timed["step_s"]),
                     "achieved_tflops": round(tflops, 2), "utilisation": round(tflops / peak, 4) if peak else None,
                     "memory_estimate_gib": round(row.memory["total"] / 2 ** 30, 2),
                     "eval_loss": metrics.get("eval_loss"), "parameters": metrics.get("parameters")}
        print(f"distillation, {path}: {json.dumps(out[path])}", flush=True)
    return out


def projection(args, work: Path) -> dict:
    """compute_plan's rows for the paper run on this GPU, at the utilisation the smoke measured."""
    import torch

    import run_pipeline
    from babyllama import compute_plan
    from babyllama.config import load_config
    from babyllama.schema import PipelineConfig

    smoke_dir = Path(f"{work}-smoke")  # its data, tokenizer and token cache count the tokens exactly
    plan = run_pipeline.Plan(load_config(PipelineConfig, args.config, args.overrides
                                         + [f"pipeline.work_dir={smoke_dir}"]).pipeline)
    rows, gpu = compute_plan.pipeline_plan(plan, [s.name for s in plan.stages], smoke_json=smoke_dir / "smoke.json")
    name = torch.cuda.get_device_name() if torch.cuda.is_available() else ""
    peak = compute_plan.peak_of(name)
    return {"gpu": gpu, "stages": {r.stage: {"pflop": round(r.flops / 1e15, 4), "utilisation": r.utilisation,
                                             "hours_here": round(r.flops / (peak * 1e12 * r.utilisation) / 3600, 3)
                                             if peak and r.utilisation else None} for r in rows}}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", choices=("cuda", "cpu"), default="cuda")
    parser.add_argument("--data", default="data", help="folder of babylm_10M/, babylm_dev/ and blimp/ (cuda)")
    parser.add_argument("--out", default="runs/gpu_check.json")
    parser.add_argument("--work", default="runs/gpu-check", help="work dir (the smoke writes <work>-smoke)")
    parser.add_argument("--steps", type=int, help="optimizer steps per distillation path (default 300; cpu: 6)")
    parser.add_argument("--skip-smoke", action="store_true", help="reuse the last smoke's models")
    args = parser.parse_args(argv)
    import torch

    if args.device == "cuda" and not torch.cuda.is_available():
        print("error: no CUDA device here; --device cpu runs the tiny dry path", file=sys.stderr)
        return 2
    if args.device == "cpu":
        os.environ["CUDA_VISIBLE_DEVICES"] = ""  # the smoke's subprocess, too
        args.config, args.overrides, args.steps = "config/pipeline.yaml", [], args.steps or 6
    else:
        data = Path(args.data).resolve()
        if not (data / "babylm_10M").is_dir() or not (data / "blimp").is_dir():
            print(f"error: {data} must hold babylm_10M/, babylm_dev/ and blimp/ (--data)", file=sys.stderr)
            return 2
        args.config, args.steps = "config/paper.yaml", args.steps or 300
        args.overrides = [f"pipeline.raw_data={data}", f"pipeline.blimp_dir={data / 'blimp'}"]
    work = (ROOT / args.work).resolve()
    result = {"device": args.device, "gpu": torch.cuda.get_device_name() if torch.cuda.is_available() else None,
              "torch": torch.__version__, "config": args.config, "started": time.strftime("%Y-%m-%d %H:%M:%S")}
    if not args.skip_smoke:
        result["smoke"] = smoke(args, work)
        if result["smoke"]["rc"] != 0:
            print(f"the smoke failed (exit {result['smoke']['rc']}); the benchmark needs its teachers", file=sys.stderr)
    if args.skip_smoke or result["smoke"]["rc"] == 0:
        result["distillation"] = distill_bench(args, work)
        result["projection"] = projection(args, work)
    live, cache = (result.get("distillation") or {}).get("live"), (result.get("distillation") or {}).get("cache")
    if live and cache:
        cache["cache_build_s"] = round(max(0.0, cache["setup_s"] - live["setup_s"]), 1)  # the same loading besides
        print(f"distillation of {live['parameters']:,} parameters at batch {live['batch']}: live {live['step_s']:.3f} "
              f"s/step, from the cache {cache['step_s']:.3f} s/step (built in about {cache['cache_build_s']} s)")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1) + "\n")
    print(f"wrote {out}")
    return 0 if result.get("distillation") else 1


if __name__ == "__main__":
    sys.exit(main())
