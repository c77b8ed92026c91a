"""finetune.py and synthetic_tasks.py: the per-task table, metrics, early stopping with the best checkpoint restored,
GPT-2 and LLaMA classifiers, learning the synthetic grammaticality task, resume, reports, one-line errors."""

import json
import math
import random
from pathlib import Path

import numpy as np
import pytest
import torch

from babyllama import config
import finetune
from babyllama import synthetic_tasks
from conftest import save_random_model, tiny_run_config
from babyllama.report import Row, format_table

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Tiny models gain nothing from a second thread, and on a shared machine two threads wait on each other."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def task_data(tmp_path_factory):
    """Both synthetic tasks in the plain layout: 800 train, 200 validation examples each."""
    out = tmp_path_factory.mktemp("ft-data")
    synthetic_tasks.write_tasks(out, seed=0, n_train=800, n_validation=200)
    return out


@pytest.fixture(scope="module")
def tok_dir(task_data, tmp_path_factory):
    """A BPE tokenizer trained on the tasks' training sentences (every word a token)."""
    from tokenizer import build_tokenizer

    root = tmp_path_factory.mktemp("ft-tok")
    text = [json.loads(line)["sentence"] for t in synthetic_tasks.TASKS
            for line in (task_data / t / "train.jsonl").read_text().splitlines()]
    (root / "corpus.train").write_text("\n".join(text) + "\n")
    build_tokenizer([root / "corpus.train"], vocab_size=400).save_pretrained(str(root / "tok"))
    return root / "tok"


@pytest.fixture(scope="module")
def random_models(tok_dir, tmp_path_factory):
    root = tmp_path_factory.mktemp("ft-models")
    return {kind: str(save_random_model(root / kind, kind, tok_dir, seed=1)) for kind in ("llama", "gpt2")}


def ft_config(tmp_path, data_dir, models, tasks=("synthetic_cola",), per_task=None, **section):
    data = {"finetune": {"data_dir": str(data_dir), "models": models, "tasks": list(tasks),
                         "output_dir": str(tmp_path / "results"), "precision": "fp32", "logging_steps": 10,
                         "per_task": per_task or {}, **section}}
    return config.load_config(finetune.FinetuneConfig, data=data)


# ----------------------------------------------------------------------------------------------------------------------
# config and metrics


def test_per_task_table_from_yaml_overrides_the_defaults(tmp_path):
    path = tmp_path / "ft.yaml"
    path.write_text("finetune:\n  data_dir: d\n  defaults: {lr: 2e-5, batch_size: 8, patience: 3}\n"
                    "  per_task:\n    cola: {lr: 4e-5, eval_steps: 20}\n    wsc: {batch_size: 1}\n")
    f = config.load_config(finetune.FinetuneConfig, path).finetune
    cola, wsc, rte = f.settings("cola"), f.settings("wsc"), f.settings("rte")
    assert (cola.lr, cola.eval_steps, cola.batch_size, cola.patience) == (4e-5, 20, 8, 3)
    assert (wsc.lr, wsc.batch_size) == (2e-5, 1)
    assert (rte.lr, rte.batch_size, rte.eval_steps, rte.num_epochs, rte.seed) == (2e-5, 8, 200, 10.0, 12)


