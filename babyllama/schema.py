"""The config schema: one dataclass per YAML section (``data``, ``model``, ``training``, ...) and, at the bottom, the
root config of each stage script. Each field has a default or is required, and help text (``--help-config``);
``__post_init__`` checks name the key and the fix. config.py loads YAML into these classes."""

from __future__ import annotations

import dataclasses
import math
import re
from pathlib import Path
from typing import Any, Literal

from babyllama.config import ConfigError, check_range, convert, field

Precision = Literal["auto", "fp32", "bf16", "fp16"]


@dataclasses.dataclass
class CleanSection:
    input_dirs: list[str] = field(help="split folders of raw BabyLM files (e.g. data/babylm_10M data/babylm_dev)")
    output_dir: str = field(help="each split folder is cleaned into output_dir/<split folder name>")
    passthrough_unknown: bool = field(False, help="copy files of unknown sources unchanged instead of failing")
    style: Literal["ours", "authors"] = field(
        "ours", help="ours: mrclean.py's per-source cleaners, which do more (the README's deviations list each "
                     "difference); authors: the authors' mrclean.py output, byte for byte (blank lines and `` kept)")
    max_word_loss: float = field(0.5, help="warn when cleaning removes more than this share of a file's words, 0..1 "
                                           "(a word holds a letter or digit; on the 4 real sources ours removes at "
                                           "most 2%, so more means a wrong source name or a broken file); an input "
                                           "left empty is always warned")
    strict: bool = field(False, help="true: those warnings stop the run (exit 2) before any output is replaced")

    def __post_init__(self):
        if not self.input_dirs:
            raise ConfigError("clean.input_dirs", "give at least one split folder")
        if not 0 <= self.max_word_loss <= 1:  # also refuses nan
            raise ConfigError("clean.max_word_loss", f"{self.max_word_loss!r} is out of range; give a share of a "
                                                     "file's words in [0, 1], e.g. 0.5")


@dataclasses.dataclass
class TokenizerSection:
    train_dir: str = field(help="folder of cleaned *.train files; .dev/.test files are refused")
    output_dir: str = field(help="where the tokenizer folder is written (AutoTokenizer.from_pretrained loads it)")
    vocab_size: int = field(16000, help="BPE vocabulary size including the 256 byte symbols and specials (paper: 16000)")
    min_frequency: int = field(2, help="minimum pair count for a merge")
    max_word_chars: int | None = field(None, help="cut runs of more non-space characters than this into pieces of "
                                                  "this length before BPE (e.g. 64; natural text has no runs this "
                                                  "long outside URLs and junk). null: no cut, as GPT-2 and the paper; "
                                                  "a file with a run of over 1000 is then refused, as BPE on one such "
                                                  "word can take hours")

    def __post_init__(self):
        check_range("tokenizer", "vocab_size", self.vocab_size, 260, 1_000_000)
        check_range("tokenizer", "min_frequency", self.min_frequency, 1)
        check_range("tokenizer", "max_word_chars", self.max_word_chars, 1)


@dataclasses.dataclass
class DataSection:
    train_dir: str = field(help="folder of cleaned *.train files")
    dev_dir: str = field(help="folder of cleaned *.dev files; a fixed random subset of its chunks is the eval set")
    tokenizer_dir: str = field(help="tokenizer folder written by tokenizer.py")
    seq_length: int = field(128, help="tokens per chunk (paper: 128 for GPT-2 and the students, 256 for the LLaMA teacher)")
    random_offset: bool = field(False, help="shift each training chunk by a random 0..seq_length-1 tokens (paper footnote 5; "
                                           "off in the paper's final models)")
    eval_samples: int = field(8192, help="number of dev chunks in the eval subset (authors: 8192); capped at what exists")
    eval_seed: int = field(2023, help="seed that draws the eval subset; the same for every model so losses compare")
    separator: Literal["none", "<s>", "</s>"] = field(
        "none", help="a boundary token in the token stream (paper, authors' code: none; newlines stay tokens either "
                     "way): <s> before each line (or file), so the <s> that BLiMP scoring conditions on is a token the "
                     "model has seen; </s> after each")
    separator_every: Literal["lines", "files"] = field("lines", help="where the separator goes: at every line (an "
                                                                     "utterance or paragraph) or every file")
    train_share: float = field(1.0, help="train on the first share of each train file's lines, 0 < share <= 1 (paper: "
                                         "1, all; a documented subset that fits a compute budget, every source kept "
                                         "in proportion); the dev split is never cut")
    curriculum: str | None = field(
        None, help="curriculum learning (paper appendix B; null: off, all files shuffled together): buckets of "
                   "sources separated by |, e.g. 'aochildes | open_subtitles | switchboard cbt qed children_stories "
                   "bnc_spoken | simple_wikipedia gutenberg | wikipedia' (config/cpu-curriculum.yaml); "
                   "training.num_epochs epochs on bucket 1, then as many on buckets 1-2, and so on; a source without a "
                   "train file is skipped with a warning; `clean_data.py --readability DIR` proposes an order")
    cache_dir: str = field("cache", help="token-id cache, keyed by tokenizer and file contents")

    def buckets(self) -> list[list[str]]:
        """data.curriculum as a list of buckets, each a list of source names ([] when off)."""
        return [b.split() for b in self.curriculum.split("|")] if self.curriculum is not None else []

    def __post_init__(self):
        buckets = self.buckets()
        if any(not b for b in buckets):
            raise ConfigError("data.curriculum", f"{self.curriculum!r} has an empty bucket; separate buckets of "
                                                 "source names by single | (e.g. 'aochildes | cbt switchboard')")
        names = [n for b in buckets for n in b]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise ConfigError("data.curriculum", f"{twice[0]} is in more than one bucket; name each source once "
                                                 "(buckets are cumulative: a source stays in every later stage)")
        check_range("data", "train_share", self.train_share, 0, 1, lo_open=True)
        check_range("data", "seq_length", self.seq_length, 2, 1_000_000)
        check_range("data", "eval_samples", self.eval_samples, 1)


