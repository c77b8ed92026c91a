"""Results in the BabyLM 2025 organisers' layout (babylm/evaluation-pipeline-2025), so a user can hand in what this
repo computed, or diff it against the organisers' own run:

    DIR/<model>/<revision>/zero_shot/causal/<task>/<dataset>/predictions.json, best_temperature_report.txt
    DIR/<model>/<revision>/zero_shot/causal/reading/predictions.json, prediction.jsonl, report.txt, ...

``<revision>`` is ``main`` for a final model and ``chck_<N>M`` for a checkpoint; ``<task>`` is the suite (``blimp``
for BLiMP and its supplement, ``ewok``, ``entity_tracking``, ``wug_adj``, ``wug_past``); ``<dataset>`` the name of the
folder that was scored (theirs: ``blimp_filtered``, ``supplement_filtered``, ``ewok_filtered``, ``entity_tracking``,
``wug_adj_nominalization``, or the ``*_fast`` folders of ``fast_eval``). The files are theirs
(``sentence_zero_shot/run.py`` and ``compute_results.py``, ``reading/run.py``): ``predictions.json`` maps each UID (a
BLiMP or supplement file, an EWoK domain, an entity-tracking ``<file>_<numops>_ops`` subset, the wug file) to
``{"predictions": [{"id": "<UID>_<k>", "pred": <the completion the model ranks first>}, ...]}`` (wug: and ``prob``, the
float32 softmax share of the first form); the reading task's to ``{"reading": {"predictions": [{"id": <row>, "pred":
<surprisal>, "prev_pred": <previous word's, NaN if none>}]}}``. Their report files carry the UID rows and averages
(their other metadata groupings, such as BLiMP's ``field``, are not kept by this repo's loader).

Their ``collate_preds.py`` checks a submission: every task folder present, and each UID's prediction count
(``FAST_SIZES`` for the checkpoints' fast evaluation). ``check_export`` runs the same checks on an export, and lists
the tasks not written yet and those this repo does not compute (``NOT_COMPUTED``).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

from babyllama.config import UserError
from babyllama.files import write_atomic
from babyllama.reading import MEASURES

# the organisers' collate_preds.py: fast-evaluation sizes per UID, and the full sizes that are one number
FAST_SIZES = {"blimp": 200, "blimp_supplement": 50, "ewok": 100, "reading": 1726, "wug_adj": 200, "wug_past": 50,
              "entity_tracking": {"regular_0_ops": 606, "regular_1_ops": 607, "regular_2_ops": 606,
                                  "regular_3_ops": 606, "regular_4_ops": 568, "regular_5_ops": 159}}
FULL_SIZES = {"reading": 1726, "wug_adj": 200, "wug_past": 50}
# the predictions files collate_preds.py requires, by (size key, path under zero_shot/causal); fine-tuning's are under
# <revision>/finetune/<task>/ instead
FAST_LAYOUT = {"blimp": "blimp/blimp_fast", "blimp_supplement": "blimp/supplement_fast", "ewok": "ewok/ewok_fast",
               "entity_tracking": "entity_tracking/entity_tracking_fast", "wug_adj": "wug_adj/wug_adj_nominalization",
               "wug_past": "wug_past/wug_past_tense", "reading": "reading"}
FULL_LAYOUT = {"blimp": "blimp/blimp_filtered", "blimp_supplement": "blimp/supplement_filtered",
               "ewok": "ewok/ewok_filtered", "entity_tracking": "entity_tracking/entity_tracking",
               "wug_adj": "wug_adj/wug_adj_nominalization", "wug_past": "wug_past/wug_past_tense",
               "comps": "comps/comps", "reading": "reading"}
FINETUNE_TASKS = ("boolq", "mnli", "mrpc", "multirc", "qqp", "rte", "wsc")
NOT_COMPUTED = {"wug_past": "wug past tense: no data here (its folder, given to eval_blimp.py, is scored as wug)",
                "comps": "COMPS: not implemented",
                "aoa": "AoA over checkpoints (AoA_word/surprisal.json): not computed",
                "finetune": "fine-tuning (boolq, mnli, mrpc, multirc, qqp, rte, wsc): no data for the organisers' "
                            "tasks here, and finetune.py writes its own format"}
TASKS = {"blimp": "blimp", "supplement": "blimp", "ewok": "ewok", "entity_tracking": "entity_tracking",
         "wug": "wug_adj"}  # suite -> their task folder (wug: wug_past when the folder is the past tense's)


def zero_shot_dir(root, model: str, revision: str = "main") -> Path:
    return Path(root) / model / revision / "zero_shot" / "causal"


def task_of(pairs, dataset: str) -> str:
    """Their task folder for the items of one scored folder; a folder must hold one suite (BLiMP or the supplement,
    EWoK, entity tracking or wug), as the organisers' data does."""
    suites = sorted({p.suite for p in pairs})
    if len(suites) != 1:
        raise UserError(f"--export-dir: the folder {dataset!r} holds {' and '.join(suites)} files; the organisers' "
                        "layout keeps each suite (and BLiMP apart from its supplement) in its own folder: give them "
                        "as separate --blimp-dir folders")
    task = TASKS[suites[0]]
    return "wug_past" if task == "wug_adj" and "past" in dataset else task


