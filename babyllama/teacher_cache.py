"""Offline teacher cache: the teachers' top-k distribution per chunk, written once and reused every later epoch.

With ``data.random_offset`` off the training chunks are fixed, so the teachers see the same inputs every epoch and
their outputs repeat. ``TeacherCache.open_or_build`` runs the (frozen) teachers once over a split, keeps the ``k``
most probable tokens of the combined teacher distribution at temperature T at every position, and stores

    <cache_dir>/<split>-<key>/topk_ids.npy     [chunks, seq, k] uint16 (int32 when the vocab exceeds 65536)
    <cache_dir>/<split>-<key>/topk_logp.npy    [chunks, seq, k] float16 log-probabilities log p_T (full-vocab normalised)
    <cache_dir>/<split>-<key>/input_ids.npy    [chunks, seq] the chunk's tokens: every lookup is checked against them
    <cache_dir>/<split>-<key>/chunk_index.npy  [chunks] the dataset's chunk indices, row order
    <cache_dir>/<split>-<key>/meta.json        settings, and the sha256 of each file above, taken when it was built

memory-mapped on reads. ``key`` hashes the teacher folders' contents, the teacher dtype, temperature, combine mode,
weights, k and the split's token ids, seq length and chunk indices, so a changed teacher or corpus never reads a stale
cache; the folder is written under a temporary name and renamed into place (atomic). Opening a cache checks it before
training starts: every file against its checksum, and the values as log-probabilities (finite, <= 0, log-sum-exp of
each top-k row <= 0 up to fp16 rounding; a few seconds per GB). A damaged or truncated cache is a one-line error naming
the folder to delete, never trained on.

The loss with a cached teacher is ``losses.distillation_loss`` given a ``TopKTeacher`` (see losses.py for how the mass
outside the top-k is treated). BENCHMARKS.md has the measured approximation error per k.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path
import numpy as np
import torch

from babyllama.config import UserError
from babyllama.files import hash_files, model_fingerprint
from babyllama.losses import TopKTeacher, normalized_weights, teacher_log_probs

FORMAT_VERSION = 2  # 2: checksums in meta.json (a version-1 cache has none: its key differs, it is rebuilt)
CACHE_FILES = ("topk_ids.npy", "topk_logp.npy", "input_ids.npy", "chunk_index.npy")
LSE_TOLERANCE = 0.02  # fp16 keeps ~3 significant digits: a top-k row's log-sum-exp can round up to ~0.005 above 0


# ----------------------------------------------------------------------------------------------------------------------
# keys


def dataset_fingerprint(dataset) -> str:
    """sha256 of a ChunkDataset's token ids, seq length and chunk indices."""
    h = hashlib.sha256()
    ids = np.ascontiguousarray(np.asarray(dataset.ids))
    h.update(str(ids.dtype).encode())
    h.update(memoryview(ids).cast("B"))
    h.update(str(dataset.seq_length).encode())
    h.update(np.ascontiguousarray(np.asarray(dataset.indices, dtype=np.int64)).tobytes())
    return h.hexdigest()


def teacher_cache_key(teacher_ids, *, temperature: float, combine: str, weights, k: int, teacher_dtype, dataset) -> str:
    """``teacher_ids``: per teacher, its folder's fingerprint (or any string naming its weights)."""
    spec = {"v": FORMAT_VERSION, "teachers": list(teacher_ids), "T": float(temperature), "combine": combine,
            "weights": None if weights is None else [float(w) for w in weights], "k": int(k),
            "dtype": str(teacher_dtype), "data": dataset_fingerprint(dataset)}
    return hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:20]


# ----------------------------------------------------------------------------------------------------------------------
# the cache


