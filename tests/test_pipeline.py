"""run_pipeline.py: stage plumbing, skip-when-done, and a real kill-and-resume of the whole pipeline on tiny models."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

import run_pipeline
from babyllama.config import UserError, load_config
from babyllama.schema import PipelineConfig
from babyllama.run_folder import checkpoint_problem, checkpoints_in

ROOT = Path(__file__).resolve().parents[1]

TINY_MODEL = ["model.hidden_size=32", "model.num_layers=2", "model.num_heads=4", "model.intermediate_size=64",
              "data.seq_length=32", "data.eval_samples=8", "training.batch_size=8", "training.precision=fp32",
              "training.logging_steps=1"]


def tiny_pipeline_yaml(tmp_path, teacher2_steps=8) -> Path:
    """The default pipeline shrunk: a 6000-word synthetic corpus, hidden-32 models, a few steps each."""
    # the students' 14 steps see about 1100 words: past pipeline.save_words' 1000
    stages = {s: TINY_MODEL + [f"training.max_steps={6 if s == 'teacher1' else 14}"]
              for s in ("teacher1", "student", "distilled")}
    stages["teacher2"] = TINY_MODEL + [f"training.max_steps={teacher2_steps}", "training.eval_steps=10"]
    stages["tokenizer"] = ["tokenizer.vocab_size=400"]
    stages["eval"] = ["eval.max_pairs_per_file=10"]
    stages["finetune"] = ["finetune.per_task.synthetic_cola.num_epochs=0.1", "finetune.precision=fp32"]
    cfg = {"pipeline": {"work_dir": str(tmp_path / "work"), "synthetic_train_words": 6000, "synthetic_dev_words": 2000,
                        "synthetic_pairs": 10, "finetune_tasks": ["synthetic_cola"], "stage_overrides": stages,
                        "save_words": [1000]}}
    path = tmp_path / "pipeline.yaml"
    path.write_text("# python run_pipeline.py --config this file\n" + yaml.safe_dump(cfg))
    return path


def test_stage_configs_point_under_work_dir_whatever_the_path(tmp_path):
    work = tmp_path / "odd, name: [x]"  # commas, colons and brackets broke the old YAML-string overrides
    cfg = load_config(PipelineConfig, ROOT / "config/pipeline.yaml", [], )
    cfg.pipeline.work_dir = str(work)
    plan = run_pipeline.Plan(cfg.pipeline)
    d = plan.config(plan.by_name["distilled"])
    assert d.distillation.teachers == [f"{work}/models/teacher-1", f"{work}/models/teacher-2"]
    assert d.data.train_dir == f"{work}/clean/babylm_10M" and d.training.output_dir == f"{work}/models/distilled"
    ev = plan.config(plan.by_name["eval"])
    assert ev.eval.ensembles == {"teachers-ensemble": [f"{work}/models/teacher-1", f"{work}/models/teacher-2"]}
    assert ev.eval.models == {n: f"{work}/models/{n}" for n in ("teacher-1", "teacher-2", "student", "distilled")}


def test_seeds_train_the_students_once_per_seed_and_the_teachers_once(tmp_path):
    cfg = load_config(PipelineConfig, ROOT / "config/pipeline.yaml", [f"pipeline.work_dir={tmp_path}",
                                                                      "pipeline.seeds=[3, 7]"])
    plan = run_pipeline.Plan(cfg.pipeline)
    names = [s.name for s in plan.stages]
    assert names == ["data", "clean", "tokenizer", "teacher1", "teacher2", "student-s3", "student-s7", "distilled-s3",
                     "distilled-s7", "text", "eval", "finetune", "report"]
    seeds = {n: plan.config(plan.by_name[n]).training.seed for n in names if n.startswith(("student", "distilled"))}
    assert seeds == {"student-s3": 3, "distilled-s3": 3, "student-s7": 7, "distilled-s7": 7}
    assert plan.config(plan.by_name["distilled-s7"]).training.output_dir == f"{tmp_path}/models/distilled-s7"
    assert set(plan.config(plan.by_name["eval"]).eval.models) == {"teacher-1", "teacher-2", "student-s3",
                                                                  "distilled-s3", "student-s7", "distilled-s7"}
    assert set(plan.config(plan.by_name["finetune"]).finetune.models) == {"student-s3", "distilled-s3", "student-s7",
                                                                          "distilled-s7"}


def test_zero_shot_dirs_get_one_eval_stage_each(tmp_path):
    ewok, ent = tmp_path / "suites" / "ewok_filtered", tmp_path / "suites" / "entity_tracking"
    for d in (ewok, ent):
        d.mkdir(parents=True)
        (d / "a.jsonl").write_text("{}\n")
    cfg = load_config(PipelineConfig, ROOT / "config/pipeline.yaml", [
        f"pipeline.work_dir={tmp_path / 'w'}", f"pipeline.zero_shot_dirs=[{ewok}, {ent}]",
        "pipeline.stage_overrides={eval: [eval.max_pairs_per_file=7], zero_shot: [eval.long_items=truncate]}"])
    plan = run_pipeline.Plan(cfg.pipeline)
    names = [s.name for s in plan.stages]
    assert names[names.index("eval"):] == ["eval", "zero-shot-ewok_filtered", "zero-shot-entity_tracking", "finetune",
                                           "report"]
    ev = plan.config(plan.by_name["zero-shot-entity_tracking"]).eval
    assert (ev.blimp_dir, ev.output_dir) == (str(ent), f"{tmp_path}/w/results/zero_shot/entity_tracking")
    blimp = plan.config(plan.by_name["eval"]).eval
    assert ev.models == blimp.models and ev.max_pairs_per_file == blimp.max_pairs_per_file == 7
    assert (ev.long_items, blimp.long_items) == ("truncate", "error")  # zero_shot: those stages' own overrides
    assert plan.inputs(plan.by_name["zero-shot-ewok_filtered"])[0] == ewok / "a.jsonl"
    assert plan.fingerprint(plan.by_name["report"], None)["settings"]["zero_shot"] == [
        "zero-shot-ewok_filtered", "zero-shot-entity_tracking"]
    # the report: a table per suite, a column per model, read from the stage's results
    from babyllama import pipeline_report
    for n, f in plan.models().items():
        f.mkdir(parents=True)
        (f / "metrics.json").write_text("{}")
    out = plan.eval_output("zero-shot-ewok_filtered")
    out.mkdir(parents=True)
    for k, n in enumerate(["teacher-1", "teacher-2", "teachers-ensemble", "student", "distilled"]):
        (out / f"{n}.json").write_text(json.dumps({
            "model": n, "phenomena": {}, "supplement": {}, "averages": {"phenomena": None, "files": None},
            "suites": {"ewok": {"rows": {"agent-properties": k / 10, "social-relations": 0.5}, "avg": 0.25 + k / 20}}}))
    lines = pipeline_report.Report(plan).blimp(out, "`ewok_filtered`")
    assert lines[:5] == ["## EWoK (accuracy %), `ewok_filtered`", "",
                         "| domain | teacher-1 | teacher-2 | teachers-ensemble | student | distilled |",
                         "| --- | ---: | ---: | ---: | ---: | ---: |",
                         "| agent-properties | 0.0 | 10.0 | 20.0 | 30.0 | 40.0 |"]
    assert lines[6] == "| *Average* | 25.0 | 30.0 | 35.0 | 40.0 | 45.0 |"
    with pytest.raises(UserError, match=r"pipeline.zero_shot_dirs: two folders named 'ewok_filtered'"):
        load_config(PipelineConfig, ROOT / "config/pipeline.yaml",
                    [f"pipeline.zero_shot_dirs=[{ewok}, {tmp_path}/other/ewok_filtered]"])


def test_ablations_add_one_student_per_seed_with_their_overrides(tmp_path):
    cfg = load_config(PipelineConfig, ROOT / "config/pipeline.yaml", [
        f"pipeline.work_dir={tmp_path}", "pipeline.seeds=[0, 1]",
        "pipeline.ablations={sep: {of: student, overrides: [data.separator=<s>]}, "
        "tm: {of: distilled, overrides: [distillation.kl_normalization=token_mean]}}", "pipeline.save_words=babylm"])
    plan = run_pipeline.Plan(cfg.pipeline)
    saves = {s.name: plan.config(s).training.save_words for s in plan.stages if s.kind in ("train", "distill")}
    assert {n for n, v in saves.items() if v == "babylm"} == set(saves) - {"teacher1", "teacher2"}  # every student
    assert saves["teacher1"] is None and len(saves) == 10
    assert [s.name for s in plan.stages if s.name.startswith(("sep", "tm"))] == ["sep-s0", "sep-s1", "tm-s0", "tm-s1"]
    sep, plain = plan.config(plan.by_name["sep-s1"]), plan.config(plan.by_name["student-s1"])
    assert (sep.data.separator, plain.data.separator) == ("<s>", "none")
    assert sep.training.seed == 1 and sep.training.output_dir == f"{tmp_path}/models/sep-s1"
    assert sep.model == plain.model  # the YAML and stage_overrides of the student, then the ablation's overrides
    tm = plan.config(plan.by_name["tm-s0"])
    assert tm.distillation.kl_normalization == "token_mean" and tm.distillation.teachers[0].endswith("teacher-1")
    assert plan.groups() == {"student": ["student-s0", "student-s1"], "distilled": ["distilled-s0", "distilled-s1"],
                             "sep": ["sep-s0", "sep-s1"], "tm": ["tm-s0", "tm-s1"]}
    with pytest.raises(UserError, match="pipeline.ablations.student-s1"):
        load_config(PipelineConfig, ROOT / "config/pipeline.yaml",
                    ["pipeline.ablations={student-s1: {of: student, overrides: []}}"])


def test_fingerprints_follow_meaning_not_text(tmp_path, capsys):
    """A comment or a logging key changes nothing; a setting or an input file's contents redo the stage."""
    clean_yaml = tmp_path / "clean.yaml"
    clean_yaml.write_text((ROOT / "config/clean.yaml").read_text())
    path = tiny_pipeline_yaml(tmp_path)
    data = yaml.safe_load(path.read_text())
    data["pipeline"]["clean"] = str(clean_yaml)
    path.write_text(yaml.safe_dump(data))
    for stage in ("data", "clean", "tokenizer"):
        assert run_pipeline.main(["--config", str(path), "--only", stage]) == 0
    capsys.readouterr()

    def dry(*over):
        assert run_pipeline.main(["--config", str(path), "--dry-run", *over]) == 0
        return {line.split("] ")[1].split(":")[0]: line for line in capsys.readouterr().out.splitlines()
                if line.startswith("== [")}

    out = dry()
    assert all("done already" in out[s] for s in ("data", "clean", "tokenizer")) and "would run" in out["teacher1"]
    clean_yaml.write_text(clean_yaml.read_text() + "# a harmless comment\n")
    assert "done already" in dry()["clean"]
    out = dry("pipeline.stage_overrides.clean=[clean.passthrough_unknown=true]")
    assert "clean.passthrough_unknown: False -> True" in out["clean"]
    assert out["tokenizer"].endswith("would run (clean reruns)")  # its input, the cleaned text, is rebuilt first
    raw = tmp_path / "work" / "synthetic" / "babylm_10M" / "aochildes.train"
    before = {p: p.read_bytes() for p in (tmp_path / "work").rglob("*") if p.is_file()}
    raw.write_text(raw.read_text() + "one more line .\n")
    out = dry()
    assert "input synthetic/babylm_10M/aochildes.train changed" in out["clean"], out["clean"]
    assert out["tokenizer"].endswith("would run (clean reruns)") and "would run" in out["teacher1"]
    after = {p: p.read_bytes() for p in (tmp_path / "work").rglob("*") if p.is_file()}
    assert {p: b for p, b in after.items() if p != raw} == {p: b for p, b in before.items() if p != raw}  # dry: no writes


