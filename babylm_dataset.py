"""Token ids of a split, cached on disk, cut into contiguous fixed-length chunks.

The paper concatenates every token of the split and cuts it into contiguous ``seq_length`` chunks (128 for the
student and GPT-2, 256 for the LLaMA teacher); the Trainer's sampler draws a new permutation of the chunks every
epoch. Optionally each training chunk is shifted by a random 0..seq_length-1 tokens (paper footnote 5; off in the
paper's final models). Evaluation uses a fixed random subset of the dev chunks, drawn by seed, so every model is scored
on the same tokens.

Tokenization runs once per split: files are read line by line and encoded in batches by the fast tokenizer's threads
(each line keeps its newline, so newlines stay tokens as in the authors' whole-file encoding). The ids go to
``<cache_dir>/<split>-<key>.npy`` where the key hashes the tokenizer files, the separator settings and each input
file's name and contents: change a corpus file or the tokenizer and the cache is rebuilt, never read stale; a cache
file cut short is encoded again.

``separator`` (``data.separator``, ``data.separator_every``): ``none`` (the paper, authors' code: files are
concatenated as they are), ``<s>`` before each line or file, ``</s>`` after each line or file.

Each training item also carries ``words``, the words that start in its tokens (babyllama/words.py): the trainer's
words-seen count. The tokens after the last whole chunk are dropped, and with them the words that start there.

``share`` (``data.train_share``, train split only): keep the first share of each file's lines, so a subset keeps
every source in its proportion and its text contiguous (1.0, the paper: everything).

``data.curriculum`` (paper appendix B) orders the train files in buckets of sources: the stream is the files bucket by
bucket, and stage s trains ``training.num_epochs`` epochs on the chunks of its first s buckets. The whole curriculum is
one sequence of chunk indices (each epoch a permutation drawn from seed, stage and epoch alone) that the Trainer reads
sequentially, so the chunk at any step, and a resume from any checkpoint, are the same on every run.
"""

from __future__ import annotations

import hashlib
import math
import os
import sys
from pathlib import Path

import numpy as np
import torch
import yaml
from tokenizers import Tokenizer
from torch.utils.data import Dataset

from babyllama.config import UserError
from babyllama.files import write_atomic
from babyllama.words import word_starts
from mrclean import SAME_SOURCE
from tokenizer import tokenizer_fingerprint

SPLIT_SUFFIXES = (".train", ".dev", ".test")
ENCODE_BATCH_LINES = 4096  # lines per encode_batch call: big enough to keep the tokenizer's threads busy


def split_files(folder) -> list[Path]:
    """The corpus files (``*.train``/``*.dev``/``*.test``) of a split folder, sorted by name."""
    folder = Path(folder)
    if not folder.is_dir():
        raise UserError(f"{folder}: split folder not found; run clean_data.py first or fix data.train_dir/dev_dir")
    files = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix in SPLIT_SUFFIXES)
    if not files:
        raise UserError(f"{folder}: no .train/.dev/.test files in this split folder")
    return files


def token_cache_key(files, tokenizer_dir, separator: str = "none", every: str = "lines", share: float = 1.0) -> str:
    """Names the token-id cache of a split: the tokenizer, the separator and share settings and every file's name and
    contents."""
    h = hashlib.sha256()
    h.update(tokenizer_fingerprint(tokenizer_dir).encode())
    h.update(f"{separator}|{every}".encode() if separator != "none" else b"none")
    if share != 1.0:
        h.update(f"share={share!r}".encode())
    for f in files:
        h.update(f.name.encode())
        h.update(hashlib.sha256(f.read_bytes()).digest())
    return h.hexdigest()[:20]


def trained_data(folder) -> dict:
    """The ``data`` section of the config.yaml a model folder was trained with ({} if absent)."""
    try:
        data = (yaml.safe_load((Path(folder) / "config.yaml").read_text()) or {}).get("data") or {}
    except (OSError, yaml.YAMLError, AttributeError):
        data = {}
    return data if isinstance(data, dict) else {}


def trained_separator(folder) -> tuple[str, str]:
    """(data.separator, data.separator_every) a model folder was trained with, from its config.yaml; none if absent."""
    data = trained_data(folder)
    return data.get("separator") or "none", data.get("separator_every") or "lines"


