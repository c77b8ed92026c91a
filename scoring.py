"""Zero-shot scoring of minimal pairs with a causal LM: reading pairs, encoding, the scorer, and accuracy summaries.

Three layouts of JSON-lines records, picked per file from the fields of its first record (field names are settings,
``eval.fields``; the defaults cover BLiMP, its BabyLM filter and supplement, and the common context layouts):

- ``blimp``: ``sentence_good`` / ``sentence_bad``. A sentence's score is ``log P(" " + sentence | <prefix>)``, as
  lm-evaluation-harness's ``blimp`` task: the sentence is the continuation of an empty context, written with the task's
  target delimiter (a leading space) and conditioned on one prefix token (BOS if the tokenizer has one, else EOS;
  ``eval.prefix=eos`` always uses EOS, as the 2023 BabyLM pipeline did).
- ``context``: a ``context`` and a good and a bad continuation (``sentence_good`` / ``sentence_bad``). Each is scored
  ``log P(" " + continuation | <prefix> + context)``: the context is tokenized as written, the continuation on its own
  with the leading space, and only the continuation's tokens count.
- ``two-context``: ``context_good`` / ``context_bad`` and one ``target``. Each context is scored
  ``log P(" " + target | <prefix> + context)``: the same rule, the target in both.

A score is the sum of the scored tokens' log-probabilities, without length normalisation; a pair is correct when
good >= bad (ties count as correct, like lm-eval's argmax, which picks the first choice). A pair whose two texts are
equal, or empty, is refused with the file and line.

The fast scorer gives the plain one's numbers (fp32: within 1e-4, the same decisions) with less work. The distinct
sequences (a sentence that occurs twice is scored once), sorted, are packed into rows that are prefix trees: a token
prefix shared by several sequences in a row (a pair's common beginning, the first words of neighbouring sentences) is
one node, computed once, and each node attends to its ancestors only (a 4-D attention mask, its depth as position).
Over all of BLiMP with a 16k BPE, rows of 128 tokens compute 38 % fewer token positions than a row per sentence (a
pair's shared prefix alone: 21 %). Rows are sorted by length, so a batch pads little.

Accuracies are reported per file, per BLiMP phenomenon (the 12 rows of the paper's Table 1, from ``linguistics_term``;
``s-selection`` counts as argument_structure; a phenomenon's accuracy is the mean of its files' accuracies, as lm-eval
averages its blimp group), and as macro averages: over phenomena, over supplement files (records without
``linguistics_term``, e.g. the BabyLM supplement), and over all files.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from transformers import AutoConfig

from babylm_dataset import trained_separator
from config import UserError
from schema import PairFields
from losses import teacher_log_probs
from models import TeacherEnsemble, check_model_folder, max_positions

# The 12 BLiMP phenomena, in the order of the paper's Table 1.
PHENOMENA = ("anaphor_agreement", "argument_structure", "binding", "control_raising", "determiner_noun_agreement",
             "ellipsis", "filler_gap_dependency", "irregular_forms", "island_effects", "npi_licensing", "quantifiers",
             "subject_verb_agreement")
TERM_ALIASES = {"s-selection": "argument_structure"}  # BLiMP's paper counts the two animacy paradigms here
SUPPLEMENT = "supplement"  # group of files whose records have no linguistics_term
LAYOUTS = ("blimp", "context", "two-context")


# ----------------------------------------------------------------------------------------------------------------------
# reading pairs


@dataclass(frozen=True)
class Pair:
    file: str  # file name without extension: the paradigm or supplement task
    line: int  # 1-based line in the file
    good: str  # blimp/context: the good sentence or continuation; two-context: the good context
    bad: str
    term: str | None = None  # linguistics_term as written, None when absent
    context: str = ""  # context layout: the context both continuations follow
    target: str = ""  # two-context layout: the continuation scored after each context
    layout: str = "blimp"

    @property
    def phenomenon(self) -> str:
        return phenomenon_of(self.term)

    def texts(self) -> tuple[tuple[str, str], tuple[str, str]]:
        """(context, continuation) of the good and of the bad item."""
        if self.layout == "two-context":
            return (self.good, self.target), (self.bad, self.target)
        return (self.context, self.good), (self.context, self.bad)


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
    """(layout, {role: field name}) for a record, or None when no layout's fields are all there."""
    good, bad = _first(rec, fields.good), _first(rec, fields.bad)
    if good and bad:
        ctx = _first(rec, fields.context)
        return ("context", {"good": good, "bad": bad, "context": ctx}) if ctx else ("blimp", {"good": good, "bad": bad})
    roles = {"good": _first(rec, fields.context_good), "bad": _first(rec, fields.context_bad),
             "target": _first(rec, fields.target)}
    return ("two-context", roles) if all(roles.values()) else None


