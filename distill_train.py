"""Distil an ensemble of teachers into a student: the heart of Baby Llama.

    python distill_train.py --config config/baby-llama-58M.yaml
    python distill_train.py --config config/tiny-distill.yaml distillation.alpha=0.7 --resume

    L = alpha * CE(student, labels) + (1 - alpha) * T^2 * KL(p_teacher || q_student)

The loss (and its normalisation, ``distillation.kl_normalization``) is in babyllama/losses.py; this script loads and checks the
teachers, and ``DistillationTrainer`` is a thin ``Trainer`` that computes the loss against them, normalises it over the
whole accumulated batch and logs CE and KL separately. With ``distillation.teacher_cache`` (and ``data.random_offset``
off) the teachers' top-k distribution of every chunk is written once before training (babyllama/teacher_cache.py) and read
instead of running the teachers.
"""

from __future__ import annotations

import sys

import torch
from transformers import AutoConfig, TrainerCallback, default_data_collator, set_seed

from babyllama.config import UserError, run_cli, save_config
from babyllama.schema import DistillConfig
from babyllama.losses import distillation_loss
from babyllama.models import (check_model_folder, check_same_vocab, count_parameters, freeze, initial_model, load_causal_lm,
                    max_positions)
from babyllama.teacher_cache import open_caches
from babyllama.words import run_words_seen
from tokenizer import load_tokenizer
from babyllama.run_folder import prepare_output_dir
from babyllama.trainer_setup import (BabyTrainer, attach_callbacks, bf16_supported, holds_output_dir, is_main_process,
                                     load_datasets, make_callbacks, preflight, resolve_precision,
                                     train_and_finish, training_arguments, training_main, world_size)


class _StepCounterReset(TrainerCallback):
    """At train begin (after a resumed state is loaded) the CE/KL log averages start from the current step."""

    def __init__(self, trainer):
        self.trainer = trainer

    def on_train_begin(self, args, state, control, **kw):
        self.trainer._last_logged_step = state.global_step
        self.trainer._train_sums = {"ce": 0.0, "kl": 0.0}