@dataclasses.dataclass
class ModelSection:
    type: Literal["llama", "gpt2", "gptj", "moe"] = field(
        help="architecture; moe: LLaMA-like blocks whose MLP is a mixture of experts (transformers' OLMoE class)")
    hidden_size: int = field(help="model width")
    num_layers: int = field(help="transformer blocks")
    num_heads: int = field(help="attention heads; must divide hidden_size")
    intermediate_size: int | None = field(None, help="MLP width (default: 4*hidden for gpt2/gptj, required for llama)")
    num_kv_heads: int | None = field(None, help="llama only: key/value heads for grouped-query attention (default: num_heads)")
    max_position_embeddings: int | None = field(None, help="positions the model accepts (default: 2*seq_length, as the "
                                                          "authors); must be >= data.seq_length")
    tie_word_embeddings: bool | None = field(None, help="tie input and output embeddings (default: transformers' per-type "
                                                        "default: true for gpt2, false for llama and gptj)")
    dropout: float = field(0.0, help="llama: attention dropout; gpt2/gptj: default for the three dropouts below")
    resid_pdrop: float | None = field(None, help="gpt2/gptj residual dropout (default: dropout)")
    embd_pdrop: float | None = field(None, help="gpt2/gptj embedding dropout (default: dropout)")
    attn_pdrop: float | None = field(None, help="gpt2/gptj attention dropout (default: dropout)")
    rope_theta: float = field(10000.0, help="llama RoPE base (gptj uses transformers' fixed base of 10000)")
    rotary_dim: int | None = field(None, help="gptj only: dimensions per head that get RoPE (default: head_dim)")
    attn_implementation: Literal["sdpa", "eager"] = field("sdpa", help="attention kernel")
    num_experts: int | None = field(None, help="moe only, required: experts per layer, each an MLP of "
                                               "intermediate_size (Switch Transformer: 8-128)")
    experts_per_token: int = field(1, help="moe only: experts each token is routed to (1: Switch's top-1; 2: Mixtral)")
    router_aux_loss_coef: float = field(0.01, help="moe only: weight of the router's load-balancing loss in the "
                                                   "training loss, 0..1 (Switch: 0.01)")

    def __post_init__(self):
        for name in ("hidden_size", "num_layers", "num_heads"):
            check_range("model", name, getattr(self, name), 1)
        if self.hidden_size % self.num_heads:
            raise ConfigError("model.num_heads", f"{self.num_heads} heads do not divide hidden_size {self.hidden_size}; "
                                                 "pick a divisor")
        if self.type in ("llama", "moe") and self.intermediate_size is None:
            raise ConfigError("model.intermediate_size", f"required for {self.type} (paper: 1024 for 58M, 3072 for "
                                                         "360M; moe: per expert)")
        if self.num_kv_heads is not None:
            if self.type not in ("llama", "moe"):
                raise ConfigError("model.num_kv_heads", "only llama and moe have grouped-query attention; remove the "
                                                        "key")
            if self.num_kv_heads < 1 or self.num_heads % self.num_kv_heads:
                raise ConfigError("model.num_kv_heads", f"{self.num_kv_heads} must divide num_heads {self.num_heads}")
        for name in ("dropout", "resid_pdrop", "embd_pdrop", "attn_pdrop"):
            check_range("model", name, getattr(self, name), 0.0, 1.0, hi_open=True)
        if self.rotary_dim is not None and self.type != "gptj":
            raise ConfigError("model.rotary_dim", "only gptj takes rotary_dim; remove the key")
        if self.type == "moe":
            if self.num_experts is None or self.num_experts < 1:
                raise ConfigError("model.num_experts", f"{self.num_experts}: a moe model needs at least 1 expert per "
                                                       "layer; give e.g. 8")
            if not 1 <= self.experts_per_token <= self.num_experts:
                raise ConfigError("model.experts_per_token", f"{self.experts_per_token}: give 1 (Switch) up to "
                                                             f"num_experts {self.num_experts}")
            check_range("model", "router_aux_loss_coef", self.router_aux_loss_coef, 0.0, 1.0)
        elif self.num_experts is not None:
            raise ConfigError("model.num_experts", f"only model.type moe has experts, not {self.type}; remove the key")


# TrainingArguments fields this schema sets from its own keys: giving them directly would be ignored or conflict
MANAGED_HF_ARGS = {
    "output_dir": "output_dir", "num_train_epochs": "num_epochs", "learning_rate": "lr",
    "lr_scheduler_type": "lr_scheduler", "per_device_train_batch_size": "batch_size / per_device_batch_size",
    "per_device_eval_batch_size": "batch_size / per_device_batch_size", "gradient_accumulation_steps": "batch_size",
    "bf16": "precision", "fp16": "precision", "use_cpu": "precision", "eval_strategy": "eval_steps",
    "save_strategy": "eval_steps", "save_steps": "eval_steps / save_minutes", "report_to": "report_to",
    "push_to_hub": "push_to_hub", "hub_model_id": "hub_model_id", "seed": "seed", "metric_for_best_model": None,
    "greater_is_better": None, "remove_unused_columns": None,
}


