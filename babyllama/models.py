"""Model factory (GPT-2, LLaMA, GPT-J from the YAML ``model`` section), model loading, and the teacher ensemble.

The factory goes through transformers' config classes, so every model saves and loads with the Auto classes. Vocab
size and special-token ids come from the tokenizer. ``TeacherEnsemble`` wraps N causal LMs sharing a tokenizer and
acts as one: its logits are the (weighted) mean of theirs, the paper's "ensemble of teachers".
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import torch
from safetensors import safe_open
from torch import nn
from transformers import AutoModelForCausalLM, GPT2Config, GPTJConfig, LlamaConfig, OlmoeConfig
from transformers.modeling_outputs import CausalLMOutput

from babyllama.config import UserError
from babyllama.schema import ModelSection
from babyllama.losses import normalized_weights, teacher_log_probs
from tokenizer import load_tokenizer

# ----------------------------------------------------------------------------------------------------------------------
# building a fresh model from the YAML


def model_config(m: ModelSection, tokenizer, seq_length: int):
    """A transformers config for ``m``; ``max_position_embeddings`` defaults to 2*seq_length, as in the authors' code."""
    max_pos = m.max_position_embeddings or 2 * seq_length  # >= seq_length: TrainConfig checks it
    special = dict(vocab_size=len(tokenizer), bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
                   pad_token_id=tokenizer.pad_token_id)
    tie = {} if m.tie_word_embeddings is None else {"tie_word_embeddings": m.tie_word_embeddings}
    if m.type in ("llama", "moe"):
        common = dict(hidden_size=m.hidden_size, intermediate_size=m.intermediate_size, num_hidden_layers=m.num_layers,
                      num_attention_heads=m.num_heads, num_key_value_heads=m.num_kv_heads or m.num_heads,
                      max_position_embeddings=max_pos, attention_dropout=m.dropout,
                      rope_parameters={"rope_type": "default", "rope_theta": m.rope_theta}, **tie, **special)
        if m.type == "llama":
            return LlamaConfig(**common)
        # OLMoE: LLaMA blocks plus RMSNorm on q and k, the MLP replaced by num_experts MLPs and a linear router. With
        # norm_topk_prob false an expert's output is scaled by its softmax probability, as in Switch (with top-1,
        # Mixtral's renormalised weight would be 1 and the router would learn from the balancing loss alone). Every
        # token reaches its experts: there is no expert capacity (Switch's capacity factor) and no token is dropped.
        # output_router_logits stays false in the saved config, so scoring scripts get plain LM outputs; the trainers
        # ask for the router logits themselves (trainer_setup.BabyTrainer).
        return OlmoeConfig(num_experts=m.num_experts, num_experts_per_tok=m.experts_per_token, norm_topk_prob=False,
                           router_aux_loss_coef=m.router_aux_loss_coef, output_router_logits=False, **common)
    else:
        drop = dict(resid_pdrop=m.dropout if m.resid_pdrop is None else m.resid_pdrop,
                    embd_pdrop=m.dropout if m.embd_pdrop is None else m.embd_pdrop,
                    attn_pdrop=m.dropout if m.attn_pdrop is None else m.attn_pdrop)
        common = dict(n_embd=m.hidden_size, n_layer=m.num_layers, n_head=m.num_heads, n_inner=m.intermediate_size,
                      n_positions=max_pos, **drop, **tie, **special)
        if m.type == "gpt2":
            cfg = GPT2Config(**common)
        else:
            cfg = GPTJConfig(rotary_dim=m.rotary_dim or m.hidden_size // m.num_heads, **common)
    return cfg


def attn_implementation(m: ModelSection) -> str:
    # transformers has no SDPA path for GPT-J: it always runs the eager attention
    return "eager" if m.type == "gptj" else m.attn_implementation


def build_model(m: ModelSection, tokenizer, seq_length: int, device: str | torch.device | None = None):
    """A freshly initialised causal LM; ``device="meta"`` builds it without memory (for counting parameters)."""
    cfg = model_config(m, tokenizer, seq_length)
    if device == "meta":
        with torch.device("meta"):
            return AutoModelForCausalLM.from_config(cfg, attn_implementation=attn_implementation(m))
    return AutoModelForCausalLM.from_config(cfg, attn_implementation=attn_implementation(m))


def check_init_from(m: ModelSection, tokenizer, seq_length: int, folder) -> None:
    """``training.init_from`` must hold a model of the model section's architecture (same parameter names and
    shapes): checked on the meta device, before any long work."""
    from transformers import AutoConfig

    src_cfg = AutoConfig.from_pretrained(str(check_model_folder(folder, "training.init_from")))
    with torch.device("meta"):
        src = AutoModelForCausalLM.from_config(src_cfg)
    want = {k: tuple(v.shape) for k, v in build_model(m, tokenizer, seq_length, "meta").state_dict().items()}
    have = {k: tuple(v.shape) for k, v in src.state_dict().items()}
    if want != have:
        diff = next((k for k in sorted(set(want) | set(have)) if want.get(k) != have.get(k)))
        raise UserError(f"training.init_from {folder}: its architecture differs from the model section ({diff}: "
                        f"{have.get(diff)} there, {want.get(diff)} here); copy that model's settings into the model "
                        "section or pick another folder")


def initial_model(m: ModelSection, tokenizer, seq_length: int, init_from=None):
    """A fresh model, or with ``init_from`` one of the same architecture holding that folder's weights."""
    model = build_model(m, tokenizer, seq_length)
    if init_from:
        model.load_state_dict(load_causal_lm(init_from, role="training.init_from").state_dict())
    return model


def count_parameters(model) -> int:
    """Unique parameters (tied embeddings counted once)."""
    seen, total = set(), 0
    for p in model.parameters():
        if id(p) not in seen:
            seen.add(id(p))
            total += p.numel()
    return total


# ----------------------------------------------------------------------------------------------------------------------
# loading trained models


def weights_problem(path) -> str | None:
    """Why a weights or state file cannot be loaded, or None. Cheap: reads a safetensors header (which must cover the
    whole file) or a torch file's zip directory (at its end), so a file cut short by a kill or a full disk shows."""
    path = Path(path)
    try:
        if path.suffix == ".safetensors":
            with safe_open(str(path), "pt"):
                pass
        elif path.suffix in (".bin", ".pt", ".pth"):
            zipfile.ZipFile(path).close()
    except Exception as e:  # SafetensorError, BadZipFile, OSError: all mean "not loadable"
        return f"{path}: unreadable ({str(e).splitlines()[0][:120]})"
    return None


def check_model_folder(path, role: str = "model") -> Path:
    """A folder that loads as a causal LM: config.json and intact weights, else a one-line error."""
    folder = Path(path)
    if not (folder / "config.json").is_file():
        raise UserError(f"{folder}: no config.json in this {role} folder; point at a folder written by train.py or "
                        "distill_train.py (or any Hugging Face causal-LM folder)")
    weights = [p for p in folder.iterdir() if p.name.endswith((".safetensors", ".bin")) and p.name != "training_args.bin"]
    if not weights:
        raise UserError(f"{folder}: no weights (*.safetensors) in this {role} folder; its training did not finish: "
                        "resume it with --resume, or point at a finished model")
    for w in weights:
        problem = weights_problem(w)
        if problem:
            raise UserError(f"{problem}; the {role} weights are damaged: restore the file or train the {role} again")
    return folder


def load_causal_lm(path, dtype: torch.dtype | None = None, device=None, role: str = "model"):
    """Load a causal-LM folder (train.py's or distill_train.py's output, or any HF checkpoint)."""
    folder = check_model_folder(path, role)
    model = AutoModelForCausalLM.from_pretrained(str(folder), dtype=dtype or torch.float32)
    if device is not None:
        model.to(device)
    return model


def freeze(model):
    """Eval mode and no gradients: what a teacher needs."""
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    return model


def load_scorer(paths, dtype: torch.dtype = torch.float32, combine: str = "logits", weights=None, device=None):
    """A frozen causal LM, or a ``TeacherEnsemble`` of several sharing a tokenizer (checked), on ``device`` (default:
    CUDA when there is one): what every scoring stage loads."""
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    if len(paths) == 1:
        return freeze(load_causal_lm(paths[0], dtype=dtype, device=device))
    return freeze(TeacherEnsemble.from_pretrained(list(paths), weights, combine, dtype=dtype, device=device))


def check_same_vocab(name_a: str, tok_a, name_b: str, tok_b):
    """Teachers and student must share the tokenizer: same size and the same token-to-id map."""
    if len(tok_a) != len(tok_b):
        raise UserError(f"vocab size differs: {name_a} has {len(tok_a)}, {name_b} has {len(tok_b)}; teachers and "
                        "student must use the same tokenizer")
    va, vb = tok_a.get_vocab(), tok_b.get_vocab()
    if va != vb:
        diff = next(t for t in sorted(va) if vb.get(t) != va[t])
        raise UserError(f"token-to-id map differs: {diff!r} is {va[diff]} in {name_a} but {vb.get(diff)} in {name_b}; "
                        "teachers and student must use the same tokenizer")


def max_positions(config) -> int | None:
    return getattr(config, "max_position_embeddings", None) or getattr(config, "n_positions", None)


class TeacherEnsemble(nn.Module):
    """N causal LMs acting as one: its logits are the log-softmax of the weighted mean of theirs (``combine="logits"``,
    the paper), or the log of the weighted mean of their probabilities (``combine="probs"``). Returns a ``CausalLMOutput`` with the
    mean-token CE as ``loss`` when ``labels`` are given, like a transformers causal LM."""

    def __init__(self, models, weights=None, combine: str = "logits"):
        super().__init__()
        if not models:
            raise UserError("a teacher ensemble needs at least one model")
        self.models = nn.ModuleList(models)
        self.weights = normalized_weights(weights, len(models))
        self.combine = combine
        self.config = models[0].config  # vocab size and special ids are shared (checked by the loader)

    @classmethod
    def from_pretrained(cls, paths, weights=None, combine="logits", dtype=None, device=None):
        models, first_tok = [], None
        for p in paths:
            tok = load_tokenizer(p)
            if first_tok is None:
                first_tok = tok
            else:
                check_same_vocab(str(paths[0]), first_tok, str(p), tok)
            models.append(freeze(load_causal_lm(p, dtype=dtype, device=device)))
        return cls(models, weights, combine)

    def forward(self, input_ids, attention_mask=None, labels=None, **kw):
        # log-probabilities are valid logits: softmax(log p) = p
        logits = teacher_log_probs([m(input_ids=input_ids, attention_mask=attention_mask).logits for m in self.models],
                                   self.weights, self.combine)
        loss = None
        if labels is not None:
            loss = nn.functional.cross_entropy(logits[:, :-1].flatten(0, 1).float(), labels[:, 1:].flatten(),
                                               ignore_index=-100)
        return CausalLMOutput(loss=loss, logits=logits)
