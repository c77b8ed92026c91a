"""The offline teacher cache: same top-k as the live teachers, exact loss at k=V, rebuilt when a teacher changes."""

import numpy as np
import pytest
import torch

from babylm_dataset import ChunkDataset
from babyllama.config import ConfigError, UserError, load_config
from babyllama.schema import DistillConfig, DistillationSection
from babyllama.files import model_fingerprint
from babyllama.losses import TopKTeacher, distillation_loss, teacher_log_probs
from babyllama.teacher_cache import TeacherCache

V, SEQ = 96, 16


def tiny_lm(kind: str, seed: int):
    from transformers import GPT2Config, GPT2LMHeadModel, LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    if kind == "llama":
        cfg = LlamaConfig(vocab_size=V, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                          num_attention_heads=4, max_position_embeddings=64)
        model = LlamaForCausalLM(cfg)
    else:
        model = GPT2LMHeadModel(GPT2Config(vocab_size=V, n_embd=32, n_layer=2, n_head=4, n_positions=64))
    return model.eval().requires_grad_(False)


@pytest.fixture
def setup(tmp_path):
    ids = np.random.default_rng(0).integers(3, V, size=SEQ * 10).astype(np.uint16)
    ds = ChunkDataset(ids, SEQ, return_index=True)
    teachers = [tiny_lm("llama", 1), tiny_lm("gpt2", 2)]
    folders = []
    for i, t in enumerate(teachers):
        folders.append(tmp_path / f"t{i}")
        t.save_pretrained(folders[-1])
    return ds, teachers, folders, tmp_path / "cache"


def live_log_probs(teachers, x, temperature=2.0, combine="logits"):
    with torch.no_grad():
        logits = [t(input_ids=x).logits.reshape(-1, V) for t in teachers]
    return teacher_log_probs(logits, [0.5, 0.5], combine, temperature).reshape(*x.shape, V)


def test_cache_matches_live_teachers_topk(setup):
    ds, teachers, folders, cache_dir = setup
    k = 8
    cache = TeacherCache.open_or_build(cache_dir, "train", ds, teachers, k=k, temperature=2.0, combine="logits",
                                       teacher_ids=[model_fingerprint(f) for f in folders], batch_size=3)
    items = [ds[i] for i in (7, 2, 5)]
    x = torch.stack([it["input_ids"] for it in items])
    hit = cache.lookup(torch.stack([it["chunk_index"] for it in items]), x)
    assert isinstance(hit, TopKTeacher) and hit.ids.shape == (3, SEQ, k)
    lp = live_log_probs(teachers, x)
    vals, idx = lp.topk(k, dim=-1)
    assert torch.equal(hit.ids, idx)
    torch.testing.assert_close(hit.logp, vals, atol=2e-3, rtol=1e-3)  # fp16 storage
    # tokens are checked: another batch under the same indices is not served from the cache
    assert cache.lookup(torch.tensor([7, 2, 5]), torch.randint(3, V, (3, SEQ))) is None
    assert cache.lookup(torch.tensor([99]), x[:1]) is None


@pytest.mark.parametrize("tail", ["renorm", "uniform", "student"])
def test_loss_with_full_topk_equals_exact_loss(setup, tail):
    ds, teachers, folders, cache_dir = setup
    cache = TeacherCache.open_or_build(cache_dir, "train", ds, teachers, k=V, temperature=2.0, combine="logits",
                                       key="full")
    items = [ds[i] for i in range(4)]
    x = torch.stack([it["input_ids"] for it in items])
    labels = x.clone()
    labels[0, :3] = -100
    hit = cache.lookup(torch.stack([it["chunk_index"] for it in items]), x)
    with torch.no_grad():
        t_logits = [t(input_ids=x).logits for t in teachers]
    torch.manual_seed(3)
    s1 = torch.randn(4, SEQ, V, requires_grad=True)
    s2 = s1.detach().clone().requires_grad_(True)
    exact = distillation_loss(s1, t_logits, labels, alpha=0.5, temperature=2.0, chunk_size=7)
    cached = distillation_loss(s2, hit, labels, alpha=0.5, temperature=2.0, chunk_size=5, tail=tail)
    exact.loss.backward()
    cached.loss.backward()
    # fp16 log-probs in the cache: agreement to ~1e-3 relative
    torch.testing.assert_close(cached.loss, exact.loss, rtol=2e-3, atol=2e-3)
    torch.testing.assert_close(cached.ce, exact.ce)
    torch.testing.assert_close(s2.grad, s1.grad, rtol=1e-2, atol=2e-5)


