"""Every bench/*.py runs one tiny step (``--tiny``), so a benchmark cannot rot unseen when the code it times changes
(bench_distill.py's stand-in trainer lacked ``sam_second_pass`` for months). The checks read the printed tables: each
path ran, and paths that compute the same thing agree."""

import importlib
import json
import subprocess
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
    """A script added to bench/ gets a test here (a --tiny run), or this fails."""
    tested = {name[len("test_"):] for name in globals() if name.startswith("test_")}
    assert set(SCRIPTS) <= tested, sorted(set(SCRIPTS) - tested)


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


def test_bench_fast_eval(bench, capsys, tiny_tokenizer_dir, tmp_path):
    from test_eval_blimp import _suites as suites_2025
    from test_reading import _table

    zero_shot = tmp_path / "zero_shot"
    suites_2025(zero_shot)
    (zero_shot / "reading").mkdir()
    _table(30).to_csv(zero_shot / "reading" / "reading_data.csv", index=False)
    blimp = tmp_path / "blimp"
    blimp.mkdir()
    (blimp / "agreement.jsonl").write_text(json.dumps({"sentence_good": "The dog sees.", "sentence_bad": "The dog see."})
                                           + "\n")
    bench("bench_fast_eval").main(["--tiny", "--tokenizer", str(tiny_tokenizer_dir), "--blimp", str(blimp),
                                   "--zero-shot", str(zero_shot), "--work", str(tmp_path / "work")])
    out = capsys.readouterr().out
    assert [row(out, s)[1] for s in ("BLiMP", "EWoK", "entity tracking", "wug")] == ["1", "1", "3", "2"]
    assert row(out, "reading (surprisal, then the OLS fits)")[1] == "30 words"


def test_bench_save_words(bench, capsys, tmp_path):
    from test_pipeline import tiny_pipeline_yaml

    bench("bench_save_words").main(["--tiny", "--work", str(tmp_path / "work"), "--config",
                                    str(tiny_pipeline_yaml(tmp_path)), "--data", "", "--marks", "1000,2000",
                                    "--max-steps", "26"])  # about 80 words a step
    res = json.loads((tmp_path / "work" / "bench_save_words.json").read_text())
    assert {r["tokenizer"] for r in res["corpus"]} == {400, 500}
    assert all(0 < r["words_per_epoch"] <= r["stream_words"] for r in res["corpus"])
    assert res["off"]["saves"] == [] and [s["name"] for s in res["on"]["saves"]] == ["chck_1K", "chck_2K"]
    assert res["on"]["words_seen"] == res["off"]["words_seen"] > 2000


@pytest.mark.slow
def test_gpu_check(tmp_path):
    """The GPU check's own tiny path on the CPU (--device cpu: the embedded pipeline's smoke, then 6 steps of each
    distillation path); a subprocess, as it sets CUDA_VISIBLE_DEVICES."""
    out = tmp_path / "gpu_check.json"
    r = subprocess.run([sys.executable, "bench/gpu_check.py", "--device", "cpu", "--work", str(tmp_path / "w"),
                        "--out", str(out)], cwd=ROOT, capture_output=True, text=True, timeout=1200)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    res = json.loads(out.read_text())
    assert res["smoke"]["rc"] == 0 and set(res["distillation"]) == {"live", "cache"}
    assert all(v["steps"] == 6 and v["step_s"] > 0 for v in res["distillation"].values())