def predictions(pairs, scores) -> dict:
    """{UID: {"predictions": [{"id", "pred"(, "prob")}]}}: the completion ranked first (the first of equal maxima, as
    torch.max picks), in the order of the items."""
    import torch  # the float32 softmax of wug, as theirs

    from babyllama.scoring import organisers_texts

    out: dict[str, dict] = {}
    for p, s in zip(pairs, scores, strict=True):
        uid = p.subset or p.file
        preds = out.setdefault(uid, {"predictions": []})["predictions"]
        best = max(range(len(s)), key=lambda i: (s[i], -i))
        rec = {"id": f"{uid}_{len(preds)}", "pred": organisers_texts(p)[best][1]}
        if p.layout == "wug":
            rec["prob"] = torch.softmax(torch.tensor(s[:2], dtype=torch.float32), 0)[0].item()
        preds.append(rec)
    return out


def report_text(task: str, summary: dict, suite: str) -> str:
    """best_temperature_report.txt: temperature 1, each UID's accuracy (%) or rho, the average."""
    metric = "SPEARMAN'S RHO" if task.startswith("wug") else "ACCURACY"
    if suite in ("blimp", "supplement"):
        rows = {k: 100 * f["acc"] for k, f in summary["files"].items() if f["suite"] == suite}
        avg = sum(rows.values()) / len(rows)
    elif suite == "wug":  # one correlation over the file, their "avg" row
        avg = math.nan if summary["suites"]["wug"]["avg"] is None else summary["suites"]["wug"]["avg"]
        rows = {"avg": avg}
    else:  # EWoK's domains; entity tracking's subsets, then each file's mean over its subsets
        r = summary["suites"][suite]
        rows = {k: 100 * v for k, v in {**r["rows"], **r.get("splits", {})}.items()}
        avg = 100 * r["avg"]
    lines = ["TEMPERATURE: 1.00", "", f"### UID {metric}"] + [f"{k}: {v:.2f}" for k, v in rows.items()]
    return "\n".join(lines + ["", f"### AVERAGE {metric}", f"{avg:.2f}", "", ""])


def export_pairs(root, model: str, revision: str, dataset: str, pairs, scores) -> Path:
    """Write one scored folder's predictions.json and best_temperature_report.txt; returns their folder."""
    from babyllama.scoring import summarize

    task = task_of(pairs, dataset)
    out = zero_shot_dir(root, model, revision) / task / dataset
    out.mkdir(parents=True, exist_ok=True)
    write_atomic(out / "predictions.json", json.dumps(predictions(pairs, scores)))
    write_atomic(out / "best_temperature_report.txt",
                 report_text(task, summarize(pairs, scores, "babylm2025"), pairs[0].suite))
    return out


