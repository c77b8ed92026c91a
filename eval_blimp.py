"""Score causal LMs on BLiMP-style minimal pairs; write per-model results, a Table-1 style Markdown table and a plot.

    python eval_blimp.py --blimp-dir data/blimp --model baby-llama=models/baby-llama-58m \\
        --model llama-360m=models/llama-360m --ensemble teachers=models/llama-360m,models/gpt2-705m --output-dir results
    python eval_blimp.py --config config/eval.yaml eval.precision=bf16 eval.max_pairs_per_file=100
    python eval_blimp.py --plot-only results/baby-llama.json results/teachers.json --output-dir results

Settings come from the YAML (``config/eval.yaml`` when it exists, or ``--config``), then dotted overrides, then the
flags. ``--model``/``--ensemble`` replace the YAML's models and ensembles; to add to them use overrides such as
``eval.models.NAME=PATH``.

Scoring follows lm-evaluation-harness's ``blimp`` task: each sentence is a continuation of an empty context, written
with the task's target delimiter (``" " + sentence``) and conditioned on one prefix token (BOS if the tokenizer has one,
else EOS; ``eval.prefix=eos`` always uses EOS, as the 2023 BabyLM pipeline did). A sentence's score is the sum of its
tokens' log-probabilities, without length normalisation; a pair is correct when good >= bad (ties count as correct,
like lm-eval's argmax, which picks the first choice).

Accuracies are reported per file, per BLiMP phenomenon (the 12 rows of the paper's Table 1, from ``linguistics_term``;
``s-selection`` counts as argument_structure; a phenomenon's accuracy is the mean of its files' accuracies, as lm-eval
averages its blimp group), and as macro averages: over phenomena, over supplement files (records without
``linguistics_term``, e.g. the BabyLM supplement), and over all files.

During training, ``BlimpCallback`` scores a small subset every N steps and logs ``blimp_acc`` through the Trainer.
"""

from __future__ import annotations

import argparse
import json
import math
import re
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from transformers import TrainerCallback

from config import (ConfigError, EvalConfig, UserError, add_config_args, apply_overrides, build, describe, read_yaml,
                    run_cli, save_config, to_dict)

DEFAULT_CONFIG = "config/eval.yaml"

# The 12 BLiMP phenomena, in the order of the paper's Table 1, with their row labels.
PHENOMENA = {
    "anaphor_agreement": "Anaphor Agr.",
    "argument_structure": "Arg. Structure",
    "binding": "Binding",
    "control_raising": "Control/Raising",
    "determiner_noun_agreement": "D-N Agr.",
    "ellipsis": "Ellipsis",
    "filler_gap_dependency": "Filler-Gap",
    "irregular_forms": "Irregular Forms",
    "island_effects": "Island Effects",
    "npi_licensing": "NPI Licensing",
    "quantifiers": "Quantifiers",
    "subject_verb_agreement": "S-V Agr.",
}
SUPPLEMENT_LABELS = {"hypernym": "Hypernym", "qa_congruence_easy": "QA Congr. Easy",
                     "qa_congruence_tricky": "QA Congr. Tricky", "subject_aux_inversion": "Subj.-Aux. Inversion",
                     "turn_taking": "Turn Taking"}
TERM_ALIASES = {"s-selection": "argument_structure"}  # BLiMP's paper counts the two animacy paradigms here
SUPPLEMENT = "supplement"  # group of files whose records have no linguistics_term
AVERAGE_LABELS = {"phenomena": "BLiMP avg. (phenomena)", "supplement": "Supplement avg.", "files": "Avg. over files"}


# ----------------------------------------------------------------------------------------------------------------------
# reading pairs


@dataclass(frozen=True)
class Pair:
    file: str  # file name without extension: the paradigm or supplement task
    line: int  # 1-based line in the file
    good: str
    bad: str
    term: str | None  # linguistics_term as written, None when absent

    @property
    def phenomenon(self) -> str:
        return phenomenon_of(self.term)


def phenomenon_of(term: str | None) -> str:
    if not term:
        return SUPPLEMENT
    return TERM_ALIASES.get(term, term)


