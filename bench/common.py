"""Helpers shared by the benchmark scripts (not tests): random-init models from the repo's factory, the machine's
measured GEMM peak, FLOP counts, peak RSS, one subprocess per measured path, and the result table."""

from __future__ import annotations

import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from babyllama.compute_plan import VocabOnly as FakeTokenizer, matmul_params  # noqa: E402,F401 (shared with the plan)


def parse_model(spec: str, inner: int):
    """``llama:768x12`` / ``gpt2:768x12[:heads]`` -> a ModelSection."""
    from babyllama.schema import ModelSection

    parts = spec.split(":")
    kind, size = parts[0], parts[1]
    hidden, layers = (int(x) for x in size.split("x"))
    heads = int(parts[2]) if len(parts) > 2 else max(1, hidden // 64)
    return ModelSection(type=kind, hidden_size=hidden, num_layers=layers, num_heads=heads, intermediate_size=inner,
                        tie_word_embeddings=(kind == "gpt2"))


STUDENT_58M = dict(type="llama", hidden_size=512, num_layers=16, num_heads=8, intermediate_size=1024,
                   tie_word_embeddings=False)
TINY_STUDENT = dict(STUDENT_58M, hidden_size=32, num_layers=2, num_heads=4, intermediate_size=64)
TINY_HELP = ("check that the script still runs, measuring nothing: hidden-32 models, tiny batches, one step, every "
             "path in this process (tests/test_bench.py runs every benchmark so)")


def build(section, vocab: int, seq: int, seed: int):
    from babyllama.models import build_model

    torch.manual_seed(seed)
    return build_model(section, FakeTokenizer(vocab), seq)


def forward_flops(model, batch: int, seq: int) -> float:
    """Matmul FLOPs of one forward pass: 2*N per token plus causal-free attention scores and values."""
    cfg = model.config
    layers = getattr(cfg, "num_hidden_layers", None) or cfg.n_layer
    hidden = getattr(cfg, "hidden_size", None) or cfg.n_embd
    tokens = batch * seq
    return 2.0 * matmul_params(model) * tokens + 4.0 * layers * seq * hidden * tokens


def gemm_peak(threads: int, n: int = 2048, reps: int = 8) -> dict:
    """Best-of-``reps`` square GEMM throughput in FLOP/s, fp32 and bf16, on ``threads`` threads."""
    torch.set_num_threads(threads)
    out = {}
    for name, dt in (("fp32", torch.float32), ("bf16", torch.bfloat16)):
        a = torch.randn(n, n).to(dt)
        b = torch.randn(n, n).to(dt)
        for _ in range(2):
            a @ b
        best = float("inf")
        for _ in range(reps):
            t0 = time.perf_counter()
            a @ b
            best = min(best, time.perf_counter() - t0)
        out[name] = 2.0 * n ** 3 / best
    return out


def peak_rss_gib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2 ** 20  # Linux: KiB


def random_batches(n: int, batch: int, seq: int, vocab: int, seed: int = 0, ids=None):
    """``n`` batches of token ids: random, or consecutive chunks of a flat id array ``ids``."""
    g = torch.Generator().manual_seed(seed)
    out = []
    for i in range(n):
        if ids is None:
            x = torch.randint(3, vocab, (batch, seq), generator=g)
        else:
            starts = torch.randint(0, len(ids) // seq, (batch,), generator=g) * seq
            x = torch.stack([torch.from_numpy(ids[s:s + seq].astype("int64")) for s in starts.tolist()])
        out.append({"input_ids": x, "labels": x.clone(), "attention_mask": torch.ones_like(x)})
    return out


def load_real_ids(data_dir: str, tokenizer_dir: str, cache_dir: str = "cache"):
    from babylm_dataset import load_split_ids

    return load_split_ids(data_dir, tokenizer_dir, cache_dir, verbose=False)


def run_worker(script: str, path: str, argv: list[str], threads: int) -> dict:
    """Run ``script --worker PATH argv`` in a fresh process (so its peak RSS is its own); returns its JSON line."""
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
    proc = subprocess.run([sys.executable, script, "--worker", path, *argv], capture_output=True, text=True, env=env)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
    if proc.returncode != 0 or not lines:
        sys.stderr.write(proc.stdout[-4000:] + proc.stderr[-4000:])
        raise SystemExit(f"worker {path} failed (exit {proc.returncode})")
    return json.loads(lines[-1][len("RESULT "):])


def emit(result: dict) -> dict:
    print("RESULT " + json.dumps(result), flush=True)
    return result


def summarise(times: list[float]) -> tuple[float, float]:
    """(median, half the min-max spread)."""
    return statistics.median(times), (max(times) - min(times)) / 2 if len(times) > 1 else 0.0


def print_table(rows: list[dict], columns: list[tuple[str, str, str]]):
    """rows: dicts; columns: (key, header, format)."""
    cells = [[h for _, h, _ in columns]]
    for r in rows:
        cells.append([("-" if r.get(k) is None else format(r[k], f)) for k, _, f in columns])
    widths = [max(len(c[i]) for c in cells) for i in range(len(columns))]
    for j, row in enumerate(cells):
        print("| " + " | ".join(c.rjust(w) for c, w in zip(row, widths)) + " |")
        if j == 0:
            print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
