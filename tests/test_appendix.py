"""The paper's appendix B options: mixture of experts (model.type moe), SAM (training.optimizer sam), GAP (gap.py)."""

import hashlib
import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn
from transformers import TrainingArguments, default_data_collator

from babyllama import config
from babyllama import schema
import train
from conftest import save_random_model, tiny_run_config
from babyllama.models import build_model, count_parameters
from tokenizer import load_tokenizer
from babyllama.run_folder import checkpoints_in
from babyllama.trainer_setup import BabyTrainer

ROOT = Path(__file__).resolve().parents[1]
MOE = ["model.type=moe", "model.num_experts=4"]


class FakeTokenizer:
    bos_token_id, eos_token_id, pad_token_id = 1, 2, 0

    def __len__(self):
        return 320


def log_history(output_dir):
    return json.loads((checkpoints_in(output_dir)[-1] / "trainer_state.json").read_text())["log_history"]


# ----------------------------------------------------------------------------------------------------------------------
# mixture of experts


@pytest.mark.parametrize("experts, top_k", [(4, 1), (8, 2)])
def test_moe_parameter_count_on_meta(experts, top_k):
    m = schema.ModelSection(type="moe", hidden_size=32, num_layers=2, num_heads=4, intermediate_size=64,
                            num_experts=experts, experts_per_token=top_k)
    model = build_model(m, FakeTokenizer(), 32, device="meta")
    # embeddings and untied head 2*320*32; per layer: q,k,v,o 4*32*32, q/k norms 2*32, router E*32, experts
    # E*(gate+up 2*64*32 + down 32*64), two RMSNorms 2*32; final norm 32
    layer = 4 * 32 * 32 + 2 * 32 + experts * 32 + experts * (2 * 64 * 32 + 32 * 64) + 2 * 32
    assert count_parameters(model) == 2 * 320 * 32 + 2 * layer + 32
    assert model.config.num_experts_per_tok == top_k and not model.config.norm_topk_prob


def test_moe_cpu_yaml_sizes():
    cfg = config.load_config(schema.TrainConfig, ROOT / "config/cpu-moe.yaml")
    dense = config.load_config(schema.TrainConfig, ROOT / "config/cpu-student.yaml")
    n = count_parameters(build_model(cfg.model, FakeTokenizer(), 128, device="meta"))
    n_dense = count_parameters(build_model(dense.model, FakeTokenizer(), 128, device="meta"))
    # the student's blocks with 8 experts in place of each MLP: 7 more MLPs and a router per layer
    m = dense.model
    extra = m.num_layers * (7 * 3 * m.hidden_size * m.intermediate_size + 8 * m.hidden_size + 2 * m.hidden_size)
    assert cfg.model.num_experts == 8 and cfg.model.experts_per_token == 1 and n - n_dense == extra


def test_moe_router_loss_counts_once_per_step(tmp_path, tiny_corpus, tiny_tokenizer_dir):
    """Under accumulation each micro-batch adds coef * its balancing loss / micro-batches; the CE is the model's."""
    cfg = tiny_run_config(tmp_path, tiny_corpus, tiny_tokenizer_dir, overrides=MOE)
    tok = load_tokenizer(tiny_tokenizer_dir)
    torch.manual_seed(0)
    model = build_model(cfg.model, tok, 32)
    reference = build_model(cfg.model, tok, 32)
    reference.load_state_dict(model.state_dict())
    args = TrainingArguments(output_dir=str(tmp_path / "o"), report_to=[], use_cpu=True)
    trainer = BabyTrainer(model=model, args=args)
    ids = torch.randint(3, 320, (2, 2, 16), generator=torch.Generator().manual_seed(0))
    batches = [{"input_ids": i, "labels": i.clone()} for i in ids]
    trainer._step_batches = batches
    model.train()
    n_items = torch.tensor(2 * 2 * 15)
    got = trainer.compute_loss(model, batches[0], num_items_in_batch=n_items)
    out = reference(**batches[0], output_router_logits=True)  # HF: mean CE + coef * aux
    logits = out.logits[:, :-1].flatten(0, 1)
    ce_sum = nn.functional.cross_entropy(logits, batches[0]["labels"][:, 1:].flatten(), reduction="sum")
    assert out.loss.item() == pytest.approx(ce_sum.item() / 30 + 0.01 * out.aux_loss.item(), rel=1e-5)
    assert got.item() == pytest.approx(ce_sum.item() / n_items.item() + 0.01 * out.aux_loss.item() / 2, rel=1e-5)


