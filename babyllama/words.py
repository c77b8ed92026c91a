"""Words seen: what the BabyLM rules count training by, and the checkpoints they ask for.

Since 2025 BabyLM asks for a checkpoint after every 1M words trained on up to 10M, every 10M up to 100M and (tracks
other than strict-small) every 100M up to 1000M; a model sees at most 100M words (strict-small) or 1000M (strict). A
word is a whitespace-separated word (``str.split``) of the text the model trains on, counted again every epoch.

Counting is exact and cheap: every token of the training stream gets the number of words that start in it (0 or 1,
from three tables over the vocabulary, so the 10M-word corpus takes a fraction of a second); a chunk's words are the
sum over its tokens, each training item carries them (``words``), and the trainer adds up the items that optimizer
steps consumed, over every process (``WordsSeen``, saved in every checkpoint's trainer state, so a resume continues
the count). ``SaveAtWords`` writes ``<output_dir>/chck_<label>/`` at the end of the first optimizer step at which the
count reaches each milestone: the model folder as at the end of training (weights, config, tokenizer, the run's
config.yaml) plus ``words_seen.json`` = {"words_seen", "milestone", "step", "epoch"}.
"""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import numpy as np
import torch
from tokenizers import Tokenizer
from transformers import TrainerCallback
from transformers.trainer_callback import ExportableState

from babyllama.callbacks import _any_process
from babyllama.config import UserError
from babyllama.files import move_aside, write_atomic

MILLION = 1_000_000
BUDGETS = {"strict-small": 100 * MILLION, "strict": 1000 * MILLION}  # the BabyLM tracks' word budgets
WORDS_FILE = "words_seen.json"

# ----------------------------------------------------------------------------------------------------------------------
# milestones


def babylm_schedule(budget: int | None = None) -> list[int]:
    """The BabyLM milestones (1M..10M by 1M, 20M..100M by 10M, 200M..1000M by 100M) up to ``budget`` words."""
    millions = list(range(1, 10)) + list(range(10, 100, 10)) + list(range(100, 1001, 100))
    return [m * MILLION for m in millions if budget is None or m * MILLION <= budget]


def milestone_name(n: int) -> str:
    """chck_1M, chck_10M for whole millions; chck_250K, chck_1500K for other whole thousands (refused otherwise)."""
    if n <= 0 or n % 1000:
        raise ValueError(f"{n}: a milestone is a positive whole number of thousands of words")
    return f"chck_{n // MILLION}M" if n % MILLION == 0 else f"chck_{n // 1000}K"


def budget_words(budget) -> int | None:
    """``training.word_budget`` as a word count (a track name, a number, or None: no budget)."""
    return BUDGETS.get(budget, budget) if budget is not None else None


def milestones(save_words, budget=None) -> list[int]:
    """``training.save_words`` as sorted word counts: ``babylm`` (the schedule up to the budget, all 1000M without
    one), a list of counts, or None (none)."""
    if save_words is None:
        return []
    return babylm_schedule(budget_words(budget)) if save_words == "babylm" else sorted(set(save_words))


def read_checkpoint_words(folder) -> dict:
    """A milestone checkpoint's ``words_seen.json``: {"words_seen", "milestone", "step", "epoch"}."""
    path = Path(folder) / WORDS_FILE
    try:
        data = json.loads(path.read_text())
        return {"words_seen": int(data["words_seen"]), "milestone": int(data["milestone"]), "step": int(data["step"]),
                "epoch": float(data["epoch"])}
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise UserError(f"{path}: not a readable words-seen record ({type(e).__name__}: {e}); a chck_* folder is "
                        "written by train.py / distill_train.py with training.save_words") from None


def run_words_seen(model_dir) -> int | None:
    """The words a finished run saw, from its metrics.json (None: not recorded, e.g. a run before the count)."""
    try:
        return json.loads((Path(model_dir) / "metrics.json").read_text()).get("words_seen")
    except (OSError, ValueError):
        return None


def checkpoint_folders(output_dir) -> list[Path]:
    """The run's milestone folders, by words seen."""
    return sorted((p.parent for p in Path(output_dir).glob(f"chck_*/{WORDS_FILE}")),
                  key=lambda p: read_checkpoint_words(p)["words_seen"])


# ----------------------------------------------------------------------------------------------------------------------
# counting: the words that start in each token


def _byte_of_char() -> dict[str, int]:
    """The byte-level BPE alphabet: printable Latin-1 bytes stand for themselves, the other bytes for chr(256 + k)."""
    keep = [b for b in range(256) if 33 <= b <= 126 or 161 <= b <= 172 or 174 <= b <= 255]
    moved = [b for b in range(256) if b not in keep]
    return {**{chr(b): b for b in keep}, **{chr(256 + k): b for k, b in enumerate(moved)}}