@dataclasses.dataclass
class TrainingSection:
    """Our keys below; any other key is a ``transformers.TrainingArguments`` option, passed through as it is
    (``training.max_grad_norm=0.5``, ``training.adam_beta2=0.95``, ``training.torch_compile=true`` ...), checked against
    TrainingArguments' own fields so a typo is refused. Defaults that differ from transformers': logging_steps 20,
    save_total_limit 2, load_best_model_at_end true."""

    passthrough_key = "hf_args"  # build() puts the other keys here, after check_passthrough

    output_dir: str = field(help="model, tokenizer, config.yaml, metrics.json and checkpoints go here")
    num_epochs: float = field(6.0, help="passes over the training chunks (with data.curriculum: per stage)")
    max_steps: int = field(-1, help="stop after this many optimizer steps (-1: use num_epochs)")
    batch_size: int = field(32, help="global batch in sequences per optimizer step")
    per_device_batch_size: int | None = field(None, help="micro-batch per device; gradient accumulation makes up the "
                                                         "global batch (default: the whole batch at once)")
    lr: float = field(3e-4, help="peak learning rate, in (0, 1]")
    lr_scheduler: Literal["cosine", "linear", "constant_with_warmup"] = field("cosine", help="schedule after warm-up")
    warmup_steps: int = field(200, help="linear warm-up steps (paper: 200)")
    weight_decay: float = field(0.0, help="AdamW weight decay")
    precision: Precision = field("auto", help="auto: bf16 where it is faster (CUDA with bf16, or a CPU whose bf16 "
                                              "matmul beats fp32, timed once), else fp32")
    seed: int = field(42, help="seed for weights init and data order")
    eval_steps: int | None = field(None, help="also evaluate and save every N steps (always at each epoch's end)")
    save_minutes: float | None = field(30.0, help="also save a checkpoint when this many minutes passed since the last "
                                                  "one, so a crash loses at most that much work (null: off)")
    report_to: Literal["none", "wandb", "tensorboard"] = field("none", help="logger (wandb works offline with "
                                                                            "WANDB_MODE=offline)")
    push_to_hub: bool = field(False, help="push the final model, tokenizer and a model card to the Hub (branch "
                                          "main), and each save_words checkpoint to its branch as it is written")
    hub_model_id: str | None = field(None, help="Hub repo id, e.g. user/baby-llama-58m; required with push_to_hub")
    blimp_dir: str | None = field(None, help="folder of BLiMP JSON-lines files scored during training (None: off)")
    blimp_steps: int = field(500, help="score the BLiMP subset every N steps")
    blimp_pairs_per_file: int = field(20, help="pairs per BLiMP file in that subset")
    init_from: str | None = field(None, help="start from this trained model folder's weights instead of a fresh init "
                                             "(its architecture must match the model section), e.g. SAM's extra epoch")
    optimizer: Literal["base", "sam"] = field(
        "base", help="base: the step of training.optim (transformers' AdamW by default); sam: sharpness-aware "
                     "minimisation around that step: the gradient is taken at w + sam_rho*g/|g|, g the whole "
                     "accumulated batch's gradient at w (two forward/backward passes per step)")
    sam_rho: float = field(0.05, help="SAM's neighbourhood radius, > 0 (Foret et al. 2021: 0.05)")
    save_words: Literal["babylm"] | list[int] | None = field(
        None, help="checkpoints by words seen (BabyLM 2025+ rules; a word: whitespace-separated, every epoch counted): "
                   "babylm: after 1M..10M words by 1M, then 20M..100M by 10M, then 200M..1000M by 100M, up to "
                   "word_budget; or a list of word counts, each a whole thousand (chck_250K, chck_1500K); null: off. "
                   "Each is the model folder <output_dir>/chck_<N>M with words_seen.json, at the first optimizer step "
                   "that reaches it; pushed to the Hub branch of that name with push_to_hub")
    word_budget: Literal["strict-small", "strict"] | int | None = field(
        None, help="refuse, before training, a run that would see more words than this (epochs x the words of one "
                   "epoch's chunks, or max_steps x batch): strict-small = 100M, strict = 1000M (BabyLM), or a "
                   "count; null: no limit")
    hf_args: dict[str, Any] = field({}, help="other TrainingArguments options; write them as training.<name> keys")

    @staticmethod
    def check_passthrough(name: str, value, key: str):
        """A key that is not ours must be a TrainingArguments field that we do not set ourselves."""
        if name in MANAGED_HF_ARGS:
            ours = MANAGED_HF_ARGS[name]
            raise ConfigError(key, f"set by this recipe{f' from training.{ours}' if ours else ''}; "
                                   f"{'use that key' if ours else 'remove the key'}")
        from transformers import TrainingArguments  # slow (seconds): imported only when a config passes an option

        hf = {f.name: f for f in dataclasses.fields(TrainingArguments) if f.init}
        if name not in hf:
            close = [n for n in hf if n.startswith(name[:4])][:4]
            raise ConfigError(key, "unknown key: neither a key of this section nor a transformers TrainingArguments "
                                   f"option{'; did you mean ' + ' / '.join(close) if close else ''}")
        default = hf[name].default
        for tp in (bool, int, float):  # the option's type, from its default
            if type(default) is tp:
                return convert(value, tp, key)
        return value

    def __post_init__(self):
        if not self.output_dir.strip():  # "" is the current folder: config.yaml and checkpoints would land there
            raise ConfigError("training.output_dir", "is empty; give the folder the model goes to, e.g. models/my-run")
        check_range("training", "num_epochs", self.num_epochs, 0, lo_open=True)
        if self.max_steps == 0 or self.max_steps < -1:
            raise ConfigError("training.max_steps", f"{self.max_steps}: give -1 (train num_epochs) or a positive count")
        check_range("training", "batch_size", self.batch_size, 1)
        check_range("training", "per_device_batch_size", self.per_device_batch_size, 1)
        if self.per_device_batch_size and self.batch_size % self.per_device_batch_size:
            raise ConfigError("training.per_device_batch_size", f"{self.per_device_batch_size} must divide batch_size "
                                                                f"{self.batch_size}")
        check_range("training", "lr", self.lr, 0, 1, lo_open=True)
        check_range("training", "warmup_steps", self.warmup_steps, 0)
        check_range("training", "weight_decay", self.weight_decay, 0, 1)
        check_range("training", "eval_steps", self.eval_steps, 1)
        check_range("training", "save_minutes", self.save_minutes, 0, lo_open=True)
        check_range("training", "blimp_steps", self.blimp_steps, 1)
        check_range("training", "blimp_pairs_per_file", self.blimp_pairs_per_file, 1)
        if not self.sam_rho > 0:  # also refuses nan
            raise ConfigError("training.sam_rho", f"{self.sam_rho!r}: SAM's radius must be > 0; give e.g. 0.05")
        for i, n in enumerate(self.save_words if isinstance(self.save_words, list) else []):
            if n <= 0 or n % 1000:
                raise ConfigError(f"training.save_words[{i}]", f"{n}: give a positive whole number of thousands of "
                                                               "words (checkpoints are named chck_<N>K / chck_<N>M)")
        if isinstance(self.word_budget, int) and self.word_budget <= 0:
            raise ConfigError("training.word_budget", f"{self.word_budget}: give a positive word count, strict-small, "
                                                      "strict or null")
        if self.push_to_hub and not self.hub_model_id:
            raise ConfigError("training.hub_model_id", "required when push_to_hub is true (e.g. user/baby-llama-58m)")
        hf = self.hf_args
        for name in ("max_grad_norm", "adam_beta1", "adam_beta2", "adam_epsilon", "logging_steps", "save_total_limit"):
            if name in hf and (not isinstance(hf[name], (int, float)) or hf[name] < 0):
                raise ConfigError(f"training.{name}", f"got {hf[name]!r}; expected a number >= 0")
        for name in ("adam_beta1", "adam_beta2"):
            check_range("training", name, hf.get(name), 0, 1, hi_open=True)
        for name in ("logging_steps", "save_total_limit"):
            check_range("training", name, hf.get(name), 1)


