"""tokenizer.py and babylm_dataset.py: round trip, determinism, held-out refusal, chunking and the token cache."""

import shutil
import unicodedata
from pathlib import Path

import numpy as np
import pytest

from babylm_dataset import ChunkDataset, eval_subset, load_split_ids
from babyllama.config import UserError, run_cli
from tokenizer import build_tokenizer, load_tokenizer, main as tokenizer_main, train_files

ROOT = Path(__file__).resolve().parents[1]


def test_tokenizer_folder_loads_with_specials_and_round_trips(tiny_tokenizer_dir):
    tok = load_tokenizer(tiny_tokenizer_dir)
    assert len(tok) == 320
    assert (tok.pad_token, tok.bos_token, tok.eos_token) == ("<pad>", "<s>", "</s>")
    assert (tok.pad_token_id, tok.bos_token_id, tok.eos_token_id) == (0, 1, 2)
    for line in ["The dog sees mommy.", "ﬁne  ½ café — do n't ?", "Ünïcödé ✓ 日本語", "  leading and trailing  "]:
        ids = tok.encode(line, add_special_tokens=False)
        assert tok.decode(ids) == unicodedata.normalize("NFKC", line)


def test_same_files_same_vocab(tiny_corpus):
    files = train_files(tiny_corpus["train"])
    a = build_tokenizer(files, vocab_size=300).get_vocab()
    b = build_tokenizer(files, vocab_size=300).get_vocab()
    assert a == b and len(a) == 300


def test_tokenizer_refuses_held_out_and_empty(tmp_path, tiny_corpus, capsys):
    mixed = tmp_path / "mixed"
    shutil.copytree(tiny_corpus["train"], mixed)
    shutil.copy(next(tiny_corpus["dev"].iterdir()), mixed)
    rc = run_cli(tokenizer_main, ["--config", str(ROOT / "config/tokenizer.yaml"), f"tokenizer.train_dir={mixed}",
                                  f"tokenizer.output_dir={tmp_path / 'out'}"])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and ".dev: held-out" in err and "train split only" in err and len(err.splitlines()) == 1
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match="no \\*.train files"):
        train_files(tmp_path / "empty")
    assert not (tmp_path / "out").exists()


def test_a_corpus_without_words_is_refused_and_a_small_one_warned(tmp_path, tiny_corpus, capsys):
    empty = tmp_path / "empty"
    empty.mkdir()
    for name, text in (("aochildes.train", ""), ("cbt.train", "\n \n"), ("switchboard.train", ". , !\n")):
        (empty / name).write_text(text)
    assert run_cli(tokenizer_main, tokenizer_cli(empty, tmp_path / "tok")) == 2
    assert capsys.readouterr().err == (f"error: {empty}: the *.train files in tokenizer.train_dir hold no word (empty, "
                                       "blank or only punctuation), so the tokenizer would learn nothing but its "
                                       "bytes; run clean_data.py on the raw text, or point train_dir at the cleaned "
                                       "train split\n")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty"]  # nothing written
    (empty / "aochildes.train").write_text("the dog sees the cat .\n")  # one line: far from 16000 entries
    assert run_cli(tokenizer_main, tokenizer_cli(empty, tmp_path / "tok", "tokenizer.vocab_size=16000")) == 0
    n = len(load_tokenizer(tmp_path / "tok"))
    assert 259 < n < 300 and capsys.readouterr().err == (
        f"warning: {tmp_path / 'tok'}: the corpus is too small for tokenizer.vocab_size 16000: it supports only {n} "
        "entries; give more text, or lower vocab_size (or min_frequency)\n")


def snapshot(folder) -> dict:
    return {p.relative_to(folder): p.read_bytes() for p in sorted(Path(folder).rglob("*")) if p.is_file()}


def tokenizer_cli(corpus, out, *extra):
    return ["--config", str(ROOT / "config/tokenizer.yaml"), f"tokenizer.train_dir={corpus}",
            f"tokenizer.output_dir={out}", "tokenizer.vocab_size=300", *extra]


