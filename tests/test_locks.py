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


def test_a_second_blimp_run_on_an_output_dir_is_refused_before_it_writes(tmp_path, holder, capsys):
    import eval_blimp

    out, blimp = tmp_path / "results", tmp_path / "blimp"
    blimp.mkdir()
    (blimp / "x.jsonl").write_text(json.dumps({"sentence_good": "a b", "sentence_bad": "b a"}) + "\n")
    other = holder(out)
    assert run_cli(eval_blimp.main, ["--blimp-dir", str(blimp), "--model", f"m={tmp_path / 'no-model'}",
                                     "--output-dir", str(out)]) == 2
    assert f"{out} (eval.output_dir) is in use by another run, pid {other.pid} on " in capsys.readouterr().err
    assert not out.exists()


def test_two_runs_updating_one_results_file_take_turns(tmp_path):
    """RESULTS.md holds a section per run; one run's read-modify-write must not drop the other's (it did: each read the
    file, put its section in and wrote it back, and the later write won)."""
    import threading

    from babyllama.files import write_atomic
    from babyllama.locks import updating
    from babyllama.pipeline_report import write_section

    path = tmp_path / "RESULTS.md"
    write_section(path, "a", "A, first")
    with updating(path):  # run a is between its read and its write
        text = path.read_text()
        other = threading.Thread(target=write_section, args=(path, "b", "B"))
        other.start()
        other.join(0.5)
        assert other.is_alive()  # run b waits for run a ...
        write_atomic(path, text.replace("A, first", "A, second"))
    other.join(10)
    assert not other.is_alive()
    text = path.read_text()  # ... and reads what a wrote: both updates are in
    assert "A, second" in text and "<!-- begin b: generated, do not edit -->\nB\n<!-- end b -->" in text
    assert [p.name for p in tmp_path.iterdir()] == ["RESULTS.md"]  # no lock file is left beside the results
