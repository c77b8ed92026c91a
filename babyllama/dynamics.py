"""Learning over words seen: a run folder's milestone checkpoints (``chck_<N>M/``, each with ``words_seen.json``), the
BabyLM 2025 organisers' fast subsample of the zero-shot suites they are scored on, and one row of suite averages per
checkpoint.

The fast sizes are those of babylm/evaluation-pipeline-2025, ``evaluation_pipeline/collate_preds.py`` (``FAST_SIZES``):
200 pairs per BLiMP file, 50 per supplement file, 100 per EWoK file, the 200 wug items, entity tracking's ``regular``
file whole (its six subsets, 3,152 items), all 1,726 reading words. Their fast items are a fixed subsample shipped as
``evaluation_data/fast_eval/`` (``blimp_fast/``, ``supplement_fast/``, ``ewok_fast/``, ``entity_tracking_fast/``,
``wug_adj_nominalization/``, ``reading/``); pointed at that folder, its items are scored as they are. From the full
files, the fast subsample takes each file's items evenly spaced over the file (item ``i * n // k`` for ``i < k``): the
published files are sorted (an EWoK file's first 100 items are one concept pair), so its first items would be one corner
of it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from babyllama.config import UserError
from babyllama.export import FAST_LAYOUT, FAST_SIZES as ORGANISERS_FAST
from babyllama.words import checkpoint_folders, read_checkpoint_words

# each suite's key in the organisers' collate_preds.py (babyllama/export.py holds their sizes and folders)
THEIR_KEYS = {"blimp": "blimp", "supplement": "blimp_supplement", "ewok": "ewok", "entity_tracking": "entity_tracking",
              "wug": "wug_adj"}
FAST_SIZES = {s: ORGANISERS_FAST[k] for s, k in THEIR_KEYS.items() if isinstance(ORGANISERS_FAST[k], int)}  # per file
FAST_FILES = {"entity_tracking": ("regular",)}  # their entity-tracking sizes: the regular file's six subsets, whole
# the fast_eval folder of each suite's fast items, also the export's <dataset> folder (their wug_past_tense: a task
# this repo does not compute)
FAST_DATASETS = {s: FAST_LAYOUT[k].split("/")[1] for s, k in THEIR_KEYS.items()}
# a curve row's scores: key -> (label, digits); accuracies in %, wug and reading as they are, dev CE in nats per token
CURVE_SCORES = {"dev_ce": ("dev CE", 3), "blimp": ("BLiMP", 1), "supplement": ("supplement", 1), "ewok": ("EWoK", 1),
                "entity_tracking": ("entity tracking", 1), "wug": ("wug rho", 3),
                "eye_tracking": ("eye tracking", 2), "self_paced_reading": ("self-paced reading", 2)}


@dataclass(frozen=True)
class Checkpoint:
    label: str  # chck_1M, chck_250K
    folder: Path
    words_seen: int
    step: int
    epoch: float


def parse_runs(flags) -> dict[str, str]:
    """{name: run folder} from ``--checkpoints NAME=RUN_DIR`` flags (a bare folder is named after itself)."""
    out = {}
    for text in flags:
        name, sep, path = text.partition("=")
        name, path = (name, path) if sep else (Path(text).name, text)
        if not name or not path or name in out:
            raise UserError(f"--checkpoints {text!r}: expected NAME=RUN_DIR, each name once")
        out[name] = path
    return out


def checkpoint_flags(runs: dict[str, list]) -> list[str]:
    """``NAME/chck_<N>=FOLDER`` model flags, one per checkpoint of ``runs`` ({name: [Checkpoint]})."""
    return [f"{n}/{c.label}={c.folder}" for n, cks in runs.items() for c in cks]


def find_checkpoints(run_dir) -> list[Checkpoint]:
    """The milestone checkpoints of a training run's output folder (``words.SaveAtWords``), by words seen; refuses a
    folder without any, a damaged ``words_seen.json``, and a checkpoint whose tokenizer is not its siblings' (the same
    ids must mean the same text all along a curve)."""
    run = Path(run_dir)
    if not run.is_dir():
        raise UserError(f"{run}: run folder not found (eval.checkpoints / --checkpoints)")
    out = []
    for f in checkpoint_folders(run):
        w = read_checkpoint_words(f)
        out.append(Checkpoint(f.name, f, w["words_seen"], w["step"], w["epoch"]))
    if not out:
        raise UserError(f"{run}: no chck_<N> checkpoints (folders with words_seen.json) in this run folder; train "
                        "with milestones (training.save_words), or give the model folder to --model instead")
    check_tokenizers(out)
    return out


def tokenizer_spec(folder) -> str:
    """A model folder's whole tokenizer definition (vocab, merges, normaliser, specials) as text."""
    from transformers import AutoTokenizer

    try:
        tok = AutoTokenizer.from_pretrained(str(folder))
    except Exception as e:  # noqa: BLE001 - a corrupt tokenizer.json raises a bare Exception from the Rust library
        raise UserError(f"{folder}: cannot load its tokenizer ({(str(e).splitlines() or [type(e).__name__])[0]})")
    return tok.backend_tokenizer.to_str() if tok.is_fast else json.dumps(tok.get_vocab(), sort_keys=True)


