"""Never lose a trained model, never report a wrong number in silence: each test breaks an input or the environment
and checks the one-line error, the exit code, and that every file written before is still there, byte for byte."""

import errno
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from transformers import TrainerCallback

from babyllama import config
from babyllama import schema
import distill_train
import train
from babyllama import run_folder, trainer_setup
from babyllama.config import UserError, run_cli
from conftest import save_random_model, tiny_run_config

ROOT = Path(__file__).resolve().parents[1]


def snapshot(folder) -> dict:
    return {p.relative_to(folder): p.read_bytes() for p in Path(folder).rglob("*") if p.is_file()}


def one_line_error(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: "), err
    return err[0]


def config_file(tmp_path, corpus, tokenizer_dir, extra: dict | None = None, name="run.yaml", teachers=None) -> Path:
    """A tiny run's YAML, for driving the scripts' main() as a user does."""
    import yaml

    cfg = tiny_run_config(tmp_path, corpus, tokenizer_dir, distill_teachers=teachers)
    data = config.to_dict(cfg)
    hf = data["training"].pop("hf_args")
    data["training"].update(hf)
    for dotted, value in (extra or {}).items():
        section, key = dotted.split(".")
        data[section][key] = value
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data))
    return path


# ----------------------------------------------------------------------------------------------------------------------
# 2. a finished run is a finished run


def test_finished_model_is_never_overwritten(tmp_path, tiny_corpus, tiny_tokenizer_dir, capsys):
    path = config_file(tmp_path, tiny_corpus, tiny_tokenizer_dir, {"training.max_steps": 3})
    assert run_cli(train.main, ["--config", str(path)]) == 0
    out = tmp_path / "out"
    for c in run_folder.checkpoints_in(out):  # users delete checkpoints to save disk
        for f in sorted(c.rglob("*"), reverse=True):
            f.unlink() if f.is_file() else f.rmdir()
        c.rmdir()
    before = snapshot(out)
    capsys.readouterr()
    assert run_cli(train.main, ["--config", str(path)]) == 2
    assert "holds a finished model" in one_line_error(capsys) and snapshot(out) == before
    assert run_cli(train.main, ["--config", str(path), "--resume"]) == 2
    assert "--overwrite" in one_line_error(capsys) and snapshot(out) == before
    assert run_cli(train.main, ["--config", str(path), "training.report_to=none", "--overwrite",
                                "training.save_minutes=30"]) == 0  # overrides on both sides of a flag
    assert snapshot(tmp_path / "out.old-1") == before and (out / "metrics.json").is_file()


def test_resume_with_other_model_settings_is_refused_before_writing(tmp_path, tiny_corpus, tiny_tokenizer_dir, capsys):
    class Killed(Exception):
        pass

    class KillAfterFirstSave(TrainerCallback):
        def on_save(self, args, state, control, **kw):
            raise Killed

    cfg = tiny_run_config(tmp_path, tiny_corpus, tiny_tokenizer_dir, overrides=["training.max_steps=4",
                                                                                 "training.eval_steps=2"])
    with pytest.raises(Killed):
        train.run(cfg, callbacks=[KillAfterFirstSave()])
    before = snapshot(tmp_path / "out")
    path = config_file(tmp_path, tiny_corpus, tiny_tokenizer_dir, {"training.max_steps": 4, "training.eval_steps": 2,
                                                                   "model.hidden_size": 64})
    capsys.readouterr()
    assert run_cli(train.main, ["--config", str(path), "--resume"]) == 2
    msg = one_line_error(capsys)
    assert "--resume with model.hidden_size=64, but the saved run has 32" in msg
    assert snapshot(tmp_path / "out") == before


@pytest.fixture
def killed_run(tmp_path, tiny_corpus, tiny_tokenizer_dir):
    """A run of 4 steps killed after its checkpoint at step 2: (its YAML, a snapshot of its folder)."""
    class Killed(Exception):
        pass

    class KillAfterFirstSave(TrainerCallback):
        def on_save(self, args, state, control, **kw):
            raise Killed

    path = config_file(tmp_path, tiny_corpus, tiny_tokenizer_dir, {"training.max_steps": 4, "training.eval_steps": 2})
    with pytest.raises(Killed):
        train.run(config.load_config(schema.TrainConfig, path), callbacks=[KillAfterFirstSave()])
    return path, snapshot(tmp_path / "out")


