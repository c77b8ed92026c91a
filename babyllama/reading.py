"""The reading task of the BabyLM 2025 evaluation: how much a model's word surprisal adds to a regression of human
reading times on word frequency and length.

The definition is the organisers' (babylm/evaluation-pipeline-2025, ``evaluation_pipeline/reading/run.py``), on their
table (``reading/reading_data.csv``: 1,726 target words in 205 sentences, de Varda et al. 2023). Per row:

- ``pred``: the surprisal (nats) of ``word`` after ``item`` (the sentence before it); a word of several tokens is
  scored token by token, its surprisal the sum of theirs (the product of their probabilities). ``prev_pred``: the
  same for ``prev_word`` after ``prev_item`` (NaN where the row has no ``prev_item``: a sentence's first word).
- How the text becomes tokens is the scoring convention (``scoring.CONVENTIONS``). ``lm-eval`` (this project's):
  ``[BOS] + tokens(item) + tokens(" " + word)``, the word's tokens scored in one pass, as the BLiMP scorer scores a
  continuation. ``babylm2025`` (theirs): ``tokenizer(item)`` with the special tokens its post-processor adds (no BOS
  for this project's tokenizers), the last position's distribution, and the word tokenized alone with no leading
  space; each further token of the word is scored after the context string extended by the decoded tokens before it,
  tokenized again, as the first token of its own decoded text.

Then ordinary least squares (statsmodels formulas), per measure ``dv``, on the rows where it and the predictors are
known: a baseline of ``Subtlex_log10``, ``length``, ``context_length`` and their pairwise interactions, and the same
plus ``pred``. A measure's score is (R2 - R2_base) / (1 - R2_base) x 100, the share of the variance the baseline left
that surprisal explains (%, 0 when it adds nothing; it can dip below 0 only through rounding). The **eye-tracking
score** is the mean over the four eye-tracking measures (``RTfirstfix``, ``RTfirstpass``, ``RTgopast``,
``RTrightbound``). The **self-paced reading score** is that of ``self_paced_reading_time`` fitted with the spillover
predictors: ``prev_length`` and ``prev_pred`` join the baseline's terms and interactions (so the baseline already holds
the previous word's surprisal). Every measure, the six EEG components (``ELAN``, ``LAN``, ``N400``, ``P600``, ``EPNP``,
``PNP``) among them, is reported with both fits: the coefficient of ``pred``, its t value and p value, R2, the change in
R2 and in AIC from the baseline; and Pearson's correlation of ``pred`` with each measure.
"""

from __future__ import annotations

from itertools import combinations
from pathlib import Path

import numpy as np

from babyllama.config import UserError
from babyllama.scoring import CONVENTIONS, prefix_token_id, token_logprobs

EYE_TRACKING = ("RTfirstfix", "RTfirstpass", "RTgopast", "RTrightbound")
SELF_PACED = "self_paced_reading_time"
EEG = ("ELAN", "LAN", "N400", "P600", "EPNP", "PNP")
MEASURES = EYE_TRACKING + (SELF_PACED,) + EEG
BASELINE = ("Subtlex_log10", "length", "context_length")
SPILLOVER = BASELINE + ("prev_length", "prev_pred")
COLUMNS = ("item", "word", "prev_item", "prev_word", "Subtlex_log10", "length", "context_length", "prev_length") + \
    MEASURES


# ----------------------------------------------------------------------------------------------------------------------
# the table


def read_table(path):
    """The reading table as a pandas DataFrame, read as the organisers read it: ``item`` as text, an empty one (pandas
    reads the word "None" as missing: the sentence "None of ...") filled back with "None"; other gaps stay NaN."""
    import pandas as pd  # slow to import: only for the reading task

    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: reading table not found; give the organisers' reading/reading_data.csv "
                        "(--data, or the fast_eval folder's reading/)")
    try:
        table = pd.read_csv(path, dtype={"item": str})
    except (pd.errors.ParserError, UnicodeDecodeError, ValueError) as e:
        raise UserError(f"{path}: not a CSV table ({str(e).splitlines()[0][:160]})")
    missing = [c for c in COLUMNS if c not in table.columns]
    if missing:
        raise UserError(f"{path}: no column {missing[0]!r}; the reading table needs {', '.join(COLUMNS)} (the "
                        "organisers' reading_data.csv)")
    if table.empty:
        raise UserError(f"{path}: no rows")
    table["item"] = table["item"].fillna("None")
    bad = table.index[table["word"].isna()]
    if len(bad):
        raise UserError(f"{path}: row {bad[0]} has no word; every row needs the word whose reading time it holds")
    return table