def test_shipped_config_holds_table_3():
    f = config.load_config(finetune.FinetuneConfig, ROOT / "config" / "finetune.yaml").finetune
    assert (ROOT / "config" / "finetune.yaml").read_text().startswith("# python finetune.py")
    assert [t.name for t in finetune.resolve_tasks(f.tasks)][:2] == ["cola", "sst2"]
    assert len(finetune.resolve_tasks(f.tasks)) == 17
    row = lambda t: tuple(getattr(f.settings(t), k) for k in ("lr", "batch_size", "num_epochs", "patience",
                                                              "eval_steps", "seed"))
    assert row("cola") == (4e-5, 64, 3, 10, 20, 12)
    assert row("qqp") == (4e-5, 64, 10, 10, 1000, 12)
    assert row("mnli-mm") == row("rte") == (5e-5, 64, 6, 10, 200, 12)
    assert row("boolq") == (3e-4, 16, 10, 10, 10, 12)
    assert row("multirc") == (1e-4, 64, 7, 10, 1000, 42)
    assert row("wsc") == (5e-7, 1, 10, 1000, 2000, 12)
    assert row("control_raising_lexical_content_the") == row("syntactic_category_relative_position") == (
        1e-3, 64, 2, 10, 10, 12)
    assert row("main_verb_relative_token_position") == (5e-5, 64, 6, 10, 200, 12)
    assert (f.defaults.lr, f.defaults.batch_size, f.defaults.num_epochs, f.defaults.eval_steps) == (5e-5, 64, 10, 200)
    assert {t.metric for t in finetune.resolve_tasks(["all"]) if t.group == "msgs"} == {"mcc"}
    assert finetune.TASKS["mrpc"].metric == finetune.TASKS["qqp"].metric == "f1"


def test_mcc_and_f1_match_hand_computation_and_scikit_learn():
    from sklearn.metrics import accuracy_score, f1_score, matthews_corrcoef

    # tp 6, fn 2, fp 1, tn 11
    labels = [1] * 8 + [0] * 12
    preds = [1] * 6 + [0] * 2 + [1] * 1 + [0] * 11
    assert finetune.f1(labels, preds) == pytest.approx(2 * 6 / (2 * 6 + 1 + 2)) == f1_score(labels, preds)
    assert finetune.mcc(labels, preds) == pytest.approx((6 * 11 - 1 * 2) / math.sqrt(7 * 8 * 12 * 13))
    assert finetune.mcc(labels, preds) == pytest.approx(matthews_corrcoef(labels, preds))
    assert finetune.accuracy(labels, preds) == pytest.approx(17 / 20) == accuracy_score(labels, preds)
    assert finetune.mcc(labels, [1 - y for y in labels]) == pytest.approx(-1.0)
    assert finetune.mcc(labels, [0] * 20) == 0.0 and finetune.f1(labels, [0] * 20) == 0.0
    # three classes: Gorodkin's R_K from the confusion matrix [[2,1,0],[0,2,1],[1,0,3]]
    l3, p3 = [0, 0, 0, 1, 1, 1, 2, 2, 2, 2], [0, 0, 1, 1, 1, 2, 2, 2, 2, 0]
    s, c, t, p = 10, 7, [3, 3, 4], [3, 3, 4]
    expected = (c * s - sum(a * b for a, b in zip(t, p))) / math.sqrt((s * s - sum(x * x for x in p)) *
                                                                     (s * s - sum(x * x for x in t)))
    assert finetune.mcc(l3, p3) == pytest.approx(expected) == pytest.approx(36 / 66)
    assert finetune.mcc(l3, p3) == pytest.approx(matthews_corrcoef(l3, p3))


# ----------------------------------------------------------------------------------------------------------------------
# training


