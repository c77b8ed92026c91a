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
from config import PipelineConfig, UserError, load_config

ROOT = Path(__file__).resolve().parents[1]

TINY_MODEL = ["model.hidden_size=32", "model.num_layers=2", "model.num_heads=4", "model.intermediate_size=64",
              "data.seq_length=32", "data.eval_samples=8", "training.batch_size=8", "training.precision=fp32",
              "training.logging_steps=1"]


def tiny_pipeline_yaml(tmp_path, teacher2_steps=8) -> Path:
    """The default pipeline shrunk: a 6000-word synthetic corpus, hidden-32 models, a few steps each."""
    stages = {s: TINY_MODEL + ["training.max_steps=6"] for s in ("teacher1", "student", "distilled")}
    stages["teacher2"] = TINY_MODEL + [f"training.max_steps={teacher2_steps}", "training.eval_steps=10"]
    stages["tokenizer"] = ["tokenizer.vocab_size=400"]
    stages["eval"] = ["eval.max_pairs_per_file=10"]
    cfg = {"pipeline": {"work_dir": str(tmp_path / "work"), "synthetic_train_words": 6000, "synthetic_dev_words": 2000,
                        "synthetic_pairs": 10, "stage_overrides": stages}}
    path = tmp_path / "pipeline.yaml"
    path.write_text("# python run_pipeline.py --config this file\n" + yaml.safe_dump(cfg))
    return path


def test_stage_arguments_point_under_work_dir(tmp_path):
    cfg = load_config(PipelineConfig, ROOT / "config/pipeline.yaml", [f"pipeline.work_dir={tmp_path}"])
    plan = run_pipeline.Plan(cfg.pipeline)
    argv = plan.argv("distilled")
    assert argv[:2] == ["--config", "config/tiny-distill.yaml"] and argv[-1] == "--resume"
    assert f"distillation.teachers=[{tmp_path}/models/teacher-1,{tmp_path}/models/teacher-2]" in argv
    assert f"data.train_dir={tmp_path}/clean/babylm_10M" in argv
    ev = plan.argv("eval")
    assert any(a.startswith("eval.ensembles={teachers-ensemble: [") for a in ev)
    assert yaml.safe_load(next(a for a in ev if a.startswith("eval.models="))[len("eval.models="):]) == {
        "teacher-1": f"{tmp_path}/models/teacher-1", "teacher-2": f"{tmp_path}/models/teacher-2",
        "student": f"{tmp_path}/models/student", "distilled": f"{tmp_path}/models/distilled"}


def test_markers_skip_finished_stages_until_arguments_change(tmp_path, capsys):
    path = tiny_pipeline_yaml(tmp_path)
    assert run_pipeline.main(["--config", str(path), "--only", "data"]) == 0
    assert run_pipeline.main(["--config", str(path), "--only", "clean"]) == 0
    cfg = load_config(PipelineConfig, path)
    plan = run_pipeline.Plan(cfg.pipeline)
    assert plan.is_done("data") and plan.is_done("clean") and not plan.is_done("tokenizer")
    changed = run_pipeline.Plan(load_config(PipelineConfig, path, ["pipeline.stage_overrides.clean=[]"]).pipeline)
    assert changed.is_done("data") and changed.is_done("clean")  # same arguments
    other = run_pipeline.Plan(load_config(PipelineConfig, path, ["pipeline.synthetic_seed=5"]).pipeline)
    assert not other.is_done("data") and not other.is_done("clean")  # a changed stage invalidates the later ones
    plan.mark("teacher1")
    assert plan.is_done("teacher1")
    new_tok = run_pipeline.Plan(load_config(PipelineConfig, path,
                                            ["pipeline.stage_overrides.tokenizer=[tokenizer.vocab_size=390]"]).pipeline)
    assert new_tok.is_done("clean") and not new_tok.is_done("tokenizer") and not new_tok.is_done("teacher1")


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
    while time.time() < deadline and not list(ckpt_dir.glob("checkpoint-*/trainer_state.json")):
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
    metrics = json.loads((work / "models" / "teacher-2" / "metrics.json").read_text())
    assert metrics["global_step"] == 60
    table = (work / "results" / "table.md").read_text()
    for col in ("teacher-1", "teacher-2", "teachers-ensemble", "student", "distilled"):
        assert col in table
    assert (work / "results" / "blimp.png").stat().st_size > 1000


@pytest.mark.slow
def test_default_pipeline_end_to_end(tmp_path):
    """The newcomer's command itself: the embedded default, full size (about 4 minutes on 2 idle cores)."""
    r = subprocess.run([sys.executable, "run_pipeline.py", f"pipeline.work_dir={tmp_path / 'run'}"], cwd=ROOT,
                       capture_output=True, text=True, timeout=1800, env=dict(os.environ, CI="1"))
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    results = tmp_path / "run" / "results"
    header = (results / "table.md").read_text().splitlines()[0]
    assert header == "| Task | teacher-1 | teacher-2 | teachers-ensemble | student | distilled |"
    assert "At this scale the distilled student" in r.stdout and (results / "blimp.png").stat().st_size > 10_000
    for name in ("teacher-1", "teacher-2", "student"):
        m = json.loads((tmp_path / "run" / "models" / name / "metrics.json").read_text())
        assert m["eval_loss"] < 3.0, (name, m["eval_loss"])  # learnt the synthetic grammar (uniform: ln 1536 = 7.3)