def test_topk_loss_is_exact_with_exact_log_probs():
    """With float32 log-probs of the full distribution the top-k loss equals the dense one to float precision."""
    torch.manual_seed(0)
    s1 = torch.randn(2, 5, V, requires_grad=True)
    s2 = s1.detach().clone().requires_grad_(True)
    t = torch.randn(2, 5, V) * 3
    labels = torch.randint(0, V, (2, 5))
    lp = torch.log_softmax(t / 2.0, dim=-1)
    vals, idx = lp.topk(V, dim=-1)
    exact = distillation_loss(s1, t, labels, temperature=2.0)
    for tail in ("renorm", "uniform", "student"):
        got = distillation_loss(s2, TopKTeacher(idx, vals), labels, temperature=2.0, tail=tail)
        torch.testing.assert_close(got.loss, exact.loss)
        torch.testing.assert_close(got.kl, exact.kl)
    exact.loss.backward()
    got.loss.backward()
    torch.testing.assert_close(s2.grad, s1.grad)


def test_uniform_tail_kl_matches_dense_formula():
    """The uniform-tail loss equals the dense KL against the top-k + uniform-tail distribution."""
    torch.manual_seed(1)
    k = 10
    s = torch.randn(1, 3, V, requires_grad=True)
    lp = torch.log_softmax(torch.randn(1, 3, V) * 2, dim=-1)
    vals, idx = lp.topk(k, dim=-1)
    labels = torch.full((1, 3), -100)
    labels[0, 0] = 5  # KL at position 0 only; no CE target
    got = distillation_loss(s, TopKTeacher(idx, vals), labels, alpha=0.0, temperature=2.0, tail="uniform",
                                 kl_normalization="token_mean")
    p = torch.full((1, 3, V), 0.0)
    rest = (1 - vals.exp().sum(-1, keepdim=True)) / (V - k)
    p += rest
    p.scatter_(-1, idx, vals.exp())
    log_q = torch.log_softmax(s[0, 0] / 2.0, dim=-1)
    ref = (p[0, 0] * (p[0, 0].log() - log_q)).sum()
    torch.testing.assert_close(got.kl, ref.detach(), rtol=1e-5, atol=1e-6)
    got.loss.backward()
    ref_s = s.detach().clone().requires_grad_(True)
    ref_loss = 4.0 * (p[0, 0] * (p[0, 0].log() - torch.log_softmax(ref_s[0, 0] / 2.0, dim=-1))).sum()
    ref_loss.backward()
    torch.testing.assert_close(s.grad, ref_s.grad, rtol=1e-4, atol=1e-7)


