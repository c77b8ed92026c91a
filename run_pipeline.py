"""The whole paper in one command: clean -> tokenizer -> two teachers -> plain student -> distilled student -> BLiMP.

    python run_pipeline.py                                   # embedded synthetic corpus, tiny models, ~8.5 min on 2 cores
    python run_pipeline.py --config config/paper.yaml pipeline.raw_data=path/to/babylm pipeline.blimp_dir=path/to/blimp
    python run_pipeline.py --dry-run                         # what would run, and why, and what it will cost
    python run_pipeline.py --config config/paper.yaml --smoke  # every stage at true size on a slice, in <work_dir>-smoke
    python run_pipeline.py --from distilled                  # redo the distilled student and what follows
    python run_pipeline.py --only eval

Each stage is a function that takes the typed config of its stage YAML (named in the ``pipeline`` section), with the
inputs and outputs pointed under ``pipeline.work_dir``. Every YAML is loaded and checked before the first stage runs.
A finished stage records its fingerprint: its resolved settings (what a YAML means, not its text: comments and key
order do not count, nor logging-only keys) and the contents of its input files (raw text, cleaned text, tokenizer,
teacher weights, BLiMP files, the results a report reads), and the recorded fingerprints of the earlier stages it reads.
Run again, a stage is skipped while its fingerprint is unchanged, so a killed run resumes where it stopped (a training
stage killed midway continues from its last checkpoint), and an edit redoes exactly the stages whose meaning or inputs
changed, and every stage downstream of them: ``--dry-run`` lists each of them. A trained model is never deleted: a
stage that must train again moves the old folder aside to ``<folder>.old-<n>``.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import hashlib
import json
import shlex
import sys
import time
import typing
from dataclasses import dataclass
from pathlib import Path

import clean_data
import distill_train
import eval_aoa
import eval_blimp
import eval_reading
import eval_text
import finetune
import gap
from babyllama import compute_plan, dynamics, pipeline_report, report, smoke, study_reports
import tokenizer as tokenizer_stage
import train
from babyllama.config import (UserError, add_config_args, apply_overrides, build, describe, load_config, read_yaml, run_cli,
                    to_dict)
from babyllama.schema import CleanConfig, DistillConfig, EvalConfig, GapConfig, PipelineConfig, TokenizerConfig, TrainConfig
from babyllama.files import hash_files, model_fingerprint, write_atomic
from babyllama.locks import folder_lock
from babyllama.synthetic import write_corpus
from babyllama.synthetic_tasks import write_tasks
from babyllama.files import move_aside
from babyllama.run_folder import is_finished

ROOT = Path(__file__).resolve().parent
ENSEMBLE = "teachers-ensemble"
HOMOGENEOUS = "students-ensemble"  # the plain students of pipeline.teacher_seeds, logit-averaged
# settings that change how a stage logs or reports, never what it produces: editing them redoes nothing
NOT_MEANING = {"report_to", "logging_steps", "push_to_hub", "hub_model_id", "run_name", "dataloader_num_workers",
               "save_minutes", "save_total_limit", "disable_tqdm", "blimp_dir", "blimp_steps", "blimp_pairs_per_file",
               "output_dir", "input_dirs", "train_dir", "dev_dir", "tokenizer_dir", "cache_dir", "teachers",
               "teacher_cache_dir", "models", "ensembles", "word_budget",
               "long_items"}  # a finished eval had no item too long (error stops it), so truncate would change nothing


@dataclass
class Stage:
    name: str
    kind: str  # data, clean, tokenizer, train, distill, gap, text, aoa, eval, finetune, report
    yaml_key: str | None = None  # the pipeline key naming its YAML (student-s0 uses pipeline.student)
    model: str | None = None  # the model folder name for training stages
    seed: int | None = None
    overrides: tuple = ()  # an ablation's (a zero-shot stage's) overrides, after the stage YAML's stage_overrides
    budget: object = None  # the BudgetSpec of a regime-map stage (pipeline.budgets), else None
    teachers: str = "heterogeneous"  # a distilled stage's teachers: teacher-1 + teacher-2, or plain students
    init_from: str | None = None  # an ablation's starting model: this group's model of the same seed and budget


def yaml_path(path: str) -> str:
    """A stage YAML path as given, or under the repo when the current folder does not have it."""
    if Path(path).is_absolute() or Path(path).is_file() or not (ROOT / path).is_file():
        return path
    return str(ROOT / path)


def _set(raw: dict, dotted: str, value):
    """Set ``section.key`` in a raw config mapping: values go in as data, never through YAML text."""
    section, key = dotted.split(".")
    raw.setdefault(section, {})[key] = value


class Plan:
    """The stages of a pipeline config, the typed config of each, where their files go, and their fingerprints."""

    def __init__(self, p):
        self.p = p
        self.work = Path(p.work_dir)
        if self.work.exists() and not self.work.is_dir():
            raise UserError(f"{self.work}: pipeline.work_dir exists and is not a folder; pick another path")
        self.raw = Path(p.raw_data) if p.raw_data else self.work / "synthetic"
        self.clean = self.work / "clean"
        self.tokenizer = self.work / "tokenizer"
        self.results = self.work / "results"
        self.blimp = Path(p.blimp_dir) if p.blimp_dir else self.raw / "blimp"
        seeds = p.seeds or [None]
        name = lambda base, s: base + ("" if s is None else f"-s{s}")  # noqa: E731
        self.stages = [Stage("data", "data"), Stage("clean", "clean", "clean"),
                       Stage("tokenizer", "tokenizer", "tokenizer")]
        for b in p.budgets or [None]:  # the model stages, once per data budget of a regime map
            pre = self.prefix(b)
            stages = [Stage("teacher1", "train", "teacher1", "teacher-1"), Stage("teacher2", "train", "teacher2",
                                                                                "teacher-2")]
            # every plain student first: homogeneous teachers are plain students of other seeds
            stages += [Stage(name("student", s), "train", "student", name("student", s), s)
                       for s in seeds + [t for t in p.teacher_seeds if t not in seeds]]
            stages += [Stage(name("distilled", s), "distill", "distilled", name("distilled", s), s) for s in seeds]
            for a_name, a in p.ablations.items():
                if b is None or b.ablations is None or a_name in b.ablations:
                    kind = {"student": "train", "distilled": "distill", "gap": "gap"}[a.of]
                    stages += [Stage(name(a_name, s), kind, a.of, name(a_name, s), s, tuple(a.overrides),
                                     teachers=a.teachers, init_from=a.init_from and name(a.init_from, s))
                               for s in seeds]
            stages += [Stage("text", "text")] if p.dev_text else []
            self.stages += [dataclasses.replace(st, name=pre + st.name, model=st.model and pre + st.model, budget=b,
                                                init_from=st.init_from and pre + st.init_from) for st in stages]
        self.stages += [Stage("aoa", "aoa")] if p.aoa else []
        self.stages += [Stage("eval", "eval", "eval")] if p.eval else []
        # more pair folders, one eval stage each, results apart: the supplement, then each of pipeline.zero_shot_dirs
        self.zero_shot = {"supplement": Path(p.supplement_dir)} if p.supplement_dir else {}
        self.zero_shot.update({f"zero-shot-{Path(d).name}": Path(d) for d in p.zero_shot_dirs})
        self.stages += [Stage(n, "eval", "eval", overrides=() if n == "supplement" else
                              tuple(p.stage_overrides.get("zero_shot", []))) for n in self.zero_shot] if p.eval else []
        self.stages += [Stage("dynamics", "dynamics", "eval", overrides=tuple(p.stage_overrides.get("dynamics", [])))] \
            if p.dynamics else []
        self.stages += [Stage("finetune", "finetune", "finetune")] if p.finetune else []
        self.stages += [Stage("report", "report")]
        self.command = "python run_pipeline.py"  # set by main() to the command line as given
        self.finetune_data = Path(p.finetune_data) if p.finetune_data else (
            None if p.raw_data else self.raw / "finetune")
        self.by_name = {s.name: s for s in self.stages}
        self._hashes, self._seeds = {}, {}

    @staticmethod
    def prefix(budget) -> str:
        """Stage and model names of a regime-map budget start with ``b<share>/`` (none without budgets)."""
        return "" if budget is None else f"b{budget.train_share:g}/"

    def model_dir(self, name: str) -> Path:
        return self.work / "models" / name

    def models(self, budget="all") -> dict[str, Path]:
        """Model folders by name: of every stage, or of one budget's stages (None: the run without budgets)."""
        return {s.model: self.model_dir(s.model) for s in self.stages
                if s.model and (budget == "all" or s.budget is budget)}

    def students(self) -> dict[str, Path]:
        return {n: f for n, f in self.models().items() if not n.split("/")[-1].startswith("teacher")}

    def teachers_of(self, stage: Stage) -> list[Path]:
        """A distilled stage's teachers: teacher-1 and teacher-2 of its budget, or (homogeneous) the plain students of
        the first pipeline.homogeneous_size teacher seeds that are not its own seed."""
        pre = self.prefix(stage.budget)
        if stage.teachers == "homogeneous":
            own, size = self.trained_seed(stage), self.p.homogeneous_size
            seeds = [t for t in self.p.teacher_seeds if t != own][:size]
            if len(seeds) < size:
                raise UserError(f"pipeline.teacher_seeds: {self.p.teacher_seeds}: {stage.name} needs {size} plain "
                                f"students (homogeneous_size) besides its own seed {own}; list more seeds")
            return [self.model_dir(f"{pre}student-s{t}") for t in seeds]
        return [self.model_dir(pre + "teacher-1"), self.model_dir(pre + "teacher-2")]

    def trained_seed(self, stage: Stage) -> int:
        """The seed a training stage trains with: its pipeline seed, or (pipeline.seeds null) its YAML's
        training.seed, never None."""
        if stage.seed is not None:
            return stage.seed
        if stage.name not in self._seeds:  # its teachers do not change its seed: no need to know them here
            self._seeds[stage.name] = self.config(dataclasses.replace(stage, teachers="heterogeneous")).training.seed
        return self._seeds[stage.name]

    def ensembles(self, budget) -> dict[str, list[Path]]:
        """The teachers' ensemble of a budget, and the plain students of pipeline.teacher_seeds as one (appendix B)."""
        pre = self.prefix(budget)
        out = {pre + ENSEMBLE: [self.model_dir(pre + "teacher-1"), self.model_dir(pre + "teacher-2")]}
        if self.p.teacher_seeds:
            out[pre + HOMOGENEOUS] = [self.model_dir(f"{pre}student-s{t}") for t in self.p.teacher_seeds]
        return out

    def scorers(self, stage: Stage | None = None) -> dict[str, list[Path]]:
        """What a text stage (its budget's models) or the eval stage (every model) scores, ensembles included."""
        budgets = [stage.budget] if stage is not None and stage.kind == "text" else self.p.budgets or [None]
        out = {}
        for b in budgets:
            out.update({n: [f] for n, f in self.models(b).items()})
            out.update(self.ensembles(b))
        return out

    def eval_output(self, stage_name: str) -> Path:
        """Where an eval stage writes: results/, results/supplement/, results/zero_shot/<folder name>/."""
        if stage_name not in self.zero_shot:
            return self.results
        return self.results / "supplement" if stage_name == "supplement" else \
            self.results / "zero_shot" / self.zero_shot[stage_name].name

    def rel(self, path: Path) -> str:
        return str(path.relative_to(self.work) if path.is_relative_to(self.work) else path)

    def stale(self, stage: Stage, fp: dict) -> list[str]:
        """The scorers a text or eval stage must (re)score: all when its settings or shared inputs (dev text, pair
        files) changed, else those whose model folders changed or are new since the stage last finished. Adding a
        seed or an ablation scores only the new students."""
        old, scorers = self.recorded(stage), self.scorers(stage)
        folders = {self.rel(f) for f in self.models().values()}
        shared = lambda inputs: {k: v for k, v in inputs.items() if k not in folders and not k.startswith("models/")}
        if old is None or old["settings"] != fp["settings"] or shared(old["inputs"]) != shared(fp["inputs"]):
            return list(scorers)
        return [n for n, paths in scorers.items()
                if any(old["inputs"].get(self.rel(p)) != fp["inputs"].get(self.rel(p)) for p in paths)]

    def pair_dirs(self) -> list[Path]:
        """Every pair folder the eval stages score: BLiMP, the supplement, pipeline.zero_shot_dirs."""
        return [self.blimp] + list(self.zero_shot.values())

    def curve_models(self) -> list[str]:
        """The models whose checkpoints the dynamics stage scores: the plain and the distilled students, every seed."""
        n = len(self.p.seeds or [None])
        return self.groups()["student"][:n] + self.groups()["distilled"][:n]

    def text_results(self, budget) -> Path:
        """The text stage's scores: results/[b<share>/]dev_text.json."""
        return self.results / self.prefix(budget) / "dev_text.json"

    def aoa_text(self) -> Path:
        """The AoA stage's context text: the cleaned CHILDES dev file (eval_aoa.py's default)."""
        return self.clean / self.p.dev_split / "aochildes.dev"

    def text_seq_length(self) -> int:
        """Window length of the dev-text stage: pipeline.dev_text_seq_length, else the plain student's chunk length."""
        student = next(s for s in self.stages if s.yaml_key == "student")
        return self.p.dev_text_seq_length or self.config(student).data.seq_length

    def groups(self) -> dict[str, list[str]]:
        """Model names by role: student, distilled and each ablation, one name per seed."""
        out = {}
        for s in self.stages:
            if s.model and not s.model.split("/")[-1].startswith("teacher"):
                base = s.model if s.seed is None else s.model[:-len(f"-s{s.seed}")]
                out.setdefault(base, []).append(s.model)
        return out
    # --- the typed config of each stage ----------------------------------------------------------------------------
    def config(self, stage: Stage):
        """The stage's YAML with ``pipeline.stage_overrides`` and the paths under work_dir, as a typed config."""
        p, key = self.p, stage.yaml_key
        if key is None:
            return None
        path = yaml_path(getattr(p, key))
        budget = list(stage.budget.stage_overrides.get(key, [])) if stage.budget else []
        raw = apply_overrides(read_yaml(path), list(p.stage_overrides.get(key, [])) + budget + list(stage.overrides))
        schema = {"clean": CleanConfig, "tokenizer": TokenizerConfig, "train": TrainConfig, "distill": DistillConfig,
                  "eval": EvalConfig, "dynamics": EvalConfig, "finetune": finetune.FinetuneConfig,
                  "gap": GapConfig}[stage.kind]
        if stage.kind == "clean":
            _set(raw, "clean.input_dirs", [str(self.raw / p.train_split), str(self.raw / p.dev_split)])
            _set(raw, "clean.output_dir", str(self.clean))
        elif stage.kind == "tokenizer":
            _set(raw, "tokenizer.train_dir", str(self.clean / p.train_split))
            _set(raw, "tokenizer.output_dir", str(self.tokenizer))
        elif stage.kind in ("train", "distill"):
            _set(raw, "data.train_dir", str(self.clean / p.train_split))
            _set(raw, "data.dev_dir", str(self.clean / p.dev_split))
            _set(raw, "data.tokenizer_dir", str(self.tokenizer))
            _set(raw, "data.cache_dir", str(self.work / "cache"))
            _set(raw, "training.output_dir", str(self.model_dir(stage.model)))
            share = stage.budget.train_share if stage.budget else p.train_share
            if share is not None:
                _set(raw, "data.train_share", share)
            if stage.seed is not None:
                _set(raw, "training.seed", stage.seed)
            if p.save_words is not None and key in ("student", "distilled"):  # every student, ablations too
                _set(raw, "training.save_words", p.save_words)
            if stage.kind == "distill":
                _set(raw, "distillation.teachers", [str(f) for f in self.teachers_of(stage)])
            if stage.init_from:
                _set(raw, "training.init_from", str(self.model_dir(stage.init_from)))
        elif stage.kind == "gap":  # the same seed's model post-trained on the cleaned train split
            _set(raw, "gap.model_dir", str(self.model_dir(stage.init_from)))
            _set(raw, "gap.output_dir", str(self.model_dir(stage.model)))
            _set(raw, "gap.text_dir", str(self.clean / p.train_split))
            _set(raw, "gap.cache_dir", str(self.work / "cache"))
            if stage.seed is not None:
                _set(raw, "gap.seed", stage.seed)
        elif stage.kind == "eval":
            _set(raw, "eval.blimp_dir", str(self.zero_shot.get(stage.name, self.blimp)))
            _set(raw, "eval.models", {name: str(folder) for name, folder in self.models().items()})
            _set(raw, "eval.ensembles", {n: [str(f) for f in paths] for n, paths in self.scorers().items()
                                         if n.split("/")[-1] in (ENSEMBLE, HOMOGENEOUS)})
            _set(raw, "eval.output_dir", str(self.eval_output(stage.name)))
        elif stage.kind == "dynamics":  # the students' checkpoints, the teachers' final models as reference lines
            raw = apply_overrides(raw, ["eval.max_pairs_per_file=null", "eval.long_items=truncate"] + list(stage.overrides))
            _set(raw, "eval.blimp_dir", [str(d) for d in self.pair_dirs()])
            _set(raw, "eval.models", {n: str(self.model_dir(n)) for n in ("teacher-1", "teacher-2")})
            _set(raw, "eval.ensembles", {ENSEMBLE: [str(f) for f in self.ensembles(None)[ENSEMBLE]]})
            _set(raw, "eval.checkpoints", {n: str(self.model_dir(n)) for n in self.curve_models()})
            _set(raw, "eval.output_dir", str(self.results / "dynamics"))
        elif stage.kind == "finetune":
            _set(raw, "finetune.data_dir", str(self.finetune_data or "(none)"))
            _set(raw, "finetune.output_dir", str(self.results / "finetune"))
            _set(raw, "finetune.tasks", list(p.finetune_tasks))
            _set(raw, "finetune.models", {name: str(folder) for name, folder in self.students().items()})
        try:
            return build(schema, raw)
        except UserError as e:
            raise UserError(f"{path} (pipeline.{key}): {e}") from None

    # --- fingerprints ------------------------------------------------------------------------------------------------
    def inputs(self, stage: Stage) -> list[Path]:
        """The files whose contents decide the stage's output (those that exist now)."""
        p = self.p

        def files(folder):
            folder = Path(folder)
            return sorted(f for f in folder.rglob("*") if f.is_file() and not f.name.startswith(".")) \
                if folder.is_dir() else []

        data = files(self.clean / p.train_split) + files(self.clean / p.dev_split)
        tok = [f for f in files(self.tokenizer) if f.suffix == ".json"]
        if stage.kind == "clean":
            return files(self.raw / p.train_split) + files(self.raw / p.dev_split)
        if stage.kind == "tokenizer":
            return files(self.clean / p.train_split)
        start = [self.model_dir(stage.init_from)] if stage.init_from else []
        if stage.kind == "train":
            return data + tok + start
        if stage.kind == "distill":
            return data + tok + self.teachers_of(stage) + start
        if stage.kind == "gap":
            return files(self.clean / p.train_split) + start
        if stage.kind == "eval":
            pairs = self.zero_shot.get(stage.name, self.blimp)
            return [f for f in files(pairs) if f.suffix in (".jsonl", ".json")] + list(self.models().values())
        if stage.kind == "text":
            return files(self.clean / p.dev_split) + list(self.models(stage.budget).values())
        if stage.kind == "dynamics":  # the final models' hashes change whenever a run (and its checkpoints) does
            pairs = [f for d in self.pair_dirs() for f in files(d) if f.suffix in (".jsonl", ".json")]
            reading = [Path(p.reading_data)] if p.reading_data else []
            return pairs + reading + files(self.clean / p.dev_split) + list(self.models().values())
        if stage.kind == "aoa":
            return [self.aoa_text(), ROOT / eval_aoa.WORD_LIST] + list(self.models().values())
        if stage.kind == "finetune":
            return (files(self.finetune_data) if self.finetune_data else []) + list(self.students().values())
        if stage.kind == "report":  # every file it reads a figure or a setting from (models: weights and run files)
            models = list(self.models().values())
            scored = [self.results / f"{n}.json" for n in self.scorers()]
            scored += [self.eval_output(z) / f"{n}.json" for z in self.zero_shot for n in self.scorers()]
            return (models + [f / n for f in models for n in ("metrics.json", "config.yaml")] + scored
                    + [self.text_results(b) for b in p.budgets or [None]] + [self.results / "finetune" / "table.md"]
                    + ([self.results / "aoa.json"] if p.aoa else [])
                    + ([self.results / "dynamics" / "curves.json"] if p.dynamics else []))
        return []

    def reads(self, stage: Stage) -> list[str]:
        """The earlier stages whose outputs the stage reads: their recorded fingerprints are part of its own, so a
        rerun upstream reruns it too."""
        models = [s.name for s in self.stages if s.model]
        earlier = [s.name for s in self.stages[:self.stages.index(stage)]]  # a kind not listed: every earlier stage
        teachers = {self.model_dir(s.model): s.name for s in self.stages if s.model}
        start = [stage.init_from] if stage.init_from else []  # model stages are named as their models
        return {"data": [], "clean": ["data"], "tokenizer": ["clean"], "train": ["clean", "tokenizer"] + start,
                "distill": ["clean", "tokenizer"] + [teachers[f] for f in self.teachers_of(stage)] + start if
                stage.kind == "distill" else [], "gap": ["clean"] + start,
                "text": ["clean"] + [s.name for s in self.stages if s.model and s.budget is stage.budget],
                "eval": ["data"] + models, "aoa": ["clean"] + models, "dynamics": ["data", "clean"] + models,
                "finetune": ["data"] + [s.name for s in self.stages if s.model and s.model in self.students()],
                "report": earlier}.get(stage.kind, earlier)  # the report: every figure and run time

    def digest(self, name: str) -> str:
        """A short hash of the stage's recorded fingerprint (chained: it holds its own upstream digests)."""
        rec = self.recorded(self.by_name[name])
        if rec is None:
            return "never finished"
        rec.pop("seconds", None)
        return hashlib.sha256(json.dumps(rec, sort_keys=True).encode()).hexdigest()[:16]

    def _hash(self, path: Path) -> str:
        """Content hash of a file, or of a model folder's weights; cached by (size, mtime) within the run."""
        if not path.exists() or (path.is_dir() and not (path / "config.json").is_file()):
            return "missing"
        if path.is_dir():
            return model_fingerprint(path)
        st = path.stat()
        key = (str(path), st.st_size, st.st_mtime_ns)
        if key not in self._hashes:
            self._hashes[key] = hash_files([path])
        return self._hashes[key]

    def fingerprint(self, stage: Stage, cfg) -> dict:
        """What decides the stage's output: its settings (less the logging-only and path keys, whose files are hashed
        instead) and the contents of its inputs."""
        settings = {}
        if cfg is not None:
            for section, values in to_dict(cfg).items():
                for k, v in values.items():
                    if k == "hf_args":
                        settings.update({f"{section}.{a}": b for a, b in v.items() if a not in NOT_MEANING})
                    elif k not in NOT_MEANING:
                        settings[f"{section}.{k}"] = v
        if stage.kind == "data":
            p = self.p
            settings = {"raw_data": bool(p.raw_data)} if p.raw_data else {
                "synthetic": [p.synthetic_seed, p.synthetic_train_words, p.synthetic_dev_words, p.synthetic_pairs]}
        if stage.kind == "text":
            settings = {"seq_length": self.text_seq_length(), "share": self.p.dev_text_share}
        if stage.kind == "aoa":
            settings = {"seq_length": self.text_seq_length()}
        if stage.kind == "dynamics":
            settings.update({"dev_seq_length": self.text_seq_length(), "dev_share": self.p.dev_text_share,
                             "reading": bool(self.p.reading_data)})
        if stage.kind == "report":
            settings = {"seeds": self.p.seeds, "ablations": sorted(self.p.ablations), "appendix": self.p.appendix,
                        **({"h1": True} if self.p.h1 else {}),
                        "results_file": self.p.results_file, "results_section": self.p.results_section,
                        "budgets": [to_dict(b) for b in self.p.budgets or []], "teacher_seeds": self.p.teacher_seeds,
                        "command": self.command, **({"zero_shot": list(self.zero_shot)} if self.p.zero_shot_dirs else {})}
        inputs = {self.rel(f): self._hash(f) for f in self.inputs(stage)}
        return {"settings": json.loads(json.dumps(settings, default=str)), "inputs": inputs,
                "upstream": {n: self.digest(n) for n in self.reads(stage)}}

    def marker(self, stage: Stage, suffix: str = "") -> Path:
        return self.work / ".done" / (stage.name + suffix)

    def recorded(self, stage: Stage, suffix: str = "") -> dict | None:
        try:
            return json.loads(self.marker(stage, suffix).read_text())
        except (OSError, ValueError):
            return None

    def mark(self, stage: Stage, fp: dict, suffix: str = ""):
        write_atomic(self.marker(stage, suffix), json.dumps(fp, indent=1))

    @staticmethod
    def changes(old: dict | None, new: dict) -> list[str]:
        """Why ``new`` differs from ``old``, in words (empty: the same)."""
        if old is None:
            return ["never finished"]
        out = []
        defaults = setting_defaults()
        for k in sorted(set(old["settings"]) | set(new["settings"])):
            a, b = old["settings"].get(k, "(unset)"), new["settings"].get(k, "(unset)")
            # a key added to the schema since the stage ran, at its default, means what the old run did
            if "(unset)" in (a, b) and k in defaults and (b if a == "(unset)" else a) == defaults[k]:
                continue
            if a != b:
                out.append(f"{k}: {a!r} -> {b!r}")
        for k in sorted(set(old["inputs"]) | set(new["inputs"])):
            if old["inputs"].get(k) != new["inputs"].get(k):
                out.append(f"input {k} " + ("is new" if k not in old["inputs"] else "is gone" if k not in new["inputs"]
                                             else "changed"))
        if "upstream" in old:  # absent: recorded before stages were chained (main() upgrades such a record)
            out += [f"{k} " + ("is new" if k not in old["upstream"] else "reran") for k in sorted(new["upstream"])
                    if old["upstream"].get(k) != new["upstream"][k]]
        return out


