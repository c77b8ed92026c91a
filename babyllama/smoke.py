"""``python run_pipeline.py --config CONFIG --smoke``: every stage of the pipeline at the config's true model sizes,
sequence lengths and precision, on a slice of its work, through the stage code the real run uses, in
``<work_dir>-smoke`` (the real work dir is never written). What breaks at true size breaks here in minutes, and each
stage's cost is measured and projected to the full run on this machine (PyTorch Lightning's ``fast_dev_run``, for the
whole pipeline).

The slice:
- data, clean, tokenizer: as configured (seconds per MB), so the vocabulary, and with it every parameter count, is
  the real run's;
- every training stage: STEPS optimizer steps on a micro-batch of MICRO sequences (on a GPU: the configured
  micro-batch, so its memory and utilisation are the real ones), and evaluation on two micro-batches of dev chunks.
  After STEPS // 2 steps the stage's own Ctrl-C path saves a checkpoint and stops, and ``--resume`` continues from it;
- a distillation stage: with the teachers as configured (live), then again from the teacher cache, built for about
  CACHE_CHUNKS chunks (data.train_share cut to them);
- text: TEXT_TOKENS tokens of the dev split; eval and the zero-shot suites: PAIRS items per file;
- finetune (when the pipeline has the stage): STEPS steps per student on the synthetic CoLA stand-in
  (babyllama/synthetic_tasks.py) in place of pipeline.finetune_data;
- report: as configured (the smoke's own RESULTS.md; pipeline.results_file is not written).

Per stage, ``smoke.json`` and ``smoke.md`` (the table, also printed) hold the wall time and peak memory (process RSS
on a CPU, ``torch.cuda.max_memory_allocated`` on a GPU; beside it what the process held when the stage began: Python,
torch and what earlier stages left); a training stage adds seconds per optimizer step measured on
the micro-batch (forward+backward and optimizer apart), the step at the configured batch (projected: forward+backward
scaled by sequences, times the accumulation, plus the optimizer once), the checkpoint's size on disk, and the
projected hours of the full stage here (steps from compute_plan.py's count of the real data). Scoring stages are
projected by their FLOPs at the training steps' FLOP rate. A stage that fails stops the smoke with its name, its
config key and the fix; a stage whose projected peak at the configured batch would not fit this machine says which
micro-batch would. The smoke's checkpoints are deleted after each stage unless ``--smoke-keep``; its models stay
(the later stages read them).
"""

from __future__ import annotations

import ctypes
import dataclasses
import gc
import json
import os
import re
import shutil
import signal
import statistics
import time
import traceback
from pathlib import Path

import torch
from transformers import TrainerCallback

from babyllama import compute_plan
from babyllama.callbacks import SaveOnInterrupt
from babyllama.config import UserError
from babyllama.files import write_atomic
from babyllama.run_folder import checkpoint_bytes, checkpoints_in
from babyllama.trainer_setup import Interrupted, batch_plan, resolve_precision

STEPS = 6  # optimizer steps per model, STEPS // 2 before the interrupt and after; the first of each run is warm-up
MICRO = 2  # sequences per micro-batch on a CPU
PAIRS = 4  # items per pair file of the eval and zero-shot stages
CACHE_CHUNKS = 16  # chunks the smoke's teacher cache is built for
TEXT_TOKENS = 4096  # dev tokens the text stage scores
MARK = ".smoke-dir"  # a folder the smoke made: it may be wiped by the next smoke
TRAINING = ("teacher1", "teacher2", "student", "distilled")  # the pipeline keys of training YAMLs


def on_gpu() -> bool:
    return torch.cuda.is_available()


def now() -> float:
    if on_gpu():
        torch.cuda.synchronize()
    return time.perf_counter()


# ----------------------------------------------------------------------------------------------------------------------
# measuring


