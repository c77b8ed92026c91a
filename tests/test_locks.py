"""One run at a time per folder (babyllama/locks.py): a second pipeline run on a work dir, or a second training run on
an output folder, is refused while the first is alive, naming its pid and command; a lock whose process is gone is
taken over with a message; the lock goes when its run ends, whatever the end."""

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

import run_pipeline
import train
from babyllama.config import UserError, run_cli
from babyllama.locks import folder_lock, lock_file
from conftest import tiny_run_config

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def holder():
    """Start another process that holds a folder's lock and sleeps: what a running stage is to a second one."""
    procs = []

    def start(folder):
        code = ("import sys, time; from babyllama.locks import acquire; acquire(sys.argv[1], 'test'); "
                "print('held', flush=True); time.sleep(120)")
        p = subprocess.Popen([sys.executable, "-c", code, str(folder)], cwd=ROOT, stdout=subprocess.PIPE, text=True,
                             env=dict(os.environ, PYTHONPATH=str(ROOT)))
        procs.append(p)
        assert p.stdout.readline().strip() == "held"
        return p

    yield start
    for p in procs:
        p.kill()
        p.wait()


def test_a_second_training_run_is_refused_then_a_dead_ones_lock_is_taken_over(tmp_path, tiny_corpus,
                                                                              tiny_tokenizer_dir, holder, capsys):
    cfg = tiny_run_config(tmp_path, tiny_corpus, tiny_tokenizer_dir, overrides=["training.max_steps=2"])
    out = Path(cfg.training.output_dir)
    other = holder(out)
    with pytest.raises(UserError) as e:
        train.run(cfg)
    msg = str(e.value)
    assert f"{out} (training.output_dir) is in use by another run, pid {other.pid} on " in msg
    assert f": python -c {out}; wait for it to end or stop it" in msg  # its command line (python -c drops the code)
    assert not out.exists()  # refused before anything was written
    other.send_signal(signal.SIGKILL)  # dies holding it: the file stays, the kernel drops the flock
    other.wait()
    assert json.loads(lock_file(out).read_text())["pid"] == other.pid
    capsys.readouterr()
    metrics = train.run(cfg)
    assert metrics["global_step"] == 2
    assert f"taking over the lock of a run that is gone (pid {other.pid} on " in capsys.readouterr().err
    assert not lock_file(out).exists()  # released at the end


def test_a_second_pipeline_run_on_a_work_dir_is_refused_and_moves_nothing(tmp_path, holder, capsys):
    work = tmp_path / "work"
    (work / "models" / "student").mkdir(parents=True)
    (work / "models" / "student" / "metrics.json").write_text("{}")
    other = holder(work)
    assert run_cli(run_pipeline.main, [f"pipeline.work_dir={work}"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {work} (pipeline.work_dir) is in use by another run, pid {other.pid} on ")
    assert sorted(p.name for p in work.rglob("*")) == ["metrics.json", "models", "student"]
    assert run_pipeline.main([f"pipeline.work_dir={work}", "--dry-run"]) == 0  # reads only: no lock needed


@pytest.mark.parametrize("end", [UserError("refused"), KeyboardInterrupt()])
def test_the_lock_goes_with_its_run_however_it_ends_and_is_reentrant(tmp_path, end):
    folder = tmp_path / "new" / "out"
    with pytest.raises(type(end)):
        with folder_lock(folder, "x"):
            with folder_lock(folder, "x"):  # the pipeline holds its work dir and calls the stages in-process
                assert lock_file(folder).is_file()
            assert lock_file(folder).is_file()  # the inner block does not release the outer one's lock
            raise end
    assert not (tmp_path / "new").exists()  # neither the lock file nor the folder made for it stays
    with folder_lock(folder, "x"):
        assert json.loads(lock_file(folder).read_text())["pid"] == os.getpid()