@functools.cache
def setting_defaults() -> dict:
    """``section.key`` -> the schema's default (as a fingerprint holds it), for every stage config's sections."""
    out = {}
    for root in (CleanConfig, TokenizerConfig, TrainConfig, DistillConfig, EvalConfig, finetune.FinetuneConfig):
        for section, cls in typing.get_type_hints(root).items():
            for f in dataclasses.fields(cls):
                if f.default is not dataclasses.MISSING:
                    out[f"{section}.{f.name}"] = json.loads(json.dumps(f.default, default=str))
                elif f.default_factory is not dataclasses.MISSING:
                    out[f"{section}.{f.name}"] = json.loads(json.dumps(f.default_factory(), default=str))
    return out


# ----------------------------------------------------------------------------------------------------------------------
# the stages


def run_stage(plan: Plan, stage: Stage, cfg, resume: bool, todo: list[str] | None = None, callbacks=()):
    """Run one stage; ``todo``: the scorers a text or eval stage scores (the others' results are up to date);
    ``callbacks``: Trainer callbacks of a training or fine-tuning stage (the smoke's timers)."""
    p = plan.p
    if todo == []:
        print("every model is scored already")
        return
    if stage.kind == "data":
        if p.raw_data:
            for split in (p.train_split, p.dev_split):
                if not (plan.raw / split).is_dir():
                    raise UserError(f"{plan.raw / split}: pipeline.raw_data must hold the {split}/ split folder "
                                    "(BabyLM layout: one <source>.train/.dev file per source)")
            print(f"using the BabyLM files in {plan.raw}")
            return
        out = write_corpus(plan.raw, seed=p.synthetic_seed, train_words=p.synthetic_train_words,
                           dev_words=p.synthetic_dev_words, pairs_per_paradigm=p.synthetic_pairs)
        write_tasks(plan.raw / "finetune", seed=p.synthetic_seed)
        print(f"wrote the synthetic corpus and fine-tuning tasks to {out['root']}")
    elif stage.kind == "clean":
        clean_data.run(cfg)
    elif stage.kind == "tokenizer":
        tokenizer_stage.run(cfg, overwrite=True)  # the models of the earlier tokenizer are moved aside too
    elif stage.kind == "train":
        train.run(cfg, resume=resume, callbacks=callbacks)
    elif stage.kind == "distill":
        distill_train.run(cfg, resume=resume, callbacks=callbacks)
    elif stage.kind == "gap":
        gap.run(cfg)
    elif stage.kind == "text":
        scorers = {n: [str(f) for f in paths] for n, paths in plan.scorers(stage).items()}
        path, seq = plan.text_results(stage.budget), plan.text_seq_length()
        res = json.loads(path.read_text())["results"] if path.is_file() and todo != list(scorers) else {}
        res.update(eval_text.evaluate(plan.clean / p.dev_split, {n: scorers[n] for n in todo}, seq_length=seq,
                                      batch_size=32, share=p.dev_text_share))
        res = {n: res[n] for n in scorers}
        write_atomic(path, json.dumps({"data": str(plan.clean / p.dev_split), "seq_length": seq,
                                       "share": p.dev_text_share, "results": res}, indent=1))
        print(eval_text.markdown(res))
    elif stage.kind == "aoa":  # every model and ensemble, windows of the text stage
        scorers = {n: [str(f) for f in paths] for n, paths in plan.scorers(stage).items()}
        res = eval_aoa.evaluate(ROOT / eval_aoa.WORD_LIST, [plan.aoa_text()], scorers, plan.text_seq_length(), 32)
        write_atomic(plan.results / "aoa.json", json.dumps(res, indent=1))
        print(eval_aoa.table(res["mad"]))
    elif stage.kind == "eval":
        cfg.eval.models = {n: f for n, f in cfg.eval.models.items() if n in todo}
        cfg.eval.ensembles = {n: e for n, e in cfg.eval.ensembles.items() if n in todo}
        eval_blimp.run(cfg, progress=sys.stderr.isatty())
    elif stage.kind == "dynamics":
        score_dynamics(plan, cfg)
    elif stage.kind == "finetune":
        if plan.finetune_data is None:
            print("no fine-tuning data (pipeline.finetune_data): skipped")
            return
        finetune.run(cfg, callbacks=callbacks)
    elif p.budgets:
        print(study_reports.write_map(plan))
    elif p.appendix:
        print(study_reports.write_appendix(plan))
    elif p.h1:
        print(study_reports.write_h1(plan))
    else:
        summarize(plan)


