"""Curriculum learning (data.curriculum): stage order and cumulative buckets, resume in the middle of a stage, bad
curricula; the readability ranking of clean_data.py --readability."""

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

import clean_data
from babyllama import config
from babyllama import schema
import train
from babyllama import run_folder, trainer_setup
from babylm_dataset import curriculum_dataset, encode_files
from conftest import Killed, kill_at, make_lines, tiny_run_config


def data_section(train_dir, tok, tmp_path, curriculum, seq=16):
    return schema.DataSection(train_dir=str(train_dir), dev_dir=str(tmp_path / "dev"), tokenizer_dir=str(tok),
                              seq_length=seq, cache_dir=str(tmp_path / "cache"), curriculum=curriculum)


def test_curriculum_stages_add_buckets_in_order(tmp_path, tiny_tokenizer_dir):
    folder = tmp_path / "train"
    folder.mkdir()
    for i, (src, n) in enumerate([("cbt", 30), ("childes", 50), ("switchboard", 70), ("qed", 20)]):
        (folder / f"{src}.train").write_text("\n".join(make_lines(n, 10 + i)) + "\n")
    # wikipedia has no file; childes is the 2024 name of aochildes; qed is in no bucket
    data = data_section(folder, tiny_tokenizer_dir, tmp_path, "cbt | aochildes wikipedia | switchboard")
    warnings = []
    ds = curriculum_dataset(data, seed=3, epochs=2, verbose=False, warn=warnings.append)
    assert warnings == [f"data.curriculum bucket 2: no train file for wikipedia in {folder}; skipped",
                        f"{folder / 'qed.train'}: in no data.curriculum bucket, so never trained on; add its source to "
                        "a bucket to use it"]
    assert ds.stages == [["cbt"], ["childes"], ["switchboard"]]
    # the stream is the files in bucket order; stage s trains on its first floor(tokens of buckets 1..s / 16) chunks
    files = [folder / "cbt.train", folder / "childes.train", folder / "switchboard.train"]
    parts = [encode_files([f], tiny_tokenizer_dir) for f in files]
    assert np.array_equal(ds.ids, np.concatenate(parts))
    file_end = np.cumsum([len(p) for p in parts])  # token offset where each file ends
    n_chunks = [int(e) // 16 for e in file_end]
    assert [(s, e) for s, e, _ in ds.epoch_ends] == [(0, 0), (0, 1), (1, 0), (1, 1), (2, 0), (2, 1)]
    assert [end for _, _, end in ds.epoch_ends] == list(np.cumsum([n for n in n_chunks for _ in range(2)]))
    start = 0
    for s, e, end in ds.epoch_ends:
        epoch = ds.indices[start:end]
        assert sorted(epoch) == list(range(n_chunks[s])), (s, e)  # every chunk of the stage once, none later
        assert not np.array_equal(epoch, np.sort(epoch))  # shuffled
        # which files' tokens the epoch's chunks read: exactly buckets 1..s
        touched = {int(np.searchsorted(file_end, t, side="right")) for c in epoch for t in (c * 16, c * 16 + 15)}
        assert touched == set(range(s + 1)), (s, e, touched)
        start = end
    # the order is a function of the seed alone: the same again, another for another seed
    again = curriculum_dataset(data, seed=3, epochs=2, verbose=False, warn=lambda m: None)
    other = curriculum_dataset(data, seed=4, epochs=2, verbose=False, warn=lambda m: None)
    assert np.array_equal(again.indices, ds.indices) and not np.array_equal(other.indices, ds.indices)
    # a fractional count: the last epoch of each stage is the first half of its permutation
    half = curriculum_dataset(data, seed=3, epochs=1.5, verbose=False, warn=lambda m: None)
    assert [end for _, _, end in half.epoch_ends] == list(np.cumsum(
        [m for n in n_chunks for m in (n, round(0.5 * n))]))
    assert np.array_equal(half.indices[:n_chunks[0]], ds.indices[:n_chunks[0]])


def test_resume_in_the_middle_of_a_stage_matches_an_uninterrupted_run(tmp_path, tiny_corpus, tiny_tokenizer_dir):
    over = ["data.curriculum=switchboard | aochildes", "training.load_best_model_at_end=false",
            "training.save_total_limit=10"]
    full_cfg = tiny_run_config(tmp_path / "full", tiny_corpus, tiny_tokenizer_dir, overrides=over)
    full = train.run(full_cfg)
    out = Path(full_cfg.training.output_dir)
    last = run_folder.checkpoints_in(out)[-1]
    history = json.loads((last / "trainer_state.json").read_text())["log_history"]
    # one epoch per stage: evaluated (and saved) where stage 1 ends and where stage 2 ends
    n1 = len(encode_files([tiny_corpus["train"] / "switchboard.train"], tiny_tokenizer_dir)) // 32
    train_ds, _ = trainer_setup.build_datasets(full_cfg.data, seed=0, verbose=False)
    ends = [end for _, _, end in train_ds.epoch_ends]
    assert ends[0] == n1 and len(train_ds) == ends[1]
    steps = [math.ceil(e / 8) for e in ends]
    assert [h["step"] for h in history if "eval_loss" in h] == steps
    assert full["global_step"] == steps[1]
    k = (steps[0] + steps[1]) // 2  # killed in the middle of stage 2
    part_cfg = tiny_run_config(tmp_path / "part", tiny_corpus, tiny_tokenizer_dir, overrides=over)
    with pytest.raises(Killed):
        train.run(part_cfg, callbacks=[kill_at(k)])
    assert run_folder.checkpoints_in(part_cfg.training.output_dir)[-1].name == f"checkpoint-{k}"
    resumed = train.run(part_cfg, resume=True)
    part_out = Path(part_cfg.training.output_dir)
    part_history = json.loads((run_folder.checkpoints_in(part_out)[-1] / "trainer_state.json").read_text())
    after = lambda hist: [h for h in hist if "loss" in h and h["step"] > k]  # noqa: E731
    ran, resumed_logs = after(history), after(part_history["log_history"])
    assert [h["step"] for h in resumed_logs] == [h["step"] for h in ran] == list(range(k + 1, steps[1] + 1))
    assert [h["loss"] for h in resumed_logs] == pytest.approx([h["loss"] for h in ran], abs=1e-5)
    assert resumed["eval_loss"] == pytest.approx(full["eval_loss"], abs=1e-5)
    a, b = load_file(str(out / "model.safetensors")), load_file(str(part_out / "model.safetensors"))
    assert a.keys() == b.keys() and all(torch.allclose(a[n], b[n], atol=1e-6) for n in a)
    assert "curriculum, 1 epochs per stage: `switchboard | aochildes`" in (out / "README.md").read_text()


@pytest.mark.parametrize("curriculum, needle", [
    ("wikipedia | gutenberg", "data.curriculum 'wikipedia | gutenberg' names no train file of {train} (it holds "
                              "aochildes, switchboard); name those sources, or set data.curriculum null"),
    ("aochildes || switchboard", "data.curriculum: 'aochildes || switchboard' has an empty bucket"),
    ("aochildes | aochildes switchboard", "data.curriculum: aochildes is in more than one bucket"),
])
def test_bad_curriculum_is_a_one_line_error(tmp_path, tiny_corpus, tiny_tokenizer_dir, capsys, curriculum, needle):
    cfg = tiny_run_config(tmp_path, tiny_corpus, tiny_tokenizer_dir)
    path = tmp_path / "c.yaml"
    path.write_text(json.dumps(config.to_dict(cfg)))  # JSON is YAML
    rc = config.run_cli(train.main, ["--config", str(path), f"data.curriculum={curriculum}"])
    err = capsys.readouterr().err
    assert rc == 2 and err.count("\n") == 1 and needle.format(train=tiny_corpus["train"]) in err, err
    assert not (tmp_path / "out" / "checkpoint-1").exists()


def test_readability_ranks_plain_text_first(tmp_path, capsys):
    easy = "The cat sat. We ran to the dog. I see it. You can go now. It is big.\n" * 30
    hard = ("Notwithstanding considerable institutional heterogeneity, comparative constitutional jurisprudence "
            "increasingly acknowledges extraterritorial obligations concerning environmental sustainability.\n") * 30
    mid = "When the children finished their breakfast, they walked slowly towards the old wooden bridge.\n" * 30
    for name, text in [("wikipedia", hard), ("aochildes", easy), ("cbt", mid)]:
        (tmp_path / f"{name}.train").write_text(text)
    assert config.run_cli(clean_data.main, ["--readability", str(tmp_path)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in out[1:4]] == ["aochildes", "cbt", "wikipedia"]
    assert out[1].split()[1:3] == [f"{len(easy.split()):,}", "118.58"]  # 206.835 - 1.015 * 18/5 - 84.6 * 1
    assert out[-1].endswith("data.curriculum='aochildes | cbt | wikipedia'")
    assert clean_data.readability_sample(tmp_path / "aochildes.train", 100).count("\n") == 19  # 20 runs of one line
    assert config.run_cli(clean_data.main, ["--readability", str(tmp_path / "nope")]) == 2
    assert "no <source>.train / .dev / .test files to rank" in capsys.readouterr().err


def test_distillation_with_a_curriculum_caches_each_chunk_once(tmp_path, tiny_corpus, tiny_tokenizer_dir):
    import distill_train
    from conftest import save_random_model

    teachers = [save_random_model(tmp_path / "t", "llama", tiny_tokenizer_dir, seed=1)]
    over = ["data.curriculum=switchboard | aochildes", "distillation.teacher_cache=true",
            "training.load_best_model_at_end=false"]
    cfg = tiny_run_config(tmp_path, tiny_corpus, tiny_tokenizer_dir, distill_teachers=teachers, overrides=over)
    metrics = distill_train.run(cfg)
    train_ds, _ = trainer_setup.build_datasets(cfg.data, seed=0, verbose=False)
    steps = math.ceil(len(train_ds) / 8)
    assert metrics["global_step"] == steps
    # every training batch and both evaluations (stage 1's end, stage 2's end; 2 batches each) read from the cache
    assert metrics["cache_misses"] == 0 and metrics["cache_hits"] == steps + 2 * 2
    (entry,) = (tmp_path / "cache" / "teacher").glob("train-*")
    assert json.loads((entry / "meta.json").read_text())["chunks"] == train_ds.epoch_ends[-1][2] - \
        train_ds.epoch_ends[0][2]  # stage 2's chunks, each once (stage 1's are among them)
