"""Train the byte-level BPE tokenizer on the cleaned train split (paper: vocab 16000).

    python tokenizer.py --config config/tokenizer.yaml
    python tokenizer.py --config config/tokenizer.yaml tokenizer.vocab_size=8000
    python tokenizer.py --config config/tokenizer.yaml --overwrite   # move the earlier tokenizer aside first

Only ``*.train`` files are read: a ``.dev`` or ``.test`` file in the folder is an error, since a vocabulary learnt on
held-out text leaks it into the model. The output folder loads with ``AutoTokenizer.from_pretrained`` and has
``<s>`` (bos), ``</s>`` (eos) and ``<pad>`` set. Text is NFKC-normalised, then split GPT-2 style into bytes, so every
string round-trips: ``decode(encode(x)) == NFKC(x)``. A pre-token (a GPT-2 "word") costs BPE about its length at
every merge, so 5 MB of letters without a space would train for hours: by default (the paper's unbounded words) a file
with a run of more than LONG_RUN non-space characters is refused, naming the line; ``tokenizer.max_word_chars`` cuts
such runs into pieces instead.

A folder that holds a tokenizer is never written over: every model trained with it needs it as it is. It is refused,
or with ``--overwrite`` moved aside to ``<output_dir>.old-<n>`` (kept where the new tokenizer is the same).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import sys
from pathlib import Path

from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers
from transformers import AutoTokenizer, PreTrainedTokenizerFast

from babyllama.config import UserError, add_config_args, describe, load_config, run_cli, save_config
from babyllama.schema import TokenizerConfig
from babyllama.files import hash_files, move_aside
from babyllama.locks import locked

SPECIAL_TOKENS = ["<pad>", "<s>", "</s>"]  # ids 0, 1, 2
LONG_RUN = 1000  # non-space characters: far above any word or URL, far below the lengths that make BPE hang
HELD_OUT_SUFFIXES = (".dev", ".test")


def train_files(train_dir, max_word_chars: int | None = None) -> list[Path]:
    """The ``*.train`` files of a split folder, sorted; refuses held-out files, empty folders, files without a word
    between them (a letter or digit: a BPE of nothing but its 256 bytes and specials), non-UTF-8 text and, without
    ``max_word_chars``, a run of more than LONG_RUN non-space characters."""
    folder = Path(train_dir)
    if not folder.is_dir():
        raise UserError(f"{folder}: tokenizer.train_dir not found; run clean_data.py first or fix the path")
    held_out = sorted(p for p in folder.iterdir() if p.suffix in HELD_OUT_SUFFIXES)
    if held_out:
        raise UserError(f"{held_out[0]}: held-out ({held_out[0].suffix}) file in tokenizer.train_dir; the tokenizer is "
                        "trained on the train split only, point train_dir at the *.train folder")
    files = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix == ".train")
    if not files:
        raise UserError(f"{folder}: no *.train files in tokenizer.train_dir")
    words = False
    for f in files:
        try:
            text = f.read_text(encoding="utf-8")
        except UnicodeDecodeError as e:
            raise UserError(f"{f}: not UTF-8 text (byte {e.start}); clean it with clean_data.py first")
        long = None if max_word_chars else re.search(rf"\S{{{LONG_RUN + 1}}}", text)
        if long:
            raise UserError(f"{f}: line {text.count(chr(10), 0, long.start()) + 1} holds more than {LONG_RUN:,} "
                            "characters without a space, on which BPE can run for hours; clean the file, or set "
                            "tokenizer.max_word_chars=64 to cut such runs into pieces")
        words = words or re.search(r"\w", text) is not None
    if not words:
        raise UserError(f"{folder}: the *.train files in tokenizer.train_dir hold no word (empty, blank or only "
                        "punctuation), so the tokenizer would learn nothing but its bytes; run clean_data.py on the "
                        "raw text, or point train_dir at the cleaned train split")
    return files


def build_tokenizer(files, vocab_size: int = 16000, min_frequency: int = 2, max_word_chars: int | None = None):
    """Train and return a ``PreTrainedTokenizerFast`` on ``files``."""
    tok = Tokenizer(models.BPE())
    tok.normalizer = normalizers.NFKC()
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    if max_word_chars:  # isolated pieces of max_word_chars; shorter runs, all natural words among them, unchanged
        tok.pre_tokenizer = pre_tokenizers.Sequence([
            pre_tokenizers.Split(Regex(rf"\S{{{max_word_chars}}}"), behavior="isolated"), tok.pre_tokenizer])
    tok.decoder = decoders.ByteLevel()
    tok.post_processor = processors.ByteLevel(trim_offsets=False)
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=min_frequency,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),  # all 256 bytes: nothing is ever out of vocabulary
        show_progress=False,
    )
    tok.train([str(f) for f in files], trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token="<s>",
        eos_token="</s>",
        pad_token="<pad>",
        clean_up_tokenization_spaces=False,  # keep "do n't" / " ." exactly as written
        add_prefix_space=False,
        model_max_length=1_000_000,  # chunking, not the tokenizer, bounds sequence length
    )


def load_tokenizer(path):
    """Load a tokenizer folder with a clear error when it is missing."""
    folder = Path(path)
    if not (folder / "tokenizer.json").is_file():
        raise UserError(f"{folder}: no tokenizer.json here; train one with `python tokenizer.py` or fix "
                        "data.tokenizer_dir")
    try:
        tok = AutoTokenizer.from_pretrained(str(folder))
    except Exception as e:  # a corrupt tokenizer.json raises anything from the Rust side: say which folder
        raise UserError(f"{folder}: its tokenizer does not load ({str(e).splitlines()[0][:200]}); restore the "
                        "tokenizer files or retrain them with tokenizer.py") from None
    for name in ("bos_token", "eos_token", "pad_token"):
        if getattr(tok, name) is None:
            raise UserError(f"{folder}: tokenizer has no {name}; retrain it with tokenizer.py")
    return tok


def tokenizer_fingerprint(path) -> str:
    """Content hash of a tokenizer folder (the files that decide token ids)."""
    folder = Path(path)
    return hash_files([folder / n for n in ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json")
                       if (folder / n).is_file()])


def main(argv=None) -> int:
    parser = add_config_args(argparse.ArgumentParser(description=__doc__.split("\n\n")[0]), "config/tokenizer.yaml")
    parser.add_argument("--overwrite", action="store_true", help="move a tokenizer already in tokenizer.output_dir "
                        "aside (to <output_dir>.old-<n>) and write the new one")
    args = parser.parse_intermixed_args(argv)
    if args.help_config:
        print(describe(TokenizerConfig))
        return 0
    run(load_config(TokenizerConfig, args.config, args.overrides), overwrite=args.overwrite)
    return 0


@locked(lambda cfg: cfg.tokenizer.output_dir, "tokenizer.output_dir")  # one run at a time per output folder
def run(cfg: TokenizerConfig, overwrite: bool = False):
    t = cfg.tokenizer
    out = Path(t.output_dir)
    if out.exists() and not out.is_dir():
        raise UserError(f"{out}: tokenizer.output_dir exists and is not a folder; pick another path")
    earlier = (out / "tokenizer.json").is_file()
    if earlier and not overwrite:
        raise UserError(f"{out} holds a tokenizer already, and the models trained with it need it as it is; pick "
                        f"another tokenizer.output_dir, or pass --overwrite to move it aside to {out.name}.old-<n>")
    files = train_files(t.train_dir, t.max_word_chars)
    print(f"training byte-level BPE (vocab {t.vocab_size}) on {len(files)} files: {', '.join(f.name for f in files)}")
    tok = build_tokenizer(files, t.vocab_size, t.min_frequency, t.max_word_chars)
    new = out.with_name(f".{out.name}.{os.getpid()}.tmp") if earlier else out
    tok.save_pretrained(str(new))
    if earlier and tokenizer_fingerprint(new) == tokenizer_fingerprint(out):
        shutil.rmtree(new)
        print(f"{out}: the new tokenizer is the same as the one there, kept")
    elif earlier:
        print(f"--overwrite: moved the earlier tokenizer to {move_aside(out)}")
        new.rename(out)
    save_config(cfg, out, "train_config.yaml")
    print(f"saved tokenizer with {len(tok)} entries to {out}")
    if len(tok) < t.vocab_size:  # every pair seen min_frequency times is merged already
        print(f"warning: {out}: the corpus is too small for tokenizer.vocab_size {t.vocab_size}: it supports only "
              f"{len(tok)} entries; give more text, or lower vocab_size (or min_frequency)", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(run_cli(main))
