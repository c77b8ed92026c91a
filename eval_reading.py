"""Score models and ensembles on the BabyLM 2025 reading task: how much their word surprisal adds to a regression of
human eye-tracking and self-paced reading times on word frequency and length.

    python eval_reading.py --data ../shared/data/babylm2025_zero_shot/reading/reading_data.csv \\
        --model student=runs/cpu-repro/models/student-s0 --ensemble teachers=models/llama-360M,models/gpt2-705M \\
        --output results/reading.json
    python eval_reading.py --data reading_data.csv --model m=models/llama-58M --convention babylm2025

The table (``--data``) is the organisers' ``reading/reading_data.csv`` (1,726 words in 205 sentences, de Varda et al.
2023). The eye-tracking score is the mean over the four eye-tracking measures of (R2 - R2_base) / (1 - R2_base) x 100,
where R2_base is an OLS fit of the measure on frequency, length and context length (with their interactions) and R2
the same with the word's surprisal added; the self-paced reading score is the same for self-paced reading times with
the previous word's length and surprisal among the predictors (spillover). Higher is better; 0: surprisal adds
nothing. ``--convention`` picks how text becomes tokens (``lm-eval``: BOS, context, then " " + word, this project's
default; ``babylm2025``: the organisers' pipeline, whose numbers a submission is compared with).
``babyllama/reading.py`` holds the definition. ``--checkpoints NAME=RUN_DIR`` scores every ``chck_<N>`` milestone
checkpoint of a training run's folder (all 1,726 words: the organisers' fast evaluation uses them all) and prints a row
per checkpoint; ``--output`` then also holds the curves, which ``eval_blimp.py --plot-only`` draws (with the
zero-shot suites' curves.json: one table, a panel per score).
"""

from __future__ import annotations

import argparse
import sys
import time

import torch

from babyllama import report
from babyllama.config import UserError, run_cli
from babyllama.dynamics import (CURVE_SCORES, checkpoint_flags, curve_row, find_checkpoints, parse_runs,
                                reading_scores)
from babyllama.export import check_lines, export_reading
from babyllama.files import result_file, write_results
from babyllama.models import check_model_folder, load_scorer
from babyllama.reading import EYE_TRACKING, MEASURES, SELF_PACED, longest_item, read_table, score_reading
from babyllama.scoring import CONVENTIONS
from babyllama.stream_scoring import stream_scorers, warn_untrained
from tokenizer import load_tokenizer


def evaluate(data, scorers: dict[str, list[str]], convention: str = "lm-eval", batch_size: int = 64,
             precision: str = "fp32", export_dir=None, revision: str = "main") -> dict:
    """{model name: score_reading's summary} for every model and ensemble of ``scorers`` ({name: [folders]}); every
    folder and the table are checked before the first forward pass. ``export_dir``: also write each model's files in
    the organisers' layout (``babyllama/export.py``), which needs the babylm2025 convention."""
    if export_dir and convention != "babylm2025":
        raise UserError("--export-dir writes the organisers' layout, which holds their numbers: add --convention "
                        "babylm2025")
    if not revision or "/" in revision or revision in (".", ".."):
        raise UserError(f"--export-revision {revision!r}: give a folder name such as main or chck_10M")
    table = read_table(data)
    for name, paths in scorers.items():
        for p in paths:
            check_model_folder(p)
        n = longest_item(load_tokenizer(paths[0]), table)
        warn_untrained(name, paths, n, f"the longest reading item is {n} tokens", "its surprisals there are less "
                       "reliable; score a model trained on longer chunks")
    dtype = torch.bfloat16 if precision == "bf16" else torch.float32
    out = {}
    for name, paths in scorers.items():
        t0 = time.perf_counter()
        model = load_scorer(paths, dtype)
        res = score_reading(model, load_tokenizer(paths[0]), table, convention, batch_size)
        del model
        res["seconds"] = round(time.perf_counter() - t0, 1)
        if export_dir:  # a checkpoint (<run>/chck_<N>) goes to its run's folder, revision chck_<N>
            run, _, label = name.rpartition("/")
            folder, rev = (run, label) if run and label.startswith("chck_") else (name, revision)
            export_reading(export_dir, result_file(folder), rev, table, res)
            print(check_lines(export_dir, result_file(folder), rev), file=sys.stderr)
        print(f"{name}: eye-tracking {res['eye_tracking']:.2f}, self-paced reading {res['self_paced_reading']:.2f} "
              f"({res['words']} words, {res['seconds']:.0f} s)", file=sys.stderr)
        out[name] = res
    return out