def test_dry_run_lists_exactly_what_reruns_and_the_rerun_equals_a_fresh_run(tmp_path, monkeypatch, capsys):
    """Issue 23: a raw file changes, then one stage's lr. --dry-run names exactly the stages the real run then runs
    (every stage downstream of a change, with the reason), and RESULTS.md and the fine-tuning table after the reruns
    equal those of a fresh run of the same inputs in a new work dir (RESULTS.md less its run-time lines)."""
    def pipeline(folder, *args) -> dict[str, str]:
        """Run in ``folder`` (the same relative paths, so the same command line, in both work dirs); {stage: line}."""
        monkeypatch.chdir(folder)
        assert run_pipeline.main(["--config", "pipeline.yaml", *args]) == 0
        lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("== [")]
        return {line.split("] ")[1].split(" ")[0].rstrip(":"): line for line in lines}

    ran = lambda out: {s for s, line in out.items() if not line.endswith("done already, skipped")}
    data = yaml.safe_load(tiny_pipeline_yaml(tmp_path).read_text())
    data["pipeline"]["work_dir"] = "work"
    # fine-tuning long enough that its MCC tells the models apart (0.0 for each after the usual 4 steps)
    data["pipeline"]["stage_overrides"]["finetune"] = [
        "finetune.per_task.synthetic_cola={lr: 1e-2, batch_size: 32, num_epochs: 0.3, eval_steps: 4}",
        "finetune.precision=fp32"]
    for run in ("a", "b"):
        (tmp_path / run).mkdir()
        (tmp_path / run / "pipeline.yaml").write_text(yaml.safe_dump(data))
    a = tmp_path / "a"
    pipeline(a)
    raw = Path("work/synthetic/babylm_10M/aochildes.train")
    change_raw = lambda: raw.write_text(raw.read_text() + "the dog sees the cat .\n")
    change_raw()
    dry = pipeline(a, "--dry-run")
    stages = [s.name for s in run_pipeline.Plan(load_config(PipelineConfig, a / "pipeline.yaml").pipeline).stages]
    assert ran(dry) == set(stages) - {"data"}, dry
    assert dry["tokenizer"].endswith("would run (clean reruns)")
    assert dry["teacher1"].endswith("would move aside and run (clean reruns; tokenizer reruns)")
    assert ran(pipeline(a)) == ran(dry)
    assert ran(pipeline(a, "--dry-run")) == set()  # and now all is done
    # one stage's lr, shown in the report's model table
    data["pipeline"]["stage_overrides"]["student"].append("training.lr=0.001")
    for run in ("a", "b"):
        (tmp_path / run / "pipeline.yaml").write_text(yaml.safe_dump(data))
    dry = pipeline(a, "--dry-run")
    assert ran(dry) == {"student", "text", "eval", "finetune", "report"}, dry
    assert "training.lr: 0.003 -> 0.001" in dry["student"] and dry["report"].endswith("would run (student reruns; "
                                                                                     "text reruns; eval reruns; "
                                                                                     "finetune reruns)")
    assert ran(pipeline(a)) == ran(dry)
    # a fresh run in a new work dir, of the same inputs: the synthetic data, then the same raw change
    pipeline(tmp_path / "b", "--only", "data")
    change_raw()
    assert ran(pipeline(tmp_path / "b")) == set(stages) - {"data"}
    def timeless(rep):  # less the run times: the "- time:" line and the stage-minutes table, up to its blank line
        head, times = rep.split("- time: ", 1)
        return head + times.split("\n\n", 2)[2]

    rep = {r: (tmp_path / r / "work" / "results" / "RESULTS.md").read_text() for r in ("a", "b")}
    assert timeless(rep["a"]) == timeless(rep["b"]) and "| stages | minutes |" not in timeless(rep["a"])
    assert "## Models" in timeless(rep["a"])
    row = next(line for line in rep["a"].splitlines() if line.startswith("| student | llama |"))
    assert "| 32 | 0.001 | 1,134 | chck_1K |" in row, row  # seq, lr, words seen, checkpoints by words
    ft = {r: (tmp_path / r / "work" / "results" / "finetune" / "table.md").read_text() for r in ("a", "b")}
    assert ft["a"] == ft["b"] and "| Synth. CoLA (MCC) |" in ft["a"] and "| 0.0 |" not in ft["a"], ft["a"]
    # stage records written before stages were chained: trusted where their direct inputs match and upgraded, except
    # fine-tuning (its results were keyed by name then) and the report (it fingerprinted nothing it read)
    for marker in (a / "work" / ".done").glob("[!.]*"):
        if "." not in marker.name:
            rec = json.loads(marker.read_text())
            del rec["upstream"]
            marker.write_text(json.dumps(rec))
    dry = pipeline(a, "--dry-run")
    assert ran(dry) == {"finetune", "report"} and "recorded before results named their sources" in dry["finetune"]
    assert ran(pipeline(a)) == {"finetune", "report"} and ran(pipeline(a, "--dry-run")) == set()
    assert (a / "work" / "results" / "finetune" / "table.md").read_text() == ft["b"]


