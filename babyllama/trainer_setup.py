"""What train.py and distill_train.py share: the command line, precision and batch plan, the output folder's lock
(its checks and resume: run_folder.py), checks before any long work, TrainingArguments, callbacks, data, and finishing
a run (final metrics, model card, optional push to the Hub)."""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
import math
import netrc
import os
import sys
import time
from pathlib import Path

import huggingface_hub
import torch
from transformers import Trainer, TrainingArguments

from babylm_dataset import build_datasets
from babyllama.callbacks import (BlimpCallback, EpochEndEvalCallback, EvalAtSteps, LogBeforeSave, SaveEveryMinutes,
                       SaveOnInterrupt, StopOnNonFinite)
from babyllama.config import UserError, add_config_args, describe, load_config, save_config
from babyllama.files import write_atomic
from babyllama.run_folder import checkpoint_bytes, check_writable, checkpoints_in
from babyllama.locks import locked
from babyllama.models import build_model, check_init_from, count_parameters
from babyllama.hub import HubPusher
from babyllama.words import SaveAtWords, WordsSeen, check_plan, milestones
from tokenizer import load_tokenizer

# ----------------------------------------------------------------------------------------------------------------------
# hardware and processes


@functools.cache
def bf16_supported() -> bool:
    """bf16 where it pays: CUDA with bf16; on a CPU, bf16 kernels (AMX / AVX512-BF16 via oneDNN) that also run a
    matmul faster than fp32 here. CPUs with the same flags differ (fp32 236 and bf16 57 GFLOP/s on one 2-core EPYC,
    bf16 2-4x fp32 on others), so one 1024^3 matmul of each is timed, best of 3 (~0.1 s, once per process; the
    processes of one run time the same hardware, and the gap is 2x or more either way)."""
    if torch.cuda.is_available():
        return torch.cuda.is_bf16_supported()
    try:
        if not torch.ops.mkldnn._is_mkldnn_bf16_supported():
            return False
    except (AttributeError, RuntimeError):
        return False
    seconds = {}
    for dtype in (torch.float32, torch.bfloat16):
        a = torch.randn(1024, 1024).to(dtype)
        a @ a  # warm-up
        best = float("inf")
        for _ in range(3):
            t0 = time.perf_counter()
            a @ a
            best = min(best, time.perf_counter() - t0)
        seconds[dtype] = best
    return seconds[torch.bfloat16] < 0.8 * seconds[torch.float32]


def resolve_precision(precision: str) -> str:
    if precision == "auto":
        return "bf16" if bf16_supported() else "fp32"
    if precision == "fp16" and not torch.cuda.is_available():
        raise UserError("training.precision fp16 needs a CUDA GPU; use bf16 or fp32 on this machine")
    return precision


def world_size() -> int:
    return int(os.environ.get("WORLD_SIZE", "1"))


def is_main_process() -> bool:
    return int(os.environ.get("RANK", "0")) == 0


