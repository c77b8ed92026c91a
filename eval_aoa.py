"""Age of acquisition, the paper's Table 4: how well a model's surprisal of a word in child-directed text predicts the
age (months) at which children learn it, as mean absolute deviation of a leave-one-out regression.

    python eval_aoa.py --model baby-llama=models/baby-llama-58M --model llama-58M=models/llama-58M \\
        --ensemble teachers=models/llama-360M,models/gpt2-705M --output results/aoa.json
    python eval_aoa.py --text data/clean/babylm_dev --model m=models/llama-58M --seq-length 64

The words are the 591 CDI words of the BabyLM 2023 evaluation pipeline's AoA task (``eval_data/aoa/word_list.csv``:
columns word_clean, lexical_category, aoa, concreteness, frequency). The steps follow that pipeline
(``lm_eval/tasks/aoa_pred.py`` of github.com/babylm/evaluation-pipeline-2023):

1. Surprisal. Every whole-word occurrence of each word (case as written; multi-word entries such as "ice cream" with
   only whitespace between the parts) in the context text (``--text``: files or split folders, default the cleaned
   ``aochildes`` dev file, CHILDES child-directed speech) is found. The text is read as eval_text.py reads it: the
   stream the model was trained on (its ``data.separator``), in windows of ``--seq-length`` tokens overlapping by one
   (default: the models' training chunk length, from their config.yaml).
   An occurrence's surprisal is -sum of log p(token | tokens before it) over the tokens that overlap its characters
   and the spaces before it (a word of several tokens sums them); a word's surprisal is the mean over its occurrences (nats). Words that never
   occur are listed and left out, of every column alike; an occurrence at the very start of a file (no context) is
   not counted.
2. Regression. Unigram surprisal -log(frequency / sum of frequencies of the words kept); the LM's surprisal
   residualised on it (linear fit); lexical category dummy-coded with nouns as the base (function_words,
   predicates); concreteness, residual surprisal and unigram surprisal standardised over the words kept; the
   category dummies' interactions with the three. A linear regression (scikit-learn, with intercept) is fitted
   leaving each word out in turn and predicts its AoA.
3. The mean absolute deviation (months) of those predictions, overall and per category: one column per model or
   ensemble (softmax of its models' mean logits), and a ``baseline`` column, the same regression without the LM's
   surprisal (and its interactions), so the table shows what the LM adds.

Differences from the pipeline: its contexts were CHILDES sentences (``sent_words.json``, not published here), each
scored alone (50 tokens at most, no BOS); here a text file read as a training stream. It matched a word's token ids
anywhere in a sentence (so a token inside a longer word could count); here whole words are matched on the text. It
took the log-probability at the word's own position, which a causal LM's logits assign to the next token; here the
word's tokens are scored from the tokens before them.
"""

from __future__ import annotations

import argparse
import csv
import re
import sys
import time
from pathlib import Path

import numpy as np
import torch
from sklearn.linear_model import LinearRegression
from sklearn.model_selection import LeaveOneOut
from sklearn.preprocessing import StandardScaler

from babyllama import report
from babylm_dataset import encode_files, split_files
from babyllama.config import UserError, run_cli
from babyllama.files import write_results
from babyllama.models import load_scorer
from babyllama.stream_scoring import check_stream_scorers, stream_log_probs, stream_scorers, window_length

WORD_LIST = "eval_data/aoa/word_list.csv"
TEXT = "data/clean/babylm_dev/aochildes.dev"
COLUMNS = ("word_clean", "lexical_category", "aoa", "concreteness", "frequency")
CATEGORIES = {"nouns": "Nouns", "predicates": "Predicates", "function_words": "Function words"}  # Table 4's rows
BASELINE = "baseline (no LM)"


# ----------------------------------------------------------------------------------------------------------------------
# the word list and the contexts