def test_a_finished_model_is_moved_aside_never_deleted(tmp_path, capsys):
    path = tiny_pipeline_yaml(tmp_path)
    for stage in ("data", "clean", "tokenizer", "teacher1"):
        assert run_pipeline.main(["--config", str(path), "--only", stage]) == 0
    model = tmp_path / "work" / "models" / "teacher-1"
    saved = {p.relative_to(model): p.read_bytes() for p in model.rglob("*") if p.is_file()}
    capsys.readouterr()
    over = ["pipeline.stage_overrides.teacher1=[" + ",".join(TINY_MODEL + ["training.max_steps=4"]) + "]"]
    # dotted overrides may sit on both sides of a flag
    assert run_pipeline.main(["--config", str(path), *over, "--dry-run", f"pipeline.work_dir={tmp_path / 'work'}"]) == 0
    assert "would move aside and run (training.max_steps: 6 -> 4" in capsys.readouterr().out
    assert run_pipeline.main(["--config", str(path), *over, "--only", "teacher1"]) == 0
    old = tmp_path / "work" / "models" / "teacher-1.old-1"
    assert {p.relative_to(old): p.read_bytes() for p in old.rglob("*") if p.is_file()} == saved
    assert json.loads((model / "metrics.json").read_text())["global_step"] == 4