@dataclasses.dataclass
class DistillationSection:
    teachers: list[str] = field(help="teacher model folders (any number, any mix of gpt2/llama/gptj)")
    teacher_weights: list[float] | None = field(None, help="per-teacher weights in the mean (default: equal)")
    teacher_combine: Literal["logits", "probs"] = field("logits", help="average the teachers' logits (paper) or "
                                                                       "their temperature-softened probabilities")
    alpha: float = field(0.5, help="weight of the CE term; 1-alpha weighs the KL term (paper: 0.5)")
    temperature: float = field(2.0, help="softening temperature T of both distributions (paper: 2)")
    kl_normalization: Literal["batchmean", "token_mean"] = field(
        "batchmean", help="batchmean: KL summed over positions and divided by the batch size, as the authors' "
                          "KLDivLoss(reduction='batchmean') on [B,T,V] (the paper's numbers); token_mean: divided by the "
                          "number of scored tokens, like the CE (seq_length times smaller)")
    teacher_precision: Literal["auto", "fp32", "bf16"] = field("auto", help="teacher weights dtype (auto: as "
                                                                            "training.precision auto)")
    best_metric: Literal["loss", "ce"] = field("loss", help="pick the best checkpoint by eval mixed loss or eval CE")
    loss_chunk_size: int = field(256, help="positions per chunk in the loss: bounds its extra memory to about 4 x chunk x "
                                           "vocab floats (256: cache-sized on CPU; see BENCHMARKS.md)")
    teacher_cache: bool = field(False, help="write the teachers' top-k distribution of every train/eval chunk once "
                                            "(first use) and read it instead of running the teachers (needs "
                                            "data.random_offset false); see teacher_cache.py")
    teacher_cache_topk: int = field(64, help="tokens kept per position in the teacher cache (1..vocab; k=vocab is "
                                             "exact)")
    teacher_cache_dir: str | None = field(None, help="teacher cache folder (default: <data.cache_dir>/teacher); "
                                                     "entries are keyed by teacher contents, T, combine, k and data")
    teacher_cache_miss: Literal["error", "live"] = field(
        "error", help="a batch the cache does not hold: error: stop (the teachers are freed once the cache is complete, "
                      "saving their memory); live: keep the teachers loaded, run them on such batches and count the "
                      "misses in the logs")
    teacher_cache_tail: Literal["student", "uniform", "renorm"] = field(
        "student", help="cached loss outside the top-k: student: match the tail's total mass, leave its shape as the "
                        "student has it; uniform: spread the missing mass evenly over the other tokens (its loss value "
                        "is closer to the exact one, BENCHMARKS.md, but with flat teachers it trained students 0.15-0.38 "
                        "nats worse, README); renorm: renormalise p over the top-k")

    def __post_init__(self):
        if not self.teachers:
            raise ConfigError("distillation.teachers", "list at least one teacher folder")
        if self.teacher_weights is not None:
            if len(self.teacher_weights) != len(self.teachers):
                raise ConfigError("distillation.teacher_weights", f"{len(self.teacher_weights)} weights for "
                                                                  f"{len(self.teachers)} teachers; give one per teacher")
            if any(w < 0 for w in self.teacher_weights) or sum(self.teacher_weights) <= 0:
                raise ConfigError("distillation.teacher_weights", "weights must be >= 0 with a positive sum")
        check_range("distillation", "alpha", self.alpha, 0.0, 1.0)
        check_range("distillation", "temperature", self.temperature, 0.0, lo_open=True)
        check_range("distillation", "loss_chunk_size", self.loss_chunk_size, 1)
        check_range("distillation", "teacher_cache_topk", self.teacher_cache_topk, 1, 1_000_000)
        if self.teacher_cache_dir is not None and not self.teacher_cache_dir.strip():
            raise ConfigError("distillation.teacher_cache_dir", "empty path; give a folder or null for the default")


@dataclasses.dataclass
class PairFields:
    good: list[str] = field(["sentence_good", "good", "good_continuation", "continuation_good"],
                            help="field of the good sentence (blimp layout) or good continuation (context layout); the "
                                 "first name present in a record is used")
    bad: list[str] = field(["sentence_bad", "bad", "bad_continuation", "continuation_bad"],
                           help="field of the bad sentence or continuation")
    context: list[str] = field(["context"], help="field of the context both continuations follow (context layout)")
    context_good: list[str] = field(["context_good", "good_context"], help="two-context layout: the good context")
    context_bad: list[str] = field(["context_bad", "bad_context"], help="two-context layout: the bad context")
    target: list[str] = field(["target"], help="two-context layout: the continuation scored after each context")

    def __post_init__(self):
        for name in ("good", "bad", "context", "context_good", "context_bad", "target"):
            if not getattr(self, name):
                raise ConfigError(f"eval.fields.{name}", "list at least one field name")