def test_a_tokenizer_is_never_replaced_in_place(tmp_path, tiny_corpus, capsys):
    """Models trained with a tokenizer need it as it is: refused, or with --overwrite moved aside (kept when the new
    one is the same)."""
    out = tmp_path / "tok"
    assert run_cli(tokenizer_main, tokenizer_cli(tiny_corpus["train"], out)) == 0
    before = snapshot(out)
    capsys.readouterr()
    assert run_cli(tokenizer_main, tokenizer_cli(tiny_corpus["train"], out, "tokenizer.vocab_size=280")) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and f"error: {out} holds a tokenizer already" in err and "--overwrite" in err
    assert snapshot(out) == before and sorted(p.name for p in tmp_path.iterdir()) == ["tok"]
    assert run_cli(tokenizer_main, tokenizer_cli(tiny_corpus["train"], out, "--overwrite")) == 0  # the same one
    assert snapshot(out) == before and sorted(p.name for p in tmp_path.iterdir()) == ["tok"]
    assert run_cli(tokenizer_main, tokenizer_cli(tiny_corpus["train"], out, "--overwrite",
                                                 "tokenizer.vocab_size=280")) == 0
    assert snapshot(tmp_path / "tok.old-1") == before and len(load_tokenizer(out)) == 280


def test_tokenizer_output_dir_that_is_a_file(tmp_path, tiny_corpus, capsys):
    (tmp_path / "tok").write_text("notes")
    assert run_cli(tokenizer_main, tokenizer_cli(tiny_corpus["train"], tmp_path / "tok")) == 2
    err = capsys.readouterr().err.strip()
    assert err == f"error: {tmp_path / 'tok'}: tokenizer.output_dir exists and is not a folder; pick another path"
    assert (tmp_path / "tok").read_text() == "notes"


def test_a_megabyte_without_whitespace_is_refused_or_cut(tmp_path, capsys):
    """One 1 MB run of letters: BPE on it as one word did not finish in 60 CPU seconds (5 MB: no result in 120 s).
    By default (the paper's unbounded words) refused at once, naming the line; with tokenizer.max_word_chars=64 cut
    into pieces, it trains in about a second, and the text still round-trips."""
    import random
    import resource
    import string
    import subprocess
    import sys

    rng = random.Random(0)
    text = "".join(rng.choice(string.ascii_letters) for _ in range(1_000_000))
    corpus = tmp_path / "corpus" / "wiki.train"
    corpus.parent.mkdir()
    corpus.write_text(f"Hello there.\nAnd {text} and more.\n")
    assert run_cli(tokenizer_main, tokenizer_cli(corpus.parent, tmp_path / "tok")) == 2
    assert capsys.readouterr().err == (f"error: {corpus}: line 2 holds more than 1,000 characters without a space, on "
                                       "which BPE can run for hours; clean the file, or set tokenizer.max_word_chars=64 "
                                       "to cut such runs into pieces\n")
    assert not (tmp_path / "tok").exists()
    # bounded in CPU seconds, not wall time, so a loaded machine cannot make it flake: SIGXCPU after 60 s of CPU
    # (about 3 s here); the wall-clock limit only ends a run that would hang forever
    limit = lambda: resource.setrlimit(resource.RLIMIT_CPU, (60, 60))  # noqa: E731
    r = subprocess.run([sys.executable, "tokenizer.py", *tokenizer_cli(corpus.parent, tmp_path / "tok"),
                        "tokenizer.max_word_chars=64"], cwd=ROOT, capture_output=True, text=True, timeout=900,
                       preexec_fn=limit)
    assert r.returncode == 0, (r.returncode, r.stderr[-2000:])
    tok = load_tokenizer(tmp_path / "tok")
    sample = f"a {text[:300]} b"
    assert tok.decode(tok.encode(sample, add_special_tokens=False)) == sample