def pair_files(folder) -> list[Path]:
    folder = Path(folder)
    if not folder.is_dir():
        raise UserError(f"{folder}: BLiMP folder not found (eval.blimp_dir / --blimp-dir)")
    # BLiMP ships .jsonl; the BabyLM filtered BLiMP and supplement ship JSON lines named .json
    files = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix in (".jsonl", ".json"))
    if not files:
        raise UserError(f"{folder}: no *.jsonl or *.json files in the BLiMP folder")
    return files


def load_pairs(folder, max_pairs_per_file: int | None = None) -> list[Pair]:
    """Every pair of every JSON-lines file in ``folder`` (sorted by file name), the first N per file if asked."""
    pairs = []
    for path in pair_files(folder):
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
        except UnicodeDecodeError as e:
            raise UserError(f"{path}: not UTF-8 text (byte {e.start})")
        n = 0
        for i, text in enumerate(lines, 1):
            if max_pairs_per_file is not None and n >= max_pairs_per_file:
                break
            if not text.strip():
                continue
            try:
                rec = json.loads(text)
            except json.JSONDecodeError as e:
                raise UserError(f"{path}:{i}: not valid JSON ({e.msg}); each line must be one JSON object")
            if not isinstance(rec, dict):
                raise UserError(f"{path}:{i}: expected a JSON object with sentence_good and sentence_bad")
            for key in ("sentence_good", "sentence_bad"):
                if not isinstance(rec.get(key), str):
                    raise UserError(f"{path}:{i}: {key} is missing or not a string")
            term = rec.get("linguistics_term")
            pairs.append(Pair(path.stem, i, rec["sentence_good"], rec["sentence_bad"], term if term else None))
            n += 1
        if n == 0:
            raise UserError(f"{path}: no pairs in this file")
    return pairs


# ----------------------------------------------------------------------------------------------------------------------
# scoring


def prefix_token_id(tokenizer, prefix: str = "bos") -> int:
    """lm-eval's conditioning token for an empty context: BOS if there is one, else EOS; ``eos`` forces EOS."""
    tid = tokenizer.bos_token_id if prefix == "bos" else None
    if tid is None:
        tid = tokenizer.eos_token_id
    if tid is None:
        raise UserError(f"the tokenizer has no {'BOS or ' if prefix == 'bos' else ''}EOS token to condition on")
    return tid


def encode_pairs(tokenizer, pairs, prefix: str = "bos") -> list[list[int]]:
    """Token ids of [good_0, bad_0, good_1, ...], each ``[prefix] + tokens(" " + sentence)``: one batched call."""
    texts = []
    for p in pairs:
        good, bad = (p.good, p.bad) if isinstance(p, Pair) else p
        texts += [" " + good, " " + bad]  # lm-eval: continuation = target_delimiter + choice
    pid = prefix_token_id(tokenizer, prefix)
    ids = tokenizer(texts, add_special_tokens=False)["input_ids"]
    return [[pid] + x for x in ids]


def model_device(model) -> torch.device:
    return next(model.parameters()).device


@torch.inference_mode()
def score_sequences(model, seqs, batch_size: int = 128, progress: bool = False, desc: str = "scoring") -> list[float]:
    """Sum of log p(token | earlier tokens) over positions 1.. of each sequence (position 0 is the prefix).

    Sequences are sorted by length so each batch pads little; padding is on the right, so with causal attention no
    real token sees a pad, positions of real tokens start at 0 (GPT-2's absolute positions are right) and the mask
    only has to drop the pad positions from the sums. Identical sequences are scored once.
    """
    from tqdm.auto import tqdm

    unique: dict[tuple, int] = {}
    index = [unique.setdefault(tuple(s), len(unique)) for s in seqs]
    uniq = list(unique)
    if any(len(s) < 2 for s in uniq):
        raise ValueError("every sequence needs a prefix token and at least one token to score")
    order = sorted(range(len(uniq)), key=lambda i: len(uniq[i]), reverse=True)  # longest first: peak memory at once
    device = model_device(model)
    out = [0.0] * len(uniq)
    bar = tqdm(total=len(uniq), desc=desc, unit="sent", disable=not progress, leave=False)
    for start in range(0, len(order), batch_size):
        idx = order[start:start + batch_size]
        width = len(uniq[idx[0]])
        ids = torch.zeros(len(idx), width, dtype=torch.long)
        mask = torch.zeros(len(idx), width, dtype=torch.long)
        for row, i in enumerate(idx):
            ids[row, :len(uniq[i])] = torch.tensor(uniq[i])
            mask[row, :len(uniq[i])] = 1
        ids, mask = ids.to(device), mask.to(device)
        logits = model(input_ids=ids, attention_mask=mask).logits[:, :-1].float()
        target = ids[:, 1:]
        logp = logits.gather(-1, target.unsqueeze(-1)).squeeze(-1) - torch.logsumexp(logits, dim=-1)
        sums = logp.masked_fill(mask[:, 1:] == 0, 0.0).sum(1).tolist()  # masked_fill, not *: pad logits may be inf
        for row, i in enumerate(idx):
            out[i] = sums[row]
        bar.update(len(idx))
    bar.close()
    return [out[k] for k in index]