@dataclasses.dataclass
class EnsembleSpec:
    models: list[str] = field(help="model folders sharing one tokenizer")
    combine: Literal["logits", "probs"] = field("logits", help="mean of the models' logits (the paper's teacher) or "
                                                               "of their probabilities")
    weights: list[float] | None = field(None, help="per-model weights in the mean (default: equal)")


@dataclasses.dataclass
class EvalSection:
    blimp_dir: str | list[str] = field(help="folder of JSON-lines pair files, or a list of folders scored in one run: "
                                            "BLiMP, its BabyLM filter, the BabyLM supplement, EWoK, entity tracking, "
                                            "wug (recognised by their fields), or pairs with a context (eval.fields)")
    models: dict[str, str] = field({}, help="name -> model folder; each is scored")
    ensembles: dict[str, list[str] | EnsembleSpec] = field(
        {}, help="name -> list of model folders scored as one logit-averaged model, or {models: [...], combine: "
                 "logits|probs, weights: [...]} (e.g. the distillation's teacher_combine and teacher_weights)")
    output_dir: str = field("results", help="results JSON per model, table.md and the plot go here")
    prefix: Literal["bos", "eos"] = field("bos", help="bos: lm-evaluation-harness (BOS if the tokenizer has one, else "
                                                      "EOS); eos: the 2023 BabyLM pipeline's EOS prefix")
    convention: Literal["lm-eval", "babylm2025"] = field(
        "lm-eval", help="how texts become tokens: lm-eval (lm-evaluation-harness: a leading space, after BOS, as "
                        "eval.prefix says) or babylm2025 (the organisers' 2025 pipeline, whose numbers a submission is "
                        "compared with: no leading space, BOS only where the tokenizer's post-processor adds one, "
                        "eval.prefix unused, wug's softmax in float32)")
    batch_size: int = field(128, help="pairs per forward pass (about 32 tokens each, in prefix-tree rows; 128 "
                                      "measured faster than 64 on CPU, BENCHMARKS.md)")
    precision: Literal["fp32", "bf16"] = field("fp32", help="model dtype while scoring")
    max_pairs_per_file: int | None = field(None, help="score only the first N pairs of each file (entity tracking: "
                                                      "of each <file>_<numops>_ops subset; None: all)")
    identical_pairs: Literal["error", "tie"] = field(
        "error", help="a pair whose two sentences are identical (or tokenize alike): error, or tie: count it correct "
                      "as lm-eval does, with a warning (BLiMP has 7 such pairs, in passive_1 and principle_A_case_2)")
    long_items: Literal["error", "truncate"] = field(
        "error", help="an item longer than a model's positions: error (before scoring), or truncate: drop its context's "
                      "first tokens, the same for all its options, so the longest fits (lm-eval drops the first tokens "
                      "of each request), with a warning (entity tracking has items of 260 tokens with an 8000 BPE)")
    log_pairs: bool = field(False, help="also write <name>.pairs.jsonl per model: file, line, both texts, both "
                                        "log-likelihoods and token counts of every pair")
    export_dir: str | None = field(None, help="also write each model's predictions where the organisers' 2025 "
                                              "pipeline writes its own: <dir>/<model>/<revision>/zero_shot/causal/"
                                              "<task>/<folder>/ (needs convention: babylm2025; null: none)")
    export_revision: str = field("main", help="the <revision> folder of the export: main for a final model, "
                                              "chck_<N>M for a checkpoint (the fast layout)")
    fields: PairFields = dataclasses.field(default_factory=PairFields, metadata={
        "help": "record field names of each pair layout (first name present wins)"})
    checkpoints: dict[str, str] = field({}, help="name -> a training run's output folder: each of its chck_<N> "
                                                 "milestone checkpoints is scored, one row per checkpoint in "
                                                 "curves.json / curves.md / curves.png (score against words seen); "
                                                 "models and ensembles are scored too, drawn as horizontal lines")
    fast: bool | None = field(None, help="score the BabyLM 2025 organisers' fast subsample (200 pairs per BLiMP file, "
                                         "50 per supplement file, 100 per EWoK file, entity tracking's regular file, "
                                         "wug whole; babyllama/dynamics.py). null: fast when checkpoints are given. "
                                         "A blimp_dir that is their fast_eval folder is scored as it is")

    def __post_init__(self):
        if not self.models and not self.ensembles and not self.checkpoints:
            raise ConfigError("eval.models", "name at least one model folder (or a run folder in eval.checkpoints)")
        for n in self.ensembles:
            e = self.ensemble(n)
            if not e.models:
                raise ConfigError(f"eval.ensembles.{n}", "list at least one model folder")
            if e.weights is not None and len(e.weights) != len(e.models):
                raise ConfigError(f"eval.ensembles.{n}.weights", f"{len(e.weights)} weights for {len(e.models)} "
                                                                 "models; give one per model")
            w = e.weights
            if w is not None and (any(not math.isfinite(x) or x < 0 for x in w) or sum(w) <= 0):
                raise ConfigError(f"eval.ensembles.{n}.weights", f"{w}: weights must be finite and >= 0, with a "
                                                                 "positive sum")
        check_range("eval", "batch_size", self.batch_size, 1)
        check_range("eval", "max_pairs_per_file", self.max_pairs_per_file, 1)
        if not self.dirs():
            raise ConfigError("eval.blimp_dir", "name at least one folder")
        if self.export_dir and self.convention != "babylm2025":
            raise ConfigError("eval.export_dir", "the organisers' layout holds their numbers: set "
                                                 "eval.convention=babylm2025 (--convention babylm2025)")
        if not self.export_revision or "/" in self.export_revision or self.export_revision in (".", ".."):
            raise ConfigError("eval.export_revision", f"{self.export_revision!r}: give a folder name such as main "
                                                      "or chck_10M")

    def dirs(self) -> list[str]:
        """The pair folders, whether one was given or a list."""
        return [self.blimp_dir] if isinstance(self.blimp_dir, str) else list(self.blimp_dir)

    def ensemble(self, name: str) -> EnsembleSpec:
        """An ensemble as an EnsembleSpec, whether the YAML gave a list of folders or the mapping."""
        e = self.ensembles[name]
        return e if isinstance(e, EnsembleSpec) else EnsembleSpec(models=list(e))


