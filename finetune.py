"""Fine-tune causal LMs on (Super)GLUE and MSGS with the paper's per-task settings (Table 3); Table 2 and Figures 3-4.

    python finetune.py --model baby-llama-58M=models/baby-llama-58M --tasks all
    python finetune.py --config config/finetune.yaml --tasks cola,mrpc finetune.data_dir=data/filter-data
    python finetune.py --report-only finetune.output_dir=results/finetune      # redraw table.md and the plots

Each (model, task) is one run of the stock ``Trainer``: ``AutoModelForSequenceClassification`` on the causal LM (a
linear head on the last non-pad token, so the model config's ``pad_token_id`` is set from the tokenizer), sequences cut
at 128 tokens, linear decay from the task's peak lr without warm-up, AdamW without weight decay (``run_glue.py``'s
defaults, which the BabyLM 2023 pipeline and the paper used), evaluation and a checkpoint every ``eval_steps`` steps,
``EarlyStoppingCallback`` on the task's metric (accuracy; F1 for MRPC and QQP; MCC for CoLA and every MSGS task), and
at the end the best checkpoint restored and evaluated once more: that is the number reported.

Per-task settings come from ``finetune.defaults`` overridden by ``finetune.per_task.<task>`` (``config/finetune.yaml``
holds the paper's Table 3). Data: the BabyLM 2023 ``filter-data/`` layout (``glue_filtered/<task>.train.json`` and
``<task>.validation.json``, MNLI's ``mnli.validation_matched.json`` / ``mnli.validation_mismatched.json`` with
``mnli.train.json`` for both, ``msgs_filtered/<task>.train.json`` / ``.validation.json``), or a plain folder of
``<task>/train.jsonl`` and ``<task>/validation.jsonl`` (MNLI-mm reads ``mnli/train.jsonl``), JSON lines either way.
As in that pipeline, the validation file is both the early-stopping set and the one reported (for MSGS it is the
disambiguating test set).

Results: ``<output_dir>/<model>/<task>.json`` (metric, best step, settings, evaluation history, and its source: the
model folder with a content hash of its files, a hash of the task files, the settings that change the number), then
``table.md``, ``glue.png`` and ``msgs.png`` over every result present (columns: the configured models, then any others
by name). On rerun a result is reused only when its source is the same; otherwise it is moved aside to
``<task>.json.old-<n>`` and redone. A killed task resumes from its newest complete checkpoint in
``<checkpoint_dir>/<model>/<task>/`` when that folder's ``source.json`` matches (else the folder is moved aside).

The schema lives here rather than in babyllama/schema.py because its checks need the task registry below (task names in
``tasks``, ``per_task`` and ``marked``): babyllama/schema.py would otherwise import this module, torch and transformers with
it, for every stage.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import re
import shutil
import string
import sys
import time
from pathlib import Path
from typing import Any, Literal

import torch
from transformers import (AutoModelForSequenceClassification, AutoTokenizer, DataCollatorWithPadding,
                          EarlyStoppingCallback, Trainer, TrainingArguments, set_seed)
from transformers.models.auto.modeling_auto import MODEL_FOR_SEQUENCE_CLASSIFICATION_MAPPING_NAMES

from babyllama.config import (ConfigError, UserError, add_config_args, apply_overrides, build, check_range, describe, field,
                    load_config, read_yaml, run_cli, save_config)
from babyllama.files import hash_files, model_fingerprint, write_atomic
from babyllama.locks import locked
from babyllama.models import check_model_folder as check_weights, max_positions
from babyllama.report import Row, format_table, parallel_plot
from babyllama.files import move_aside
from babyllama.run_folder import checkpoint_problem, checkpoints_in
from babyllama.trainer_setup import resolve_precision

DEFAULT_CONFIG = Path(__file__).resolve().parent / "config" / "finetune.yaml"

# ----------------------------------------------------------------------------------------------------------------------
# the tasks


@dataclasses.dataclass(frozen=True)
class Task:
    name: str  # key in the config and file stem in the BabyLM layout
    label: str  # row label of the table
    group: Literal["glue", "msgs"]
    first: str  # template of the first segment over the row's fields
    second: str | None = None  # field of the second segment (a sentence pair), if any
    metric: Literal["accuracy", "f1", "mcc"] = "accuracy"
    num_labels: int = 2
    train_stem: str | None = None  # file stem of the training file when it is not ``name`` (MNLI-mm)
    validation: str = "validation"  # split name of the validation file in the BabyLM layout
    paper: bool = True  # one of the paper's 17 (``tasks: [all]``)

    @property
    def fields(self) -> list[str]:
        names = [f for _, f, _, _ in string.Formatter().parse(self.first) if f]
        return names + ([self.second] if self.second else [])

    def text(self, row: dict) -> tuple[str, str | None]:
        return self.first.format(**row), (row[self.second] if self.second else None)


def _msgs(name: str, label: str) -> Task:
    return Task(name, label, "msgs", "{sentence}", metric="mcc")


# Field names as in the GLUE/SuperGLUE datasets; MultiRC and WSC are turned into sentence pairs with the BabyLM 2023
# pipeline's templates. Order: the paper's Table 2.
TASKS = {t.name: t for t in [
    Task("cola", "CoLA", "glue", "{sentence}", metric="mcc"),
    Task("sst2", "SST-2", "glue", "{sentence}"),
    Task("mrpc", "MRPC", "glue", "{sentence1}", "sentence2", metric="f1"),
    Task("qqp", "QQP", "glue", "{question1}", "question2", metric="f1"),
    Task("mnli", "MNLI", "glue", "{premise}", "hypothesis", num_labels=3, validation="validation_matched"),
    Task("mnli-mm", "MNLI-mm", "glue", "{premise}", "hypothesis", num_labels=3, train_stem="mnli",
         validation="validation_mismatched"),
    Task("qnli", "QNLI", "glue", "{question}", "sentence"),
    Task("rte", "RTE", "glue", "{sentence1}", "sentence2"),
    Task("boolq", "BoolQ", "glue", "{question}", "passage"),
    Task("multirc", "MultiRC", "glue", "Question: {question} Answer: {answer}", "paragraph"),
    Task("wsc", "WSC", "glue", 'Does "{span2_text}" refer to "{span1_text}" in this passage?', "text"),
    _msgs("control_raising_lexical_content_the", "CR_LC"),
    _msgs("control_raising_relative_token_position", "CR_RTP"),
    _msgs("main_verb_lexical_content_the", "MV_LC"),
    _msgs("main_verb_relative_token_position", "MV_RTP"),
    _msgs("syntactic_category_lexical_content_the", "SC_LC"),
    _msgs("syntactic_category_relative_position", "SC_RP"),
    # offline stand-ins written by babyllama/synthetic_tasks.py (tests, embedded pipeline)
    Task("synthetic_cola", "Synth. CoLA", "glue", "{sentence}", metric="mcc", paper=False),
    dataclasses.replace(_msgs("synthetic_msgs", "Synth. MSGS"), paper=False),
]}
METRIC_LABELS = {"accuracy": "", "f1": " (F1)", "mcc": " (MCC)"}


def resolve_tasks(names: list[str], key: str = "finetune.tasks") -> list[Task]:
    """Task objects for ``names`` (``all``: the paper's 17), in the order given, without repeats."""
    out = []
    for name in names:
        found = [t for t in TASKS.values() if t.paper] if name == "all" else [TASKS.get(name)]
        if found == [None]:
            raise ConfigError(key, f"unknown task {name!r}; known: all, {', '.join(TASKS)}")
        out += [t for t in found if t not in out]
    return out


# ----------------------------------------------------------------------------------------------------------------------
# metrics: scikit-learn's (binary F1 of the positive class 1, 0 when there is no positive; MCC for any number of
# classes, 0 where it is undefined), imported when first used: sklearn takes seconds to import


def accuracy(labels, preds) -> float:
    from sklearn.metrics import accuracy_score

    return float(accuracy_score(labels, preds))


def f1(labels, preds) -> float:
    from sklearn.metrics import f1_score

    return float(f1_score(labels, preds, zero_division=0.0))


def mcc(labels, preds) -> float:
    """Matthews correlation (Gorodkin's K-class form; the binary one for K=2)."""
    from sklearn.metrics import matthews_corrcoef

    return float(matthews_corrcoef(labels, preds))


METRICS = {"accuracy": accuracy, "f1": f1, "mcc": mcc}


def make_compute_metrics(task: Task):
    """``compute_metrics`` for the Trainer: the task's metric, and accuracy beside it."""

    def compute(pred) -> dict:
        logits = pred.predictions[0] if isinstance(pred.predictions, tuple) else pred.predictions
        preds = logits.argmax(-1).tolist()
        labels = pred.label_ids.tolist()
        return {task.metric: METRICS[task.metric](labels, preds), "accuracy": accuracy(labels, preds)}

    return compute


# ----------------------------------------------------------------------------------------------------------------------
# config schema


@dataclasses.dataclass
class TaskSettings:
    lr: float = field(5e-5, help="peak learning rate, decayed linearly to 0 without warm-up (organisers' default 5e-5)")
    batch_size: int = field(64, help="training batch (organisers' default 64)")
    num_epochs: float = field(10.0, help="maximum epochs; early stopping usually ends sooner (organisers' default 10)")
    patience: int = field(10, help="evaluations without an improvement above early_stopping_threshold before "
                                   "stopping (organisers' default 10)")
    eval_steps: int = field(200, help="evaluate and save a checkpoint every N optimizer steps (organisers' default 200)")
    seed: int = field(12, help="seed of the head's initialisation and the data order (organisers' default 12)")

    def __post_init__(self):
        check_range("settings", "lr", self.lr, 0, lo_open=True)
        for name in ("batch_size", "patience", "eval_steps"):
            check_range("settings", name, getattr(self, name), 1)
        check_range("settings", "num_epochs", self.num_epochs, 0, lo_open=True)


@dataclasses.dataclass
class FinetuneSection:
    data_dir: str = field(help="BabyLM 2023 filter-data folder (glue_filtered/, msgs_filtered/) or a folder of "
                               "<task>/train.jsonl + validation.jsonl")
    models: dict[str, str] = field({}, help="name -> model folder written by train.py / distill_train.py (any HF "
                                           "causal LM with its tokenizer); --model NAME=PATH replaces them")
    tasks: list[str] = field(["all"], help="tasks to run, in order; all: the paper's 11 (Super)GLUE and 6 MSGS tasks")
    output_dir: str = field("results/finetune", help="<model>/<task>.json results, table.md, glue.png, msgs.png")
    checkpoint_dir: str | None = field(None, help="checkpoints go to <checkpoint_dir>/<model>/<task>/ (default: "
                                                  "<output_dir>/checkpoints)")
    keep_checkpoints: bool = field(False, help="keep a finished task's checkpoints (the best among them) instead of "
                                               "deleting them once its result is written")
    max_seq_length: int = field(128, help="tokens per example, longer ones are truncated (paper: 128)")
    early_stopping_threshold: float = field(0.001, help="smallest metric gain that counts as an improvement (BabyLM "
                                                        "2023 pipeline: 0.001)")
    eval_batch_size: int = field(64, help="examples per forward pass while evaluating (does not change the results)")
    precision: Literal["auto", "fp32", "bf16", "fp16"] = field("auto", help="auto: bf16 where it is faster "
                                                                             "(as training.precision auto)")
    cpu_threads: int | None = field(None, help="torch CPU threads (null: torch's default); 1 is several times faster "
                                               "for tiny models on a busy machine")
    logging_steps: int = field(50, help="log the training loss every N steps")
    defaults: TaskSettings = field(help="settings every task inherits", default_factory=TaskSettings)
    per_task: dict[str, dict[str, Any]] = field({}, help="task -> the settings it overrides, e.g. {cola: {lr: 4e-5}}")
    marked: list[str] = field([], help="tasks whose row gets a dagger in table.md")

    def __post_init__(self):
        if not resolve_tasks(self.tasks):
            raise ConfigError("finetune.tasks", "name at least one task, or all")
        for key in ("per_task", "marked"):
            for name in getattr(self, key):
                resolve_tasks([name], f"finetune.{key}.{name}" if key == "per_task" else "finetune.marked")
        for name in self.per_task:
            self.settings(name)  # type and range checks of every override, before any work
        check_range("finetune", "max_seq_length", self.max_seq_length, 2)
        check_range("finetune", "early_stopping_threshold", self.early_stopping_threshold, 0)
        check_range("finetune", "eval_batch_size", self.eval_batch_size, 1)
        check_range("finetune", "logging_steps", self.logging_steps, 1)
        check_range("finetune", "cpu_threads", self.cpu_threads, 1)

    def settings(self, task: str) -> TaskSettings:
        """``defaults`` overridden by ``per_task[task]``."""
        merged = dataclasses.asdict(self.defaults) | (self.per_task.get(task) or {})
        try:
            return build(TaskSettings, merged, f"finetune.per_task.{task}")
        except ConfigError as e:
            if e.key.startswith("settings."):  # a range check: name the per-task key
                raise ConfigError(f"finetune.per_task.{task}.{e.key.split('.', 1)[1]}", e.message) from None
            raise

    def checkpoints(self) -> Path:
        return Path(self.checkpoint_dir or Path(self.output_dir) / "checkpoints")


@dataclasses.dataclass
class FinetuneConfig:
    finetune: FinetuneSection


# ----------------------------------------------------------------------------------------------------------------------
# data


def task_files(task: Task, data_dir) -> tuple[Path, Path]:
    """(train file, validation file): the BabyLM layout when ``data_dir`` has glue_filtered/ or msgs_filtered/, else
    the plain one. A missing file is a one-line error naming it."""
    root = Path(data_dir)
    if not root.is_dir():
        raise UserError(f"{root}: finetune.data_dir not found; unzip the BabyLM filter-data there or fix the path")
    stem = task.train_stem or task.name
    if (root / "glue_filtered").is_dir() or (root / "msgs_filtered").is_dir():
        folder = root / ("msgs_filtered" if task.group == "msgs" else "glue_filtered")
        files = folder / f"{stem}.train.json", folder / f"{stem}.{task.validation}.json"
    else:
        files = root / stem / "train.jsonl", root / task.name / "validation.jsonl"
    for f in files:
        if not f.is_file():
            raise UserError(f"{f}: file of task {task.name} not found; get it (README, fine-tuning) or drop the task")
    return files


def label_id(value, task: Task):
    """Labels 0..num_labels-1; JSON true/false and "true"/"false" count as 1/0 (SuperGLUE's boolean labels)."""
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return int(value.lower() == "true")
    if isinstance(value, int) and 0 <= value < task.num_labels:
        return value
    return None


def read_task_file(path: Path, task: Task) -> list[tuple[str, str | None, int]]:
    """(first segment, second segment, label id) per line, or a one-line error naming the file, line and fix."""
    rows = []
    allowed = ", ".join(map(str, range(task.num_labels)))
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError:
        raise UserError(f"{path}: not UTF-8 text")
    for i, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as e:
            raise UserError(f"{path} line {i}: not valid JSON ({e.msg}); one JSON object per line expected")
        if not isinstance(row, dict):
            raise UserError(f"{path} line {i}: expected a JSON object")
        missing = [f for f in task.fields + ["label"] if f not in row]
        if missing:
            raise UserError(f"{path} line {i}: no field {missing[0]!r}; task {task.name} needs "
                            f"{', '.join(task.fields + ['label'])}")
        y = label_id(row["label"], task)
        if y is None:
            raise UserError(f"{path} line {i}: label {row['label']!r} is outside task {task.name}'s labels ({allowed})")
        first, second = task.text(row)
        rows.append((str(first), None if second is None else str(second), y))
    if not rows:
        raise UserError(f"{path}: no examples")
    return rows


def load_task(task: Task, data_dir) -> dict:
    train, validation = task_files(task, data_dir)
    return {"train": read_task_file(train, task), "validation": read_task_file(validation, task),
            "train_file": str(train), "validation_file": str(validation), "hash": hash_files([train, validation])}


def encode(tokenizer, rows, max_length: int) -> list[dict]:
    firsts = [r[0] for r in rows]
    seconds = [r[1] for r in rows] if rows[0][1] is not None else None
    enc = tokenizer(firsts, seconds, truncation=True, max_length=max_length)
    return [{"input_ids": ids, "attention_mask": mask, "labels": r[2]}
            for ids, mask, r in zip(enc["input_ids"], enc["attention_mask"], rows)]


# ----------------------------------------------------------------------------------------------------------------------
# models


def check_model_folder(name: str, path) -> Path:
    folder = Path(path)
    for f in ("config.json", "tokenizer.json"):
        if not (folder / f).is_file():
            raise UserError(f"{folder}: no {f} for model {name!r}; point finetune.models.{name} at a folder written "
                            "by train.py or distill_train.py")
    model_type = json.loads((folder / "config.json").read_text()).get("model_type")
    if model_type not in MODEL_FOR_SEQUENCE_CLASSIFICATION_MAPPING_NAMES:  # e.g. olmoe, our model.type moe
        raise UserError(f"{folder}: transformers has no sequence-classification head for model type {model_type!r} "
                        f"(model {name!r}); fine-tune another model or remove finetune.models.{name}")
    return check_weights(folder, f"model {name!r}")  # weights cut short: named now, not as a traceback later


def load_tokenizer(folder):
    tok = AutoTokenizer.from_pretrained(str(folder))
    if tok.pad_token is None:  # GPT-2-style tokenizers: pad with EOS (pooling takes the last non-pad token)
        tok.pad_token = tok.eos_token
    return tok


def load_classifier(folder, task: Task, tokenizer):
    """The causal LM with a fresh linear head over its last non-pad token."""
    return AutoModelForSequenceClassification.from_pretrained(
        str(folder), num_labels=task.num_labels, pad_token_id=tokenizer.pad_token_id, dtype=torch.float32)


def max_length_for(model, limit: int) -> int:
    return min(limit, max_positions(model.config) or limit)


# ----------------------------------------------------------------------------------------------------------------------
# one task, one model


def safe_name(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._+-]+", "_", name).strip("._") or "model"


def result_path(f: FinetuneSection, model: str, task: str) -> Path:
    return Path(f.output_dir) / safe_name(model) / f"{task}.json"


def source_of(f: FinetuneSection, model_dir, weights: str, task: Task, data: dict) -> dict:
    """What a result is computed from: the model folder and the content hash of its files (``model_fingerprint``),
    the task files' hash, and every setting that changes the number."""
    return {"model_dir": str(Path(model_dir).resolve()), "weights": weights, "task_files": data["hash"],
            "settings": dataclasses.asdict(f.settings(task.name)) | {
                "max_seq_length": f.max_seq_length, "precision": resolve_precision(f.precision),
                "early_stopping_threshold": f.early_stopping_threshold}}


def differences(old: dict | None, new: dict) -> str:
    """The keys of two sources that differ, in words."""
    if not isinstance(old, dict):
        return "no recorded source"
    keys = [k for k in new if k != "settings" and old.get(k) != new[k]]
    keys += [f"settings.{k}" for k, v in new["settings"].items() if (old.get("settings") or {}).get(k) != v]
    return "a different " + ", ".join(keys)


def finetune_task(f: FinetuneSection, model_name: str, model_dir, task: Task, data: dict, source: dict,
                  callbacks=()) -> dict:
    """Fine-tune one model on one task, or read its finished result when that has the same ``source``; write and
    return the result."""
    out = result_path(f, model_name, task.name)
    if out.is_file():
        try:
            old = json.loads(out.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError):
            old = None
        if isinstance(old, dict) and old.get("source") == source:
            print(f"{model_name} / {task.name}: done already ({out})")
            return old
        moved = move_aside(out)  # never a number from another model, data or settings; nothing is deleted
        print(f"{model_name} / {task.name}: {out} was computed from "
              f"{differences(old.get('source') if isinstance(old, dict) else None, source)}: moved to {moved}, redoing")
    s = f.settings(task.name)
    ckpt_dir = f.checkpoints() / safe_name(model_name) / task.name
    mark = ckpt_dir / "source.json"
    if checkpoints_in(ckpt_dir) and (not mark.is_file() or json.loads(mark.read_text()) != source):
        print(f"{model_name} / {task.name}: the checkpoints in {ckpt_dir} are of another source: moved to "
              f"{move_aside(ckpt_dir)}")
    write_atomic(mark, json.dumps(source, indent=1))
    complete = [c for c in checkpoints_in(ckpt_dir) if checkpoint_problem(c) is None]
    resume = str(complete[-1]) if complete else None
    precision = resolve_precision(f.precision)
    tokenizer = load_tokenizer(model_dir)
    set_seed(s.seed)  # the head's initialisation
    model = load_classifier(model_dir, task, tokenizer)
    max_len = max_length_for(model, f.max_seq_length)
    train_ds, eval_ds = encode(tokenizer, data["train"], max_len), encode(tokenizer, data["validation"], max_len)
    print(f"{model_name} / {task.name}: {len(train_ds):,} train, {len(eval_ds):,} validation examples; lr {s.lr}, "
          f"batch {s.batch_size}, <= {s.num_epochs} epochs, eval every {s.eval_steps}, patience {s.patience}, "
          f"seed {s.seed}, {task.metric}, {precision}" + (f"; resuming from {resume}" if resume else ""))
    args = TrainingArguments(
        output_dir=str(ckpt_dir), num_train_epochs=s.num_epochs, per_device_train_batch_size=s.batch_size,
        per_device_eval_batch_size=f.eval_batch_size, learning_rate=s.lr, seed=s.seed,
        eval_strategy="steps", eval_steps=s.eval_steps, save_strategy="steps", save_steps=s.eval_steps,
        save_total_limit=1,  # the best checkpoint is kept besides the last one
        load_best_model_at_end=True, metric_for_best_model=task.metric, greater_is_better=True,
        restore_callback_states_from_checkpoint=True,  # early stopping's patience counter survives a kill
        logging_steps=f.logging_steps, report_to=[], bf16=precision == "bf16", fp16=precision == "fp16",
        use_cpu=not torch.cuda.is_available(), remove_unused_columns=False,
        disable_tqdm=not sys.stderr.isatty())
    trainer = Trainer(model=model, args=args, train_dataset=train_ds, eval_dataset=eval_ds,
                      data_collator=DataCollatorWithPadding(tokenizer), processing_class=tokenizer,
                      compute_metrics=make_compute_metrics(task),
                      callbacks=[EarlyStoppingCallback(s.patience, f.early_stopping_threshold), *callbacks])
    start = time.time()
    trainer.train(resume_from_checkpoint=resume)
    st = trainer.state
    key = f"eval_{task.metric}"
    history = [[h["step"], h[key]] for h in st.log_history if key in h]
    final = trainer.evaluate()  # the restored best checkpoint (the last model when no evaluation ran)
    result = {
        "model": model_name, "model_dir": str(model_dir), "task": task.name, "label": task.label, "group": task.group,
        "metric": task.metric, "value": final[key], "accuracy": final["eval_accuracy"],
        "best_step": st.best_global_step, "global_step": st.global_step, "max_steps": st.max_steps,
        "stopped_early": st.global_step < st.max_steps, "history": history,
        "settings": dataclasses.asdict(s) | {"max_seq_length": max_len, "precision": precision,
                                             "early_stopping_threshold": f.early_stopping_threshold},
        "train_file": data["train_file"], "validation_file": data["validation_file"],
        "train_examples": len(train_ds), "validation_examples": len(eval_ds), "resumed_from": resume,
        "runtime_s": round(time.time() - start, 1), "source": source,
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".tmp")
    tmp.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, out)  # written whole or not at all: a half-written result never marks a task done
    if not f.keep_checkpoints:
        shutil.rmtree(ckpt_dir, ignore_errors=True)
    print(f"{model_name} / {task.name}: {task.metric} {100 * result['value']:.1f} at step {result['best_step']} "
          f"(stopped at {st.global_step} of {st.max_steps}) -> {out}")
    return result