def _token_texts(tok: Tokenizer) -> list[str | None]:
    """Each vocabulary entry's text (None for special tokens). Byte-level tokens are decoded from their bytes, with
    bytes of a character split over two tokens kept as lone surrogates (0xDC80..0xDCFF)."""
    special = {i for i, t in tok.get_added_tokens_decoder().items() if t.special}
    byte_level = json.loads(tok.to_str()).get("decoder", {}) or {}
    table = _byte_of_char() if byte_level.get("type") == "ByteLevel" else None
    out = []
    for i in range(tok.get_vocab_size()):
        piece = tok.id_to_token(i)
        if i in special or piece is None:
            out.append(None)
        elif table is not None and all(c in table for c in piece):
            out.append(bytes(table[c] for c in piece).decode("utf-8", "surrogateescape"))
        else:  # another tokenizer family: its own decoding of the token alone
            out.append(tok.decode([i], skip_special_tokens=False))
    return out


def vocab_word_tables(tokenizer_dir) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Three per-token tables: words that start inside the token after its first character; whether its first
    character would start a word (after a space); whether it ends in a space. A special token (a separator) counts
    as a space; a continuation byte of a character begun in the previous token starts nothing."""
    tok = Tokenizer.from_file(str(Path(tokenizer_dir) / "tokenizer.json"))
    texts = _token_texts(tok)
    inside, first, last_space = (np.zeros(len(texts), np.uint8) for _ in range(3))
    for i, text in enumerate(texts):
        if not text:
            last_space[i] = 1
            continue
        space = [c.isspace() for c in text]
        word = [not s and not "\udc80" <= c <= "\udcbf" for c, s in zip(text, space)]
        first[i] = word[0]
        inside[i] = sum(w and s for w, s in zip(word[1:], space))
        last_space[i] = space[-1]
    return inside, first, last_space


def word_starts(ids, tokenizer_dir) -> np.ndarray:
    """uint8 per token of ``ids`` (a flat token stream): the words that start in it, so the words of any span of
    tokens are its sum, and the whole stream's sum is ``len(text.split())`` of the text the tokens decode to."""
    inside, first, last_space = vocab_word_tables(tokenizer_dir)
    ids = np.asarray(ids)
    after_space = np.ones(len(ids), dtype=np.uint8)  # the stream's first token follows nothing: a word may start
    after_space[1:] = last_space[ids[:-1]]
    return inside[ids] + (first[ids] & after_space)


# ----------------------------------------------------------------------------------------------------------------------
# the plan: words a run will see, the budget, milestones it will not reach


def planned_words(t, ds) -> tuple[int, str]:
    """(words the run will see, how that figure is made) for a TrainingSection ``t`` and its train ChunkDataset (a
    curriculum's holds every epoch: one pass). max_steps counts full passes, then the batches of a partial pass at
    the pass's mean words per chunk."""
    n, per_pass = len(ds), ds.words_per_pass()
    steps_per_pass = math.ceil(n / t.batch_size)
    curriculum = getattr(ds, "epoch_ends", None) is not None
    passes = 1 if curriculum else t.num_epochs
    steps = t.max_steps if t.max_steps > 0 else math.ceil(passes * steps_per_pass)
    full, rest = divmod(steps, steps_per_pass)
    words = full * per_pass + round(min(rest * t.batch_size, n) * per_pass / n)
    if t.max_steps > 0:
        how = f"max_steps {t.max_steps} x batch {t.batch_size} chunks, {per_pass / n:,.1f} words per chunk"
    elif curriculum:
        how = f"the curriculum's {t.num_epochs:g} epochs per stage"
    else:
        how = f"{t.num_epochs:g} epochs x {per_pass:,} words"
    return words, how


def check_plan(t, ds, log=print) -> int:
    """Refuse a run that would see more words than ``training.word_budget``; say which milestones it will not
    reach. Returns the planned words."""
    words, how = planned_words(t, ds)
    budget = budget_words(t.word_budget)
    if budget is not None and words > budget:
        per_pass, n = ds.words_per_pass(), len(ds)
        fit = f"training.max_steps {budget * n // (per_pass * t.batch_size):,}"
        if getattr(ds, "epoch_ends", None) is None and t.max_steps <= 0:
            fit = f"training.num_epochs {math.floor(100 * budget / per_pass) / 100:g} or " + fit
        raise UserError(f"training.word_budget {t.word_budget} ({budget:,} words): this run would see {words:,} words "
                        f"({how}); lower it to at most {fit}")
    log(f"words seen: the run plans {words:,} words ({how})"
        + (f", within training.word_budget {t.word_budget} ({budget:,})" if budget is not None else ""))
    marks = milestones(t.save_words, t.word_budget)
    beyond = [m for m in marks if m > words]
    if beyond:
        names = [milestone_name(m) for m in beyond]
        listed = names[0] if len(names) == 1 else f"{names[0]}...{names[-1]}" if len(names) > 3 else ", ".join(names)
        log(f"the run ends at {words:,} words: {listed} will not exist")
    return words


