"""Zero-shot scoring of minimal pairs with a causal LM: reading pairs, encoding, the scorer, and accuracy summaries.

Layouts of JSON-lines records, picked per file from the fields of its first record. The BabyLM 2024/2025 zero-shot
suites are recognised by their own fields (``SUITES``); other files by the generic field names of ``eval.fields`` (the
defaults cover BLiMP, its BabyLM filter and supplement, and the common context layouts):

- ``blimp``: ``sentence_good`` / ``sentence_bad``. A sentence's score is ``log P(" " + sentence | <prefix>)``, as
  lm-evaluation-harness's ``blimp`` task: the sentence is the continuation of an empty context, written with the task's
  target delimiter (a leading space) and conditioned on one prefix token (BOS if the tokenizer has one, else EOS;
  ``eval.prefix=eos`` always uses EOS, as the 2023 BabyLM pipeline did).
- ``context``: a ``context`` and a good and a bad continuation (``sentence_good`` / ``sentence_bad``). Each is scored
  ``log P(" " + continuation | <prefix> + context)``: the context is tokenized as written, the continuation on its own
  with the leading space, and only the continuation's tokens count. EWoK is this layout: ``Context1``, with
  ``Target1`` (right) against ``Target2``, as the 2025 organisers score it (``Context2`` is not used).
- ``two-context``: ``context_good`` / ``context_bad`` and one ``target``. Each context is scored
  ``log P(" " + target | <prefix> + context)``: the same rule, the target in both.
- ``choice`` (multiple choice; entity tracking): one context and N options, option 0 right, each option scored like a
  context layout's continuation. Entity tracking's ``input_prefix`` ends with the space before the option; it moves to
  the option (``"Box 0 contains" + " the pot."``), so the tokens are those of the whole sentence, the ones the
  organisers' offset mapping scores. Reported per ``<file>_<numops>_ops`` subset, like the organisers' pipeline.
- ``wug`` (adjective nominalization): two whole sentences, tab-separated in ``sentences``, each scored like a BLiMP
  sentence, and a human ``ratio``; reported as a correlation (``wug_correlation``), not an accuracy.

Those are the rules of the ``lm-eval`` convention (``eval.convention``, the default: lm-evaluation-harness's, a leading
space and a prefix token). ``babylm2025`` scores every layout as the organisers' 2025 pipeline does
(``encode_organisers``): the whole sentence tokenized with no leading space and no BOS unless the tokenizer's
post-processor adds one, the tokens whose characters end inside the continuation scored; and wug's softmax in float32.

A score is the sum of the scored tokens' log-probabilities, without length normalisation; an item is correct when its
right option scores at least as high as every other (good >= bad for a pair): ties count as correct, like lm-eval's
argmax, which picks the first of equal choices, and the right one is first. An item with two equal texts, or an empty
one, is refused with the file and line.

The fast scorer gives the plain one's numbers (fp32: within 1e-4, the same decisions) with less work. The distinct
sequences (a sentence that occurs twice is scored once), sorted, are packed into rows that are prefix trees: a token
prefix shared by several sequences in a row (a pair's common beginning, the first words of neighbouring sentences) is
one node, computed once, and each node attends to its ancestors only (a 4-D attention mask, its depth as position).
Over all of BLiMP with a 16k BPE, rows of 128 tokens compute 38 % fewer token positions than a row per sentence (a
pair's shared prefix alone: 21 %). Rows are sorted by length, so a batch pads little.

Accuracies are reported per file, per BLiMP phenomenon (the 12 rows of the paper's Table 1, from ``linguistics_term``;
``s-selection`` counts as argument_structure; a phenomenon's accuracy is the mean of its files' accuracies, as lm-eval
averages its blimp group), and as macro averages: over phenomena, over supplement files (generic layouts without
``linguistics_term``, e.g. the BabyLM supplement), and over BLiMP's and the supplement's files. Each other suite has its
own rows and average, as the 2025 organisers average it: EWoK the mean over its files (domains), entity tracking the mean
over files of each file's mean over its subsets, wug the correlation. A folder may mix suites; each is reported apart.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from babyllama.config import UserError
from babyllama.schema import PairFields
from babyllama.losses import teacher_log_probs
from babyllama.models import TeacherEnsemble

# The 12 BLiMP phenomena, in the order of the paper's Table 1.
PHENOMENA = ("anaphor_agreement", "argument_structure", "binding", "control_raising", "determiner_noun_agreement",
             "ellipsis", "filler_gap_dependency", "irregular_forms", "island_effects", "npi_licensing", "quantifiers",
             "subject_verb_agreement")
TERM_ALIASES = {"s-selection": "argument_structure"}  # BLiMP's paper counts the two animacy paradigms here
SUPPLEMENT = "supplement"  # group of files whose records have no linguistics_term
LAYOUTS = ("blimp", "context", "two-context", "choice", "wug")
# The BabyLM 2024/2025 suites beyond BLiMP, by the fields of their published files: suite -> (layout, {role: field})
SUITES = {
    "ewok": ("context", {"context": "Context1", "good": "Target1", "bad": "Target2"}),
    "entity_tracking": ("choice", {"context": "input_prefix", "options": "options", "numops": "numops"}),
    "wug": ("wug", {"sentences": "sentences", "ratio": "ratio"}),
}
BLIMP_FAMILY = ("blimp", SUPPLEMENT)  # suites reported in BLiMP's table (its phenomena, the supplement's files)
# how texts become tokens: lm-eval (lm-evaluation-harness, this project's default) or babylm2025 (the organisers' 2025
# pipeline, whose numbers are the yardstick of a submission)
CONVENTIONS = ("lm-eval", "babylm2025")


# ----------------------------------------------------------------------------------------------------------------------
# reading pairs


@dataclass(frozen=True)
class Pair:
    file: str  # file name without extension: the paradigm or supplement task
    line: int  # 1-based line in the file
    good: str  # blimp/context: the good sentence or continuation; two-context: the good context; choice: option 0;
    bad: str  # wug: the first form (good) and the second (bad)
    term: str | None = None  # linguistics_term as written, None when absent
    context: str = ""  # context and choice layouts: the context the continuations follow
    target: str = ""  # two-context layout: the continuation scored after each context
    layout: str = "blimp"
    others: tuple[str, ...] = ()  # choice layout: options 2.., all wrong
    suite: str = "blimp"  # blimp, supplement, or a key of SUITES
    subset: str = ""  # choice layout: the row it is reported in (entity tracking: <file>_<numops>_ops)
    ratio: float | None = None  # wug: the human preference for the first form

    @property
    def phenomenon(self) -> str:
        return phenomenon_of(self.term)

    def texts(self) -> tuple[tuple[str, str], ...]:
        """(context, continuation) of each option: the good (right) one first."""
        if self.layout == "two-context":
            return (self.good, self.target), (self.bad, self.target)
        return tuple((self.context, c) for c in (self.good, self.bad, *self.others))


def phenomenon_of(term: str | None) -> str:
    if not term:
        return SUPPLEMENT
    return TERM_ALIASES.get(term, term)


def pair_files(folder) -> list[Path]:
    folder = Path(folder)
    if not folder.is_dir():
        raise UserError(f"{folder}: BLiMP folder not found (eval.blimp_dir / --blimp-dir)")
    # BLiMP ships .jsonl; the BabyLM filtered BLiMP and supplement ship JSON lines named .json
    files = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix in (".jsonl", ".json"))
    if not files:
        raise UserError(f"{folder}: no *.jsonl or *.json files in the BLiMP folder")
    return files


def _first(rec: dict, names) -> str | None:
    return next((n for n in names if n in rec), None)


def detect_layout(rec: dict, fields: PairFields) -> tuple[str, dict] | None:
    """(layout, {role: field name}) for a record of a generic layout (``eval.fields``), or None when none fits."""
    good, bad = _first(rec, fields.good), _first(rec, fields.bad)
    if good and bad:
        ctx = _first(rec, fields.context)
        return ("context", {"good": good, "bad": bad, "context": ctx}) if ctx else ("blimp", {"good": good, "bad": bad})
    roles = {"good": _first(rec, fields.context_good), "bad": _first(rec, fields.context_bad),
             "target": _first(rec, fields.target)}
    return ("two-context", roles) if all(roles.values()) else None


def detect_suite(rec: dict, fields: PairFields) -> tuple[str, str, dict] | None:
    """(suite, layout, {role: field name}) for a file's first record: a suite of ``SUITES`` when all its fields are
    there, else a generic layout, whose suite is blimp with a ``linguistics_term`` and the supplement without."""
    for suite, (layout, roles) in SUITES.items():
        if all(f in rec for f in roles.values()):
            return suite, layout, dict(roles)
    picked = detect_layout(rec, fields)
    return None if picked is None else ("blimp" if rec.get("linguistics_term") else SUPPLEMENT, *picked)


def _texts(rec: dict, layout: str, roles: dict, where: str) -> dict:
    """The texts of one record as {role: value} (choice: options; wug: the two forms), checked for type."""
    if layout == "wug":
        forms = rec.get(roles["sentences"])
        forms = forms.split("\t") if isinstance(forms, str) else []
        ratio = rec.get(roles["ratio"])
        if len(forms) != 2 or not isinstance(ratio, (int, float)) or isinstance(ratio, bool) or not 0 <= ratio <= 1:
            raise UserError(f"{where}: expected two forms separated by a tab in {roles['sentences']} and a number in "
                            f"0..1 in {roles['ratio']} (wug layout)")
        return {"good": forms[0], "bad": forms[1], "ratio": float(ratio)}
    if layout == "choice":
        opts, ctx = rec.get(roles["options"]), rec.get(roles["context"])
        if not isinstance(ctx, str) or not isinstance(opts, list) or len(opts) < 2 \
                or not all(isinstance(o, str) for o in opts):
            raise UserError(f"{where}: expected a string {roles['context']} and a list of 2 or more strings "
                            f"{roles['options']} (choice layout: option 0 is right)")
        # the prefix's trailing space joins the option: the tokens of the whole sentence, as the organisers score it
        return {"context": ctx[:-1] if ctx.endswith(" ") else ctx, "good": opts[0], "bad": opts[1],
                "others": tuple(opts[2:]), "numops": rec.get(roles["numops"])}
    vals = {}
    for role, key in roles.items():
        if not isinstance(rec.get(key), str):
            raise UserError(f"{where}: {key} is missing or not a string ({layout} layout)")
        vals[role] = rec[key]
    return vals


def load_pairs(folder, max_pairs_per_file: int | None = None, fields: PairFields | None = None,
               layouts: dict | None = None, identical: str = "error") -> list[Pair]:
    """Every item of every JSON-lines file in ``folder`` (sorted by file name), the first N per file (entity
    tracking: per subset) if asked.

    The suite and layout of a file are picked from its first record's fields; ``layouts``, when given, is filled with
    {file name: (layout, {role: field})} so a caller can say which it picked. An item with two identical texts is
    an error, or kept as a tie (counted correct, as lm-eval does) with ``identical="tie"``."""
    fields = fields or PairFields()
    pairs = []
    for path in pair_files(folder):
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
        except UnicodeDecodeError as e:
            raise UserError(f"{path}: not UTF-8 text (byte {e.start})")
        counts, picked = {}, None
        for i, text in enumerate(lines, 1):
            if not text.strip():
                continue
            try:
                rec = json.loads(text)
            except json.JSONDecodeError as e:
                raise UserError(f"{path}:{i}: not valid JSON ({e.msg})")
            if not isinstance(rec, dict):
                raise UserError(f"{path}:{i}: expected a JSON object with sentence_good and sentence_bad")
            if picked is None:
                picked = detect_suite(rec, fields)
                half = _first(rec, fields.good) or _first(rec, fields.bad)
                if picked is None and half:
                    missing = fields.bad[0] if half in fields.good else fields.good[0]
                    raise UserError(f"{path}:{i}: {missing} is missing (blimp layout; other names: eval.fields)")
                if picked is None:
                    raise UserError(f"{path}:{i}: no pair layout fits the fields {', '.join(rec)}; expected "
                                    f"{'/'.join(fields.good)} and {'/'.join(fields.bad)} (optionally with "
                                    f"{'/'.join(fields.context)}), or {'/'.join(fields.context_good)}, "
                                    f"{'/'.join(fields.context_bad)} and {'/'.join(fields.target)}; name yours in "
                                    "eval.fields (EWoK, entity tracking and wug files are recognised by their own "
                                    "fields)")
                if layouts is not None:
                    layouts[path.name] = picked[1:]
            suite, layout, roles = picked
            vals = _texts(rec, layout, roles, f"{path}:{i}")
            subset = f"{path.stem}_{vals['numops']}_ops" if layout == "choice" else ""
            if max_pairs_per_file is not None and counts.get(subset, 0) >= max_pairs_per_file:
                continue
            options = [vals["good"], vals["bad"], *vals.get("others", ())]
            if not all(o.strip() for o in options) or not vals.get("target", "x").strip():
                empty = next((roles[r] for r in ("good", "bad", "target") if r in roles and not vals[r].strip()),
                             roles.get("options") or roles.get("sentences"))
                raise UserError(f"{path}:{i}: {empty} is empty; every pair needs two non-empty texts")
            if len(set(options)) < len(options) and identical == "error":
                what = f"{roles['good']} and {roles['bad']} are" if len(options) == 2 and "good" in roles else \
                    f"two texts of {roles.get('options') or roles.get('sentences')} are"
                raise UserError(f"{path}:{i}: {what} identical, so the pair counts as correct whatever the model; "
                                "fix the line, or set eval.identical_pairs=tie to count it as lm-eval does")
            term = rec.get("linguistics_term")
            pairs.append(Pair(path.stem, i, vals["good"], vals["bad"], term if term else None, vals.get("context", ""),
                              vals.get("target", ""), layout, vals.get("others", ()), suite, subset, vals.get("ratio")))
            counts[subset] = counts.get(subset, 0) + 1
            if max_pairs_per_file is not None and layout != "choice" and counts[subset] >= max_pairs_per_file:
                break
        if not counts:
            raise UserError(f"{path}: no pairs in this file")
    return pairs


def suites_of(pairs) -> dict[str, list[str]]:
    """{suite: its files}, in the order first met."""
    out: dict[str, list[str]] = {}
    for p in pairs:
        files = out.setdefault(p.suite, [])
        if not files or files[-1] != p.file:
            files.append(p.file)
    return out


def mixed_suites(folder, pairs) -> str | None:
    """A message when ``folder`` holds files of more than one suite (BLiMP and its supplement count as one): they are
    scored together and reported apart, each suite in its own table."""
    suites = {("blimp" if s in BLIMP_FAMILY else s): [] for s in suites_of(pairs)}
    for s, files in suites_of(pairs).items():
        suites["blimp" if s in BLIMP_FAMILY else s] += files
    if len(suites) < 2:
        return None
    return (f"note: {folder} mixes suites ({'; '.join(f'{s}: {len(f)} file(s), e.g. {f[0]}' for s, f in suites.items())})"
            "; each is reported in its own table, never in another's average")


# ----------------------------------------------------------------------------------------------------------------------
# encoding


def prefix_token_id(tokenizer, prefix: str = "bos") -> int:
    """lm-eval's conditioning token for an empty context: BOS if there is one, else EOS; ``eos`` forces EOS."""
    tid = tokenizer.bos_token_id if prefix == "bos" else None
    if tid is None:
        tid = tokenizer.eos_token_id
    if tid is None:
        raise UserError(f"the tokenizer has no {'BOS or ' if prefix == 'bos' else ''}EOS token to condition on")
    return tid


