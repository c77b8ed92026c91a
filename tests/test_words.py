"""babyllama/words.py: words counted per token, words seen by training (epochs, resume), checkpoints by words seen,
the word budget."""

import json
import unicodedata
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file
from transformers import TrainerCallback

import eval_blimp
import train
from babyllama import config, schema, words
from babylm_dataset import load_split_ids
from conftest import Killed, tiny_run_config
from tokenizer import load_tokenizer


def test_milestone_names_and_the_babylm_schedule():
    assert [words.milestone_name(n) for n in (1_000_000, 10_000_000, 250_000, 1_500_000, 1000)] == [
        "chck_1M", "chck_10M", "chck_250K", "chck_1500K", "chck_1K"]
    with pytest.raises(ValueError):
        words.milestone_name(1500)
    small = words.milestones("babylm", "strict-small")
    assert [words.milestone_name(m) for m in small[:10]] == [f"chck_{i}M" for i in range(1, 11)]
    assert [m // 10**6 for m in small[9:]] == list(range(10, 101, 10)) and len(small) == 19
    strict = words.milestones("babylm", "strict")
    assert len(strict) == 28 and strict[19:] == [m * 10**6 for m in range(200, 1001, 100)]
    assert words.milestones([3000, 1000, 3000], None) == [1000, 3000] and words.milestones(None) == []
    with pytest.raises(config.UserError, match=r"training.save_words\[1\]: 1500: give a positive whole number"):
        config.load_config(schema.TrainConfig, Path(__file__).parents[1] / "config/tiny-llama.yaml",
                           ["training.save_words=[1000,1500]"])


def test_word_starts_count_str_split_of_the_trained_text(tmp_path, tiny_corpus, tiny_tokenizer_dir):
    """Every span of the stream holds the words that start in it: the whole stream's sum is str.split() of the
    (NFKC) text, any prefix's is str.split() of what it decodes to, whatever the spaces and however the 320-entry
    tokenizer cuts characters it never saw into bytes; a separator token adds no word."""
    data = tmp_path / "odd"
    data.mkdir()
    (data / "aochildes.train").write_text("  naïve  café\t—x\n\n日本語 ok.\u00a0yes\u2003no  \n\u3000end", "utf-8")
    files = sorted(tiny_corpus["train"].iterdir()) + [data / "aochildes.train"]
    ids = np.concatenate([np.asarray(load_split_ids(f.parent, tiny_tokenizer_dir, tmp_path, verbose=False, files=[f]))
                          for f in files])
    w = words.word_starts(ids, tiny_tokenizer_dir)
    text = "".join(unicodedata.normalize("NFKC", f.read_text("utf-8")) for f in files)
    assert int(w.sum()) == len(text.split())
    tok = load_tokenizer(tiny_tokenizer_dir)
    tail = len(ids) - 60  # the odd file's tokens, characters cut into bytes among them
    for k in list(range(tail, len(ids))) + [1, 2, 3, 100]:
        assert int(w[:k].sum()) == len(tok.decode(ids[:k].tolist()).split()), k
    sep = np.asarray(load_split_ids(tiny_corpus["train"], tiny_tokenizer_dir, tmp_path, "<s>", verbose=False))
    plain = np.asarray(load_split_ids(tiny_corpus["train"], tiny_tokenizer_dir, tmp_path, verbose=False))
    assert words.word_starts(sep, tiny_tokenizer_dir).sum() == words.word_starts(plain, tiny_tokenizer_dir).sum()


class KillAfter(TrainerCallback):
    """Save a checkpoint at step ``save``, then die at the end of step ``die`` (later milestones written meanwhile)."""

    def __init__(self, save, die):
        self.save, self.die = save, die

    def on_step_end(self, args, state, control, **kw):
        if state.global_step == self.die:
            raise Killed
        control.should_save = control.should_save or state.global_step == self.save
        return control


def test_words_seen_over_epochs_a_resume_and_checkpoints_by_words(tmp_path, tiny_corpus, tiny_tokenizer_dir):
    """Two epochs of 10 steps (290 chunks, batch 32). Words seen at each epoch end = epochs x (the split's words less
    those starting in the tokens the chunking drops); milestones at the first step reaching them, each a loadable
    model folder; a kill between two milestones (after one written past the checkpoint) and a resume give the same
    count, the same folders and the same weights."""
    from transformers import AutoModelForCausalLM

    marks = [1000, 3000, 7000]  # reached at steps 2, 5 and 12 (about 600 words per step)
    over = ["training.num_epochs=2", "training.batch_size=32", f"training.save_words={marks}"]
    full_cfg = tiny_run_config(tmp_path / "full", tiny_corpus, tiny_tokenizer_dir, overrides=over)
    full = train.run(full_cfg)
    part_cfg = tiny_run_config(tmp_path / "part", tiny_corpus, tiny_tokenizer_dir, overrides=over)
    with pytest.raises(Killed):
        train.run(part_cfg, callbacks=[KillAfter(save=3, die=7)])
    part = Path(part_cfg.training.output_dir)
    assert sorted(p.name for p in part.glob("chck_*")) == ["chck_1K", "chck_3K"]
    first = (part / "chck_3K" / "model.safetensors").stat().st_mtime_ns
    resumed = train.run(part_cfg, resume=True)
    assert (part / "chck_3K" / "model.safetensors").stat().st_mtime_ns == first  # replayed step 5: kept, not rewritten

    ids = np.asarray(load_split_ids(tiny_corpus["train"], tiny_tokenizer_dir, tmp_path / "full" / "cache",
                                    verbose=False))
    split_words = sum(len(unicodedata.normalize("NFKC", f.read_text()).split())
                      for f in sorted(tiny_corpus["train"].iterdir()))
    kept = len(ids) // 32 * 32  # the chunks' tokens; the tail after them is dropped
    per_epoch = len(load_tokenizer(tiny_tokenizer_dir).decode(ids[:kept].tolist()).split())  # words starting there
    assert 0 < split_words - per_epoch <= 20  # the dropped tail's few words
    for run, out in ((full, Path(full_cfg.training.output_dir)), (resumed, part)):
        assert run["words_seen"] == 2 * per_epoch and run["global_step"] == 20
        state = json.loads((out / "checkpoint-20" / "trainer_state.json").read_text())
        seen = {h["step"]: h["words_seen"] for h in state["log_history"] if "loss" in h}
        assert seen[10] == per_epoch and seen[20] == 2 * per_epoch  # the epoch ends
        assert state["stateful_callbacks"]["WordsSeen"]["attributes"]["words_seen"] == 2 * per_epoch
        assert sorted(p.name for p in out.glob("chck_*")) == ["chck_1K", "chck_3K", "chck_7K"]
        for m in marks:
            rec = words.read_checkpoint_words(out / words.milestone_name(m))
            assert seen.get(rec["step"] - 1, 0) < m <= rec["words_seen"] == seen[rec["step"]], rec  # first step
            assert rec["milestone"] == m and 0 < rec["epoch"] <= 2
    for m in marks:
        name = words.milestone_name(m)
        a, b = Path(full_cfg.training.output_dir) / name, part / name
        assert json.loads((a / "words_seen.json").read_text()) == json.loads((b / "words_seen.json").read_text())
        wa, wb = load_file(a / "model.safetensors"), load_file(b / "model.safetensors")
        assert wa.keys() == wb.keys() and all(torch.equal(wa[k], wb[k]) for k in wa), name
        model = AutoModelForCausalLM.from_pretrained(str(b))
        assert all(torch.equal(v, wb[k]) for k, v in model.state_dict().items() if k in wb)
        assert (b / "config.yaml").is_file() and (b / "tokenizer.json").is_file()
    blimp = tmp_path / "blimp"
    blimp.mkdir()
    (blimp / "sva.jsonl").write_text(json.dumps({"sentence_good": "The dog sees the cat.", "sentence_bad":
                                                 "The dog see the cat.", "linguistics_term": "agreement"}) + "\n")
    eval_blimp.main(["--blimp-dir", str(blimp), "--model", f"c7={part / 'chck_7K'}", "--output-dir",
                     str(tmp_path / "res"), "--no-progress"])
    assert json.loads((tmp_path / "res" / "c7.json").read_text())["averages"]["files"] in (0.0, 1.0)


def test_a_run_over_the_word_budget_is_refused_before_training(tmp_path, tiny_corpus, tiny_tokenizer_dir, capsys):
    cfg = tiny_run_config(tmp_path, tiny_corpus, tiny_tokenizer_dir,
                          overrides=["training.num_epochs=3", "training.word_budget=10000"])
    with pytest.raises(config.UserError, match=r"training.word_budget 10000 \(10,000 words\): this run would see "
                                               r"17,376 words \(3 epochs x 5,792 words\); lower it to at most "
                                               r"training.num_epochs 1.72 or training.max_steps"):
        train.run(cfg)
    out = Path(cfg.training.output_dir)
    assert not list(out.glob("checkpoint-*")) and not (out / "config.json").exists()
    cfg = tiny_run_config(tmp_path / "b", tiny_corpus, tiny_tokenizer_dir,
                          overrides=["training.max_steps=2", "training.word_budget=strict-small",
                                     "training.save_words=babylm"])
    m = train.run(cfg)
    printed = capsys.readouterr().out
    assert "within training.word_budget strict-small (100,000,000)" in printed
    assert "chck_1M...chck_100M will not exist" in printed and m["global_step"] == 2
