"""Distil an ensemble of teachers into a student: the heart of Baby Llama.

    python distill_train.py --config config/baby-llama-58M.yaml
    python distill_train.py --config config/tiny-distill.yaml distillation.alpha=0.7 --resume

    L = alpha * CE(student, labels) + (1 - alpha) * T^2 * KL(p_teacher || q_student)

both distributions softened by temperature T; the teacher distribution comes from the mean of the teachers' logits (the
paper) or of their probabilities (``teacher_combine: probs``), optionally weighted. Positions labelled -100 are ignored.

Normalisation of the KL term (``distillation.kl_normalization``):
- ``batchmean`` (paper, authors' code): ``KLDivLoss(reduction="batchmean")`` on [batch, seq, vocab] sums the KL over
  every position and divides by the number of sequences only, so at seq 128 the KL weighs 128 times more per token
  than the CE. The paper's numbers were produced this way.
- ``token_mean``: the KL summed over positions divided by the number of scored positions, like the CE.
KL is scored at every position whose own token is not masked, the last position of a chunk included (it has no
next-token label but the teachers still predict it), which is what the authors' code does on unpadded chunks. CE is the
usual shifted next-token loss. Under gradient accumulation both terms are normalised over the whole accumulated batch,
so 2 x 4 sequences give the same update as 1 x 8.

The loss is computed in chunks of positions in one fused pass that also writes the gradient w.r.t. the student logits:
each log-softmax is taken once, no [B,T,V] softmax copies are kept, and memory beyond the logits and their gradient is
bounded by ``loss_chunk_size`` x vocab floats.

With ``distillation.teacher_cache`` (and ``data.random_offset`` off) the teachers' top-k distribution of every chunk is
written once before training (teacher_cache.py) and read instead of running the teachers; the loss then uses
``teacher_cache.topk_distillation_loss``. See BENCHMARKS.md for speed and the approximation error per k.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass

import torch

from config import DistillConfig, UserError, run_cli, save_config
from models import normalized_weights, teacher_log_probs

# ----------------------------------------------------------------------------------------------------------------------
# the pure loss


@dataclass
class DistillLoss:
    loss: torch.Tensor  # alpha * ce + (1 - alpha) * T^2 * kl, differentiable w.r.t. the student logits
    ce: torch.Tensor  # normalised cross-entropy (detached)
    kl: torch.Tensor  # normalised KL(p_teacher || q_student) at temperature T, before T^2 and (1 - alpha) (detached)


def loss_chunks(student, targets, kl_mask, chunk: int):
    """Chunks of positions for the fused losses: (slice, float32 student logits [n, V], clamped targets [n, 1], CE mask
    [n, 1], KL mask [n, 1]). Only one chunk is upcast to float32 at a time."""
    n = student.shape[0]
    for s0 in range(0, n, chunk):
        sl = slice(s0, min(n, s0 + chunk))
        tgt = targets[sl].unsqueeze(1)
        yield sl, student[sl].float(), tgt.clamp_min(0), tgt.ne(-100).float(), kl_mask[sl].float().unsqueeze(1)


class _FusedDistillLoss(torch.autograd.Function):
    """Computes ``ce_scale*CE_sum + kl_scale*KL_sum`` chunk by chunk over [N, V] flattened positions, writing the
    gradient w.r.t. the student logits in the same pass; backward only scales it. Also returns the two sums."""

    @staticmethod
    def forward(ctx, student, targets, kl_mask, ce_scale, kl_scale, temperature, weights, combine, chunk, *teachers):
        # Per chunk of positions, with s the student logits, log q1 = log_softmax(s), log q = log_softmax(s/T) and
        # log p the teacher's log-probs at T:
        #   CE_row = -log q1[target];  KL_row = sum_v p_v (log p_v - log q_v)
        #   dCE/ds = q1 - onehot(target);  dKL/ds = (q - p) / T
        # The fused (log_)softmax kernels are used throughout and buffers are reused in place: four float32 [chunk, V]
        # buffers live at a time; small chunks stay in cache.
        grad = torch.empty_like(student) if student.requires_grad else None
        ce_sum = torch.zeros((), dtype=torch.float32, device=student.device)
        kl_sum = torch.zeros((), dtype=torch.float32, device=student.device)
        inv_t = 1.0 / temperature
        for sl, s, tgt0, valid, m in loss_chunks(student, targets, kl_mask, chunk):
            log_q1 = torch.log_softmax(s, dim=-1)
            ce_sum -= (log_q1.gather(1, tgt0) * valid).sum()
            log_q = torch.log_softmax(s * inv_t, dim=-1) if temperature != 1.0 else log_q1.clone()
            if combine == "logits" or len(teachers) == 1:
                mean = teachers[0][sl].to(torch.float32, copy=True).mul_(weights[0] * inv_t)
                for w, t in zip(weights[1:], teachers[1:]):
                    mean.add_(t[sl], alpha=w * inv_t)
                log_p = torch.log_softmax(mean, dim=-1)
                p = torch.exp(log_p, out=mean)
            else:
                log_p = teacher_log_probs([t[sl] for t in teachers], weights, combine, temperature)
                p = log_p.exp()
            kl_rows = torch.linalg.vecdot(p, log_p.sub_(log_q))  # sum_v p (log p - log q), no product buffer
            kl_sum += (kl_rows * m.squeeze(1)).sum()
            if grad is not None:
                g = log_q.exp_().sub_(p).mul_(m * (kl_scale * inv_t))  # KL part, in log_q's buffer
                g.add_(log_q1.exp_().mul_(valid * ce_scale))  # CE part
                g.scatter_add_(1, tgt0, -valid * ce_scale)
                grad[sl].copy_(g)
        ctx.save_for_backward(grad)
        ctx.n_inputs = 9 + len(teachers)
        ctx.mark_non_differentiable(ce_sum, kl_sum)
        return ce_scale * ce_sum + kl_scale * kl_sum, ce_sum, kl_sum

    @staticmethod
    def backward(ctx, grad_loss, _grad_ce, _grad_kl):
        (grad,) = ctx.saved_tensors
        if not (grad_loss.numel() == 1 and float(grad_loss) == 1.0):  # the usual case needs no [N,V] copy
            grad = grad * grad_loss.to(grad.dtype)
        return (grad,) + (None,) * (ctx.n_inputs - 1)


def loss_scales(labels, alpha, temperature, kl_normalization, ce_denominator=None, kl_denominator=None):
    """Shifted CE targets, the KL mask, the two denominators and the CE/KL scales (shared with teacher_cache)."""
    targets = torch.full_like(labels, -100)
    targets[:, :-1] = labels[:, 1:]  # position t predicts token t+1
    kl_mask = labels.ne(-100)
    if ce_denominator is None:
        ce_denominator = targets.ne(-100).sum()
    if kl_denominator is None:
        kl_denominator = labels.shape[0] if kl_normalization == "batchmean" else kl_mask.sum()
    ce_den = float(ce_denominator) if not torch.is_tensor(ce_denominator) else ce_denominator.float().clamp_min(1).item()
    kl_den = float(kl_denominator) if not torch.is_tensor(kl_denominator) else kl_denominator.float().clamp_min(1).item()
    ce_den, kl_den = max(ce_den, 1.0), max(kl_den, 1.0)
    return targets, kl_mask, ce_den, kl_den, alpha / ce_den, (1.0 - alpha) * temperature ** 2 / kl_den


def distillation_loss(student_logits, teacher_logits, labels, *, alpha: float = 0.5, temperature: float = 2.0,
                      kl_normalization: str = "batchmean", teacher_weights=None, teacher_combine: str = "logits",
                      ce_denominator=None, kl_denominator=None, chunk_size: int = 1024) -> DistillLoss:
    """``alpha*CE + (1-alpha)*T^2*KL(p_teacher || q_student)`` for causal LMs.

    student_logits: [B, T, V]; teacher_logits: one [B, T, V] tensor or a sequence of them (N teachers, combined by
    ``teacher_combine`` with ``teacher_weights``); labels: [B, T] with -100 where nothing is scored. CE is the shifted
    next-token loss over labels != -100; KL is scored at positions whose own label is not -100. Denominators default to
    this batch (CE: scored tokens; KL: sequences for ``batchmean``, scored positions for ``token_mean``); pass the whole
    accumulated batch's counts under gradient accumulation.
    """
    teachers = [teacher_logits] if torch.is_tensor(teacher_logits) else list(teacher_logits)
    B, T, V = student_logits.shape
    for t in teachers:
        if t.shape != student_logits.shape:
            raise ValueError(f"teacher logits {tuple(t.shape)} do not match student logits {tuple(student_logits.shape)}")
    w = normalized_weights(teacher_weights, len(teachers))
    targets, kl_mask, ce_den, kl_den, ce_scale, kl_scale = loss_scales(
        labels, alpha, temperature, kl_normalization, ce_denominator, kl_denominator)
    loss, ce_sum, kl_sum = _FusedDistillLoss.apply(
        student_logits.reshape(B * T, V), targets.reshape(-1), kl_mask.reshape(-1), ce_scale, kl_scale,
        float(temperature), w, teacher_combine, int(chunk_size), *[t.detach().reshape(B * T, V) for t in teachers])
    return DistillLoss(loss=loss, ce=ce_sum / ce_den, kl=kl_sum / kl_den)


# ----------------------------------------------------------------------------------------------------------------------
# the trainer


from transformers import Trainer, TrainerCallback  # noqa: E402


class _StepCounterReset(TrainerCallback):
    """At train begin (after a resumed state is loaded) the CE/KL log averages start from the current step."""

    def __init__(self, trainer):
        self.trainer = trainer

    def on_train_begin(self, args, state, control, **kw):
        self.trainer._last_logged_step = state.global_step
        self.trainer._train_sums = {"ce": 0.0, "kl": 0.0}


class DistillationTrainer(Trainer):
    """A thin ``Trainer`` whose loss distils ``teachers`` (frozen causal LMs on the student's device) into the model.

    CE and KL are logged separately (``ce``/``kl`` in training logs, ``eval_ce``/``eval_kl`` at evaluation).
    """

    def __init__(self, *args, teachers, distill, teacher_cache=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.distill = distill
        self.teacher_cache = teacher_cache  # {split: teacher_cache.TeacherCache} or None: run the teachers live
        self.teachers = [t.to(self.args.device) for t in teachers]  # not submodules: never saved nor optimised
        for t in self.teachers:
            t.eval()
            t.requires_grad_(False)
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
        if self.teacher_cache and inputs.get("chunk_index") is not None:
            for cache in self.teacher_cache.values():
                hit = cache.lookup(inputs["chunk_index"], inputs["input_ids"])
                if hit is not None:
                    return hit
        with torch.inference_mode():
            return [t(input_ids=inputs["input_ids"], attention_mask=inputs.get("attention_mask"), use_cache=False).logits
                    for t in self.teachers]

    def student_forward(self, model, inputs):
        """The student's forward, without labels. Under bf16, accelerate wraps the prepared model's forward in autocast
        *and* an fp32 conversion of its outputs: a full [B,T,V] fp32 copy of the logits (and of their gradient) that
        the loss does not need, as it upcasts chunk by chunk. Where that wrapper sits directly on the model (no DDP,
        no torch.compile wrapper), call the original forward under the same autocast and keep bf16 logits."""
        kw = dict(input_ids=inputs["input_ids"], attention_mask=inputs.get("attention_mask"), use_cache=False)
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
        teacher_logits = self.teacher_logits(inputs)
        ce_den = kl_den = None
        if model.training and self._denominators is not None:
            n_ce, n_seq, n_kl = self._denominators
            ce_den = n_ce
            kl_den = n_seq if d.kl_normalization == "batchmean" else n_kl
        if hasattr(teacher_logits, "logp"):  # a cached top-k teacher
            from teacher_cache import topk_distillation_loss

            out = topk_distillation_loss(outputs.logits, teacher_logits, labels, alpha=d.alpha,
                                         temperature=d.temperature, kl_normalization=d.kl_normalization,
                                         ce_denominator=ce_den, kl_denominator=kl_den, chunk_size=d.loss_chunk_size,
                                         tail=d.teacher_cache_tail)
        else:
            out = distillation_loss(outputs.logits, teacher_logits, labels, alpha=d.alpha, temperature=d.temperature,
                                    kl_normalization=d.kl_normalization, teacher_weights=d.teacher_weights,
                                    teacher_combine=d.teacher_combine, ce_denominator=ce_den, kl_denominator=kl_den,
                                    chunk_size=d.loss_chunk_size)
        loss = out.loss
        if model.training and self.args.world_size > 1:
            loss = loss * self.args.world_size  # DDP averages gradients; the denominators already span all processes
        if model.training:
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
            self._train_sums = {"ce": 0.0, "kl": 0.0}
            self._last_logged_step = self.state.global_step
        return super().log(logs, *args, **kwargs)


# ----------------------------------------------------------------------------------------------------------------------
# loading and checking the teachers


def load_teachers(cfg, tokenizer, dtype):
    """Load the teacher folders after checking each shares the student's tokenizer and accepts the sequence length."""
    from pathlib import Path

    from models import check_same_vocab, freeze, load_causal_lm, max_positions
    from tokenizer import load_tokenizer

    from transformers import AutoConfig

    student_tok = f"student tokenizer {cfg.data.tokenizer_dir}"
    for path in cfg.distillation.teachers:
        folder = Path(path)
        if not (folder / "config.json").is_file():
            raise UserError(f"{folder}: teacher folder has no config.json; train it with train.py first or fix "
                            "distillation.teachers")
        check_same_vocab(f"teacher {folder}", load_tokenizer(folder), student_tok, tokenizer)
        tcfg = AutoConfig.from_pretrained(str(folder))
        if tcfg.vocab_size != len(tokenizer):
            raise UserError(f"teacher {folder} has an output vocab of {tcfg.vocab_size} but the {student_tok} has "
                            f"{len(tokenizer)} entries; teachers and student must use the same tokenizer")
        mp = max_positions(tcfg)
        if mp is not None and mp < cfg.data.seq_length:
            raise UserError(f"teacher {folder} accepts {mp} positions but data.seq_length is {cfg.data.seq_length}; "
                            "shorten the sequences or use another teacher")
    return [freeze(load_causal_lm(p, dtype=dtype)) for p in cfg.distillation.teachers]


def run(cfg: DistillConfig, resume: bool = False, callbacks=()) -> dict:
    from transformers import default_data_collator, set_seed

    from models import build_model, count_parameters
    from train import (attach_callbacks, bf16_supported, finish_run, is_main_process, load_data, make_callbacks,
                       resolve_precision, resume_checkpoint, training_arguments, world_size)

    t, d = cfg.training, cfg.distillation
    ckpt = resume_checkpoint(t.output_dir, resume)
    precision = resolve_precision(t.precision)
    metric = "eval_ce" if d.best_metric == "ce" else "eval_loss"
    args = training_arguments(t, precision, metric=metric)
    tokenizer, train_ds, eval_ds = load_data(cfg, args)
    teacher_bf16 = d.teacher_precision == "bf16" or (d.teacher_precision == "auto" and bf16_supported())
    teachers = load_teachers(cfg, tokenizer, torch.bfloat16 if teacher_bf16 else torch.float32)
    caches = None
    if d.teacher_cache:  # built (first run) or opened before training; items then carry their chunk index
        from teacher_cache import open_caches

        teachers = [m.to(args.device) for m in teachers]
        with args.main_process_first(desc="teacher cache"):
            caches = open_caches(cfg, teachers, {"train": train_ds, "eval": eval_ds},
                                 batch_size=args.per_device_eval_batch_size, verbose=is_main_process())
        train_ds.return_index = eval_ds.return_index = True
    set_seed(t.seed)
    student = build_model(cfg.model, tokenizer, cfg.data.seq_length)
    if is_main_process():
        sizes = ", ".join(f"{count_parameters(m):,}" for m in teachers)
        print(f"student {cfg.model.type}: {count_parameters(student):,} parameters; teachers: {sizes} "
              f"({'bf16' if teacher_bf16 else 'fp32'}); {len(train_ds):,} train chunks, {len(eval_ds):,} eval chunks; "
              f"precision {precision}; batch {t.batch_size} = {args.per_device_train_batch_size} x "
              f"{args.gradient_accumulation_steps} accumulation x {world_size()} processes")
        save_config(cfg, t.output_dir)
    trainer = DistillationTrainer(model=student, args=args, data_collator=default_data_collator,
                                  train_dataset=train_ds, eval_dataset=eval_ds, processing_class=tokenizer,
                                  callbacks=make_callbacks(t, tokenizer) + list(callbacks), teachers=teachers,
                                  distill=d, teacher_cache=caches)
    attach_callbacks(trainer, trainer.callback_handler.callbacks)
    start = time.time()
    result = trainer.train(resume_from_checkpoint=ckpt)
    extra = {"train_runtime_s": round(time.time() - start, 1), "train_loss": result.training_loss,
             "precision": precision, "teachers": list(d.teachers)}
    return finish_run(trainer, cfg, tokenizer, "distillation", extra)


def main(argv=None) -> int:
    from train import training_main

    return training_main(argv, DistillConfig, run, __doc__)


if __name__ == "__main__":
    sys.exit(run_cli(main))