def _as_pair(p) -> Pair:
    return p if isinstance(p, Pair) else Pair("", 0, p[0], p[1])


@dataclass(frozen=True)
class Encoded:
    """Token ids of every option of every item ([good_0, bad_0, good_1, ...] for pairs), where each one's scored
    continuation starts, and how many options each item has."""
    seqs: list[list[int]]
    starts: list[int]  # index of the first scored token in each sequence (1 for a BLiMP sentence)
    sizes: list[int]  # options per item (2 for a pair)

    def items(self):
        """(first sequence index, number of options) of each item."""
        i = 0
        for n in self.sizes:
            yield i, n
            i += n


def encode_pairs(tokenizer, pairs, prefix: str = "bos", convention: str = "lm-eval") -> Encoded:
    """``lm-eval``: each option is ``[prefix] + tokens(context) + tokens(" " + continuation)``, two batched tokenizer
    calls. ``babylm2025``: the organisers' rule (``encode_organisers``; ``prefix`` plays no part)."""
    if convention == "babylm2025":
        return encode_organisers(tokenizer, pairs)
    if convention != "lm-eval":
        raise UserError(f"convention {convention!r}: expected one of {', '.join(CONVENTIONS)}")
    per_item = [_as_pair(p).texts() for p in pairs]
    items = [t for texts in per_item for t in texts]
    pid = prefix_token_id(tokenizer, prefix)
    conts = tokenizer([" " + c for _, c in items], add_special_tokens=False)["input_ids"]
    ctx_texts = sorted({c for c, _ in items if c})
    ctx_ids = dict(zip(ctx_texts, tokenizer(ctx_texts, add_special_tokens=False)["input_ids"])) if ctx_texts else {}
    seqs, starts = [], []
    for (c, _), ids in zip(items, conts):
        head = [pid] + ctx_ids.get(c, [])
        seqs.append(head + ids)
        starts.append(len(head))
    return Encoded(seqs, starts, [len(t) for t in per_item])