# ----------------------------------------------------------------------------------------------------------------------
# surprisal


def _lm_eval_segments(tokenizer, contexts, words) -> list[list[tuple[list[int], int]]]:
    """Per (context, word): one sequence ``[BOS] + context + " " + word`` and where the word's tokens start."""
    pid = prefix_token_id(tokenizer, "bos")
    ctx = tokenizer(list(contexts), add_special_tokens=False)["input_ids"]
    cont = tokenizer([" " + w for w in words], add_special_tokens=False)["input_ids"]
    return [[([pid] + c + w, 1 + len(c))] for c, w in zip(ctx, cont)]


def _babylm2025_segments(tokenizer, contexts, words) -> list[list[tuple[list[int], int]]]:
    """Per (context, word): a sequence ``tokenizer(context so far) + [target]`` for each of the word's tokens, its last
    token scored (the organisers' ``get_p2``: the context string grows by each decoded token and is tokenized again;
    each target is the first token of its decoded text tokenized alone)."""
    pieces = tokenizer(list(words), add_special_tokens=False)["input_ids"]
    steps = []  # (row, context string, target id)
    for row, (c, ids) in enumerate(zip(contexts, pieces)):
        if not ids:
            raise UserError(f"reading row {row}: the word {words[row]!r} has no tokens")
        steps.append((row, c, ids[0]))
        c += tokenizer.decode(ids[0])
        for t in ids[1:]:
            text = tokenizer.decode(t)
            again = tokenizer(text, add_special_tokens=False)["input_ids"]
            if not again:
                raise UserError(f"reading row {row}: a token of {words[row]!r} decodes to {text!r}, which has no "
                                "tokens of its own, so the babylm2025 rule cannot score it; use the lm-eval convention")
            steps.append((row, c, again[0]))
            c += text
    ctx = tokenizer([c for _, c, _ in steps])["input_ids"]  # special tokens as the post-processor adds them
    out: list[list] = [[] for _ in words]
    for (row, _, target), ids in zip(steps, ctx):
        if not ids:
            raise UserError(f"reading row {row}: the context {contexts[row]!r} has no tokens, so nothing predicts the "
                            "word (the tokenizer adds no BOS)")
        out[row].append((ids + [target], len(ids)))
    return out


def longest_item(tokenizer, table) -> int:
    """Tokens of the table's longest scored sequence (``[BOS] + item + " " + word``, the lm-eval convention's)."""
    return max(len(s) for segs in _lm_eval_segments(tokenizer, list(map(str, table["item"])),
                                                     list(map(str, table["word"]))) for s, _ in segs)


def word_surprisals(model, tokenizer, contexts, words, convention: str = "lm-eval", batch_size: int = 64) -> np.ndarray:
    """Surprisal (nats, float64) of each word after its context, by ``convention`` (module doc); one array per call,
    a TeacherEnsemble scored as one model (its mean logits)."""
    if convention not in CONVENTIONS:
        raise UserError(f"convention {convention!r}: expected one of {', '.join(CONVENTIONS)}")
    contexts, words = [str(c) for c in contexts], [str(w) for w in words]
    make = _babylm2025_segments if convention == "babylm2025" else _lm_eval_segments
    segments = make(tokenizer, contexts, words)
    seqs = [s for segs in segments for s, _ in segs]
    model.eval()
    lp = iter(token_logprobs(model, seqs, batch_size) if seqs else [])
    return np.array([-sum(sum(next(lp)[start - 1:]) for _, start in segs) for segs in segments], dtype=np.float64)


