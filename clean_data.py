"""Clean the raw BabyLM split folders with mrclean.py, one cleaner per source.

    python clean_data.py --config config/clean.yaml
    python clean_data.py --config config/clean.yaml clean.output_dir=/tmp/clean clean.passthrough_unknown=true
    python clean_data.py --help-config

Every folder in ``clean.input_dirs`` (e.g. data/babylm_10M, data/babylm_dev) is cleaned into
``clean.output_dir/<folder name>/`` with the same file names. A file's source comes from its name, ``<source>.train``
/ ``.dev`` / ``.test``, with the 2023 and 2024 names (``aochildes`` / ``childes``, ``simple_wikipedia`` /
``simple_wiki``, ...); hidden files and sub-folders are ignored. Everything is checked first (folders exist and hold
files, every source is known, every file is UTF-8), so a mistake stops the run before anything is written. Outputs are
written atomically (temp file, then rename) and the resolved config is saved as ``clean.output_dir/config.yaml``.
Cleaning is idempotent: running it again on its own output changes no file.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from config import CleanConfig, UserError, add_config_args, describe, load_config, run_cli, save_config
from mrclean import CLEANERS, source_of


def corpus_files(folder: Path) -> list[Path]:
    """The files of a split folder, sorted; hidden files (.DS_Store, editor swap files) and sub-folders are skipped."""
    return sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith("."))


def check_utf8(path: Path) -> None:
    try:
        path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as e:
        raise UserError(f"{path}: not UTF-8 text (byte offset {e.start}: {e.object[e.start:e.start + 1]!r}); "
                        "re-encode the file as UTF-8") from None


def plan(input_dirs, output_dir, passthrough_unknown: bool = False) -> list[tuple[Path, str | None, Path]]:
    """Check every input before anything is written; return (input file, source or None to copy, output file)."""
    out_root = Path(output_dir)
    if out_root.exists() and not out_root.is_dir():
        raise UserError(f"{out_root}: clean.output_dir exists and is not a folder; give a folder path")
    jobs, seen = [], {}
    for d in map(Path, input_dirs):
        if not d.is_dir():
            raise UserError(f"{d}: clean.input_dirs folder not found; give the BabyLM split folders "
                            "(e.g. data/babylm_10M)")
        files = corpus_files(d)
        if not files:
            raise UserError(f"{d}: no corpus files in this clean.input_dirs folder; expected <source>.train / .dev / "
                            ".test files")
        if d.name in seen:  # both would be written to output_dir/<name>
            raise UserError(f"{d}: same folder name as {seen[d.name]}; clean.input_dirs folders need distinct names")
        seen[d.name] = d
        out_dir = out_root / d.name
        if out_dir.resolve() == d.resolve():
            raise UserError(f"{d}: clean.output_dir would overwrite this input folder in place; pick another output_dir")
        for f in files:
            source = source_of(f.name)
            if source is None and not passthrough_unknown:
                raise UserError(f"{f}: unknown BabyLM source {f.name.split('.', 1)[0]!r}; known sources: "
                                f"{', '.join(sorted(CLEANERS))}; rename the file, or set clean.passthrough_unknown=true "
                                "to copy unknown files unchanged")
            check_utf8(f)
            jobs.append((f, source, out_dir / f.name))
    return jobs


def write_atomic(path: Path, data: bytes) -> None:
    """Write to a hidden temp file next to ``path``, then rename: an interrupted run never leaves half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def clean_folders(input_dirs, output_dir, passthrough_unknown: bool = False, log=print) -> list[dict]:
    """Clean every file of every split folder into output_dir/<folder name>/; returns one dict per file with
    ``input``, ``output``, ``source`` (None: copied), ``bytes_in``, ``bytes_out``, ``words_in``, ``words_out``."""
    jobs = plan(input_dirs, output_dir, passthrough_unknown)
    names = [f"{f.parent.name}/{f.name}" for f, _, _ in jobs]
    w = max(len("total"), *map(len, names))
    s = max(len("source"), len("(copied)"), *(len(src or "") for _, src, _ in jobs))
    header = f"{'file':<{w}}  {'source':<{s}}  {'bytes in':>13} {'bytes out':>13}  {'words in':>12} {'words out':>12}"

    def row(name, source, bi, bo, wi, wo):
        return f"{name:<{w}}  {source:<{s}}  {bi:>13,} {bo:>13,}  {wi:>12,} {wo:>12,}  {100 * (wo - wi) / max(wi, 1):+6.1f}%"

    log(header + f"  {'change':>7}")
    rows = []
    for name, (src_path, source, out_path) in zip(names, jobs):
        raw = src_path.read_bytes()
        text = raw.decode("utf-8")
        out = CLEANERS[source](text).encode("utf-8") if source else raw
        write_atomic(out_path, out)
        r = dict(input=str(src_path), output=str(out_path), source=source, bytes_in=len(raw), bytes_out=len(out),
                 words_in=len(text.split()), words_out=len(out.decode("utf-8").split()))
        rows.append(r)
        log(row(name, source or "(copied)", r["bytes_in"], r["bytes_out"], r["words_in"], r["words_out"]))
    log("-" * len(header))
    log(row("total", "", *(sum(r[k] for r in rows) for k in ("bytes_in", "bytes_out", "words_in", "words_out"))))
    # corpus files left in the output split folders by an earlier run over other inputs would be trained on too
    written = {out for _, _, out in jobs}
    for folder in {out.parent for out in written}:
        for stale in sorted(folder.iterdir()):
            if stale.is_file() and stale.suffix in (".train", ".dev", ".test") and stale not in written:
                stale.unlink()
                log(f"removed {stale}: not among this run's inputs")
    return rows


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="Clean the raw BabyLM split folders (see mrclean.py).")
    add_config_args(parser, default_config="config/clean.yaml")
    args = parser.parse_args(argv)
    if args.help_config:
        print(describe(CleanConfig))
        return 0
    run(load_config(CleanConfig, args.config, args.overrides))
    return 0


def run(cfg: CleanConfig):
    c = cfg.clean
    t0 = time.time()
    rows = clean_folders(c.input_dirs, c.output_dir, c.passthrough_unknown)
    save_config(cfg, c.output_dir)
    print(f"cleaned {len(rows)} files from {len(c.input_dirs)} folders into {c.output_dir} in {time.time() - t0:.1f}s")


if __name__ == "__main__":
    sys.exit(run_cli(main))
