"""Learning over words seen (babyllama/dynamics.py, eval_blimp.py --checkpoints): the fast subsample, the organisers'
fast_eval folder, one row per chck_<N> checkpoint that equals scoring the checkpoint alone, the curve plot, a rerun
that reads back what is scored, and the run folders it refuses."""

import json

import pytest

import eval_blimp as eb
from babyllama import dynamics as dy
from babyllama import scoring as sc
from babyllama.config import UserError, run_cli
from conftest import save_random_model

WORDS = {"chck_100K": 100_000, "chck_1M": 1_000_000, "chck_300K": 300_000}


def _checkpoint(run, label, words, tok_dir, seed):
    folder = save_random_model(run / label, "llama", tok_dir, seed=seed)
    (folder / "words_seen.json").write_text(json.dumps({"words_seen": words, "milestone": words, "step": seed + 1,
                                                        "epoch": 0.1 * (seed + 1)}))
    return folder


@pytest.fixture(scope="module")
def run_dir(tiny_tokenizer_dir, tmp_path_factory):
    """A run folder with three milestone checkpoints (written out of order) and a final model beside them."""
    run = tmp_path_factory.mktemp("run") / "student"
    for seed, (label, words) in enumerate(WORDS.items()):
        _checkpoint(run, label, words, tiny_tokenizer_dir, seed)
    save_random_model(run, "llama", tiny_tokenizer_dir, seed=9)
    return run


