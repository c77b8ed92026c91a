"""What a pipeline will cost before it runs: per stage, tokens per epoch, epochs, FLOPs, memory at the configured
micro-batch, projected hours on named cards and whether the stage fits each card's memory; then a total.
``run_pipeline.py --dry-run`` prints it; ``run_pipeline.py --smoke`` (smoke.py) measures the same stages here.

FLOPs (``forward_flops``): Kaplan et al. 2020 ("Scaling laws for neural language models", Table 1): a forward pass
costs 2*N FLOPs per token, N the parameters that take part in matmuls (every weight but the input and position
embeddings; the LM head counted, tied or not), plus the attention scores and values, 2*n_ctx*d_model each per layer
(the causal mask not exploited, as Hoffmann et al. 2022, appendix F, count them). Training costs 3 forwards (the
backward pass is twice the forward): 6*N + 12*n_layer*n_ctx*d_model per token. A teacher runs forward only.

Memory (``train_memory``, bytes of one process at a micro-batch of b sequences of s tokens):
  weights 4P (fp32 master weights; bf16/fp16 run under autocast), gradients 4P, AdamW's two moments 8P, and under
  autocast its 16-bit copy of every matmul weight, 2N;
  activations per layer (``activation_bytes``): Korthikanti et al. 2022 ("Reducing activation recomputation in large
  transformer models", eq. 2: s*b*h*(34 + 5*a*s/h) bytes for 16-bit activations of a GPT block with a 4h GELU MLP and
  dropout) counted term by term, so the same sum covers fp32, grouped-query attention, LLaMA's SwiGLU MLP, no dropout
  and SDPA's fused kernels (which keep no s x s matrix);
  logits: a pretraining step keeps [b,s,V] logits, their fp32 copy and fp32 log-softmax in the loss; a distillation
  step keeps the student's logits, each live teacher's, and the fused loss's chunk buffers (4 x chunk x V floats);
  live teachers: their weights in the teacher precision.

Hours on a card are FLOPs / (peak dense bf16 TFLOP/s x utilisation); the utilisation is UTILISATION unless the last
``--smoke`` ran on a GPU, whose measured utilisation per stage is used instead. A stage fits a card when its memory
is at most USABLE of the card's; when it does not, the plan names the micro-batch that would.
"""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

GIB = 2 ** 30
UTILISATION = 0.30  # share of the peak a training step reaches (default; README: what the paper's times imply)
USABLE = 0.90  # share of a card's memory a run may fill: the CUDA context and the allocator's slack take the rest
# raw BabyLM strict-small text per token of the paper's 16000 BPE: 3.87 bytes (1.22 tokens per word), measured on the
# 4 sources of the local copy (6.94 MB, 1.79M tokens); used where no token cache counts the tokens exactly
BYTES_PER_TOKEN = 3.87
TOKENS_PER_ITEM = 32  # a zero-shot pair: two sentences of about 16 tokens with the prefix (eval.yaml)


@dataclasses.dataclass(frozen=True)
class Card:
    name: str
    tflops: float  # peak dense bf16 TFLOP/s, tensor cores with FP32 accumulate (the vendor's data sheet)
    gib: float  # memory


# RTX 3090: GA102 whitepaper, appendix A (71 dense; GeForce accumulates FP32 at half rate); A100 80GB SXM: 312;
# H100 SXM5: 989 (1979 is with 2:4 sparsity)
CARDS = (Card("RTX 3090", 71.0, 24.0), Card("A100 80GB", 312.0, 80.0), Card("H100 SXM", 989.0, 80.0))
PEAKS = {"3090": 71.0, "A100": 312.0, "H100": 989.0, "H200": 989.0}  # by device name, for a measured utilisation


def peak_of(device_name: str) -> float | None:
    """Peak dense bf16 TFLOP/s of a CUDA device by its name, or None when it is not one of PEAKS."""
    return next((v for k, v in PEAKS.items() if k in device_name), None)


# ----------------------------------------------------------------------------------------------------------------------
# a model's shape, FLOPs and memory


class VocabOnly:
    """What ``models.build_model`` reads from a tokenizer: its size and special ids (the plan runs before the
    tokenizer exists)."""

    def __init__(self, vocab_size: int):
        self.vocab_size = vocab_size
        self.pad_token_id, self.bos_token_id, self.eos_token_id = 0, 1, 2

    def __len__(self):
        return self.vocab_size


