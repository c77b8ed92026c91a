"""babyllama/export.py and --export-dir: the organisers' layout checked against a fixture written from their code
(tests/fixtures/babylm2025_layout.json: paths, fields, fast sizes), their collate_preds.py scoring of the exported
predictions against this repo's own numbers, and the refusals."""

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from scipy.stats import spearmanr

import eval_blimp as eb
import eval_reading
from babyllama import export, reading
from babyllama import scoring as sc
from babyllama.config import run_cli
from babyllama.models import load_scorer
from conftest import save_random_model
from test_eval_blimp import DIALOGUE, ENTITY, EWOK, PAIRS, WUG, _write_jsonl
from test_reading import _table
from tokenizer import load_tokenizer

LAYOUT = json.loads((Path(__file__).parent / "fixtures" / "babylm2025_layout.json").read_text())


def _fast_items(rng):
    """{fixture key: (dataset folder, items, scores)} at the organisers' fast sizes, scores made up."""
    sizes, out = LAYOUT["fast"]["sizes"], {}
    mk = lambda n, k: [tuple(rng.normal(-20, 3, k)) for _ in range(n)]  # noqa: E731
    blimp = [sc.Pair(f, i, f"good {i}.", f"bad {i}.", "binding") for f in ("adjunct_island", "wh_island")
             for i in range(sizes["blimp"])]
    supp = [sc.Pair(f, i, f"good {i}.", f"bad {i}.", suite="supplement") for f in ("hypernym", "turn_taking")
            for i in range(sizes["blimp_supplement"])]
    ewok = [sc.Pair(f, i, f"right {i}.", f"wrong {i}.", context=f"Context {i}.", layout="context", suite="ewok")
            for f in ("social-relations", "spatial-relations") for i in range(sizes["ewok"])]
    et = [sc.Pair("regular", i, "the cat.", "the dog.", context="Box 0 contains", layout="choice",
                  others=("nothing.",), suite="entity_tracking", subset=subset)
          for subset, n in sizes["entity_tracking"].items() for i in range(n)]
    wug = [sc.Pair("wug_adj_nominalization", i, f"a{i}ness", f"a{i}ity", layout="wug", suite="wug",
                   ratio=float(rng.uniform())) for i in range(sizes["wug_adj"])]
    return {"blimp": ("blimp_fast", blimp, mk(len(blimp), 2)), "blimp_supplement": ("supplement_fast", supp,
            mk(len(supp), 2)), "ewok": ("ewok_fast", ewok, mk(len(ewok), 2)),
            "entity_tracking": ("entity_tracking_fast", et, mk(len(et), 3)),
            "wug_adj": ("wug_adj_nominalization", wug, mk(len(wug), 2))}