def organisers_texts(p: Pair) -> list[tuple[str, str]]:
    """(sentence, completion) of each option, as the 2025 pipeline builds them (``sentence_zero_shot/read_files.py``):
    a whole sentence is its own completion (BLiMP, the supplement, wug); EWoK's is ``Context1 + " " + Target`` with
    completion ``" " + Target`` (the same for the other context layouts); entity tracking's is ``input_prefix +
    option`` with completion ``option`` (the published prefixes end with the space that ``load_pairs`` moved)."""
    return [(cont, cont) if not ctx else (ctx + " " + cont, cont if p.layout == "choice" else " " + cont)
            for ctx, cont in p.texts()]


def encode_organisers(tokenizer, pairs) -> Encoded:
    """The organisers' causal scoring (``sentence_zero_shot/dataset.py``, ``compute_results.py``): each sentence is
    tokenized whole with no leading space, with the special tokens its tokenizer's post-processor adds (BOS only if it
    adds one: none for this project's tokenizers); a token is scored when its character span ends inside the completion
    (``end > len(sentence) - len(completion) + start of the first token``), and never the first token, which nothing
    predicts. So without BOS a BLiMP sentence's first token is not scored, and a token that straddles the boundary is."""
    per_item = [organisers_texts(_as_pair(p)) for p in pairs]
    items = [t for texts in per_item for t in texts]
    try:
        enc = tokenizer([s for s, _ in items], return_offsets_mapping=True)
    except NotImplementedError:
        raise UserError("the babylm2025 convention needs a fast tokenizer (character offsets); save the model with "
                        "its tokenizer.json")
    seqs, starts = [], []
    for (sentence, completion), ids, offs in zip(items, enc["input_ids"], enc["offset_mapping"]):
        if len(ids) < 2:
            raise UserError(f"{sentence!r} is one token with no BOS: nothing is scored under the babylm2025 "
                            "convention (the organisers score it 0); fix the item or use eval.convention=lm-eval")
        begin = len(sentence) - len(completion) + offs[0][0]
        scored = [i for i in range(1, len(ids)) if offs[i][1] > begin]
        # scored tokens run to the text's last one; special tokens after it (an EOS) are left out of the sequence
        seqs.append(ids[:scored[-1] + 1] if scored else ids)
        starts.append(scored[0] if scored else len(ids))
    return Encoded(seqs, starts, [len(t) for t in per_item])


