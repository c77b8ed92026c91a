"""What ``training.save_words`` costs on the cpu-repro plain student, and the words the chunking drops.

    python bench/bench_save_words.py --work /tmp/bench-words          # the cpu-repro data (../shared/data), 2 runs
    python bench/bench_save_words.py --work /tmp/x --config config/pipeline.yaml --data '' --max-steps 20 --marks 1000

Prepares the cpu-repro pipeline's clean, tokenizer stages in ``--work`` (run_pipeline.py --only ...), then:

1. words of the train split: raw (``str.split`` of the files), cleaned, in the token stream, per epoch of chunks (what
   training sees), for the 8000-token tokenizer of cpu-repro and a 16000-token one (the paper's), at seq 128 and 256,
   the whole split and cpu-repro's 60 % subset; and the time ``words.word_starts`` takes on the whole split;
2. the plain student (config/cpu-student.yaml as cpu-repro sets it) trained twice from the same seed: save_words off
   and ``--marks`` (default: every 100K words, chck_100K..chck_800K, since the 60 % subset's one epoch is about 880K
   words and ``babylm``'s first milestone, 1M, is past it); the seconds of each checkpoint write (``SaveAtWords.save``
   timed), its size on disk, and both runs' train time. Also what ``babylm`` would write in that run.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
import unicodedata
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
from common import TINY_HELP  # noqa: E402

import numpy as np  # noqa: E402


def folder_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def prepare(config: str, work: Path, data: str, tiny: bool = False):
    """The pipeline's data, clean and tokenizer stages in ``work`` (``tiny``: in this process); its Plan."""
    import run_pipeline

    over = [f"pipeline.work_dir={work}"] + ([f"pipeline.raw_data={data}"] if data else [])
    for stage in ("data", "clean", "tokenizer"):
        argv = ["--config", config, *over, "--only", stage]
        if tiny:
            run_pipeline.main(argv)
        else:
            subprocess.run([sys.executable, str(ROOT / "run_pipeline.py"), *argv], check=True)
    from babyllama.config import load_config
    from babyllama.schema import PipelineConfig
    return run_pipeline.Plan(load_config(PipelineConfig, config, over).pipeline)


def corpus_words(plan, work: Path, vocab: int = 16000) -> list[dict]:
    from babylm_dataset import load_split_ids, split_files
    from babyllama.words import word_starts
    from tokenizer import build_tokenizer, load_tokenizer, train_files

    train_dir = plan.clean / plan.p.train_split
    raw = sum(len(f.read_text("utf-8").split()) for f in split_files(plan.raw / plan.p.train_split))
    clean = sum(len(unicodedata.normalize("NFKC", f.read_text("utf-8")).split()) for f in split_files(train_dir))
    tok16 = work / f"tokenizer-{vocab}"
    if not (tok16 / "tokenizer.json").is_file():
        build_tokenizer(train_files(train_dir), vocab_size=vocab).save_pretrained(str(tok16))
    rows = []
    for tok in (plan.tokenizer, tok16):
        for share in sorted({1.0, plan.p.train_share or 1.0}, reverse=True):
            ids = np.asarray(load_split_ids(train_dir, tok, work / "cache", verbose=False, share=share))
            t0 = time.perf_counter()
            w = word_starts(ids, tok)
            seconds = time.perf_counter() - t0
            for seq in (128, 256):
                kept = len(ids) // seq * seq
                per_epoch = int(w[:kept].sum())
                rows.append({"tokenizer": len(load_tokenizer(tok)),
                             "share": share, "seq": seq, "raw_words": raw if share == 1.0 else None,
                             "clean_words": clean if share == 1.0 else None, "stream_words": int(w.sum()),
                             "tokens": len(ids), "words_per_epoch": per_epoch,
                             "dropped_words": int(w.sum()) - per_epoch, "dropped_tokens": len(ids) - kept,
                             "word_starts_s": round(seconds, 3)})
    return rows


def train_student(plan, out: Path, marks, max_steps: int | None) -> dict:
    import train
    from babyllama import words

    times = []
    save = words.SaveAtWords.save

    def timed(self, folder, milestone, args, state):
        t0 = time.perf_counter()
        save(self, folder, milestone, args, state)
        times.append((folder.name, time.perf_counter() - t0, folder_bytes(folder)))

    words.SaveAtWords.save = timed
    try:
        cfg = plan.config(next(s for s in plan.stages if s.yaml_key == "student"))  # the first seed's
        cfg.training.output_dir = str(out)
        cfg.training.save_words = marks
        if max_steps:
            cfg.training.max_steps = max_steps
        t0 = time.perf_counter()
        m = train.run(cfg)
        wall = time.perf_counter() - t0
    finally:
        words.SaveAtWords.save = save
    return {"marks": marks, "wall_s": round(wall, 1), "train_runtime_s": m["train_runtime_s"],
            "words_seen": m["words_seen"], "global_step": m["global_step"], "eval_loss": m["eval_loss"],
            "saves": [{"name": n, "seconds": round(s, 3), "bytes": b} for n, s, b in times],
            "final_model_bytes": sum(p.stat().st_size for p in out.iterdir() if p.is_file()),
            "babylm_would_write": [words.milestone_name(x) for x in words.milestones("babylm")
                                   if x <= m["words_seen"]]}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--work", required=True, help="a scratch folder (the cpu-repro stages and runs go there)")
    parser.add_argument("--config", default=str(ROOT / "config/cpu-repro.yaml"), help="the pipeline config")
    parser.add_argument("--data", default=str(ROOT.parent / "shared/data"), help="pipeline.raw_data ('': the "
                                                                                   "config's)")
    parser.add_argument("--marks", default=",".join(str(k * 100_000) for k in range(1, 9)))
    parser.add_argument("--max-steps", type=int, default=None, help="cut the student runs short (a quick look)")
    parser.add_argument("--tiny", action="store_true", help=f"{TINY_HELP}; give a tiny --config (--data '') and "
                        "--marks; the second tokenizer has 500 entries, not 16000")
    args = parser.parse_args(argv)
    if args.tiny:
        args.max_steps = args.max_steps or 2
    work = Path(args.work).resolve()
    plan = prepare(args.config, work, args.data, args.tiny)
    res = {"corpus": corpus_words(plan, work, 500 if args.tiny else 16000)}
    marks = [int(x) for x in args.marks.split(",")]
    for name, m in (("off", None), ("on", marks)):
        out = work / "students" / name
        if out.exists():
            import shutil
            shutil.rmtree(out)
        res[name] = train_student(plan, out, m, args.max_steps)
    (work / "bench_save_words.json").write_text(json.dumps(res, indent=1))
    print(json.dumps(res, indent=1))


if __name__ == "__main__":
    main()