def export_reading(root, model: str, revision: str, table, result: dict) -> Path:
    """Write the reading task's files (``result``: score_reading's) as their reading/run.py does."""
    out = zero_shot_dir(root, model, revision) / "reading"
    out.mkdir(parents=True, exist_ok=True)
    prev = [math.nan if x is None else x for x in result["prev_pred"]]
    rows = list(zip(table.index, table["item"], table["word"], result["pred"], prev, strict=True))
    write_atomic(out / "prediction.jsonl", "".join(json.dumps({"Index": int(i), "Sentence": s, "Word": w,
                                                                "Logprob": p, "Prev_Logprob": q}) + "\n"
                                                    for i, s, w, p, q in rows))
    write_atomic(out / "predictions.json", json.dumps({"reading": {"predictions": [
        {"id": int(i), "pred": p, "prev_pred": q} for i, _, _, p, q in rows]}}))
    write_atomic(out / "correlations.txt", "".join(f"{dv}\t{result['correlations'][dv]:.4f}\n" for dv in MEASURES))
    for name, key in (("predictive_power.jsonl", "fits"), ("predictive_power_spillover.jsonl", "spillover_fits")):
        write_atomic(out / name, "".join(json.dumps(
            {"Predicted variable": dv, "Coefficient": f["coef"], "Number of standard deviations": f["t"],
             "P-value": f["p"], "R2": f["r2"], "Change in R2 from baseline": f["delta_r2"], "AIC": f["aic"],
             "Change in AIC from baseline": f["delta_aic"]}) + "\n" for dv, f in result[key].items()))
    write_atomic(out / "report.txt", f"EYE TRACKING SCORE: {result['eye_tracking']:.2f}\n"
                                     f"SELF-PACED READING SCORE: {result['self_paced_reading']:.2f}\n")
    return out


def check_export(root, model: str, revision: str = "main") -> dict[str, list[str]]:
    """collate_preds.py's checks of one revision (``chck_*``: the fast layout, else the full one) as {"problems": a
    file that does not parse or a UID whose prediction count is not the organisers' size, "to_do": tasks this repo
    computes whose files are not there yet, "not_computed": the tasks it does not compute}. Full BLiMP, supplement,
    EWoK and entity-tracking counts are every item of the organisers' filtered files: not checked here."""
    fast = revision.startswith("chck_")
    base = zero_shot_dir(root, model, revision)
    out: dict[str, list[str]] = {"problems": [], "to_do": [], "not_computed": []}
    for key, rel in (FAST_LAYOUT if fast else FULL_LAYOUT).items():
        path = base / rel / "predictions.json"
        if not path.is_file():
            out["not_computed" if key in NOT_COMPUTED else "to_do"].append(
                f"{rel}" + (f": {NOT_COMPUTED[key]}" if key in NOT_COMPUTED else ""))
            continue
        try:
            results = json.loads(path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            out["problems"].append(f"{path}: not JSON ({e})")
            continue
        sizes = (FAST_SIZES if fast else FULL_SIZES).get(key)
        for uid, res in results.items():
            want = sizes.get(uid.lower()) if isinstance(sizes, dict) else sizes
            if sizes is not None and len(res["predictions"]) != want:
                out["problems"].append(f"{rel}: {uid} has {len(res['predictions'])} predictions; the organisers "
                                       f"expect {want}")
    if not fast:
        out["not_computed"].append(f"AoA_word/surprisal.json: {NOT_COMPUTED['aoa']}")
        if not all((Path(root) / model / revision / "finetune" / t / "predictions.json").is_file()
                   for t in FINETUNE_TASKS):
            out["not_computed"].append(f"finetune/: {NOT_COMPUTED['finetune']}")
    return out


def check_lines(root, model: str, revision: str = "main") -> str:
    """check_export as lines for the terminal."""
    found = check_export(root, model, revision)
    head = f"export {zero_shot_dir(root, model, revision)}: " + (
        f"{len(found['problems'])} problem(s) for the organisers' collate_preds.py" if found["problems"] else
        "what is there passes the organisers' checks")
    return "\n".join([head] + [f"  problem: {p}" for p in found["problems"]]
                     + [f"  not written yet: {p} (eval_blimp.py / eval_reading.py --export-dir)" for p in found["to_do"]]
                     + [f"  not computed here: {p}" for p in found["not_computed"]])