@pytest.mark.parametrize("override, needle", [
    ("training.lr=1e-3", "--resume with training.lr=0.001, but the saved run has 0.003"),
    ("training.warmup_steps=1", "--resume with training.warmup_steps=1, but the saved run has 2"),
    ("training.adam_beta2=0.9", "--resume with training.adam_beta2=0.9, but the saved run has 'unset'"),
    ("data.seq_length=16", "--resume with data.seq_length=16, but the saved run has 32"),
])
def test_resume_with_a_changed_setting_is_refused(tmp_path, killed_run, capsys, override, needle):
    """The lr schedule comes back from the checkpoint's scheduler state: a new training.lr would be ignored while
    config.yaml said otherwise, so any change but where the run logs is refused, before anything is written."""
    path, before = killed_run
    capsys.readouterr()
    assert run_cli(train.main, ["--config", str(path), "--resume", override]) == 2
    msg = one_line_error(capsys)
    assert needle in msg and str(tmp_path / "out" / "config.yaml") in msg and "--overwrite" in msg
    assert snapshot(tmp_path / "out") == before


def test_resume_with_a_logging_change_goes_on_and_records_it(tmp_path, killed_run):
    path, _ = killed_run
    assert run_cli(train.main, ["--config", str(path), "--resume", "training.save_minutes=10"]) == 0
    saved = config.load_config(schema.TrainConfig, tmp_path / "out" / "config.yaml")
    assert saved.training.save_minutes == 10 and saved.training.max_steps == 4


def test_resume_and_overwrite_together_are_refused(tmp_path, tiny_corpus, tiny_tokenizer_dir, capsys):
    path = config_file(tmp_path, tiny_corpus, tiny_tokenizer_dir, {"training.max_steps": 2})
    assert run_cli(train.main, ["--config", str(path)]) == 0
    before = snapshot(tmp_path / "out")
    capsys.readouterr()
    assert run_cli(train.main, ["--config", str(path), "--resume", "--overwrite"]) == 2
    assert "--resume and --overwrite contradict each other" in one_line_error(capsys)
    assert snapshot(tmp_path / "out") == before and not (tmp_path / "out.old-1").exists()


def test_empty_output_dir_is_refused_and_writes_nothing(tmp_path, tiny_corpus, tiny_tokenizer_dir, capsys,
                                                        monkeypatch):
    path = config_file(tmp_path, tiny_corpus, tiny_tokenizer_dir, {"training.max_steps": 2})
    run_dir = tmp_path / "cwd"
    run_dir.mkdir()
    monkeypatch.chdir(run_dir)
    before = snapshot(tmp_path)
    capsys.readouterr()
    assert run_cli(train.main, ["--config", str(path), "training.output_dir="]) == 2
    assert "training.output_dir: is empty" in one_line_error(capsys)
    assert snapshot(tmp_path) == before and not any(run_dir.iterdir())  # no config.yaml in the current folder


# ----------------------------------------------------------------------------------------------------------------------
# 3. numbers


@pytest.mark.parametrize("override, needle", [
    ("training.lr=inf", "training.lr: got 'inf'; expected a finite number"),
    ("training.lr=nan", "training.lr: got 'nan'; expected a finite number"),
    ("training.lr=.nan", "training.lr: got nan; expected a finite number"),
    ("training.lr=2", "training.lr: 2.0 is out of range"),
    ("training.max_steps=0", "training.max_steps: 0: give -1"),
    ("training.max_grad_norm=-1", "training.max_grad_norm: got -1.0; expected a number >= 0"),
    ("training.adam_beta2=1.5", "training.adam_beta2: 1.5 is out of range"),
    ("training.max_gradnorm=1", "training.max_gradnorm: unknown key"),
    ("training.learning_rate=1e-3", "training.learning_rate: set by this recipe from training.lr"),
    ("distillation.temperature=nan", "distillation.temperature: got 'nan'; expected a finite number"),
    ("distillation.alpha=inf", "distillation.alpha: got 'inf'; expected a finite number"),
])
def test_non_finite_and_out_of_range_numbers_are_refused(override, needle):
    with pytest.raises(UserError, match=None) as e:
        config.load_config(schema.DistillConfig, ROOT / "config/tiny-distill.yaml", [override])
    assert needle in str(e.value)