def test_student_tail_is_the_bucketed_kl():
    """tail=student: KL over the k tokens plus one bucket for the rest, gradient by autograd of that formula; it is a
    lower bound on the exact KL, equal to it when the tail holds a single token."""
    torch.manual_seed(2)
    s = torch.randn(2, 3, V, requires_grad=True)
    lp = torch.log_softmax(torch.randn(2, 3, V) * 2, dim=-1)
    labels = torch.randint(0, V, (2, 3))

    def bucket_kl(logits, k):
        vals, idx = lp.topk(k, dim=-1)
        log_q = torch.log_softmax(logits / 2.0, dim=-1)
        q_k = log_q.gather(-1, idx).exp()
        p_k = vals.exp()
        rest_p, rest_q = 1 - p_k.sum(-1), 1 - q_k.sum(-1)
        return ((p_k * (vals - q_k.log())).sum(-1) + rest_p * (rest_p.log() - rest_q.log())).sum() / 2  # batchmean

    for k in (10, V - 1):
        vals, idx = lp.topk(k, dim=-1)
        s.grad = None
        got = distillation_loss(s, TopKTeacher(idx, vals), labels, alpha=0.3, temperature=2.0, tail="student",
                                chunk_size=4)
        ref_s = s.detach().clone().requires_grad_(True)
        ref_kl = bucket_kl(ref_s, k)
        ref_ce = torch.nn.functional.cross_entropy(ref_s[:, :-1].reshape(-1, V), labels[:, 1:].reshape(-1))
        (0.3 * ref_ce + 0.7 * 4.0 * ref_kl).backward()
        torch.testing.assert_close(got.kl, ref_kl.detach(), rtol=1e-5, atol=1e-6)
        got.loss.backward()
        torch.testing.assert_close(s.grad, ref_s.grad, rtol=1e-4, atol=1e-7)
        exact = distillation_loss(s.detach(), lp * 2.0, labels, alpha=0.3, temperature=2.0)  # logits lp*T: p = exp(lp)
        if k == V - 1:
            torch.testing.assert_close(got.kl, exact.kl, rtol=1e-5, atol=1e-6)
        else:
            assert got.kl < exact.kl - 1e-3


def test_cache_rebuilt_when_a_teacher_changes(setup):
    ds, teachers, folders, cache_dir = setup
    kw = dict(k=4, temperature=2.0, combine="logits", batch_size=4)
    first = TeacherCache.open_or_build(cache_dir, "train", ds, teachers, teacher_ids=[model_fingerprint(f) for f in
                                                                                        folders], **kw)
    again = TeacherCache.open_or_build(cache_dir, "train", ds, teachers, teacher_ids=[model_fingerprint(f) for f in
                                                                                        folders], **kw)
    assert again.folder == first.folder
    # retrain (here: perturb and save) the first teacher: a new key, a new cache with its new outputs
    with torch.no_grad():
        for p in teachers[0].parameters():
            p.add_(0.5 * torch.randn_like(p))
    teachers[0].save_pretrained(folders[0])
    changed = TeacherCache.open_or_build(cache_dir, "train", ds, teachers, teacher_ids=[model_fingerprint(f) for f in
                                                                                          folders], **kw)
    assert changed.folder != first.folder
    x = torch.stack([ds[i]["input_ids"] for i in range(2)])
    hit = changed.lookup(torch.tensor([0, 1]), x)
    assert torch.equal(hit.ids, live_log_probs(teachers, x).topk(4, dim=-1).indices)
    assert not list(cache_dir.glob("*.tmp"))  # written atomically, no leftovers


def test_cache_refuses_random_offset(setup):
    ds, teachers, _, cache_dir = setup
    shifted = ChunkDataset(ds.ids, SEQ, random_offset=True)
    with pytest.raises(UserError, match="random_offset"):
        TeacherCache.open_or_build(cache_dir, "train", shifted, teachers, k=4, temperature=2.0, combine="logits",
                                   key="x")


def test_config_keys():
    with pytest.raises(ConfigError, match="distillation.teacher_cache_topk"):
        DistillationSection(teachers=["a"], teacher_cache_topk=0)
    data = {"data": {"train_dir": "a", "dev_dir": "b", "tokenizer_dir": "c", "random_offset": True},
            "model": {"type": "gpt2", "hidden_size": 8, "num_layers": 1, "num_heads": 2},
            "training": {"output_dir": "o"}, "distillation": {"teachers": ["t"], "teacher_cache": True}}
    with pytest.raises(UserError, match=r"distillation.teacher_cache.*data.random_offset"):
        load_config(DistillConfig, data=data)
    data["data"]["random_offset"] = False
    cfg = load_config(DistillConfig, data=data)
    assert cfg.distillation.teacher_cache and cfg.distillation.teacher_cache_topk == 64