def score_pairs(model, tokenizer, pairs, batch_size: int = 64, prefix: str = "bos", progress: bool = False,
                desc: str = "scoring") -> list[tuple[float, float]]:
    """(good, bad) summed log-probabilities for each pair (a ``Pair`` or a ``(good, bad)`` tuple of strings).

    ``batch_size`` counts pairs: each forward pass holds 2 * batch_size sentences. The model is put in eval mode.
    """
    model.eval()
    s = score_sequences(model, encode_pairs(tokenizer, pairs, prefix), 2 * batch_size, progress, desc)
    return list(zip(s[0::2], s[1::2]))


# ----------------------------------------------------------------------------------------------------------------------
# summaries


def _mean(xs):
    return sum(xs) / len(xs) if xs else None


def summarize(pairs, scores) -> dict:
    """Accuracies per file, per phenomenon and macro averages for ``pairs`` scored as ``scores`` (good, bad)."""
    files: dict[str, dict] = {}
    for p, (good, bad) in zip(pairs, scores, strict=True):
        f = files.setdefault(p.file, {"phenomenon": p.phenomenon, "correct": 0, "total": 0})
        f["correct"] += int(good >= bad)
        f["total"] += 1
    for f in files.values():
        f["acc"] = f["correct"] / f["total"]

    groups: dict[str, list[str]] = {}
    for name, f in files.items():
        groups.setdefault(f["phenomenon"], []).append(name)
    known = [g for g in PHENOMENA if g in groups]
    other = sorted(g for g in groups if g not in PHENOMENA and g != SUPPLEMENT)  # unknown terms: own rows
    phenomena = {}
    for g in known + other:
        names = groups[g]
        phenomena[g] = {"acc": _mean([files[n]["acc"] for n in names]),
                        "correct": sum(files[n]["correct"] for n in names),
                        "total": sum(files[n]["total"] for n in names), "files": names}
    supplement = {n: files[n]["acc"] for n in groups.get(SUPPLEMENT, [])}
    averages = {"phenomena": _mean([v["acc"] for v in phenomena.values()]),
                "supplement": _mean(list(supplement.values())),
                "files": _mean([f["acc"] for f in files.values()])}
    return {"files": files, "phenomena": phenomena, "supplement": supplement, "averages": averages,
            "counts": {"pairs": sum(f["total"] for f in files.values()),
                       "correct": sum(f["correct"] for f in files.values()), "files": len(files),
                       "phenomena": len(phenomena), "supplement_files": len(supplement)}}


def _rows(results_by_model: dict) -> list[tuple[str, str, str]]:
    """(label, section, key) rows of the table: phenomena, supplement files, then averages, as present in any model."""
    rows, seen = [], set()
    for section in ("phenomena", "supplement"):
        keys = []
        for r in results_by_model.values():
            keys += [k for k in r[section] if k not in keys]
        if section == "phenomena":
            keys.sort(key=lambda k: (list(PHENOMENA).index(k) if k in PHENOMENA else len(PHENOMENA), k))
        for k in keys:
            if (section, k) not in seen:
                seen.add((section, k))
                label = PHENOMENA.get(k) or SUPPLEMENT_LABELS.get(k) or k.replace("_", " ").capitalize()
                rows.append((label, section, k))
    for k, label in AVERAGE_LABELS.items():
        if any(r["averages"].get(k) is not None for r in results_by_model.values()):
            rows.append((label, "averages", k))
    return rows