@locked(lambda cfg: cfg.finetune.output_dir, "finetune.output_dir")  # one run at a time per output folder
def run(cfg: FinetuneConfig, callbacks=()) -> dict[str, dict[str, dict]]:
    """Every model on every task; checks all models and data files first. Returns {model: {task: result}}."""
    f = cfg.finetune
    if not f.models:
        raise UserError("finetune.models: name at least one model folder (--model NAME=PATH)")
    tasks = resolve_tasks(f.tasks)
    seen = {}
    for name in f.models:  # lower: two names differing in case collide on case-insensitive disks
        other = seen.setdefault(safe_name(name).lower(), name)
        if other != name:
            raise UserError(f"finetune.models: {other!r} and {name!r} write the same result folder "
                            f"{safe_name(name)!r}; one result would overwrite the other; rename one")
    folders = {name: check_model_folder(name, path) for name, path in f.models.items()}
    data = {t.name: load_task(t, f.data_dir) for t in tasks}
    weights = {name: model_fingerprint(folder) for name, folder in folders.items()}
    save_config(cfg, f.output_dir, "finetune_config.yaml")
    threads = torch.get_num_threads()
    if f.cpu_threads:
        torch.set_num_threads(f.cpu_threads)
    try:
        results = {name: {t.name: finetune_task(f, name, folder, t, data[t.name],
                                                source_of(f, folder, weights[name], t, data[t.name]), callbacks)
                          for t in tasks} for name, folder in folders.items()}
    finally:  # the pipeline's later stages (and its report of the machine) keep their thread count
        torch.set_num_threads(threads)
    table = write_report(f.output_dir, list(f.models), f.marked, others=False)  # not models of an earlier config
    print(table)
    return results


