"""Offline teacher cache: the teachers' top-k distribution per chunk, written once and reused every later epoch.

With ``data.random_offset`` off the training chunks are fixed, so the teachers see the same inputs every epoch and
their outputs repeat. ``TeacherCache.open_or_build`` runs the (frozen) teachers once over a split, keeps the ``k``
most probable tokens of the combined teacher distribution at temperature T at every position, and stores

    <cache_dir>/<split>-<key>/topk_ids.npy     [chunks, seq, k] uint16 (int32 when the vocab exceeds 65536)
    <cache_dir>/<split>-<key>/topk_logp.npy    [chunks, seq, k] float16 log-probabilities log p_T (full-vocab normalised)
    <cache_dir>/<split>-<key>/input_ids.npy    [chunks, seq] the chunk's tokens: every lookup is checked against them
    <cache_dir>/<split>-<key>/chunk_index.npy  [chunks] the dataset's chunk indices, row order
    <cache_dir>/<split>-<key>/meta.json

memory-mapped on reads. ``key`` hashes the teacher folders' contents, the teacher dtype, temperature, combine mode,
weights, k and the split's token ids, seq length and chunk indices, so a changed teacher or corpus never reads a stale
cache; the folder is written under a temporary name and renamed into place (atomic).

The loss with a cached teacher (``topk_distillation_loss``) knows p_T only on the k cached tokens. ``tail``:
- ``uniform`` (config default): the top-k probabilities are kept as they are and the missing mass 1 - sum(top-k) is
  spread uniformly over the other V - k tokens.
- ``renorm``: p is renormalised over the top-k tokens; tokens outside get probability 0 (much larger error on flat
  teachers: it drops the tail's pull on the student entirely).
With k = V both are exact. See BENCHMARKS.md for the measured approximation error per k.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch

from config import UserError

FORMAT_VERSION = 1


class TopKTeacher(NamedTuple):
    """A cached teacher distribution for a batch: token ids [B,T,k] (int64) and their log-probs at T [B,T,k] (fp32)."""

    ids: torch.Tensor
    logp: torch.Tensor


# ----------------------------------------------------------------------------------------------------------------------
# keys


def folder_fingerprint(folder) -> str:
    """sha256 over the names and contents of a model folder's top-level files (checkpoints/ subfolders excluded)."""
    folder = Path(folder)
    h = hashlib.sha256()
    for f in sorted(p for p in folder.iterdir() if p.is_file()):
        if f.name in ("README.md", "metrics.json", "training_args.bin"):
            continue  # written after training, do not change the weights
        h.update(f.name.encode())
        with open(f, "rb") as fh:
            while block := fh.read(1 << 24):
                h.update(block)
    return h.hexdigest()


def dataset_fingerprint(dataset) -> str:
    """sha256 of a ChunkDataset's token ids, seq length and chunk indices."""
    h = hashlib.sha256()
    ids = np.ascontiguousarray(np.asarray(dataset.ids))
    h.update(str(ids.dtype).encode())
    h.update(memoryview(ids).cast("B"))
    h.update(str(dataset.seq_length).encode())
    h.update(np.ascontiguousarray(np.asarray(dataset.indices, dtype=np.int64)).tobytes())
    return h.hexdigest()