def test_early_stopping_stops_on_a_stalled_metric_and_reports_the_best_checkpoint(tmp_path, task_data, random_models,
                                                                                   monkeypatch):
    """The metric is scripted per distinct set of logits: 0.2, 0.9, 0.5, 0.4, 0.3, ... With patience 3 the run stops
    at step 5; evaluating the restored model must give 0.9 again (the logits of step 2), not 0.3 (step 5)."""
    script, seen = iter([0.2, 0.9, 0.5, 0.4, 0.3, 0.3, 0.3, 0.3]), {}

    def scripted(task):
        def compute(pred):
            key = np.round(pred.predictions, 5).tobytes()
            if key not in seen:
                seen[key] = next(script)
            return {task.metric: seen[key], "accuracy": 0.5}
        return compute

    monkeypatch.setattr(finetune, "make_compute_metrics", scripted)
    cfg = ft_config(tmp_path, task_data, {"m": random_models["llama"]},
                    per_task={"synthetic_cola": {"lr": 1e-3, "batch_size": 16, "num_epochs": 1, "eval_steps": 1,
                                                 "patience": 3}})
    r = finetune.run(cfg)["m"]["synthetic_cola"]
    assert r["history"][:5] == [[1, 0.2], [2, 0.9], [3, 0.5], [4, 0.4], [5, 0.3]]
    assert (r["global_step"], r["max_steps"], r["stopped_early"]) == (5, 50, True)
    assert r["best_step"] == 2 and r["value"] == 0.9
    assert not (tmp_path / "results" / "checkpoints" / "m" / "synthetic_cola").exists()  # cleaned up when done
    saved = json.loads((tmp_path / "results" / "m" / "synthetic_cola.json").read_text())
    assert saved["value"] == 0.9 and saved["settings"]["patience"] == 3 and saved["settings"]["max_seq_length"] == 64


@pytest.mark.parametrize("kind", ["llama", "gpt2"])
def test_classifier_pools_the_last_real_token(random_models, tok_dir, kind):
    import torch

    task = finetune.TASKS["synthetic_cola"]
    tok = finetune.load_tokenizer(random_models[kind])
    model = finetune.load_classifier(random_models[kind], task, tok).eval()
    assert model.config.pad_token_id == tok.pad_token_id and model.config.num_labels == 2
    short, long = "The dog sees a cat.", "The big dogs who saw my horse like some happy cats today."
    batch = tok([short, long], padding=True, return_tensors="pt")
    with torch.no_grad():
        padded = model(**batch).logits[0]
        alone = model(**tok([short], return_tensors="pt")).logits[0]
    assert batch["attention_mask"][0].sum() < batch["attention_mask"][1].sum()  # the short one is padded
    torch.testing.assert_close(padded, alone, rtol=1e-4, atol=1e-5)


def test_gpt2_and_llama_fine_tune_and_report(tmp_path, task_data, random_models):
    # through the pipeline's entry point: the shipped table with these models, data and overrides
    settings = [f"finetune.per_task.{t}.{k}={v}" for t in ("synthetic_cola", "synthetic_msgs")
                for k, v in (("num_epochs", 1), ("eval_steps", 10))]
    out = tmp_path / "results"
    stale = out / "old-model" / "synthetic_cola.json"  # a model of an earlier config: not in this run's table
    stale.parent.mkdir(parents=True)
    stale.write_text(json.dumps({"model": "old-model", "task": "synthetic_cola", "value": 0.5}))
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    results = finetune.run_tasks({"tiny-llama": random_models["llama"], "tiny-gpt2": random_models["gpt2"]}, task_data,
                                 ["synthetic_cola", "synthetic_msgs"], out,
                                 ["finetune.precision=fp32", "finetune.cpu_threads=1", "finetune.marked=[synthetic_msgs]",
                                  *settings])
    assert torch.get_num_threads() == 2  # cpu_threads holds for the fine-tuning only
    torch.set_num_threads(threads)
    for model in ("tiny-llama", "tiny-gpt2"):
        for task in ("synthetic_cola", "synthetic_msgs"):
            r = json.loads((out / model / f"{task}.json").read_text())
            assert r == results[model][task]
            assert r["metric"] == "mcc" and -1 <= r["value"] <= 1 and r["global_step"] == 25
            assert r["best_step"] in (10, 20, 25) and [s for s, _ in r["history"]] == [10, 20, 25]
            assert r["train_examples"] == 800 and r["validation_examples"] == 200
    table = (out / "table.md").read_text()
    lines = table.splitlines()
    assert lines[0] == "| Task | tiny-llama | tiny-gpt2 |"
    assert lines[2].startswith("| *(Super)GLUE*") and lines[4].startswith("| *MSGS (MCC)*")
    assert lines[3].startswith("| Synth. CoLA (MCC) |") and lines[5].startswith("| Synth. MSGS† |")
    value = f"{100 * results['tiny-gpt2']['synthetic_msgs']['value']:.1f}"
    assert value in lines[5].split("|")[3]
    assert (out / "glue.png").stat().st_size > 1000 and (out / "msgs.png").stat().st_size > 1000
    stale.unlink()
    (out / "table.md").unlink()  # redrawn from the JSONs; models not in the YAML come in by name
    assert finetune.main(["--report-only", "--config", str(ROOT / "config" / "finetune.yaml"),
                          f"finetune.output_dir={out}", "finetune.marked=[synthetic_msgs]"]) == 0
    swap = lambda line: "|".join(line.split("|")[i] for i in (0, 1, 3, 2, 4))
    assert (out / "table.md").read_text().splitlines() == [swap(line) for line in lines]


