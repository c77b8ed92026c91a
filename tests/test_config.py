"""The config schema: every shipped YAML loads; bad keys, types and values are refused with one line naming them."""

import re
import subprocess
import sys
from pathlib import Path

import pytest

from babyllama import config
from babyllama import schema
from babyllama.config import UserError, load_config

ROOT = Path(__file__).resolve().parents[1]


def schema_for(path: Path):
    """Which root schema a shipped YAML uses, from its top-level sections."""
    import yaml

    sections = set(yaml.safe_load(path.read_text()) or {})
    if "pipeline" in sections:
        return schema.PipelineConfig
    if "finetune" in sections:  # finetune.py keeps its schema beside its task registry
        from finetune import FinetuneConfig

        return FinetuneConfig
    for cls, keys in [(schema.DistillConfig, {"distillation"}), (schema.TrainConfig, {"model", "training"}),
                      (schema.CleanConfig, {"clean"}), (schema.TokenizerConfig, {"tokenizer"}),
                      (schema.EvalConfig, {"eval"}), (schema.GapConfig, {"gap"})]:
        if keys <= sections:
            return cls
    raise AssertionError(f"{path}: no schema for sections {sorted(sections)}")


SHIPPED = sorted(p for p in (ROOT / "config").glob("*.yaml"))


@pytest.mark.parametrize("path", SHIPPED, ids=[p.name for p in SHIPPED])
def test_every_shipped_yaml_loads(path):
    text = path.read_text()
    assert text.startswith("# python "), f"{path.name} must start with the command that uses it"
    cfg = load_config(schema_for(path), path)
    assert cfg is not None


def test_paper_values():
    d = load_config(schema.DistillConfig, ROOT / "config/baby-llama-58M.yaml")
    assert (d.model.num_layers, d.model.num_heads, d.model.hidden_size, d.model.intermediate_size) == (16, 8, 512, 1024)
    assert (d.distillation.temperature, d.distillation.alpha, d.training.batch_size, d.training.lr) == (2.0, 0.5, 32, 3e-4)
    assert d.distillation.kl_normalization == "batchmean" and d.training.num_epochs == 6
    g = load_config(schema.TrainConfig, ROOT / "config/gpt2-705M.yaml")
    assert (g.data.seq_length, g.training.batch_size, g.training.lr, g.training.num_epochs) == (128, 256, 2.5e-4, 6)
    ll = load_config(schema.TrainConfig, ROOT / "config/llama-360M.yaml")
    assert (ll.data.seq_length, ll.training.batch_size, ll.training.lr, ll.training.num_epochs) == (256, 128, 3e-4, 4)
    for c in (d, g, ll):
        assert c.training.lr_scheduler == "cosine" and c.training.warmup_steps == 200


def test_overrides_and_float_strings():
    cfg = load_config(schema.TrainConfig, ROOT / "config/tiny-llama.yaml",
                      ["training.lr=1e-4", "data.seq_length=32", "model.num_kv_heads=2", "training.report_to=wandb"])
    assert cfg.training.lr == 1e-4 and isinstance(cfg.training.lr, float)
    assert cfg.data.seq_length == 32 and cfg.model.num_kv_heads == 2 and cfg.training.report_to == "wandb"


@pytest.mark.parametrize("override, needle", [
    ("training.lrate=1", "training.lrate: unknown key"),
    ("training.batch_size=big", "training.batch_size: got 'big'; expected an integer"),
    ("training.lr=-1", "training.lr: -1.0 is out of range"),
    ("model.type=bert", "model.type: got 'bert'; allowed: 'llama' | 'gpt2' | 'gptj'"),
    ("model.num_heads=5", "model.num_heads: 5 heads do not divide hidden_size 128"),
    ("model.max_position_embeddings=32", "model.max_position_embeddings: 32 is below data.seq_length 64"),
    ("distillation.alpha=1", "distillation: unknown key"),
])
def test_bad_values_name_file_and_key(override, needle):
    with pytest.raises(UserError) as e:
        load_config(schema.TrainConfig, ROOT / "config/tiny-llama.yaml", [override])
    msg = str(e.value)
    assert msg.startswith(str(ROOT / "config/tiny-llama.yaml")) and needle in msg and "\n" not in msg


@pytest.mark.parametrize("value, needle", [
    ("[{train_share: 0}]", "pipeline.budgets[].train_share: 0.0 is out of range; allowed (0, 1]"),
    ("[{train_share: 1.5}]", "pipeline.budgets[].train_share: 1.5 is out of range; allowed (0, 1]"),
    ("[{train_share: 0.5}, {share: 0.2}]", "pipeline.budgets[1].share: unknown key; allowed keys in "
                                           "pipeline.budgets[1]: train_share"),
    ("5", "pipeline.budgets: got 5; expected list of BudgetSpec | null"),  # no alternative fits: all are named
])
def test_an_optional_section_names_the_wrong_part_not_the_type(value, needle):
    """A value with the shape of an optional list or section, a part of it wrong, names that part."""
    with pytest.raises(UserError) as e:
        load_config(schema.PipelineConfig, ROOT / "config/pipeline.yaml", [f"pipeline.budgets={value}"])
    assert needle in str(e.value)


def test_resolved_config_roundtrips(tmp_path):
    cfg = load_config(schema.DistillConfig, ROOT / "config/tiny-distill.yaml", ["distillation.temperature=3"])
    path = config.save_config(cfg, tmp_path)
    again = load_config(schema.DistillConfig, path)
    assert again == cfg and again.distillation.temperature == 3.0


@pytest.mark.parametrize("script, args, needle", [
    ("train.py", ["--config", "{bad}"], "unknown key"),
    ("train.py", ["--config", "{typo}"], "training.num_epochs: got 'six'"),
    ("distill_train.py", ["--config", "config/tiny-distill.yaml", "distillation.teacher_weights=[1]"],
     "1 weights for 2 teachers"),
    ("train.py", ["--config", "missing.yaml"], "missing.yaml: config file not found"),
])
def test_cli_errors_are_one_line(tmp_path, script, args, needle):
    (tmp_path / "bad.yaml").write_text((ROOT / "config/tiny-llama.yaml").read_text() + "extra:\n  x: 1\n")
    typo = re.sub(r"num_epochs: \d+", "num_epochs: six", (ROOT / "config/tiny-llama.yaml").read_text())
    assert "num_epochs: six" in typo
    (tmp_path / "typo.yaml").write_text(typo)
    args = [a.format(bad=tmp_path / "bad.yaml", typo=tmp_path / "typo.yaml") for a in args]
    r = subprocess.run([sys.executable, script, *args], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert r.returncode == 2, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and needle in lines[0] and "Traceback" not in r.stderr, r.stderr


ACCELERATE = sorted((ROOT / "config" / "accelerate").glob("*.yaml"))


@pytest.mark.parametrize("path", ACCELERATE, ids=[p.name for p in ACCELERATE])
def test_accelerate_configs_load(path):
    """The launcher configs of docs/multi-gpu.md load with accelerate's own loader; a DeepSpeed file they name exists."""
    import json

    from accelerate.commands.config.config_args import load_config_from_file

    cfg = load_config_from_file(str(path))
    assert str(cfg.distributed_type).split(".")[-1] in {"MULTI_GPU", "DEEPSPEED", "FSDP"}
    ds = (cfg.deepspeed_config or {}).get("deepspeed_config_file")
    if ds:
        assert json.loads((ROOT / ds).read_text())["zero_optimization"]["stage"] == 2