@dataclasses.dataclass(frozen=True)
class Shape:
    params: int  # unique parameters (tied embeddings once)
    matmul: int  # N: the parameters of the matmuls a token runs through (input/position embeddings out, LM head in)
    layers: int
    hidden: int
    heads: int
    kv_hidden: int  # width of K and V (hidden, or less with grouped-query attention)
    inner: int  # MLP width a token goes through (moe: times experts_per_token)
    vocab: int
    gated: bool = False  # SwiGLU MLP (llama, moe)
    dropout: bool = False  # residual dropout: a 1-byte mask after attention and after the MLP
    attn_dropout: bool = False
    eager: bool = False  # eager attention keeps the s x s scores; SDPA's fused kernels do not


def matmul_params(model) -> int:
    """Parameters that take part in matmuls: everything but the input/position embeddings (+ a tied lm_head)."""
    from babyllama.models import count_parameters

    total = count_parameters(model)
    emb = model.get_input_embeddings().weight
    total -= emb.numel()
    total -= sum(mod.weight.numel() for name, mod in model.named_modules() if name.endswith("wpe"))
    out = model.get_output_embeddings()
    if out is not None and out.weight is emb:
        total += out.weight.numel()
    return total


def shape_of(m, vocab: int, seq_length: int) -> Shape:
    """The Shape of a ``ModelSection`` with this vocabulary, built on the meta device by the repo's model factory."""
    from babyllama.models import attn_implementation, build_model, count_parameters

    model = build_model(m, VocabOnly(vocab), seq_length, device="meta")
    inner = m.intermediate_size or 4 * m.hidden_size
    matmul = matmul_params(model)
    if m.type == "moe":  # a token runs through experts_per_token of the num_experts MLPs (3 matrices each)
        matmul -= m.num_layers * (m.num_experts - m.experts_per_token) * 3 * m.hidden_size * inner
        inner *= m.experts_per_token
    resid = m.dropout if m.resid_pdrop is None else m.resid_pdrop
    attn = m.dropout if m.attn_pdrop is None or m.type in ("llama", "moe") else m.attn_pdrop
    return Shape(params=count_parameters(model), matmul=matmul, layers=m.num_layers, hidden=m.hidden_size,
                 heads=m.num_heads, kv_hidden=m.hidden_size * (m.num_kv_heads or m.num_heads) // m.num_heads,
                 inner=inner, vocab=vocab, gated=m.type in ("llama", "moe"),
                 dropout=m.type in ("gpt2", "gptj") and resid > 0, attn_dropout=attn > 0,
                 eager=attn_implementation(m) == "eager")