def score_dynamics(plan: Plan, cfg):
    """The dynamics stage: every checkpoint of the curve models on the fast suites (eval_blimp.py --checkpoints), then
    its dev CE on the first pipeline.dev_text_share of the dev split and its reading scores (pipeline.reading_data)
    beside them, in results/dynamics/curves.json."""
    eval_blimp.run(cfg, progress=sys.stderr.isatty())
    out = Path(cfg.eval.output_dir)
    curves = json.loads((out / "curves.json").read_text())
    runs = {n: dynamics.find_checkpoints(d) for n, d in cfg.eval.checkpoints.items()}
    scorers = {f"{n}/{c.label}": [str(c.folder)] for n, cks in runs.items() for c in cks}
    scorers.update({n: [str(f) for f in paths] for n, paths in plan.scorers().items() if n in curves["reference"]})
    ce = eval_text.evaluate(plan.clean / plan.p.dev_split, scorers, seq_length=plan.text_seq_length(), batch_size=32,
                            share=plan.p.dev_text_share)
    reading = eval_reading.evaluate(plan.p.reading_data, scorers, cfg.eval.convention) \
        if plan.p.reading_data else {}
    rows = {f"{n}/{r['checkpoint']}": r["scores"] for n, rs in curves["curves"].items() for r in rs}
    for n, s in {**rows, **curves["reference"]}.items():
        s["dev_ce"] = ce[n]["all"]["ce"]
        s.update(dynamics.reading_scores(reading[n]) if n in reading else {})
    curves["settings"].update(dev_share=plan.p.dev_text_share, dev_seq_length=plan.text_seq_length())
    print(eval_blimp.write_curves(out, curves["curves"], curves["reference"], curves["settings"]))