def batch_plan(t) -> tuple[int, int]:
    """(per-device micro-batch, gradient accumulation steps) that make up the global ``training.batch_size``."""
    per_device = t.per_device_batch_size or max(1, t.batch_size // world_size())
    denom = per_device * world_size()
    if t.batch_size % denom:
        raise UserError(f"training.batch_size {t.batch_size} is not a multiple of per_device_batch_size {per_device} x "
                        f"{world_size()} processes; change one of them")
    return per_device, t.batch_size // denom


# ----------------------------------------------------------------------------------------------------------------------
# the output folder (babyllama/run_folder.py) and its lock

# a training script's run(cfg, ...): one run at a time in training.output_dir (rank 0 holds the lock for the run)
holds_output_dir = locked(lambda cfg: cfg.training.output_dir if is_main_process() else None, "training.output_dir")


# ----------------------------------------------------------------------------------------------------------------------
# checks before the long work (the output folder's: run_folder.check_writable)


def check_logger_and_hub(t):
    """wandb must be configured (else it prompts or fails after the first step); the Hub reachable and the repo
    writable when the run will push (else the push fails after days of training)."""
    if t.report_to == "wandb" and os.environ.get("WANDB_MODE", "").lower() not in ("offline", "disabled", "dryrun"):
        try:
            logged_in = bool(os.environ.get("WANDB_API_KEY")) or bool(netrc.netrc().authenticators("api.wandb.ai"))
        except (OSError, netrc.NetrcParseError):
            logged_in = False
        if not logged_in:
            raise UserError("training.report_to wandb: no wandb login (WANDB_API_KEY or ~/.netrc); run `wandb login`, "
                            "or set WANDB_MODE=offline to log locally")
    if t.push_to_hub and is_main_process():
        try:
            huggingface_hub.HfApi().create_repo(t.hub_model_id, exist_ok=True)
        except Exception as e:  # no network, no token, no rights: all end the same way
            raise UserError(f"training.push_to_hub: cannot create or reach {t.hub_model_id} on the Hub "
                            f"({str(e).splitlines()[0][:160]}); log in with `hf auth login` and check the network, or "
                            "set training.push_to_hub false") from None


# ----------------------------------------------------------------------------------------------------------------------
# TrainingArguments, callbacks, data


def training_arguments(t, precision: str, metric: str = "eval_loss", curriculum: bool = False) -> TrainingArguments:
    """``TrainingArguments`` from a ``TrainingSection``: our keys, then the passed-through options. Evaluation and a
    checkpoint every epoch, plus every ``eval_steps`` steps when set (see ``EpochEndEvalCallback``). With a
    ``curriculum`` the train set already holds every epoch in order: the Trainer reads it once, sequentially."""
    per_device, accum = batch_plan(t)
    strategy = "steps" if t.eval_steps else "epoch"
    options = dict(logging_steps=20, save_total_limit=2, load_best_model_at_end=True, run_name=Path(t.output_dir).name,
                   disable_tqdm=not sys.stderr.isatty() and bool(os.environ.get("CI")),
                   ddp_find_unused_parameters=False)  # every parameter gets a gradient; True costs a graph traversal
    options.update(t.hf_args)
    if curriculum:
        options["train_sampling_strategy"] = "sequential"
    try:
        return TrainingArguments(
            output_dir=t.output_dir, num_train_epochs=1 if curriculum else t.num_epochs, max_steps=t.max_steps,
            per_device_train_batch_size=per_device, per_device_eval_batch_size=per_device,
            gradient_accumulation_steps=accum, learning_rate=t.lr, lr_scheduler_type=t.lr_scheduler,
            warmup_steps=t.warmup_steps, weight_decay=t.weight_decay, bf16=precision == "bf16",
            fp16=precision == "fp16", use_cpu=not torch.cuda.is_available(),  # bf16 on a CPU needs it said
            eval_strategy=strategy, save_strategy=strategy, eval_steps=t.eval_steps, save_steps=t.eval_steps,
            metric_for_best_model=metric, greater_is_better=False, seed=t.seed,
            report_to=[] if t.report_to == "none" else [t.report_to],
            push_to_hub=False,  # pushed once at the end, with the model card (see finish_run)
            remove_unused_columns=False, include_num_input_tokens_seen="non_padding", **options)
    except (ValueError, TypeError) as e:
        raise UserError(f"training: transformers refused the options ({str(e).splitlines()[0][:200]}); fix the "
                        "training keys it names") from None


class BabyTrainer(Trainer):
    """The stock ``Trainer`` plus two options, both working with gradient accumulation and resume:

    - a mixture-of-experts model (``model.type: moe``): the router's load-balancing loss, ``router_aux_loss_coef`` x
      its mean over the micro-batches of an optimizer step, is added to the training loss and logged as ``aux_loss``.
      The HF model would add it to ``loss`` itself, once per micro-batch (the Trainer sums micro-batch losses that
      the model normalised by the whole step's token count), so its own term is switched off and added here.
      ``eval_loss`` stays the CE, comparable with dense models.
    - ``sam_rho`` (``training.optimizer: sam``): sharpness-aware minimisation (Foret et al. 2021). The Trainer hands
      over every micro-batch of a step at once (``get_batch_samples``); after the last one's backward the gradient g
      of the whole accumulated batch (summed over processes) is known, the weights move to w + rho*g/|g|, every
      micro-batch is run forward and backward again, the weights return to w, and the optimizer (and gradient
      clipping) uses the gradient from w + rho*g/|g|. So SAM sees the same batch as the optimizer, exactly as without
      accumulation; the cost is a second pass. The logged loss is the one at w.
    """

    def __init__(self, *args, sam_rho: float | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        if sam_rho and (self.is_deepspeed_enabled or self.is_fsdp_enabled):
            raise UserError("training.optimizer sam needs whole gradients on every process (one process or DDP); "
                            "DeepSpeed and FSDP shard them: set training.optimizer base or train with DDP")
        self.sam_rho = sam_rho
        self.sam_second_pass = False  # subclasses skip their loss bookkeeping during SAM's second pass
        self._step_batches, self._micro = [], 0
        model = self.accelerator.unwrap_model(self.model)
        mcfg = getattr(model, "config", None)
        self.router_coef = getattr(mcfg, "router_aux_loss_coef", None) if hasattr(mcfg, "num_experts") else None
        self.router_kwargs = {"output_router_logits": True} if self.router_coef is not None else {}
        if self.router_coef is not None:
            model.router_aux_loss_coef = 0.0  # the model's own term (see above); the saved config keeps the coefficient
        self._aux_sum, self._aux_n = 0.0, 0  # since the last log: sum of the steps' mean balancing loss, steps
        self.words = WordsSeen()  # words seen (babyllama/words.py), kept in the checkpoints' trainer state
        self.callback_handler.callbacks.insert(0, self.words)  # first: a resume restores it before others read it

    def get_batch_samples(self, epoch_iterator, num_batches, device):
        batches, num_items = super().get_batch_samples(epoch_iterator, num_batches, device)
        self._step_batches, self._micro = batches, 0
        self.words.add(batches, self.accelerator)  # the step's words (and out of the batches: no model takes them)
        return batches, num_items

    def router_loss(self, model, outputs, trainer_divides: bool):
        """This micro-batch's share of coef x the step's mean balancing loss (0 for a dense model or at eval);
        ``trainer_divides``: the Trainer divides this micro-batch's loss by the accumulation steps itself."""
        aux = getattr(outputs, "aux_loss", None)
        if aux is None or not model.training:
            return 0.0
        share = 1 if trainer_divides else len(self._step_batches) or 1
        if not self.sam_second_pass:
            self._aux_sum += aux.detach().float() / (len(self._step_batches) or 1)
        return self.router_coef * aux / share

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        if self.router_coef is None:
            return super().compute_loss(model, inputs, return_outputs, num_items_in_batch)
        loss, outputs = super().compute_loss(model, {**inputs, **self.router_kwargs}, True, num_items_in_batch)
        scaled = self.loss_is_scaled_for_ga if self.loss_is_scaled_for_ga is not None else (
            self.model_accepts_loss_kwargs and num_items_in_batch is not None)
        loss = loss + self.router_loss(model, outputs, trainer_divides=not scaled)
        return (loss, outputs) if return_outputs else loss

    def training_step(self, model, inputs, num_items_in_batch=None):
        loss = super().training_step(model, inputs, num_items_in_batch)
        self._micro += 1
        if self._micro == len(self._step_batches):  # the step's last micro-batch
            self._aux_n += 1
            if self.sam_rho:
                self.sam_second_step(model, num_items_in_batch)
        return loss

    def sam_second_step(self, model, num_items_in_batch):
        """Replace the step's gradient g (at w) by the gradient at w + rho*g/|g|, over the same micro-batches."""
        params = [p for p in model.parameters() if p.grad is not None]
        with torch.no_grad():
            norms = [torch.linalg.vector_norm(p.grad, dtype=torch.promote_types(p.grad.dtype, torch.float32))
                     for p in params]  # bf16 gradients are summed in fp32
            norm = torch.linalg.vector_norm(torch.stack(norms))
            eps = [p.grad * (self.sam_rho / (norm + 1e-12)) for p in params]
            for p, e in zip(params, eps):
                p.add_(e)
                p.grad = None
        self.sam_second_pass = True
        try:
            last = len(self._step_batches) - 1
            for i, batch in enumerate(self._step_batches):  # the Trainer's own sync pattern: all-reduce on the last
                with contextlib.nullcontext() if i == last else self.accelerator.no_sync(model=model):
                    super().training_step(model, batch, num_items_in_batch)
        finally:
            self.sam_second_pass = False
            with torch.no_grad():
                for p, e in zip(params, eps):
                    p.sub_(e)

    def log(self, logs, *args, **kwargs):
        if "loss" in logs and self.router_coef is not None:  # mean balancing loss per step since the last log
            logs["aux_loss"] = round(float(self._aux_sum) / max(self._aux_n, 1), 4)
            self._aux_sum, self._aux_n = 0.0, 0
        if "loss" in logs or "eval_loss" in logs:
            logs["words_seen"] = self.words.words_seen
        return super().log(logs, *args, **kwargs)


def make_callbacks(t, tokenizer, train_ds=None) -> list:
    """The run's callbacks: ``SaveOnInterrupt`` (read by ``train_and_finish``), then ``LogBeforeSave``, which must see
    every other callback's save request. ``SaveAtWords`` (training.save_words) gets the trainer's words-seen count in
    ``attach_callbacks``."""
    callbacks = [StopOnNonFinite()]
    pusher = HubPusher(t.hub_model_id, t.output_dir) if t.push_to_hub and is_main_process() else None
    callbacks += [pusher] if pusher else []
    marks = milestones(t.save_words, t.word_budget)
    if marks:
        callbacks.append(SaveAtWords(marks, on_written=pusher and (lambda folder: pusher.push(folder, folder.name))))
    if getattr(train_ds, "epoch_ends", None):  # a curriculum: evaluate and save where each of its epochs ends
        steps = sorted({math.ceil(end / t.batch_size) for _, _, end in train_ds.epoch_ends})
        callbacks.append(EvalAtSteps(steps[:-1]))  # the last is the Trainer's own epoch end
    if t.eval_steps:
        callbacks.append(EpochEndEvalCallback())
    if t.save_minutes:
        callbacks.append(SaveEveryMinutes(t.save_minutes))
    if t.blimp_dir:
        callbacks.append(BlimpCallback(t.blimp_dir, tokenizer=tokenizer, every_steps=t.blimp_steps,
                                       pairs_per_file=t.blimp_pairs_per_file))
    return callbacks + [SaveOnInterrupt(), LogBeforeSave()]


def attach_callbacks(trainer):
    for cb in trainer.callback_handler.callbacks:
        if hasattr(cb, "trainer"):
            cb.trainer = trainer  # callbacks that log or save through the trainer (BLiMP accuracy, milestones)


def preflight(cfg, args):
    """The checks before any long work: logger and Hub, the tokenizer, a writable output folder with room for one
    checkpoint. Returns the tokenizer."""
    check_logger_and_hub(cfg.training)
    tokenizer = load_tokenizer(cfg.data.tokenizer_dir)
    if cfg.training.init_from:
        check_init_from(cfg.model, tokenizer, cfg.data.seq_length, cfg.training.init_from)
    if is_main_process():
        n_params = count_parameters(build_model(cfg.model, tokenizer, cfg.data.seq_length, device="meta"))
        check_writable(Path(args.output_dir), checkpoint_bytes(n_params))
    return tokenizer


def load_datasets(cfg, args):
    """Train and eval datasets; under several processes the main one builds the token cache first. Then the words
    the run will see are checked against training.word_budget (``words.check_plan``), before any long work."""
    with args.main_process_first(desc="tokenize", local=False):
        train, dev = build_datasets(cfg.data, seed=cfg.training.seed, verbose=is_main_process(),
                                    epochs=cfg.training.num_epochs)
    check_plan(cfg.training, train, log=print if is_main_process() else lambda line: None)
    return train, dev


# ----------------------------------------------------------------------------------------------------------------------
# finishing a run


class Interrupted(KeyboardInterrupt):
    """Ctrl-C stopped the run after saving a checkpoint; the message names it."""


def model_card(cfg, metrics: dict, kind: str) -> str:
    m, d, t = cfg.model, cfg.data, cfg.training
    lines = [
        "---", "library_name: transformers", "tags: [babylm, baby-llama, " + kind + "]", "---", "",
        f"# {Path(t.output_dir).name}", "",
        f"A {m.type} causal LM trained with the Baby Llama recipe ({kind}); Timiryasov & Tastet 2023, BabyLM strict-small.",
        "", "## Architecture", "",
        f"- type {m.type}, {m.num_layers} layers, {m.num_heads} heads, hidden {m.hidden_size}, "
        f"intermediate {m.intermediate_size or 4 * m.hidden_size}",
        f"- parameters: {metrics.get('parameters', 0):,}", "", "## Data", "",
        f"- train: `{d.train_dir}`; eval: {d.eval_samples} chunks of `{d.dev_dir}` (seed {d.eval_seed})",
        f"- tokenizer: `{d.tokenizer_dir}`, sequence length {d.seq_length}, random offset {d.random_offset}",
        *([f"- curriculum, {t.num_epochs:g} epochs per stage: `{d.curriculum}`"] if d.curriculum else []),
        f"- words seen in training (BabyLM's count: whitespace-separated, every epoch): {metrics.get('words_seen', 0):,}",
        "",
        "## Hyperparameters", "",
        f"- {t.num_epochs} epochs, batch {t.batch_size}, lr {t.lr}, {t.lr_scheduler} schedule, {t.warmup_steps} warm-up "
        f"steps, weight decay {t.weight_decay}, precision {metrics.get('precision')}, seed {t.seed}",
    ]
    if getattr(cfg, "distillation", None) is not None:
        dd = cfg.distillation
        lines += [f"- distilled from {', '.join(f'`{p}`' for p in dd.teachers)}: alpha {dd.alpha}, temperature "
                  f"{dd.temperature}, KL normalisation {dd.kl_normalization}, teachers combined by {dd.teacher_combine}"]
    lines += ["", "## Evaluation", "",
              f"- eval loss {metrics.get('eval_loss', float('nan')):.4f}"
              + (f" (CE {metrics['eval_ce']:.4f}, KL {metrics['eval_kl']:.4f})" if "eval_ce" in metrics else "") + ", "
              f"perplexity {metrics.get('eval_perplexity', float('nan')):.2f}", ""]
    return "\n".join(lines)


def final_step(trainer) -> int:
    """The step whose weights the run ends with: the best checkpoint's (load_best_model_at_end), else the last."""
    st = trainer.state
    return st.best_global_step if trainer.args.load_best_model_at_end and st.best_global_step else st.global_step


def final_eval_metrics(trainer) -> dict:
    """Eval metrics of the model the run ends with: taken from the log when that model (the best checkpoint, or the
    last step) was evaluated already, so the eval set (and, distilling, the teachers) is not run a second time."""
    st, step = trainer.state, final_step(trainer)
    logged = [h for h in st.log_history if "eval_loss" in h and h.get("step") == step]
    if logged:
        return {k: v for k, v in logged[-1].items() if k.startswith("eval_") or k == "epoch"}
    return dict(trainer.evaluate())


def learning_curve(log_history: list[dict]) -> list[dict]:
    """One row per evaluation (every epoch end, and every eval_steps when set): epoch, step, dev CE (a distilled
    student's eval CE, not its mixed loss) and the mean train CE logged since the previous evaluation (the mixed loss
    when no CE is logged), so over-fitting shows as dev CE rising while train CE falls."""
    rows, train = [], []
    for h in log_history:
        if "loss" in h:
            train.append(h.get("ce", h["loss"]))
        elif "eval_loss" in h:
            if rows and rows[-1]["step"] == h.get("step"):  # the same step evaluated twice (epoch end = eval step)
                continue
            rows.append({"epoch": round(h.get("epoch", 0.0), 4), "step": h.get("step"),
                         "dev_ce": h.get("eval_ce", h["eval_loss"]),
                         "train_ce": sum(train) / len(train) if train else None})
            train = []
    return rows


def whole_run_train_loss(log_history, resumed_loss: float, start_step: int, end_step: int) -> tuple[float, int]:
    """(mean training loss per step, steps it covers) over the whole run. The Trainer's ``training_loss`` covers only
    the steps of this call (``start_step``..``end_step``); a resumed run adds the steps before, from the checkpoint's
    logged losses (each the mean since the previous log). ``LogBeforeSave`` makes them reach the checkpoint's step;
    a checkpoint saved without it leaves a gap, and the mean then covers fewer steps than the run, as the count says."""
    total, covered, prev = resumed_loss * (end_step - start_step), end_step - start_step, 0
    for h in log_history:
        if "loss" in h and prev < h["step"] <= start_step:
            total += h["loss"] * (h["step"] - prev)
            covered += h["step"] - prev
            prev = h["step"]
    return total / max(covered, 1), covered


def train_and_finish(trainer, cfg, tokenizer, checkpoint, kind: str, extra_metrics: dict) -> dict:
    """Train (from ``checkpoint`` when resuming), then write model + tokenizer + config + metrics.json + model card
    into the output folder (main process only) and push it when asked. Ctrl-C ends in ``Interrupted`` after a save."""
    start = time.time()
    result = trainer.train(resume_from_checkpoint=checkpoint)
    if any(getattr(cb, "interrupted", False) for cb in trainer.callback_handler.callbacks):
        raise Interrupted(f"stopped at step {trainer.state.global_step}; checkpoint saved in "
                          f"{checkpoints_in(cfg.training.output_dir)[-1]}")
    t = cfg.training
    metrics = final_eval_metrics(trainer)
    if not math.isfinite(metrics.get("eval_loss", 0.0)):
        raise UserError(f"{t.output_dir}: the final eval loss is {metrics['eval_loss']}; the model is not saved as "
                        "finished (its checkpoints stay); lower training.lr and --resume from an earlier checkpoint")
    # the distilled student's eval_loss mixes CE and KL: perplexity comes from its CE alone
    metrics["eval_perplexity"] = math.exp(min(metrics.get("eval_ce", metrics["eval_loss"]), 50.0))
    first = int(Path(checkpoint).name.split("-")[-1]) if checkpoint else 0  # the step a resumed run starts after
    train_loss, steps = whole_run_train_loss(trainer.state.log_history, result.training_loss, first,
                                             trainer.state.global_step)
    metrics.update(extra_metrics, train_runtime_s=round(time.time() - start, 1), train_loss=train_loss)
    if steps != trainer.state.global_step:
        metrics["train_loss_steps"] = steps
    metrics["parameters"] = count_parameters(trainer.model)
    metrics["global_step"] = trainer.state.global_step
    metrics["tokens_seen"] = int(trainer.state.num_input_tokens_seen or 0)
    metrics["words_seen"] = trainer.words.words_seen
    metrics["best_checkpoint"] = trainer.state.best_model_checkpoint
    # the epoch (and step) of the saved weights: the best one by training.hf_args.metric_for_best_model, else the last
    metrics["best_step"] = final_step(trainer)
    metrics["best_epoch"] = next((round(h["epoch"], 4) for h in trainer.state.log_history if "eval_loss" in h
                                  and h.get("step") == metrics["best_step"]), round(trainer.state.epoch or 0.0, 4))
    metrics["epochs_run"] = round(trainer.state.epoch or 0.0, 4)
    metrics["curve"] = learning_curve(trainer.state.log_history)
    for name in ("cache_hits", "cache_misses"):  # distillation from the teacher cache
        if getattr(trainer, "teacher_cache", None):
            metrics[name] = getattr(trainer, name)
    train_logs = [h for h in trainer.state.log_history if "loss" in h]
    if train_logs:
        metrics["last_train_loss"] = train_logs[-1]["loss"]
    out = Path(t.output_dir)
    # every process: under FSDP / DeepSpeed ZeRO-3 gathering the weights is collective; only the main process writes
    trainer.save_model(str(out))
    if trainer.is_world_process_zero():
        tokenizer.save_pretrained(str(out))
        save_config(cfg, out)
        write_atomic(out / "README.md", model_card(cfg, metrics, kind))
        write_atomic(out / "metrics.json", json.dumps(metrics, indent=2) + "\n")  # last: marks the run finished
        print(f"saved {kind} model to {out}: eval loss {metrics['eval_loss']:.4f}")
    pusher = next((cb for cb in trainer.callback_handler.callbacks if isinstance(cb, HubPusher)), None)
    if pusher is not None:  # the checkpoints' pushes end, then the model goes to main
        failed = pusher.finish(out)
        if failed:
            raise UserError(f"the model and its checkpoints are saved in {out}, but pushing {', '.join(failed)} to "
                            f"{t.hub_model_id} failed; push them later with: python push_checkpoints.py {out} "
                            f"--repo {t.hub_model_id}")
    return metrics


# ----------------------------------------------------------------------------------------------------------------------
# the command line of a training stage


def training_main(argv, schema, run_fn, doc: str) -> int:
    """--config, overrides, --resume, --overwrite; Ctrl-C ends with the command that resumes."""
    parser = argparse.ArgumentParser(description=doc.split("\n\n")[0])
    add_config_args(parser)
    parser.add_argument("--resume", action="store_true", help="continue from the newest intact checkpoint in the "
                        "output folder")
    parser.add_argument("--overwrite", action="store_true", help="move an earlier run in the output folder aside "
                        "(to <output_dir>.old-<n>) and train afresh")
    args = parser.parse_intermixed_args(argv)  # overrides before or after the flags
    if args.help_config:
        print(describe(schema))
        return 0
    cfg = load_config(schema, args.config, args.overrides)
    try:
        run_fn(cfg, resume=args.resume, overwrite=args.overwrite)
    except Interrupted as e:
        script = Path(sys.argv[0]).name if sys.argv and sys.argv[0].endswith(".py") else "the same command"
        command = " ".join(["python", script, "--config", args.config, *args.overrides, "--resume"])
        print(f"interrupted: {e}; continue with:\n  {command}", file=sys.stderr)
        return 130
    finally:
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            # an orderly teardown: a rank leaving with the gloo/NCCL group alive can abort ("terminate called ...")
            torch.distributed.barrier()
            torch.distributed.destroy_process_group()
    return 0