def table_surprisals(model, tokenizer, table, convention: str = "lm-eval", batch_size: int = 64):
    """(pred, prev_pred) of every row of a reading table; prev_pred is NaN where ``prev_item`` is missing."""
    pred = word_surprisals(model, tokenizer, table["item"], table["word"], convention, batch_size)
    has_prev = table["prev_item"].notna().to_numpy() & table["prev_word"].notna().to_numpy()
    prev = np.full(len(table), np.nan)
    prev[has_prev] = word_surprisals(model, tokenizer, table["prev_item"][has_prev], table["prev_word"][has_prev],
                                     convention, batch_size)
    return pred, prev


# ----------------------------------------------------------------------------------------------------------------------
# the regressions


def formula(dv: str, terms, with_pred: bool) -> str:
    """``dv ~ main effects + every pairwise interaction (+ pred)``, the organisers' formulas."""
    rhs = list(terms) + [f"{a}:{b}" for a, b in combinations(terms, 2)] + (["pred"] if with_pred else [])
    return f"{dv} ~ " + " + ".join(rhs)


def fit_measure(data, dv: str, terms) -> dict:
    """The baseline and the surprisal fit of one measure: the coefficient of ``pred``, its t value and p value, R2, the
    change in R2 and AIC, and the measure's score (R2 - R2_base) / (1 - R2_base) x 100."""
    import statsmodels.formula.api as smf  # slow to import: only for the reading task

    base = smf.ols(formula(dv, terms, False), data=data[[dv, *terms]].dropna()).fit()
    full = smf.ols(formula(dv, terms, True), data=data[["pred", dv, *terms]].dropna()).fit()
    r2, r2_base = float(full.rsquared), float(base.rsquared)
    if base.df_resid < 1 or 1 - r2_base < 1e-12:  # as many rows as predictors: the baseline fits every time exactly
        raise UserError(f"reading: {dv} has {int(base.nobs)} rows with values for {len(base.params)} baseline "
                        "coefficients, too few to fit; give the whole reading table (1,726 words)")
    return {"coef": float(full.params["pred"]), "t": float(full.tvalues["pred"]), "p": float(full.pvalues["pred"]),
            "r2": r2, "delta_r2": r2 - r2_base, "aic": float(full.aic), "delta_aic": float(full.aic - base.aic),
            "score": (r2 - r2_base) / (1 - r2_base) * 100, "n": int(full.nobs)}


def reading_scores(table, pred, prev_pred) -> dict:
    """The scores, both fits of every measure and the correlations, for surprisals ``pred`` and ``prev_pred``."""
    data = table.assign(pred=np.asarray(pred, dtype=np.float64), prev_pred=np.asarray(prev_pred, dtype=np.float64))
    fits = {dv: fit_measure(data, dv, BASELINE) for dv in MEASURES}
    spill = {dv: fit_measure(data, dv, SPILLOVER) for dv in MEASURES}
    corr = data[["pred", *MEASURES]].corr()["pred"]  # Pearson, over the rows where both are known
    return {"eye_tracking": float(np.mean([fits[dv]["score"] for dv in EYE_TRACKING])),
            "self_paced_reading": spill[SELF_PACED]["score"], "fits": fits, "spillover_fits": spill,
            "correlations": {dv: float(corr[dv]) for dv in MEASURES}, "words": len(data)}


def score_reading(model, tokenizer, csv_path, convention: str = "lm-eval", batch_size: int = 64) -> dict:
    """The reading task for one model (or a TeacherEnsemble): ``eye_tracking`` and ``self_paced_reading`` (%), per
    measure ``fits`` and ``spillover_fits`` ({coef, t, p, r2, delta_r2, aic, delta_aic, score, n}), ``correlations``,
    ``words``, the ``convention``, and ``pred`` / ``prev_pred``: each row's surprisal (nats; None where there is no
    previous word). ``csv_path``: the table's file, or the table ``read_table`` returned (read once for many models)."""
    table = csv_path if hasattr(csv_path, "columns") else read_table(csv_path)
    pred, prev = table_surprisals(model, tokenizer, table, convention, batch_size)
    out = {"convention": convention, **reading_scores(table, pred, prev)}
    out["pred"] = pred.tolist()
    out["prev_pred"] = [None if np.isnan(x) else float(x) for x in prev]
    return out
