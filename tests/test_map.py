"""The regime map (pipeline.budgets, homogeneous teachers, learning curves, the map report): plan, report from the
run's files, and a tiny 2 x 2 grid trained end to end, each cell once even across a rerun."""

import json
import statistics
from pathlib import Path

import pytest
import yaml

from babyllama import pipeline_report
from babyllama import study_reports
import run_pipeline
from babyllama.config import UserError, load_config
from babyllama.schema import PipelineConfig
from test_pipeline import TINY_MODEL, tiny_pipeline_yaml
from babyllama.trainer_setup import learning_curve

ROOT = Path(__file__).resolve().parents[1]
GRID = ["pipeline.seeds=[0, 1]", "pipeline.teacher_seeds=[0, 1, 2, 3]", "pipeline.homogeneous_size=3",
        "pipeline.ablations={homo: {of: distilled, teachers: homogeneous}, "
        "t1: {of: distilled, overrides: [distillation.temperature=1.0]}}",
        "pipeline.budgets=[{train_share: 0.1, stage_overrides: {student: [training.num_epochs=5]}}, "
        "{train_share: 0.5, ablations: [homo]}]"]


def grid_plan(tmp_path, extra=()):
    cfg = load_config(PipelineConfig, ROOT / "config/pipeline.yaml", [f"pipeline.work_dir={tmp_path}", *GRID, *extra])
    return run_pipeline.Plan(cfg.pipeline)


def test_budgets_run_every_model_stage_once_per_budget_with_its_share_and_overrides(tmp_path):
    plan = grid_plan(tmp_path)
    names = [s.name for s in plan.stages]
    assert names[:3] == ["data", "clean", "tokenizer"] and names[-3:] == ["eval", "finetune", "report"]
    assert [n[len("b0.1/"):] for n in names if n.startswith("b0.1/")] == [
        "teacher1", "teacher2", "student-s0", "student-s1", "student-s2", "student-s3", "distilled-s0",
        "distilled-s1", "homo-s0", "homo-s1", "t1-s0", "t1-s1", "text"]
    assert "b0.5/t1-s0" not in names and "b0.5/homo-s1" in names  # pruned at 0.5
    s01, s05 = plan.config(plan.by_name["b0.1/student-s0"]), plan.config(plan.by_name["b0.5/student-s0"])
    assert (s01.data.train_share, s05.data.train_share) == (0.1, 0.5)
    assert (s01.training.num_epochs, s05.training.num_epochs) == (5, 4)  # 4: the YAML
    assert s01.training.output_dir == f"{tmp_path}/models/b0.1/student-s0"
    assert plan.config(plan.by_name["b0.5/distilled-s1"]).distillation.teachers == [
        f"{tmp_path}/models/b0.5/teacher-1", f"{tmp_path}/models/b0.5/teacher-2"]


def test_homogeneous_teachers_are_other_seeds_plain_students_never_its_own(tmp_path):
    plan = grid_plan(tmp_path)
    for name in ("b0.1/homo-s0", "b0.1/homo-s1", "b0.5/homo-s0", "b0.5/homo-s1"):
        stage = plan.by_name[name]
        teachers = plan.config(stage).distillation.teachers
        pre = name.split("/")[0]
        assert len(teachers) == 3 and f"{tmp_path}/models/{pre}/student-s{stage.seed}" not in teachers
        assert all(t.startswith(f"{tmp_path}/models/{pre}/student-s") for t in teachers)
    assert plan.config(plan.by_name["b0.1/homo-s1"]).distillation.teachers == [
        f"{tmp_path}/models/b0.1/student-s{s}" for s in (0, 2, 3)]
    ens = plan.config(plan.by_name["eval"]).eval.ensembles
    assert ens["b0.5/students-ensemble"] == [f"{tmp_path}/models/b0.5/student-s{s}" for s in range(4)]
    # the homogeneous stage's fingerprint reads its teachers, so a retrained plain student redoes it
    assert "models/b0.1/student-s2" in plan.fingerprint(plan.by_name["b0.1/homo-s0"], None)["inputs"]