def test_missing_raw_data_is_a_clear_error(tmp_path):
    with pytest.raises(UserError, match="must hold the babylm_10M/ split folder"):
        run_pipeline.main(["--config", str(ROOT / "config/paper.yaml"), f"pipeline.raw_data={tmp_path}",
                           f"pipeline.work_dir={tmp_path / 'w'}", "--only", "data"])


def test_killed_pipeline_resumes_without_redoing_stages(tmp_path):
    path = tiny_pipeline_yaml(tmp_path, teacher2_steps=60)
    work = tmp_path / "work"
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    cmd = [sys.executable, "run_pipeline.py", "--config", str(path)]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
                            start_new_session=True)
    deadline = time.time() + 600
    ckpt_dir = work / "models" / "teacher-2"
    # kill once a checkpoint is complete (its trainer_state.json, written last, parses): a kill while it is being
    # written leaves a checkpoint that --resume rightly skips, and the test would see a fresh start instead
    while time.time() < deadline and not any(checkpoint_problem(c) is None for c in checkpoints_in(ckpt_dir)):
        assert proc.poll() is None, proc.stdout.read()
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGKILL)  # killed during the teacher-2 training stage
    proc.wait()
    assert (work / ".done" / "teacher1").is_file() and not (work / ".done" / "teacher2").exists()
    t1 = work / "models" / "teacher-1" / "model.safetensors"
    t1_mtime = t1.stat().st_mtime_ns
    r = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, env=env, timeout=900)
    out = r.stdout
    assert r.returncode == 0, out[-3000:] + r.stderr[-3000:]
    for stage in ("data", "clean", "tokenizer", "teacher1"):
        assert f"] {stage}: done already, skipped" in out, stage
    assert "resuming from" in out and "checkpoint-" in out.split("resuming from", 1)[1].splitlines()[0]
    assert t1.stat().st_mtime_ns == t1_mtime  # teacher 1 not retrained
    for lock in (tmp_path / ".work.lock", work / "models" / ".teacher-2.lock"):  # the killed run's, taken over
        assert f"note: {lock}: taking over the lock of a run that is gone (pid {proc.pid} on " in r.stderr
        assert not lock.exists()
    metrics = json.loads((work / "models" / "teacher-2" / "metrics.json").read_text())
    assert metrics["global_step"] == 60
    table = (work / "results" / "table.md").read_text()
    for col in ("teacher-1", "teacher-2", "teachers-ensemble", "student", "distilled"):
        assert col in table
    assert (work / "results" / "blimp.png").stat().st_size > 1000
    tuned = json.loads((work / "results" / "finetune" / "distilled" / "synthetic_cola.json").read_text())
    assert tuned["metric"] == "mcc" and -1 <= tuned["value"] <= 1
    # the report: every figure read from the run's files
    text = json.loads((work / "results" / "dev_text.json").read_text())["results"]
    ce = {n: text[n]["all"]["ce"] for n in ("teacher-1", "teacher-2", "teachers-ensemble", "student", "distilled")}
    blimp = {n: json.loads((work / "results" / f"{n}.json").read_text())["averages"] for n in ("student", "distilled")}
    rep = (work / "results" / "RESULTS.md").read_text()
    assert f"- command: `python run_pipeline.py --config {path}`" in rep
    row = next(line for line in rep.splitlines() if line.startswith("| *all* |"))
    assert row == "| *all* | " + " | ".join(f"{v:.3f}" for v in ce.values()) + " |"
    d_acc = 100 * (blimp["distilled"]["phenomena"] - blimp["student"]["phenomena"])
    assert f"| distilled − student | – | {ce['distilled'] - ce['student']:+.3f} | {d_acc:+.1f} |" in rep
    assert f"distilled − plain is {ce['distilled'] - ce['student']:+.3f} nats of dev CE" in rep
    for name in ("teacher-1", "student", "distilled"):  # words seen and checkpoints by words (students only)
        seen = json.loads((work / "models" / name / "metrics.json").read_text())["words_seen"]
        marks = "chck_1K" if name != "teacher-1" else "–"
        models = rep.split("## Models", 1)[1].split("\n## ", 1)[0].splitlines()
        row = next(line for line in models if line.startswith(f"| {name} | "))
        assert row.endswith(f" | {seen:,} | {marks} |"), row
    # an ablation added later: one more student; the text and eval stages score it alone
    scored = {p: p.stat().st_mtime_ns for p in (work / "results").glob("teacher-1.json")}
    first = {s: json.loads((work / ".done" / s).read_text())["seconds"] for s in ("text", "eval")}
    r = subprocess.run(cmd + ["pipeline.ablations={tm: {of: distilled, overrides: "
                              "[distillation.kl_normalization=token_mean]}}"], cwd=ROOT, capture_output=True,
                       text=True, env=env, timeout=900)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert r.stdout.count("scoring tm (the others are scored already)") == 2, r.stdout[-3000:]
    assert "] distilled: done already, skipped" in r.stdout
    assert {p: p.stat().st_mtime_ns for p in scored} == scored
    for stage, seconds in first.items():  # scoring only the new model adds to the stage's earlier time
        assert json.loads((work / ".done" / stage).read_text())["seconds"] > seconds
    text = json.loads((work / "results" / "dev_text.json").read_text())["results"]
    assert list(text) == ["teacher-1", "teacher-2", "student", "distilled", "tm", "teachers-ensemble"]
    rep = (work / "results" / "RESULTS.md").read_text()
    assert "| tm − distilled | – |" in rep
    run = yaml.safe_load((work / "models" / "tm" / "config.yaml").read_text())
    assert run["distillation"]["kl_normalization"] == "token_mean"