def test_dataset_chunk_index_is_optional():
    ids = np.arange(SEQ * 3, dtype=np.uint16)
    assert "chunk_index" not in ChunkDataset(ids, SEQ)[0]
    sub = ChunkDataset(ids, SEQ, indices=[2, 0], return_index=True)
    assert int(sub[0]["chunk_index"]) == 2 and torch.equal(sub[0]["input_ids"], torch.arange(2 * SEQ, 3 * SEQ))


def test_trainer_with_cache_matches_live_teachers(tmp_path, tiny_corpus, tiny_tokenizer_dir):
    """distill_train.run with the cache (k = vocab) makes the same first step as with live teachers, and writes
    one cache entry per split."""
    import distill_train
    from conftest import save_random_model, tiny_run_config
    from babyllama.models import load_causal_lm

    teachers = [save_random_model(tmp_path / "tg", "gpt2", tiny_tokenizer_dir, seed=1),
                save_random_model(tmp_path / "tl", "llama", tiny_tokenizer_dir, seed=2)]
    common = ["training.max_steps=1", "training.warmup_steps=0", "training.lr_scheduler=constant_with_warmup",
              "training.max_grad_norm=0", "distillation.teacher_precision=fp32", "training.load_best_model_at_end=false"]
    params, metrics = [], []
    for name, extra in (("live", []), ("cached", ["distillation.teacher_cache=true",
                                                  "distillation.teacher_cache_topk=320"])):
        cfg = tiny_run_config(tmp_path / name, tiny_corpus, tiny_tokenizer_dir, distill_teachers=teachers,
                              overrides=common + extra)
        metrics.append(distill_train.run(cfg))
        params.append(load_causal_lm(cfg.training.output_dir).state_dict())
    entries = sorted(p.name.split("-")[0] for p in (tmp_path / "cached" / "cache" / "teacher").iterdir())
    assert entries == ["eval", "train"]
    assert metrics[1]["cache_misses"] == 0 and metrics[1]["cache_hits"] >= 1 + 2  # a train step, two eval batches
    assert "cache_hits" not in metrics[0]
    # Adam's first step is ~lr*sign(grad): compare the losses, and the weights up to elements whose gradient is ~0
    assert metrics[1]["train_loss"] == pytest.approx(metrics[0]["train_loss"], rel=2e-3)
    close = [torch.isclose(params[1][k], params[0][k], rtol=1e-3, atol=1e-5).float().mean() for k in params[0]]
    assert min(close) > 0.99
    assert metrics[1]["eval_loss"] == pytest.approx(metrics[0]["eval_loss"], rel=2e-3)


def test_a_cache_miss_is_loud(tmp_path, tiny_corpus, tiny_tokenizer_dir):
    """A batch the cache does not hold (here: its tokens were changed on disk) stops the run, or, with
    teacher_cache_miss=live, runs the teachers and is counted."""
    import distill_train
    from conftest import save_random_model, tiny_run_config

    teachers = [save_random_model(tmp_path / "t", "llama", tiny_tokenizer_dir, seed=1)]
    over = ["training.max_steps=1", "distillation.teacher_cache=true", "training.load_best_model_at_end=false",
            f"distillation.teacher_cache_dir={tmp_path / 'tc'}"]
    first = distill_train.run(tiny_run_config(tmp_path / "a", tiny_corpus, tiny_tokenizer_dir, distill_teachers=teachers,
                                              overrides=over))
    assert first["cache_misses"] == 0
    for folder in (tmp_path / "tc").iterdir():  # every cached chunk now disagrees with the data (checksums updated:
        tokens = np.load(folder / "input_ids.npy")  # a cache that is intact but does not hold these chunks)
        np.save(folder / "input_ids.npy", (tokens + 1) % 300)
        rewrite_checksums(folder)
    with pytest.raises(UserError, match="teacher cache miss at step 0.*teacher_cache_miss=live"):
        distill_train.run(tiny_run_config(tmp_path / "b", tiny_corpus, tiny_tokenizer_dir, distill_teachers=teachers,
                                          overrides=over))
    live = distill_train.run(tiny_run_config(tmp_path / "c", tiny_corpus, tiny_tokenizer_dir, distill_teachers=teachers,
                                             overrides=over + ["distillation.teacher_cache_miss=live"]))
    assert live["cache_hits"] == 0 and live["cache_misses"] >= 3