class StepTimer(TrainerCallback):
    """Times every optimizer step (forward+backward of its micro-batches, the optimizer, the whole step) and every
    evaluation (seconds per sequence); remembers the global step each ``train()`` began at."""

    def __init__(self):
        self.steps, self.eval_s_per_seq, self.began_at = [], [], []
        self._first, self.created, self.setup_s = False, time.perf_counter(), None

    def on_train_begin(self, args, state, control, **kw):
        self.began_at.append(state.global_step)
        self._first = True
        if self.setup_s is None:  # from the stage's call to its first step: loading, data, a teacher cache's build
            self.setup_s = time.perf_counter() - self.created

    def on_step_begin(self, args, state, control, **kw):
        self._t = [now()]

    def on_pre_optimizer_step(self, args, state, control, **kw):
        self._t.append(now())

    def on_optimizer_step(self, args, state, control, **kw):
        self._t.append(now())

    def on_step_end(self, args, state, control, **kw):
        begin, pre, opt = (self._t + [None, None])[:3]
        end = now()
        self.steps.append({"step": state.global_step, "warm_up": self._first, "step_s": end - begin,
                           "fwd_bwd_s": (pre or end) - begin, "optimizer_s": (opt - pre) if opt else 0.0})
        self._first = False

    def on_evaluate(self, args, state, control, metrics=None, **kw):
        rate = (metrics or {}).get("eval_samples_per_second") or next(
            (v for k, v in (metrics or {}).items() if k.endswith("_samples_per_second")), None)
        if rate:
            self.eval_s_per_seq.append(1.0 / rate)

    def timed(self) -> dict:
        """Medians over the steps after each run's first, and the fastest (on a shared machine, the least
        disturbed)."""
        steps = [s for s in self.steps if not s["warm_up"]] or self.steps
        if not steps:
            return {}
        return {**{k: statistics.median(s[k] for s in steps) for k in ("step_s", "fwd_bwd_s", "optimizer_s")},
                "fastest_step_s": min(s["step_s"] for s in steps)}


class InterruptAt(TrainerCallback):
    """At optimizer step ``step``, what Ctrl-C does: the run's SaveOnInterrupt saves a checkpoint after the step and
    stops, and the stage ends in trainer_setup.Interrupted."""

    def __init__(self, step: int):
        self.step = step

    def on_step_end(self, args, state, control, **kw):
        if state.global_step == self.step:
            handler = signal.getsignal(signal.SIGINT)
            if not isinstance(getattr(handler, "__self__", None), SaveOnInterrupt):
                raise UserError("the smoke runs in one process, in its main thread (SaveOnInterrupt is not listening)")
            handler(signal.SIGINT, None)


class PeakMemory:
    """Peak memory since ``reset()``: the GPU's allocated bytes, or this process's resident set (VmHWM, reset through
    /proc/self/clear_refs)."""

    def reset(self):
        """Free what the last stage left (Python cycles; glibc's free heap pages, which it keeps otherwise), then start
        counting from the process's current size, ``start_gib``."""
        gc.collect()
        if on_gpu():
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats()
        try:
            ctypes.CDLL("libc.so.6").malloc_trim(0)
        except (OSError, AttributeError):
            pass
        try:
            Path("/proc/self/clear_refs").write_text("5")
        except OSError:
            pass
        self.start_gib = self.peak_gib()

    @staticmethod
    def rss_gib() -> float:
        try:
            return int(re.search(r"VmHWM:\s+(\d+)", Path("/proc/self/status").read_text()).group(1)) / 2 ** 20
        except (OSError, AttributeError):
            import resource

            return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2 ** 20

    def peak_gib(self) -> float:
        return torch.cuda.max_memory_allocated() / 2 ** 30 if on_gpu() else self.rss_gib()


def device() -> tuple[str, float]:
    """(device name, its memory in GiB): the GPU, or the CPU and the machine's RAM."""
    if on_gpu():
        props = torch.cuda.get_device_properties(0)
        return f"cuda ({props.name})", props.total_memory / 2 ** 30
    return f"cpu ({torch.get_num_threads()} threads)", os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2 ** 30