def encode_files(files, tokenizer_dir, separator: str = "none", every: str = "lines", share: float = 1.0,
                 spans: list | None = None) -> np.ndarray:
    """Encode ``files`` into one flat id array (uint16 when the vocab fits, else int32); ``separator`` ``<s>`` goes
    before each line (``every="lines"``) or file, ``</s>`` after; ``share`` < 1 keeps each file's first lines.
    ``spans``, a list, receives each token's (start, end) character offsets in the files' text joined, an int64
    [n, 2] array per piece (a separator: an empty span where it goes)."""
    tok = Tokenizer.from_file(str(Path(tokenizer_dir) / "tokenizer.json"))
    dtype = np.uint16 if tok.get_vocab_size() <= np.iinfo(np.uint16).max else np.int32
    sep = None if separator == "none" else np.array([tok.token_to_id(separator)], dtype=dtype)
    if sep is not None and sep[0] is None:
        raise UserError(f"{tokenizer_dir}: the tokenizer has no {separator} token for data.separator")
    before, after = (sep, None) if separator == "<s>" else (None, sep)
    parts, pos = [], 0

    def add(piece, offsets=None):
        parts.append(piece)
        if spans is not None:
            spans.append(np.full((1, 2), pos, dtype=np.int64) if offsets is None else np.asarray(offsets, np.int64) + pos)

    for f in files:
        try:
            lines = f.read_text(encoding="utf-8").splitlines(keepends=True)
        except UnicodeDecodeError as e:
            raise UserError(f"{f}: not UTF-8 text (byte {e.start}); clean it with clean_data.py first")
        lines = lines[:math.ceil(len(lines) * share)]
        if every == "files" and before is not None:
            add(before)
        for start in range(0, len(lines), ENCODE_BATCH_LINES):
            batch = lines[start:start + ENCODE_BATCH_LINES]
            encs = (tok.encode_batch if spans is not None else tok.encode_batch_fast)(batch, add_special_tokens=False)
            for line, enc in zip(batch, encs):
                if every == "lines" and before is not None:
                    add(before)
                add(np.asarray(enc.ids, dtype=dtype), np.reshape(enc.offsets, (-1, 2)))
                pos += len(line)
                if every == "lines" and after is not None:
                    add(after)
        if every == "files" and after is not None:
            add(after)
    return np.concatenate(parts) if parts else np.zeros(0, dtype=dtype)


def load_split_ids(folder, tokenizer_dir, cache_dir="cache", separator: str = "none", every: str = "lines",
                   verbose: bool = True, share: float = 1.0, files=None):
    """Token ids of a split folder (or of ``files``, a list of its files, in that order), from the cache when it
    matches, else encoded and cached (atomically)."""
    files = split_files(folder) if files is None else files
    key = token_cache_key(files, tokenizer_dir, separator, every, share)
    path = Path(cache_dir) / f"{Path(folder).name}-{key}.npy"
    if path.is_file():
        try:
            ids = np.load(path, mmap_mode="r")
            if verbose:
                print(f"token ids: {path} (cached)")
            return ids
        except ValueError as e:  # cut short ("mmap length is greater than file size"): derived data, so rebuilt
            print(f"token ids: {path} is damaged ({e}); encoding the split again")
    ids = encode_files(files, tokenizer_dir, separator, every, share)
    write_atomic(path, lambda fh: np.save(fh, ids))  # a killed run never leaves a half-written cache behind
    rank = int(os.environ.get("RANK", "0"))
    if verbose or rank:  # a non-main process tokenizing means the cache was not shared with it: always say so
        print(f"token ids: {len(ids):,} tokens from {len(files)} files -> {path}" + (f" (rank {rank})" if rank else ""))
    return ids


