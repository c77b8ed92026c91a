"""A training run's output folder: which runs are finished, their checkpoints and whether one can be resumed, the
settings a resumed run may change, and the checks of the folder before any long work. Used by the training scripts
(``trainer_setup``) and by what reads their folders (the pipeline, finetune.py, push_checkpoints.py, the smoke)."""

from __future__ import annotations

import contextlib
import json
import shutil
from pathlib import Path

import yaml

from babyllama.config import UserError, to_dict
from babyllama.files import move_aside, write_atomic
from babyllama.models import weights_problem


def checkpoints_in(output_dir) -> list[Path]:
    folder = Path(output_dir)
    if not folder.is_dir():
        return []
    found = [p for p in folder.glob("checkpoint-*") if p.is_dir() and p.name.split("-")[-1].isdigit()]
    return sorted(found, key=lambda p: int(p.name.split("-")[-1]))


def checkpoint_problem(folder: Path) -> str | None:
    """Why a checkpoint cannot be resumed from, or None. The Trainer writes trainer_state.json last, so a kill during
    a save leaves a checkpoint without a readable one; a full disk can also leave weights or optimizer state cut
    short."""
    try:
        json.loads((folder / "trainer_state.json").read_text())
    except (OSError, ValueError):
        return "no readable trainer_state.json (a save was interrupted)"
    for f in sorted(folder.iterdir()):
        problem = weights_problem(f) if f.is_file() else None
        if problem:
            return problem
    return None


def is_finished(output_dir) -> bool:
    """A run's final files are written last, metrics.json among them."""
    return (Path(output_dir) / "metrics.json").is_file()


# A resumed run continues the saved weights, optimizer, lr schedule (the scheduler's state, base lr included, is
# restored from the checkpoint) and data order, so a changed setting would either be ignored (training.lr) or apply to
# the remaining steps only (distillation.alpha); either way config.yaml would no longer describe the run. Only these
# keys, which change where and how the run is logged or stored but not what it computes, may differ on resume.
RESUME_MAY_CHANGE = ("training.report_to", "training.save_minutes", "training.push_to_hub", "training.hub_model_id",
                     "training.save_words", "training.word_budget",
                     "training.blimp_dir", "training.blimp_steps", "training.blimp_pairs_per_file",
                     "training.per_device_batch_size", "data.cache_dir", "training.hf_args.dataloader_num_workers",
                     "training.hf_args.logging_steps", "training.hf_args.save_total_limit",
                     "training.hf_args.disable_tqdm", "training.hf_args.run_name")


def _flatten(d, prefix=""):
    out = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        out.update(_flatten(v, key + ".") if isinstance(v, dict) else {key: v})
    return out


def check_resume_settings(cfg, output_dir):
    """Every setting of ``cfg`` but RESUME_MAY_CHANGE must equal the saved run's (its config.yaml)."""
    saved_path = Path(output_dir) / "config.yaml"
    if not saved_path.is_file():
        return
    saved, now = _flatten(yaml.safe_load(saved_path.read_text()) or {}), _flatten(to_dict(cfg))
    # a passed-through option may be set in one run only; a schema key the saving version did not have is not compared
    hf = "training.hf_args."
    keys = [k for k in now if k in saved or k.startswith(hf)] + [k for k in saved if k not in now and k.startswith(hf)]
    for key in keys:
        a, b = saved.get(key, "unset"), now.get(key, "unset")
        if a != b and key not in RESUME_MAY_CHANGE:
            name = key.replace("training.hf_args.", "training.")
            raise UserError(f"{saved_path}: --resume with {name}={b!r}, but the saved run has {a!r}; a resumed run "
                            "continues the saved optimizer, lr schedule and data order, so it cannot take a new value: "
                            "restore the setting, or train afresh in another training.output_dir or with --overwrite")


def prepare_output_dir(cfg, resume: bool, overwrite: bool) -> str | None:
    """Check the output folder before anything is written; return the checkpoint to resume from, or None.

    A finished model (metrics.json) is never overwritten: it is refused, or with ``overwrite`` moved aside to
    ``<output_dir>.old-<n>``; the same for checkpoints of an unfinished run without ``resume``. ``resume`` continues
    from the newest intact checkpoint, refusing settings that differ from the saved run's."""
    if resume and overwrite:
        raise UserError("--resume and --overwrite contradict each other (continue the run, or move it aside and start "
                        "afresh); pass one of them")
    out = Path(cfg.training.output_dir)
    if out.exists() and not out.is_dir():
        raise UserError(f"{out}: training.output_dir exists and is not a folder; pick another path")
    found = checkpoints_in(out)
    if overwrite and (is_finished(out) or found):
        print(f"--overwrite: moved the earlier run to {move_aside(out)}")
        return None
    if is_finished(out):
        raise UserError(f"{out} holds a finished model (metrics.json); pick another training.output_dir, or pass "
                        f"--overwrite to move it aside to {out.name}.old-<n> and train again")
    if not resume:
        if found:
            raise UserError(f"{out} already has {found[-1].name}; pass --resume to continue it, or --overwrite to move "
                            "it aside and start afresh")
        return None
    check_resume_settings(cfg, out)
    for c in reversed(found):
        problem = checkpoint_problem(c)
        if problem is None:
            print(f"resuming from {c}")
            return str(c)
        print(f"--resume: skipping {c}: {problem}")
    print(f"--resume: no intact checkpoint in {out}; starting from scratch")
    return None


def check_writable(folder: Path, free_bytes_needed: int = 0):
    """The output folder can be written and holds ``free_bytes_needed`` more bytes (one checkpoint). Folders made
    for the test are removed again: a run refused later leaves no empty output folder."""
    made = [p for p in (folder, *folder.parents) if not p.exists()]
    try:
        folder.mkdir(parents=True, exist_ok=True)
        write_atomic(folder / ".write-test", b"ok")
        (folder / ".write-test").unlink()
        free = shutil.disk_usage(folder).free
    except OSError as e:
        raise UserError(f"{folder}: cannot write here ({e.strerror}); free the disk, fix the permissions, or pick "
                        "another training.output_dir") from None
    finally:
        for d in made:
            with contextlib.suppress(OSError):
                d.rmdir()
    if free < free_bytes_needed:
        raise UserError(f"{folder}: {free / 1e9:.2f} GB free, but one checkpoint needs about "
                        f"{free_bytes_needed / 1e9:.2f} GB; free disk space or pick another training.output_dir")


def checkpoint_bytes(n_params: int) -> int:
    """fp32 weights + two AdamW moments, plus 10 % for the rest of the state."""
    return int(n_params * 12 * 1.1)