def run_tasks(model_dirs: dict[str, str], data_dir, tasks, output_dir, overrides=(), config_path=DEFAULT_CONFIG):
    """``config_path`` (the paper's table) with these models, data, tasks and output; paths go in as values."""
    raw = apply_overrides(read_yaml(config_path), overrides)
    raw.setdefault("finetune", {}).update(data_dir=str(data_dir), output_dir=str(output_dir), tasks=list(tasks),
                                          models={k: str(v) for k, v in model_dirs.items()})
    return run(build(FinetuneConfig, raw))


# ----------------------------------------------------------------------------------------------------------------------
# reports: Table 2 and Figures 3-4 (babyllama/report.py draws them)


def load_results(output_dir, models=None, others: bool = True) -> dict[str, dict[str, dict]]:
    """{model: {task: result}} from ``<output_dir>/<model>/<task>.json``: the ``models`` named first, in that order,
    then (``others``) any others found, by name."""
    root = Path(output_dir)
    by_model: dict[str, dict[str, dict]] = {}
    for path in sorted(root.glob("*/*.json")):
        try:
            r = json.loads(path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise UserError(f"{path}: not a valid JSON file; delete it to redo the task")
        if isinstance(r, dict) and {"model", "task", "value"} <= set(r):
            by_model.setdefault(r["model"], {})[r["task"]] = r
    first = [m for m in models or [] if m in by_model]
    return {m: by_model[m] for m in first + (sorted(set(by_model) - set(first)) if others else [])}


def stale_results(by_model) -> dict[tuple[str, str], str]:
    """{(model, task): why} for the results that no longer describe the model folder their source names: the folder
    is gone, or its weights are not the ones recorded (retrained, ``--overwrite``, replaced). A result without a
    recorded source cannot be checked and counts as stale."""
    prints, out = {}, {}
    for m, tasks in by_model.items():
        for t, r in tasks.items():
            src = r.get("source") if isinstance(r.get("source"), dict) else {}
            folder = src.get("model_dir")
            if not folder or "weights" not in src:
                out[m, t] = "it records no source (model folder and weights hash) to check"
            elif not Path(folder).is_dir():
                out[m, t] = f"its model folder {folder} is gone"
            elif prints.setdefault(folder, model_fingerprint(folder)) != src["weights"]:
                out[m, t] = f"the weights in {folder} changed since (retrained or replaced)"
    return out


def write_report(output_dir, models=None, marked=(), others: bool = True) -> str:
    """table.md (Table 2: (Super)GLUE then MSGS, models as columns) and glue.png / msgs.png (Figures 3-4); ``others``:
    also the models found in the folder beyond ``models`` (--report-only), not after a run of ``models``. A result
    whose model folder changed since (``stale_results``) is marked ‡ in the table, named below it and on stderr,
    and left out of the plots."""
    by_model = load_results(output_dir, models, others)
    if not by_model:
        raise UserError(f"{output_dir}: no fine-tuning results to report")
    cols = list(by_model)
    present = {t for tasks in by_model.values() for t in tasks}
    order = [t for t in TASKS.values() if t.name in present]
    stale = stale_results(by_model)

    def label(t):  # MSGS rows are all MCC, said in the section title
        return t.label + (METRIC_LABELS[t.metric] if t.group == "glue" else "") + "†" * (t.name in marked)

    def rows(group, skip=()):  # values in display units: x 100 (accuracy and F1 in %, MCC x 100)
        return [Row(label(t), t.group, {m: 100 * by_model[m][t.name]["value"] if t.name in by_model[m]
                                        and (m, t.name) not in skip else None for m in cols})
                for t in order if t.group == group]

    glue, msgs = rows("glue"), rows("msgs")
    table = format_table([Row("(Super)GLUE", "title", None)] * bool(glue) + glue
                         + [Row("MSGS (MCC)", "title", None)] * bool(msgs) + msgs, cols,
                         marks={(label(TASKS[t]), m): "‡" for m, t in stale})
    out = Path(output_dir)
    for (m, t), why in stale.items():
        print(f"warning: {out / safe_name(m) / t}.json: {why}; its score is marked ‡ in table.md and left out of the "
              "plots: fine-tune the model again to redo it", file=sys.stderr)
    if stale:
        table += ("\n‡ stale: the model folder changed since this score was computed (or cannot be checked); "
                  "redo with finetune.py: " + ", ".join(f"{m} / {t}" for m, t in stale) + "\n")
    write_atomic(out / "table.md", table)
    glue, msgs = rows("glue", stale), rows("msgs", stale)
    if glue:
        low = min([0.0] + [v for r in glue for v in r.values.values() if v is not None])
        parallel_plot(glue, cols, out / "glue.png", ylim=(min(0.0, low - 5), 100.0),
                      ylabel="score (%; F1 for MRPC/QQP, MCC x100 for CoLA)", title="(Super)GLUE after fine-tuning")
    if msgs:
        parallel_plot(msgs, cols, out / "msgs.png", ylim=(-100.0, 100.0), ylabel="MCC x 100", chance=0.0,
                      title="MSGS: +100 linguistic, -100 surface generalisation")
    return table


# ----------------------------------------------------------------------------------------------------------------------
# command line


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog="\n\n".join(__doc__.split("\n\n")[1:3]))
    add_config_args(parser, "config/finetune.yaml")
    parser.add_argument("--model", action="append", default=[], metavar="NAME=PATH",
                        help="a model folder to fine-tune (repeatable; replaces finetune.models)")
    parser.add_argument("--tasks", help="comma-separated task names, or all (finetune.tasks)")
    parser.add_argument("--report-only", action="store_true", help="redraw table.md and the plots from the results "
                                                                   "in finetune.output_dir; trains nothing")
    args = parser.parse_intermixed_args(argv)  # overrides may come before or after the flags
    if args.help_config:
        print(describe(FinetuneConfig))
        return 0
    overrides = list(args.overrides)
    if args.tasks:
        overrides.append(f"finetune.tasks={json.dumps([t.strip() for t in args.tasks.split(',') if t.strip()])}")
    cfg = load_config(FinetuneConfig, args.config, overrides)
    if args.report_only:
        print(write_report(cfg.finetune.output_dir, list(cfg.finetune.models), cfg.finetune.marked))
        return 0
    if args.model:
        models = {}
        for text in args.model:
            name, sep, path = text.partition("=")
            if not sep or not name.strip() or not path.strip():
                raise UserError(f"--model {text!r}: expected NAME=PATH, e.g. baby-llama=models/baby-llama-58M")
            if name.strip() in models:
                raise UserError(f"--model {name.strip()}={models[name.strip()]} and --model {text} are both named "
                                f"{name.strip()!r}: one result would overwrite the other; rename one")
            models[name.strip()] = path.strip()
        cfg.finetune.models = models
    run(cfg)
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