def test_a_truncated_token_cache_is_encoded_again(tiny_corpus, tiny_tokenizer_dir, tmp_path, capsys):
    first = np.asarray(load_split_ids(tiny_corpus["dev"], tiny_tokenizer_dir, tmp_path, verbose=False))
    (path,) = tmp_path.glob("dev-*.npy")
    path.write_bytes(path.read_bytes()[:200])  # a disk that filled up, or a copy cut short
    again = np.asarray(load_split_ids(tiny_corpus["dev"], tiny_tokenizer_dir, tmp_path, verbose=False))
    assert np.array_equal(first, again) and f"{path} is damaged" in capsys.readouterr().out
    assert np.array_equal(np.load(path), first)  # the cache is whole again


def test_chunks_cover_every_token_once(tiny_corpus, tiny_tokenizer_dir, tmp_path):
    ids = np.asarray(load_split_ids(tiny_corpus["train"], tiny_tokenizer_dir, tmp_path / "cache", verbose=False))
    ds = ChunkDataset(ids, 32)
    assert len(ds) == len(ids) // 32
    joined = np.concatenate([ds[i]["input_ids"].numpy() for i in range(len(ds))])
    np.testing.assert_array_equal(joined, ids[: len(ds) * 32])  # every token once, in order; only the tail is left
    assert len(ids) - len(joined) < 32
    item = ds[3]
    assert item["input_ids"].dtype.is_floating_point is False and (item["labels"] == item["input_ids"]).all()


def test_random_offset_stays_in_range(tiny_corpus, tiny_tokenizer_dir, tmp_path):
    ids = np.asarray(load_split_ids(tiny_corpus["train"], tiny_tokenizer_dir, tmp_path / "cache", verbose=False))
    ds = ChunkDataset(ids, 32, random_offset=True, seed=1)
    assert len(ds) == len(ids) // 32 - 1
    starts = set()
    for i in [0, 1, len(ds) - 1] * 20:
        x = ds[i]["input_ids"].numpy()
        assert len(x) == 32
        pos = [s for s in range(i * 32, i * 32 + 32) if np.array_equal(ids[s:s + 32], x)]
        assert pos, "chunk must be a contiguous window starting within its aligned block"
        starts.add(pos[0] - i * 32)
    assert len(starts) > 3


@pytest.mark.parametrize("sep", ["<s>", "</s>"])
@pytest.mark.parametrize("every", ["lines", "files"])
def test_separator_appears_where_configured_and_nowhere_else(tiny_corpus, tiny_tokenizer_dir, tmp_path, sep, every):
    tok = load_tokenizer(tiny_tokenizer_dir)
    sep_id, other = tok.convert_tokens_to_ids(sep), tok.convert_tokens_to_ids("</s>" if sep == "<s>" else "<s>")
    none = np.asarray(load_split_ids(tiny_corpus["dev"], tiny_tokenizer_dir, tmp_path, verbose=False))
    got = np.asarray(load_split_ids(tiny_corpus["dev"], tiny_tokenizer_dir, tmp_path, sep, every, verbose=False))
    files = sorted(tiny_corpus["dev"].iterdir())
    lines = [line for f in files for line in f.read_text().splitlines(keepends=True)]
    n = len(lines) if every == "lines" else len(files)
    assert not (none == sep_id).any() and not (got == other).any()
    assert (got == sep_id).sum() == n and len(got) == len(none) + n
    assert np.array_equal(got[got != sep_id], none)  # the text's own tokens are untouched
    # where: before each line / file for <s>, after each for </s>
    units = lines if every == "lines" else ["".join(f.read_text().splitlines(keepends=True)) for f in files]
    expect = []
    for text in units:
        ids = tok(text, add_special_tokens=False)["input_ids"]
        expect += [sep_id] + ids if sep == "<s>" else ids + [sep_id]
    assert got.tolist() == expect