def folder_bytes(folder) -> int:
    return sum(f.stat().st_size for f in Path(folder).rglob("*") if f.is_file())


# ----------------------------------------------------------------------------------------------------------------------
# the smoke's pipeline


def smoke_section(p, real, work: Path):
    """The smoke's pipeline section: the real one in ``work``, with the slice's overrides after each stage's own."""
    over = {k: list(v) for k, v in p.stage_overrides.items()}
    for key in TRAINING:  # the micro-batch: MICRO here, the configured one on a GPU
        stage = next((s for s in real.stages if s.yaml_key == key), None)
        if stage is None:
            continue
        micro = batch_plan(real.config(stage).training)[0] if on_gpu() else MICRO
        over[key] = over.get(key, []) + [f"training.max_steps={STEPS}", f"training.batch_size={micro}",
                                         f"training.per_device_batch_size={micro}", f"data.eval_samples={2 * micro}",
                                         "training.report_to=none", "training.push_to_hub=false"]
    for key in ("eval", "zero_shot"):
        over[key] = over.get(key, []) + [f"eval.max_pairs_per_file={PAIRS}"]
    if p.finetune:
        ft = real.config(next(s for s in real.stages if s.kind == "finetune")).finetune
        micro = ft.settings("synthetic_cola").batch_size if on_gpu() else MICRO
        over["finetune"] = over.get("finetune", []) + [
            f"finetune.per_task.synthetic_cola={{batch_size: {micro}, num_epochs: {STEPS * micro / 1000}, "
            f"eval_steps: {STEPS // 2}, patience: 10}}"]
    dev_bytes = sum(f.stat().st_size for f in compute_plan.corpus_files(compute_plan.dev_folder(real))) or 1
    share = min(1.0, TEXT_TOKENS * compute_plan.BYTES_PER_TOKEN / dev_bytes)
    return dataclasses.replace(p, work_dir=str(work), stage_overrides=over, results_file=None, dev_text_share=share,
                               finetune_data=str(work / "finetune-tasks") if p.finetune else None,
                               finetune_tasks=["synthetic_cola"])


def prepare(work: Path):
    """An empty smoke folder (its token cache kept); a folder the smoke did not make is refused."""
    if work.exists() and not (work / MARK).is_file():
        raise UserError(f"{work}: exists and was not made by --smoke; move it, or set pipeline.work_dir so that "
                        "<work_dir>-smoke is free")
    if work.exists():
        for child in work.iterdir():
            if child.name not in ("cache", MARK):
                shutil.rmtree(child) if child.is_dir() and not child.is_symlink() else child.unlink()
    work.mkdir(parents=True, exist_ok=True)
    (work / MARK).write_text("made by run_pipeline.py --smoke; wiped by the next one\n")


def check_disk(real, work: Path, keep: bool):
    """Room for every model the smoke trains plus the checkpoints (two per model, as save_total_limit) of the largest,
    or of all with ``keep``."""
    vocab = real.config(next(s for s in real.stages if s.kind == "tokenizer")).tokenizer.vocab_size
    sizes = [compute_plan.shape_of(real.config(s).model, vocab, real.config(s).data.seq_length).params
             for s in real.stages if s.kind in ("train", "distill")]
    ckpts = [2 * checkpoint_bytes(n) for n in sizes] + [0]
    need = 4 * sum(sizes) + (sum(ckpts) if keep else max(ckpts))
    free = shutil.disk_usage(work).free
    if free < need:
        raise UserError(f"{work}: {free / 1e9:.1f} GB free, but the smoke needs about {need / 1e9:.1f} GB (every model, "
                        f"and {'every' if keep else 'the largest'} model's two checkpoints); free disk space"
                        + ("" if not keep else " or drop --smoke-keep"))
    return need