def test_fast_export_matches_the_organisers_layout_fields_and_sizes(tmp_path):
    rng = np.random.default_rng(0)
    items = _fast_items(rng)
    for dataset, pairs, scores in items.values():
        export.export_pairs(tmp_path, "m", "chck_1M", dataset, pairs, scores)
    table = _table(LAYOUT["fast"]["sizes"]["reading"], seed=2)
    pred = rng.uniform(2, 15, len(table))
    prev = np.where(table["prev_item"].isna(), np.nan, rng.uniform(2, 15, len(table)))
    res = {**reading.reading_scores(table, pred, prev), "pred": pred.tolist(),
           "prev_pred": [None if np.isnan(x) else x for x in prev]}
    export.export_reading(tmp_path, "m", "chck_1M", table, res)

    root = tmp_path / LAYOUT["zero_shot_root"].format(model="m", revision="chck_1M")
    fields, sizes = LAYOUT["prediction_fields"], LAYOUT["fast"]["sizes"]
    for key, rel in LAYOUT["fast"]["predictions"].items():
        path = root / rel
        if key in LAYOUT["not_computed_here"]:
            assert not path.exists()
            continue
        got = json.loads(path.read_text())
        if key != "reading":
            assert sorted(p.name for p in path.parent.iterdir()) == sorted(LAYOUT["sentence_task_files"])
        want = fields["reading" if key == "reading" else "wug" if key.startswith("wug") else "sentence"]
        for uid, res_uid in got.items():
            preds = res_uid["predictions"]
            assert all(sorted(p) == sorted(want) for p in preds), key
            n = sizes[key][uid] if isinstance(sizes[key], dict) else sizes[key]
            assert len(preds) == n, (key, uid)
            if key != "reading":
                assert [p["id"] for p in preds] == [f"{uid}_{k}" for k in range(n)]
        _, pairs, scores = items.get(key, (None, None, None))
        if pairs:  # the organisers' collate: a UID's accuracy is the share of predictions equal to the right text
            for uid, res_uid in got.items():
                mine = [(p, s) for p, s in zip(pairs, scores) if (p.subset or p.file) == uid]
                hits = [r["pred"].strip() == p.good.strip() for r, (p, _) in zip(res_uid["predictions"], mine)]
                assert hits == [sc.is_correct(s) for _, s in mine]
    wug = json.loads((root / LAYOUT["fast"]["predictions"]["wug_adj"]).read_text())["wug_adj_nominalization"]
    probs = torch.softmax(torch.tensor(items["wug_adj"][2], dtype=torch.float32), 1)[:, 0].tolist()
    assert [p["prob"] for p in wug["predictions"]] == probs
    # the reading files, fields and lines
    rd = root / "reading"
    files = LAYOUT["reading_files"]
    assert sorted(p.name for p in rd.iterdir()) == sorted([*files, "predictions.json"])
    for name in ("prediction.jsonl", "predictive_power.jsonl", "predictive_power_spillover.jsonl"):
        lines = [json.loads(x) for x in (rd / name).read_text().splitlines()]
        assert all(list(r) == files[name] for r in lines)
        assert len(lines) == (len(table) if name == "prediction.jsonl" else len(reading.MEASURES))
    assert [x.split("\t")[0] for x in (rd / "correlations.txt").read_text().splitlines()] == files["correlations.txt"]
    report = (rd / "report.txt").read_text().splitlines()
    assert [x[:len(p)] for x, p in zip(report, files["report.txt"])] == files["report.txt"]
    assert float(report[0].split(": ")[1]) == pytest.approx(res["eye_tracking"], abs=0.005)
    rp = json.loads((rd / "predictions.json").read_text())["reading"]["predictions"]
    assert [r["id"] for r in rp] == list(range(len(table))) and math.isnan(rp[0]["prev_pred"])
    assert [r["pred"] for r in rp] == pred.tolist()

    found = export.check_export(tmp_path, "m", "chck_1M")
    assert found["problems"] == [] and found["to_do"] == []
    assert [x.split(":")[0] for x in found["not_computed"]] == ["wug_past/wug_past_tense"]
    # a prediction short: the organisers' size check fails, naming the UID
    path = root / LAYOUT["fast"]["predictions"]["blimp"]
    got = json.loads(path.read_text())
    got["wh_island"]["predictions"].pop()
    path.write_text(json.dumps(got))
    assert export.check_export(tmp_path, "m", "chck_1M")["problems"] == [
        "blimp/blimp_fast: wh_island has 199 predictions; the organisers expect 200"]
    # the full layout (revision main): what this repo computes is to do, the rest not computed here
    full = export.check_export(tmp_path, "m", "main")
    want_full = {k: v.rsplit("/", 1)[0] for k, v in LAYOUT["full"]["predictions"].items() if k != "aoa"}
    assert found["problems"] == [] and sorted(full["to_do"]) == sorted(
        v for k, v in want_full.items() if k not in LAYOUT["not_computed_here"])
    assert [x.split(":")[0] for x in full["not_computed"]] == [want_full["wug_past"], want_full["comps"],
                                                              LAYOUT["full"]["predictions"]["aoa"], "finetune/"]


def _organisers_folders(root):
    """Suite folders named as the organisers' fast_eval ships them."""
    for rel, recs in (("blimp_fast/wh_island", [{"sentence_good": g, "sentence_bad": b, "linguistics_term":
                                                 "island_effects", "field": "syntax", "UID": "wh_island"}
                                                for g, b in PAIRS]),
                      ("supplement_fast/turn_taking", [{"sentence_good": DIALOGUE[0], "sentence_bad": DIALOGUE[1]}]),
                      ("ewok_fast/social-relations", EWOK), ("entity_tracking_fast/regular", ENTITY),
                      ("wug_adj_nominalization/wug_adj_nominalization", WUG)):
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        _write_jsonl(root / f"{rel}.jsonl", recs)
    return [root / d for d in ("blimp_fast", "supplement_fast", "ewok_fast", "entity_tracking_fast",
                               "wug_adj_nominalization")]


