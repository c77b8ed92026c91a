"""babyllama/hub.py and push_checkpoints.py through huggingface_hub's own client code, against a local stand-in of the
Hub's HTTP API (tests/hub_standin.py): checkpoints by words seen on branches, the final model on main, no push twice,
retries, failures reported with the local folders kept."""

from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

import push_checkpoints
import train
from babyllama import config, hub, schema
from conftest import Killed
from hub_standin import LocalHub, serving
from test_words import KillAfter
from conftest import tiny_run_config

ROOT = Path(__file__).resolve().parents[1]
RUN = ["training.num_epochs=2", "training.batch_size=32"]


@pytest.fixture
def local_hub(monkeypatch):
    monkeypatch.setenv("HF_TOKEN", "hf_standin")
    monkeypatch.setattr(hub, "RETRY_SECONDS", 0.0)
    with serving(LocalHub()) as h:
        yield h


def local_files(folder: Path) -> dict:
    return {p.name: p.read_bytes() for p in folder.iterdir() if p.is_file()}


def test_checkpoints_go_to_branches_as_written_and_the_model_to_main(tmp_path, tiny_corpus, tiny_tokenizer_dir,
                                                                      local_hub, monkeypatch):
    from transformers import AutoModelForCausalLM

    pushers = []
    init = hub.HubPusher.__init__
    monkeypatch.setattr(hub.HubPusher, "__init__", lambda self, *a, **k: (init(self, *a, **k), pushers.append(self))[0])
    cfg = tiny_run_config(tmp_path, tiny_corpus, tiny_tokenizer_dir, overrides=RUN + [
        "training.save_words=[1000,3000,7000]", "training.push_to_hub=true", "training.hub_model_id=user/baby"])
    with pytest.raises(Killed):  # a checkpoint at step 3, chck_3K at step 5, killed at step 7
        train.run(cfg, callbacks=[KillAfter(save=3, die=7)])
    pushers[-1].finish()  # the pushes the killed run had started
    train.run(cfg, resume=True)
    out = Path(cfg.training.output_dir)
    assert local_hub.branches("user/baby") == ["chck_1K", "chck_3K", "chck_7K", "main"]
    # each branch got one commit: the resumed run found chck_1K and chck_3K on their branches already
    assert sorted(branch for _, branch, _ in local_hub.commits) == ["chck_1K", "chck_3K", "chck_7K", "main"]
    for name in ("chck_1K", "chck_3K", "chck_7K"):
        remote = local_hub.files("user/baby", name)
        assert remote == {**local_files(out / name), ".gitattributes": remote[".gitattributes"]}, name
    on_main = local_hub.files("user/baby", "main")
    assert {"model.safetensors", "metrics.json", "config.yaml", "tokenizer.json", "README.md"} <= set(on_main)
    assert not [p for p in on_main if p.startswith(("chck_", "checkpoint-", ".", "hub_pushes"))
                and p != ".gitattributes"]
    for revision, local in (("chck_3K", out / "chck_3K"), ("main", out)):
        model = AutoModelForCausalLM.from_pretrained("user/baby", revision=revision, cache_dir=str(tmp_path / "dl"))
        weights = load_file(local / "model.safetensors")
        assert all(torch.equal(v, weights[k]) for k, v in model.state_dict().items() if k in weights), revision
    with pytest.raises(config.UserError, match="training.hub_model_id: required"):
        config.load_config(schema.TrainConfig, ROOT / "config/tiny-llama.yaml", ["training.push_to_hub=true"])


def test_failed_pushes_are_retried_then_reported_and_pushed_later(tmp_path, tiny_corpus, tiny_tokenizer_dir, local_hub,
                                                                  capsys):
    cfg = tiny_run_config(tmp_path, tiny_corpus, tiny_tokenizer_dir, overrides=[
        "training.max_steps=6", "training.batch_size=32", "training.save_words=[1000,3000]", "training.push_to_hub=true",
        "training.hub_model_id=user/broken"])
    local_hub.fail_commits = 10**6  # the Hub refuses every commit
    with pytest.raises(config.UserError, match=r"pushing chck_1K, chck_3K, main to user/broken failed; push them "
                                               r"later with: python push_checkpoints.py"):
        train.run(cfg)
    out = Path(cfg.training.output_dir)
    assert (out / "metrics.json").is_file() and sorted(p.name for p in out.glob("chck_*")) == ["chck_1K", "chck_3K"]
    assert capsys.readouterr().out.count("trying again") == 3 * (hub.RETRIES - 1)  # training went on meanwhile
    assert local_hub.commits == []

    local_hub.fail_commits = 1  # a hiccup: the first try fails, the retry goes through
    assert push_checkpoints.main([str(out)]) == 0  # the repo from the run's training.hub_model_id
    assert local_hub.branches("user/broken") == ["chck_1K", "chck_3K", "main"]
    assert "trying again" in capsys.readouterr().out
    assert push_checkpoints.main([str(out)]) == 0 and len(local_hub.commits) == 3  # all there: nothing pushed twice
    assert push_checkpoints.main([str(out), "--repo", "user/other", "--no-main"]) == 0
    assert local_hub.branches("user/other") == ["chck_1K", "chck_3K", "main"]  # main: the repo's first commit only
    assert set(local_hub.files("user/other", "main")) == {".gitattributes"}
    with pytest.raises(config.UserError, match="no chck_"):
        push_checkpoints.main([str(tmp_path), "--repo", "user/x"])