def load_pairs(folder, max_pairs_per_file: int | None = None, fields: PairFields | None = None,
               layouts: dict | None = None, identical: str = "error") -> list[Pair]:
    """Every pair of every JSON-lines file in ``folder`` (sorted by file name), the first N per file if asked.

    The layout of a file is picked from its first record's fields; ``layouts``, when given, is filled with
    {file name: (layout, {role: field})} so a caller can say which it picked. A pair with two identical texts is
    an error, or kept as a tie (counted correct, as lm-eval does) with ``identical="tie"``."""
    fields = fields or PairFields()
    pairs = []
    for path in pair_files(folder):
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
        except UnicodeDecodeError as e:
            raise UserError(f"{path}: not UTF-8 text (byte {e.start})")
        n, picked = 0, None
        for i, text in enumerate(lines, 1):
            if max_pairs_per_file is not None and n >= max_pairs_per_file:
                break
            if not text.strip():
                continue
            try:
                rec = json.loads(text)
            except json.JSONDecodeError as e:
                raise UserError(f"{path}:{i}: not valid JSON ({e.msg})")
            if not isinstance(rec, dict):
                raise UserError(f"{path}:{i}: expected a JSON object with sentence_good and sentence_bad")
            if picked is None:
                picked = detect_layout(rec, fields)
                half = _first(rec, fields.good) or _first(rec, fields.bad)
                if picked is None and half:
                    missing = fields.bad[0] if half in fields.good else fields.good[0]
                    raise UserError(f"{path}:{i}: {missing} is missing (blimp layout; other names: eval.fields)")
                if picked is None:
                    raise UserError(f"{path}:{i}: no pair layout fits the fields {', '.join(rec)}; expected "
                                    f"{'/'.join(fields.good)} and {'/'.join(fields.bad)} (optionally with "
                                    f"{'/'.join(fields.context)}), or {'/'.join(fields.context_good)}, "
                                    f"{'/'.join(fields.context_bad)} and {'/'.join(fields.target)}; name yours in "
                                    "eval.fields")
                if layouts is not None:
                    layouts[path.name] = picked
            layout, roles = picked
            vals = {}
            for role, key in roles.items():
                if not isinstance(rec.get(key), str):
                    raise UserError(f"{path}:{i}: {key} is missing or not a string ({layout} layout)")
                vals[role] = rec[key]
            if not vals["good"].strip() or not vals["bad"].strip() or not vals.get("target", "x").strip():
                empty = next(roles[r] for r in ("good", "bad", "target") if r in vals and not vals[r].strip())
                raise UserError(f"{path}:{i}: {empty} is empty; every pair needs two non-empty texts")
            if vals["good"] == vals["bad"] and identical == "error":
                raise UserError(f"{path}:{i}: {roles['good']} and {roles['bad']} are identical, so the pair "
                                "counts as correct whatever the model; fix the line, or set eval.identical_pairs=tie "
                                "to count it as lm-eval does")
            term = rec.get("linguistics_term")
            pairs.append(Pair(path.stem, i, vals["good"], vals["bad"], term if term else None,
                              vals.get("context", ""), vals.get("target", ""), layout))
            n += 1
        if n == 0:
            raise UserError(f"{path}: no pairs in this file")
    return pairs


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
    """Token ids of [good_0, bad_0, good_1, ...] and where each one's scored continuation starts."""
    seqs: list[list[int]]
    starts: list[int]  # index of the first scored token in each sequence (1 for a BLiMP sentence)


def encode_pairs(tokenizer, pairs, prefix: str = "bos") -> Encoded:
    """Each item is ``[prefix] + tokens(context) + tokens(" " + continuation)``: two batched tokenizer calls."""
    items = [t for p in pairs for t in _as_pair(p).texts()]
    pid = prefix_token_id(tokenizer, prefix)
    conts = tokenizer([" " + c for _, c in items], add_special_tokens=False)["input_ids"]
    ctx_texts = sorted({c for c, _ in items if c})
    ctx_ids = dict(zip(ctx_texts, tokenizer(ctx_texts, add_special_tokens=False)["input_ids"])) if ctx_texts else {}
    seqs, starts = [], []
    for (c, _), ids in zip(items, conts):
        head = [pid] + ctx_ids.get(c, [])
        seqs.append(head + ids)
        starts.append(len(head))
    return Encoded(seqs, starts)


def check_encoded(pairs, enc: Encoded, limit: int | None = None, name: str = "the model",
                  identical: str = "error") -> list[Pair]:
    """Refuse items longer than the model's positions, and (unless ``identical="tie"``) a pair whose two items have the
    same token ids. Returns the pairs that tie that way."""
    ties = []
    for k, p in enumerate(pairs):
        a, b = enc.seqs[2 * k], enc.seqs[2 * k + 1]
        if a == b and enc.starts[2 * k] == enc.starts[2 * k + 1]:
            if identical == "error":
                raise UserError(f"{p.file} line {p.line}: the two sentences tokenize to the same ids, so the pair "
                                "counts as correct whatever the model; fix the line, or set eval.identical_pairs=tie")
            ties.append(p)
        if limit and max(len(a), len(b)) > limit:
            raise UserError(f"{p.file} line {p.line}: {max(len(a), len(b))} tokens exceed {name}'s {limit} positions")
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


