"""The README stays true: every file it names exists, every `section.key` is a config key, and every --flag of a
command it shows is in that script's --help."""

import dataclasses
import importlib
import re
from pathlib import Path

import pytest
from transformers import TrainingArguments

from babyllama import schema

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")


def section_classes() -> dict:
    import finetune
    return {"clean": schema.CleanSection, "tokenizer": schema.TokenizerSection, "data": schema.DataSection,
            "model": schema.ModelSection, "training": schema.TrainingSection,
            "distillation": schema.DistillationSection, "eval": schema.EvalSection, "gap": schema.GapSection,
            "pipeline": schema.PipelineSection, "finetune": finetune.FinetuneSection}


def commands() -> list[tuple[str, list[str]]]:
    """(script, [--flags]) of every `python SCRIPT.py ...` the README shows, in code blocks and inline code."""
    out = []
    for m in re.finditer(r"python (\w+)\.py([^`\n]*)", README):
        out.append((m.group(1), re.findall(r"(?<![\w-])--[a-z][a-z-]*", m.group(2))))
    return out


def test_named_files_exist():
    names = set(re.findall(r"(?<![\w/.-])((?:[\w-]+/)*[\w-]+\.(?:py|ya?ml|md|sh))\b", README))
    # what the repo ships: scripts and modules, configs, docs, benchmarks (not the outputs a run writes: table.md ...)
    names = {n for n in names if n.endswith((".py", ".sh")) or n.startswith(("config/", "docs/", "bench/", "babyllama/"))
             or re.fullmatch(r"[A-Z]+\.md", n)}
    # the annotated tree names a folder's files by their bare names under it (babyllama/, bench/)
    missing = sorted(n for n in names if not any((ROOT / d / n).exists() for d in ("", "babyllama", "bench")))
    assert not missing, f"README names files that do not exist: {missing}"
    assert {"train.py", "distill_train.py", "config/baby-llama-58M.yaml", "docs/paper-fidelity.md"} <= names


def test_named_config_keys_exist():
    classes = section_classes()
    keys = set(re.findall(rf"(?<![\w./])({'|'.join(classes)})\.(?!(?:py|ya?ml|md|json|sh)\b)([a-z_][a-z0-9_]*)\b", README))
    assert ("distillation", "temperature") in keys  # the parser finds them
    # the YAML snippet's keys under `distillation:` count too
    snippet = re.search(r"```yaml\ndistillation:\n(.*?)```", README, re.S)
    assert snippet, "README lost its distillation config snippet"
    keys |= {("distillation", k) for k in re.findall(r"^\s+([a-z_]+):", snippet.group(1), re.M)}
    trainer_args = {f.name for f in dataclasses.fields(TrainingArguments)}
    bad = []
    for section, key in sorted(keys):
        names = {f.name for f in dataclasses.fields(classes[section])}
        if key not in names and not (section == "training" and key in trainer_args):
            bad.append(f"{section}.{key}")
    assert not bad, f"README names config keys that do not exist: {bad}"


@pytest.mark.parametrize("script", sorted({s for s, _ in commands()}))
def test_shown_flags_are_in_help(script, capsys):
    assert (ROOT / f"{script}.py").exists(), f"README runs {script}.py, which does not exist"
    flags = sorted({f for s, fl in commands() if s == script for f in fl})
    module = importlib.import_module(script)
    with pytest.raises(SystemExit) as e:
        module.main(["--help"])
    assert e.value.code == 0
    help_text = capsys.readouterr().out
    missing = [f for f in flags if not re.search(rf"(?<![\w-]){re.escape(f)}(?![\w-])", help_text)]
    assert not missing, f"README shows {script}.py {missing}, not in its --help"


def test_readme_is_a_guide():
    lines = README.splitlines()
    assert len(lines) <= 210, f"README is {len(lines)} lines; keep it a guide (~200) and move detail to docs/"
    first = "\n".join(lines[:80])
    for needed in ("pip install -r requirements.txt", "python run_pipeline.py\n", "python distill_train.py --config",
                   "kl_normalization"):
        assert needed in first, f"a newcomer should find {needed!r} in the README's first 80 lines"