class ChunkDataset(Dataset):
    """Contiguous ``seq_length`` chunks of a flat id array; items are dicts with ``input_ids`` and ``labels``.

    With ``random_offset`` every item is read ``randrange(seq_length)`` tokens later than its aligned start, so the
    last aligned chunk is dropped to keep every read inside the array (as in the authors' code).
    With ``return_index`` items also carry ``chunk_index``, the chunk's aligned index in the id array (the teacher
    cache's lookup key; the trainer strips it before calling a model). With ``word_starts`` (``words.word_starts`` of
    ``ids``) items also carry ``words``, the words that start in the item's tokens (the trainer's words-seen count).
    """

    def __init__(self, ids, seq_length: int, random_offset: bool = False, seed: int = 0, indices=None,
                 return_index: bool = False, word_starts=None):
        self.ids = ids
        self.return_index = return_index
        self.word_starts = word_starts
        self.seq_length = seq_length
        self.random_offset = random_offset
        n = len(ids) // seq_length - (1 if random_offset else 0)
        if n <= 0:
            raise UserError(f"only {len(ids)} tokens: fewer than one chunk of data.seq_length {seq_length}; "
                            "use more text or a shorter seq_length")
        self.indices = np.arange(n) if indices is None else np.asarray(indices)
        self.seed = seed
        self.rng = np.random.default_rng(seed)
        self._worker_seed = None

    def _offset_rng(self):
        """In DataLoader workers each worker holds a copy of ``rng``: reseed it from torch's per-worker seed, which
        also changes every epoch, so workers and epochs draw different offsets."""
        info = torch.utils.data.get_worker_info()
        if info is not None and self._worker_seed != torch.initial_seed():
            self._worker_seed = torch.initial_seed()
            self.rng = np.random.default_rng([self.seed, self._worker_seed % 2**63])
        return self.rng

    def __len__(self):
        return len(self.indices)

    def distinct(self) -> "ChunkDataset":
        """The same chunks, each once, in index order (what the teacher cache must hold); ``self`` when already so."""
        idx = np.unique(self.indices)
        if np.array_equal(idx, self.indices):
            return self
        return ChunkDataset(self.ids, self.seq_length, self.random_offset, self.seed, idx, self.return_index,
                            self.word_starts)

    def words_per_pass(self) -> int:
        """The words of one pass over the items, each read at its aligned start (with random offsets: about)."""
        seq, w = self.seq_length, self.word_starts
        n = len(w) // seq
        per_chunk = w[:n * seq].reshape(n, seq).sum(1, dtype=np.int64)
        return int(per_chunk[self.indices].sum())

    def __getitem__(self, i):
        start = int(self.indices[i]) * self.seq_length
        if self.random_offset:
            start += int(self._offset_rng().integers(self.seq_length))
        chunk = torch.from_numpy(np.asarray(self.ids[start:start + self.seq_length], dtype=np.int64))
        item = {"input_ids": chunk, "labels": chunk.clone()}
        if self.return_index:
            item["chunk_index"] = torch.tensor(int(self.indices[i]))
        if self.word_starts is not None:
            item["words"] = torch.tensor(int(self.word_starts[start:start + self.seq_length].sum()))
        return item


def eval_subset(n_chunks: int, n_samples: int, seed: int) -> np.ndarray:
    """A fixed random subset of chunk indices, the same for every model with the same seed."""
    if n_samples >= n_chunks:
        return np.arange(n_chunks)
    return np.sort(np.random.default_rng(seed).choice(n_chunks, size=n_samples, replace=False))


def curriculum_files(data, warn) -> list[list[Path]]:
    """The train files of each ``data.curriculum`` bucket, in order. A name matches a file's source (its name up to
    the first dot; the 2024 names ``childes`` / ``simple_wiki`` match the 2023 ones). Sources without a file, buckets
    left with none and train files in no bucket are warned about; a curriculum that matches no file is an error."""
    canon = lambda name: SAME_SOURCE.get(name, name)  # noqa: E731
    files = {canon(f.name.split(".", 1)[0]): f for f in split_files(data.train_dir) if f.suffix == ".train"}
    stages, notes = [], []
    for i, bucket in enumerate(data.buckets(), 1):
        missing = [n for n in bucket if canon(n) not in files]
        if len(missing) == len(bucket):
            notes.append(f"data.curriculum bucket {i} ({' '.join(bucket)}) has no train file in {data.train_dir}: "
                         "the stage is skipped")
            continue
        if missing:
            notes.append(f"data.curriculum bucket {i}: no train file for {', '.join(missing)} in {data.train_dir}; "
                         "skipped")
        stages.append([files[canon(n)] for n in bucket if n not in missing])
    if not stages:
        raise UserError(f"data.curriculum {data.curriculum!r} names no train file of {data.train_dir} (it holds "
                        f"{', '.join(sorted(files))}); name those sources, or set data.curriculum null")
    used = {f for stage in stages for f in stage}
    notes += [f"{f}: in no data.curriculum bucket, so never trained on; add its source to a bucket to use it"
              for f in sorted(set(files.values()) - used)]
    for note in notes:
        warn(note)
    return stages