@pytest.fixture(scope="module")
def pretrained_llama(task_data, tok_dir, tmp_path_factory):
    """A hidden-64 LLaMA pretrained for 300 steps on grammatical sentences of the synthetic grammar."""
    import train

    root = tmp_path_factory.mktemp("ft-pretrain")
    rng = random.Random(7)
    sents = [synthetic_tasks.sentence_text(synthetic_tasks.grammatical(rng)[0]) for _ in range(3000)]
    for split, part in (("train", sents[:2700]), ("dev", sents[2700:])):
        (root / split).mkdir()
        (root / split / f"aochildes.{split}").write_text("\n".join(part) + "\n")
    cfg = tiny_run_config(root, {"train": root / "train", "dev": root / "dev"}, tok_dir, "llama",
                          ["training.max_steps=300", "training.batch_size=16", "training.logging_steps=100",
                           "model.hidden_size=64", "model.intermediate_size=128"])
    train.run(cfg)
    return cfg.training.output_dir


def test_tiny_model_learns_the_grammaticality_task(tmp_path, task_data, pretrained_llama):
    cfg = ft_config(tmp_path, task_data, {"m": pretrained_llama},
                    per_task={"synthetic_cola": {"lr": 3e-3, "batch_size": 32, "num_epochs": 4, "eval_steps": 20}})
    r = finetune.run(cfg)["m"]["synthetic_cola"]
    # 200 balanced validation sentences: chance is 0.5 +- 0.035 accuracy, MCC 0 +- 0.07
    assert r["accuracy"] >= 0.75 and r["value"] >= 0.5, r


def test_killed_task_resumes_and_finished_tasks_are_skipped(tmp_path, task_data, random_models, monkeypatch):
    from transformers import TrainerCallback

    class Kill(TrainerCallback):
        def on_step_end(self, args, state, control, **kw):
            if state.global_step == 5:
                raise KeyboardInterrupt

    cfg = ft_config(tmp_path, task_data, {"m": random_models["gpt2"]},
                    per_task={"synthetic_cola": {"lr": 1e-3, "batch_size": 32, "num_epochs": 1, "eval_steps": 2}})
    with pytest.raises(KeyboardInterrupt):
        finetune.run(cfg, callbacks=[Kill()])
    ckpts = tmp_path / "results" / "checkpoints" / "m" / "synthetic_cola"
    assert (ckpts / "checkpoint-4").is_dir() and not (tmp_path / "results" / "m" / "synthetic_cola.json").exists()
    r = finetune.run(cfg)["m"]["synthetic_cola"]
    assert r["resumed_from"] == str(ckpts / "checkpoint-4") and r["global_step"] == 25
    assert [s for s, _ in r["history"]][:3] == [2, 4, 6]  # the history before the kill came back with the state

    def fail(*a, **kw):
        raise AssertionError("a finished task was trained again")

    monkeypatch.setattr(finetune, "load_classifier", fail)
    again = finetune.run(cfg)["m"]["synthetic_cola"]
    assert again == r