def test_moe_trains_and_logs_router_loss(tmp_path, tiny_corpus, tiny_tokenizer_dir):
    from transformers import AutoModelForCausalLM

    cfg = tiny_run_config(tmp_path, tiny_corpus, tiny_tokenizer_dir,
                          overrides=MOE + ["training.max_steps=30", "training.per_device_batch_size=4"])
    metrics = train.run(cfg)
    assert metrics["eval_loss"] < math.log(320) - 1.5, metrics["eval_loss"]
    logs = [h for h in log_history(cfg.training.output_dir) if "loss" in h]
    # Switch's loss E * sum_i f_i P_i is 1 when routing is balanced; finite, logged every step
    assert len(logs) == 30 and all(0.5 < h["aux_loss"] < 4 for h in logs), logs[:3]
    model = AutoModelForCausalLM.from_pretrained(cfg.training.output_dir)
    assert type(model).__name__ == "OlmoeForCausalLM" and model.config.num_experts == 4
    assert not model.config.output_router_logits and model.config.router_aux_loss_coef == 0.01


def test_moe_student_distils_and_logs_router_loss(tmp_path, tiny_corpus, tiny_tokenizer_dir):
    import distill_train

    teacher = save_random_model(tmp_path / "teacher", "llama", tiny_tokenizer_dir)
    cfg = tiny_run_config(tmp_path, tiny_corpus, tiny_tokenizer_dir, overrides=MOE + ["training.max_steps=4"],
                          distill_teachers=[teacher])
    distill_train.run(cfg)
    logs = [h for h in log_history(cfg.training.output_dir) if "loss" in h]
    assert len(logs) == 4 and all({"ce", "kl"} <= set(h) and 0.5 < h["aux_loss"] < 4 for h in logs)


def test_finetune_refuses_a_moe_model_before_training(tmp_path):
    import finetune

    (tmp_path / "config.json").write_text('{"model_type": "olmoe"}')
    (tmp_path / "tokenizer.json").write_text("{}")
    with pytest.raises(config.UserError, match="no sequence-classification head for model type 'olmoe' .model 'm'.; "
                                               "fine-tune another model or remove finetune.models.m"):
        finetune.check_model_folder("m", tmp_path)


# ----------------------------------------------------------------------------------------------------------------------
# SAM


class Linear(nn.Module):
    """y_hat = x . w, loss = mean squared error: gradients by hand are 2/N X^T (X w - y)."""

    def __init__(self, w):
        super().__init__()
        self.w = nn.Parameter(torch.tensor(w, dtype=torch.float64))

    def forward(self, x, y):
        return {"loss": ((x @ self.w - y) ** 2).mean()}