def truncate_encoded(enc: Encoded, limit: int) -> tuple[Encoded, int]:
    """``enc`` with each item longer than ``limit`` tokens shortened: its context loses its first tokens (after the
    prefix token), as many for every option as the longest needs, so the options still share one context. Returns it
    and the number of items shortened; an item whose continuation alone does not fit is left for check_encoded."""
    seqs, starts, cut = list(enc.seqs), list(enc.starts), 0
    for i, n in enc.items():
        drop = max(len(s) for s in seqs[i:i + n]) - limit
        if drop <= 0 or any(starts[j] - drop < 1 for j in range(i, i + n)):
            continue
        for j in range(i, i + n):
            seqs[j] = seqs[j][:1] + seqs[j][1 + drop:]
            starts[j] -= drop
        cut += 1
    return Encoded(seqs, starts, enc.sizes), cut


def check_encoded(pairs, enc: Encoded, limit: int | None = None, name: str = "the model",
                  identical: str = "error") -> list[Pair]:
    """Refuse items longer than the model's positions, and (unless ``identical="tie"``) an item two of whose options
    have the same token ids. Returns the items that tie that way."""
    ties = []
    for p, (i, n) in zip(pairs, enc.items()):
        opts = [(tuple(enc.seqs[j]), enc.starts[j]) for j in range(i, i + n)]
        if len(set(opts)) < n:
            if identical == "error":
                raise UserError(f"{p.file} line {p.line}: the two sentences tokenize to the same ids, so the pair "
                                "counts as correct whatever the model; fix the line, or set eval.identical_pairs=tie")
            ties.append(p)
        longest = max(len(s) for s, _ in opts)
        if limit and longest > limit:
            raise UserError(f"{p.file} line {p.line}: {longest} tokens exceed {name}'s {limit} positions; set "
                            "eval.long_items=truncate to drop the context's first tokens, as lm-eval does")
    return ties