def test_a_result_is_reused_only_for_the_same_model_data_and_settings(tmp_path, task_data, random_models, capsys):
    """A result is keyed by what it was computed from, not by its name: another model under the same name, changed task
    files or a changed setting redo it (the earlier result moved aside, byte for byte); the same source reuses it."""
    settings = ["--tasks", "synthetic_cola", "finetune.precision=fp32", "finetune.logging_steps=10",
                "finetune.per_task.synthetic_cola={lr: 1e-3, batch_size: 32, num_epochs: 0.2, eval_steps: 5}"]
    run = lambda out, data, *args: finetune.main(["--config", str(ROOT / "config" / "finetune.yaml"), *settings,
                                                  f"finetune.output_dir={out}", f"finetune.data_dir={data}", *args])
    out, result = tmp_path / "out", tmp_path / "out" / "m" / "synthetic_cola.json"
    assert run(out, task_data, "--model", f"m={random_models['llama']}") == 0
    first = result.read_bytes()
    assert run(out, task_data, "--model", f"m={random_models['llama']}") == 0
    assert "m / synthetic_cola: done already" in capsys.readouterr().out and result.read_bytes() == first
    assert run(out, task_data, "--model", f"m={random_models['gpt2']}") == 0  # m is another model now
    log = capsys.readouterr().out
    assert f"{result} was computed from a different model_dir, weights: moved to {result}.old-1, redoing" in log
    assert (out / "m" / "synthetic_cola.json.old-1").read_bytes() == first
    assert run(tmp_path / "fresh", task_data, "--model", f"m={random_models['gpt2']}") == 0
    fresh = json.loads((tmp_path / "fresh" / "m" / "synthetic_cola.json").read_text())
    redone = json.loads(result.read_text())
    assert redone["value"] == fresh["value"] and redone["history"] == fresh["history"]
    assert redone["source"]["model_dir"] == str(Path(random_models["gpt2"]).resolve())
    assert (out / "table.md").read_text() == (tmp_path / "fresh" / "table.md").read_text()
    # the task's files and its settings are part of the source too
    data = tmp_path / "data"
    synthetic_tasks.write_tasks(data, seed=0, n_train=800, n_validation=200)
    with open(data / "synthetic_cola" / "validation.jsonl", "a") as fh:
        fh.write(json.dumps({"sentence": "The dog sees a cat.", "label": 1}) + "\n")
    assert run(out, data, "--model", f"m={random_models['gpt2']}") == 0
    assert "computed from a different task_files: moved to" in capsys.readouterr().out
    assert json.loads(result.read_text())["validation_examples"] == 201
    assert run(out, data, "--model", f"m={random_models['gpt2']}", "finetune.per_task.synthetic_cola.lr=2e-3") == 0
    assert "computed from a different settings.lr: moved to" in capsys.readouterr().out
    assert sorted(p.name for p in (out / "m").iterdir()) == ["synthetic_cola.json"] + [
        f"synthetic_cola.json.old-{n}" for n in (1, 2, 3)]