def _suites(folder, n_blimp=230, n_ewok=130):
    """A BLiMP file (one phenomenon) of n_blimp pairs and an EWoK domain of n_ewok items (none: no file)."""
    folder.mkdir(parents=True, exist_ok=True)
    names = ["the dog", "the cat", "mommy", "daddy", "a bird"]
    blimp = [{"sentence_good": f"{names[i % 5]} sees {names[i // 5 % 5]}.", "sentence_bad": f"{names[i % 5]} see "
              f"{names[i // 5 % 5]}.", "linguistics_term": "subject_verb_agreement"} for i in range(n_blimp)]
    ewok = [{"Context1": f"{names[i % 5]} is here {i}.", "Context2": "x", "Target1": "It sees.",
             "Target2": f"It {names[(i + 1) % 5]}."} for i in range(n_ewok)]
    for name, recs in (("regular_plural_subject_verb_agreement_1", blimp), ("agent-properties", ewok)):
        if recs:
            (folder / f"{name}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in recs))
    return folder


def test_fast_subsample_takes_the_organisers_sizes_evenly_spaced():
    def items(suite, file, n, subset=""):
        return [sc.Pair(file, i + 1, "a", "b", suite=suite, subset=subset) for i in range(n)]

    pairs = (items("blimp", "anaphor", 1000) + items("supplement", "hypernym", 64) + items("ewok", "social", 120)
             + items("entity_tracking", "regular", 30, "regular_0_ops") + items("entity_tracking", "ambiref", 30)
             + items("wug", "wug_adj", 200))
    got = dy.fast_subsample(pairs)
    lines = {}
    for p in got:
        lines.setdefault(p.file, []).append(p.line)
    assert {f: len(v) for f, v in lines.items()} == {"anaphor": 200, "hypernym": 50, "social": 100, "regular": 30,
                                                      "wug_adj": 200}  # ambiref: not in the fast set
    assert lines["anaphor"][:3] == [1, 6, 11] and lines["anaphor"][-1] == 996  # every 5th line, over the whole file
    assert lines["hypernym"][:3] == [1, 2, 3] and lines["hypernym"][-1] == 63  # 64 * i // 50
    assert dy.fast_subsample(items("blimp", "small", 7)) == items("blimp", "small", 7)  # fewer than 200: all


def test_checkpoints_score_one_row_each_as_scored_alone(run_dir, tmp_path, capsys):
    pairs, out = _suites(tmp_path / "pairs"), tmp_path / "curves"
    ref = run_dir  # the final model beside the checkpoints: a horizontal line
    args = ["--blimp-dir", str(pairs), "--checkpoints", f"student={run_dir}", "--model", f"final={ref}",
            "--output-dir", str(out), "--no-progress", "eval.identical_pairs=tie"]
    assert run_cli(eb.main, args) == 0
    curves = json.loads((out / "curves.json").read_text())
    rows = curves["curves"]["student"]
    assert [r["checkpoint"] for r in rows] == ["chck_100K", "chck_300K", "chck_1M"]  # by words seen
    assert [r["words_seen"] for r in rows] == [100_000, 300_000, 1_000_000] and rows[0]["step"] == 1
    for r in rows:  # the fast subsample: 200 of 230 BLiMP pairs, 100 of 130 EWoK items
        res = json.loads((out / "student" / f"{r['checkpoint']}.json").read_text())
        assert res["counts"]["pairs"] == 300
        assert r["scores"]["blimp"] == pytest.approx(100 * res["averages"]["phenomena"])
        assert r["scores"]["ewok"] == pytest.approx(100 * res["suites"]["ewok"]["avg"])
    # a checkpoint scored alone on the same subsample gives its row
    alone = tmp_path / "alone"
    assert run_cli(eb.main, ["--blimp-dir", str(pairs), "--model", f"m={run_dir / 'chck_1M'}", "--fast", "--output-dir",
                             str(alone), "--no-progress", "eval.identical_pairs=tie"]) == 0
    one = json.loads((alone / "m.json").read_text())
    assert rows[2]["scores"]["blimp"] == pytest.approx(100 * one["averages"]["phenomena"])
    assert rows[2]["scores"]["ewok"] == pytest.approx(100 * one["suites"]["ewok"]["avg"])
    assert len({round(r["scores"]["blimp"], 6) for r in rows} | {round(r["scores"]["ewok"], 6) for r in rows}) > 2
    assert curves["reference"]["final"]["blimp"] == pytest.approx(
        100 * json.loads((out / "final.json").read_text())["averages"]["phenomena"])
    table = (out / "curves.md").read_text().splitlines()
    assert table[0] == "| model | checkpoint | words seen | BLiMP | EWoK |"
    assert table[2].startswith("| student | chck_100K | 100,000 | ") and table[-1].startswith("| final | final | – |")
    assert (out / "curves.png").stat().st_size > 5000

    # a rerun reads back what is scored; --plot-only redraws from curves.json
    capsys.readouterr()
    assert run_cli(eb.main, args) == 0
    assert capsys.readouterr().err.count("scored already") == 3
    again = tmp_path / "again"
    assert run_cli(eb.main, ["--plot-only", str(out / "curves.json"), "--output-dir", str(again)]) == 0
    assert (again / "curves.md").read_text() == (out / "curves.md").read_text()
    assert (again / "curves.png").stat().st_size > 5000


def test_the_organisers_fast_eval_folder_is_scored_as_it_is(tmp_path):
    fast = tmp_path / "fast_eval"
    _suites(fast / "blimp_fast", n_blimp=230, n_ewok=0)
    _suites(fast / "ewok_fast", n_blimp=0, n_ewok=130)
    (fast / "wug_past_tense").mkdir()  # a task this repo does not score: left out
    dirs, organisers = dy.expand_fast_eval([str(fast), str(tmp_path / "other")])
    assert organisers and dirs == [str(fast / "blimp_fast"), str(fast / "ewok_fast"), str(tmp_path / "other")]
    cfg = eb.resolve(eb.build_parser().parse_intermixed_args(
        ["--blimp-dir", str(fast), "--model", "m=x", "--fast", "eval.identical_pairs=tie"]))
    pairs, _ = eb.load_all_pairs(cfg.eval)
    assert len(pairs) == 360  # every item: their subsample already


def test_run_folders_it_refuses(run_dir, tiny_tokenizer_dir, tmp_path, capsys):
    plain = save_random_model(tmp_path / "plain", "llama", tiny_tokenizer_dir)
    with pytest.raises(UserError, match="no chck_<N> checkpoints"):
        dy.find_checkpoints(plain)
    pairs = _suites(tmp_path / "pairs", 5, 5)
    capsys.readouterr()
    assert run_cli(eb.main, ["--blimp-dir", str(pairs), "--checkpoints", f"r={plain}", "--no-progress",
                             "--output-dir", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "plain: no chck_<N> checkpoints" in err[0]

    # a checkpoint whose tokenizer is not its siblings'
    import shutil

    from tokenizer import load_tokenizer

    run = tmp_path / "mixed"
    shutil.copytree(run_dir, run)
    tok = load_tokenizer(tiny_tokenizer_dir)
    tok.add_tokens(["zebra"])
    tok.save_pretrained(str(run / "chck_300K"))
    with pytest.raises(UserError, match=r"chck_300K: its tokenizer differs from its siblings"):
        dy.find_checkpoints(run)
    (run / "chck_1M" / "words_seen.json").write_text('{"words": 3}')
    with pytest.raises(UserError, match=r"chck_1M/words_seen.json: not a readable words-seen record"):
        dy.find_checkpoints(run)


def test_the_dynamics_stage_scores_the_students_checkpoints_beside_the_teachers(tmp_path):
    import run_pipeline
    from babyllama.config import load_config
    from babyllama.schema import PipelineConfig
    from conftest import ROOT

    ewok = tmp_path / "ewok_filtered"
    ewok.mkdir()
    cfg = load_config(PipelineConfig, ROOT / "config/pipeline.yaml", [
        f"pipeline.work_dir={tmp_path / 'w'}", "pipeline.dynamics=true", "pipeline.seeds=[0, 1]",
        f"pipeline.zero_shot_dirs=[{ewok}]", "pipeline.teacher_seeds=[5]",
        "pipeline.stage_overrides={eval: [eval.max_pairs_per_file=7], dynamics: [eval.batch_size=9]}"])
    plan = run_pipeline.Plan(cfg.pipeline)
    names = [s.name for s in plan.stages]
    assert names[names.index("eval"):] == ["eval", "zero-shot-ewok_filtered", "dynamics", "finetune", "report"]
    ev = plan.config(plan.by_name["dynamics"]).eval
    w = tmp_path / "w"
    assert ev.checkpoints == {n: f"{w}/models/{n}" for n in ("student-s0", "student-s1", "distilled-s0", "distilled-s1")}
    assert ev.models == {n: f"{w}/models/{n}" for n in ("teacher-1", "teacher-2")}  # student-s5: not a curve model
    assert list(ev.ensembles) == ["teachers-ensemble"] and ev.blimp_dir == [str(plan.blimp), str(ewok)]
    assert (ev.max_pairs_per_file, ev.long_items, ev.batch_size, ev.fast) == (None, "truncate", 9, None)
    assert ev.output_dir == f"{w}/results/dynamics"
    with pytest.raises(UserError, match="pipeline.dynamics: scores the checkpoints of a run without budgets"):
        load_config(PipelineConfig, ROOT / "config/pipeline.yaml", ["pipeline.dynamics=true",
                                                                    "pipeline.budgets=[{train_share: 0.5}]"])


def test_learning_section_pairs_distilled_and_plain_at_each_milestone(tmp_path):
    """Two seeds, two milestones: the group means ± sd, the paired differences, and which clear one sd."""
    import run_pipeline
    from babyllama.config import load_config
    from babyllama.pipeline_report import Report
    from babyllama.schema import PipelineConfig
    from conftest import ROOT

    cfg = load_config(PipelineConfig, ROOT / "config/pipeline.yaml", [
        f"pipeline.work_dir={tmp_path}", "pipeline.dynamics=true", "pipeline.seeds=[0, 1]"])
    plan = run_pipeline.Plan(cfg.pipeline)

    def rows(ce, blimp):
        return [{"checkpoint": lab, "words_seen": w, "step": 1, "epoch": 0.5, "scores": {"dev_ce": c, "blimp": b}}
                for lab, w, c, b in zip(["chck_100K", "chck_200K"], [100_000, 200_000], ce, blimp)]

    curves = {"student-s0": rows([6.0, 5.0], [50.0, 52.0]), "student-s1": rows([6.2, 5.2], [51.0, 50.0]),
              "distilled-s0": rows([5.9, 5.1], [50.0, 53.0]), "distilled-s1": rows([6.1, 5.0], [51.5, 49.0])}
    (plan.results / "dynamics").mkdir(parents=True)
    (plan.results / "dynamics" / "curves.json").write_text(json.dumps({
        "settings": {"fast": None, "dev_share": 0.1}, "curves": curves,
        "reference": {"teacher-1": {"dev_ce": 4.5, "blimp": 55.0}}}))
    r = Report.__new__(Report)
    r.plan, r.seeds = plan, [0, 1]
    r.groups = {"student": ["student-s0", "student-s1"], "distilled": ["distilled-s0", "distilled-s1"]}
    text = "\n".join(r.learning())
    # student at chck_100K: dev CE mean 6.1, sd 0.141; BLiMP 50.5 ± 0.7
    assert "| student | chck_100K | 100,000 | 6.100 ± 0.141 | 50.5 ± 0.7 |" in text
    assert "| teacher-1 | final | – | 4.500 | 55.0 |" in text
    # distilled - plain: chck_100K dev CE -0.1, -0.1 (sd 0: beyond), BLiMP 0, +0.5; chck_200K dev CE +0.1, -0.2
    assert "| chck_100K | 100,000 | **-0.100 ± 0.000** | +0.2 ± 0.4 |" in text
    assert "| chck_200K | 200,000 | -0.050 ± 0.212 | +0.0 ± 1.4 |" in text
    assert "Beyond one sd of zero: dev CE at chck_100K (-0.100 ± 0.000: distilled better)." in text
    assert (plan.results / "learning.png").stat().st_size > 5000


def test_reading_over_checkpoints_joins_the_suites_curves(run_dir, tmp_path, capsys):
    import eval_reading
    from test_reading import _table

    csv = tmp_path / "reading.csv"
    _table(40).to_csv(csv, index=False)
    out = tmp_path / "reading.json"
    assert run_cli(eval_reading.main, ["--data", str(csv), "--checkpoints", f"student={run_dir}", "--model",
                                       f"final={run_dir}", "--output", str(out)]) == 0
    r = json.loads(out.read_text())
    rows = r["curves"]["student"]
    assert [x["checkpoint"] for x in rows] == ["chck_100K", "chck_300K", "chck_1M"]
    for x in rows:  # each row: that checkpoint's own reading scores
        res = r["results"][f"student/{x['checkpoint']}"]
        assert x["scores"] == {"eye_tracking": res["eye_tracking"], "self_paced_reading": res["self_paced_reading"]}
    assert r["reference"]["final"]["eye_tracking"] == r["results"]["final"]["eye_tracking"]
    assert "| student | chck_1M | 1,000,000 |" in capsys.readouterr().out

    # --plot-only joins a run's reading rows to its suites' rows: one table, a column per score
    pairs, suites = _suites(tmp_path / "pairs", 20, 20), tmp_path / "suites"
    assert run_cli(eb.main, ["--blimp-dir", str(pairs), "--checkpoints", f"student={run_dir}", "--model",
                             f"final={run_dir}", "--output-dir", str(suites), "--no-progress"]) == 0
    both = tmp_path / "both"
    assert run_cli(eb.main, ["--plot-only", str(suites / "curves.json"), str(out), "--output-dir", str(both)]) == 0
    table = (both / "curves.md").read_text().splitlines()
    assert table[0] == "| model | checkpoint | words seen | BLiMP | EWoK | eye tracking | self-paced reading |"
    assert len(table) == 2 + 3 + 1 and table[-1].startswith("| final | final | – |")
    assert f"{rows[2]['scores']['eye_tracking']:.2f} | {rows[2]['scores']['self_paced_reading']:.2f} |" in table[4]


def test_tiny_pipeline_with_dynamics_scores_every_checkpoint_and_reports_the_curves(tmp_path):
    """The whole pipeline on the tiny synthetic corpus with milestones at 1K and 2K words: the dynamics stage's rows
    hold each checkpoint's suites, dev CE and reading scores, the report its section and figure; a rerun skips it."""
    import yaml

    import run_pipeline
    from test_pipeline import tiny_pipeline_yaml
    from test_reading import _table

    path = tiny_pipeline_yaml(tmp_path)
    cfg = yaml.safe_load(path.read_text())
    p = cfg["pipeline"]
    for s in ("student", "distilled"):
        p["stage_overrides"][s] = [o for o in p["stage_overrides"]["teacher1"] if "max_steps" not in o] + [
            "training.max_steps=26"]
    p["save_words"] = [1000, 2000]
    _table(40).to_csv(tmp_path / "reading.csv", index=False)
    p.update(dynamics=True, finetune=None, seeds=[0, 1], reading_data=str(tmp_path / "reading.csv"),
             results_file=str(tmp_path / "RESULTS.md"), results_section="dyn")
    path.write_text(yaml.safe_dump(cfg))
    assert run_pipeline.main(["--config", str(path)]) == 0
    work = tmp_path / "work"
    curves = json.loads((work / "results" / "dynamics" / "curves.json").read_text())
    assert set(curves["curves"]) == {"student-s0", "student-s1", "distilled-s0", "distilled-s1"}
    assert set(curves["reference"]) == {"teacher-1", "teacher-2", "teachers-ensemble"}
    for name, rows in curves["curves"].items():
        assert [r["checkpoint"] for r in rows] == ["chck_1K", "chck_2K"], name
        assert 1000 <= rows[0]["words_seen"] < rows[1]["words_seen"]
        for r in rows:
            assert set(r["scores"]) >= {"dev_ce", "blimp", "supplement", "eye_tracking", "self_paced_reading"}
            words = json.loads((work / "models" / name / r["checkpoint"] / "words_seen.json").read_text())
            assert r["words_seen"] == words["words_seen"] and r["step"] == words["step"]
    assert curves["curves"]["student-s0"][0]["scores"]["dev_ce"] > curves["curves"]["student-s0"][1]["scores"]["dev_ce"]
    text = (tmp_path / "RESULTS.md").read_text()
    assert "## Learning over words seen" in text and "| distilled | chck_2K |" in text
    assert "](docs/results/dyn-learning.png)" in text and (tmp_path / "docs/results/dyn-learning.png").is_file()
    assert "| chck_1K |" in text.split("### Distilled − plain at each milestone")[1]
    assert "| distilled-s1 | chck_2K |" in text  # every checkpoint, seed by seed
    stamp = (work / ".done" / "dynamics").stat().st_mtime
    assert run_pipeline.main(["--config", str(path)]) == 0
    assert (work / ".done" / "dynamics").stat().st_mtime == stamp  # nothing changed: the stage is skipped


def test_checkpoints_export_in_the_organisers_fast_layout(run_dir, tmp_path):
    """--checkpoints with --export-dir: each checkpoint is its run's revision chck_<N>, its fast items in the *_fast
    folders with the organisers' counts (their collate_preds.py checks)."""
    from babyllama.export import check_export

    blimp, ewok, export = _suites(tmp_path / "b", 230, 0), _suites(tmp_path / "e", 0, 130), tmp_path / "export"
    assert run_cli(eb.main, ["--blimp-dir", str(blimp), "--blimp-dir", str(ewok), "--checkpoints", f"student={run_dir}",
                             "--convention", "babylm2025", "--export-dir", str(export), "--output-dir",
                             str(tmp_path / "out"), "--no-progress"]) == 0
    for label in WORDS:
        base = export / "student" / label / "zero_shot" / "causal"
        blimp = json.loads((base / "blimp" / "blimp_fast" / "predictions.json").read_text())
        assert {k: len(v["predictions"]) for k, v in blimp.items()} == {"regular_plural_subject_verb_agreement_1": 200}
        ewok = json.loads((base / "ewok" / "ewok_fast" / "predictions.json").read_text())
        assert {k: len(v["predictions"]) for k, v in ewok.items()} == {"agent-properties": 100}
        found = check_export(export, "student", label)
        assert found["problems"] == [] and "blimp/blimp_fast" not in " ".join(found["to_do"])
    assert not (export / "student" / "main").exists()