def test_cache_rebuilds_when_corpus_or_tokenizer_changes(tiny_corpus, tiny_tokenizer_dir, tmp_path):
    data = tmp_path / "data"
    shutil.copytree(tiny_corpus["dev"], data)
    cache = tmp_path / "cache"
    first = np.asarray(load_split_ids(data, tiny_tokenizer_dir, cache, verbose=False))
    assert len(list(cache.glob("*.npy"))) == 1
    again = load_split_ids(data, tiny_tokenizer_dir, cache, verbose=False)
    assert isinstance(again, np.memmap) and len(list(cache.glob("*.npy"))) == 1  # read from the cache
    # change one corpus file: new key, new ids
    f = next(data.iterdir())
    f.write_text(f.read_text() + "A brand new line.\n")
    changed = np.asarray(load_split_ids(data, tiny_tokenizer_dir, cache, verbose=False))
    assert len(list(cache.glob("*.npy"))) == 2 and len(changed) > len(first)
    # change the tokenizer: new key, different ids
    tok2 = tmp_path / "tok2"
    build_tokenizer(train_files(tiny_corpus["train"]), vocab_size=280).save_pretrained(str(tok2))
    other = np.asarray(load_split_ids(data, tok2, cache, verbose=False))
    assert len(list(cache.glob("*.npy"))) == 3 and len(other) != len(changed)


def test_eval_subset_is_fixed_by_seed():
    a, b, c = eval_subset(1000, 64, 2023), eval_subset(1000, 64, 2023), eval_subset(1000, 64, 7)
    assert (a == b).all() and not (a == c).all() and len(set(a)) == 64
    assert (eval_subset(10, 64, 0) == np.arange(10)).all()


def test_non_utf8_corpus_file_is_refused(tmp_path, tiny_tokenizer_dir):
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "aochildes.dev").write_bytes(b"ok\n\xff\xfe bad\n")
    with pytest.raises(UserError, match="aochildes.dev: not UTF-8 text"):
        load_split_ids(tmp_path / "d", tiny_tokenizer_dir, tmp_path / "c", verbose=False)


def test_random_offsets_differ_across_workers_and_epochs(tiny_corpus, tiny_tokenizer_dir, tmp_path):
    from torch.utils.data import DataLoader

    ids = np.asarray(load_split_ids(tiny_corpus["train"], tiny_tokenizer_dir, tmp_path / "cache", verbose=False))
    ds = ChunkDataset(ids, 32, random_offset=True, seed=1, indices=[0] * 8)  # the same chunk 8 times
    loader = DataLoader(ds, batch_size=1, num_workers=2)
    epochs = [[tuple(b["input_ids"][0].tolist()) for b in loader] for _ in range(2)]
    assert len(set(epochs[0])) > 2  # the two workers did not replay one sequence of offsets
    assert epochs[0] != epochs[1]


def test_train_share_keeps_the_first_lines_of_every_file(tmp_path, tiny_tokenizer_dir):
    from babylm_dataset import encode_files
    data = tmp_path / "train"
    data.mkdir()
    a = [f"the dog number {i} runs .\n" for i in range(10)]
    b = [f"mommy has ball {i} !\n" for i in range(4)]
    (data / "a.train").write_text("".join(a))
    (data / "b.train").write_text("".join(b))
    full = np.asarray(load_split_ids(data, tiny_tokenizer_dir, tmp_path / "cache", verbose=False))
    part = np.asarray(load_split_ids(data, tiny_tokenizer_dir, tmp_path / "cache", verbose=False, share=0.25))
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "a.train").write_text("".join(a[:3]))  # ceil(10 * 0.25): every source keeps its share
    (tmp_path / "sub" / "b.train").write_text("".join(b[:1]))
    expected = encode_files(sorted((tmp_path / "sub").iterdir()), tiny_tokenizer_dir)
    assert part.tolist() == expected.tolist() and len(part) < len(full)
    assert len(list((tmp_path / "cache").glob("train-*.npy"))) == 2  # the share is part of the cache key


def test_train_share_out_of_range_is_a_config_error():
    from babyllama.config import ConfigError
    from babyllama.schema import DataSection
    with pytest.raises(ConfigError, match=r"data.train_share: 0 is out of range; allowed \(0, 1\]"):
        DataSection(train_dir="a", dev_dir="b", tokenizer_dir="t", train_share=0)
