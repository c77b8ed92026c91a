"""Files that are never left half-written, and content hashes: the two things every stage needs from the disk."""

from __future__ import annotations

import hashlib
import json
import os
import re
from pathlib import Path

# files a training run writes after the weights; they do not change what the model computes
NOT_WEIGHTS = ("README.md", "metrics.json", "training_args.bin", "config.yaml")


def result_file(name: str) -> str:
    """A model's name as a file or folder name: anything but letters, digits and ``._+-`` becomes ``_``."""
    return re.sub(r"[^A-Za-z0-9._+-]+", "_", name).strip("._") or "model"


def write_atomic(path, data) -> Path:
    """Write ``data`` (str, bytes, or a function that writes to a binary file handle) to a hidden temp file beside
    ``path``, then rename it into place: a killed process never leaves half a file under the final name."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as fh:
            if callable(data):
                data(fh)
            else:
                fh.write(data.encode("utf-8") if isinstance(data, str) else data)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def write_results(output, results: dict, table: str):
    """The ``--output`` of a scoring script: the results as JSON at ``output`` and the table beside it as ``.md``."""
    write_atomic(output, json.dumps(results, indent=1))
    write_atomic(Path(output).with_suffix(".md"), table)


def move_aside(folder) -> Path:
    """Rename ``folder`` to ``<folder>.old-<n>`` (first free n): nothing trained is ever deleted."""
    folder = Path(folder)
    n = 1
    while folder.with_name(f"{folder.name}.old-{n}").exists():
        n += 1
    target = folder.with_name(f"{folder.name}.old-{n}")
    folder.rename(target)
    return target


def hash_files(paths, root=None) -> str:
    """sha256 over the names (relative to ``root``, else the base name) and contents of ``paths``, in the given order."""
    h = hashlib.sha256()
    for p in map(Path, paths):
        h.update(str(p.relative_to(root) if root else p.name).encode() + b"\0")
        with open(p, "rb") as fh:
            while block := fh.read(1 << 24):
                h.update(block)
        h.update(b"\0")
    return h.hexdigest()


def model_fingerprint(folder) -> str:
    """Hash of a model folder's top-level files (weights, config, tokenizer); checkpoints and the files written after
    training (model card, metrics) are left out."""
    folder = Path(folder)
    return hash_files(sorted(p for p in folder.iterdir() if p.is_file() and p.name not in NOT_WEIGHTS
                             and not p.name.startswith(".")))