def test_report_only_marks_the_scores_of_a_model_retrained_since(tmp_path, task_data, random_models, tok_dir,
                                                                   capsys):
    """--report-only checks each result's recorded weights hash against the folder it names: a model trained again
    (or gone) since gets its score marked, named and left out of the plots; the result files stay as they were."""
    import shutil

    folders = {n: tmp_path / n for n in ("a", "b")}
    for n, f in folders.items():
        shutil.copytree(random_models["llama"], f)
    per_task = {"synthetic_cola": {"lr": 1e-3, "batch_size": 32, "num_epochs": 0.2, "eval_steps": 5}}
    finetune.run(ft_config(tmp_path, task_data, {n: str(f) for n, f in folders.items()}, per_task=per_task))
    out = tmp_path / "results"
    fresh = (out / "table.md").read_text()
    results = {p: p.read_bytes() for p in out.glob("*/*.json")}
    save_random_model(folders["a"], "llama", tok_dir, seed=5)  # a retrained in place (train.py --overwrite)
    report = ["--report-only", "--config", str(ROOT / "config" / "finetune.yaml"), f"finetune.output_dir={out}"]
    capsys.readouterr()
    assert finetune.main(report) == 0
    lines = (out / "table.md").read_text().splitlines()
    cola = next(line for line in lines if line.startswith("| Synth. CoLA"))
    a_cell, b_cell = cola.split("|")[2:4]
    assert a_cell.strip().endswith("‡") and "‡" not in b_cell and a_cell.strip("*‡ ") in fresh
    assert lines[-1] == ("‡ stale: the model folder changed since this score was computed (or cannot be checked); "
                         "redo with finetune.py: a / synthetic_cola")
    err = capsys.readouterr().err
    assert (f"warning: {out / 'a' / 'synthetic_cola'}.json: the weights in {folders['a'].resolve()} changed since "
            "(retrained or replaced); its score is marked ‡ in table.md") in err and "/ b /" not in err
    shutil.rmtree(folders["b"])
    assert finetune.main(report) == 0
    assert f"its model folder {folders['b'].resolve()} is gone" in capsys.readouterr().err
    assert (out / "table.md").read_text().splitlines()[-1].endswith("a / synthetic_cola, b / synthetic_cola")
    assert {p: p.read_bytes() for p in out.glob("*/*.json")} == results  # nothing is lost: the scores are marked


def test_checkpoints_of_another_model_are_moved_aside_not_resumed(tmp_path, task_data, random_models):
    from transformers import TrainerCallback

    class Kill(TrainerCallback):
        def on_step_end(self, args, state, control, **kw):
            if state.global_step == 5:
                raise KeyboardInterrupt

    # 8 steps: 0.28 x 25 batches is 7.000...01 in floats
    per_task = {"synthetic_cola": {"lr": 1e-3, "batch_size": 32, "num_epochs": 0.28, "eval_steps": 2}}
    with pytest.raises(KeyboardInterrupt):
        finetune.run(ft_config(tmp_path, task_data, {"m": random_models["llama"]}, per_task=per_task),
                     callbacks=[Kill()])
    ckpts = tmp_path / "results" / "checkpoints" / "m" / "synthetic_cola"
    saved = {p.relative_to(ckpts): p.read_bytes() for p in ckpts.rglob("*") if p.is_file()}
    assert (ckpts / "checkpoint-4").is_dir()
    r = finetune.run(ft_config(tmp_path, task_data, {"m": random_models["gpt2"]}, per_task=per_task))["m"]
    assert r["synthetic_cola"]["resumed_from"] is None and r["synthetic_cola"]["global_step"] == 8
    old = ckpts.with_name("synthetic_cola.old-1")
    assert {p.relative_to(old): p.read_bytes() for p in old.rglob("*") if p.is_file()} == saved


def test_two_models_under_one_name_are_refused_before_anything_is_written(tmp_path, task_data, random_models, capsys):
    out = tmp_path / "out"
    base = ["--config", str(ROOT / "config" / "finetune.yaml"), "--tasks", "synthetic_cola",
            f"finetune.data_dir={task_data}", f"finetune.output_dir={out}"]
    (out / "a").mkdir(parents=True)
    (out / "a" / "synthetic_cola.json").write_text('{"model": "a", "task": "synthetic_cola", "value": 0.5}\n')
    before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    err = _error(capsys, base + ["--model", f"a={random_models['llama']}", "--model", f"a={random_models['gpt2']}"])
    assert err == (f"error: --model a={random_models['llama']} and --model a={random_models['gpt2']} are both named "
                   "'a': one result would overwrite the other; rename one")
    err = _error(capsys, base + ["--model", f"a b={random_models['llama']}", "--model", f"A_b={random_models['gpt2']}"])
    assert err == ("error: finetune.models: 'a b' and 'A_b' write the same result folder 'A_b'; one result would "
                   "overwrite the other; rename one")
    assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file()} == before