def _value(result: dict, section: str, key: str):
    v = result[section].get(key)
    return v["acc"] if isinstance(v, dict) else v


def markdown_table(results_by_model: dict) -> str:
    """Table 1 layout: a row per phenomenon, supplement task and average; a column per model; accuracy in %, the
    best of each row in bold."""
    names = list(results_by_model)
    lines = ["| Task | " + " | ".join(names) + " |", "| --- |" + " ---: |" * len(names)]
    for label, section, key in _rows(results_by_model):
        vals = [_value(results_by_model[n], section, key) for n in names]
        best = max((v for v in vals if v is not None), default=None)
        cells = []
        for v in vals:
            text = "–" if v is None else f"{100 * v:.1f}"
            cells.append(f"**{text}**" if v is not None and len(names) > 1 and v == best else text)
        if section == "averages":
            label = f"*{label}*"
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def load_results(json_paths) -> dict:
    """{model name: results} from result JSONs written by this script."""
    out = {}
    for path in json_paths:
        path = Path(path)
        if not path.is_file():
            raise UserError(f"{path}: result JSON not found")
        try:
            r = json.loads(path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise UserError(f"{path}: not a valid JSON file ({e})")
        if not isinstance(r, dict) or not all(k in r for k in ("phenomena", "supplement", "averages")):
            raise UserError(f"{path}: not a result JSON of eval_blimp.py (phenomena/supplement/averages missing)")
        name = r.get("model") or path.stem
        if name in out:  # the same model from two runs: tell them apart by folder
            name = f"{name} ({path.parent.name})"
        while name in out:
            name += "'"
        out[name] = r
    return out


def plot_results(results, out_png) -> Path:
    """Parallel-coordinates plot like the paper's Figures 1-2: one line per model across phenomena and supplement
    tasks. ``results`` is a list of result JSON paths or a {name: results} dict."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    by_model = results if isinstance(results, dict) else load_results(results)
    rows = [r for r in _rows(by_model) if r[1] != "averages"]
    if not rows:
        raise UserError("nothing to plot: the results have no phenomena or supplement tasks")
    x = list(range(len(rows)))
    fig, ax = plt.subplots(figsize=(max(6.0, 0.55 * len(rows) + 2.5), 4.8), layout="constrained")
    markers = "osD^vP*Xhp<>"
    for k, (name, r) in enumerate(by_model.items()):
        y = [_value(r, s, key) for _, s, key in rows]
        y = [math.nan if v is None else 100 * v for v in y]
        ax.plot(x, y, marker=markers[k % len(markers)], markersize=5, linewidth=1.6, alpha=0.9, label=name)
    for xi in x:  # the parallel axes
        ax.axvline(xi, color="0.85", linewidth=0.8, zorder=0)
    n_blimp = sum(1 for _, s, _ in rows if s == "phenomena")
    if 0 < n_blimp < len(rows):  # separate BLiMP phenomena from the supplement tasks
        ax.axvline(n_blimp - 0.5, color="0.4", linestyle="--", linewidth=1)
    ax.set_xticks(x, [label for label, _, _ in rows], rotation=40, ha="right")
    ax.set_xlim(-0.4, len(rows) - 0.6)
    ax.set_ylabel("accuracy (%)")
    ax.axhline(50, color="0.5", linestyle=":", linewidth=1)  # chance for a two-way choice
    ax.set_ylim(0, 100)
    ax.grid(axis="y", color="0.9")
    ax.set_title("BLiMP accuracy per phenomenon" + (" and supplement task" if n_blimp < len(rows) else ""))
    ax.legend(loc="lower left", fontsize="small", framealpha=0.9)
    out = Path(out_png)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=150)
    plt.close(fig)
    return out


# ----------------------------------------------------------------------------------------------------------------------
# models


def _check_model_folder(path) -> Path:
    folder = Path(path)
    if not folder.is_dir():
        raise UserError(f"{folder}: model folder not found")
    if not (folder / "config.json").is_file():
        raise UserError(f"{folder}: no config.json here; point at a model folder written by train.py or "
                        "distill_train.py (or any Hugging Face causal-LM folder)")
    return folder


def load_model_tokenizer(path):
    """The tokenizer saved with a model folder (any HF tokenizer; the fast one for batch encoding)."""
    from transformers import AutoTokenizer

    folder = _check_model_folder(path)
    try:
        return AutoTokenizer.from_pretrained(str(folder))
    except (OSError, ValueError) as e:
        raise UserError(f"{folder}: cannot load its tokenizer ({str(e).splitlines()[0]}); save the tokenizer with "
                        "the model")


def load_scorer(paths, dtype: torch.dtype, device=None):
    """A frozen causal LM, or a logit-averaging TeacherEnsemble of several, on ``device`` (default: CUDA when there
    is one, else the CPU)."""
    from models import TeacherEnsemble, freeze, load_causal_lm

    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    if len(paths) == 1:
        return freeze(load_causal_lm(paths[0], dtype=dtype, device=device))
    return freeze(TeacherEnsemble.from_pretrained(list(paths), dtype=dtype, device=device))


def _max_positions(paths) -> int | None:
    from transformers import AutoConfig

    from models import max_positions

    limits = [x for x in (max_positions(AutoConfig.from_pretrained(str(p))) for p in paths) if x]
    return min(limits) if limits else None


# ----------------------------------------------------------------------------------------------------------------------
# the training callback


class BlimpCallback(TrainerCallback):
    """Score the first ``pairs_per_file`` pairs of each BLiMP file every ``every_steps`` optimizer steps and log
    ``blimp_acc`` (mean over phenomena), ``blimp_acc_files`` (mean over files) and ``blimp_<phenomenon>``.

        cb = BlimpCallback("data/blimp", every_steps=500, pairs_per_file=20)
        trainer = Trainer(model=..., args=..., processing_class=tokenizer, ...)
        cb.attach(trainer)   # trainer.add_callback(cb) unless already there; cb.trainer = trainer

    With the trainer attached, the metrics go through ``trainer.log`` and so reach wandb/tensorboard and
    ``state.log_history``; without it they are only appended to ``state.log_history`` and printed. The model and
    tokenizer come from the callback's ``model``/``processing_class`` arguments (or pass ``tokenizer=``). The pairs
    are read at construction (a bad folder fails before training) and tokenized once. The model's train/eval mode is
    restored afterwards. Only the main process scores.
    """

    def __init__(self, blimp_dir, every_steps: int = 500, pairs_per_file: int = 20, batch_size: int = 64,
                 prefix: str = "bos", tokenizer=None, trainer=None):
        self.pairs = load_pairs(blimp_dir, pairs_per_file)
        self.every_steps, self.batch_size, self.prefix = every_steps, batch_size, prefix
        self.tokenizer, self.trainer = tokenizer, trainer
        self._seqs = None
        self.last_metrics: dict | None = None

    def attach(self, trainer):
        if self not in trainer.callback_handler.callbacks:  # already given as Trainer(callbacks=[cb])
            trainer.add_callback(self)
        self.trainer = trainer
        return self

    def evaluate(self, model, tokenizer=None) -> dict:
        """Score the subset now and return the metrics (does not log)."""
        if self._seqs is None:
            tok = tokenizer or self.tokenizer
            if tok is None:
                raise ValueError("BlimpCallback needs a tokenizer: pass tokenizer= or give the Trainer a "
                                 "processing_class")
            self._seqs = encode_pairs(tok, self.pairs, self.prefix)
        was_training = model.training
        model.eval()
        try:
            s = score_sequences(model, self._seqs, 2 * self.batch_size)
        finally:
            model.train(was_training)
        res = summarize(self.pairs, list(zip(s[0::2], s[1::2])))
        metrics = {"blimp_acc": res["averages"]["phenomena"], "blimp_acc_files": res["averages"]["files"]}
        if metrics["blimp_acc"] is None:  # only supplement files
            metrics["blimp_acc"] = metrics["blimp_acc_files"]
        metrics.update({f"blimp_{k}": v["acc"] for k, v in res["phenomena"].items()})
        if res["averages"]["supplement"] is not None:
            metrics["blimp_supplement"] = res["averages"]["supplement"]
        return metrics

    def on_step_end(self, args, state, control, model=None, processing_class=None, **kwargs):
        if state.global_step % self.every_steps or not state.is_world_process_zero or model is None:
            return
        metrics = self.evaluate(model, self.tokenizer or processing_class)
        self.last_metrics = metrics
        if self.trainer is not None:
            self.trainer.log(dict(metrics))
        else:
            state.log_history.append({**metrics, "step": state.global_step})
            print(f"step {state.global_step}: blimp_acc {metrics['blimp_acc']:.4f}")


# ----------------------------------------------------------------------------------------------------------------------
# command line


def _parse_model_flag(text: str) -> tuple[str, str]:
    name, sep, path = text.partition("=")
    if not sep:  # a bare folder: name it after the folder
        return Path(text).name or text, text
    if not name or not path:
        raise UserError(f"--model {text!r}: expected NAME=PATH")
    return name, path


def _parse_ensemble_flag(text: str) -> tuple[str, list[str]]:
    name, sep, paths = text.partition("=")
    folders = [p for p in paths.split(",") if p]
    if not sep or not name or not folders:
        raise UserError(f"--ensemble {text!r}: expected NAME=PATH1,PATH2")
    return name, folders


def _safe_name(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._+-]+", "_", name).strip("._") or "model"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog="\n\n".join(__doc__.split("\n\n")[1:3]))
    add_config_args(parser, DEFAULT_CONFIG)
    parser.set_defaults(config=None)  # None: use config/eval.yaml only if it exists (flags may give everything)
    parser.add_argument("--blimp-dir", help="folder of JSON-lines pair files (eval.blimp_dir)")
    parser.add_argument("--model", action="append", default=[], metavar="NAME=PATH", help="a model folder to score "
                        "(repeatable; replaces the config's models and ensembles)")
    parser.add_argument("--ensemble", action="append", default=[], metavar="NAME=PATH1,PATH2",
                        help="folders scored as one logit-averaged model (repeatable)")
    parser.add_argument("--output-dir", help="where results, table.md and blimp.png go (eval.output_dir)")
    parser.add_argument("--prefix", choices=["bos", "eos"], help="conditioning token (eval.prefix)")
    parser.add_argument("--batch-size", type=int, help="pairs per forward pass (eval.batch_size)")
    parser.add_argument("--precision", choices=["fp32", "bf16"], help="model dtype while scoring (eval.precision)")
    parser.add_argument("--max-pairs-per-file", type=int, help="score only the first N pairs per file")
    parser.add_argument("--plot-only", nargs="+", metavar="RESULT_JSON", help="redraw table.md and blimp.png in the "
                        "output folder from saved result JSONs; scores nothing")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    return parser


def resolve_config(args) -> EvalConfig:
    """YAML (explicit --config, else config/eval.yaml if present), then dotted overrides, then flags."""
    path = args.config or (DEFAULT_CONFIG if Path(DEFAULT_CONFIG).is_file() else None)
    raw = read_yaml(path) if path else {}
    raw = apply_overrides(raw, args.overrides)
    section = raw.setdefault("eval", {})
    if not isinstance(section, dict):
        raise UserError(f"{path or 'command line'}: eval: expected a mapping of keys")
    if args.model or args.ensemble:
        section["models"] = dict(_parse_model_flag(m) for m in args.model)
        section["ensembles"] = dict(_parse_ensemble_flag(e) for e in args.ensemble)
    for flag, key in (("blimp_dir", "blimp_dir"), ("output_dir", "output_dir"), ("prefix", "prefix"),
                      ("batch_size", "batch_size"), ("precision", "precision"),
                      ("max_pairs_per_file", "max_pairs_per_file")):
        if getattr(args, flag) is not None:
            section[key] = getattr(args, flag)
    section.setdefault("models", {})  # the schema requires the key; --ensemble alone is enough
    try:
        return build(EvalConfig, raw)
    except ConfigError as e:
        hint = "; give --blimp-dir" if e.key == "eval.blimp_dir" else (
            "; give --model NAME=PATH" if e.key == "eval.models" else "")
        raise UserError(f"{path or 'command line'}: {e}{hint}") from None


def write_summary(results_by_model: dict, out_dir) -> str:
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    table = markdown_table(results_by_model)
    (out / "table.md").write_text(table, encoding="utf-8")
    plot_results(results_by_model, out / "blimp.png")
    return table


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    if args.help_config:
        print(describe(EvalConfig))
        return 0
    if args.plot_only:
        out_dir = args.output_dir or "results"
        table = write_summary(load_results(args.plot_only), out_dir)
        print(table + f"\nwrote {Path(out_dir) / 'table.md'} and {Path(out_dir) / 'blimp.png'}")
        return 0

    run(resolve_config(args), progress=not args.no_progress)
    return 0


def run(cfg: EvalConfig, progress: bool = True) -> dict:
    """Score every model and ensemble of ``cfg`` and write results, table.md and blimp.png; returns the results."""
    e = cfg.eval
    scorers = {n: [p] for n, p in e.models.items()}
    for n, paths in e.ensembles.items():
        if n in scorers:
            raise UserError(f"name {n!r} is used by a model and an ensemble; rename one")
        if not paths:
            raise UserError(f"eval.ensembles.{n}: list at least one model folder")
        scorers[n] = paths

    # everything a user can get wrong is checked before the first forward pass
    pairs = load_pairs(e.blimp_dir, e.max_pairs_per_file)
    encoded, cache = {}, {}
    for name, paths in scorers.items():
        tok = load_model_tokenizer(paths[0])
        for p in paths[1:]:
            _check_model_folder(p)
        # the whole tokenizer definition (vocab, merges, normaliser) decides the ids
        spec = tok.backend_tokenizer.to_str() if tok.is_fast else str(Path(paths[0]).resolve())
        key = (spec, prefix_token_id(tok, e.prefix))
        if key not in cache:  # models sharing a tokenizer share the token ids
            cache[key] = encode_pairs(tok, pairs, e.prefix)
        encoded[name] = cache[key]
        limit = _max_positions(paths)
        longest = max(range(len(cache[key])), key=lambda i: len(cache[key][i]))
        if limit and len(cache[key][longest]) > limit:
            p = pairs[longest // 2]
            raise UserError(f"{p.file} line {p.line}: {len(cache[key][longest])} tokens exceed model {name!r}'s "
                            f"{limit} positions")
    print(f"{len(pairs)} pairs from {len(set(p.file for p in pairs))} files in {e.blimp_dir}; "
          f"models: {', '.join(scorers)}", file=sys.stderr)

    out = Path(e.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    save_config(cfg, out, "eval_config.yaml")
    dtype = torch.bfloat16 if e.precision == "bf16" else torch.float32
    results = {}
    settings = {k: v for k, v in to_dict(cfg)["eval"].items() if k not in ("models", "ensembles")}
    for name, paths in scorers.items():
        model = load_scorer(paths, dtype)
        t0 = time.perf_counter()
        s = score_sequences(model, encoded[name], 2 * e.batch_size, progress=progress, desc=name)
        seconds = time.perf_counter() - t0
        del model
        res = summarize(pairs, list(zip(s[0::2], s[1::2])))
        res = {"model": name, "paths": [str(p) for p in paths], **res,
               "settings": {**settings, "seconds": round(seconds, 1)}}
        path = out / f"{_safe_name(name)}.json"
        path.write_text(json.dumps(res, indent=1), encoding="utf-8")
        avg = res["averages"]
        blimp = "–" if avg["phenomena"] is None else f"{100 * avg['phenomena']:.1f}"
        print(f"{name}: phenomena avg {blimp}, files avg {100 * avg['files']:.1f} ({res['counts']['pairs']} pairs, "
              f"{seconds:.0f} s) -> {path}", file=sys.stderr)
        results[name] = res
    table = write_summary(results, out)
    print(table)
    print(f"wrote {out / 'table.md'} and {out / 'blimp.png'}", file=sys.stderr)
    return results


if __name__ == "__main__":
    sys.exit(run_cli(main))
