"""clean_data.py on tmp folders the tests write: outputs, the printed report, and the one-line user errors."""

import subprocess
import sys
from pathlib import Path

import pytest

import clean_data
from config import run_cli

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
    assert row[2:6] == ["23", "20", "7", "4"]  # "kee .\ndo n't do that .\n": 23 bytes, 7 words -> 20 bytes, 4 words
    assert "babylm_dev/switchboard.dev" in rows and "babylm_dev/simple_wiki.dev" in rows
    assert rows["total"][1:5] == [f"{sum(int(r[k].replace(',', '')) for n, r in rows.items() if '/' in n):,}"
                                  for k in (2, 3, 4, 5)]
    assert "bytes in" in stdout and "words out" in stdout


def test_clean_folders_is_idempotent_and_reusable(tmp_path, splits):
    rows1 = clean_data.clean_folders([str(d) for d in splits], tmp_path / "c1", log=lambda *a: None)
    rows2 = clean_data.clean_folders([tmp_path / "c1" / d.name for d in splits], tmp_path / "c2", log=lambda *a: None)
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
    from clean_data import clean_folders

    raw = tmp_path / "babylm_10M"
    raw.mkdir()
    (raw / "aochildes.train").write_text("hello there .\n")
    clean_folders([raw], tmp_path / "out", log=lambda *_: None)
    (raw / "aochildes.train").rename(raw / "childes.train")  # the 2024 name
    lines = []
    clean_folders([raw], tmp_path / "out", log=lines.append)
    assert sorted(p.name for p in (tmp_path / "out" / "babylm_10M").iterdir()) == ["childes.train"]
    assert any("removed" in line and "aochildes.train" in line for line in lines)
