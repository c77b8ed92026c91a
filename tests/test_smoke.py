"""Issue 27: the compute plan's formulas against a hand count, the plan in --dry-run, and --smoke on a tiny pipeline."""

import json
from pathlib import Path

import pytest
import yaml

import run_pipeline
from babyllama import compute_plan
from babyllama.config import UserError
from babyllama.schema import ModelSection
from conftest import write_split
from test_pipeline import tiny_pipeline_yaml

ROOT = Path(__file__).resolve().parents[1]


def test_flops_and_memory_match_a_hand_count():
    # LLaMA: hidden 32, 2 layers, 4 heads, inner 64, vocab 100, untied. Per layer q k v o 4*32*32 + gate up down
    # 3*32*64 + two RMSNorms 2*32; embeddings 100*32 in and out; the final norm 32
    s = compute_plan.shape_of(ModelSection(type="llama", hidden_size=32, num_layers=2, num_heads=4,
                                           intermediate_size=64, tie_word_embeddings=False), vocab=100, seq_length=16)
    layer = 4 * 32 * 32 + 3 * 32 * 64 + 2 * 32
    assert s.params == 2 * layer + 2 * 100 * 32 + 32 == 27040
    assert s.matmul == 27040 - 100 * 32  # the input embedding takes no matmul
    assert compute_plan.forward_flops(s, 16) == 2 * 23840 + 4 * 2 * 16 * 32
    assert compute_plan.train_flops(s, 16) == 3 * (2 * 23840 + 4 * 2 * 16 * 32)
    # its activations at b=3, s=16, bf16 (p=2), SDPA, no dropout, per layer: QKV input, Q K V, out-projection input
    # (2*t*h*5), MLP input 2*t*h and SwiGLU's four [t, inner] tensors 2*4*t*i, two norm inputs 2*2*t*h; then the
    # final norm's and the LM head's inputs
    t = 3 * 16
    per_layer = 2 * t * 32 * 5 + 2 * t * 32 + 2 * 4 * t * 64 + 2 * 2 * t * 32
    assert compute_plan.activation_bytes(s, 3, 16, 2) == 2 * per_layer + 2 * 2 * t * 32
    mem = compute_plan.train_memory(s, 3, 16, 2)
    assert (mem["weights"], mem["gradients"], mem["adamw"], mem["autocast_copies"]) == (
        4 * 27040, 4 * 27040, 8 * 27040, 2 * 23840)
    assert mem["logits"] == t * 100 * (2 + 4 + 4)  # bf16 logits, their fp32 copy and log-softmax
    assert mem["total"] == sum(v for k, v in mem.items() if k != "total")
    assert compute_plan.train_memory(s, 3, 16, 4)["autocast_copies"] == 0  # fp32: no 16-bit copies


def test_activations_reduce_to_korthikanti_for_a_gpt_block():
    # GPT-2 with dropout and eager attention, 16-bit: Korthikanti et al. 2022's s*b*h*(34 + 5*a*s/h) per layer
    m = ModelSection(type="gpt2", hidden_size=64, num_layers=3, num_heads=4, dropout=0.1, attn_implementation="eager")
    s = compute_plan.shape_of(m, vocab=50, seq_length=8)
    b, seq, h, a = 5, 8, 64, 4
    final = 2 * 2 * b * seq * h  # the final norm's and the LM head's inputs
    assert compute_plan.activation_bytes(s, b, seq, 2) == 3 * seq * b * h * (34 + 5 * a * seq / h) + final
    # tied embeddings: the LM head is counted in N, the position embedding is not
    assert s.matmul == s.params - 8 * 2 * 64 - 50 * 64 + 50 * 64


def test_fit_suggestion_names_the_micro_batch_that_fits():
    total_at = lambda b: b * compute_plan.GIB  # noqa: E731  (1 GiB per sequence)
    assert compute_plan.fit_suggestion(total_at, 64, 32, 24.0) == (  # 90 % of 24 GiB holds 21 sequences
        "training.per_device_batch_size=16 (gradient accumulation 4) would fit this batch in 24 GiB")
    assert compute_plan.fit_suggestion(total_at, 64, 32, 80.0) is None
    assert "even one sequence" in compute_plan.fit_suggestion(lambda b: 30 * compute_plan.GIB, 64, 16, 24.0)