def shape_of_folder(folder) -> Shape:
    """The Shape of a saved model folder (a teacher the plan does not train), from its config.json."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    from babyllama.models import count_parameters

    cfg = AutoConfig.from_pretrained(str(folder))
    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(cfg)
    get = lambda *names: next(getattr(cfg, n) for n in names if getattr(cfg, n, None) is not None)  # noqa: E731
    hidden, heads = get("hidden_size", "n_embd"), get("num_attention_heads", "n_head")
    return Shape(params=count_parameters(model), matmul=matmul_params(model), layers=get("num_hidden_layers", "n_layer"),
                 hidden=hidden, heads=heads, kv_hidden=hidden * (getattr(cfg, "num_key_value_heads", None) or heads)
                 // heads, inner=getattr(cfg, "intermediate_size", None) or getattr(cfg, "n_inner", None) or 4 * hidden,
                 vocab=cfg.vocab_size, gated=cfg.model_type in ("llama", "olmoe"))


def known_shape(folder, shapes: dict) -> Shape | None:
    """The Shape of a model folder: of the stage that trains it (``shapes``), else of its config.json, else None (not
    trained yet, nor by this plan)."""
    if str(Path(folder)) not in shapes and (Path(folder) / "config.json").is_file():
        shapes[str(Path(folder))] = shape_of_folder(folder)
    return shapes.get(str(Path(folder)))


def forward_flops(s: Shape, seq_length: int) -> float:
    """FLOPs of one forward pass per token (Kaplan et al. 2020, Table 1, with the attention values counted)."""
    return 2.0 * s.matmul + 4.0 * s.layers * seq_length * s.hidden


def train_flops(s: Shape, seq_length: int) -> float:
    """FLOPs of one training step per token: forward + backward = 3 forwards."""
    return 3.0 * forward_flops(s, seq_length)


def activation_bytes(s: Shape, batch: int, seq_length: int, p: int) -> int:
    """Activations a training step keeps for the backward pass, in bytes, ``p`` bytes per element (2: bf16/fp16
    autocast, 4: fp32). Per layer, Korthikanti et al. 2022's terms: the inputs of the QKV and output projections, Q, K
    and V, of each norm and of the MLP's matrices; 1-byte dropout masks; with eager attention the softmax (and its
    dropout mask and output). Then the final norm's and the LM head's inputs."""
    t, h = batch * seq_length, s.hidden
    mask = t * h if s.dropout else 0
    attn = p * t * (h + h + 2 * s.kv_hidden + h) + mask
    if s.eager:
        attn += batch * s.heads * seq_length ** 2 * (p + (1 + p if s.attn_dropout else 0))
    mlp = p * t * h + p * t * s.inner * (4 if s.gated else 2) + mask  # SwiGLU: gate, up, act(gate), product
    return s.layers * (attn + mlp + 2 * p * t * h) + 2 * p * t * h


def train_memory(s: Shape, batch: int, seq_length: int, p: int, teachers=(), loss_chunk: int | None = None,
                 cache_k: int | None = None) -> dict[str, int]:
    """Bytes of one training process by part; ``teachers``: (Shape, bytes per weight) of each live teacher; a
    distillation step (``loss_chunk`` given) keeps bf16-or-fp32 student logits and the fused loss's chunk buffers
    instead of the pretraining loss's fp32 copies; ``cache_k``: its teacher comes from the top-k cache."""
    t = batch * seq_length
    out = {"weights": 4 * s.params, "gradients": 4 * s.params, "adamw": 8 * s.params,
           "autocast_copies": 2 * s.matmul if p < 4 else 0, "activations": activation_bytes(s, batch, seq_length, p)}
    if loss_chunk is None:
        out["logits"] = t * s.vocab * (p + 4 + (4 if p < 4 else 0))
    else:
        out["logits"] = t * s.vocab * p + 16 * min(loss_chunk, t) * s.vocab + sum(t * ts.vocab * tp for ts, tp in teachers)
        if cache_k:
            out["logits"] += t * cache_k * 12  # top-k ids (int64) and log-probabilities (fp32)
        out["teachers"] = sum(ts.params * tp for ts, tp in teachers)
    out["total"] = sum(out.values())
    return out


def fit_suggestion(total_at, batch: int, per_device: int, card_gib: float) -> str | None:
    """None when ``total_at(per_device)`` fits ``card_gib``; else the largest micro-batch dividing ``batch`` that
    fits, as the setting that would do it, or why none does."""
    limit = USABLE * card_gib * GIB
    if total_at(per_device) <= limit:
        return None
    fits = [d for d in range(per_device - 1, 0, -1) if batch % d == 0 and total_at(d) <= limit]
    if fits:
        return (f"training.per_device_batch_size={fits[0]} (gradient accumulation {batch // fits[0]}) would fit this "
                f"batch in {card_gib:g} GiB")
    return (f"does not fit {card_gib:g} GiB even one sequence at a time ({total_at(1) / GIB:.1f} GiB); use a larger "
            "card or several GPUs (FSDP)")


# ----------------------------------------------------------------------------------------------------------------------
# the data a stage reads