def test_export_dir_end_to_end_scores_as_the_organisers_collate_would(tmp_path, tiny_tokenizer_dir, capsys):
    m = save_random_model(tmp_path / "m", "llama", tiny_tokenizer_dir, seed=3)
    dirs = _organisers_folders(tmp_path / "data")
    out, exp = tmp_path / "results", tmp_path / "export"
    args = [x for d in dirs for x in ("--blimp-dir", str(d))] + [
        "--model", f"tiny={m}", "--output-dir", str(out), "--no-progress", "--export-dir", str(exp),
        "--export-revision", "chck_1M"]
    assert run_cli(eb.main, args) == 2  # the lm-eval convention would export numbers that are not theirs
    assert "eval.export_dir" in capsys.readouterr().err and not exp.exists()
    assert run_cli(eb.main, args + ["--convention", "babylm2025"]) == 0
    res = json.loads((out / "tiny.json").read_text())
    root = exp / "tiny" / "chck_1M" / "zero_shot" / "causal"
    got = {k: json.loads((root / v).read_text()) for k, v in LAYOUT["fast"]["predictions"].items()
           if k not in ("reading", "wug_past")}
    # their _calculate_target_results / _calculate_target_et_results / _calculate_wugs_results on our predictions
    acc = lambda preds, right: np.mean([p["pred"].strip() == r.strip() for p, r in zip(preds, right)])  # noqa: E731
    assert acc(got["blimp"]["wh_island"]["predictions"], [g for g, _ in PAIRS]) == res["files"]["wh_island"]["acc"]
    assert acc(got["blimp_supplement"]["turn_taking"]["predictions"], [DIALOGUE[0]]) == \
        res["files"]["turn_taking"]["acc"]
    assert acc(got["ewok"]["social-relations"]["predictions"], [r["Target1"] for r in EWOK]) == \
        res["suites"]["ewok"]["avg"]
    for subset, preds in got["entity_tracking"].items():
        right = [r["options"][0] for r in ENTITY if f"regular_{r['numops']}_ops" == subset]
        assert acc(preds["predictions"], right) == res["suites"]["entity_tracking"]["rows"][subset]
    wug = got["wug_adj"]["wug_adj_nominalization"]["predictions"]
    assert spearmanr([p["prob"] for p in wug], [r["ratio"] for r in WUG])[0] == pytest.approx(
        res["suites"]["wug"]["avg"])
    report = (root / "ewok/ewok_fast/best_temperature_report.txt").read_text().splitlines()
    assert report[:3] == ["TEMPERATURE: 1.00", "", "### UID ACCURACY"] and report[-3] == "### AVERAGE ACCURACY"
    assert float(report[-2]) == pytest.approx(100 * res["suites"]["ewok"]["avg"], abs=0.005)
    # the reading task joins the same revision; the check then has only the counts of these tiny files to complain of
    csv = tmp_path / "reading_data.csv"
    _table(30).to_csv(csv)
    assert run_cli(eval_reading.main, ["--data", str(csv), "--model", f"tiny={m}", "--convention", "babylm2025",
                                       "--export-dir", str(exp), "--export-revision", "chck_1M"]) == 0
    rp = json.loads((root / "reading/predictions.json").read_text())["reading"]["predictions"]
    want = reading.score_reading(load_scorer([str(m)], device="cpu"), load_tokenizer(m), csv, "babylm2025")
    assert [r["pred"] for r in rp] == pytest.approx(want["pred"])
    found = export.check_export(exp, "tiny", "chck_1M")
    assert found["to_do"] == [] and all("the organisers expect" in p for p in found["problems"])
    assert run_cli(eval_reading.main, ["--data", str(csv), "--model", f"tiny={m}", "--export-dir", str(exp)]) == 2
    assert "--convention babylm2025" in capsys.readouterr().err


def test_export_refuses_a_folder_mixing_suites(tmp_path):
    pairs = [sc.Pair("a", 1, "x", "y", "binding"), sc.Pair("b", 1, "x", "y", context="c", layout="context",
                                                           suite="ewok")]
    with pytest.raises(sc.UserError, match="holds blimp and ewok files"):
        export.export_pairs(tmp_path, "m", "main", "mixed", pairs, [(0.0, -1.0)] * 2)
    assert export.task_of([sc.Pair("w", 1, "a", "b", layout="wug", suite="wug", ratio=0.5)], "wug_past_tense") == \
        "wug_past"