@dataclasses.dataclass
class GapSection:
    model_dir: str = field(help="trained model folder (train.py's or distill_train.py's output); only read, never "
                                "written")
    output_dir: str = field(help="new folder for the post-trained model; must not exist yet")
    text_dir: str = field("data/clean/babylm_10M", help="folder of cleaned text files whose chunks are ascended on "
                                                        "(default: the train split: strict-small allows no other text, "
                                                        "and the dev split is what every model is scored on)")
    steps: int = field(15, help="gradient-ascent steps (GAP paper: at most 15; the Baby Llama paper: 15-100)")
    batch_size: int = field(1, help="chunks per step (GAP paper: 1)")
    lr: float = field(5e-5, help="Adam learning rate, constant (GAP paper: 5e-5)")
    seq_length: int = field(128, help="tokens per chunk (the paper's students: 128)")
    seed: int = field(0, help="draws the chunks (without replacement) from the text")
    cache_dir: str = field("cache", help="token-id cache, shared with training")

    def __post_init__(self):
        check_range("gap", "steps", self.steps, 1)
        check_range("gap", "batch_size", self.batch_size, 1)
        check_range("gap", "lr", self.lr, 0, 1, lo_open=True)
        check_range("gap", "seq_length", self.seq_length, 2)
        if Path(self.output_dir).resolve() == Path(self.model_dir).resolve():
            raise ConfigError("gap.output_dir", f"{self.output_dir} is the input model folder; GAP never touches its "
                                                "input: give a new folder")


# root schemas, one per stage script ----------------------------------------------------------------------------------


@dataclasses.dataclass
class CleanConfig:
    clean: CleanSection


@dataclasses.dataclass
class TokenizerConfig:
    tokenizer: TokenizerSection


@dataclasses.dataclass
class TrainConfig:
    data: DataSection
    model: ModelSection
    training: TrainingSection

    def __post_init__(self):
        mp = self.model.max_position_embeddings
        if mp is not None and mp < self.data.seq_length:
            raise ConfigError("model.max_position_embeddings", f"{mp} is below data.seq_length {self.data.seq_length}; "
                                                               "raise it or shorten the sequences")


@dataclasses.dataclass
class DistillConfig(TrainConfig):
    # required; a field after defaulted ones needs a default, so None stands for missing and __post_init__ refuses it
    distillation: DistillationSection = None  # type: ignore[assignment]

    def __post_init__(self):
        super().__post_init__()
        if self.distillation is None:
            raise ConfigError("distillation", "required section is missing")
        if self.distillation.teacher_cache and self.data.random_offset:
            raise ConfigError("distillation.teacher_cache", "needs data.random_offset false: with random offsets the "
                                                            "chunks change every epoch; turn one of them off")


@dataclasses.dataclass
class EvalConfig:
    eval: EvalSection


@dataclasses.dataclass
class GapConfig:
    gap: GapSection


@dataclasses.dataclass
class AblationSpec:
    of: Literal["student", "distilled", "gap"] = field(help="the stage this ablation varies (its YAML and "
                                                            "stage_overrides, then these overrides); gap: gap.py "
                                                            "(pipeline.gap) applied to the model of init_from")
    overrides: list[str] = field([], help="dotted overrides that make the ablation, e.g. [data.separator=<s>]")
    teachers: Literal["heterogeneous", "homogeneous"] = field(
        "heterogeneous", help="of: distilled only. heterogeneous: teacher-1 and teacher-2 (paper); homogeneous: "
                              "pipeline.homogeneous_size plain students of pipeline.teacher_seeds, never the "
                              "student's own seed (appendix B, BabyLlama-2)")
    init_from: str | None = field(None, help="start from the trained model of this group of the same seed and budget "
                                             "(student, distilled or an earlier ablation): training.init_from of a "
                                             "training ablation (e.g. SAM's extra epoch), gap.model_dir of of: gap "
                                             "(required there). null: a fresh init")


@dataclasses.dataclass
class BudgetSpec:
    train_share: float = field(help="data.train_share of every training stage at this budget (0 < share <= 1)")
    stage_overrides: dict[str, list[str]] = field({}, help="overrides per stage at this budget (after "
                                                           "pipeline.stage_overrides), e.g. {student: "
                                                           "[training.num_epochs=12]}")
    ablations: list[str] | None = field(None, help="the ablations trained at this budget (null: all of "
                                                   "pipeline.ablations); a pruned cell is named in the YAML with why")

    def __post_init__(self):
        check_range("pipeline.budgets[]", "train_share", self.train_share, 0, 1, lo_open=True)