class DistillationTrainer(BabyTrainer):
    """A thin ``Trainer`` whose loss distils ``teachers`` (frozen causal LMs on the student's device) into the model; a
    ``BabyTrainer``, so MoE students and SAM work as in train.py.

    CE and KL are logged separately (``ce``/``kl`` in training logs, ``eval_ce``/``eval_kl`` at evaluation). With a
    teacher cache, hits and misses are counted (``cache_hits``/``cache_misses``, logged as ``cache_miss``); a miss is
    an error unless ``distillation.teacher_cache_miss`` is ``live``.
    """

    def __init__(self, *args, teachers, distill, teacher_cache=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.distill = distill
        self.teacher_cache = teacher_cache  # {split: teacher_cache.TeacherCache} or None: run the teachers live
        self.teachers = [freeze(t).to(self.args.device) for t in teachers]  # not submodules: never saved nor optimised
        self.cache_hits = self.cache_misses = 0
        self.loss_is_scaled_for_ga = True  # compute_loss normalises over the whole accumulated batch itself
        self._denominators = None  # [CE tokens, sequences, KL positions] of the current accumulated batch
        self._train_sums = {"ce": 0.0, "kl": 0.0}  # since the last log; each step adds its CE and KL
        self._eval_sums = {"ce": 0.0, "kl": 0.0, "n": 0}
        self._last_logged_step = 0
        self.add_callback(_StepCounterReset(self))

    # normalisers over the accumulated batch (and over processes), computed once per optimizer step
    def get_batch_samples(self, epoch_iterator, num_batches, device):
        batches, num_items = super().get_batch_samples(epoch_iterator, num_batches, device)
        if batches:
            counts = torch.tensor([[b["labels"][:, 1:].ne(-100).sum(), b["labels"].shape[0], b["labels"].ne(-100).sum()]
                                   for b in batches], dtype=torch.float64).sum(0).to(device)
            if self.args.world_size > 1:
                counts = self.accelerator.gather(counts.unsqueeze(0)).sum(0)
            self._denominators = counts.tolist()
        return batches, num_items

    @torch.no_grad()
    def teacher_logits(self, inputs):
        """The teachers' logits for a batch (a list, one [B,T,V] tensor per teacher), or a ``TopKTeacher`` from the
        teacher cache when one is configured and holds every chunk of the batch (checked against the tokens)."""
        if self.teacher_cache:
            if inputs.get("chunk_index") is not None:
                for cache in self.teacher_cache.values():
                    hit = cache.lookup(inputs["chunk_index"], inputs["input_ids"])
                    if hit is not None:
                        self.cache_hits += not self.sam_second_pass  # a batch counts once, SAM or not
                        return hit
            self.cache_misses += not self.sam_second_pass
            if not self.teachers:
                raise UserError(f"teacher cache miss at step {self.state.global_step}: a batch is not in "
                                f"{next(iter(self.teacher_cache.values())).folder.parent}; delete that folder to "
                                "rebuild it, or set distillation.teacher_cache_miss=live")
        with torch.inference_mode():
            return [t(input_ids=inputs["input_ids"], attention_mask=inputs.get("attention_mask"), use_cache=False).logits
                    for t in self.teachers]

    def student_forward(self, model, inputs):
        """The student's forward, without labels. Under bf16, accelerate wraps the prepared model's forward in autocast
        *and* an fp32 conversion of its outputs: a full [B,T,V] fp32 copy of the logits (and of their gradient) that
        the loss does not need, as it upcasts chunk by chunk. Where that wrapper sits directly on the model (no DDP,
        no torch.compile wrapper), call the original forward under the same autocast and keep bf16 logits."""
        kw = dict(input_ids=inputs["input_ids"], attention_mask=inputs.get("attention_mask"), use_cache=False,
                  **self.router_kwargs)
        original = model.__dict__.get("_original_forward")
        if original is not None and self.args.bf16 and not isinstance(model, torch.nn.parallel.DistributedDataParallel):
            with torch.autocast(device_type=inputs["input_ids"].device.type, dtype=torch.bfloat16):
                return original(**kw)
        return model(**kw)

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        d = self.distill
        labels = inputs["labels"]
        # the student is called without labels: the loss below computes its CE, no second pass over the logits
        outputs = self.student_forward(model, inputs)
        ce_den = kl_den = None
        if model.training and self._denominators is not None:
            n_ce, n_seq, n_kl = self._denominators
            ce_den, kl_den = n_ce, (n_seq if d.kl_normalization == "batchmean" else n_kl)
        out = distillation_loss(outputs.logits, self.teacher_logits(inputs), labels, alpha=d.alpha,
                                temperature=d.temperature, kl_normalization=d.kl_normalization,
                                teacher_weights=d.teacher_weights, teacher_combine=d.teacher_combine,
                                ce_denominator=ce_den, kl_denominator=kl_den, chunk_size=d.loss_chunk_size,
                                tail=d.teacher_cache_tail)
        loss = out.loss
        if model.training and self.args.world_size > 1:
            loss = loss * self.args.world_size  # DDP averages gradients; the denominators already span all processes
        loss = loss + self.router_loss(model, outputs, trainer_divides=False)  # a per-process mean: DDP averages it
        if model.training:
            if not self.sam_second_pass:  # SAM's second pass (at perturbed weights) is not logged
                # normalised by the whole accumulated batch, the micro-batches' terms add up to the step's CE and KL
                self._train_sums["ce"] += out.ce.item()
                self._train_sums["kl"] += out.kl.item()
        else:
            self._eval_sums["ce"] += out.ce.item() * labels.shape[0]
            self._eval_sums["kl"] += out.kl.item() * labels.shape[0]
            self._eval_sums["n"] += labels.shape[0]
        return (loss, outputs) if return_outputs else loss

    def evaluation_loop(self, *args, **kwargs):
        self._eval_sums = {"ce": 0.0, "kl": 0.0, "n": 0}
        output = super().evaluation_loop(*args, **kwargs)
        prefix = kwargs.get("metric_key_prefix", "eval")
        # each process scored its shard of the eval set: sum over processes (a shard padded to even batches counts
        # its few repeated sequences, as the eval loss does not; eval_samples a multiple of the global batch avoids it)
        ce, kl, n = self._sum_over_processes([self._eval_sums["ce"], self._eval_sums["kl"], self._eval_sums["n"]])
        output.metrics[f"{prefix}_ce"] = ce / max(n, 1)
        output.metrics[f"{prefix}_kl"] = kl / max(n, 1)
        return output

    def _sum_over_processes(self, values):
        """Python floats summed over the processes (as they are with one process)."""
        if self.args.world_size <= 1:
            return values
        t = torch.tensor([values], dtype=torch.float64, device=self.args.device)
        return self.accelerator.gather(t).sum(0).tolist()

    def log(self, logs, *args, **kwargs):
        if "loss" in logs:  # a training log: add the mean CE and KL per step since the last one
            steps = max(self.state.global_step - self._last_logged_step, 1)
            # every process calls log() at a logging step; each holds its share of the globally normalised CE and KL
            ce, kl = self._sum_over_processes([self._train_sums["ce"], self._train_sums["kl"]])
            logs["ce"] = round(ce / steps, 4)
            logs["kl"] = round(kl / steps, 4)
            if self.teacher_cache:
                logs["cache_miss"] = self.cache_misses
            self._train_sums = {"ce": 0.0, "kl": 0.0}
            self._last_logged_step = self.state.global_step
        return super().log(logs, *args, **kwargs)


def load_teachers(cfg, tokenizer, dtype):
    """Load the teacher folders after checking each has intact weights, shares the student's tokenizer and accepts
    the sequence length."""
    student_tok = f"student tokenizer {cfg.data.tokenizer_dir}"
    for path in cfg.distillation.teachers:
        tcfg = AutoConfig.from_pretrained(str(check_model_folder(path, "teacher")))
        check_same_vocab(f"teacher {path}", load_tokenizer(path), student_tok, tokenizer)
        if tcfg.vocab_size != len(tokenizer):
            raise UserError(f"teacher {path} has an output vocab of {tcfg.vocab_size} but the {student_tok} has "
                            f"{len(tokenizer)} entries; teachers and student must use the same tokenizer")
        mp = max_positions(tcfg)
        if mp is not None and mp < cfg.data.seq_length:
            raise UserError(f"teacher {path} accepts {mp} positions but data.seq_length is {cfg.data.seq_length}; "
                            "shorten the sequences or use another teacher")
    return [freeze(load_causal_lm(p, dtype=dtype, role="teacher")) for p in cfg.distillation.teachers]


@holds_output_dir  # one run at a time in training.output_dir
def run(cfg: DistillConfig, resume: bool = False, overwrite: bool = False, callbacks=()) -> dict:
    t, d = cfg.training, cfg.distillation
    checkpoint = prepare_output_dir(cfg, resume, overwrite)  # before anything is written
    precision = resolve_precision(t.precision)
    args = training_arguments(t, precision, metric="eval_ce" if d.best_metric == "ce" else "eval_loss",
                              curriculum=cfg.data.curriculum is not None)
    tokenizer = preflight(cfg, args)
    teacher_bf16 = d.teacher_precision == "bf16" or (d.teacher_precision == "auto" and bf16_supported())
    teachers = load_teachers(cfg, tokenizer, torch.bfloat16 if teacher_bf16 else torch.float32)
    train_ds, eval_ds = load_datasets(cfg, args)
    sizes = ", ".join(f"{count_parameters(m):,}" for m in teachers)
    caches = None
    if d.teacher_cache:  # built (first run) or opened before training; items then carry their chunk index
        teachers = [m.to(args.device) for m in teachers]
        with args.main_process_first(desc="teacher cache"):
            caches = open_caches(cfg, teachers, {"train": train_ds.distinct(), "eval": eval_ds},  # a chunk once
                                 batch_size=args.per_device_eval_batch_size, verbose=is_main_process())
        train_ds.return_index = eval_ds.return_index = True
        if d.teacher_cache_miss == "error":
            teachers = []  # the cache holds every chunk of both splits: the teachers' memory goes back
    set_seed(t.seed)
    student = initial_model(cfg.model, tokenizer, cfg.data.seq_length, t.init_from)
    if is_main_process():
        print(f"student {cfg.model.type}: {count_parameters(student):,} parameters; teachers: {sizes} "
              f"({'bf16' if teacher_bf16 else 'fp32'}{', cached' if caches else ''}); {len(train_ds):,} train chunks, "
              f"{len(eval_ds):,} eval chunks; precision {precision}; batch {t.batch_size} = "
              f"{args.per_device_train_batch_size} x {args.gradient_accumulation_steps} accumulation x {world_size()} "
              "processes")
        save_config(cfg, t.output_dir)
    trainer = DistillationTrainer(model=student, args=args, data_collator=default_data_collator,
                                  train_dataset=train_ds, eval_dataset=eval_ds, processing_class=tokenizer,
                                  callbacks=list(callbacks) + make_callbacks(t, tokenizer, train_ds), teachers=teachers,
                                  distill=d, teacher_cache=caches, sam_rho=t.sam_rho if t.optimizer == "sam" else None)
    attach_callbacks(trainer)
    # the words each teacher saw (how they count under the BabyLM rules is the user's call; the figures are shown)
    teacher_words = {p: run_words_seen(p) for p in d.teachers}
    return train_and_finish(trainer, cfg, tokenizer, checkpoint, "distillation",
                            {"precision": precision, "teachers": list(d.teachers), "teacher_words_seen": teacher_words})


def main(argv=None) -> int:
    return training_main(argv, DistillConfig, run, __doc__)


if __name__ == "__main__":
    sys.exit(run_cli(main))