# ----------------------------------------------------------------------------------------------------------------------
# scoring


def model_device(model) -> torch.device:
    return next(model.parameters()).device


HEAD_CHUNK = 256  # positions per LM-head chunk: a [256, V] float32 block (16 MB at V=16000) stays in cache


def _target_log_probs(model, ids, rows, cols, targets, **kw) -> torch.Tensor:
    """float32 log p(target) [N] of the next token at (rows, cols), from a model or a TeacherEnsemble (whose members
    run on the same inputs, their logits gathered before combining). For one model the LM head runs only where a token
    is predicted, in chunks, and log p = logit[target] - logsumexp(logits): no [N, V] log-softmax is written."""
    members = model.models if isinstance(model, TeacherEnsemble) else [model]
    hidden = []
    for m in members:
        head = m.get_output_embeddings()
        if head is not None and m.base_model is not m:  # the LM head only where a token is predicted: no pads
            hidden.append((head, m.base_model(input_ids=ids, **kw).last_hidden_state[rows, cols]))
        else:
            hidden.append((None, m(input_ids=ids, **kw).logits[rows, cols]))
    if isinstance(model, TeacherEnsemble):
        logits = [h if head is None else head(h) for head, h in hidden]
        return teacher_log_probs(logits, model.weights, model.combine).gather(-1, targets[:, None]).squeeze(-1)
    head, h = hidden[0]
    out = torch.empty(len(targets), dtype=torch.float32, device=h.device)
    for i in range(0, len(targets), HEAD_CHUNK):
        logits = (h[i:i + HEAD_CHUNK] if head is None else head(h[i:i + HEAD_CHUNK])).float()
        t = targets[i:i + HEAD_CHUNK, None]
        out[i:i + HEAD_CHUNK] = (logits.gather(-1, t) - torch.logsumexp(logits, dim=-1, keepdim=True)).squeeze(-1)
    return out


def _progress(total: int, progress: bool, desc: str):
    from tqdm.auto import tqdm  # slow to import: only when scoring

    return tqdm(total=total, desc=desc, unit="sent", disable=not progress, leave=False)


@torch.inference_mode()
def token_logprobs_plain(model, seqs, batch_size: int = 128, progress: bool = False,
                         desc: str = "scoring") -> list[list[float]]:
    """log p(token t | tokens < t) for t = 1.. of each sequence: one right-padded row per distinct sequence.

    The reference path. Padding is on the right, so with causal attention no real token sees a pad and positions of
    real tokens start at 0 (GPT-2's absolute positions are right)."""
    unique: dict[tuple, int] = {}
    index = [unique.setdefault(tuple(s), len(unique)) for s in seqs]
    uniq = list(unique)
    if any(len(s) < 2 for s in uniq):
        raise ValueError("every sequence needs a prefix token and at least one token to score")
    order = sorted(range(len(uniq)), key=lambda i: len(uniq[i]), reverse=True)  # longest first: peak memory at once
    device = model_device(model)
    out: list[list[float]] = [[] for _ in uniq]
    bar = _progress(len(uniq), progress, desc)
    for start in range(0, len(order), batch_size):
        idx = order[start:start + batch_size]
        width = len(uniq[idx[0]])
        ids = torch.zeros(len(idx), width, dtype=torch.long)
        mask = torch.zeros(len(idx), width, dtype=torch.long)
        for row, i in enumerate(idx):
            ids[row, :len(uniq[i])] = torch.tensor(uniq[i])
            mask[row, :len(uniq[i])] = 1
        rows = torch.cat([torch.full((len(uniq[i]) - 1,), r) for r, i in enumerate(idx)])
        cols = torch.cat([torch.arange(len(uniq[i]) - 1) for i in idx])
        ids, mask = ids.to(device), mask.to(device)
        tok = _target_log_probs(model, ids, rows, cols, ids[rows, cols + 1], attention_mask=mask).tolist()
        k = 0
        for i in idx:
            out[i] = tok[k:k + len(uniq[i]) - 1]
            k += len(uniq[i]) - 1
        bar.update(len(idx))
    bar.close()
    return [out[k] for k in index]