# ----------------------------------------------------------------------------------------------------------------------
# the trainer side: the count, kept in the checkpoints, and the milestone folders


class WordsSeen(TrainerCallback, ExportableState):
    """The running count of words seen. The trainer adds each optimizer step's words (``add``) before the step; the
    count is saved in every checkpoint's trainer state (``stateful_callbacks``) and read back on resume."""

    def __init__(self, words_seen: int = 0):
        self.words_seen = words_seen

    def state(self) -> dict:
        return {"args": {}, "attributes": {"words_seen": self.words_seen}}

    def on_train_begin(self, args, state, control, **kw):
        saved = state.stateful_callbacks.get(type(self).__name__)
        if state.global_step and saved is None:
            print(f"warning: the checkpoint of step {state.global_step} predates the words-seen count: words_seen "
                  "counts from this resume on")
        self.words_seen = int(saved["attributes"]["words_seen"]) if saved and state.global_step else 0
        state.stateful_callbacks[type(self).__name__] = self.state()  # a save updates this key: it must exist

    def add(self, batches, accelerator) -> int:
        """Pop the ``words`` of the step's micro-batches, sum them over processes, add them to the count."""
        words = [b.pop("words") for b in batches if "words" in b]
        if words:
            total = torch.stack([w.sum() for w in words]).sum().reshape(1)
            self.words_seen += int(accelerator.gather(total).sum().item())
        return self.words_seen


class SaveAtWords(TrainerCallback):
    """At the end of the first optimizer step at which words seen reaches each of ``marks``, write the model folder
    ``<output_dir>/chck_<label>/`` (``trainer.save_model``: weights, config, tokenizer; plus the run's config.yaml
    and words_seen.json), through a hidden temporary folder renamed into place. A folder the same step already wrote
    (a resumed run replaying steps) is kept; one of another step is moved aside. ``on_written(folder)`` is called
    after each (the Hub push). The count is the trainer's ``words`` (a ``WordsSeen``)."""

    def __init__(self, marks, on_written=None):
        self.marks, self.on_written = sorted(marks), on_written
        self.trainer = None  # set by trainer_setup.attach_callbacks

    def on_train_begin(self, args, state, control, **kw):
        self.last = self.trainer.words.words_seen  # the count before the next step (a resumed run: at its checkpoint)
        out = Path(args.output_dir)
        lost = [milestone_name(m) for m in self.marks if m <= self.last and not (out / milestone_name(m)).is_dir()]
        if lost and state.is_world_process_zero:
            print(f"warning: {', '.join(lost)} were reached before step {state.global_step} but are not in {out}; "
                  "they cannot be written again from this checkpoint")

    def on_step_end(self, args, state, control, **kw):
        now = self.trainer.words.words_seen
        for m in [m for m in self.marks if self.last < m <= now]:
            folder = Path(args.output_dir) / milestone_name(m)
            if _any_process(not self._written_at(folder, state.global_step)):
                self.save(folder, m, args, state)
        self.last = now

    @staticmethod
    def _written_at(folder: Path, step: int) -> bool:
        """The folder holds this step's milestone record (a resumed run replaying the steps after its checkpoint)."""
        try:
            return read_checkpoint_words(folder)["step"] == step
        except UserError:
            return False

    def save(self, folder: Path, milestone: int, args, state):
        tmp = folder.with_name(f".{folder.name}.tmp")
        if state.is_world_process_zero:
            shutil.rmtree(tmp, ignore_errors=True)
        self.trainer.save_model(str(tmp))  # every process: gathering sharded weights is collective
        if not state.is_world_process_zero:
            return
        run_config = Path(args.output_dir) / "config.yaml"
        if run_config.is_file():
            shutil.copy2(run_config, tmp / "config.yaml")
        record = {"words_seen": self.trainer.words.words_seen, "milestone": milestone, "step": state.global_step,
                  "epoch": round(state.epoch or 0.0, 4)}
        write_atomic(tmp / WORDS_FILE, json.dumps(record, indent=1) + "\n")
        if folder.exists():
            print(f"{folder} holds another step's checkpoint: moved aside to {move_aside(folder)}")
        tmp.rename(folder)
        print(f"words seen {record['words_seen']:,} at step {state.global_step}: wrote {folder}")
        if self.on_written is not None:
            self.on_written(folder)
