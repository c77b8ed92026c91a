"""Tiny offline classification tasks for finetune.py's tests and the embedded demo, from a small grammar of our own.

    python -m babyllama.synthetic_tasks --output-dir data/finetune-synthetic --seed 0

Writes the plain layout that finetune.py reads, ``<task>/train.jsonl`` and ``<task>/validation.jsonl``:

- ``synthetic_cola``: CoLA-like grammaticality. Label 1 (acceptable) for a sentence of the grammar, 0 for one with a
  single error: subject-verb agreement, determiner-noun number, determiner after its noun, a doubled word, or no verb.
  Balanced labels. Field ``sentence``, as in CoLA.
- ``synthetic_msgs``: MSGS-like (Warstadt et al. 2020). Linguistic feature: the *main* verb is progressive
  (``is/are V-ing``; a relative clause's verb may be ``-ing`` too, so "has an -ing word" is not the feature). Surface
  feature: the sentence contains the word ``the`` (as MSGS's ``lexical_content_the``). In train the two agree, so the
  label is ambiguous between them; in validation they always disagree and the label follows the linguistic feature: MCC
  +1 means the linguistic generalisation, -1 the surface one. Fields ``sentence``, ``label``,
  ``linguistic_feature_label``, ``surface_feature_label``, as in MSGS.

Everything is drawn from ``random.Random(seed)``: the same seed writes the same files. Validation sentences never occur
in train.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from pathlib import Path

from babyllama.config import run_cli

NOUNS = [("dog", "dogs"), ("cat", "cats"), ("bird", "birds"), ("girl", "girls"), ("boy", "boys"), ("baby", "babies"),
         ("teacher", "teachers"), ("duck", "ducks"), ("horse", "horses"), ("friend", "friends"), ("farmer", "farmers")]
# (base, third person singular, past, -ing)
VERBS = [("see", "sees", "saw", "seeing"), ("like", "likes", "liked", "liking"), ("find", "finds", "found", "finding"),
         ("help", "helps", "helped", "helping"), ("chase", "chases", "chased", "chasing"),
         ("hold", "holds", "held", "holding"), ("watch", "watches", "watched", "watching"),
         ("push", "pushes", "pushed", "pushing"), ("follow", "follows", "followed", "following")]
ADJECTIVES = ["big", "small", "red", "happy", "old", "little"]
ADVERBS = ["today", "again", "now", "outside"]
DET_SG = ["a", "this", "that", "my", "your"]  # "the" is added where a task allows it
DET_PL = ["these", "those", "my", "your", "some"]

TASKS = ("synthetic_cola", "synthetic_msgs")


def noun_phrase(rng, plural: bool, the: bool | None = None) -> list[str]:
    """[det, (adj), noun]; ``the``: True forces "the", False forbids it, None lets it occur like any determiner."""
    dets = DET_PL if plural else DET_SG
    det = "the" if the else rng.choice(dets + ([] if the is False else ["the"]))
    adj = [rng.choice(ADJECTIVES)] if rng.random() < 0.3 else []
    return [det] + adj + [rng.choice(NOUNS)[plural]]


def sentence_text(words: list[str]) -> str:
    return " ".join(words)[0].upper() + " ".join(words)[1:] + "."


# ----------------------------------------------------------------------------------------------------------------------
# CoLA-like grammaticality


def grammatical(rng) -> tuple[list[str], int, int, bool]:
    """(words, index of the subject's determiner, index of the main verb, subject plural); present tense."""
    plural = rng.random() < 0.5
    words = noun_phrase(rng, plural)
    if rng.random() < 0.3:  # a relative clause between subject and verb: agreement is then not with the last noun
        words += ["who", rng.choice(VERBS)[2]] + noun_phrase(rng, rng.random() < 0.5)
    verb = len(words)
    words += [rng.choice(VERBS)[0 if plural else 1]] + noun_phrase(rng, rng.random() < 0.5)
    if rng.random() < 0.3:
        words.append(rng.choice(ADVERBS))
    return words, 0, verb, plural


def corrupt(rng, words: list[str], det: int, verb: int, plural: bool) -> list[str]:
    """One error, of a kind drawn at random."""
    w = list(words)
    kind = rng.choice(["agreement", "det_number", "order", "double", "no_verb"])
    if kind == "agreement":
        forms = next(v for v in VERBS if w[verb] in v)
        w[verb] = forms[1] if plural else forms[0]
    elif kind == "det_number":
        wrong = [d for d in (DET_SG if plural else DET_PL) if d not in ("my", "your")]
        w[det] = rng.choice(wrong)
    elif kind == "order":  # "dog the sees ..."
        w[det], w[det + 1] = w[det + 1], w[det]
    elif kind == "double":
        i = rng.randrange(len(w))
        w.insert(i, w[i])
    else:
        del w[verb]
    return w


def cola_rows(rng, n: int) -> list[dict]:
    rows = []
    for i in range(n):
        words, det, verb, plural = grammatical(rng)
        label = i % 2  # balanced
        if not label:
            words = corrupt(rng, words, det, verb, plural)
        rows.append({"sentence": sentence_text(words), "label": label})
    rng.shuffle(rows)
    return rows


# ----------------------------------------------------------------------------------------------------------------------
# MSGS-like: main verb progressive (linguistic) vs contains "the" (surface)


def msgs_sentence(rng, main_ing: bool, has_the: bool) -> str:
    plural = rng.random() < 0.5
    # where "the" goes when the sentence has it: subject, relative clause object or main object
    slots = [rng.random() < 0.5 for _ in range(3)] if has_the else [False] * 3
    if has_the and not any(slots):
        slots[rng.randrange(3)] = True
    words = noun_phrase(rng, plural, the=slots[0] or False)
    if rng.random() < 0.6:  # relative clause, its verb -ing or past regardless of the label
        rel_plural = plural
        rel = ["are" if rel_plural else "is", rng.choice(VERBS)[3]] if rng.random() < 0.5 else [rng.choice(VERBS)[2]]
        words += ["who"] + rel + noun_phrase(rng, rng.random() < 0.5, the=slots[1] or False)
    elif slots[1] and not slots[2]:
        slots[2] = True
    verb = rng.choice(VERBS)
    words += (["are" if plural else "is", verb[3]] if main_ing else [verb[2]])
    words += noun_phrase(rng, rng.random() < 0.5, the=slots[2] or False)
    return sentence_text(words)


def msgs_rows(rng, n: int, ambiguous: bool) -> list[dict]:
    rows = []
    for i in range(n):
        ling = i % 2
        surface = ling if ambiguous else 1 - ling
        rows.append({"sentence": msgs_sentence(rng, bool(ling), bool(surface)), "label": ling,
                     "linguistic_feature_label": ling, "surface_feature_label": surface,
                     "linguistic_feature_type": "main_verb", "surface_feature_type": "lexical_content_the"})
    rng.shuffle(rows)
    return rows


# ----------------------------------------------------------------------------------------------------------------------


def make_task(name: str, n_train: int, n_validation: int, seed: int) -> tuple[list[dict], list[dict]]:
    """(train rows, validation rows) of task ``name``; no validation sentence occurs in train."""
    rng = random.Random(f"{name}-{seed}")
    if name == "synthetic_cola":
        train, pool = cola_rows(rng, n_train), cola_rows(rng, 3 * n_validation)
    elif name == "synthetic_msgs":
        train, pool = msgs_rows(rng, n_train, ambiguous=True), msgs_rows(rng, 3 * n_validation, ambiguous=False)
    else:
        raise ValueError(f"unknown synthetic task {name!r}; known: {', '.join(TASKS)}")
    seen = {r["sentence"] for r in train}
    fresh = [r for r in pool if r["sentence"] not in seen]
    by_label = [[r for r in fresh if r["label"] == y] for y in (0, 1)]
    half = n_validation // 2
    validation = by_label[0][:half] + by_label[1][:n_validation - half]  # balanced despite the filtering
    rng.shuffle(validation)
    return train, validation


def write_jsonl(path: Path, rows) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def write_tasks(output_dir, seed: int = 0, n_train: int = 1000, n_validation: int = 400,
                tasks=TASKS) -> dict[str, Path]:
    """Write every task's ``train.jsonl`` and ``validation.jsonl`` under ``output_dir/<task>/``."""
    out = {}
    for name in tasks:
        train, validation = make_task(name, n_train, n_validation, seed)
        folder = Path(output_dir) / name
        write_jsonl(folder / "train.jsonl", train)
        write_jsonl(folder / "validation.jsonl", validation)
        out[name] = folder
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--output-dir", default="data/finetune-synthetic", help="where the <task>/ folders go")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--train", type=int, default=1000, help="training examples per task")
    parser.add_argument("--validation", type=int, default=400, help="validation examples per task")
    args = parser.parse_args(argv)
    for name, folder in write_tasks(args.output_dir, args.seed, args.train, args.validation).items():
        print(f"{name}: {folder}")
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