ROW_TOKENS = 128  # tokens per prefix-tree row: longer rows share more, attention grows with the square (128: ~4 %)
TOKENS_PER_PAIR = 32  # a forward pass holds about batch_size x this many tokens (BLiMP: ~25 per pair with a 16k BPE)


def _lcp(a, b) -> int:
    n = min(len(a), len(b))
    i = 0
    while i < n and a[i] == b[i]:
        i += 1
    return i


def tree_rows(uniq, row_tokens: int = ROW_TOKENS) -> list[tuple[list[int], list[int], list[tuple[int, list[int]]]]]:
    """Pack distinct sequences, in sorted order, into prefix trees of at most ``row_tokens`` nodes (a longer sequence
    gets a row of its own): a token shared by several sequences of a row is one node, computed once.

    Returns rows of (tokens, parent node of each node (-1: root), [(sequence index, its node at each depth)])."""
    rows, tokens, parents, members, prev, path = [], [], [], [], (), []
    for k in sorted(range(len(uniq)), key=lambda i: uniq[i]):
        s = uniq[k]
        shared = _lcp(prev, s)
        if members and len(tokens) + len(s) - shared > row_tokens:  # full: a new row holds the whole sequence
            rows.append((tokens, parents, members))
            tokens, parents, members, shared = [], [], [], 0
        path = path[:shared]
        for t in s[shared:]:
            parents.append(path[-1] if path else -1)
            tokens.append(t)
            path.append(len(tokens) - 1)
        members.append((k, list(path)))
        prev = s
    if members:
        rows.append((tokens, parents, members))
    return rows