def test_without_pipeline_seeds_the_homogeneous_teachers_skip_the_seed_the_student_trains_with(tmp_path):
    """pipeline.seeds null: the distilled stage trains with its YAML's training.seed (42), so the plain student of
    seed 42 in teacher_seeds is its own seed's twin and never one of its teachers."""
    flat = ["pipeline.seeds=null", "pipeline.budgets=null", "pipeline.teacher_seeds=[42, 1, 2, 3]"]
    plan = grid_plan(tmp_path, flat)
    assert plan.config(plan.by_name["homo"]).distillation.teachers == [
        f"{tmp_path}/models/student-s{s}" for s in (1, 2, 3)]
    plan = grid_plan(tmp_path, flat + ["pipeline.stage_overrides={distilled: [training.seed=2]}"])
    assert plan.config(plan.by_name["homo"]).distillation.teachers == [
        f"{tmp_path}/models/student-s{s}" for s in (42, 1, 3)]
    short = grid_plan(tmp_path, flat[:2] + ["pipeline.teacher_seeds=[42, 1, 2]"])  # the schema cannot know the 42
    with pytest.raises(UserError, match=r"pipeline.teacher_seeds: \[42, 1, 2\]: homo needs 3 plain students "
                                        r"\(homogeneous_size\) besides its own seed 42; list more seeds"):
        short.config(short.by_name["homo"])


def test_bad_grids_are_one_line_errors(tmp_path):
    with pytest.raises(UserError, match=r"pipeline.teacher_seeds: \[0, 1, 2\]: ablation homo needs 3 plain students"):
        grid_plan(tmp_path, ["pipeline.teacher_seeds=[0, 1, 2]"])
    with pytest.raises(UserError, match="pipeline.ablations.homo.teachers: homogeneous teachers need of: distilled"):
        grid_plan(tmp_path, ["pipeline.ablations={homo: {of: student, teachers: homogeneous}}",
                             "pipeline.budgets=null"])
    with pytest.raises(UserError, match=r"pipeline.budgets: train shares \[0.1, 0.1\]"):
        grid_plan(tmp_path, ["pipeline.budgets=[{train_share: 0.1}, {train_share: 0.1}]"])
    with pytest.raises(UserError, match=r"pipeline.budgets\[\].ablations: \['nope'\]"):
        grid_plan(tmp_path, ["pipeline.budgets=[{train_share: 0.1, ablations: [nope]}]"])


def test_learning_curve_has_dev_ce_and_the_train_ce_since_the_last_eval():
    history = [{"loss": 5.0, "step": 1}, {"loss": 4.0, "step": 2}, {"eval_loss": 4.5, "epoch": 1.0, "step": 2},
               {"loss": 3.0, "ce": 2.0, "step": 3}, {"eval_loss": 9.0, "eval_ce": 4.2, "epoch": 2.0, "step": 3},
               {"eval_loss": 9.0, "eval_ce": 4.2, "epoch": 2.0, "step": 3}, {"train_runtime": 1.0, "step": 3}]
    assert learning_curve(history) == [{"epoch": 1.0, "step": 2, "dev_ce": 4.5, "train_ce": 4.5},
                                       {"epoch": 2.0, "step": 3, "dev_ce": 4.2, "train_ce": 2.0}]


# ----------------------------------------------------------------------------------------------------------------------
# the map report, from files written here


def fake_model(folder: Path, curve: list[float], T=2.0, norm="batchmean", distilled=False):
    folder.mkdir(parents=True)
    rows = [{"epoch": float(i + 1), "step": i + 1, "dev_ce": c, "train_ce": c - 0.1 * i} for i, c in enumerate(curve)]
    metrics = {"eval_loss": min(curve), "tokens_seen": 1000 * len(curve), "curve": rows}
    if distilled:
        metrics["eval_ce"] = min(curve)
    (folder / "metrics.json").write_text(json.dumps(metrics))
    cfg = {"distillation": {"temperature": T, "kl_normalization": norm}} if distilled else {}
    (folder / "config.yaml").write_text(yaml.safe_dump(cfg))


