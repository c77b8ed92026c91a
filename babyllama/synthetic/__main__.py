"""python -m babyllama.synthetic --out data/synthetic [--seed N --train-words N --dev-words N --pairs-per-paradigm N]"""

import argparse
import sys
import time

from babyllama.synthetic.writer import write_corpus


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description="Write the synthetic BabyLM-layout corpus and its minimal pairs.")
    ap.add_argument("--out", default="data/synthetic", help="output folder (default: data/synthetic)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--train-words", type=int, default=200_000)
    ap.add_argument("--dev-words", type=int, default=40_000)
    ap.add_argument("--pairs-per-paradigm", type=int, default=200)
    args = ap.parse_args(argv)
    for name in ("train_words", "dev_words", "pairs_per_paradigm"):
        if getattr(args, name) < 0:
            ap.error(f"--{name.replace('_', '-')} must be >= 0")
    t0 = time.perf_counter()
    res = write_corpus(args.out, seed=args.seed, train_words=args.train_words, dev_words=args.dev_words,
                       pairs_per_paradigm=args.pairs_per_paradigm)
    for split in ("train", "dev"):
        words = res["words"][split]
        print(f"{res[split + '_dir']}: {sum(words.values()):,} words in {len(words)} files")
    print(f"{res['blimp_dir']}: {len(res['blimp'])} files x {args.pairs_per_paradigm} pairs")
    print(f"done in {time.perf_counter() - t0:.1f}s (seed {args.seed})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