@torch.inference_mode()
def token_logprobs(model, seqs, batch_size: int = 64, progress: bool = False, desc: str = "scoring",
                   row_tokens: int = ROW_TOKENS) -> list[list[float]]:
    """What ``token_logprobs_plain`` returns, computing each distinct token prefix once per row.

    The distinct sequences, sorted, are laid out as prefix trees (``tree_rows``): a pair's shared prefix, and the
    first words that neighbouring sentences share, are one node each. A node's position is its depth and it attends to
    itself and its ancestors only (a 4-D mask), so it sees exactly the tokens it follows in its sequences. Rows are
    sorted by length and a forward pass holds about ``batch_size`` x 32 tokens."""
    unique: dict[tuple, int] = {}
    index = [unique.setdefault(tuple(s), len(unique)) for s in seqs]
    uniq = list(unique)
    if any(len(s) < 2 for s in uniq):
        raise ValueError("every sequence needs a prefix token and at least one token to score")
    rows = sorted(tree_rows(uniq, row_tokens), key=lambda r: len(r[0]), reverse=True)
    per_batch = max(1, batch_size * TOKENS_PER_PAIR // max(row_tokens, len(rows[0][0])))
    device = model_device(model)
    dtype = next(model.parameters()).dtype
    out: list[list[float]] = [[] for _ in uniq]
    bar = _progress(len(uniq), progress, desc)
    for start in range(0, len(rows), per_batch):
        batch = rows[start:start + per_batch]
        width = len(batch[0][0])
        ids = np.zeros((len(batch), width), dtype=np.int64)
        pos = np.zeros((len(batch), width), dtype=np.int64)
        allowed = np.zeros((len(batch), width, width), dtype=bool)
        allowed[:, range(width), range(width)] = True  # padding attends to itself: no empty softmax row
        rows_i, cols, targets, owners = [], [], [], []
        for r, (tokens, parents, members) in enumerate(batch):
            ids[r, :len(tokens)] = tokens
            for q, p in enumerate(parents):  # ancestors of a node: its parent's, and itself
                if p >= 0:
                    allowed[r, q] = allowed[r, p]
                    allowed[r, q, q] = True
                    pos[r, q] = pos[r, p] + 1
            for k, path in members:  # token t of sequence k is predicted at its node of depth t-1
                rows_i += [r] * (len(path) - 1)
                cols += path[:-1]
                targets += uniq[k][1:]
                owners.append(k)
        allowed = torch.from_numpy(allowed)
        mask = torch.zeros(allowed.shape, dtype=dtype).masked_fill(~allowed, torch.finfo(dtype).min).unsqueeze(1)
        tok = _target_log_probs(model, torch.from_numpy(ids).to(device), torch.tensor(rows_i), torch.tensor(cols),
                                torch.tensor(targets, device=device), attention_mask=mask.to(device),
                                position_ids=torch.from_numpy(pos).to(device)).tolist()
        i = 0
        for k in owners:
            out[k] = tok[i:i + len(uniq[k]) - 1]
            i += len(uniq[k]) - 1
        bar.update(len(owners))
    bar.close()
    return [out[k] for k in index]


def computed_positions(seqs, plain: bool = False, row_tokens: int = ROW_TOKENS) -> int:
    """Token positions a forward pass computes for ``seqs`` (without padding): what the FLOP count of the scorer is."""
    uniq = list(dict.fromkeys(tuple(s) for s in seqs))
    if plain:
        return sum(len(s) for s in uniq)
    return sum(len(tokens) for tokens, _, _ in tree_rows(uniq, row_tokens))


def item_tree_tokens(enc: Encoded) -> int:
    """Nodes of the largest item's prefix tree (its options' distinct prefixes): a row must hold one item, so that the
    context a multiple-choice item's options share is computed once."""
    most = 0
    for i, n in enc.items():
        seqs = sorted(enc.seqs[i:i + n])
        most = max(most, len(seqs[0]) + sum(len(b) - _lcp(a, b) for a, b in zip(seqs, seqs[1:])))
    return most


def score_encoded(model, enc: Encoded, batch_size: int = 64, progress: bool = False, desc: str = "scoring",
                  plain: bool = False) -> list[tuple[float, ...]]:
    """Summed log-probabilities of each item's continuations, (good, bad) for a pair, (right, other, ...) for a
    multiple-choice item. The model is put in eval mode; ``plain`` scores each sentence in its own padded row
    (2 * batch_size rows per pass) instead of prefix-tree rows of ``ROW_TOKENS``, or of the largest item when longer."""
    model.eval()
    if plain:
        lp = token_logprobs_plain(model, enc.seqs, 2 * batch_size, progress, desc)
    else:
        lp = token_logprobs(model, enc.seqs, batch_size, progress, desc, max(ROW_TOKENS, item_tree_tokens(enc)))
    s = [sum(x[start - 1:]) for x, start in zip(lp, enc.starts)]
    return [tuple(s[i:i + n]) for i, n in enc.items()]


def score_pairs(model, tokenizer, pairs, batch_size: int = 64, prefix: str = "bos", progress: bool = False,
                desc: str = "scoring", plain: bool = False) -> list[tuple[float, float]]:
    """(good, bad) summed log-probabilities for each pair (a ``Pair`` or a ``(good, bad)`` tuple of strings)."""
    return score_encoded(model, encode_pairs(tokenizer, pairs, prefix), batch_size, progress, desc, plain)


# ----------------------------------------------------------------------------------------------------------------------
# per-pair logs (--log-pairs)


def pair_records(model_name: str, pairs, enc: Encoded, scores, convention: str = "lm-eval") -> list[dict]:
    """One JSON-able record per item: where it came from, its texts, their log-likelihoods and scored-token counts."""
    out = []
    for p, (i, n), sc in zip(pairs, enc.items(), scores, strict=True):
        rec = {"model": model_name, "convention": convention, "file": p.file, "line": p.line, "layout": p.layout, "suite": p.suite,
               "term": p.term, "good": p.good, "bad": p.bad}
        if p.layout in ("context", "choice"):
            rec["context"] = p.context
        if p.layout == "two-context":
            rec["target"] = p.target
        if p.layout == "choice":
            rec.update(others=list(p.others), subset=p.subset)
        if p.layout == "wug":
            rec["ratio"] = p.ratio
        tokens = [len(enc.seqs[j]) - enc.starts[j] for j in range(i, i + n)]
        rec.update({"logp_good": sc[0], "logp_bad": sc[1], "tokens_good": tokens[0], "tokens_bad": tokens[1]})
        if n > 2:
            rec.update(logp_others=list(sc[2:]), tokens_others=tokens[2:])
        out.append(rec)
    return out


def read_pair_log(path) -> tuple[str, list[Pair], list[tuple[float, ...]], str]:
    """(model name, items, scores, convention) from a ``--log-pairs`` JSON-lines file."""
    path = Path(path)
    pairs, scores, name = [], [], None
    for i, text in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not text.strip():
            continue
        try:
            r = json.loads(text)
            term = r.get("term")
            pairs.append(Pair(r["file"], r["line"], r["good"], r["bad"], term, r.get("context", ""),
                              r.get("target", ""), r.get("layout", "blimp"), tuple(r.get("others", ())),
                              r.get("suite") or ("blimp" if term else SUPPLEMENT), r.get("subset", ""), r.get("ratio")))
            scores.append((float(r["logp_good"]), float(r["logp_bad"]), *map(float, r.get("logp_others", ()))))
        except (json.JSONDecodeError, KeyError, TypeError, ValueError) as e:
            raise UserError(f"{path}:{i}: not a pair record of eval_blimp.py --log-pairs ({type(e).__name__}: {e})")
        name = name or r.get("model")
    if not pairs:
        raise UserError(f"{path}: no pair records in this file")
    return name or path.name.split(".")[0], pairs, scores, r.get("convention", "lm-eval")


# ----------------------------------------------------------------------------------------------------------------------
# summaries


def _mean(xs):
    return sum(xs) / len(xs) if xs else None


def is_correct(scores) -> bool:
    """lm-eval's argmax: the first of equal maxima is picked, and the right option is first (good >= bad)."""
    return scores[0] >= max(scores[1:])


def wug_correlation(scores, ratios, convention: str = "lm-eval") -> float | None:
    """Spearman's rho between the model's preference for the first form and the human ``ratio``, as the BabyLM 2025
    organisers define it (babylm/evaluation-pipeline-2025, ``evaluation_pipeline/sentence_zero_shot/
    compute_results.py``, ``rank_and_evaluate_wug``: a softmax over the two forms' summed log-probabilities, its first
    entry correlated with ``ratio`` by ``scipy.stats.spearmanr``):

        p_i = exp(s_i1) / (exp(s_i1) + exp(s_i2)) = 1 / (1 + exp(s_i2 - s_i1)),    rho = spearmanr(p, ratio)

    ``scores``: (s_i1, s_i2) per item. rho is Pearson's correlation of the ranks (ties: mean ranks), -1..1; None when
    either list is constant. Only the order of the p_i counts, so the organisers' temperature changes nothing; they
    take the softmax in float32, where p_i rounds to exactly 1 beyond a difference of about 17 nats (ties that float64
    keeps apart). ``lm-eval`` computes p_i in float64; ``babylm2025`` as they do, a float32 softmax, whose ties move rho
    by up to about 1e-4."""
    from scipy.special import expit  # slow to import: only for wug
    from scipy.stats import spearmanr

    if convention == "babylm2025":
        pref = torch.softmax(torch.tensor([s[:2] for s in scores], dtype=torch.float32), dim=1)[:, 0].tolist()
    else:
        pref = [float(expit(a - b)) for a, b, *_ in scores]
    if len(set(pref)) < 2 or len(set(ratios)) < 2:
        return None
    return float(spearmanr(pref, ratios).statistic)


def _subset_key(name: str, file: str):
    rest = name[len(file) + 1:].split("_")[0]  # <file>_<numops>_ops: the number of operations
    return (file, int(rest) if rest.lstrip("-").isdigit() else 0, rest)


def summarize(pairs, scores, convention: str = "lm-eval") -> dict:
    """Accuracies per file, per phenomenon and macro averages for BLiMP and its supplement; rows and an average per
    other suite (``suites``), for ``pairs`` scored as ``scores`` (good, bad, ...) under ``convention`` (wug's softmax)."""
    files: dict[str, dict] = {}
    subsets: dict[str, dict] = {}
    wug: dict[str, tuple[list, list]] = {}
    for p, s in zip(pairs, scores, strict=True):
        f = files.setdefault(p.file, {"suite": p.suite, "phenomenon": p.phenomenon, "correct": 0, "total": 0})
        f["total"] += 1
        if p.layout == "wug":
            w = wug.setdefault(p.file, ([], []))
            w[0].append(s)
            w[1].append(p.ratio)
            continue
        ok = int(is_correct(s))
        f["correct"] += ok
        if p.subset:
            sub = subsets.setdefault(p.subset, {"file": p.file, "correct": 0, "total": 0})
            sub["correct"] += ok
            sub["total"] += 1
    for name, f in files.items():
        if f["suite"] == "wug":
            f["spearman"] = wug_correlation(*wug[name], convention)
        else:
            f["acc"] = f["correct"] / f["total"]
    for sub in subsets.values():
        sub["acc"] = sub["correct"] / sub["total"]

    blimp = {n: f for n, f in files.items() if f["suite"] in BLIMP_FAMILY}
    groups: dict[str, list[str]] = {}
    for name, f in blimp.items():
        groups.setdefault(f["phenomenon"], []).append(name)
    known = [g for g in PHENOMENA if g in groups]
    other = sorted(g for g in groups if g not in PHENOMENA and g != SUPPLEMENT)  # unknown terms: own rows
    phenomena = {}
    for g in known + other:
        names = groups[g]
        phenomena[g] = {"acc": _mean([files[n]["acc"] for n in names]),
                        "correct": sum(files[n]["correct"] for n in names),
                        "total": sum(files[n]["total"] for n in names), "files": names}
    supplement = {n: files[n]["acc"] for n in groups.get(SUPPLEMENT, [])}
    averages = {"phenomena": _mean([v["acc"] for v in phenomena.values()]),
                "supplement": _mean(list(supplement.values())),
                "files": _mean([f["acc"] for f in blimp.values()])}

    suites = {}
    for suite in SUITES:
        names = [n for n, f in files.items() if f["suite"] == suite]
        if not names:
            continue
        if suite == "entity_tracking":  # the organisers: each file's mean over its subsets, then the files' mean
            rows = {k: subsets[k]["acc"] for k in sorted(subsets, key=lambda k: _subset_key(k, subsets[k]["file"]))}
            splits = {n: _mean([a for k, a in rows.items() if subsets[k]["file"] == n]) for n in names}
            suites[suite] = {"rows": rows, "splits": splits, "avg": _mean(list(splits.values()))}
        else:
            key = "spearman" if suite == "wug" else "acc"
            rows = {n: files[n][key] for n in names}
            vals = [v for v in rows.values() if v is not None]
            suites[suite] = {"rows": rows, "avg": _mean(vals)}
    acc_files = [f for f in files.values() if "acc" in f]
    return {"files": files, "phenomena": phenomena, "supplement": supplement, "averages": averages, "suites": suites,
            "counts": {"pairs": sum(f["total"] for f in files.values()),
                       "correct": sum(f["correct"] for f in acc_files), "files": len(files),
                       "phenomena": len(phenomena), "supplement_files": len(supplement)}}