def test_sam_step_equals_hand_computation(tmp_path):
    rng = np.random.default_rng(0)
    X, y, w0 = rng.normal(size=(4, 3)), rng.normal(size=4), np.array([0.5, -1.0, 2.0])
    rho, lr = 0.3, 0.1
    data = [{"x": torch.tensor(X[i]), "y": torch.tensor(y[i])} for i in range(4)]
    model = Linear(w0)
    args = TrainingArguments(output_dir=str(tmp_path), per_device_train_batch_size=2, gradient_accumulation_steps=2,
                             max_steps=1, learning_rate=lr, optim="sgd", lr_scheduler_type="constant",
                             warmup_steps=0, weight_decay=0.0, max_grad_norm=0.0, report_to=[], use_cpu=True,
                             save_strategy="no", remove_unused_columns=False)
    BabyTrainer(model=model, args=args, train_dataset=data, data_collator=default_data_collator,
                sam_rho=rho).train()

    def grad(w):  # of the mean squared error over the whole batch of 4
        return 2 / len(y) * X.T @ (X @ w - y)

    g = grad(w0)
    w_sam = w0 - lr * grad(w0 + rho * g / np.linalg.norm(g))
    np.testing.assert_allclose(model.w.detach().numpy(), w_sam, rtol=1e-10)
    assert np.abs(w_sam - (w0 - lr * g)).max() > 1e-2  # the test can tell SAM from a plain step


def test_sam_resume_with_accumulation_matches_uninterrupted_run(tmp_path, tiny_corpus, tiny_tokenizer_dir):
    from transformers import TrainerCallback

    class Killed(Exception):
        pass

    class KillAt(TrainerCallback):
        def on_step_end(self, args, state, control, **kw):
            control.should_save = state.global_step == 3

        def on_save(self, args, state, control, **kw):
            raise Killed

    over = ["training.max_steps=6", "training.eval_steps=100", "training.load_best_model_at_end=false",
            "training.optimizer=sam", "training.sam_rho=0.5", "training.per_device_batch_size=4"]
    full = train.run(tiny_run_config(tmp_path / "full", tiny_corpus, tiny_tokenizer_dir, overrides=over))
    part_cfg = tiny_run_config(tmp_path / "part", tiny_corpus, tiny_tokenizer_dir, overrides=over)
    with pytest.raises(Killed):
        train.run(part_cfg, callbacks=[KillAt()])
    resumed = train.run(part_cfg, resume=True)
    assert resumed["global_step"] == 6
    assert resumed["eval_loss"] == pytest.approx(full["eval_loss"], abs=1e-5)


def test_sam_extra_epoch_starts_from_a_trained_model(tmp_path, tiny_corpus, tiny_tokenizer_dir):
    first = tiny_run_config(tmp_path / "a", tiny_corpus, tiny_tokenizer_dir, overrides=["training.max_steps=2"])
    train.run(first)
    sam = tiny_run_config(tmp_path / "b", tiny_corpus, tiny_tokenizer_dir,
                          overrides=["training.max_steps=1", "training.optimizer=sam", "training.lr=1e-9",
                                     f"training.init_from={first.training.output_dir}"])
    metrics = train.run(sam)
    before = json.loads((Path(first.training.output_dir) / "metrics.json").read_text())
    assert metrics["eval_loss"] == pytest.approx(before["eval_loss"], abs=1e-4)  # lr ~0: the weights it started from
    wide = tiny_run_config(tmp_path / "c", tiny_corpus, tiny_tokenizer_dir,
                           overrides=["model.hidden_size=64", f"training.init_from={first.training.output_dir}"])
    with pytest.raises(config.UserError, match=r"training.init_from .*: its architecture differs from the model "
                                               r"section \(lm_head.weight: \(320, 32\) there, \(320, 64\) here\)"):
        train.run(wide)


@pytest.mark.parametrize("overrides, needle", [
    (["training.sam_rho=0"], "training.sam_rho: 0.0: SAM's radius must be > 0; give e.g. 0.05"),
    (["training.sam_rho=-0.1"], "training.sam_rho: -0.1: SAM's radius must be > 0"),
    (MOE[:1] + ["model.num_experts=0"], "model.num_experts: 0: a moe model needs at least 1 expert per layer"),
    (MOE[:1], "model.num_experts: None: a moe model needs at least 1 expert"),
    (MOE + ["model.experts_per_token=5"], "model.experts_per_token: 5: give 1 (Switch) up to num_experts 4"),
    (["model.num_experts=4"], "model.num_experts: only model.type moe has experts, not llama; remove the key"),
])
def test_bad_appendix_settings_are_one_line_errors(overrides, needle):
    with pytest.raises(config.UserError) as e:
        config.load_config(schema.TrainConfig, ROOT / "config/tiny-llama.yaml", overrides)
    assert str(e.value).startswith(str(ROOT / "config/tiny-llama.yaml")) and needle in str(e.value)
    assert "\n" not in str(e.value)