def rewrite_checksums(folder):
    import json

    from babyllama.teacher_cache import CACHE_FILES, checksum

    meta = json.loads((folder / "meta.json").read_text())
    meta["sha256"] = {f: checksum(folder / f) for f in CACHE_FILES}
    (folder / "meta.json").write_text(json.dumps(meta))


def snapshot(folder) -> dict:
    return {p.relative_to(folder): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def built_cache(tiny_corpus, tiny_tokenizer_dir, tmp_path_factory):
    """A teacher and the cache one distillation step built from it: (root folder, teacher folder, overrides)."""
    import distill_train
    from conftest import save_random_model, tiny_run_config

    root = tmp_path_factory.mktemp("built-cache")
    teacher = save_random_model(root / "t", "llama", tiny_tokenizer_dir, seed=1)
    over = ["training.max_steps=1", "distillation.teacher_cache=true", "training.load_best_model_at_end=false"]
    distill_train.run(tiny_run_config(root / "a", tiny_corpus, tiny_tokenizer_dir, distill_teachers=[teacher],
                                      overrides=over + [f"distillation.teacher_cache_dir={root / 'tc'}"]))
    return root, teacher, over


@pytest.mark.parametrize("damage, needle", [
    ("random", "topk_logp.npy: the teacher-cache file does not match the checksum"),
    ("random_checksummed", "has log-sum-exp"),
    ("positive_checksummed", "holds a value above 0"),
    ("nan_checksummed", "holds a non-finite value"),
    ("truncated", "topk_logp.npy: the teacher-cache file does not match the checksum"),
    ("no_meta", "meta.json: unreadable teacher-cache metadata"),
])
def test_a_damaged_teacher_cache_is_refused_before_training(tmp_path, tiny_corpus, tiny_tokenizer_dir, built_cache,
                                                            capsys, damage, needle):
    """Every cached log-prob replaced by random values (with or without its checksum updated), or the file cut
    short: exit 2 before the first step, naming the folder to delete; the cache and outputs stay as they were."""
    import shutil

    import distill_train
    from conftest import tiny_run_config
    from babyllama.config import run_cli

    root, teacher, over = built_cache
    shutil.copytree(root / "tc", tmp_path / "tc")
    folder = sorted((tmp_path / "tc").glob("train-*"))[0]
    logp = np.load(folder / "topk_logp.npy")
    rng = np.random.default_rng(0)
    if damage == "truncated":
        (folder / "topk_logp.npy").write_bytes((folder / "topk_logp.npy").read_bytes()[:1000])
    elif damage == "no_meta":
        (folder / "meta.json").unlink()
    else:
        bad = {"random": -rng.random(logp.shape), "random_checksummed": -rng.random(logp.shape),
               "positive_checksummed": rng.random(logp.shape), "nan_checksummed": np.where(logp < -3, np.nan, logp)}
        np.save(folder / "topk_logp.npy", bad[damage].astype(np.float16))
        if damage.endswith("checksummed"):
            rewrite_checksums(folder)
    before = snapshot(tmp_path / "tc")
    capsys.readouterr()
    cfg = tiny_run_config(tmp_path / "b", tiny_corpus, tiny_tokenizer_dir, distill_teachers=[teacher],
                          overrides=over + [f"distillation.teacher_cache_dir={tmp_path / 'tc'}"])
    assert run_cli(lambda argv: distill_train.run(cfg)) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]  # after the weights' loading bar
    assert err.startswith("error: ") and needle in err, err
    assert f"delete the folder {folder} and run again" in err
    assert snapshot(tmp_path / "tc") == before and not list((tmp_path / "b" / "out").glob("checkpoint-*"))