def corpus_files(folder) -> list[Path]:
    """The corpus files of a split folder ([] while it does not exist)."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix in (".train", ".dev", ".test"))


def tokenizer_size(folder) -> int | None:
    """Entries of a trained tokenizer folder (the models' vocabulary), or None before it is trained."""
    path = Path(folder) / "tokenizer.json"
    return len(json.loads(path.read_text())["model"]["vocab"]) if path.is_file() else None


def count_tokens(folder, data, share: float, bytes_per_token: float, words: int | None = None) -> tuple[float, str]:
    """(tokens of a split folder's files, how they were counted): exact from the token cache when the tokenizer and
    its cache exist (as built by training), else the files' bytes / ``bytes_per_token``. ``words``: the tokens of a
    corpus of that many words at the tokens per word of these files."""
    import numpy as np

    from babylm_dataset import token_cache_key

    files = corpus_files(folder)
    if not files:
        return 0.0, f"no data in {folder} yet"
    tokens, how = None, "exact (token cache)"
    if (Path(data.tokenizer_dir) / "tokenizer.json").is_file():
        key = token_cache_key(files, data.tokenizer_dir, data.separator, data.separator_every, share)
        cached = Path(data.cache_dir) / f"{Path(folder).name}-{key}.npy"
        if cached.is_file():
            tokens = float(len(np.load(cached, mmap_mode="r")))
    if tokens is None:
        tokens = share * sum(f.stat().st_size for f in files) / bytes_per_token
        how = f"estimated at {bytes_per_token:.2f} bytes per token"
    if words:
        have = share * sum(len(f.read_bytes().split()) for f in files)
        tokens, how = tokens * words / have, f"{words:,} words at the {tokens / have:.3f} tokens per word of {folder}"
    return tokens, how


def curriculum_passes(data, folder, epochs: float) -> float:
    """Passes over the whole split a curriculum makes: ``epochs`` on bucket 1, then on buckets 1-2, ... (by bytes)."""
    files = corpus_files(folder)
    total = sum(f.stat().st_size for f in files) or 1
    seen, passes = set(), 0.0
    for bucket in data.buckets():
        seen |= set(bucket)
        passes += epochs * sum(f.stat().st_size for f in files if f.name.split(".")[0] in seen) / total
    return passes


# ----------------------------------------------------------------------------------------------------------------------
# the plan of a pipeline


@dataclasses.dataclass
class Row:
    stage: str
    kind: str
    params: int = 0
    tokens: float = 0.0  # per epoch
    epochs: float = 0.0
    flops: float = 0.0
    micro: int = 0  # per-device micro-batch
    accumulation: int = 0
    memory: dict | None = None  # train_memory at the micro-batch, bytes
    memory_at: object = None  # micro-batch -> total bytes, for fit suggestions
    batch: int = 0
    steps: int = 0  # optimizer steps of the whole stage
    eval_seqs: int = 0  # sequences evaluated over the whole stage
    step_flops: float = 0.0  # FLOPs per trained sequence (a live distillation: with its teachers' forward)
    how: str = ""  # how the tokens were counted
    utilisation: float | None = None  # measured by the last --smoke on a GPU


def precision_bytes(precision: str) -> int:
    """Activation bytes on a GPU: auto means bf16 there (every card of CARDS has it)."""
    return 4 if precision == "fp32" else 2


def training_row(name: str, kind: str, cfg, shapes: dict, vocab: int, raw: Path, bytes_per_token: float,
                 words: int | None) -> Row:
    """The Row of a train or distill stage at its configured batch; ``raw``: the folder of the raw split folders,
    read while the cleaned ones do not exist yet."""
    from babyllama.trainer_setup import batch_plan

    d, t, seq = cfg.data, cfg.training, cfg.data.seq_length
    s = shape_of(cfg.model, vocab, seq)
    shapes[str(Path(t.output_dir))] = s
    train_dir, dev_dir = (Path(f) if corpus_files(f) else Path(raw) / Path(f).name for f in (d.train_dir, d.dev_dir))
    tokens, how = count_tokens(train_dir, d, d.train_share, bytes_per_token, words)
    dev_tokens, _ = count_tokens(dev_dir, d, 1.0, bytes_per_token)
    epochs = curriculum_passes(d, train_dir, t.num_epochs) if d.curriculum else t.num_epochs
    per_device, accum = batch_plan(t)
    steps = t.max_steps if t.max_steps > 0 else math.ceil(epochs * math.ceil(tokens / seq) / t.batch_size)
    if t.max_steps > 0:
        epochs = min(epochs, steps * t.batch_size * seq / max(tokens, 1))
    evals = math.ceil(t.num_epochs) * max(1, len(d.buckets())) + (steps // t.eval_steps if t.eval_steps else 0)
    eval_seqs = evals * min(d.eval_samples, math.ceil(dev_tokens / seq))
    p = precision_bytes(t.precision)
    per_token, flops = train_flops(s, seq), eval_seqs * seq * forward_flops(s, seq)
    mem = lambda b: train_memory(s, b, seq, p)  # noqa: E731
    if kind == "distill":
        dist = cfg.distillation
        tp = 4 if dist.teacher_precision == "fp32" else 2
        teachers = [(known_shape(f, shapes), tp) for f in dist.teachers if known_shape(f, shapes)]
        teach = sum(forward_flops(ts, seq) for ts, _ in teachers)
        if dist.teacher_cache:  # the teachers run once over the distinct chunks and the eval chunks, then never
            flops += (tokens + min(d.eval_samples * seq, dev_tokens)) * teach
            live = teachers if dist.teacher_cache_miss == "live" else []
            mem = lambda b: train_memory(s, b, seq, p, live, dist.loss_chunk_size, dist.teacher_cache_topk)  # noqa: E731
        else:
            per_token += teach
            flops += eval_seqs * seq * teach
            mem = lambda b: train_memory(s, b, seq, p, teachers, dist.loss_chunk_size)  # noqa: E731
    flops += epochs * tokens * per_token
    return Row(name, kind, s.params, tokens, epochs, flops, per_device, accum, mem(per_device),
               lambda b: mem(b)["total"], t.batch_size, steps, eval_seqs, per_token * seq, how)


def scoring_row(name: str, kind: str, scorers: dict, shapes: dict, tokens: float, seq_length: int, how: str,
                weights_bytes: int = 4) -> Row:
    """A forward-only stage: every scorer (an ensemble: each member) over ``tokens``; memory: the largest scorer's
    weights."""
    members = [[known_shape(f, shapes) for f in folders if known_shape(f, shapes)] for folders in scorers.values()]
    flops = sum(tokens * forward_flops(s, seq_length) for ms in members for s in ms)
    weights = max((sum(s.params for s in ms) for ms in members), default=0) * weights_bytes
    return Row(name, kind, tokens=tokens, epochs=1, flops=flops, memory={"weights": weights, "total": weights}, how=how)


def pair_count(folder, max_per_file: int | None) -> int:
    """Items in a folder of JSON-lines pair files (at most ``max_per_file`` each)."""
    count = 0
    for f in sorted(Path(folder).rglob("*.jsonl")) if Path(folder).is_dir() else []:
        n = sum(1 for line in f.open(encoding="utf-8") if line.strip())
        count += min(n, max_per_file) if max_per_file else n
    return count


def measured_utilisation(smoke_json: Path) -> tuple[dict[str, float], str]:
    """{stage: utilisation} measured by the last --smoke on a recognised GPU, and its device name ({} and "" when the
    last smoke ran on a CPU, or there is none)."""
    try:
        smoke = json.loads(Path(smoke_json).read_text())
    except (OSError, ValueError):
        return {}, ""
    peak = peak_of(smoke.get("device", ""))
    if not smoke.get("device", "").startswith("cuda") or peak is None:
        return {}, ""
    return ({r["stage"]: r["achieved_tflops"] / peak for r in smoke.get("stages", []) if r.get("achieved_tflops")},
            smoke["device"])


def dev_folder(plan) -> Path:
    """A pipeline Plan's dev split: cleaned, or raw before the clean stage ran."""
    clean = plan.clean / plan.p.dev_split
    return clean if corpus_files(clean) else plan.raw / plan.p.dev_split


def pipeline_plan(plan, names: list[str], words: int | None = None, smoke_json=None) -> tuple[list[Row], str]:
    """The Rows of the stages ``names`` of a run_pipeline ``Plan`` (the stages that would run), in order, and the GPU
    whose measured utilisation they use ("" for none; ``smoke_json`` defaults to the last smoke's,
    <work_dir>-smoke/smoke.json). Model folders the plan trains are sized from their stage's config; any other from
    its config.json."""
    shapes, rows = {}, []
    vocab = tokenizer_size(plan.tokenizer) or plan.config(next(s for s in plan.stages
                                                                if s.kind == "tokenizer")).tokenizer.vocab_size
    measured, device = measured_utilisation(smoke_json or Path(str(plan.work) + "-smoke") / "smoke.json")
    bpt = BYTES_PER_TOKEN
    dev = dev_folder(plan)
    for stage in plan.stages:  # every model stage sizes its folder, so later stages find their teachers and scorers
        if stage.kind in ("train", "distill"):
            row = training_row(stage.name, stage.kind, plan.config(stage), shapes, vocab, plan.raw, bpt, words)
            row.utilisation = measured.get(stage.name)
        elif stage.kind == "gap":  # minutes of gradient ascent on a trained model: its shape, for the scorers
            shapes[str(plan.model_dir(stage.model))] = shapes.get(str(plan.model_dir(stage.init_from)))
            continue
        elif stage.kind == "eval" and stage.name in names:
            e = plan.config(stage).eval
            scorers = {**{n: [f] for n, f in e.models.items()}, **{n: e.ensemble(n).models for n in e.ensembles}}
            items = sum(pair_count(d, e.max_pairs_per_file) for d in e.dirs())
            row = scoring_row(stage.name, stage.kind, scorers, shapes, items * TOKENS_PER_ITEM, TOKENS_PER_ITEM,
                              f"{items:,} items x {TOKENS_PER_ITEM} tokens")
        elif stage.kind in ("text", "aoa") and stage.name in names:  # the dev split (aoa: its CHILDES file)
            share = plan.p.dev_text_share if stage.kind == "text" else 1.0
            size = sum(f.stat().st_size for f in corpus_files(dev) if stage.kind == "text" or
                       f.name.startswith("aochildes"))
            row = scoring_row(stage.name, stage.kind, plan.scorers(stage), shapes, share * size / bpt,
                              plan.text_seq_length(), f"estimated at {bpt:.2f} bytes per token")
        else:
            continue
        if stage.name in names:
            rows.append(row)
    return rows, device


def hours(row: Row, card: Card, utilisation: float) -> float:
    return row.flops / (card.tflops * 1e12 * (row.utilisation or utilisation)) / 3600


def _si(x: float) -> str:
    for unit, v in (("T", 1e12), ("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if x >= v:
            return f"{x / v:.2f}{unit}"
    return f"{x:.0f}"


def describe(rows: list[Row], device: str = "", utilisation: float = UTILISATION, names=()) -> str:
    """The plan as a Markdown table, the memory verdicts with their fixes, and the total per card; ``names``: every
    stage that would run (those without a row are listed as not planned)."""
    util = (f"utilisation measured by the last --smoke on {device} (stages it measured), else {utilisation:.0%}"
            if device else f"utilisation {utilisation:.0%}")
    lines = ["compute plan: FLOPs per Kaplan et al. 2020 (6N + 12 n_layer n_ctx d per trained token, a third of it per "
             f"forward token); memory per Korthikanti et al. 2022; {util}; a stage fits when its memory is at most "
             f"{USABLE:.0%} of the card's",
             "cards (peak dense bf16 TFLOP/s, memory): " + ", ".join(f"{c.name} {c.tflops:g}, {c.gib:g} GiB"
                                                                    for c in CARDS), "",
             "| stage | params | tokens/epoch | epochs | PFLOP | micro-batch x accumulation | memory GiB | "
             + " | ".join(f"{c.name} h" for c in CARDS) + " |",
             "|---" * (7 + len(CARDS)) + "|"]
    fixes, hows = [], {}
    for r in rows:
        verdicts = []
        for c in CARDS:
            fix = fit_suggestion(r.memory_at, r.batch, r.micro, c.gib) if r.memory_at else (
                None if r.memory["total"] <= USABLE * c.gib * GIB else f"does not fit {c.gib:g} GiB")
            verdicts.append(f"{hours(r, c, utilisation):.2f}" + (" OOM" if fix else ""))
            if fix:
                fixes.append(f"- {r.stage} on the {c.name}: {fix}")
        batch = f"{r.micro} x {r.accumulation}" if r.micro else "-"
        params = f"{r.params / 1e6:.1f}M" if r.params else "-"
        lines.append(f"| {r.stage} | {params} | {_si(r.tokens)} | {r.epochs:.3g} | {r.flops / 1e15:.2f} | {batch} | "
                     f"{r.memory['total'] / GIB:.1f} | " + " | ".join(verdicts) + " |")
        hows.setdefault(r.how, []).append(r.stage)
    total = [sum(hours(r, c, utilisation) for r in rows) for c in CARDS]
    lines.append(f"| **total** | | | | {sum(r.flops for r in rows) / 1e15:.1f} | | | "
                 + " | ".join(f"**{h:.2f}**" for h in total) + " |")
    lines += ["", "GPU-hours, all stages: " + ", ".join(f"{c.name} {h:.1f} h" for c, h in zip(CARDS, total))]
    lines += ["memory: " + ("every stage fits every card at its micro-batch" if not fixes else "OOM where marked:")]
    lines += fixes + ["tokens: " + "; ".join(f"{', '.join(v)}: {k}" for k, v in hows.items())]
    others = [n for n in names if n not in {r.stage for r in rows}]
    if others:
        lines.append(f"not in the plan (CPU stages of minutes; finetune: its length is early stopping's): "
                     f"{', '.join(others)}; --smoke times them")
    return "\n".join(lines)