def stream_scorers(models, ensembles) -> dict[str, list[str]]:
    """{name: [folders]} from ``--model NAME=PATH`` (or a bare folder, named after it) and ``--ensemble
    NAME=PATH1,PATH2`` flags of the text-stream stages (eval_text.py, eval_aoa.py)."""
    scorers = {}
    for text in models:
        name, sep, path = text.partition("=")
        name, path = (name, path) if sep else (Path(text).name, text)
        scorers[name] = [path]
    for text in ensembles:
        name, sep, paths = text.partition("=")
        if not sep or not name or not paths:
            raise UserError(f"--ensemble {text!r}: expected NAME=PATH1,PATH2")
        if name in scorers:
            raise UserError(f"name {name!r} is given twice; names must be unique")
        scorers[name] = [p for p in paths.split(",") if p]
    if not scorers:
        raise UserError("give at least one --model NAME=PATH or --ensemble NAME=PATH1,PATH2")
    if len(scorers) != len(models) + len(ensembles):
        raise UserError("two --model flags have the same name; name them: --model NAME=PATH")
    return scorers


def check_stream_scorers(scorers: dict[str, list[str]], seq_length: int, separator: str = "auto",
                         every: str = "lines") -> dict[str, tuple[str, str]]:
    """Before the first forward pass of a text-stream stage: every folder loads, takes ``seq_length`` positions, and an
    ensemble's models were trained with one separator. Returns {name: (separator, every)} to encode its text with
    (``auto``: as trained, from its config.yaml)."""
    if seq_length < 2:
        raise UserError(f"--seq-length {seq_length}: give at least 2")
    seps = {}
    for name, paths in scorers.items():
        for p in paths:
            check_model_folder(p)
        limit = min(filter(None, (max_positions(AutoConfig.from_pretrained(str(p))) for p in paths)), default=None)
        if limit and limit < seq_length:
            raise UserError(f"model {name!r} accepts {limit} positions; lower --seq-length (now {seq_length})")
        found = {trained_separator(p) if separator == "auto" else (separator, every) for p in paths}
        if len(found) > 1:
            raise UserError(f"ensemble {name!r}: its models were trained with different data.separator settings "
                            f"{sorted(found)}; give --separator to score them alike")
        seps[name] = found.pop()
    return seps


@torch.inference_mode()
def stream_log_probs(model, ids, seq_length: int, batch_size: int = 16) -> list[np.ndarray]:
    """log p(t_i | the tokens before it in its window) for i = 1 .. len(ids) - 1 of a flat id array (float32), read in
    windows of ``seq_length`` tokens that overlap by one: every token but the first is predicted exactly once, from at
    most seq_length - 1 tokens before it (as in training chunks). For a ``TeacherEnsemble`` the list holds the
    ensemble first, then each member, all from one forward pass per member; for a plain model, one array."""
    members = list(model.models) if isinstance(model, TeacherEnsemble) else [model]
    device = model_device(model)
    ids = torch.as_tensor(np.asarray(ids, dtype=np.int64))
    n = max(len(ids) - 1, 0)
    starts = list(range(0, n, seq_length - 1))
    out = [np.zeros(n, dtype=np.float32) for _ in range(len(members) + isinstance(model, TeacherEnsemble))]
    for b in range(0, len(starts), batch_size):
        batch = [ids[s:s + seq_length] for s in starts[b:b + batch_size]]
        width = max(len(w) for w in batch)
        x = torch.zeros(len(batch), width, dtype=torch.long)
        mask = torch.zeros(len(batch), width, dtype=torch.long)
        for r, w in enumerate(batch):
            x[r, :len(w)], mask[r, :len(w)] = w, 1
        x, mask = x.to(device), mask.to(device)
        target = x[:, 1:, None]
        logits = [m(input_ids=x, attention_mask=mask).logits[:, :-1].float() for m in members]
        # log p(target) = logit[target] - logsumexp(logits): no [B, T, V] log-softmax is written
        outputs = [t.gather(-1, target).squeeze(-1) - torch.logsumexp(t, -1) for t in logits]
        if len(out) > len(members):  # the ensemble's distribution, from the same member logits
            outputs.insert(0, teacher_log_probs(logits, model.weights, model.combine).gather(-1, target).squeeze(-1))
        for arr, logp in zip(out, outputs):
            logp = logp.cpu().numpy()
            for r, s in enumerate(starts[b:b + batch_size]):
                arr[s:s + len(batch[r]) - 1] = logp[r, :len(batch[r]) - 1]
    return out