def test_sam_rho_zero_exits_2_with_one_line():
    r = subprocess.run([sys.executable, "train.py", "--config", "config/tiny-llama.yaml", "training.sam_rho=0"],
                       cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and r.stderr.strip() == ("error: config/tiny-llama.yaml: training.sam_rho: 0.0: SAM's "
                                                      "radius must be > 0; give e.g. 0.05"), r.stderr


# ----------------------------------------------------------------------------------------------------------------------
# GAP


def folder_digest(folder) -> dict:
    return {str(p.relative_to(folder)): (hashlib.sha256(p.read_bytes()).hexdigest(), p.stat().st_mtime_ns)
            for p in sorted(Path(folder).rglob("*")) if p.is_file()}


def test_gap_raises_the_loss_and_leaves_the_input_alone(tmp_path, tiny_corpus, tiny_tokenizer_dir):
    import gap
    from transformers import AutoModelForCausalLM

    cfg = tiny_run_config(tmp_path / "pre", tiny_corpus, tiny_tokenizer_dir, overrides=["training.max_steps=20"])
    train.run(cfg)
    src = Path(cfg.training.output_dir)
    digest = folder_digest(src)
    over = [f"gap.model_dir={src}", f"gap.output_dir={tmp_path / 'gap'}", f"gap.text_dir={tiny_corpus['train']}",
            "gap.seq_length=32", "gap.steps=8", "gap.lr=1e-3", f"gap.cache_dir={tmp_path / 'cache'}"]
    assert gap.main(["--config", str(ROOT / "config/gap.yaml"), *over]) == 0
    metrics = json.loads((tmp_path / "gap" / "metrics.json").read_text())
    assert metrics["loss_after"] > metrics["loss_before"] + 0.05, metrics
    assert metrics["step_losses"][-1] > metrics["step_losses"][0]
    model = AutoModelForCausalLM.from_pretrained(str(tmp_path / "gap"))
    assert model.config.gap_steps == 8 and model.config.gap_from == str(src)
    assert folder_digest(src) == digest  # byte-identical, not even rewritten
    # the CEs gap.py reports are the saved models' on the chunks it drew (seed 0, without replacement)
    from babylm_dataset import ChunkDataset, load_split_ids

    chunks = ChunkDataset(load_split_ids(tiny_corpus["train"], src, tmp_path / "cache"), 32)
    picks = np.random.default_rng(0).choice(len(chunks), size=8, replace=False)
    ids = [chunks[int(i)]["input_ids"][None] for i in picks]
    for folder, key in ((src, "loss_before"), (tmp_path / "gap", "loss_after")):
        m = AutoModelForCausalLM.from_pretrained(str(folder)).eval()
        with torch.no_grad():
            assert np.mean([m(input_ids=x, labels=x).loss.item() for x in ids]) == pytest.approx(metrics[key], abs=1e-5)
    assert (tmp_path / "gap" / "config.yaml").read_bytes() == (src / "config.yaml").read_bytes()
    with pytest.raises(config.UserError, match="gap.output_dir .* exists; GAP writes a new folder"):
        gap.main(["--config", str(ROOT / "config/gap.yaml"), *over])
    with pytest.raises(config.UserError, match="gap.output_dir: .* is the input model folder"):
        gap.main(["--config", str(ROOT / "config/gap.yaml"), *over, f"gap.output_dir={src}"])
    assert folder_digest(src) == digest


# ----------------------------------------------------------------------------------------------------------------------
# the appendix run: run_pipeline.py with pipeline.appendix (config/cpu-appendix.yaml)


def appendix_plan(tmp_path, extra=()):
    import run_pipeline

    over = [f"pipeline.work_dir={tmp_path}", f"pipeline.raw_data={tmp_path / 'raw'}",
            f"pipeline.blimp_dir={tmp_path / 'blimp'}", "pipeline.seeds=[0, 1]", *extra]
    cfg = config.load_config(schema.PipelineConfig, ROOT / "config/cpu-appendix.yaml", over)
    return run_pipeline.Plan(cfg.pipeline)


def test_appendix_stages_start_from_the_same_seeds_plain_student(tmp_path):
    plan = appendix_plan(tmp_path)
    assert [s.name for s in plan.stages] == [
        "data", "clean", "tokenizer", "teacher1", "teacher2", "student-s0", "student-s1", "student-s2", "distilled-s0",
        "distilled-s1", "curriculum-s0", "curriculum-s1", "moe-s0", "moe-s1", "sam-s0", "sam-s1", "gap-15-s0",
        "gap-15-s1", "text", "aoa", "eval", "report"]
    sam = plan.config(plan.by_name["sam-s1"])
    assert sam.training.init_from == f"{tmp_path}/models/student-s1" and sam.training.optimizer == "sam"
    assert (sam.training.num_epochs, sam.training.batch_size, sam.training.seed) == (1, 16, 1)
    assert sam.data.train_share == 0.02
    cur = plan.config(plan.by_name["curriculum-s0"])
    assert cur.data.buckets() == [["aochildes"], ["switchboard"], ["cbt"], ["children_stories"]]
    assert cur.training.num_epochs == 5 and cur.training.init_from is None
    moe = plan.config(plan.by_name["moe-s0"]).model
    assert (moe.type, moe.num_experts, moe.experts_per_token) == ("moe", 4, 1)
    g = plan.config(plan.by_name["gap-15-s1"]).gap
    assert (g.model_dir, g.output_dir, g.text_dir, g.cache_dir, g.seed, g.steps) == (
        f"{tmp_path}/models/student-s1", f"{tmp_path}/models/gap-15-s1", f"{tmp_path}/clean/babylm_10M",
        f"{tmp_path}/cache", 1, 15)
    # the start model is an input and its stage is upstream: a retrained student-s1 redoes sam-s1 and gap-15-s1
    for name in ("sam-s1", "gap-15-s1"):
        stage = plan.by_name[name]
        assert "models/student-s1" in plan.fingerprint(stage, plan.config(stage))["inputs"]
    assert plan.reads(plan.by_name["sam-s1"]) == ["clean", "tokenizer", "student-s1"]
    assert plan.reads(plan.by_name["gap-15-s1"]) == ["clean", "student-s1"]
    aoa = plan.fingerprint(plan.by_name["aoa"], None)
    # what it scores is in its inputs: every model folder (an ensemble's members among them) and the context text
    assert {"clean/babylm_dev/aochildes.dev", "models/gap-15-s1"} | {f"models/{n}" for n in plan.models()} <= set(
        aoa["inputs"])
    ev = plan.config(plan.by_name["eval"]).eval
    assert ev.models["gap-15-s0"] == f"{tmp_path}/models/gap-15-s0" and ev.max_pairs_per_file == 100
    assert ev.ensembles["students-ensemble"] == [f"{tmp_path}/models/student-s{s}" for s in (0, 1, 2)]
    # in a regime map the start model is the same budget's
    plan = appendix_plan(tmp_path, ["pipeline.appendix=false", "pipeline.budgets=[{train_share: 0.1}]"])
    assert plan.config(plan.by_name["b0.1/sam-s1"]).training.init_from == f"{tmp_path}/models/b0.1/student-s1"
    assert plan.config(plan.by_name["b0.1/gap-15-s0"]).gap.model_dir == f"{tmp_path}/models/b0.1/student-s0"


@pytest.mark.parametrize("extra, needle", [
    (["pipeline.ablations={g: {of: gap}}"], "pipeline.ablations.g.init_from: of: gap post-trains a trained model"),
    (["pipeline.ablations={a: {of: student, init_from: b}, b: {of: student}}"],
     "pipeline.ablations.a.init_from: 'b': name student, distilled or an ablation listed before this one"),
    (["pipeline.budgets=[{train_share: 0.1}]"], "pipeline.appendix: the appendix table is of a run without budgets"),
    (["pipeline.appendix=false", "pipeline.ablations={a: {of: student}, b: {of: gap, init_from: a}}",
      "pipeline.budgets=[{train_share: 0.1, ablations: [b]}]"],
     r"pipeline.budgets\[\].ablations: \['a'\] start other ablations there \(init_from\): list them too"),
    (["pipeline.ablations={gap: {of: gap, init_from: student}}"], "pipeline.ablations.gap: name it")])
def test_bad_appendix_pipelines_are_one_line_errors(tmp_path, extra, needle):
    with pytest.raises(config.UserError, match=needle) as e:
        appendix_plan(tmp_path, extra)
    assert "\n" not in str(e.value)


def test_appendix_table_is_computed_from_the_run_files(tmp_path):
    from babyllama import study_reports
    results = tmp_path / "R.md"
    results.write_text("# mine\n\n<!-- begin map: generated, do not edit -->\nthe map\n<!-- end map -->\n")
    plan = appendix_plan(tmp_path, [f"pipeline.results_file={results}"])
    # dev CE, BLiMP average (fraction), stage seconds, tokens seen
    runs = {"student-s0": (5.0, .60, 60, 100), "student-s1": (5.1, .62, 60, 100), "student-s2": (5.2, .64, 72, 100),
            "distilled-s0": (4.95, .59, 120, 100), "distilled-s1": (5.2, .64, 120, 100),
            "curriculum-s0": (4.9, .61, 30, 99), "curriculum-s1": (5.0, .63, 42, 97),
            "moe-s0": (5.05, .60, 90, 100), "moe-s1": (5.05, .62, 90, 100),
            "sam-s0": (5.2, .58, 6, 8), "sam-s1": (5.3, .60, 6, 8),
            "gap-15-s0": (5.01, .61, 3, None), "gap-15-s1": (5.11, .63, 3, None),
            "students-ensemble": (5.0, .63, None, None)}
    for name, (ce, acc, sec, tokens) in runs.items():
        (plan.results / f"{name}.json").parent.mkdir(parents=True, exist_ok=True)
        (plan.results / f"{name}.json").write_text(json.dumps({"model": name, "phenomena": {}, "supplement": {},
                                                               "averages": {"phenomena": acc, "files": acc - 0.1}}))
        if sec is not None:
            plan.mark(plan.by_name[name], {"seconds": sec})
            plan.model_dir(name).mkdir(parents=True)
            (plan.model_dir(name) / "metrics.json").write_text(json.dumps({} if tokens is None else
                                                                          {"tokens_seen": tokens}))
    mads = {"student-s0": 2.0, "student-s1": 2.2, "curriculum-s0": 2.1, "curriculum-s1": 2.5, "baseline (no LM)": 2.4}
    (plan.results / "aoa.json").write_text(json.dumps({"mad": {n: {"overall": v} for n, v in mads.items()}}))
    plan.text_results(None).write_text(json.dumps({"results": {n: {"all": {"ce": v[0], "tokens": 1234}}
                                                               for n, v in runs.items()}}))
    rep = study_reports.AppendixReport(plan)
    rows = {r["idea"]: r for r in rep.rows()}
    assert list(rows) == ["student", "distilled", "curriculum", "moe", "sam", "gap-15", "students-ensemble"]
    want = {"distilled": ([-0.05, 0.1], [-1, 2]), "curriculum": ([-0.1, -0.1], [1, 1]), "moe": ([0.05, -0.05], [0, 0]),
            "sam": ([0.2, 0.2], [-2, -2]), "gap-15": ([0.01, 0.01], [1, 1]),
            "students-ensemble": ([5.0 - 5.1], [63 - 62])}  # the ensemble against its members' mean
    for idea, (d_ce, d_acc) in want.items():
        assert rows[idea]["d_ce"] == pytest.approx(d_ce) and rows[idea]["d_acc"] == pytest.approx(d_acc), idea
    assert rows["curriculum"]["minutes"] == pytest.approx(0.6) and rows["students-ensemble"]["minutes"] == 3.2
    text = rep.markdown()
    assert ("| curriculum | student: `data.curriculum=aochildes \\| switchboard \\| cbt \\| children_stories`, "
            "`training.num_epochs=5` | 4.950 ± 0.071 | -0.100 ± 0.000 | 62.0 ± 1.4 | +1.0 ± 0.0 | 2.30 ± 0.28 | 98 | "
            "0.6 | helped | helped |") in text
    assert ("| student | the plain student (baseline) | 5.050 ± 0.071 | – | 61.0 ± 1.4 | – | 2.10 ± 0.14 | 100 | 1.0 | "
            "baseline |") in text
    assert ("| gap-15 | gap from student | 5.060 ± 0.071 | +0.010 ± 0.000 | 62.0 ± 1.4 | +1.0 ± 0.0 | – | – | 0.1 | "
            "hurt") in text
    assert "without the LM's surprisal (baseline (no LM)): 2.40" in text
    assert ("**Which ideas helped at this scale** (a mean beyond one sd of zero over the seeds): on both dev CE and "
            "BLiMP: curriculum, students-ensemble; on one of them: gap-15 (BLiMP); on neither: distilled, moe, "
            "sam.") in text
    assert "phenomena average, 100 pairs per file" in text and "(1,234 tokens)" in text
    study_reports.write_appendix(plan)
    written = results.read_text()
    assert written.startswith("# mine\n\n<!-- begin map: generated, do not edit -->\nthe map\n<!-- end map -->\n")
    assert "<!-- begin appendix: generated, do not edit -->\n" + text.rstrip() + "\n<!-- end appendix -->" in written


def test_pipeline_gap_stage_post_trains_the_same_seeds_student_into_its_own_folder(tmp_path, tiny_corpus,
                                                                                    tiny_tokenizer_dir):
    import shutil

    import run_pipeline

    plan = appendix_plan(tmp_path, ["pipeline.seeds=[3]", "pipeline.teacher_seeds=[]",
                                    "pipeline.stage_overrides={gap: [gap.seq_length=32, gap.steps=4, gap.lr=1e-3]}"])
    shutil.copytree(tiny_corpus["train"], plan.clean / "babylm_10M")
    cfg = tiny_run_config(tmp_path, tiny_corpus, tiny_tokenizer_dir,
                          overrides=["training.max_steps=10", f"training.output_dir={plan.model_dir('student-s3')}"])
    train.run(cfg)
    digest = folder_digest(plan.model_dir("student-s3"))
    stage = plan.by_name["gap-15-s3"]
    run_pipeline.run_stage(plan, stage, plan.config(stage), resume=False)
    metrics = json.loads((plan.model_dir("gap-15-s3") / "metrics.json").read_text())
    assert metrics["gap_steps"] == 4 and metrics["loss_after"] > metrics["loss_before"]
    from transformers import AutoConfig
    assert AutoConfig.from_pretrained(str(plan.model_dir("gap-15-s3"))).gap_from == str(plan.model_dir("student-s3"))
    assert folder_digest(plan.model_dir("student-s3")) == digest