# ----------------------------------------------------------------------------------------------------------------------
# data layouts and errors


def test_babylm_layout_file_names(tmp_path):
    glue, msgs = tmp_path / "glue_filtered", tmp_path / "msgs_filtered"
    for f in (glue / "mnli.train.json", glue / "mnli.validation_matched.json", glue / "mnli.validation_mismatched.json",
              glue / "cola.train.json", glue / "cola.validation.json",
              msgs / "main_verb_lexical_content_the.train.json", msgs / "main_verb_lexical_content_the.validation.json"):
        f.parent.mkdir(exist_ok=True)
        f.write_text("")
    files = lambda t: tuple(p.relative_to(tmp_path).as_posix() for p in finetune.task_files(finetune.TASKS[t], tmp_path))
    assert files("mnli") == ("glue_filtered/mnli.train.json", "glue_filtered/mnli.validation_matched.json")
    assert files("mnli-mm") == ("glue_filtered/mnli.train.json", "glue_filtered/mnli.validation_mismatched.json")
    assert files("cola") == ("glue_filtered/cola.train.json", "glue_filtered/cola.validation.json")
    assert files("main_verb_lexical_content_the") == ("msgs_filtered/main_verb_lexical_content_the.train.json",
                                                      "msgs_filtered/main_verb_lexical_content_the.validation.json")
    with pytest.raises(config.UserError, match="glue_filtered/rte.train.json"):
        finetune.task_files(finetune.TASKS["rte"], tmp_path)


def test_task_text_and_labels(tmp_path):
    wsc, multirc = finetune.TASKS["wsc"], finetune.TASKS["multirc"]
    assert wsc.text({"text": "Kim saw Lee. She waved.", "span1_text": "Kim", "span2_text": "She", "label": True}) == (
        'Does "She" refer to "Kim" in this passage?', "Kim saw Lee. She waved.")
    assert multirc.fields == ["question", "answer", "paragraph"]
    path = tmp_path / "boolq.jsonl"
    path.write_text('{"question": "q?", "passage": "p.", "label": true}\n{"question": "r?", "passage": "s.", '
                    '"label": 0}\n')
    assert finetune.read_task_file(path, finetune.TASKS["boolq"]) == [("q?", "p.", 1), ("r?", "s.", 0)]


