"""Every bench/*.py runs one tiny step (``--tiny``), so a benchmark cannot rot unseen when the code it times changes
(bench_distill.py's stand-in trainer lacked ``sam_second_pass`` for months). The checks read the printed tables: each
path ran, and paths that compute the same thing agree."""

import importlib
import json
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "bench"
SCRIPTS = sorted(p.stem for p in BENCH.glob("*.py") if p.stem != "common")


def row(out: str, first_cell: str, nth: int = 0) -> list[str]:
    """The cells of the ``nth`` printed table row whose first cell is ``first_cell``."""
    return [[c.strip() for c in line.strip("|").split("|")] for line in out.splitlines()
            if line.startswith("|") and line.strip("|").split("|")[0].strip() == first_cell][nth]


@pytest.fixture
def bench(monkeypatch):
    monkeypatch.syspath_prepend(str(BENCH))
    threads = torch.get_num_threads()
    yield lambda name: importlib.import_module(name)
    torch.set_num_threads(threads)  # the scripts set their own


def test_every_benchmark_has_a_tiny_check():
    assert SCRIPTS == ["bench_cache_error", "bench_distill", "bench_eval", "bench_loss", "bench_pretrain"]


def test_bench_distill(bench, capsys):
    assert bench("bench_distill").main(["--tiny", "--paths", "naive,fp32,default,cache"]) == 0
    out = capsys.readouterr().out
    for path in ("naive", "fp32", "default", "cache"):
        assert float(row(out, path)[3]) > 0  # s/step
    assert float(row(out, "fp32", 1)[1]) < 1e-4  # |loss - naive| on the first batch: our fp32 loss is the authors'
    assert "cache build (first epoch" in out


def test_bench_pretrain(bench, capsys):
    assert bench("bench_pretrain").main(["--tiny", "--paths", "fp32,default"]) == 0
    out = capsys.readouterr().out
    fp32, default = row(out, "fp32"), row(out, "default")
    assert float(fp32[3]) > 0 and float(default[3]) > 0
    assert abs(float(fp32[-2]) - float(default[-2])) < 0.05  # first-batch loss, fp32 vs bf16 autocast


def test_bench_loss(bench, capsys):
    assert bench("bench_loss").main(["--tiny"]) == 0
    out = capsys.readouterr().out
    for what in ("naive fp32", "ours fp32 chunk 4", "ours bf16 chunk 16", "cached top-4 uniform bf16 chunk 128"):
        assert float(row(out, what)[1]) > 0


def test_bench_cache_error(bench, capsys, tiny_corpus, tiny_tokenizer_dir, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # its token cache goes to ./cache
    assert bench("bench_cache_error").main(["--tiny", "--data", str(tiny_corpus["dev"]),
                                            "--tokenizer", str(tiny_tokenizer_dir)]) == 0
    out = capsys.readouterr().out
    for k in ("4", "8"):
        cells = row(out, k)
        assert 0 < float(cells[2]) <= 1.001 and -1 <= float(cells[-1]) <= 1  # teacher mass in top-k, grad cosine


def test_bench_eval(bench, capsys, tiny_corpus, tmp_path):
    blimp = tmp_path / "blimp"
    blimp.mkdir()
    for name in ("agreement", "islands"):
        pairs = [{"sentence_good": f"The dog sees {n} cats.", "sentence_bad": f"The dog see {n} cats."}
                 for n in ("two", "three", "four", "five", "six", "seven")]
        (blimp / f"{name}.jsonl").write_text("".join(json.dumps(p) + "\n" for p in pairs))
    bench("bench_eval").main(["--tiny", "--blimp", str(blimp), "--train-dir", str(tiny_corpus["train"]),
                              "--work", str(tmp_path / "work")])
    out = capsys.readouterr().out
    line = next(x for x in out.splitlines() if x.startswith("fast vs plain:"))
    assert float(line.split("delta log-likelihood| ")[1].split(",")[0]) < 1e-3  # prefix sharing changes nothing
    assert "decisions changed 0" in line
    assert 0 <= float(row(out, "agreement")[1]) <= 100