@dataclasses.dataclass
class PipelineSection:
    work_dir: str = field("runs/embedded", help="every stage's output goes under this folder")
    raw_data: str | None = field(None, help="folder holding the raw BabyLM split folders (babylm_10M/, babylm_dev/); "
                                            "null: write the embedded synthetic corpus instead")
    train_split: str = field("babylm_10M", help="name of the train split folder inside raw_data")
    dev_split: str = field("babylm_dev", help="name of the dev split folder inside raw_data")
    blimp_dir: str | None = field(None, help="folder of BLiMP JSON-lines files; null: the synthetic corpus's pairs")
    synthetic_seed: int = field(0, help="seed of the embedded synthetic corpus")
    synthetic_train_words: int = field(200_000, help="words in the synthetic train split")
    synthetic_dev_words: int = field(40_000, help="words in the synthetic dev split")
    synthetic_pairs: int = field(150, help="minimal pairs per synthetic paradigm or supplement task")
    clean: str = field("config/clean.yaml", help="config of the cleaning stage")
    tokenizer: str = field("config/tokenizer.yaml", help="config of the tokenizer stage")
    teacher1: str = field("config/tiny-llama.yaml", help="config of the first teacher (train.py)")
    teacher2: str = field("config/tiny-gpt2.yaml", help="config of the second teacher (train.py)")
    student: str = field("config/tiny-student.yaml", help="config of the student trained without distillation")
    distilled: str = field("config/tiny-distill.yaml", help="config of the distilled student (distill_train.py)")
    gap: str = field("config/gap.yaml", help="config of the ablations of: gap (gap.py; model and folders set by the "
                                             "pipeline)")
    eval: str | None = field("config/eval.yaml", help="config of the BLiMP evaluation (null: no BLiMP stage)")
    finetune: str | None = field("config/finetune.yaml", help="config of the fine-tuning stage (finetune.py; null: "
                                                                "no fine-tuning stage)")
    finetune_data: str | None = field(None, help="task data for the finetune stage (BabyLM filter-data layout or "
                                                 "<task>/train.jsonl folders); null: the synthetic tasks when the "
                                                 "corpus is synthetic, else the stage is skipped")
    finetune_tasks: list[str] = field(["synthetic_cola", "synthetic_msgs"], help="tasks the students are fine-tuned "
                                                                                  "on (all: the paper's 17)")
    seeds: list[int] | None = field(None, help="train the plain and the distilled student once per seed (models "
                                               "student-s<seed>, distilled-s<seed>); the teachers are trained once. "
                                               "null: once each, with the seed of their YAML")
    stage_overrides: dict[str, list[str]] = field({}, help="extra dotted overrides per stage, e.g. "
                                                           "{teacher1: [training.num_epochs=2]}; zero_shot: the "
                                                           "zero_shot_dirs stages' own, after eval's; dynamics: the dynamics "
                                               "stage's, after eval's")
    train_share: float | None = field(None, help="data.train_share of every training stage, so all models see the same "
                                                 "subset (null: as each YAML says; 1.0: all)")
    ablations: dict[str, AblationSpec] = field({}, help="name -> {of: student|distilled, overrides: [...]}: one more "
                                                        "student per seed (model <name>-s<seed>), reported beside and "
                                                        "paired with the student it varies")
    supplement_dir: str | None = field(None, help="folder of the BLiMP supplement's JSON-lines files: scored too, "
                                                  "and reported (null: none)")
    zero_shot_dirs: list[str] = field([], help="more pair folders, e.g. the BabyLM 2025 ewok_filtered, entity_tracking "
                                               "and wug_adj_nominalization: one eval stage each (zero-shot-<folder "
                                               "name>), results in results/zero_shot/<folder name>, a table per suite "
                                               "in the report")
    dev_text: bool = field(True, help="score every model and the teachers' ensemble on the whole cleaned dev split "
                                      "(eval_text.py: per-source CE and perplexity)")
    dev_text_seq_length: int | None = field(None, help="window length of the dev-text scoring (null: the plain "
                                                       "student's data.seq_length)")
    results_file: str | None = field(None, help="also write the report (Markdown, RESULTS.md-style) to this path")
    results_section: str | None = field(None, help="write the report into this named section of results_file "
                                                   "(between generated markers), keeping its other sections (null: "
                                                   "the whole file; a run with budgets: section map; with appendix: "
                                                   "section appendix)")
    teacher_seeds: list[int] = field([], help="seeds of the plain students that homogeneous teachers are drawn from "
                                              "(trained beside pipeline.seeds; their logit-averaged ensemble is scored "
                                              "as students-ensemble)")
    homogeneous_size: int = field(3, help="plain students per homogeneous ensemble teacher: the first this many of "
                                          "teacher_seeds other than the distilled student's own seed")
    budgets: list[BudgetSpec] | None = field(None, help="the regime map: every model stage runs once per data budget "
                                                        "(stage names and folders b<share>/...); the report becomes "
                                                        "the map of distilled - plain per budget and ablation. null: "
                                                        "one run at pipeline.train_share")
    aoa: bool = field(False, help="an aoa stage: age of acquisition (eval_aoa.py, the paper's Table 4) of every model "
                                  "and ensemble on the cleaned aochildes dev file, in the text stage's windows: "
                                  "results/aoa.json")
    appendix: bool = field(False, help="the report stage writes the appendix table instead (paper appendix B): one row "
                                       "per idea (distilled, each ablation, students-ensemble) against the plain "
                                       "student: dev CE, BLiMP, differences, stage times")
    save_words: Literal["babylm"] | list[int] | None = field(
        None, help="training.save_words of every student (plain, distilled, ablations; not the teachers): "
                   "babylm (BabyLM's checkpoints by words seen, chck_1M..chck_100M up to each student's "
                   "training.word_budget) or a list of word counts; null: as each YAML says")
    h1: bool = field(False, help="the report stage writes the H1 test instead (study_reports.H1Report): each teacher's "
                                "lead over the plain student (it must exceed one sd of the plain seeds), each "
                                "distilled cell minus the plain student of the same seed and epochs, the verdict")
    dev_text_share: float = field(1.0, help="the text stage scores the first share of each dev file's lines (1: the "
                                            "whole dev split; a fixed subset, every source in proportion)")
    dynamics: bool = field(False, help="a dynamics stage: every chck_<N> milestone checkpoint of the plain and the "
                                       "distilled students (every seed) scored on the organisers' fast subsample of "
                                       "the zero-shot suites (blimp_dir, supplement_dir, zero_shot_dirs) and on the "
                                       "first dev_text_share of the dev split (dev CE), the teachers' final models as "
                                       "horizontal lines: results/dynamics/; the report gains 'Learning over words "
                                       "seen'. Needs milestones (the students' checkpoints by words seen)")
    reading_data: str | None = field(None, help="the organisers' reading_data.csv (BabyLM 2025 reading task): the "
                                                "dynamics stage scores each checkpoint on it too (eval_reading.py); "
                                                "null: no reading curves")

    def __post_init__(self):
        check_range("pipeline", "synthetic_train_words", self.synthetic_train_words, 1000)
        check_range("pipeline", "synthetic_dev_words", self.synthetic_dev_words, 1000)
        check_range("pipeline", "synthetic_pairs", self.synthetic_pairs, 1)
        if self.seeds is not None and (not self.seeds or len(set(self.seeds)) != len(self.seeds)):
            raise ConfigError("pipeline.seeds", f"{self.seeds}: give distinct seeds, or null for one run each")
        known = {"clean", "tokenizer", "teacher1", "teacher2", "student", "distilled", "eval", "finetune", "gap"}
        for stage in set(self.stage_overrides) - {"zero_shot", "dynamics"}:
            if stage not in known:
                raise ConfigError(f"pipeline.stage_overrides.{stage}", f"unknown stage; allowed: {', '.join(sorted(known))}")
        reserved = known | {"data", "text", "aoa", "supplement", "report", "dynamics", "teacher-1", "teacher-2",
                            "students-ensemble"}
        for name in self.ablations:
            if not re.fullmatch(r"[a-z][a-z0-9_-]*", name) or name in reserved or re.search(r"-s\d+$", name):
                raise ConfigError(f"pipeline.ablations.{name}", "name it with lower-case letters, digits, - and _, "
                                  "not a stage name and not ending in -s<digits> (e.g. student-sep)")
        names = [Path(d).name for d in self.zero_shot_dirs]
        dup = next((n for i, n in enumerate(names) if n in names[:i] or not n), None)
        if dup is not None:
            raise ConfigError("pipeline.zero_shot_dirs", f"two folders named {dup!r} (or a folder without a name) would "
                                                         "share one stage and results folder; give distinct folders")
        check_range("pipeline", "dev_text_seq_length", self.dev_text_seq_length, 2)
        check_range("pipeline", "train_share", self.train_share, 0, 1, lo_open=True)
        check_range("pipeline", "dev_text_share", self.dev_text_share, 0, 1, lo_open=True)
        check_range("pipeline", "homogeneous_size", self.homogeneous_size, 1)
        for name, a in self.ablations.items():
            if a.teachers == "homogeneous" and a.of != "distilled":
                raise ConfigError(f"pipeline.ablations.{name}.teachers", "homogeneous teachers need of: distilled")
            short = [s for s in self.seeds or [None] if len(set(self.teacher_seeds) - {s}) < self.homogeneous_size]
            if a.teachers == "homogeneous" and short:
                raise ConfigError("pipeline.teacher_seeds", f"{self.teacher_seeds}: ablation {name} needs "
                                  f"{self.homogeneous_size} plain students (homogeneous_size) besides the student's own "
                                  f"seed {short[0]}; list more seeds")
            earlier = ["student", "distilled"] + list(self.ablations)[:list(self.ablations).index(name)]
            if a.init_from is not None and a.init_from not in earlier:
                raise ConfigError(f"pipeline.ablations.{name}.init_from", f"{a.init_from!r}: name student, distilled "
                                  "or an ablation listed before this one")
            if a.of == "gap" and a.init_from is None:
                raise ConfigError(f"pipeline.ablations.{name}.init_from", "of: gap post-trains a trained model: name "
                                  "it, e.g. init_from: student")
        if len(set(self.teacher_seeds)) != len(self.teacher_seeds):
            raise ConfigError("pipeline.teacher_seeds", f"{self.teacher_seeds}: give distinct seeds")
        if self.dynamics and (self.budgets or not self.eval):
            raise ConfigError("pipeline.dynamics", "scores the checkpoints of a run without budgets with the eval "
                                                   "YAML; set pipeline.budgets null and pipeline.eval, or dynamics false")
        if self.appendix and self.budgets:
            raise ConfigError("pipeline.appendix", "the appendix table is of a run without budgets; set "
                                                   "pipeline.budgets null or appendix false")
        if self.h1 and (self.budgets or self.appendix):
            raise ConfigError("pipeline.h1", "the H1 report is of one run without budgets or appendix; set those "
                                             "null / false, or h1 false")
        if self.h1 and len(self.seeds or []) < 2:
            raise ConfigError("pipeline.seeds", "the H1 report needs the sd of the plain seeds: list 2 or more seeds")
        homo = [n for n, a in self.ablations.items() if a.teachers == "homogeneous"]
        if self.h1 and homo and (len(self.teacher_seeds) != self.homogeneous_size
                                 or set(self.teacher_seeds) & set(self.seeds)):
            raise ConfigError("pipeline.teacher_seeds", f"{self.teacher_seeds}: the H1 report scores students-ensemble "
                              f"as the teacher of {homo[0]}, so give exactly homogeneous_size "
                              f"({self.homogeneous_size}) seeds, none of pipeline.seeds")
        shares = [b.train_share for b in self.budgets or []]
        if len(set(shares)) != len(shares) or self.budgets == []:
            raise ConfigError("pipeline.budgets", f"train shares {shares}: give distinct shares, or null for one run")
        for b in self.budgets or []:
            unknown = set(b.ablations or []) - set(self.ablations)
            if unknown:
                raise ConfigError("pipeline.budgets[].ablations", f"{sorted(unknown)} are not in pipeline.ablations")
            starts = {self.ablations[a].init_from for a in b.ablations or []} & set(self.ablations)
            if starts - set(b.ablations or starts):
                raise ConfigError("pipeline.budgets[].ablations", f"{sorted(starts - set(b.ablations))} start other "
                                  "ablations there (init_from): list them too")
            for stage in b.stage_overrides:
                if stage not in known:
                    raise ConfigError(f"pipeline.budgets[].stage_overrides.{stage}",
                                      f"unknown stage; allowed: {', '.join(sorted(known))}")


@dataclasses.dataclass
class PipelineConfig:
    pipeline: PipelineSection