def test_hf_options_pass_through_to_training_arguments(tmp_path, tiny_corpus, tiny_tokenizer_dir):
    cfg = tiny_run_config(tmp_path, tiny_corpus, tiny_tokenizer_dir,
                          overrides=["training.adam_beta2=0.95", "training.max_grad_norm=0.5", "training.optim=sgd"])
    args = trainer_setup.training_arguments(cfg.training, "fp32")
    assert (args.adam_beta2, args.max_grad_norm, str(args.optim.value)) == (0.95, 0.5, "sgd")
    assert args.save_total_limit == 2 and args.load_best_model_at_end  # our defaults where the user said nothing


def test_non_finite_loss_stops_before_the_update_and_keeps_the_checkpoint(tmp_path, tiny_corpus, tiny_tokenizer_dir):
    class PoisonAt(TrainerCallback):
        """After step 3, a weight becomes nan: step 4's loss and gradients are nan."""

        def on_step_end(self, args, state, control, model=None, **kw):
            if state.global_step == 3:
                with torch.no_grad():
                    model.model.norm.weight[0] = float("nan")  # the final norm: every logit becomes nan

    cfg = tiny_run_config(tmp_path, tiny_corpus, tiny_tokenizer_dir, overrides=["training.max_steps=8",
                                                                                 "training.eval_steps=2"])
    with pytest.raises(UserError, match=r"non-finite loss or gradient at step 4.*last good checkpoint: .*checkpoint-2"):
        train.run(cfg, callbacks=[PoisonAt()])
    out = Path(cfg.training.output_dir)
    assert [c.name for c in run_folder.checkpoints_in(out)] == ["checkpoint-2"]
    assert not (out / "metrics.json").exists()  # not saved as finished
    from safetensors.torch import load_file

    assert all(torch.isfinite(v).all() for v in load_file(out / "checkpoint-2" / "model.safetensors").values())


# ----------------------------------------------------------------------------------------------------------------------
# 6. late failures become early one-line errors


def test_push_without_network_fails_before_training(tmp_path, tiny_corpus, tiny_tokenizer_dir, capsys, monkeypatch):
    import huggingface_hub

    class NoNetwork:
        def create_repo(self, *a, **k):
            raise ConnectionError("Failed to resolve 'huggingface.co'\nmore lines of traceback text")

    monkeypatch.setattr(huggingface_hub, "HfApi", NoNetwork)
    path = config_file(tmp_path, tiny_corpus, tiny_tokenizer_dir, {"training.push_to_hub": True,
                                                                   "training.hub_model_id": "me/model"})
    assert run_cli(train.main, ["--config", str(path)]) == 2
    msg = one_line_error(capsys)
    assert "training.push_to_hub: cannot create or reach me/model" in msg and "Failed to resolve" in msg
    assert not (tmp_path / "out").exists()  # nothing trained, nothing written


def test_wandb_without_login_fails_before_training(tmp_path, tiny_corpus, tiny_tokenizer_dir, capsys, monkeypatch):
    for var in ("WANDB_MODE", "WANDB_API_KEY"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))  # no ~/.netrc
    monkeypatch.setenv("NETRC", str(tmp_path / "none"))
    path = config_file(tmp_path, tiny_corpus, tiny_tokenizer_dir, {"training.report_to": "wandb"})
    assert run_cli(train.main, ["--config", str(path)]) == 2
    assert "WANDB_MODE=offline" in one_line_error(capsys) and not (tmp_path / "out").exists()