def cache_key(teacher_ids, *, temperature: float, combine: str, weights, k: int, teacher_dtype, dataset) -> str:
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
        self.meta = json.loads((self.folder / "meta.json").read_text())
        self.ids = np.load(self.folder / "topk_ids.npy", mmap_mode="r")
        self.logp = np.load(self.folder / "topk_logp.npy", mmap_mode="r")
        self.tokens = np.load(self.folder / "input_ids.npy", mmap_mode="r")
        chunk_index = np.load(self.folder / "chunk_index.npy")
        self.row_of = np.full(int(chunk_index.max()) + 1 if len(chunk_index) else 0, -1, dtype=np.int64)
        self.row_of[chunk_index] = np.arange(len(chunk_index))
        self.k = int(self.meta["k"])

    @classmethod
    def open_or_build(cls, cache_dir, split: str, dataset, teachers, *, k: int, temperature: float, combine: str,
                      weights=None, batch_size: int = 32, key: str | None = None, teacher_ids=None,
                      verbose: bool = False) -> "TeacherCache":
        """Open ``<cache_dir>/<split>-<key>`` or build it by running ``teachers`` over ``dataset`` (a ChunkDataset
        without random offset). ``key`` defaults to ``cache_key`` over ``teacher_ids`` (the teachers' folder
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
            key = cache_key(teacher_ids, temperature=temperature, combine=combine, weights=weights, k=k,
                            teacher_dtype=next(teachers[0].parameters()).dtype, dataset=dataset)
        folder = Path(cache_dir) / f"{split}-{key}"
        if (folder / "meta.json").is_file():
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


@torch.no_grad()
def build_cache(folder, dataset, teachers, *, k: int, temperature: float, combine: str, weights=None,
                batch_size: int = 32, key: str = "", chunk_size: int = 1024):
    """Run the teachers over every chunk of ``dataset`` and write the top-k cache folder atomically."""
    from models import normalized_weights, teacher_log_probs

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
                                               "combine": combine, "weights": w}, indent=1))
    try:
        os.replace(tmp, folder)  # atomic: a killed run never leaves a half-written cache under the final name
    except OSError:
        shutil.rmtree(tmp, ignore_errors=True)  # another process finished the same cache first
        if not (folder / "meta.json").is_file():
            raise


# ----------------------------------------------------------------------------------------------------------------------
# the loss against a cached top-k teacher


class _FusedTopKDistillLoss(torch.autograd.Function):
    """Like distill_train._FusedDistillLoss, with the teacher given as top-k (ids, log-probs) per position."""

    @staticmethod
    def forward(ctx, student, targets, kl_mask, topk_ids, topk_logp, ce_scale, kl_scale, temperature, chunk, tail):
        from distill_train import loss_chunks

        n, V = student.shape
        k = topk_ids.shape[1]
        grad = torch.empty_like(student) if student.requires_grad else None
        ce_sum = torch.zeros((), dtype=torch.float32, device=student.device)
        kl_sum = torch.zeros((), dtype=torch.float32, device=student.device)
        inv_t = 1.0 / temperature
        for sl, s, tgt0, valid, m in loss_chunks(student, targets, kl_mask, chunk):
            ids = topk_ids[sl]
            lp = topk_logp[sl].float()
            lse1 = torch.logsumexp(s, dim=-1, keepdim=True)
            ce_sum -= ((s.gather(1, tgt0) - lse1) * valid).sum()
            sT = s * inv_t if temperature != 1.0 else s
            lseT = torch.logsumexp(sT, dim=-1, keepdim=True) if temperature != 1.0 else lse1
            log_q_k = sT.gather(1, ids) - lseT  # [n, k]
            if tail == "renorm" or k == V:
                lp = lp - torch.logsumexp(lp, dim=-1, keepdim=True)
                p = lp.exp()
                r = torch.zeros_like(lseT)
                kl_rows = (p * (lp - log_q_k)).sum(-1, keepdim=True)
            else:
                p = lp.exp()
                mass = (1.0 - p.sum(-1, keepdim=True)).clamp_min(0.0)
                r = mass / (V - k)
                sum_log_q = sT.sum(-1, keepdim=True) - V * lseT
                tail_kl = torch.where(mass > 0, mass * torch.log(r.clamp_min(1e-30)) - r * (sum_log_q - log_q_k.sum(
                    -1, keepdim=True)), torch.zeros_like(mass))
                kl_rows = (p * (lp - log_q_k)).sum(-1, keepdim=True) + tail_kl
            kl_sum += (kl_rows * m).sum()
            if grad is not None:
                a = valid * ce_scale  # CE: softmax(s) - onehot
                b = m * (kl_scale * inv_t)  # KL: (softmax(s/T) - p) / T
                g = (s - lse1).exp_().mul_(a)
                g.add_((sT - lseT).exp_().mul_(b))
                if tail != "renorm" and k != V:
                    g.sub_(r * b)
                g.scatter_add_(1, tgt0, -a)
                g.scatter_add_(1, ids, -(p - r) * b)
                grad[sl] = g.to(grad.dtype)
        ctx.save_for_backward(grad)
        ctx.mark_non_differentiable(ce_sum, kl_sum)
        return ce_scale * ce_sum + kl_scale * kl_sum, ce_sum, kl_sum

    @staticmethod
    def backward(ctx, grad_loss, _grad_ce, _grad_kl):
        (grad,) = ctx.saved_tensors
        return (grad * grad_loss.to(grad.dtype),) + (None,) * 9


def topk_distillation_loss(student_logits, teacher: TopKTeacher, labels, *, alpha: float = 0.5,
                           temperature: float = 2.0, kl_normalization: str = "batchmean", ce_denominator=None,
                           kl_denominator=None, chunk_size: int = 1024, tail: str = "renorm"):
    """``distill_train.distillation_loss`` with the teacher distribution given by a cached top-k (see the module
    docstring for ``tail``). Same normalisation, masking and return value (a ``DistillLoss``)."""
    from distill_train import DistillLoss, loss_scales

    B, T, V = student_logits.shape
    k = teacher.ids.shape[-1]
    if teacher.ids.shape[:2] != (B, T):
        raise ValueError(f"cached teacher {tuple(teacher.ids.shape)} does not match student logits {(B, T, V)}")
    targets, kl_mask, ce_den, kl_den, ce_scale, kl_scale = loss_scales(
        labels, alpha, temperature, kl_normalization, ce_denominator, kl_denominator)
    loss, ce_sum, kl_sum = _FusedTopKDistillLoss.apply(
        student_logits.reshape(B * T, V), targets.reshape(-1), kl_mask.reshape(-1), teacher.ids.reshape(B * T, k),
        teacher.logp.reshape(B * T, k), ce_scale, kl_scale, float(temperature), int(chunk_size), tail)
    return DistillLoss(loss=loss, ce=ce_sum / ce_den, kl=kl_sum / kl_den)


def open_caches(cfg, teachers, datasets: dict, batch_size: int = 32, verbose: bool = False) -> dict:
    """``{split: TeacherCache}`` for a DistillConfig with ``distillation.teacher_cache`` on, built where missing."""
    d = cfg.distillation
    folder = Path(d.teacher_cache_dir) if d.teacher_cache_dir else Path(cfg.data.cache_dir) / "teacher"
    prints = [folder_fingerprint(p) for p in d.teachers]
    return {split: TeacherCache.open_or_build(folder, split, ds, teachers, k=d.teacher_cache_topk,
                                              temperature=d.temperature, combine=d.teacher_combine,
                                              weights=d.teacher_weights, batch_size=batch_size, teacher_ids=prints,
                                              verbose=verbose)
            for split, ds in datasets.items()}