class TeacherCache:
    """A split's cached top-k teacher distributions, looked up by chunk index."""

    def __init__(self, folder):
        self.folder = Path(folder)
        fix = f"delete the folder {self.folder} and run again to rebuild it"
        try:
            self.meta = json.loads((self.folder / "meta.json").read_text())
            sums = self.meta["sha256"]
        except (OSError, ValueError, KeyError, TypeError):
            raise UserError(f"{self.folder / 'meta.json'}: unreadable teacher-cache metadata; {fix}") from None
        for name in CACHE_FILES:
            if not (self.folder / name).is_file() or checksum(self.folder / name) != sums.get(name):
                raise UserError(f"{self.folder / name}: the teacher-cache file does not match the checksum written "
                                f"when it was built (damaged or changed since); {fix}")
        # a file cut short ("mmap length is greater than file size") fails its checksum above, before this
        self.ids = np.load(self.folder / "topk_ids.npy", mmap_mode="r")
        self.logp = np.load(self.folder / "topk_logp.npy", mmap_mode="r")
        self.tokens = np.load(self.folder / "input_ids.npy", mmap_mode="r")
        chunk_index = np.load(self.folder / "chunk_index.npy")
        problem = logp_problem(self.logp)
        if problem:
            raise UserError(f"{self.folder / 'topk_logp.npy'}: {problem}, so these are not log-probabilities; {fix}")
        self.row_of = np.full(int(chunk_index.max()) + 1 if len(chunk_index) else 0, -1, dtype=np.int64)
        self.row_of[chunk_index] = np.arange(len(chunk_index))

    @classmethod
    def open_or_build(cls, cache_dir, split: str, dataset, teachers, *, k: int, temperature: float, combine: str,
                      weights=None, batch_size: int = 32, key: str | None = None, teacher_ids=None,
                      verbose: bool = False) -> "TeacherCache":
        """Open ``<cache_dir>/<split>-<key>`` or build it by running ``teachers`` over ``dataset`` (a ChunkDataset
        without random offset). ``key`` defaults to ``teacher_cache_key`` over ``teacher_ids`` (the teachers' folder
        fingerprints; required then)."""
        if getattr(dataset, "random_offset", False):
            raise UserError("distillation.teacher_cache needs data.random_offset false: with random offsets the chunks "
                            "change every epoch")
        vocab = teachers[0].config.vocab_size
        if not 1 <= k <= vocab:
            raise UserError(f"distillation.teacher_cache_topk {k} must be between 1 and the vocab size {vocab}")
        if key is None:
            if teacher_ids is None:
                raise ValueError("give key or teacher_ids")
            key = teacher_cache_key(teacher_ids, temperature=temperature, combine=combine, weights=weights, k=k,
                            teacher_dtype=next(teachers[0].parameters()).dtype, dataset=dataset)
        folder = Path(cache_dir) / f"{split}-{key}"
        if folder.is_dir():  # written whole by a rename: anything missing or changed since fails verification
            if verbose:
                print(f"teacher cache: {folder} (cached)")
            return cls(folder)
        build_cache(folder, dataset, teachers, k=k, temperature=temperature, combine=combine, weights=weights,
                    batch_size=batch_size, key=key)
        if verbose:
            print(f"teacher cache: top-{k} of {len(dataset):,} chunks -> {folder}")
        return cls(folder)

    def lookup(self, chunk_index: torch.Tensor, input_ids: torch.Tensor) -> TopKTeacher | None:
        """The cached top-k for a batch, or None when a chunk is not in this cache or its tokens differ."""
        idx = chunk_index.detach().cpu().numpy().astype(np.int64).reshape(-1)
        if idx.size == 0 or idx.min() < 0 or idx.max() >= len(self.row_of):
            return None
        rows = self.row_of[idx]
        if (rows < 0).any():
            return None
        order = np.argsort(rows)
        sorted_rows = rows[order]
        inv = np.empty_like(order)
        inv[order] = np.arange(len(order))
        tokens = torch.from_numpy(self.tokens[sorted_rows][inv].astype(np.int64))
        if tokens.shape != input_ids.shape or not torch.equal(tokens, input_ids.detach().cpu()):
            return None
        ids = torch.from_numpy(self.ids[sorted_rows][inv].astype(np.int64))
        logp = torch.from_numpy(self.logp[sorted_rows][inv]).float()
        device = input_ids.device
        return TopKTeacher(ids.to(device, non_blocking=True), logp.to(device, non_blocking=True))


def checksum(path) -> str:
    return hash_files([path])


def logp_problem(logp, rows_per_block: int = 1 << 16) -> str | None:
    """Why a [..., k] array of cached top-k log-probabilities is not one, or None: every value finite and <= 0, and
    each row's log-sum-exp <= 0 (the k tokens hold at most all the mass), up to LSE_TOLERANCE. Reads in blocks."""
    flat = logp.reshape(-1, logp.shape[-1])
    for start in range(0, len(flat), rows_per_block):
        block = np.asarray(flat[start:start + rows_per_block], dtype=np.float64)
        if not np.isfinite(block).all():
            return f"row {start + int(np.argwhere(~np.isfinite(block))[0, 0])} holds a non-finite value"
        if (block > 0).any():
            return f"row {start + int(np.argwhere(block > 0)[0, 0])} holds a value above 0"
        top = block.max(-1, keepdims=True)
        lse = (top + np.log(np.exp(block - top).sum(-1, keepdims=True)))[:, 0]
        if (lse > LSE_TOLERANCE).any():
            bad = int(np.argmax(lse > LSE_TOLERANCE))
            return f"row {start + bad} has log-sum-exp {lse[bad]:.3f} > 0 (probabilities summing past 1)"
    return None


