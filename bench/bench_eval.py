"""Time BLiMP scoring: our fast path (pair rows with the shared prefix once), our plain path (a padded row per
sentence), and, where it is installed, lm-evaluation-harness on the same files and the same model, in one run.

    python bench/bench_eval.py --blimp ../shared/data/blimp --train-dir ../shared/data/babylm_10M \\
        --files 10 --pairs 1000
    python bench/bench_eval.py ... --lm-eval /work/lmeval-venv/bin/lm_eval     # lm-eval in its own venv

The model is ``config/llama-58M.yaml``'s LLaMA, randomly initialised (seed 0) with a 16000-token BPE tokenizer that
tokenizer.py trains on ``--train-dir``; both are built once under ``--work``. The files are every k-th BLiMP file (k
so that ``--files`` are picked), their first ``--pairs`` pairs. lm-eval reads them through a local task YAML per file
(``dataset_path: json``, blimp's own template: empty context, choices [sentence_good, sentence_bad], acc), offline.

Printed: wall seconds of each tool end to end (the process: imports, model load, tokenizing, scoring) and of the
scoring alone, token positions computed, GFLOP/s and MFU against the measured GEMM peak, the floor (positions before
sharing x FLOPs per position / fp32 peak, the issue's definition), per-file accuracy of each tool, and the largest
log-likelihood difference and changed decisions between tools.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from common import ROOT, TINY_HELP, forward_flops, gemm_peak

import torch  # noqa: E402

from babyllama import scoring  # noqa: E402
from babyllama.config import read_yaml  # noqa: E402
from babyllama.schema import ModelSection


def prepare(args) -> tuple[Path, Path]:
    """(model folder, BLiMP subset folder) under --work, built once."""
    from babyllama.models import build_model
    from tokenizer import build_tokenizer, load_tokenizer, train_files

    work, tiny = Path(args.work), "-tiny" if args.tiny else ""
    tok_dir, model_dir = work / f"tokenizer{tiny}", work / ("llama-tiny" if args.tiny else "llama-58M")
    blimp = work / f"blimp-{args.files}x{args.pairs}"
    if not (tok_dir / "tokenizer.json").is_file():
        t0 = time.perf_counter()
        vocab = 300 if args.tiny else 16000
        build_tokenizer(train_files(args.train_dir), vocab_size=vocab).save_pretrained(str(tok_dir))
        print(f"tokenizer trained in {time.perf_counter() - t0:.0f} s", file=sys.stderr)
    if not (model_dir / "config.json").is_file():
        tok = load_tokenizer(tok_dir)
        m = read_yaml(ROOT / "config/llama-58M.yaml")
        torch.manual_seed(0)
        shrink = dict(hidden_size=32, num_layers=2, num_heads=4, intermediate_size=64) if args.tiny else {}
        model = build_model(ModelSection(**{**m["model"], **shrink}), tok, m["data"]["seq_length"])
        model.save_pretrained(str(model_dir))
        tok.save_pretrained(str(model_dir))
    if not blimp.is_dir():
        files = scoring.pair_files(args.blimp)
        step = max(1, len(files) // args.files)
        blimp.mkdir(parents=True)
        for f in files[::step][:args.files]:
            lines = [x for x in f.read_text(encoding="utf-8").splitlines() if x.strip()][:args.pairs]
            (blimp / f.name).write_text("\n".join(lines) + "\n", encoding="utf-8")
    return model_dir, blimp


def run_ours(args, model_dir, blimp, env) -> dict:
    out = Path(args.work) / "ours"
    shutil.rmtree(out, ignore_errors=True)
    cmd = [sys.executable, str(ROOT / "eval_blimp.py"), "--blimp-dir", str(blimp), "--model", f"ours={model_dir}",
           "--output-dir", str(out), "--batch-size", str(args.batch), "--log-pairs", "--no-progress"]
    t0 = time.perf_counter()
    if args.tiny:  # in this process: the check is that the command still runs, its wall time means nothing here
        import eval_blimp

        eval_blimp.main(cmd[2:])
    else:
        subprocess.run(cmd, check=True, env=env, cwd=ROOT, capture_output=True)
    wall = time.perf_counter() - t0
    res = json.loads((out / "ours.json").read_text())
    logs = [json.loads(x) for x in (out / "ours.pairs.jsonl").read_text().splitlines()]
    return {"wall": wall, "scoring": res["settings"]["seconds"], "acc": {f: v["acc"] for f, v in res["files"].items()},
            "ll": {(r["file"], r["line"]): (r["logp_good"], r["logp_bad"]) for r in logs}}


def run_plain(args, model_dir, blimp) -> dict:
    from babyllama.models import freeze, load_causal_lm
    from tokenizer import load_tokenizer

    pairs = scoring.load_pairs(blimp)
    enc = scoring.encode_pairs(load_tokenizer(model_dir), pairs)
    model = freeze(load_causal_lm(model_dir))
    t0 = time.perf_counter()
    scores = scoring.score_encoded(model, enc, args.batch, plain=True)
    seconds = time.perf_counter() - t0
    res = scoring.summarize(pairs, scores)
    return {"scoring": seconds, "acc": {f: v["acc"] for f, v in res["files"].items()},
            "ll": {(p.file, p.line): s for p, s in zip(pairs, scores)}}


def run_lmeval(args, model_dir, blimp, env) -> dict:
    work = Path(args.work)
    tasks_dir, out = work / "lmeval-tasks", work / "lmeval-out"
    shutil.rmtree(tasks_dir, ignore_errors=True)
    shutil.rmtree(out, ignore_errors=True)
    tasks_dir.mkdir(parents=True)
    names = []
    for f in sorted(blimp.glob("*.jsonl")):
        name = f"blimplocal_{f.stem}"
        names.append(name)
        (tasks_dir / f"{name}.yaml").write_text(
            f"task: {name}\ndataset_path: json\ndataset_kwargs:\n  data_files:\n    train: {f.resolve()}\n"
            "output_type: multiple_choice\ntest_split: train\ndoc_to_text: \"\"\ndoc_to_target: 0\n"
            "doc_to_choice: \"{{[sentence_good, sentence_bad]}}\"\nnum_fewshot: 0\nmetric_list:\n  - metric: acc\n")
    cmd = [args.lm_eval, "--model", "hf", "--model_args", f"pretrained={model_dir.resolve()},dtype=float32",
           "--tasks", ",".join(names), "--include_path", str(tasks_dir.resolve()),
           "--batch_size", str(2 * args.batch), "--device", "cpu", "--output_path", str(out.resolve()), "--log_samples"]
    env = dict(env, HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1", HF_HOME=str((work / "hf").resolve()))
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if proc.returncode:
        sys.stderr.write(proc.stderr[-3000:])
        raise SystemExit(f"lm-eval failed (exit {proc.returncode})")
    acc, ll = {}, {}
    for path in glob.glob(str(out / "**" / "samples_*.jsonl"), recursive=True):
        task = Path(path).name[len("samples_"):].rsplit("_", 1)[0]
        stem = task[len("blimplocal_"):]
        rows = [json.loads(x) for x in Path(path).read_text().splitlines()]
        for r in rows:
            good, bad = (float(x[0][0]) if isinstance(x[0], list) else float(x[0]) for x in r["resps"])
            ll[(stem, r["doc_id"] + 1)] = (good, bad)
        acc[stem] = sum(r["acc"] for r in rows) / len(rows)
    return {"wall": wall, "acc": acc, "ll": ll}


def compare(a: dict, b: dict) -> tuple[float, int]:
    keys = a.keys() & b.keys()
    diff = max(max(abs(a[k][0] - b[k][0]), abs(a[k][1] - b[k][1])) for k in keys)
    changed = sum((a[k][0] >= a[k][1]) != (b[k][0] >= b[k][1]) for k in keys)
    return diff, changed


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--blimp", required=True, help="BLiMP folder")
    p.add_argument("--train-dir", required=True, help="*.train folder the 16000-token tokenizer is trained on")
    p.add_argument("--work", default="/tmp/bench_eval", help="tokenizer, model, file subset and outputs go here")
    p.add_argument("--files", type=int, default=10)
    p.add_argument("--pairs", type=int, default=1000, help="first N pairs of each file")
    p.add_argument("--batch", type=int, default=128, help="pairs per forward pass (lm-eval: 2x sentences)")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--no-plain", action="store_true", help="skip the plain path (saves a third of the run)")
    p.add_argument("--count-all", action="store_true", help="only count the token positions of every pair in --blimp "
                   "for each way of scoring (no model runs)")
    p.add_argument("--lm-eval", default=shutil.which("lm_eval") or "/work/lmeval-venv/bin/lm_eval",
                   help="lm_eval executable (skipped when missing)")
    p.add_argument("--tiny", action="store_true", help=TINY_HELP + "; no lm-eval")
    args = p.parse_args(argv)
    if args.tiny:
        args.files, args.pairs, args.batch, args.threads, args.lm_eval = 2, 5, 4, 1, ""
    torch.set_num_threads(args.threads)
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads), MKL_NUM_THREADS=str(args.threads))
    model_dir, blimp = prepare(args)
    if args.count_all:
        from tokenizer import load_tokenizer

        enc = scoring.encode_pairs(load_tokenizer(model_dir), scoring.load_pairs(args.blimp, identical="tie"))
        total = sum(len(x) for x in enc.seqs)
        pair = sum(len(a) + len(b) - scoring._lcp(a, b) for a, b in zip(enc.seqs[0::2], enc.seqs[1::2]))
        tree = scoring.computed_positions(enc.seqs)
        print(f"{len(enc.seqs) // 2} pairs: {total} positions one row per sentence; {pair} with each pair's shared "
              f"prefix once ({100 * (1 - pair / total):.1f} % fewer); {tree} in {scoring.ROW_TOKENS}-token prefix-tree "
              f"rows ({100 * (1 - tree / total):.1f} % fewer)")
        return
    peak = gemm_peak(args.threads, n=128 if args.tiny else 2048)
    print(f"GEMM peak: fp32 {peak['fp32'] / 1e9:.0f} GFLOP/s, bf16 {peak['bf16'] / 1e9:.0f} GFLOP/s; "
          f"load average {os.getloadavg()[0]:.1f}")

    ours = run_ours(args, model_dir, blimp, env)
    plain = None if args.no_plain else run_plain(args, model_dir, blimp)
    lm = run_lmeval(args, model_dir, blimp, env) if Path(args.lm_eval).is_file() else None
    print(f"load average after the runs {os.getloadavg()[0]:.1f}")

    from babyllama.models import load_causal_lm
    from tokenizer import load_tokenizer

    enc = scoring.encode_pairs(load_tokenizer(model_dir), scoring.load_pairs(blimp))
    model = load_causal_lm(model_dir)
    n_pairs = len(enc.seqs) // 2
    pos_plain = scoring.computed_positions(enc.seqs, plain=True)
    pos_fast = scoring.computed_positions(enc.seqs)
    per_pos = forward_flops(model, 1, 1)  # 2 x matmul params per position (attention of these short rows apart)
    floor = pos_plain * per_pos / peak["fp32"]
    print(f"{n_pairs} pairs in {len(ours['acc'])} files; positions: plain {pos_plain}, shared-prefix rows {pos_fast} "
          f"({100 * (1 - pos_fast / pos_plain):.1f} % fewer); {per_pos / 1e6:.0f} MFLOP per position; floor "
          f"(plain positions at the fp32 peak) {floor:.1f} s")
    rows = [("ours, fast", ours["wall"], ours["scoring"], pos_fast)]
    if plain:
        rows.append(("ours, plain", None, plain["scoring"], pos_plain))
    if lm:
        rows.append(("lm-eval 0.4.13", lm["wall"], None, pos_plain))
    print("| path | wall s | scoring s | x lm-eval (wall) | positions | GFLOP/s | MFU % fp32 peak | floor / time |")
    print("|---|---|---|---|---|---|---|---|")
    for name, wall, sc, pos in rows:
        t = sc or wall
        speed = f"{lm['wall'] / wall:.2f}" if lm and wall else "-"
        print(f"| {name} | {'-' if wall is None else f'{wall:.1f}'} | {'-' if sc is None else f'{sc:.1f}'} | {speed} | "
              f"{pos} | {pos * per_pos / t / 1e9:.0f} | {100 * pos * per_pos / t / peak['fp32']:.0f} | "
              f"{floor / t:.2f} |")
    if plain:
        d, c = compare(ours["ll"], plain["ll"])
        print(f"fast vs plain: max |delta log-likelihood| {d:.2e}, decisions changed {c}")
    if lm:
        d, c = compare(ours["ll"], lm["ll"])
        print(f"ours vs lm-eval: max |delta log-likelihood| {d:.2e}, decisions changed {c} "
              f"(of {len(ours['ll'].keys() & lm['ll'].keys())} pairs)")
    print("| file | ours fast |" + (" ours plain |" if plain else "") + (" lm-eval |" if lm else ""))
    print("|---|---|" + ("---|" if plain else "") + ("---|" if lm else ""))
    for f in sorted(ours["acc"]):
        print(f"| {f} | {100 * ours['acc'][f]:.1f} |" + (f" {100 * plain['acc'][f]:.1f} |" if plain else "")
              + (f" {100 * lm['acc'].get(f, float('nan')):.1f} |" if lm else ""))


if __name__ == "__main__":
    main()