def read_word_list(path) -> list[dict]:
    """Rows of the word list: word, category, aoa (months), concreteness, frequency (a count > 0)."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: word list not found; give --words (BabyLM 2023's aoa_data/word_list.csv)")
    with path.open(newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        missing = [c for c in COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            raise UserError(f"{path}: no column {missing[0]!r}; a word list needs the columns {', '.join(COLUMNS)} "
                            "(BabyLM 2023's aoa_data/word_list.csv)")
        rows = []
        for line, r in enumerate(reader, start=2):
            if r["lexical_category"] not in CATEGORIES:
                raise UserError(f"{path} line {line}: lexical_category {r['lexical_category']!r}; expected one of "
                                f"{', '.join(CATEGORIES)}")
            try:
                row = {"word": r["word_clean"].strip(), "category": r["lexical_category"], "aoa": float(r["aoa"]),
                       "concreteness": float(r["concreteness"]), "frequency": int(r["frequency"])}
            except ValueError as e:
                raise UserError(f"{path} line {line}: {e}; aoa and concreteness must be numbers, frequency a count")
            if not row["word"] or row["frequency"] <= 0:
                raise UserError(f"{path} line {line}: an empty word_clean or a frequency <= 0; fix the line")
            rows.append(row)
    if not rows:
        raise UserError(f"{path}: no words")
    return rows


def context_files(texts) -> list[Path]:
    """The files of ``--text``: a file as is, a folder as its split files (``<source>.dev`` ...)."""
    files = []
    for t in texts:
        p = Path(t)
        if p.is_dir():
            files += split_files(p)
        elif p.is_file():
            files.append(p)
        else:
            raise UserError(f"--text {t}: no such file or folder; clean the dev split first (clean_data.py) or give "
                            "--text a folder of child-directed text")
    return files


def find_occurrences(text: str, words) -> dict[str, list[tuple[int, int]]]:
    """{word: [(start, end) character span of each whole-word occurrence, with the spaces before it (a byte-level BPE
    writes them into the word's first token, or as tokens of their own)]}. Words are runs of letters, digits, ``_``
    and ``'`` ("dog's" is not "dog"); an entry of several words matches them with only whitespace between. An
    occurrence at the start of the text is not counted (nothing predicts it)."""
    runs = [(m.group(), m.start(), m.end()) for m in re.finditer(r"[\w']+", text)]
    index: dict[str, list[int]] = {}
    for i, (w, _, _) in enumerate(runs):
        index.setdefault(w, []).append(i)
    out = {}
    for word in dict.fromkeys(words):
        parts, found = word.split(), []
        for i in index.get(parts[0], []):
            nxt = runs[i + 1:i + len(parts)]
            if [w for w, _, _ in nxt] != parts[1:] or any(
                    not text[a[2]:b[1]].isspace() for a, b in zip(runs[i:i + len(parts)], nxt)):
                continue
            start = runs[i][1]
            while start > 0 and text[start - 1] in " \t":
                start -= 1
            if start > 0:
                found.append((start, runs[i + len(parts) - 1][2]))
        out[word] = found
    return out


# ----------------------------------------------------------------------------------------------------------------------
# surprisal


def word_surprisals(model, tokenizer_dir, files, occurrences, separator=("none", "lines"), seq_length: int = 128,
                    batch_size: int = 16) -> dict[str, list[float]]:
    """{word: [surprisal (nats) of each occurrence]}: -sum of log p over the tokens overlapping its characters, the
    files read as the training stream. ``occurrences``: one ``find_occurrences`` result per file."""
    out: dict[str, list[float]] = {}
    for f, occ in zip(files, occurrences):
        spans: list = []
        ids = encode_files([f], tokenizer_dir, *separator, spans=spans)
        spans = np.concatenate(spans) if spans else np.zeros((0, 2), dtype=np.int64)
        surprisal = np.concatenate([[np.nan], -stream_log_probs(model, ids, seq_length, batch_size)[0]])
        for w, found in occ.items():
            for s, e in found:  # tokens overlapping [s, e): end > s and start < e (spans are in text order)
                a, b = np.searchsorted(spans[:, 1], s, side="right"), np.searchsorted(spans[:, 0], e, side="left")
                out.setdefault(w, []).append(float(surprisal[a:b].sum(dtype=np.float64)))
    return out


# ----------------------------------------------------------------------------------------------------------------------
# the regression


def predictors(rows, surprisal=None) -> np.ndarray:
    """The pipeline's design matrix: [function_words, predicates] dummies, standardised [concreteness, surprisal
    residualised on unigram surprisal, unigram surprisal], and each dummy times each of those. Without ``surprisal``:
    the same without it (the baseline)."""
    freq = np.array([r["frequency"] for r in rows], dtype=np.float64)
    unigram = -np.log(freq / freq.sum())[:, None]
    cont = [np.array([r["concreteness"] for r in rows], dtype=np.float64)]
    if surprisal is not None:
        s = np.asarray(surprisal, dtype=np.float64)
        cont.append(s - LinearRegression().fit(unigram, s).predict(unigram))
    z = StandardScaler().fit_transform(np.column_stack(cont + [unigram[:, 0]]))
    cat = np.array([r["category"] for r in rows])
    dummies = np.column_stack([cat == "function_words", cat == "predicates"]).astype(np.float64)
    return np.column_stack([dummies, z] + [d[:, None] * z for d in dummies.T])


def loo_mad(rows, surprisal=None) -> dict:
    """Leave-one-out mean absolute deviation (months) of the AoA regression: {"overall", <category>...: MAD or None,
    "n": {"overall", <category>...: words}}."""
    x, y = predictors(rows, surprisal), np.array([r["aoa"] for r in rows], dtype=np.float64)
    dev = np.empty(len(y))
    for train, test in LeaveOneOut().split(x):
        dev[test] = np.abs(y[test] - LinearRegression().fit(x[train], y[train]).predict(x[test]))
    cat = np.array([r["category"] for r in rows])
    out = {"overall": float(dev.mean()), "n": {"overall": len(y)}}
    for c in CATEGORIES:
        out[c] = float(dev[cat == c].mean()) if (cat == c).any() else None
        out["n"][c] = int((cat == c).sum())
    return out


def table(mads: dict) -> str:
    """Table 4's layout: a row per word group (with its word count), a column per model; MAD in months, best bold."""
    n = next(iter(mads.values()))["n"]
    rows = [report.Row(f"Overall ({n['overall']})", "all", {m: v["overall"] for m, v in mads.items()})]
    rows += [report.Row(f"{label} ({n[c]})", "categories", {m: v[c] for m, v in mads.items()})
             for c, label in CATEGORIES.items()]
    return report.format_table(rows, list(mads), header="MAD (months)", digits=2, italic_groups=(), best=min)


# ----------------------------------------------------------------------------------------------------------------------
# the command


def evaluate(words, texts, scorers: dict[str, list[str]], seq_length: int = 128, batch_size: int = 16,
             precision: str = "fp32") -> dict:
    """Surprisals, MADs and contexts of every model and ensemble of ``scorers`` ({name: [folders]}), and the
    baseline."""
    rows, files = read_word_list(words), context_files(texts)
    seps = check_stream_scorers(scorers, seq_length)
    occurrences = [find_occurrences(f.read_text(encoding="utf-8"), [r["word"] for r in rows]) for f in files]
    found = {w for occ in occurrences for w, spans in occ.items() if spans}
    kept = [r for r in rows if r["word"] in found]
    missing = sorted({r["word"] for r in rows} - found)
    if len({r["category"] for r in kept}) < len(CATEGORIES) or len(kept) < 14:  # 12 coefficients, 1 left out
        raise UserError(f"only {len(kept)} of the {len(rows)} words occur in {', '.join(map(str, files))}: too few "
                        "for the regression; give --text a larger child-directed text")
    contexts = [{"file": str(f), "lines": len(f.read_text(encoding="utf-8").splitlines()),
                 "occurrences": sum(len(v) for v in occ.values())} for f, occ in zip(files, occurrences)]
    print("contexts: " + "; ".join(f"{c['file']} ({c['lines']:,} lines, {c['occurrences']:,} occurrences)"
                                   for c in contexts), file=sys.stderr)
    if missing:
        print(f"{len(missing)} of {len(rows)} words never occur there and are left out: {', '.join(missing)}",
              file=sys.stderr)
    dtype = torch.bfloat16 if precision == "bf16" else torch.float32
    surprisals, mads = {}, {}
    for name, paths in scorers.items():
        t0 = time.perf_counter()
        model = load_scorer(paths, dtype)
        per = word_surprisals(model, paths[0], files, occurrences, seps[name], seq_length, batch_size)
        del model
        surprisals[name] = {w: float(np.mean(v)) for w, v in per.items()}
        mads[name] = loo_mad(kept, [surprisals[name][r["word"]] for r in kept])
        print(f"{name}: MAD {mads[name]['overall']:.3f} months ({time.perf_counter() - t0:.0f} s)", file=sys.stderr)
    mads[BASELINE] = loo_mad(kept)
    return {"words": str(words), "contexts": contexts, "missing": missing, "seq_length": seq_length, "mad": mads,
            "surprisal": surprisals}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog="\n\n".join(__doc__.split("\n\n")[1:3]))
    parser.add_argument("--model", action="append", default=[], metavar="NAME=PATH", help="a model folder (repeatable)")
    parser.add_argument("--ensemble", action="append", default=[], metavar="NAME=PATH1,PATH2",
                        help="model folders scored as one logit-averaged model (repeatable)")
    parser.add_argument("--words", default=WORD_LIST, help=f"the AoA word list (default {WORD_LIST})")
    parser.add_argument("--text", action="append", metavar="PATH", help="context text: a file or a split folder "
                        f"(repeatable; default {TEXT}, the cleaned CHILDES dev file)")
    parser.add_argument("--seq-length", type=int, help="tokens per window (default: the chunk length the models were "
                        "trained on, their config.yaml's data.seq_length; the shortest of them)")
    parser.add_argument("--batch-size", type=int, default=16, help="windows per forward pass")
    parser.add_argument("--precision", choices=["fp32", "bf16"], default="fp32")
    parser.add_argument("--output", help="also write the results as JSON here (and the table next to it as .md)")
    args = parser.parse_args(argv)
    scorers = stream_scorers(args.model, args.ensemble)
    if BASELINE in scorers:
        raise UserError(f"the name {BASELINE!r} is the baseline column's; name the model otherwise")
    res = evaluate(args.words, args.text or [TEXT], scorers, window_length(scorers, args.seq_length), args.batch_size,
                   args.precision)
    md = table(res["mad"])
    print(md)
    if args.output:
        write_results(args.output, res, md)
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