@pytest.mark.slow
def test_default_pipeline_end_to_end(tmp_path):
    """The newcomer's command itself: the embedded default, full size (about 8.5 minutes on 2 idle cores)."""
    r = subprocess.run([sys.executable, "run_pipeline.py", f"pipeline.work_dir={tmp_path / 'run'}"], cwd=ROOT,
                       capture_output=True, text=True, timeout=1800, env=dict(os.environ, CI="1"))
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    results = tmp_path / "run" / "results"
    header = (results / "table.md").read_text().splitlines()[0]
    assert header == "| Task | teacher-1 | teacher-2 | teachers-ensemble | student | distilled |"
    assert "**Verdict.**" in r.stdout and (results / "blimp.png").stat().st_size > 10_000
    for name in ("teacher-1", "teacher-2", "student"):
        m = json.loads((tmp_path / "run" / "models" / name / "metrics.json").read_text())
        assert m["eval_loss"] < 3.3, (name, m["eval_loss"])  # learnt the synthetic grammar (uniform: ln 1536 = 7.3)
    # the demo separates models (issue 12): each teacher 0.15 nats of dev CE ahead of the plain student, no phenomenon
    # solved (>= 98 %) by every model, no model at chance on every phenomenon
    ce = {n: r["all"]["ce"] for n, r in json.loads((results / "dev_text.json").read_text())["results"].items()}
    assert ce["student"] - ce["teacher-1"] >= 0.15 and ce["student"] - ce["teacher-2"] >= 0.15, ce
    lines = (results / "table.md").read_text().splitlines()[2:]
    rows = [line.split("|")[1:-1] for line in lines if line.startswith("|")]
    scores = {r[0].strip(): [float(c.strip(" *")) for c in r[1:]] for r in rows if not r[0].strip().startswith("*")}
    assert not [p for p, v in scores.items() if min(v) >= 98.0], scores
    for column in zip(*scores.values()):
        assert max(column) > 60.0, scores