@torch.no_grad()
def build_cache(folder, dataset, teachers, *, k: int, temperature: float, combine: str, weights=None,
                batch_size: int = 32, key: str = "", chunk_size: int = 1024):
    """Run the teachers over every chunk of ``dataset`` and write the top-k cache folder atomically."""
    folder = Path(folder)
    n, seq = len(dataset), dataset.seq_length
    vocab = teachers[0].config.vocab_size
    w = normalized_weights(weights, len(teachers))
    tmp = folder.with_name(f"{folder.name}.{os.getpid()}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    id_dtype = np.uint16 if vocab <= 65536 else np.int32
    ids_out = np.lib.format.open_memmap(tmp / "topk_ids.npy", mode="w+", dtype=id_dtype, shape=(n, seq, k))
    logp_out = np.lib.format.open_memmap(tmp / "topk_logp.npy", mode="w+", dtype=np.float16, shape=(n, seq, k))
    tok_out = np.lib.format.open_memmap(tmp / "input_ids.npy", mode="w+", dtype=id_dtype, shape=(n, seq))
    chunk_index = np.asarray(dataset.indices, dtype=np.int64)
    device = next(teachers[0].parameters()).device
    with torch.inference_mode():
        for start in range(0, n, batch_size):
            stop = min(n, start + batch_size)
            x = torch.stack([dataset[i]["input_ids"] for i in range(start, stop)]).to(device)
            logits = [t(input_ids=x, use_cache=False).logits for t in teachers]
            flat = [lg.reshape(-1, vocab) for lg in logits]
            vals, idx = [], []
            for s0 in range(0, flat[0].shape[0], chunk_size):
                lp = teacher_log_probs([f[s0:s0 + chunk_size] for f in flat], w, combine, temperature)
                v, i = lp.topk(k, dim=-1, sorted=True)
                vals.append(v)
                idx.append(i)
            ids_out[start:stop] = torch.cat(idx).reshape(stop - start, seq, k).cpu().numpy().astype(id_dtype)
            logp_out[start:stop] = torch.cat(vals).reshape(stop - start, seq, k).cpu().numpy().astype(np.float16)
            tok_out[start:stop] = x.cpu().numpy().astype(id_dtype)
    for arr in (ids_out, logp_out, tok_out):
        arr.flush()
    del ids_out, logp_out, tok_out
    np.save(tmp / "chunk_index.npy", chunk_index)
    (tmp / "meta.json").write_text(json.dumps({"version": FORMAT_VERSION, "key": key, "k": k, "chunks": n,
                                               "seq_length": seq, "vocab": vocab, "temperature": temperature,
                                               "combine": combine, "weights": w,
                                               "sha256": {f: checksum(tmp / f) for f in CACHE_FILES}}, indent=1))
    try:
        os.replace(tmp, folder)  # atomic: a killed run never leaves a half-written cache under the final name
    except OSError:
        shutil.rmtree(tmp, ignore_errors=True)  # another process finished the same cache first
        if not (folder / "meta.json").is_file():
            raise


def open_caches(cfg, teachers, datasets: dict, batch_size: int = 32, verbose: bool = False) -> dict:
    """``{split: TeacherCache}`` for a DistillConfig with ``distillation.teacher_cache`` on, built where missing."""
    d = cfg.distillation
    folder = Path(d.teacher_cache_dir) if d.teacher_cache_dir else Path(cfg.data.cache_dir) / "teacher"
    prints = [model_fingerprint(p) for p in d.teachers]
    return {split: TeacherCache.open_or_build(folder, split, ds, teachers, k=d.teacher_cache_topk,
                                              temperature=d.temperature, combine=d.teacher_combine,
                                              weights=d.teacher_weights, batch_size=batch_size, teacher_ids=prints,
                                              verbose=verbose)
            for split, ds in datasets.items()}
