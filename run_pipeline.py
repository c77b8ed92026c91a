"""The whole paper in one command: clean -> tokenizer -> two teachers -> plain student -> distilled student -> BLiMP.

    python run_pipeline.py                                   # embedded synthetic corpus, tiny models, ~10 min on 2 cores
    python run_pipeline.py --config config/paper.yaml pipeline.raw_data=path/to/babylm pipeline.blimp_dir=path/to/blimp
    python run_pipeline.py --from distilled                  # redo the distilled student and what follows
    python run_pipeline.py --only eval

Each stage calls a stage script's ``main`` with that stage's YAML (named in the ``pipeline`` section) plus overrides
that point its inputs and outputs under ``pipeline.work_dir``. A stage that finished writes a marker holding its
arguments; run again, it is skipped while its arguments are unchanged, so a killed run resumes where it stopped
(a training stage killed midway continues from its last checkpoint).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import sys
import time
from pathlib import Path

from config import PipelineConfig, UserError, add_config_args, describe, load_config, run_cli

ROOT = Path(__file__).resolve().parent
STAGES = ["data", "clean", "tokenizer", "teacher1", "teacher2", "student", "distilled", "eval", "report"]
MODEL_STAGES = {"teacher1": "teacher-1", "teacher2": "teacher-2", "student": "student", "distilled": "distilled"}
ENSEMBLE = "teachers-ensemble"


class Plan:
    """Paths and stage arguments derived from the pipeline section."""

    def __init__(self, p):
        self.p = p
        self.work = Path(p.work_dir)
        self.raw = Path(p.raw_data) if p.raw_data else self.work / "synthetic"
        self.clean = self.work / "clean"
        self.tokenizer = self.work / "tokenizer"
        self.models = {stage: self.work / "models" / name for stage, name in MODEL_STAGES.items()}
        self.results = self.work / "results"
        self.blimp = Path(p.blimp_dir) if p.blimp_dir else self.raw / "blimp"

    @staticmethod
    def yaml(path: str) -> str:
        """A stage YAML path as given, or under the repo when the current folder does not have it."""
        if Path(path).is_absolute() or Path(path).is_file() or not (ROOT / path).is_file():
            return path
        return str(ROOT / path)

    def data_overrides(self) -> list[str]:
        return [f"data.train_dir={self.clean / self.p.train_split}", f"data.dev_dir={self.clean / self.p.dev_split}",
                f"data.tokenizer_dir={self.tokenizer}", f"data.cache_dir={self.work / 'cache'}"]

    def argv(self, stage: str) -> list[str]:
        p, extra = self.p, self.p.stage_overrides.get(stage, [])
        if stage == "clean":
            dirs = f"[{self.raw / p.train_split},{self.raw / p.dev_split}]"
            return ["--config", self.yaml(p.clean), f"clean.input_dirs={dirs}", f"clean.output_dir={self.clean}", *extra]
        if stage == "tokenizer":
            return ["--config", self.yaml(p.tokenizer), f"tokenizer.train_dir={self.clean / p.train_split}",
                    f"tokenizer.output_dir={self.tokenizer}", *extra]
        if stage in ("teacher1", "teacher2", "student"):
            return ["--config", self.yaml(getattr(p, stage)), *self.data_overrides(),
                    f"training.output_dir={self.models[stage]}", *extra, "--resume"]
        if stage == "distilled":
            teachers = f"[{self.models['teacher1']},{self.models['teacher2']}]"
            return ["--config", self.yaml(p.distilled), *self.data_overrides(), f"training.output_dir={self.models[stage]}",
                    f"distillation.teachers={teachers}", *extra, "--resume"]
        if stage == "eval":
            models = "{" + ", ".join(f"{MODEL_STAGES[s]}: {self.models[s]}" for s in MODEL_STAGES) + "}"
            ensemble = "{" + f"{ENSEMBLE}: [{self.models['teacher1']}, {self.models['teacher2']}]" + "}"
            return ["--config", self.yaml(p.eval), f"eval.blimp_dir={self.blimp}", f"eval.models={models}",
                    f"eval.ensembles={ensemble}", f"eval.output_dir={self.results}", *extra]
        return []

    def marker(self, stage: str) -> Path:
        return self.work / ".done" / stage

    def fingerprint(self, stage: str) -> str:
        """What decides a stage's output: its arguments, the text of its YAML and the previous stage's fingerprint
        (so redoing a stage invalidates every later one)."""
        args = self.argv(stage)
        h = hashlib.sha256(json.dumps(args).encode())
        i = STAGES.index(stage)
        if i > 0:
            h.update(self.fingerprint(STAGES[i - 1]).encode())
        if "--config" in args:
            cfg = Path(args[args.index("--config") + 1])
            h.update(cfg.read_bytes() if cfg.is_file() else b"")
        if stage == "data":
            p = self.p
            h.update(repr((p.raw_data, p.synthetic_seed, p.synthetic_train_words, p.synthetic_dev_words,
                           p.synthetic_pairs)).encode())
        return h.hexdigest()

    def is_done(self, stage: str) -> bool:
        m = self.marker(stage)
        return m.is_file() and m.read_text().strip() == self.fingerprint(stage)

    def mark(self, stage: str, suffix: str = ""):
        m = self.marker(stage).with_name(stage + suffix)
        m.parent.mkdir(parents=True, exist_ok=True)
        m.write_text(self.fingerprint(stage) + "\n")

    def resumable(self, stage: str) -> bool:
        """A model stage killed midway with the same arguments (and inputs) it has now."""
        started = self.marker(stage).with_name(stage + ".started")
        return (not self.marker(stage).is_file() and started.is_file()
                and started.read_text().strip() == self.fingerprint(stage))


def run_stage(plan: Plan, stage: str):
    argv = plan.argv(stage)
    if stage == "data":
        if plan.p.raw_data:
            for split in (plan.p.train_split, plan.p.dev_split):
                if not (plan.raw / split).is_dir():
                    raise UserError(f"{plan.raw / split}: pipeline.raw_data must hold the {split}/ split folder "
                                    "(BabyLM layout: one <source>.train/.dev file per source)")
            print(f"using the BabyLM files in {plan.raw}")
            return
        from synthetic import write_corpus

        p = plan.p
        out = write_corpus(plan.raw, seed=p.synthetic_seed, train_words=p.synthetic_train_words,
                           dev_words=p.synthetic_dev_words, pairs_per_paradigm=p.synthetic_pairs)
        print(f"wrote the synthetic corpus to {out['root']}")
        return
    if stage == "clean":
        import clean_data as module
    elif stage == "tokenizer":
        import tokenizer as module
    elif stage in ("teacher1", "teacher2", "student"):
        import train as module
    elif stage == "distilled":
        import distill_train as module
    elif stage == "eval":
        import eval_blimp as module
    else:
        return report(plan)
    print("$ python " + {"clean": "clean_data.py", "tokenizer": "tokenizer.py", "distilled": "distill_train.py",
                          "eval": "eval_blimp.py"}.get(stage, "train.py") + " " + " ".join(argv))
    rc = module.main(argv)
    if rc:
        raise UserError(f"stage {stage} failed with exit status {rc}")


def report(plan: Plan):
    from eval_blimp import load_results, markdown_table, plot_results

    names = list(MODEL_STAGES.values())[:2] + [ENSEMBLE] + list(MODEL_STAGES.values())[2:]
    paths = [plan.results / f"{n}.json" for n in names]
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        raise UserError(f"{missing[0]}: results missing; run the eval stage first (--from eval)")
    results = load_results(paths)
    table = markdown_table(results)
    (plan.results / "table.md").write_text(table + "\n")
    png = plot_results(results, plan.results / "blimp.png")
    print(table)
    avg = {n: results[n]["averages"] for n in names}
    key = "phenomena" if avg["student"].get("phenomena") is not None else "files"
    s, d = avg["student"][key], avg["distilled"][key]
    verdict = "beat" if d > s else ("tied" if d == s else "did not beat")
    print(f"\nAt this scale the distilled student {verdict} the plain student on BLiMP ({key} average): "
          f"{100 * d:.1f} vs {100 * s:.1f}")
    print(f"table: {plan.results / 'table.md'}\nplot:  {png}")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_config_args(parser, Plan.yaml("config/pipeline.yaml"))
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--from", dest="start", choices=STAGES, help="redo this stage and every later one")
    group.add_argument("--only", choices=STAGES, help="run (redo) this stage alone")
    args = parser.parse_args(argv)
    if args.help_config:
        print(describe(PipelineConfig))
        return 0
    cfg = load_config(PipelineConfig, args.config, args.overrides)
    plan = Plan(cfg.pipeline)
    for stage in STAGES:  # every stage's YAML must exist before anything runs
        a = plan.argv(stage)
        if "--config" in a and not Path(a[a.index("--config") + 1]).is_file():
            raise UserError(f"{args.config}: pipeline.{stage}: {a[a.index('--config') + 1]} not found")
    stages = [args.only] if args.only else STAGES[STAGES.index(args.start):] if args.start else STAGES
    forced = set(stages) if (args.only or args.start) else set()
    total = time.time()
    for i, stage in enumerate(stages, 1):
        if stage not in forced and plan.is_done(stage):
            print(f"== [{i}/{len(stages)}] {stage}: done already, skipped")
            continue
        print(f"\n== [{i}/{len(stages)}] {stage} " + "=" * 60, flush=True)
        start = time.time()
        # a model stage resumes its checkpoints only when it was killed midway with the same arguments and inputs;
        # forced, finished before, or started with other arguments, it trains from scratch
        if stage in MODEL_STAGES and plan.models[stage].exists() and (stage in forced or not plan.resumable(stage)):
            shutil.rmtree(plan.models[stage])
        plan.marker(stage).unlink(missing_ok=True)
        plan.mark(stage, ".started")
        run_stage(plan, stage)
        plan.mark(stage)
        print(f"== {stage} finished in {time.time() - start:.0f} s (total {time.time() - total:.0f} s)", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