def test_the_map_is_computed_from_the_run_files(tmp_path):
    plan = grid_plan(tmp_path, ["pipeline.dev_text=false"])
    ce = {}  # the best-epoch CE of each fake model, which the map must subtract seed by seed
    for i, (name, folder) in enumerate(plan.models().items()):
        base = name.split("/")[1]
        best = 5.0 + 0.01 * i
        if base.startswith("student"):  # over-fits at 0.1 (minimum at epoch 2 of 3), still falling at 0.5
            curve = [best + 0.2, best, best + 0.05] if name.startswith("b0.1") else [best + 0.2, best + 0.1, best]
        else:
            curve = [best + 0.1, best]
        ce[name] = best
        T = 1.0 if base.startswith("t1") else 2.0
        fake_model(folder, curve, T=T, distilled=not base.startswith(("student", "teacher")))
    rep = study_reports.MapReport(plan)
    text = rep.markdown()
    for cell in ("distilled", "homo", "t1"):
        for share in (0.1, 0.5):
            d = rep.values[(cell, share)]
            if cell == "t1" and share == 0.5:
                assert d is None  # pruned
                continue
            want = [ce[f"b{share:g}/{cell}-s{s}"] - ce[f"b{share:g}/student-s{s}"] for s in (0, 1)]
            assert d == pytest.approx(want)
    row = next(line for line in text.splitlines() if line.startswith("| t1 |"))
    d = rep.values[("t1", 0.1)]
    assert row == (f"| t1 | heterogeneous, T 1, batchmean | {statistics.mean(d):+.3f} ± {statistics.stdev(d):.3f} "
                   "| – |")
    assert rep.limited == {0.1: True, 0.5: False}
    assert "H1, data limit" in text and (tmp_path / "results" / "map.png").is_file()
    assert (tmp_path / "results" / "curves.png").is_file()


def test_write_section_keeps_the_other_sections(tmp_path):
    f = tmp_path / "RESULTS.md"
    pipeline_report.write_section(f, "a", "first A")
    pipeline_report.write_section(f, "b", "B")
    pipeline_report.write_section(f, "a", "second A")
    text = f.read_text()
    assert "second A" in text and "first A" not in text and text.index("second A") < text.index("B")


# ----------------------------------------------------------------------------------------------------------------------
# a tiny 2 x 2 grid, for real


def test_tiny_grid_trains_every_cell_once_even_across_a_rerun(tmp_path, monkeypatch, capsys):
    path = tiny_pipeline_yaml(tmp_path)
    cfg = yaml.safe_load(path.read_text())
    p = cfg["pipeline"]
    p["stage_overrides"]["student"] = TINY_MODEL + ["training.max_steps=6", "training.eval_steps=3"]
    p.update(seeds=[0], teacher_seeds=[1, 2], homogeneous_size=2, eval=None, finetune=None, dev_text_share=0.5,
             ablations={"homo": {"of": "distilled", "teachers": "homogeneous"}},
             budgets=[{"train_share": 0.5}, {"train_share": 1.0}])
    path.write_text(yaml.safe_dump(cfg))
    trained = []
    for module in (run_pipeline.train, run_pipeline.distill_train):
        real = module.run
        monkeypatch.setattr(module, "run", lambda c, real=real, **kw: trained.append(c.training.output_dir) or
                            real(c, **kw))
    assert run_pipeline.main(["--config", str(path)]) == 0
    work = tmp_path / "work"
    models = [f"{work}/models/b{b}/{n}" for b in ("0.5", "1") for n in (
        "teacher-1", "teacher-2", "student-s0", "student-s1", "student-s2", "distilled-s0", "homo-s0")]
    assert sorted(trained) == sorted(models)
    curve = json.loads((work / "models/b0.5/student-s0/metrics.json").read_text())["curve"]
    assert [r["step"] for r in curve] == [3, 6] and all(r["dev_ce"] > 0 for r in curve)
    homo = yaml.safe_load((work / "models/b1/homo-s0/config.yaml").read_text())["distillation"]["teachers"]
    assert homo == [f"{work}/models/b1/student-s1", f"{work}/models/b1/student-s2"]
    text = json.loads((work / "results/b1/dev_text.json").read_text())["results"]
    assert {"b1/students-ensemble", "b1/teachers-ensemble", "b1/homo-s0"} <= set(text)
    assert (work / "results/RESULTS.md").read_text().startswith("# The regime map")
    capsys.readouterr()
    trained.clear()
    assert run_pipeline.main(["--config", str(path)]) == 0
    assert trained == [] and "would" not in capsys.readouterr().out
    assert not list((work / "models").rglob("*.old-*"))


def test_a_key_added_to_the_schema_at_its_default_redoes_nothing():
    old = {"settings": {"training.lr": 0.001}, "inputs": {}}
    same = {"settings": {"training.lr": 0.001, "data.curriculum": None, "model.num_experts": None}, "inputs": {}}
    assert run_pipeline.Plan.changes(old, same) == []
    moved = {"settings": {"training.lr": 0.001, "model.num_experts": 4}, "inputs": {}}
    assert run_pipeline.Plan.changes(old, moved) == ["model.num_experts: '(unset)' -> 4"]