def markdown(results: dict) -> str:
    """The two scores, each measure's score and t value of surprisal, and its correlation with each measure; a column
    per model."""
    names = list(results)
    conv = {r["convention"] for r in results.values()}
    rows = [report.Row("Eye-tracking score", "averages", {n: r["eye_tracking"] for n, r in results.items()}),
            report.Row("Self-paced reading score", "averages", {n: r["self_paced_reading"] for n, r in results.items()})]
    rows += [report.Row(dv + (" (spillover)" if dv == SELF_PACED else ""), "measures",
                        {n: r["spillover_fits" if dv == SELF_PACED else "fits"][dv]["score"] for n, r in results.items()})
             for dv in MEASURES]
    t_rows = [report.Row(dv, "measures", {n: r["fits"][dv]["t"] for n, r in results.items()}) for dv in MEASURES]
    c_rows = [report.Row(dv, "measures", {n: r["correlations"][dv] for n, r in results.items()}) for dv in MEASURES]
    return (f"Reading: (R2 - R2_base) / (1 - R2_base) x 100 per measure; the eye-tracking score is the mean of "
            f"{', '.join(EYE_TRACKING)}; scored with the {' / '.join(sorted(conv))} convention.\n\n"
            + report.format_table(rows, names, header="score (%)", digits=2)
            + "\n### t value of surprisal (fit without spillover)\n\n"
            + report.format_table(t_rows, names, header="measure", digits=2)
            + "\n### Pearson's r of surprisal with each measure\n\n"
            + report.format_table(c_rows, names, header="measure", digits=3, best=lambda vals, default=None: None))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog="\n\n".join(__doc__.split("\n\n")[1:3]))
    parser.add_argument("--data", required=True, help="the reading table (the organisers' reading/reading_data.csv)")
    parser.add_argument("--model", action="append", default=[], metavar="NAME=PATH", help="a model folder (repeatable)")
    parser.add_argument("--ensemble", action="append", default=[], metavar="NAME=PATH1,PATH2",
                        help="model folders scored as one logit-averaged model (repeatable)")
    parser.add_argument("--checkpoints", action="append", default=[], metavar="NAME=RUN_DIR",
                        help="a training run's output folder: score each of its chck_<N> checkpoints (repeatable)")
    parser.add_argument("--convention", choices=CONVENTIONS, default="lm-eval",
                        help="how text becomes tokens (lm-eval: this project's; babylm2025: the organisers' pipeline)")
    parser.add_argument("--batch-size", type=int, default=64, help="about 32-token rows per forward pass")
    parser.add_argument("--precision", choices=["fp32", "bf16"], default="fp32")
    parser.add_argument("--export-dir", help="also write each model's files in the organisers' 2025 layout here: "
                        "<dir>/<model>/<revision>/zero_shot/causal/reading/ (needs --convention babylm2025)")
    parser.add_argument("--export-revision", default="main", help="the export's revision folder: main, or chck_<N>M "
                        "for a checkpoint")
    parser.add_argument("--output", help="also write the results as JSON here (and the table next to it as .md)")
    args = parser.parse_args(argv)
    if args.batch_size < 1:
        raise UserError(f"--batch-size {args.batch_size}: give at least 1")
    runs = {n: find_checkpoints(d) for n, d in parse_runs(args.checkpoints).items()}
    scorers = stream_scorers(args.model + checkpoint_flags(runs), args.ensemble)
    results = evaluate(args.data, scorers, args.convention, args.batch_size, args.precision, args.export_dir,
                       args.export_revision)
    out = {"data": str(args.data), "convention": args.convention, "results": results}
    if runs:  # a row per checkpoint; the models as reference lines
        ckpt = {f"{n}/{c.label}" for n, cks in runs.items() for c in cks}
        out["curves"] = {n: [curve_row(c, reading_scores(results[f"{n}/{c.label}"])) for c in cks]
                         for n, cks in runs.items()}
        out["reference"] = {n: reading_scores(r) for n, r in results.items() if n not in ckpt}
        table = report.curve_table(out["curves"], out["reference"], CURVE_SCORES)
    else:
        table = markdown(results)
    print(table)
    if args.output:
        write_results(args.output, out, table)
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