def computed_positions(seqs, plain: bool = False, row_tokens: int = ROW_TOKENS) -> int:
    """Token positions a forward pass computes for ``seqs`` (without padding): what the FLOP count of the scorer is."""
    uniq = list(dict.fromkeys(tuple(s) for s in seqs))
    if plain:
        return sum(len(s) for s in uniq)
    return sum(len(tokens) for tokens, _, _ in tree_rows(uniq, row_tokens))


def score_encoded(model, enc: Encoded, batch_size: int = 64, progress: bool = False, desc: str = "scoring",
                  plain: bool = False) -> list[tuple[float, float]]:
    """(good, bad) summed log-probabilities of the continuations, for encoded pairs. The model is put in eval mode;
    ``plain`` scores each sentence in its own padded row (2 * batch_size rows per pass) instead of a row per pair."""
    model.eval()
    if plain:
        lp = token_logprobs_plain(model, enc.seqs, 2 * batch_size, progress, desc)
    else:
        lp = token_logprobs(model, enc.seqs, batch_size, progress, desc)
    s = [sum(x[start - 1:]) for x, start in zip(lp, enc.starts)]
    return list(zip(s[0::2], s[1::2]))


def score_pairs(model, tokenizer, pairs, batch_size: int = 64, prefix: str = "bos", progress: bool = False,
                desc: str = "scoring", plain: bool = False) -> list[tuple[float, float]]:
    """(good, bad) summed log-probabilities for each pair (a ``Pair`` or a ``(good, bad)`` tuple of strings)."""
    return score_encoded(model, encode_pairs(tokenizer, pairs, prefix), batch_size, progress, desc, plain)


# ----------------------------------------------------------------------------------------------------------------------
# per-pair logs (--log-pairs)


def pair_records(model_name: str, pairs, enc: Encoded, scores) -> list[dict]:
    """One JSON-able record per pair: where it came from, both texts, both log-likelihoods and scored-token counts."""
    out = []
    for k, (p, (good, bad)) in enumerate(zip(pairs, scores, strict=True)):
        rec = {"model": model_name, "file": p.file, "line": p.line, "layout": p.layout, "term": p.term,
               "good": p.good, "bad": p.bad}
        if p.layout == "context":
            rec["context"] = p.context
        if p.layout == "two-context":
            rec["target"] = p.target
        rec.update({"logp_good": good, "logp_bad": bad,
                    "tokens_good": len(enc.seqs[2 * k]) - enc.starts[2 * k],
                    "tokens_bad": len(enc.seqs[2 * k + 1]) - enc.starts[2 * k + 1]})
        out.append(rec)
    return out


def read_pair_log(path) -> tuple[str, list[Pair], list[tuple[float, float]]]:
    """(model name, pairs, scores) from a ``--log-pairs`` JSON-lines file."""
    path = Path(path)
    pairs, scores, name = [], [], None
    for i, text in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not text.strip():
            continue
        try:
            r = json.loads(text)
            pairs.append(Pair(r["file"], r["line"], r["good"], r["bad"], r.get("term"), r.get("context", ""),
                              r.get("target", ""), r.get("layout", "blimp")))
            scores.append((float(r["logp_good"]), float(r["logp_bad"])))
        except (json.JSONDecodeError, KeyError, TypeError, ValueError) as e:
            raise UserError(f"{path}:{i}: not a pair record of eval_blimp.py --log-pairs ({type(e).__name__}: {e})")
        name = name or r.get("model")
    if not pairs:
        raise UserError(f"{path}: no pair records in this file")
    return name or path.name.split(".")[0], pairs, scores


# ----------------------------------------------------------------------------------------------------------------------
# summaries


def _mean(xs):
    return sum(xs) / len(xs) if xs else None


def summarize(pairs, scores) -> dict:
    """Accuracies per file, per phenomenon and macro averages for ``pairs`` scored as ``scores`` (good, bad)."""
    files: dict[str, dict] = {}
    for p, (good, bad) in zip(pairs, scores, strict=True):
        f = files.setdefault(p.file, {"phenomenon": p.phenomenon, "correct": 0, "total": 0})
        f["correct"] += int(good >= bad)
        f["total"] += 1
    for f in files.values():
        f["acc"] = f["correct"] / f["total"]

    groups: dict[str, list[str]] = {}
    for name, f in files.items():
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
                "files": _mean([f["acc"] for f in files.values()])}
    return {"files": files, "phenomena": phenomena, "supplement": supplement, "averages": averages,
            "counts": {"pairs": sum(f["total"] for f in files.values()),
                       "correct": sum(f["correct"] for f in files.values()), "files": len(files),
                       "phenomena": len(phenomena), "supplement_files": len(supplement)}}