def test_dry_run_prints_the_plan_of_the_paper_config(tmp_path, capsys):
    raw = tmp_path / "raw"
    write_split(raw / "babylm_10M", ".train", 300, 0)
    write_split(raw / "babylm_dev", ".dev", 100, 1)
    size = sum(f.stat().st_size for f in (raw / "babylm_10M").iterdir())
    # teacher 2 at a micro-batch of 256 sequences does not fit an RTX 3090's 24 GiB
    args = ["--config", str(ROOT / "config/paper.yaml"), f"pipeline.raw_data={raw}", f"pipeline.blimp_dir={raw}",
            f"pipeline.work_dir={tmp_path / 'w'}", "pipeline.stage_overrides={teacher2: [training.per_device_batch_size=256]}"]
    assert run_pipeline.main(args + ["--dry-run"]) == 0
    out = capsys.readouterr().out
    rows = {line.split(" | ")[0][2:]: line.split(" | ") for line in out.splitlines() if line.startswith("| ")}
    assert rows["teacher2"][1] == "704.9M" and rows["teacher1"][1] == "360.0M" and rows["distilled"][1] == "58.3M"
    tokens = size / compute_plan.BYTES_PER_TOKEN
    assert rows["student"][2] == compute_plan._si(tokens) and rows["student"][3] == "6"
    assert "OOM" in rows["teacher2"][7] and "OOM" not in rows["teacher2"][8]  # the 3090, not the A100
    assert "teacher2 on the RTX 3090: training.per_device_batch_size=" in out
    # the student's FLOPs: 6 epochs of 6N + 12 L s d per token, and 6 evaluations of its (fewer) dev chunks
    s = compute_plan.shape_of(ModelSection(type="llama", hidden_size=512, num_layers=16, num_heads=8,
                                           intermediate_size=1024, tie_word_embeddings=False), 16000, 128)
    dev = sum(f.stat().st_size for f in (raw / "babylm_dev").iterdir()) / compute_plan.BYTES_PER_TOKEN
    flops = 6 * tokens * compute_plan.train_flops(s, 128) + 6 * -(-dev // 128) * 128 * compute_plan.forward_flops(s, 128)
    assert rows["student"][4] == f"{flops / 1e15:.2f}"
    total = next(line for line in out.splitlines() if line.startswith("GPU-hours"))
    assert [c.name in total for c in compute_plan.CARDS] == [True] * 3
    assert "not in the plan" in out and "finetune" in out.split("not in the plan")[1]


def test_smoke_runs_every_stage_apart_from_the_real_run(tmp_path, capsys):
    path = tiny_pipeline_yaml(tmp_path)
    work = tmp_path / "work"
    work.mkdir()
    (work / "keep.txt").write_text("the real run's")
    assert run_pipeline.main(["--config", str(path), "--smoke"]) == 0
    assert [p.name for p in work.iterdir()] == ["keep.txt"]  # the real work dir untouched
    smoke = json.loads((tmp_path / "work-smoke" / "smoke.json").read_text())
    names = [s.name for s in run_pipeline.Plan(run_pipeline.load_config(
        run_pipeline.PipelineConfig, path).pipeline).stages]
    rows = {r["stage"]: r for r in smoke["stages"]}
    assert list(rows) == names[:names.index("distilled") + 1] + ["distilled+cache"] + names[names.index("distilled") + 1:]
    assert all(r["status"] == "ok" and r["seconds"] >= 0 and r["peak_gib"] > 0 for r in rows.values())
    for name in ("teacher1", "teacher2", "student", "distilled"):
        r = rows[name]
        folder = tmp_path / "work-smoke" / "models" / name.replace("teacher", "teacher-")
        metrics = json.loads((folder / "metrics.json").read_text())
        assert r["resumed_at_step"] == 3 and r["timed_steps"] == 4 and r["micro_batch"] == 2
        assert r["checkpoint_bytes"] > 12 * r["parameters"]  # fp32 weights and AdamW's two moments at least
        assert r["step_s"] > 0 and r["projected_step_s"] > r["fwd_bwd_s"]
        # the configured batch of 8 is 4x the measured micro-batch: forward+backward x 4, the rest once
        assert r["projected_step_s"] == pytest.approx(4 * r["fwd_bwd_s"] + r["step_s"] - r["fwd_bwd_s"], abs=2e-3)
        # the config's max_steps (tiny_pipeline_yaml: teacher-1 6, teacher-2 8, the students 14), not the smoke's 6
        assert r["steps_full"] == {"teacher1": 6, "teacher2": 8}.get(name, 14)
        assert metrics["global_step"] == 6 and r["parameters"] == metrics["parameters"]
    assert not list((tmp_path / "work-smoke" / "models").glob("*/checkpoint-*"))  # removed after each stage
    assert rows["distilled+cache"]["cache_chunks"] >= 16
    assert rows["finetune"]["step_s"] > 0
    table = (tmp_path / "work-smoke" / "smoke.md").read_text()
    assert "| distilled+cache | 46,240 |" in table and "| **total** |" in table
    assert table in capsys.readouterr().out


def test_a_broken_stage_stops_the_smoke_naming_it(tmp_path):
    path = tiny_pipeline_yaml(tmp_path)
    data = yaml.safe_load(path.read_text())
    data["pipeline"]["stage_overrides"]["teacher1"].append("training.optim=no_such_optimizer")
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(UserError, match=r"smoke: stage teacher1 \(pipeline.teacher1\) failed: training: transformers "
                                        r"refused the options"):
        run_pipeline.main(["--config", str(path), "--smoke"])
    smoke = json.loads((tmp_path / "work-smoke" / "smoke.json").read_text())
    assert smoke["failed"] == "teacher1" and smoke["stages"][-1]["status"] == "failed"
    assert [r["stage"] for r in smoke["stages"]] == ["data", "clean", "tokenizer", "teacher1"]
    assert not (tmp_path / "work").exists()


def test_out_of_memory_names_the_stage_and_the_micro_batch_that_fits():
    import torch

    from types import SimpleNamespace
    from babyllama import smoke

    row = compute_plan.Row("teacher2", "train", micro=32, batch=256, memory_at=lambda b: b * compute_plan.GIB)
    fake = SimpleNamespace(plan_row=lambda *a: row, real=SimpleNamespace(config=lambda s: None), device="cuda (x)",
                           device_gib=24.0, plan=SimpleNamespace(config=lambda s: SimpleNamespace(
                               training=SimpleNamespace(batch_size=32))))
    stage = SimpleNamespace(name="teacher2", yaml_key="teacher2", kind="train", model="teacher-2")
    assert smoke.failure(fake, stage, torch.OutOfMemoryError("CUDA out of memory")) == (
        "stage teacher2 (pipeline.teacher2) ran out of memory on cuda (x) (24 GiB) at micro-batch 32: "
        "training.per_device_batch_size=16 (gradient accumulation 16) would fit this batch in 24 GiB")