def check_tokenizers(checkpoints: list[Checkpoint]):
    """Every checkpoint of a run has its first checkpoint's tokenizer."""
    first = tokenizer_spec(checkpoints[0].folder)
    for c in checkpoints[1:]:
        if tokenizer_spec(c.folder) != first:
            raise UserError(f"{c.folder}: its tokenizer differs from its siblings' ({checkpoints[0].folder} ...): it "
                            "was trained with another tokenizer; move it out of the run folder, or retrain the run")


def expand_fast_eval(dirs: list[str]) -> tuple[list[str], bool]:
    """Pair folders with the organisers' ``fast_eval`` folder replaced by its subfolders; True when one was given (its
    items are the fast subsample already)."""
    out, organisers = [], False
    for d in dirs:
        subs = [Path(d) / s for s in FAST_DATASETS.values() if (Path(d) / s).is_dir()]
        if subs and not any(Path(d).glob("*.json*")):
            out += [str(s) for s in subs]
            organisers = True
        else:
            out.append(d)
    return out, organisers


def fast_subsample(pairs: list) -> list:
    """The fast evaluation's items of ``pairs`` (``scoring.Pair``, in file order): per file, ``FAST_SIZES`` items of
    its suite evenly spaced over the file; of a ``FAST_FILES`` suite, its listed files whole; other suites whole."""
    by_file: dict[str, list] = {}
    for p in pairs:
        by_file.setdefault(p.file, []).append(p)
    out = []
    for name, items in by_file.items():
        suite = items[0].suite
        if suite in FAST_FILES:
            out += items if name in FAST_FILES[suite] else []
            continue
        k = min(FAST_SIZES.get(suite, len(items)), len(items))
        out += [items[i * len(items) // k] for i in range(k)]
    return out


def curve_scores(result: dict) -> dict:
    """A scored model's suite averages (``CURVE_SCORES`` keys): BLiMP's phenomena average and the supplement's in %,
    EWoK and entity tracking in %, wug's rho; a suite it was not scored on is left out."""
    avg, out = result["averages"], {}
    if avg.get("phenomena") is not None:
        out["blimp"] = 100 * avg["phenomena"]
    if avg.get("supplement") is not None:
        out["supplement"] = 100 * avg["supplement"]
    for suite, r in result.get("suites", {}).items():
        if r["avg"] is not None:
            out[suite] = r["avg"] if suite == "wug" else 100 * r["avg"]
    return out


def curve_row(ck: Checkpoint, scores: dict) -> dict:
    return {"checkpoint": ck.label, "words_seen": ck.words_seen, "step": ck.step, "epoch": ck.epoch,
            "scores": scores}


def reading_scores(result: dict) -> dict:
    """A reading result's two scores (``babyllama/reading.py``: eye tracking, self-paced reading with spillover)."""
    return {k: result[k] for k in ("eye_tracking", "self_paced_reading")}


def read_curves(path) -> dict:
    """A curves file written by ``eval_blimp.py --checkpoints`` (or the pipeline's dynamics stage)."""
    path = Path(path)
    try:
        c = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise UserError(f"{path}: cannot read the curves file ({type(e).__name__}: {e})")
    if not isinstance(c, dict) or not isinstance(c.get("curves"), dict):
        raise UserError(f"{path}: not a curves file (no 'curves'); write one with eval_blimp.py --checkpoints")
    return c