@pytest.mark.parametrize("damage, needle", [
    ("no_weights", "no weights (*.safetensors) in this teacher folder"),
    ("truncated", "model.safetensors: unreadable"),
    ("bad_tokenizer", "its tokenizer does not load"),
])
def test_damaged_teacher_is_a_one_line_error(tmp_path, tiny_corpus, tiny_tokenizer_dir, capsys, damage, needle):
    teacher = save_random_model(tmp_path / "teacher", "llama", tiny_tokenizer_dir)
    weights = teacher / "model.safetensors"
    if damage == "no_weights":
        weights.unlink()
    elif damage == "truncated":
        weights.write_bytes(weights.read_bytes()[:1000])
    else:
        (teacher / "tokenizer.json").write_text('{"version": "1.0", "truncated')
    path = config_file(tmp_path, tiny_corpus, tiny_tokenizer_dir, teachers=[teacher])
    capsys.readouterr()
    assert run_cli(distill_train.main, ["--config", str(path)]) == 2
    assert needle in one_line_error(capsys)
    assert not (tmp_path / "out").exists() and not (tmp_path / ".out.lock").exists()  # no empty folder, no lock left


def test_full_disk_is_named(tmp_path, tiny_corpus, tiny_tokenizer_dir, capsys, monkeypatch):
    import shutil

    Usage = type(shutil.disk_usage(tmp_path))
    monkeypatch.setattr(shutil, "disk_usage", lambda p: Usage(10**9, 10**9 - 1000, 1000))
    path = config_file(tmp_path, tiny_corpus, tiny_tokenizer_dir)
    assert run_cli(train.main, ["--config", str(path)]) == 2
    assert "GB free, but one checkpoint needs about" in one_line_error(capsys)

    def disk_full(argv):
        raise OSError(errno.ENOSPC, "No space left on device", "/data/out/checkpoint-9/optimizer.pt")

    assert run_cli(disk_full) == 2
    assert "optimizer.pt: the disk is full" in one_line_error(capsys)

    def torch_full(argv):
        raise RuntimeError("[enforce fail at inline_container.cc:664] . unexpected pos 3904 vs 3792")

    assert run_cli(torch_full) == 2
    assert "is the disk full or read-only" in one_line_error(capsys)


# ----------------------------------------------------------------------------------------------------------------------
# 7. checkpoint spacing and Ctrl-C


def test_save_minutes_bounds_the_work_a_crash_loses(tmp_path, tiny_corpus, tiny_tokenizer_dir):
    cfg = tiny_run_config(tmp_path, tiny_corpus, tiny_tokenizer_dir,
                          overrides=["training.max_steps=3", "training.save_minutes=1e-6", "training.save_total_limit=9",
                                     "training.load_best_model_at_end=false"])
    train.run(cfg)
    assert [c.name for c in run_folder.checkpoints_in(cfg.training.output_dir)] == [
        "checkpoint-1", "checkpoint-2", "checkpoint-3"]
    assert config.load_config(schema.TrainConfig, ROOT / "config/llama-360M.yaml").training.save_minutes == 30


def test_ctrl_c_saves_a_checkpoint_and_says_how_to_resume(tmp_path, tiny_corpus, tiny_tokenizer_dir):
    path = config_file(tmp_path, tiny_corpus, tiny_tokenizer_dir, {"training.num_epochs": 1000})
    proc = subprocess.Popen([sys.executable, "train.py", "--config", str(path)], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=dict(os.environ, PYTHONUNBUFFERED="1"))
    deadline = time.time() + 300
    line = ""
    while time.time() < deadline and "parameters" not in line:  # the model is built: training starts now
        line = proc.stdout.readline()
        assert line or proc.poll() is None, proc.stderr.read()
    time.sleep(3)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 130, err[-2000:]
    ckpts = run_folder.checkpoints_in(tmp_path / "out")
    assert ckpts and run_folder.checkpoint_problem(ckpts[-1]) is None
    assert f"checkpoint saved in {ckpts[-1]}" in err and f"--config {path} --resume" in err
    assert not (tmp_path / "out" / "metrics.json").exists()
