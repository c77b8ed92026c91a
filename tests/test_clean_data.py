"""clean_data.py on tmp folders the tests write: outputs, the printed report, the one-line user errors, and that a
refused or failed run leaves every earlier file byte for byte as it was."""

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import pytest

import clean_data
from babyllama.config import run_cli
from babyllama.schema import CleanSection

ROOT = Path(__file__).resolve().parents[1]


def write(path: Path, text: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


def config_file(tmp_path: Path, input_dirs, output_dir, passthrough=False) -> Path:
    dirs = "".join(f"\n    - {d}" for d in input_dirs)
    return write(tmp_path / "clean.yaml", f"clean:\n  input_dirs:{dirs}\n  output_dir: {output_dir}\n"
                                          f"  passthrough_unknown: {str(passthrough).lower()}\n")


def tree(root: Path) -> dict[str, str]:
    """Every file under root (hidden ones too) -> sha256 of its bytes."""
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def section(input_dirs, output_dir, **kw) -> CleanSection:
    return CleanSection(input_dirs=[str(d) for d in input_dirs], output_dir=str(output_dir), **kw)


def quiet(*_):
    pass


@pytest.fixture
def splits(tmp_path):
    """A 2023-named train folder and a 2024-named dev folder, raw and messy."""
    train, dev = tmp_path / "babylm_10M", tmp_path / "babylm_dev"
    write(train / "aochildes.train", "kee .\ndo n't do that .\n")
    write(train / "cbt.train", "_BOOK_TITLE_ : x.txt\n`` Ah , '' said he .\n")
    write(train / ".DS_Store", b"\xff\xfe junk")  # hidden: ignored, even though it is not UTF-8
    write(dev / "childes.dev", "it 's mine !\n")
    write(dev / "switchboard.dev", "A:\tUh-huh.\nB:\t<laughter>\n")
    write(dev / "simple_wiki.dev", "= = = April = = =\nApril is a month .\n")
    return train, dev


def run(argv, capsys):
    rc = run_cli(clean_data.main, argv)
    out, err = capsys.readouterr()
    return rc, out, err


def assert_one_line_error(rc, err, *needles):
    assert rc == 2
    assert err.startswith("error: ") and err.count("\n") == 1 and "Traceback" not in err
    for n in needles:
        assert n in err, (n, err)


def test_cleans_every_split_folder(tmp_path, splits, capsys):
    train, dev = splits
    out = tmp_path / "clean"
    rc, stdout, err = run(["--config", str(config_file(tmp_path, [train, dev], out))], capsys)
    assert rc == 0, err
    assert (out / "babylm_10M" / "aochildes.train").read_text() == "kee.\ndon't do that.\n"
    assert (out / "babylm_10M" / "cbt.train").read_text() == '"Ah," said he.\n'
    assert (out / "babylm_dev" / "childes.dev").read_text() == "it's mine!\n"
    assert (out / "babylm_dev" / "switchboard.dev").read_text() == "A: Uh-huh.\n"
    assert (out / "babylm_dev" / "simple_wiki.dev").read_text() == "April\nApril is a month.\n"
    assert sorted(p.name for p in (out / "babylm_10M").iterdir()) == ["aochildes.train", "cbt.train"]  # no temp files
    assert "output_dir: " + str(out) in (out / "config.yaml").read_text()


def test_prints_per_file_bytes_and_words_and_totals(tmp_path, splits, capsys):
    train, dev = splits
    rc, stdout, _ = run(["--config", str(config_file(tmp_path, [train, dev], tmp_path / "clean"))], capsys)
    assert rc == 0
    rows = {line.split()[0]: line.split() for line in stdout.splitlines() if line.split()}
    # babylm_10M/aochildes.train  aochildes  bytes in, bytes out, words in, words out, change
    row = rows["babylm_10M/aochildes.train"]
    assert row[1] == "aochildes"
    # "kee .\ndo n't do that .\n": 23 bytes, 5 words (a lone `.` is none) -> "kee.\ndon't do that.\n": 20 bytes, 4 words
    assert row[2:7] == ["23", "20", "5", "4", "-20.0%"]
    assert "babylm_dev/switchboard.dev" in rows and "babylm_dev/simple_wiki.dev" in rows
    assert rows["total"][1:5] == [f"{sum(int(r[k].replace(',', '')) for n, r in rows.items() if '/' in n):,}"
                                  for k in (2, 3, 4, 5)]
    assert "bytes in" in stdout and "words out" in stdout


def test_clean_folders_is_idempotent_and_reusable(tmp_path, splits):
    rows1 = clean_data.clean_folders(section(splits, tmp_path / "c1"), log=quiet)
    rows2 = clean_data.clean_folders(section([tmp_path / "c1" / d.name for d in splits], tmp_path / "c2"), log=quiet)
    assert len(rows1) == len(rows2) == 5
    for r in rows2:
        assert r["bytes_in"] == r["bytes_out"] and r["words_in"] == r["words_out"]
        assert Path(r["input"]).read_bytes() == Path(r["output"]).read_bytes()


def test_help_config(capsys):
    rc, stdout, _ = run(["--help-config"], capsys)
    assert rc == 0 and "clean.passthrough_unknown" in stdout


def test_empty_folder_is_an_error(tmp_path, splits, capsys):
    empty = tmp_path / "babylm_test"
    empty.mkdir()
    write(empty / ".hidden", "x")  # hidden files do not count as corpus files
    out = tmp_path / "clean"
    rc, _, err = run(["--config", str(config_file(tmp_path, [splits[0], empty], out))], capsys)
    assert_one_line_error(rc, err, str(empty), "no corpus files")
    assert not out.exists()  # validated before anything was written


def test_missing_folder_is_an_error(tmp_path, capsys):
    rc, _, err = run(["--config", str(config_file(tmp_path, [tmp_path / "nope"], tmp_path / "clean"))], capsys)
    assert_one_line_error(rc, err, str(tmp_path / "nope"), "not found")


def test_unknown_source_is_an_error_naming_file_and_known_sources(tmp_path, splits, capsys):
    train, dev = splits
    write(dev / "tinystories.dev", "Once upon a time .\n")
    out = tmp_path / "clean"
    rc, _, err = run(["--config", str(config_file(tmp_path, [train, dev], out))], capsys)
    assert_one_line_error(rc, err, str(dev / "tinystories.dev"), "aochildes", "simple_wiki", "childes",
                          "clean.passthrough_unknown=true")
    assert not out.exists()


def test_passthrough_copies_unknown_files_unchanged(tmp_path, splits, capsys):
    train, dev = splits
    write(dev / "tinystories.dev", "Once upon a time .\n")
    out = tmp_path / "clean"
    cfg = config_file(tmp_path, [train, dev], out)
    rc, stdout, err = run(["--config", str(cfg), "clean.passthrough_unknown=true"], capsys)
    assert rc == 0, err
    assert (out / "babylm_dev" / "tinystories.dev").read_text() == "Once upon a time .\n"
    assert (out / "babylm_dev" / "childes.dev").read_text() == "it's mine!\n"
    assert "(copied)" in next(line for line in stdout.splitlines() if "tinystories.dev" in line)


def test_control_characters_are_replaced_and_counted_per_source_in_the_manifest(tmp_path, capsys):
    train = tmp_path / "babylm_10M"
    write(train / "aochildes.train", "the\x00dog\x07 barks\x7f .\n\x1b[31mred\x1b[0m ball .\n\ufeffhi\u200b there .\n")
    write(train / "switchboard.train", "uh-huh .\n")
    write(train / "tinystories.train", "a bell\x07 rings .\n")  # copied unchanged: kept, and warned about
    rc, out, err = run(["--config", str(config_file(tmp_path, [train], tmp_path / "clean", passthrough=True))], capsys)
    assert rc == 0, err
    clean = tmp_path / "clean" / "babylm_10M"
    assert (clean / "aochildes.train").read_text() == "the dog barks.\nred ball.\nhi there.\n"
    assert (clean / "tinystories.train").read_text() == "a bell\x07 rings .\n"
    manifest = json.loads((tmp_path / "clean" / "clean_manifest.json").read_text())
    assert manifest["control_characters"] == {"babylm_10M/aochildes.train": 7, "babylm_10M/switchboard.train": 0,
                                              "babylm_10M/tinystories.train": 1}
    assert "babylm_10M/aochildes.train: 7 control or invisible format characters replaced by a space or removed" in out
    assert err == (f"warning: {train / 'tinystories.train'}: copied unchanged (clean.passthrough_unknown) with 1 "
                   "control or invisible format characters, which the tokenizer will learn; clean the file first\n")
    assert sorted(manifest["files"]) == ["babylm_10M/aochildes.train", "babylm_10M/switchboard.train",
                                         "babylm_10M/tinystories.train", "config.yaml"]


def test_a_manifest_of_the_earlier_flat_format_still_owns_its_files(tmp_path, splits, capsys):
    cfg = config_file(tmp_path, list(splits), tmp_path / "clean")
    assert run(["--config", str(cfg)], capsys)[0] == 0
    path = tmp_path / "clean" / "clean_manifest.json"
    path.write_text(json.dumps(json.loads(path.read_text())["files"]))  # {path: [sha256]}, as written before
    write(splits[0] / "aochildes.train", "bye now .\n")
    rc, _, err = run(["--config", str(cfg)], capsys)
    assert rc == 0, err
    assert (tmp_path / "clean" / "babylm_10M" / "aochildes.train").read_text() == "bye now.\n"


def test_non_utf8_file_is_an_error_with_byte_offset(tmp_path, splits, capsys):
    train, dev = splits
    write(dev / "childes.dev", b"hello .\ncaf\xe9 .\n")  # latin-1, byte 11
    out = tmp_path / "clean"
    rc, _, err = run(["--config", str(config_file(tmp_path, [train, dev], out))], capsys)
    assert_one_line_error(rc, err, str(dev / "childes.dev"), "byte offset 11", "UTF-8")
    assert not out.exists()  # train files were fine but nothing is written


def test_bad_override_is_a_one_line_error(tmp_path, splits, capsys):
    cfg = config_file(tmp_path, list(splits), tmp_path / "clean")
    rc, _, err = run(["--config", str(cfg), "clean.passthrough_unknown=maybe"], capsys)
    assert_one_line_error(rc, err, "clean.passthrough_unknown")


def test_command_line_error_exits_2_with_one_line(tmp_path):
    cfg = config_file(tmp_path, [tmp_path / "missing"], tmp_path / "clean")
    p = subprocess.run([sys.executable, "clean_data.py", "--config", str(cfg)], cwd=ROOT, capture_output=True,
                       text=True, timeout=60)
    assert p.returncode == 2
    assert p.stderr.count("\n") == 1 and "Traceback" not in p.stderr and str(tmp_path / "missing") in p.stderr


def test_stale_outputs_of_an_earlier_run_are_removed(tmp_path):
    raw = tmp_path / "babylm_10M"
    write(raw / "aochildes.train", "hello there .\n")
    clean_data.clean_folders(section([raw], tmp_path / "out"), log=quiet)
    (raw / "aochildes.train").rename(raw / "childes.train")  # the 2024 name
    lines = []
    clean_data.clean_folders(section([raw], tmp_path / "out"), log=lines.append)
    assert sorted(p.name for p in (tmp_path / "out" / "babylm_10M").iterdir()) == ["childes.train"]
    assert any("removed" in line and "aochildes.train" in line for line in lines)
    assert list(json.loads((tmp_path / "out" / "clean_manifest.json").read_text())["files"]) == [
        "babylm_10M/childes.train"]


def test_rerun_replaces_its_own_outputs(tmp_path, splits, capsys):
    train, dev = splits
    cfg = config_file(tmp_path, [train, dev], tmp_path / "clean")
    assert run(["--config", str(cfg)], capsys)[0] == 0
    write(train / "aochildes.train", "bye now .\n")
    rc, _, err = run(["--config", str(cfg)], capsys)
    assert rc == 0, err
    assert (tmp_path / "clean" / "babylm_10M" / "aochildes.train").read_text() == "bye now.\n"


# ----------------------------------------------------------------------------------------------------------------------
# never delete or overwrite what this stage did not write: each test breaks something, then checks the message, the
# exit status, and that every file under tmp_path is still there byte for byte (nothing added either)


def assert_refused(tmp_path, capsys, argv, *needles):
    before = tree(tmp_path)
    rc, _, err = run(argv, capsys)
    assert_one_line_error(rc, err, *needles)
    assert tree(tmp_path) == before


def test_output_folder_that_is_another_runs_raw_folder_is_refused(tmp_path, capsys):
    """The issue-15 loss: clean.output_dir/<split> was another run's raw input folder; its raw files were swept."""
    raw_root, other = tmp_path / "raw", tmp_path / "other"
    write(raw_root / "babylm_10M" / "aochildes.train", "kee .\n")  # run A's raw input ...
    write(raw_root / "babylm_10M" / "cbt.train", "`` Ah , '' said he .\n")
    assert run(["--config", str(config_file(tmp_path, [raw_root / "babylm_10M"], tmp_path / "a"))], capsys)[0] == 0
    write(other / "babylm_10M" / "childes.train", "it 's mine .\n")  # ... then run B writes into raw/
    cfg = config_file(tmp_path, [other / "babylm_10M"], raw_root)
    assert_refused(tmp_path, capsys, ["--config", str(cfg)], str(raw_root / "babylm_10M" / "aochildes.train"),
                   "not written by clean_data.py", "clean.output_dir")
    assert (raw_root / "babylm_10M" / "aochildes.train").read_text() == "kee .\n"


def test_same_named_raw_file_in_the_output_folder_is_not_overwritten(tmp_path, splits, capsys):
    train, dev = splits
    write(tmp_path / "clean" / "babylm_10M" / "aochildes.train", "raw text someone keeps here .\n")
    assert_refused(tmp_path, capsys, ["--config", str(config_file(tmp_path, [train, dev], tmp_path / "clean"))],
                   str(tmp_path / "clean" / "babylm_10M" / "aochildes.train"), "not written by clean_data.py "
                   f"(there is no clean_manifest.json in {tmp_path / 'clean'})")  # not "see <a file that is not there>"


def test_an_output_edited_by_hand_is_neither_replaced_nor_removed(tmp_path, splits, capsys):
    train, dev = splits
    cfg = config_file(tmp_path, [train, dev], tmp_path / "clean")
    assert run(["--config", str(cfg)], capsys)[0] == 0
    write(tmp_path / "clean" / "babylm_dev" / "childes.dev", "my own edit .\n")
    (dev / "childes.dev").unlink()  # the edited file is now stale: the old sweep would have deleted it
    assert_refused(tmp_path, capsys, ["--config", str(cfg)], str(tmp_path / "clean" / "babylm_dev" / "childes.dev"),
                   "or was changed since", "clean_manifest.json")


def test_a_foreign_config_yaml_in_the_output_folder_is_not_overwritten(tmp_path, splits, capsys):
    model = write(tmp_path / "models" / "teacher" / "config.yaml", "hidden_size: 64\n").parent  # e.g. a model folder
    assert_refused(tmp_path, capsys, ["--config", str(config_file(tmp_path, list(splits), model))],
                   str(model / "config.yaml"), "not written by clean_data.py")


@pytest.mark.parametrize("where", ["the input itself", "its parent", "a grandparent"])
def test_output_folder_that_is_or_contains_an_input_folder_is_refused(tmp_path, capsys, where):
    train = tmp_path / "data" / "raw" / "babylm_10M"
    write(train / "aochildes.train", "kee .\n")
    out = {"the input itself": train, "its parent": train.parent, "a grandparent": tmp_path / "data"}[where]
    assert_refused(tmp_path, capsys, ["--config", str(config_file(tmp_path, [train], out))], str(out), str(train),
                   "is or contains the input folder")


def test_unreadable_manifest_is_an_error(tmp_path, splits, capsys):
    write(tmp_path / "clean" / "clean_manifest.json", "{not json")
    assert_refused(tmp_path, capsys, ["--config", str(config_file(tmp_path, list(splits), tmp_path / "clean"))],
                   str(tmp_path / "clean" / "clean_manifest.json"), "unreadable manifest")


def test_an_error_while_cleaning_changes_no_earlier_file(tmp_path, splits, monkeypatch):
    clean_data.clean_folders(section(splits, tmp_path / "clean"), log=quiet)
    write(splits[1] / "childes.dev", "new text .\n")
    before = tree(tmp_path)

    def broken(text):
        raise KeyboardInterrupt  # Ctrl-C in the middle of the second folder
    monkeypatch.setitem(clean_data.STYLES["ours"], "switchboard", broken)
    with pytest.raises(KeyboardInterrupt):
        clean_data.clean_folders(section(splits, tmp_path / "clean"), log=quiet)
    assert tree(tmp_path) == before  # childes.dev was cleaned into a temp file, then the temp file went


# ----------------------------------------------------------------------------------------------------------------------
# line endings, word loss, style


@pytest.mark.parametrize("eol", ["\r\n", "\r"])
def test_crlf_and_cr_inputs_clean_like_lf(tmp_path, capsys, eol):
    text = "kee .\ndo n't do that .\n"
    write(tmp_path / "lf" / "babylm_10M" / "aochildes.train", text)
    write(tmp_path / "other" / "babylm_10M" / "aochildes.train", text.replace("\n", eol).encode())
    for name in ("lf", "other"):
        cfg = config_file(tmp_path, [tmp_path / name / "babylm_10M"], tmp_path / f"out_{name}")
        assert run(["--config", str(cfg)], capsys)[0] == 0
    out = (tmp_path / "out_other" / "babylm_10M" / "aochildes.train").read_bytes()
    assert out == (tmp_path / "out_lf" / "babylm_10M" / "aochildes.train").read_bytes() == b"kee.\ndon't do that.\n"


@pytest.fixture
def lossy(tmp_path):
    """A cbt file that is mostly book-title lines: cleaning drops 4 of its 6 words (`_BOOK_TITLE_`, `a.txt`, ...)."""
    train = tmp_path / "babylm_10M"
    write(train / "cbt.train", "_BOOK_TITLE_ : a.txt\n_BOOK_TITLE_ : b.txt\nHe ran .\n")
    write(train / "aochildes.train", "kee .\n")
    return train


def test_word_loss_above_the_limit_is_warned(tmp_path, lossy, capsys):
    before = tree(tmp_path)
    rc, stdout, err = run(["--config", str(config_file(tmp_path, [lossy], tmp_path / "clean"))], capsys)
    assert rc == 0
    assert err.count("\n") == 1 and err.startswith("warning: ")
    assert str(lossy / "cbt.train") in err and "66.7%" in err and "(6 -> 2 words" in err \
        and "clean.max_word_loss=0.5" in err
    assert (tmp_path / "clean" / "babylm_10M" / "cbt.train").read_text() == "He ran.\n"  # still written
    assert all(tree(tmp_path)[k] == v for k, v in before.items())
    rc, _, err = run(["--config", str(tmp_path / "clean.yaml"), "clean.max_word_loss=0.7"], capsys)
    assert rc == 0 and err == ""  # 66.7% is not more than 0.7


def test_strict_word_loss_fails_and_replaces_no_earlier_output(tmp_path, lossy, capsys):
    cfg = config_file(tmp_path, [lossy], tmp_path / "clean")
    assert run(["--config", str(cfg)], capsys)[0] == 0  # earlier outputs
    write(lossy / "aochildes.train", "* * *\n")  # now cleaned to nothing
    before = tree(tmp_path)
    rc, _, err = run(["--config", str(cfg), "clean.strict=true"], capsys)
    warnings, error = err.splitlines()[:-1], err.splitlines()[-1] + "\n"
    assert_one_line_error(rc, error, str(lossy / "aochildes.train"), "left it empty", "clean.max_word_loss",
                          "clean.strict", "1 more")
    assert len(warnings) == 2 and all(w.startswith("warning: ") for w in warnings)
    assert tree(tmp_path) == before  # no output replaced, no temp file left, config.yaml as it was


def test_strict_failure_on_a_first_run_leaves_no_output_folder(tmp_path, lossy, capsys):
    cfg = config_file(tmp_path, [lossy], tmp_path / "clean")
    before = tree(tmp_path)
    rc, _, err = run(["--config", str(cfg), "clean.strict=true"], capsys)
    warning, error = err.splitlines(keepends=True)
    assert warning.startswith("warning: ") and str(lossy / "cbt.train") in warning
    assert_one_line_error(rc, error, str(lossy / "cbt.train"), "66.7%", "clean.max_word_loss=0.5", "clean.strict")
    assert tree(tmp_path) == before and not (tmp_path / "clean").exists()


def test_an_input_left_empty_is_warned_even_when_any_loss_is_allowed(tmp_path, capsys):
    write(tmp_path / "babylm_dev" / "children_stories.dev", "* * * * *\n\n")
    rc, _, err = run(["--config", str(config_file(tmp_path, [tmp_path / "babylm_dev"], tmp_path / "clean")),
                      "clean.max_word_loss=1"], capsys)
    assert rc == 0 and err.startswith("warning: ") and "children_stories.dev: cleaning left it empty" in err


def test_a_book_on_one_line_keeps_its_text(tmp_path, capsys):
    """A cbt file that is one long line holding the `_BOOK_TITLE_` marker: only the marker goes, not the book."""
    book = " ".join(f"`` Sentence {i} , '' said he ." for i in range(2000))
    write(tmp_path / "babylm_10M" / "cbt.train", f"_BOOK_TITLE_ : Andrew_Lang___The_Grey_Fairy_Book.txt.out {book}\n")
    rc, _, err = run(["--config", str(config_file(tmp_path, [tmp_path / "babylm_10M"], tmp_path / "clean"))], capsys)
    out = (tmp_path / "clean" / "babylm_10M" / "cbt.train").read_text()
    assert rc == 0 and err == "" and out.startswith('"Sentence 0," said he. "Sentence 1,"') and out.count("\n") == 1
    assert clean_data.count_words(out) == clean_data.count_words(book)


def test_a_source_that_loses_every_word_is_an_error(tmp_path, splits, capsys):
    """A file whose whole text sits on one line that a rule drops whole (a Gutenberg `Produced by` line): exit 2, no
    output replaced, even with any loss allowed."""
    train, dev = splits
    cfg = config_file(tmp_path, [train, dev], tmp_path / "clean")
    assert run(["--config", str(cfg)], capsys)[0] == 0  # earlier outputs
    write(train / "gutenberg.train", "Produced by Anna. " + "Once upon a time there was a king. " * 1000 + "\n")
    assert_refused(tmp_path, capsys, ["--config", str(cfg), "clean.max_word_loss=1"], str(train / "gutenberg.train"),
                   "cleaning removed all 8,003 of its words", "no output was replaced")


@pytest.mark.parametrize("override, needle", [
    ("clean.max_word_loss=1.5", "clean.max_word_loss"), ("clean.max_word_loss=-0.1", "clean.max_word_loss"),
    ("clean.max_word_loss=nan", "clean.max_word_loss"), ("clean.style=paper", "clean.style"),
    ("clean.strict=maybe", "clean.strict"),
])
def test_bad_clean_keys_are_one_line_errors(tmp_path, splits, capsys, override, needle):
    cfg = config_file(tmp_path, list(splits), tmp_path / "clean")
    assert_refused(tmp_path, capsys, ["--config", str(cfg), override], needle)


def test_authors_style_end_to_end(tmp_path, capsys):
    train = tmp_path / "babylm_10M"
    write(train / "cbt.train", "_BOOK_TITLE_ : x.txt\r\n`` Ah , '' said he , it 's  `` so . ''\r\n")
    write(train / "children_stories.train", "One.  \n\nTwo.[3]\n")
    write(train / "switchboard.train", "but  you know <laughter>\n")
    cfg = config_file(tmp_path, [train], tmp_path / "clean")
    rc, stdout, err = run(["--config", str(cfg), "clean.style=authors"], capsys)
    assert rc == 0, err
    out = tmp_path / "clean" / "babylm_10M"
    assert (out / "cbt.train").read_bytes() == b"_BOOK_TITLE_ : x.txt\n`` Ah, '' said he, it's `` so. ''\n"
    assert (out / "children_stories.train").read_bytes() == b"One.  \n\nTwo.[3]\n"
    assert (out / "switchboard.train").read_bytes() == b"but  you know <laughter>\n"
    assert "(authors style)" in stdout and "style: authors" in (tmp_path / "clean" / "config.yaml").read_text()
