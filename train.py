"""Pretrain a causal LM (the teachers, or the student without distillation) from YAML with the stock HF Trainer.

    python train.py --config config/llama-360M.yaml
    python train.py --config config/tiny-llama.yaml training.lr=1e-3 training.num_epochs=2
    python train.py --config config/llama-360M.yaml --resume      # continue from the last checkpoint

The output folder gets the final model (the best checkpoint by eval loss), its tokenizer, the resolved config
(``config.yaml``), ``metrics.json`` and a model card (``README.md``); ``AutoModelForCausalLM.from_pretrained`` and
``AutoTokenizer.from_pretrained`` load it. Checkpoints go to ``<output_dir>/checkpoint-*``. The shared run setup here
(training arguments, callbacks, final save) is used by ``distill_train.py`` too.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from pathlib import Path

import torch

from config import TrainConfig, UserError, add_config_args, describe, load_config, run_cli, save_config

# ----------------------------------------------------------------------------------------------------------------------
# hardware and run setup shared with distill_train.py


def bf16_supported() -> bool:
    """bf16 where the hardware does it natively: CUDA with bf16, or a CPU with AMX / AVX512-BF16 (oneDNN)."""
    if torch.cuda.is_available():
        return torch.cuda.is_bf16_supported()
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


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


def checkpoints_in(output_dir) -> list[Path]:
    folder = Path(output_dir)
    if not folder.is_dir():
        return []
    found = [p for p in folder.glob("checkpoint-*") if p.is_dir() and p.name.split("-")[-1].isdigit()]
    return sorted(found, key=lambda p: int(p.name.split("-")[-1]))


def is_complete_checkpoint(folder: Path) -> bool:
    """The Trainer writes trainer_state.json last (after weights, optimizer, scheduler and RNG states): a checkpoint
    without a readable one was cut short by a kill."""
    try:
        json.loads((folder / "trainer_state.json").read_text())
        return True
    except (OSError, ValueError):
        return False


def resume_checkpoint(output_dir, resume: bool) -> str | None:
    """The checkpoint to resume from, or None. Refuses to start over a folder with checkpoints unless resuming, so a
    finished or interrupted run's checkpoints are never rotated away by accident; skips a checkpoint a kill left
    half-written and resumes from the newest complete one."""
    found = checkpoints_in(output_dir)
    if resume:
        complete = [c for c in found if is_complete_checkpoint(c)]
        for c in found:
            if c not in complete and (not complete or int(c.name.split("-")[-1]) > int(complete[-1].name.split("-")[-1])):
                print(f"--resume: skipping {c}, left incomplete by an interrupted save")
        if not complete:
            print(f"--resume: no complete checkpoint in {output_dir}; starting from scratch")
            return None
        print(f"resuming from {complete[-1]}")
        return str(complete[-1])
    if found:
        raise UserError(f"{output_dir} already has {found[-1].name}; pass --resume to continue it, or pick another "
                        "training.output_dir")
    return None


def training_arguments(t, precision: str, metric: str = "eval_loss", **extra):
    """``TrainingArguments`` from a ``TrainingSection``. Evaluation (and a checkpoint) every epoch, plus every
    ``eval_steps`` steps when set (see ``EpochEndEvalCallback``)."""
    from transformers import TrainingArguments

    per_device, accum = batch_plan(t)
    strategy = "steps" if t.eval_steps else "epoch"
    report = [] if t.report_to == "none" else [t.report_to]
    return TrainingArguments(
        output_dir=t.output_dir,
        num_train_epochs=t.num_epochs,
        max_steps=t.max_steps,
        per_device_train_batch_size=per_device,
        per_device_eval_batch_size=per_device,
        gradient_accumulation_steps=accum,
        learning_rate=t.lr,
        lr_scheduler_type=t.lr_scheduler,
        warmup_steps=t.warmup_steps,
        weight_decay=t.weight_decay,
        adam_beta1=t.adam_beta1,
        adam_beta2=t.adam_beta2,
        max_grad_norm=t.max_grad_norm,
        bf16=precision == "bf16",
        fp16=precision == "fp16",
        use_cpu=not torch.cuda.is_available(),  # bf16 on a CPU needs it said explicitly
        eval_strategy=strategy,
        save_strategy=strategy,
        eval_steps=t.eval_steps,
        save_steps=t.eval_steps,
        logging_steps=t.logging_steps,
        save_total_limit=t.save_total_limit,
        load_best_model_at_end=t.load_best_model_at_end,
        metric_for_best_model=metric,
        greater_is_better=False,
        seed=t.seed,
        report_to=report,
        run_name=t.run_name or Path(t.output_dir).name,
        push_to_hub=False,  # pushed once at the end, with the model card (see finish_run)
        dataloader_num_workers=t.dataloader_num_workers,
        torch_compile=t.torch_compile,
        remove_unused_columns=False,
        include_num_input_tokens_seen="non_padding",
        ddp_find_unused_parameters=False,  # every parameter gets a gradient; True costs a graph traversal per step
        disable_tqdm=not sys.stderr.isatty() and bool(os.environ.get("CI")),
        **extra,
    )


def make_callbacks(t, tokenizer):
    from transformers import TrainerCallback

    class EpochEndEvalCallback(TrainerCallback):
        """With step evaluation on, still evaluate and save at the end of every epoch."""

        def on_epoch_end(self, args, state, control, **kw):
            control.should_evaluate = True
            control.should_save = True
            return control

    callbacks = [EpochEndEvalCallback()] if t.eval_steps else []
    if t.blimp_dir:
        from callbacks import BlimpCallback

        callbacks.append(BlimpCallback(t.blimp_dir, tokenizer=tokenizer, every_steps=t.blimp_steps,
                                       pairs_per_file=t.blimp_pairs_per_file))
    return callbacks


def attach_callbacks(trainer, callbacks):
    for cb in callbacks:
        if hasattr(cb, "trainer"):
            cb.trainer = trainer  # callbacks that log through the trainer (BLiMP accuracy)


def load_data(cfg, trainer_args=None):
    """Tokenizer and datasets; under several processes the main one builds the token cache first."""
    from babylm_dataset import build_datasets
    from tokenizer import load_tokenizer

    tokenizer = load_tokenizer(cfg.data.tokenizer_dir)
    if trainer_args is not None and world_size() > 1:
        with trainer_args.main_process_first(desc="tokenize"):
            train_ds, eval_ds = build_datasets(cfg.data, seed=cfg.training.seed, verbose=is_main_process())
    else:
        train_ds, eval_ds = build_datasets(cfg.data, seed=cfg.training.seed)
    return tokenizer, train_ds, eval_ds


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
        f"- tokenizer: `{d.tokenizer_dir}`, sequence length {d.seq_length}, random offset {d.random_offset}", "",
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


def final_eval_metrics(trainer) -> dict:
    """Eval metrics of the model the run ends with: taken from the log when that model (the best checkpoint, or the
    last step) was evaluated already, so the eval set (and, distilling, the teachers) is not run a second time."""
    st = trainer.state
    step = st.best_global_step if trainer.args.load_best_model_at_end and st.best_global_step else st.global_step
    logged = [h for h in st.log_history if "eval_loss" in h and h.get("step") == step]
    if logged:
        return {k: v for k, v in logged[-1].items() if k.startswith("eval_") or k == "epoch"}
    return dict(trainer.evaluate())


def finish_run(trainer, cfg, tokenizer, kind: str, extra_metrics: dict | None = None) -> dict:
    """Final eval, then model + tokenizer + config + metrics.json + model card into the output folder (main process
    only), and the optional push to the Hub."""
    from models import count_parameters

    t = cfg.training
    metrics = final_eval_metrics(trainer)
    # the distilled student's eval_loss mixes CE and KL: perplexity comes from its CE alone
    metrics["eval_perplexity"] = math.exp(min(metrics.get("eval_ce", metrics["eval_loss"]), 50.0))
    metrics.update(extra_metrics or {})
    metrics["parameters"] = count_parameters(trainer.model)
    metrics["global_step"] = trainer.state.global_step
    metrics["tokens_seen"] = int(trainer.state.num_input_tokens_seen or 0)
    metrics["best_checkpoint"] = trainer.state.best_model_checkpoint
    train_logs = [h for h in trainer.state.log_history if "loss" in h]
    if train_logs:
        metrics["last_train_loss"] = train_logs[-1]["loss"]
    out = Path(t.output_dir)
    # every process: under FSDP / DeepSpeed ZeRO-3 gathering the weights is collective; only the main process writes
    trainer.save_model(str(out))
    if trainer.is_world_process_zero():
        tokenizer.save_pretrained(str(out))
        save_config(cfg, out)
        (out / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
        (out / "README.md").write_text(model_card(cfg, metrics, kind))
        print(f"saved {kind} model to {out}: eval loss {metrics['eval_loss']:.4f}")
        if t.push_to_hub:
            push_folder(out, t.hub_model_id)
    return metrics


def push_folder(folder: Path, repo_id: str):
    """Upload the output folder (model, tokenizer, card, config, metrics; no checkpoints) to the Hub."""
    from huggingface_hub import HfApi

    api = HfApi()
    api.create_repo(repo_id, exist_ok=True)
    api.upload_folder(folder_path=str(folder), repo_id=repo_id, ignore_patterns=["checkpoint-*", "checkpoint-*/**"])
    print(f"pushed {folder} to https://huggingface.co/{repo_id}")


# ----------------------------------------------------------------------------------------------------------------------
# pretraining


def run(cfg: TrainConfig, resume: bool = False, callbacks=()) -> dict:
    from transformers import Trainer, default_data_collator, set_seed

    from models import build_model, count_parameters

    t = cfg.training
    ckpt = resume_checkpoint(t.output_dir, resume)
    precision = resolve_precision(t.precision)
    args = training_arguments(t, precision)
    tokenizer, train_ds, eval_ds = load_data(cfg, args)
    set_seed(t.seed)
    model = build_model(cfg.model, tokenizer, cfg.data.seq_length)
    if is_main_process():
        print(f"{cfg.model.type} model: {count_parameters(model):,} parameters; {len(train_ds):,} train chunks, "
              f"{len(eval_ds):,} eval chunks of {cfg.data.seq_length} tokens; precision {precision}; batch "
              f"{t.batch_size} = {args.per_device_train_batch_size} x {args.gradient_accumulation_steps} accumulation x "
              f"{world_size()} processes")
        save_config(cfg, t.output_dir)
    trainer = Trainer(model=model, args=args, data_collator=default_data_collator, train_dataset=train_ds,
                      eval_dataset=eval_ds, processing_class=tokenizer,
                      callbacks=make_callbacks(t, tokenizer) + list(callbacks))
    attach_callbacks(trainer, trainer.callback_handler.callbacks)
    start = time.time()
    result = trainer.train(resume_from_checkpoint=ckpt)
    extra = {"train_runtime_s": round(time.time() - start, 1), "train_loss": result.training_loss,
             "precision": precision}
    return finish_run(trainer, cfg, tokenizer, "pretraining", extra)


def training_main(argv, schema, run_fn, doc: str) -> int:
    """The command line of a training stage (train.py, distill_train.py): --config, overrides, --resume."""
    parser = argparse.ArgumentParser(description=doc.split("\n\n")[0])
    add_config_args(parser)
    parser.add_argument("--resume", action="store_true", help="continue from the last checkpoint in the output folder")
    args = parser.parse_args(argv)
    if args.help_config:
        print(describe(schema))
        return 0
    run_fn(load_config(schema, args.config, args.overrides), resume=args.resume)
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        # an orderly teardown: a rank leaving with the gloo/NCCL group alive can abort ("terminate called ...")
        torch.distributed.barrier()
        torch.distributed.destroy_process_group()
    return 0


def main(argv=None) -> int:
    return training_main(argv, TrainConfig, run, __doc__)


if __name__ == "__main__":
    sys.exit(run_cli(main))