def summarize(plan: Plan):
    """The report stage: BLiMP table and plot of every model, then the RESULTS-style report (babyllama/pipeline_report.py)."""
    names = ["teacher-1", "teacher-2"] + list(plan.ensembles(None)) + [n for ms in plan.groups().values() for n in ms]
    paths = [plan.results / f"{n}.json" for n in names]
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        raise UserError(f"{missing[0]}: results missing; run the eval stage first (--from eval)")
    results = report.load_results(paths)
    write_atomic(plan.results / "table.md", report.markdown_table(results) + "\n")
    png = report.plot_results(results, plan.results / "blimp.png")
    print(pipeline_report.write(plan))
    print(f"report: {plan.results / 'RESULTS.md'}" + (f" and {plan.p.results_file}" if plan.p.results_file else "")
          + f"\nplot:   {png}")
    ft = plan.results / "finetune" / "table.md"
    if plan.finetune_data is not None and ft.is_file():  # not an earlier run's table when this one has no tasks
        print(f"\nfine-tuning ({ft}):\n{ft.read_text()}")


# ----------------------------------------------------------------------------------------------------------------------
# the command line


def reasons(why: list[str], most: int = 8) -> str:
    """Why a stage runs, in one line: the first ``most`` reasons and how many more (a report reads hundreds of files)."""
    return "; ".join(why[:most]) + (f"; and {len(why) - most} more" if len(why) > most else "")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_config_args(parser, yaml_path("config/pipeline.yaml"))
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--from", dest="start", metavar="STAGE", help="redo this stage and every later one")
    group.add_argument("--only", metavar="STAGE", help="run (redo) this stage alone (student / distilled: every seed)")
    parser.add_argument("--dry-run", action="store_true", help="say which stages would run and why, and print their "
                        "compute plan (FLOPs, memory, hours per card); run nothing")
    parser.add_argument("--plan-words", type=int, metavar="N", help="--dry-run: plan for a train split of N words "
                        "(e.g. 10000000, BabyLM strict-small) at the tokens per word of the data at hand")
    parser.add_argument("--plan-utilisation", type=float, default=compute_plan.UTILISATION, metavar="U",
                        help="--dry-run: share of each card's peak a step reaches (default %(default)s)")
    group.add_argument("--smoke", action="store_true", help="run every stage at true size on a slice, in "
                       "<work_dir>-smoke: measured and projected costs in smoke.json (babyllama/smoke.py)")
    parser.add_argument("--smoke-keep", action="store_true", help="--smoke: keep its checkpoints")
    args = parser.parse_intermixed_args(argv)  # overrides before or after the flags
    if args.help_config:
        print(describe(PipelineConfig))
        return 0
    plan = Plan(load_config(PipelineConfig, args.config, args.overrides).pipeline)
    # the command that makes this run, for the report: without --only / --from / --dry-run, which only select stages
    given = list(sys.argv[1:] if argv is None else argv)
    drop = {i for i, a in enumerate(given) if a in ("--only", "--from")}
    given = [a for i, a in enumerate(given) if i not in drop and i - 1 not in drop and a != "--dry-run"
             and not a.startswith(("--only=", "--from="))]
    plan.command = shlex.join(["python", "run_pipeline.py"] + given)
    names = [s.name for s in plan.stages]
    for flag in (args.start, args.only):
        if flag and not any(n == flag or n.startswith(flag + "-s") for n in names):
            raise UserError(f"no stage {flag!r}; stages: {' '.join(names)}")
    configs = {s.name: plan.config(s) for s in plan.stages}  # every YAML is checked before anything runs
    bare = [n for n in plan.curve_models() if not configs[n].training.save_words] if plan.p.dynamics else []
    if bare:
        raise UserError(f"pipeline.dynamics: {bare[0]} saves no milestone checkpoints for the dynamics stage to score; "
                        "set pipeline.save_words, e.g. [100000, 1000000] or babylm")
    if args.smoke:
        if args.dry_run:
            raise UserError("--smoke runs the stages, --dry-run runs none: pass one of them")
        return smoke.run(plan, Plan, run_stage, keep=args.smoke_keep)
    family = lambda s, f: s.name == f or s.name.startswith(f + "-s")  # noqa: E731
    if args.only:
        stages = [s for s in plan.stages if family(s, args.only)]
    elif args.start:
        first = next(i for i, s in enumerate(plan.stages) if family(s, args.start))
        stages = plan.stages[first:]
    else:
        stages = plan.stages
    forced = {s.name for s in stages} if (args.only or args.start) else set()
    with folder_lock(None if args.dry_run else plan.work, "pipeline.work_dir"):  # one run at a time per work dir
        return run_stages(plan, args, stages, configs, forced)