# ----------------------------------------------------------------------------------------------------------------------
# the stages


class Smoke:
    def __init__(self, real, smoke, run_stage, keep: bool):
        self.real, self.plan, self.run_stage, self.keep = real, smoke, run_stage, keep
        self.memory = PeakMemory()
        self.device, self.device_gib = device()
        self.rows, self.shapes, self.flop_rates = [], {}, []

    def plan_row(self, stage, cfg, real_cfg) -> compute_plan.Row:
        """compute_plan's Row of the stage at its real batch, epochs and eval set, on the smoke's (whole) data."""
        d = dataclasses.replace(cfg.data, eval_samples=real_cfg.data.eval_samples, train_share=real_cfg.data.train_share)
        t = dataclasses.replace(real_cfg.training, output_dir=cfg.training.output_dir,
                                precision=resolve_precision(real_cfg.training.precision))  # as it runs here
        full = dataclasses.replace(cfg, data=d, training=t)
        return compute_plan.training_row(stage.name, stage.kind, full, self.shapes,
                                         compute_plan.tokenizer_size(self.plan.tokenizer), self.plan.clean,
                                         compute_plan.BYTES_PER_TOKEN, None)

    def train(self, stage, cfg, real_cfg) -> list[dict]:
        """Run, Ctrl-C at STEPS // 2, resume to STEPS; then the same with the teacher cache for a distillation."""
        timer = StepTimer()
        before = signal.getsignal(signal.SIGINT)
        try:
            self.run_stage(self.plan, stage, cfg, resume=False, callbacks=[timer, InterruptAt(STEPS // 2)])
            raise UserError(f"{stage.name}: training finished before the interrupt at step {STEPS // 2}")
        except Interrupted:
            if not timer.steps or timer.steps[-1]["step"] != STEPS // 2:
                raise  # the user's Ctrl-C, not the smoke's
            print(f"smoke: {stage.name} interrupted at step {STEPS // 2} with a checkpoint; resuming it", flush=True)
        finally:
            signal.signal(signal.SIGINT, before)
        gc.collect()
        self.run_stage(self.plan, stage, cfg, resume=True, callbacks=[timer])
        if timer.began_at[-1] != STEPS // 2:
            raise UserError(f"{stage.name}: --resume began at step {timer.began_at[-1]}, not at the checkpoint of step "
                            f"{STEPS // 2}")
        row = self.training_figures(stage, cfg, real_cfg, timer)
        rows = [row]
        if stage.kind == "distill" and not cfg.data.random_offset:
            rows.append(self.cached(stage, cfg, real_cfg, timer.setup_s))
        return rows

    def training_figures(self, stage, cfg, real_cfg, timer) -> dict:
        """The row of a training run: measured step, projected step and stage, memory, checkpoint."""
        out = Path(cfg.training.output_dir)
        ckpts = checkpoints_in(out)
        ckpt = max((folder_bytes(c) for c in ckpts), default=0)
        if not self.keep:
            for c in ckpts:
                shutil.rmtree(c)
        plan = self.plan_row(stage, cfg, real_cfg)
        micro = cfg.training.batch_size
        t = timer.timed()
        scale = plan.micro / micro  # the configured micro-batch's sequences per measured one
        step_cfg = plan.accumulation * t["fwd_bwd_s"] * scale + (t["step_s"] - t["fwd_bwd_s"])
        eval_s = statistics.median(timer.eval_s_per_seq) if timer.eval_s_per_seq else 0.0
        flops_step = plan.step_flops * micro
        peak = self.memory.peak_gib()
        at = lambda b: (peak * 2 ** 30 + plan.memory_at(b) - plan.memory_at(micro))  # noqa: E731 (bytes)
        fix = compute_plan.fit_suggestion(at, plan.batch, plan.micro, self.device_gib)
        metrics = json.loads((out / "metrics.json").read_text())
        self.flop_rates.append(flops_step / t["step_s"])
        return {"stage": stage.name, "kind": stage.kind, "parameters": metrics["parameters"],
                "precision": metrics.get("precision"), "micro_batch": micro, "batch": plan.batch,
                "configured_micro_batch": plan.micro, "accumulation": plan.accumulation,
                "timed_steps": len([s for s in timer.steps if not s["warm_up"]]), "resumed_at_step": timer.began_at[-1],
                **{k: round(v, 4) for k, v in t.items()},
                "projected_step_s": round(step_cfg, 3), "projected_step_is": "measured" if scale == 1 and
                plan.accumulation == 1 else "projected",
                "eval_s_per_seq": round(eval_s, 4), "peak_gib": round(peak, 2),
                "memory_estimate_gib": round(plan.memory_at(micro) / 2 ** 30, 2),
                "projected_peak_gib": round(at(plan.micro) / 2 ** 30, 2), "fits_here": fix is None, "fix": fix,
                "checkpoint_gb": round(ckpt / 1e9, 2), "checkpoint_bytes": ckpt, "tokens_per_epoch": int(plan.tokens), "epochs": plan.epochs,
                "steps_full": plan.steps,
                "projected_stage_h": round((plan.steps * step_cfg + plan.eval_seqs * eval_s) / 3600, 3),
                "achieved_tflops": round(flops_step / t["step_s"] / 1e12, 4)}

    def cached(self, stage, cfg, real_cfg, live_setup_s: float) -> dict:
        """The distillation once more, from a teacher cache built for about CACHE_CHUNKS chunks; its build time is
        the run's setup time less the live run's (the same loading and data, without the cache)."""
        tokens, _ = compute_plan.count_tokens(cfg.data.train_dir, cfg.data, 1.0, compute_plan.BYTES_PER_TOKEN)
        share = min(1.0, CACHE_CHUNKS * cfg.data.seq_length / max(tokens, 1))
        out = Path(cfg.training.output_dir + "-teacher-cache")
        folder = Path(self.plan.work) / "cache" / "teacher-smoke"
        shutil.rmtree(folder, ignore_errors=True)
        c = dataclasses.replace(
            cfg, data=dataclasses.replace(cfg.data, train_share=share),
            training=dataclasses.replace(cfg.training, output_dir=str(out)),
            distillation=dataclasses.replace(cfg.distillation, teacher_cache=True, teacher_cache_dir=str(folder)))
        self.memory.reset()
        timer = StepTimer()
        start = time.perf_counter()
        self.run_stage(self.plan, stage, c, resume=False, callbacks=[timer])
        seconds = time.perf_counter() - start
        build_s = max(0.0, timer.setup_s - live_setup_s)
        chunks = sum(json.loads(m.read_text())["chunks"] for m in folder.glob("*/meta.json"))
        full = dataclasses.replace(real_cfg, distillation=dataclasses.replace(real_cfg.distillation, teacher_cache=True))
        row = self.training_figures(dataclasses.replace(stage, name=stage.name + "+cache"), c, full, timer)
        plan = self.plan_row(stage, c, full)
        build_full = build_s / max(chunks, 1) * (plan.tokens / cfg.data.seq_length + real_cfg.data.eval_samples)
        row.update(seconds=round(seconds, 1), status="ok", start_gib=round(self.memory.start_gib, 2), cache_chunks=chunks,
                   cache_build_s=round(build_s, 1), projected_cache_build_h=round(build_full / 3600, 3),
                   projected_stage_h=round(row["projected_stage_h"] + build_full / 3600, 3))
        return row

    def scoring(self, stage, seconds: float) -> dict:
        """A scoring stage projected by FLOPs: the full stage's minus the smoke's, at the training steps' FLOP rate."""
        names = [stage.name]
        full, _ = compute_plan.pipeline_plan(self.real, names)
        done, _ = compute_plan.pipeline_plan(self.plan, names)
        rate = statistics.median(self.flop_rates) if self.flop_rates else None
        extra = (full[0].flops - done[0].flops) / rate if full and done and rate else 0.0
        return {"projected_stage_h": round((seconds + max(extra, 0.0)) / 3600, 3)}

    def stage(self, stage):
        cfg, real_cfg = self.plan.config(stage), self.real.config(stage)
        self.memory.reset()
        start_gib = self.memory.start_gib  # what the process holds already (on a CPU: Python, torch, earlier stages)
        start = time.perf_counter()
        rows = [{}]
        if stage.kind in ("train", "distill"):
            rows = self.train(stage, cfg, real_cfg)
        else:
            todo = list(self.plan.scorers(stage)) if stage.kind in ("text", "eval") else None
            timer = StepTimer()
            if stage.kind == "finetune":
                self.run_stage(self.plan, stage, cfg, resume=False, todo=todo, callbacks=[timer])
            else:
                self.run_stage(self.plan, stage, cfg, resume=False, todo=todo)
            seconds = time.perf_counter() - start
            if stage.kind in ("text", "eval", "aoa"):
                rows[0].update(self.scoring(stage, seconds))
            elif stage.kind == "finetune":
                rows[0].update({"micro_batch": cfg.finetune.settings("synthetic_cola").batch_size,
                                **{k: round(v, 4) for k, v in timer.timed().items()}})
            else:
                rows[0]["projected_stage_h"] = round(seconds / 3600, 4)
        seconds = time.perf_counter() - start - sum(r.get("seconds", 0.0) for r in rows[1:])
        rows[0] = {"stage": stage.name, "kind": stage.kind, **rows[0], "seconds": round(seconds, 1),
                   "peak_gib": rows[0].get("peak_gib", round(self.memory.peak_gib(), 2)),
                   "start_gib": round(start_gib, 2), "status": "ok"}
        self.plan.mark(stage, {"seconds": round(seconds, 1)})  # the report's table of stage times reads it
        return rows

    def write(self, extra: dict | None = None):
        data = {"device": self.device, "device_memory_gib": round(self.device_gib, 1), "steps": STEPS,
                "micro_batch": "configured" if on_gpu() else MICRO, "pairs_per_file": PAIRS,
                "command": self.plan.command, "stages": self.rows, **(extra or {})}
        work = Path(self.plan.work)
        write_atomic(work / "smoke.json", json.dumps(data, indent=1) + "\n")
        write_atomic(work / "smoke.md", table(data) + "\n")
        return data


def failure(smoke, stage, e: BaseException) -> str:
    """What failed, the setting and the fix, in one line."""
    key = f" (pipeline.{stage.yaml_key})" if stage.yaml_key else ""
    if isinstance(e, UserError):
        return f"stage {stage.name}{key} failed: {e}"
    if isinstance(e, (torch.OutOfMemoryError, MemoryError)):
        fix = "lower training.per_device_batch_size"
        if stage.kind in ("train", "distill"):
            row = smoke.plan_row(stage, smoke.plan.config(stage), smoke.real.config(stage))
            half = max(1, row.micro // 2)  # the estimate says it fits: halve the activations
            fix = compute_plan.fit_suggestion(row.memory_at, row.batch, row.micro, smoke.device_gib) or (
                f"training.per_device_batch_size={half} (gradient accumulation {row.batch // half}) halves the "
                "activations" if row.micro > 1 else fix)
        return (f"stage {stage.name}{key} ran out of memory on {smoke.device} ({smoke.device_gib:.0f} GiB) at "
                f"micro-batch {smoke.plan.config(stage).training.batch_size if stage.model else '-'}: {fix}")
    return (f"stage {stage.name}{key} failed: {type(e).__name__}: {str(e).splitlines()[0][:200] if str(e) else ''} "
            "(the traceback above shows where)")


def run(real, make_plan, run_stage, keep: bool = False) -> int:
    """The smoke of the pipeline ``real`` (a run_pipeline ``Plan``): ``make_plan`` builds the smoke's Plan from a
    pipeline section, ``run_stage`` runs a stage (run_pipeline's, with a ``callbacks`` argument)."""
    work = Path(str(real.work).rstrip("/") + "-smoke")
    prepare(work)
    need = check_disk(real, work, keep)
    plan = make_plan(smoke_section(real.p, real, work))
    plan.command = real.command
    for s in plan.stages:  # every YAML is checked before anything runs
        plan.config(s)
    if real.p.finetune:
        from babyllama.synthetic_tasks import write_tasks

        write_tasks(work / "finetune-tasks", seed=0)
    smoke = Smoke(real, plan, run_stage, keep)
    print(f"smoke: {len(plan.stages)} stages in {work} on {smoke.device}; about {need / 1e9:.1f} GB of disk at most",
          flush=True)
    start = time.perf_counter()
    for i, stage in enumerate(plan.stages, 1):
        print(f"\n== smoke [{i}/{len(plan.stages)}] {stage.name} " + "=" * 40, flush=True)
        try:
            smoke.rows += smoke.stage(stage)
        except (Exception, MemoryError) as e:
            if not isinstance(e, UserError):
                traceback.print_exc()
            message = failure(smoke, stage, e)
            smoke.rows.append({"stage": stage.name, "kind": stage.kind, "status": "failed", "error": message})
            smoke.write({"failed": stage.name})
            raise UserError(f"smoke: {message}") from None
        smoke.write()
    total = sum(r.get("projected_stage_h") or 0.0 for r in smoke.rows)
    data = smoke.write({"seconds": round(time.perf_counter() - start, 1), "projected_total_h": round(total, 2)})
    print("\n" + table(data))
    for r in smoke.rows:
        if r.get("fix"):
            print(f"at the configured batch, {r['stage']} would not fit this machine's {smoke.device_gib:.0f} GiB: "
                  f"{r['fix']}")
    print(f"\nsmoke: every stage ran; {work / 'smoke.json'} and smoke.md hold the figures")
    return 0


def table(data: dict) -> str:
    """smoke.json as a Markdown table."""
    def cell(r, key, fmt):
        v = r.get(key)
        return "-" if v is None else format(v, fmt)

    lines = [f"smoke on {data['device']}, {data['device_memory_gib']} GiB; micro-batch {data['micro_batch']}, "
             f"{data['steps']} steps per model (save + resume at {data['steps'] // 2}), {data['pairs_per_file']} items "
             "per pair file", "",
             "| stage | parameters | precision | micro-batch | s/step measured (fastest) | s/step at batch (accumulation) | "
             "peak GiB (at start) | checkpoint GB | seconds | full stage here, h (projected) | status |",
             "|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---|"]
    for r in data["stages"]:
        at = (f"{r['projected_step_s']:.2f} ({r['batch']} = {r['configured_micro_batch']} x {r['accumulation']})"
              if r.get("projected_step_s") is not None else "-")
        step = cell(r, "step_s", ".2f") + (f" ({r['fastest_step_s']:.2f})" if r.get("fastest_step_s") else "")
        peak = cell(r, "peak_gib", ".2f") + (f" ({r['start_gib']:.2f})" if r.get("start_gib") is not None else "")
        lines.append(f"| {r['stage']} | {cell(r, 'parameters', ',')} | {r.get('precision') or '-'} | "
                     f"{cell(r, 'micro_batch', 'd')} | {step} | {at} | {peak} | {cell(r, 'checkpoint_gb', '.2f')} | "
                     f"{cell(r, 'seconds', '.1f')} | {cell(r, 'projected_stage_h', '.3g')} | {r.get('status', '-')} |")
    if data.get("projected_total_h") is not None:
        lines.append(f"| **total** | | | | | | | | {data['seconds']:.0f} | **{data['projected_total_h']:.2f}** | |")
    return "\n".join(lines)