def _error(capsys, argv) -> str:
    assert config.run_cli(finetune.main, argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "\n" not in err
    return err


def test_one_line_errors(tmp_path, task_data, random_models, capsys):
    base = ["--config", str(ROOT / "config" / "finetune.yaml"), "--model", f"m={random_models['llama']}",
            f"finetune.output_dir={tmp_path / 'out'}"]
    err = _error(capsys, base + ["--tasks", "cola,nope", f"finetune.data_dir={task_data}"])
    assert "unknown task 'nope'" in err and "finetune.tasks" in err
    err = _error(capsys, base + ["--tasks", "synthetic_cola", f"finetune.data_dir={task_data}",
                                 "finetune.per_task.nope.lr=1e-4"])
    assert "finetune.per_task.nope" in err
    err = _error(capsys, base + ["--tasks", "synthetic_cola", f"finetune.data_dir={task_data}",
                                 "finetune.per_task.cola.lr=-1"])
    assert "finetune.per_task.cola.lr" in err

    data = tmp_path / "data"
    err = _error(capsys, base + ["--tasks", "synthetic_cola", f"finetune.data_dir={data}"])
    assert str(data) in err
    (data / "synthetic_cola").mkdir(parents=True)
    (data / "synthetic_cola" / "train.jsonl").write_text('{"sentence": "A dog runs.", "label": 1}\n')
    err = _error(capsys, base + ["--tasks", "synthetic_cola", f"finetune.data_dir={data}"])
    assert str(data / "synthetic_cola" / "validation.jsonl") in err and "not found" in err
    (data / "synthetic_cola" / "validation.jsonl").write_text('{"sentence": "A dog runs.", "label": 1}\n'
                                                              '{"text": "A dog runs.", "label": 0}\n')
    err = _error(capsys, base + ["--tasks", "synthetic_cola", f"finetune.data_dir={data}"])
    assert "validation.jsonl line 2" in err and "'sentence'" in err
    (data / "synthetic_cola" / "validation.jsonl").write_text('{"sentence": "A dog runs.", "label": 2}\n')
    err = _error(capsys, base + ["--tasks", "synthetic_cola", f"finetune.data_dir={data}"])
    assert "validation.jsonl line 1" in err and "label 2" in err and "(0, 1)" in err
    err = _error(capsys, ["--config", str(ROOT / "config" / "finetune.yaml"), "--model", f"m={tmp_path}",
                          "--tasks", "synthetic_cola", f"finetune.data_dir={task_data}"])
    assert "config.json" in err and str(tmp_path) in err


def test_truncated_model_weights_are_named_before_any_task(tmp_path, task_data, random_models, capsys):
    import shutil

    folder = tmp_path / "m"
    shutil.copytree(random_models["llama"], folder)
    weights = folder / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:5000])  # a copy cut short
    before = {p.name: p.read_bytes() for p in folder.iterdir()}
    err = _error(capsys, ["--config", str(ROOT / "config" / "finetune.yaml"), "--model", f"m={folder}", "--tasks",
                          "synthetic_cola", f"finetune.data_dir={task_data}", f"finetune.output_dir={tmp_path / 'out'}"])
    assert f"error: {weights}: unreadable" in err and "the model 'm' weights are damaged" in err
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before and not (tmp_path / "out").exists()


# ----------------------------------------------------------------------------------------------------------------------
# reports and synthetic tasks


def test_table_has_section_titles_and_daggers():
    rows = [Row("Group", "title", None), Row("X", "g", {"a": 50.0, "b": 25.0}), Row("Y†", "g", {"a": None, "b": -12.5})]
    assert format_table(rows, ["a", "b"]) == ("| Task | a | b |\n| --- | ---: | ---: |\n| *Group* | | |\n"
                                              "| X | **50.0** | 25.0 |\n| Y† | – | **-12.5** |\n")


def test_synthetic_tasks_are_deterministic_and_msgs_is_ambiguous_then_disambiguating(tmp_path):
    a, b, c = (synthetic_tasks.make_task("synthetic_msgs", 300, 100, s) for s in (0, 0, 1))
    assert a == b and a != c
    train, validation = a
    for rows, agree in ((train, True), (validation, False)):
        for r in rows:
            has_the = "the" in r["sentence"].lower().rstrip(".").split()
            assert r["surface_feature_label"] == int(has_the) and r["label"] == r["linguistic_feature_label"]
            assert (r["linguistic_feature_label"] == r["surface_feature_label"]) == agree
        assert sum(r["label"] for r in rows) == len(rows) // 2
    assert not {r["sentence"] for r in train} & {r["sentence"] for r in validation}
    cola_train, cola_val = synthetic_tasks.make_task("synthetic_cola", 400, 100, 0)
    assert sum(r["label"] for r in cola_train) == 200 and sum(r["label"] for r in cola_val) == 50
    folders = synthetic_tasks.write_tasks(tmp_path, seed=3, n_train=50, n_validation=20)
    rows = [json.loads(line) for line in (folders["synthetic_cola"] / "validation.jsonl").read_text().splitlines()]
    assert len(rows) == 20 and rows == synthetic_tasks.make_task("synthetic_cola", 50, 20, 3)[1]