def run_stages(plan: Plan, args, stages: list[Stage], configs: dict, forced: set) -> int:
    """Run (dry: list) ``stages`` in order; a stage whose fingerprint is unchanged since it finished is skipped."""
    total = time.time()
    reruns = set()  # the stages run (or, dry, that would run) so far
    for i, stage in enumerate(stages, 1):
        cfg = configs[stage.name]
        fp, old = plan.fingerprint(stage, cfg), plan.recorded(stage)
        why = ["forced"] if stage.name in forced else plan.changes(old, fp)
        if old is not None and "upstream" not in old and stage.kind in ("finetune", "report") and not why:
            why = ["recorded before results named their sources"]  # its results may be an earlier model's
        # dry, an earlier stage that would rerun will record a new fingerprint: the stages that read it rerun too
        ahead = [f"{u} reruns" for u in plan.reads(stage) if u in reruns] if args.dry_run else []
        why += ahead
        head = f"== [{i}/{len(stages)}] {stage.name}"
        if not why:
            if old is not None and "upstream" not in old and not args.dry_run:
                plan.mark(stage, {**fp, **{k: v for k, v in old.items() if k == "seconds"}})  # chained from now on
            print(f"{head}: done already, skipped")
            continue
        reruns.add(stage.name)
        folder = plan.model_dir(stage.model) if stage.model else None
        # a training stage killed midway with the same settings and inputs resumes its checkpoints; otherwise an
        # earlier model in its folder is moved aside, never deleted
        started = stage.name not in forced and not ahead and not plan.changes(plan.recorded(stage, ".started"), fp)
        action = ""
        if folder is not None and folder.exists():
            action = ("resume" if not is_finished(folder) else "record") if started else "move aside"
        if args.dry_run:
            print(f"{head}: would {'run' if not action else action + ' and run' if action != 'record' else 'record'}"
                  f" ({reasons(why)})")
            continue
        print(f"\n{head} ({reasons(why)}) " + "=" * 40, flush=True)
        start = time.time()
        if action == "move aside":
            print(f"moved the earlier {stage.model} to {move_aside(folder)}")
        spent = plan.marker(stage, ".seconds")  # the stage's run time adds up over attempts (a Ctrl-C'd one counts)
        if action != "record":  # "record": a kill came after the model was finished, before the stage was marked
            plan.mark(stage, fp, ".started")
            todo = None
            if stage.kind in ("text", "eval"):
                todo = list(plan.scorers(stage)) if stage.name in forced else plan.stale(stage, fp)
                print(f"scoring {', '.join(todo)}" + ("" if len(todo) == len(plan.scorers(stage)) else
                                                       " (the others are scored already)"))
            # a resumed training stage, or a text/eval stage that scores only new models, adds to its earlier time
            partial = action == "resume" or (todo is not None and len(todo) < len(plan.scorers(stage)))
            before = float(spent.read_text()) if partial and spent.is_file() else 0.0
            try:
                run_stage(plan, stage, cfg, resume=action == "resume", todo=todo)
            finally:
                write_atomic(spent, f"{before + time.time() - start:.1f}")
        seconds = float(spent.read_text()) if spent.is_file() else time.time() - start
        plan.mark(stage, {**fp, "seconds": round(seconds, 1)})
        print(f"== {stage.name} finished in {time.time() - start:.0f} s (total {time.time() - total:.0f} s)", flush=True)
    if args.dry_run:
        names = [s.name for s in stages if s.name in reruns]
        rows, gpu = compute_plan.pipeline_plan(plan, names, args.plan_words)
        print("\n" + (compute_plan.describe(rows, gpu, args.plan_utilisation, names) if rows else
                      "compute plan: no stage that would run trains or scores"))
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