def curriculum_order(stage_chunks, epochs: float, seed: int) -> tuple[np.ndarray, list[tuple[int, int, int]]]:
    """The whole curriculum as one sequence of chunk indices: for stage s (its chunks are 0..stage_chunks[s]-1, the
    stream of buckets 1..s) and each of its ``epochs`` (a fraction: the first part of a last permutation), a
    permutation drawn from (seed, s, epoch) alone, so any position in the sequence, and a resume from it, is
    reproducible. Also [(stage, epoch, end)]: where each epoch ends in the sequence (exclusive)."""
    parts, ends, total = [], [], 0
    for s, n in enumerate(stage_chunks):
        for e in range(math.ceil(epochs)):
            perm = np.random.default_rng([seed, s, e]).permutation(n)
            take = n if e + 1 <= epochs else round((epochs - e) * n)
            parts.append(perm[:take])
            total += take
            ends.append((s, e, total))
    return np.concatenate(parts), ends


def curriculum_dataset(data, seed: int, epochs: float, verbose: bool = True, warn=None) -> ChunkDataset:
    """The training chunks in curriculum order (see ``curriculum_order``): the train files are concatenated bucket by
    bucket, so stage s trains on the chunks of the stream's first s buckets (a chunk across a bucket boundary joins
    the later stage). The Trainer reads it sequentially; ``.stages`` and ``.epoch_ends`` describe it."""
    warn = warn or (lambda msg: print(f"warning: {msg}", file=sys.stderr))
    stages = curriculum_files(data, warn)
    parts = [load_split_ids(data.train_dir, data.tokenizer_dir, data.cache_dir, data.separator, data.separator_every,
                            verbose, data.train_share, files=files) for files in stages]
    tokens = np.cumsum([len(p) for p in parts])
    stage_chunks = [int(n) // data.seq_length - (1 if data.random_offset else 0) for n in tokens]
    if stage_chunks[0] <= 0:
        raise UserError(f"data.curriculum: bucket 1 ({', '.join(f.name for f in stages[0])}) has {tokens[0]} tokens, "
                        f"fewer than one chunk of data.seq_length {data.seq_length}; add sources to the first bucket")
    order, ends = curriculum_order(stage_chunks, epochs, seed)
    ids = np.concatenate(parts)
    ds = ChunkDataset(ids, data.seq_length, data.random_offset, seed=seed, indices=order,
                      word_starts=word_starts(ids, data.tokenizer_dir))
    ds.stages, ds.epoch_ends = [[f.name.split(".", 1)[0] for f in files] for files in stages], ends
    if verbose:
        for s, files in enumerate(ds.stages):
            print(f"curriculum stage {s + 1}: +{' '.join(files)}: {stage_chunks[s]:,} chunks x {epochs:g} epochs")
    return ds


def build_datasets(data, seed: int = 42, verbose: bool = True, epochs: float = 1.0):
    """Train and eval ``ChunkDataset`` from a ``DataSection``; with ``data.curriculum`` the train set is the whole
    curriculum, ``epochs`` per stage (the eval set is the dev split, all sources, either way). Train items carry their
    words (``ChunkDataset``)."""
    if Path(data.train_dir).resolve() == Path(data.dev_dir).resolve():
        raise UserError(f"data.train_dir and data.dev_dir are the same folder ({data.train_dir}); the eval set must be "
                        "held out")
    held_out = [f for f in split_files(data.train_dir) if f.suffix != ".train"]
    if held_out:
        raise UserError(f"{held_out[0]}: held-out ({held_out[0].suffix}) file in data.train_dir; train on *.train "
                        "files only")
    if data.curriculum is not None:
        train = curriculum_dataset(data, seed, epochs, verbose)
    else:
        train_ids = load_split_ids(data.train_dir, data.tokenizer_dir, data.cache_dir, data.separator,
                                   data.separator_every, verbose, data.train_share)
        train = ChunkDataset(train_ids, data.seq_length, data.random_offset, seed=seed,
                             word_starts=word_starts(train_ids, data.tokenizer_dir))
    dev_ids = load_split_ids(data.dev_dir, data.tokenizer_dir, data.cache_dir, data.separator, data.separator_every,
                             verbose)
    n_dev = len(dev_ids) // data.seq_length
    if n_dev == 0:
        raise UserError(f"{data.dev_dir}: {len(dev_ids)} tokens, fewer than one chunk of data.seq_length "
                        f"{data.seq_length}")
    dev = ChunkDataset(dev_ids, data.seq_length, indices=eval_subset(n_dev, data.eval_samples, data.eval_seed))
    return train, dev
