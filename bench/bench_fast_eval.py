"""Time the fast evaluation of one checkpoint, suite by suite: the organisers' fast subsample of BLiMP, EWoK, entity
tracking and wug (babyllama/dynamics.py) and all 1,726 reading words, as ``eval_blimp.py --checkpoints`` and
``eval_reading.py --checkpoints`` score each checkpoint (fp32, eval.yaml's batch size, lm-eval convention).

    python bench/bench_fast_eval.py --model runs/cpu-dynamics/models/student-s10/chck_100K \\
        --blimp ../shared/data/blimp --zero-shot ../shared/data/babylm2025_zero_shot
    python bench/bench_fast_eval.py --random-init config/cpu-student.yaml --tokenizer runs/cpu-repro/tokenizer ...

``--random-init YAML --tokenizer DIR``: the YAML's model, randomly initialised (seed 0), with that tokenizer, saved under
``--work``: the time of a forward pass does not depend on the weights. Printed: a Markdown row per suite with its
items, the seconds to read and encode them, and to score them (model loading apart), then the total.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from common import ROOT, TINY_HELP  # noqa: F401  (puts the repo on sys.path)

import torch  # noqa: E402
from transformers import AutoTokenizer  # noqa: E402

from babyllama import dynamics, reading, scoring  # noqa: E402
from babyllama.models import load_scorer  # noqa: E402

SUITES = {"BLiMP": None, "EWoK": "ewok_filtered", "entity tracking": "entity_tracking",
          "wug": "wug_adj_nominalization"}


def random_model(yaml_path: str, tokenizer_dir: str, work: Path) -> Path:
    from babyllama.config import load_config
    from babyllama.models import build_model
    from babyllama.schema import TrainConfig
    from tokenizer import load_tokenizer

    cfg = load_config(TrainConfig, yaml_path, [f"data.tokenizer_dir={tokenizer_dir}"])
    tok = load_tokenizer(tokenizer_dir)
    torch.manual_seed(0)
    folder = work / "model"
    build_model(cfg.model, tok, cfg.data.seq_length).save_pretrained(str(folder))
    tok.save_pretrained(str(folder))
    return folder


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", help="a model folder (a chck_<N> checkpoint)")
    ap.add_argument("--random-init", metavar="YAML", help="a training YAML whose model is built randomly instead")
    ap.add_argument("--tokenizer", help="the tokenizer folder of --random-init")
    ap.add_argument("--blimp", required=True, help="BLiMP's folder")
    ap.add_argument("--zero-shot", required=True, help="the BabyLM 2025 zero-shot folder (ewok_filtered/, ...)")
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--work", default="/tmp/bench_fast_eval")
    ap.add_argument("--tiny", action="store_true", help=TINY_HELP + "; --random-init config/tiny-student.yaml")
    args = ap.parse_args(argv)
    if args.tiny:
        args.random_init, args.model, args.batch_size = str(ROOT / "config" / "tiny-student.yaml"), None, 16
    folder = Path(args.model) if args.model else random_model(args.random_init, args.tokenizer, Path(args.work))
    tok = AutoTokenizer.from_pretrained(str(folder))
    model = load_scorer([folder])
    print(f"model {folder}, {sum(p.numel() for p in model.parameters()) / 1e6:.2f}M parameters, "
          f"{torch.get_num_threads()} threads\n")
    print("| suite | items | read + encode (s) | score (s) |\n| --- | ---: | ---: | ---: |")
    total = 0.0
    for suite, sub in SUITES.items():
        t0 = time.perf_counter()
        pairs = dynamics.fast_subsample(scoring.load_pairs(args.blimp if sub is None else Path(args.zero_shot) / sub,
                                                           identical="tie"))
        enc = scoring.encode_pairs(tok, pairs, "bos")
        if suite == "entity tracking":  # the models have fewer positions than its longest items (eval.long_items)
            enc = scoring.truncate_encoded(enc, model.config.max_position_embeddings)[0]
        t1 = time.perf_counter()
        scoring.score_encoded(model, enc, args.batch_size)
        t2 = time.perf_counter()
        total += t2 - t0
        print(f"| {suite} | {len(pairs):,} | {t1 - t0:.1f} | {t2 - t1:.1f} |", flush=True)
    t0 = time.perf_counter()
    table = reading.read_table(Path(args.zero_shot) / "reading" / "reading_data.csv")
    t1 = time.perf_counter()
    reading.score_reading(model, tok, table)
    t2 = time.perf_counter()
    total += t2 - t0
    print(f"| reading (surprisal, then the OLS fits) | {len(table):,} words | {t1 - t0:.1f} | {t2 - t1:.1f} |")
    print(f"| **total** | | | **{total:.1f}** |")


if __name__ == "__main__":
    main()