def test_cpu_repro_is_the_paper_scaled_down(tiny_tokenizer_dir):
    """config/cpu-repro.yaml: a LLaMA and a GPT-2 teacher about 6x and 12x the student in non-embedding parameters
    (as 360M and 705M are to 58M), the paper's distillation settings, one training subset for every model."""
    from babyllama.models import build_model
    from tokenizer import load_tokenizer
    cfg = load_config(PipelineConfig, ROOT / "config/cpu-repro.yaml", [])
    plan = run_pipeline.Plan(cfg.pipeline)
    tok = load_tokenizer(tiny_tokenizer_dir)
    train = {s.name: plan.config(s) for s in plan.stages if s.kind in ("train", "distill")}

    def body(c):
        model = build_model(c.model, tok, c.data.seq_length, device="meta")
        return sum(p.numel() for n, p in model.named_parameters() if not any(
            k in n for k in ("embed_tokens", "wte", "wpe", "lm_head")))

    student = body(train["student-s0"])
    assert (train["teacher1"].model.type, train["teacher2"].model.type, train["student-s0"].model.type) == \
        ("llama", "gpt2", "llama")
    assert 5.5 < body(train["teacher1"]) / student < 7.5 and 10 < body(train["teacher2"]) / student < 13.5
    assert {c.data.train_share for c in train.values()} == {cfg.pipeline.train_share} and cfg.pipeline.train_share < 1
    assert cfg.pipeline.seeds == [0, 1, 2] and not any(c.data.random_offset for c in train.values())
    d = train["distilled-s1"].distillation
    assert (d.alpha, d.temperature, d.kl_normalization, d.teacher_combine, d.teacher_cache) == \
        (0.5, 2.0, "batchmean", "logits", True)
    assert train["distilled-token-mean-s2"].distillation.kl_normalization == "token_mean"
    assert train["student-sep-s0"].data.separator == "<s>" and train["student-s0"].data.separator == "none"
    assert train["student-s0"].model == train["distilled-s0"].model  # the two students differ only by the teachers
    assert {c.training.lr_scheduler for c in train.values()} == {"cosine"}
    assert {c.training.num_epochs for c in train.values()} == {1}  # one pass over more text (the YAML says why)


def test_verdict_counts_a_difference_within_seed_noise_as_none():
    from babyllama.pipeline_report import ordering_words
    assert ordering_words([-0.05], [1.0]) == "held"  # one seed: the sign decides
    assert ordering_words([0.06], [1.0]) == "held only in part"
    assert ordering_words([-0.018, -0.015, 0.031], [-0.3, -2.6, -2.1]) == "did not hold"  # CE mean -0.000 +- 0.027
    assert ordering_words([-0.05, -0.04, -0.06], [2.0, 1.5, 2.5]) == "held"
    assert ordering_words([-0.05, -0.04, -0.06], [2.0, -1.5, 0.5]) == "held only in part"  # +0.33 +- 1.8: noise


def test_work_dir_that_is_a_file_is_a_one_line_error(tmp_path, capsys):
    from babyllama.config import run_cli

    (tmp_path / "work").write_text("notes")
    assert run_cli(run_pipeline.main, ["--config", str(tiny_pipeline_yaml(tmp_path)), "--dry-run"]) == 2
    err = capsys.readouterr().err
    assert err == f"error: {tmp_path / 'work'}: pipeline.work_dir exists and is not a folder; pick another path\n"
    assert (tmp_path / "work").read_text() == "notes"
