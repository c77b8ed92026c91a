"""The distillation loss, in one place: the reference formula, the fused loss used in training, and its top-k variant
for a cached teacher.

    L = alpha * CE(student, labels) + (1 - alpha) * T^2 * KL(p_teacher || q_student)

``reference_distillation_loss`` writes this formula plainly with ``F.cross_entropy`` and ``F.kl_div``; it is what the
tests hold the fast paths to. Both distributions are softened by temperature T. The teacher distribution is the
softmax of the (weighted) mean of the teachers' logits (``combine="logits"``, the paper) or the weighted mean of their
softened probabilities (``combine="probs"``). Positions labelled -100 are ignored.

Normalisation of the KL term (``kl_normalization``):
- ``batchmean`` (paper, authors' code): ``KLDivLoss(reduction="batchmean")`` on [batch, seq, vocab] sums the KL over
  every position and divides by the number of sequences only, so at seq 128 the KL weighs 128 times more per token
  than the CE. The paper's numbers were produced this way.
- ``token_mean``: the KL summed over positions divided by the number of scored positions, like the CE.
KL is scored at every position whose own token is not masked, the last position of a chunk included (it has no
next-token label but the teachers still predict it), as the authors' code does on unpadded chunks. CE is the usual
shifted next-token loss. Under gradient accumulation the trainer passes the whole accumulated batch's counts as the
denominators, so 2 x 4 sequences give the same update as 1 x 8.

``distillation_loss`` takes the teacher as a list of logits tensors (live teachers) or as a ``TopKTeacher`` (the teacher
cache: token ids and log-probs of the k most likely tokens per position). Either way it runs one fused pass over chunks
of positions that computes CE and KL and writes the gradient w.r.t. the student logits: each log-softmax is taken once,
no [B,T,V] softmax copies are kept, and memory beyond the logits and their gradient is ``chunk_size`` x vocab floats.

With a top-k teacher, p_T is known only on the k cached tokens. ``tail``:
- ``uniform``: the top-k probabilities are kept and the missing mass 1 - sum(top-k) is spread uniformly over the other
  V - k tokens (its loss value is the closest to the exact one, its gradient is not: BENCHMARKS.md).
- ``renorm``: p is renormalised over the top-k tokens; tokens outside get probability 0.
- ``student``: the k tokens and one bucket for the rest: KL(p_k, 1 - sum p_k || q_k, 1 - sum q_k). The student's
  tail mass is pulled to the teacher's, its shape inside the tail is left as the student has it (a lower bound on the
  exact KL; equal to it when the tail holds one token). With flat teachers ``uniform`` pulls the student's tail
  toward uniform, which measured 0.38 nats of dev CE worse than exact teachers (RESULTS.md).
With k = V all three are exact.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple

import torch
import torch.nn.functional as F


@dataclass
class DistillLoss:
    loss: torch.Tensor  # alpha * ce + (1 - alpha) * T^2 * kl, differentiable w.r.t. the student logits
    ce: torch.Tensor  # normalised cross-entropy (detached)
    kl: torch.Tensor  # normalised KL(p_teacher || q_student) at temperature T, before T^2 and (1 - alpha) (detached)


class TopKTeacher(NamedTuple):
    """A cached teacher distribution for a batch: token ids [B,T,k] (int64) and their log-probs at T [B,T,k] (fp32)."""

    ids: torch.Tensor
    logp: torch.Tensor


# ----------------------------------------------------------------------------------------------------------------------
# combining teachers


def normalized_weights(weights, n: int) -> list[float]:
    """Per-teacher weights summing to 1 (equal when ``weights`` is None)."""
    w = [1.0] * n if weights is None else [float(x) for x in weights]
    return [x / sum(w) for x in w]


def teacher_log_probs(teacher_logits, weights, combine: str = "logits", temperature: float = 1.0):
    """Log of the combined teacher distribution at temperature T, float32, from N teachers' logits (any shape
    [..., V]; ``weights`` already normalised). ``logits``: log_softmax of the weighted mean of the logits / T (the
    paper); ``probs``: log of the weighted mean of the teachers' softmax(logits / T)."""
    inv_t = 1.0 / temperature
    if combine == "logits" or len(teacher_logits) == 1:
        mean = teacher_logits[0].to(torch.float32, copy=True).mul_(weights[0] * inv_t)  # one fp32 buffer, in place
        for w, t in zip(weights[1:], teacher_logits[1:]):
            mean.add_(t, alpha=w * inv_t)
        return torch.log_softmax(mean, dim=-1)
    logs = [torch.log_softmax(t.float() * inv_t, dim=-1) + math.log(w) for w, t in zip(weights, teacher_logits) if w > 0]
    return torch.logsumexp(torch.stack(logs), dim=0)


# ----------------------------------------------------------------------------------------------------------------------
# the reference


def reference_distillation_loss(student_logits, teacher_logits, labels, *, alpha=0.5, temperature=2.0,
                                kl_normalization="batchmean", teacher_weights=None, teacher_combine="logits"):
    """The formula written plainly (autograd, full [B,T,V] tensors): the yardstick of the fused losses."""
    teachers = [teacher_logits] if torch.is_tensor(teacher_logits) else list(teacher_logits)
    V = student_logits.shape[-1]
    w = normalized_weights(teacher_weights, len(teachers))
    ce = F.cross_entropy(student_logits[:, :-1].reshape(-1, V).float(), labels[:, 1:].reshape(-1), ignore_index=-100)
    m = labels.ne(-100)
    log_p = teacher_log_probs([t[m] for t in teachers], w, teacher_combine, temperature)
    kl = F.kl_div(F.log_softmax(student_logits[m].float() / temperature, -1), log_p, reduction="sum", log_target=True)
    kl = kl / (labels.shape[0] if kl_normalization == "batchmean" else m.sum().clamp_min(1))
    return DistillLoss(alpha * ce + (1 - alpha) * temperature ** 2 * kl, ce.detach(), kl.detach())


# ----------------------------------------------------------------------------------------------------------------------
# the fused losses


def loss_scales(labels, alpha, temperature, kl_normalization, ce_denominator=None, kl_denominator=None):
    """Shifted CE targets, the KL mask, the two denominators and the CE/KL scales."""
    targets = torch.full_like(labels, -100)
    targets[:, :-1] = labels[:, 1:]  # position t predicts token t+1
    kl_mask = labels.ne(-100)
    if ce_denominator is None:
        ce_denominator = targets.ne(-100).sum()
    if kl_denominator is None:
        kl_denominator = labels.shape[0] if kl_normalization == "batchmean" else kl_mask.sum()
    ce_den = max(float(ce_denominator), 1.0)
    kl_den = max(float(kl_denominator), 1.0)
    return targets, kl_mask, ce_den, kl_den, alpha / ce_den, (1.0 - alpha) * temperature ** 2 / kl_den


def _chunks(student, targets, kl_mask, chunk: int):
    """Chunks of positions: (slice, float32 student logits [n, V], clamped targets [n, 1], CE mask [n, 1], KL mask
    [n, 1]). Only one chunk is upcast to float32 at a time."""
    n = student.shape[0]
    for s0 in range(0, n, chunk):
        sl = slice(s0, min(n, s0 + chunk))
        tgt = targets[sl].unsqueeze(1)
        yield sl, student[sl].float(), tgt.clamp_min(0), tgt.ne(-100).float(), kl_mask[sl].float().unsqueeze(1)


class _FusedDistillLoss(torch.autograd.Function):
    """``ce_scale*CE_sum + kl_scale*KL_sum`` chunk by chunk over [N, V] flattened positions, writing the gradient
    w.r.t. the student logits in the same pass; backward only scales it. Also returns the two sums."""

    @staticmethod
    def forward(ctx, student, targets, kl_mask, ce_scale, kl_scale, temperature, weights, combine, chunk, *teachers):
        # Per chunk of positions, with s the student logits, log q1 = log_softmax(s), log q = log_softmax(s/T) and
        # log p the teacher's log-probs at T:
        #   CE_row = -log q1[target];  KL_row = sum_v p_v (log p_v - log q_v)
        #   dCE/ds = q1 - onehot(target);  dKL/ds = (q - p) / T
        # Buffers are reused in place: four float32 [chunk, V] buffers live at a time; small chunks stay in cache.
        grad = torch.empty_like(student) if student.requires_grad else None
        ce_sum = torch.zeros((), dtype=torch.float32, device=student.device)
        kl_sum = torch.zeros((), dtype=torch.float32, device=student.device)
        inv_t = 1.0 / temperature
        for sl, s, tgt0, valid, m in _chunks(student, targets, kl_mask, chunk):
            log_q1 = torch.log_softmax(s, dim=-1)
            ce_sum -= (log_q1.gather(1, tgt0) * valid).sum()
            log_q = torch.log_softmax(s * inv_t, dim=-1) if temperature != 1.0 else log_q1.clone()
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


class _FusedTopKDistillLoss(torch.autograd.Function):
    """Like ``_FusedDistillLoss``, with the teacher given as top-k (ids, log-probs) per position."""

    @staticmethod
    def forward(ctx, student, targets, kl_mask, topk_ids, topk_logp, ce_scale, kl_scale, temperature, chunk, tail):
        n, V = student.shape
        k = topk_ids.shape[1]
        grad = torch.empty_like(student) if student.requires_grad else None
        ce_sum = torch.zeros((), dtype=torch.float32, device=student.device)
        kl_sum = torch.zeros((), dtype=torch.float32, device=student.device)
        inv_t = 1.0 / temperature
        exact_tail = tail == "renorm" or k == V
        for sl, s, tgt0, valid, m in _chunks(student, targets, kl_mask, chunk):
            ids = topk_ids[sl]
            lp = topk_logp[sl].float()
            lse1 = torch.logsumexp(s, dim=-1, keepdim=True)
            ce_sum -= ((s.gather(1, tgt0) - lse1) * valid).sum()
            sT = s * inv_t if temperature != 1.0 else s
            lseT = torch.logsumexp(sT, dim=-1, keepdim=True) if temperature != 1.0 else lse1
            log_q_k = sT.gather(1, ids) - lseT  # [n, k]
            if exact_tail:
                lp = lp - torch.logsumexp(lp, dim=-1, keepdim=True)
                p = lp.exp()
                r = torch.zeros_like(lseT)
                kl_rows = (p * (lp - log_q_k)).sum(-1, keepdim=True)
            elif tail == "student":
                # the missing mass as one bucket against the student's own tail mass: the tail's shape is left free
                p = lp.exp()
                mass = (1.0 - p.sum(-1, keepdim=True)).clamp_min(0.0)
                log_q_tail = torch.logsumexp(sT.scatter(1, ids, float("-inf")), dim=-1, keepdim=True) - lseT
                tail_kl = torch.where(mass > 0, mass * (torch.log(mass.clamp_min(1e-30)) - log_q_tail),
                                      torch.zeros_like(mass))
                kl_rows = (p * (lp - log_q_k)).sum(-1, keepdim=True) + tail_kl
            else:
                # the missing mass spread evenly: r per tail token, and the tail's KL in closed form
                p = lp.exp()
                mass = (1.0 - p.sum(-1, keepdim=True)).clamp_min(0.0)
                r = mass / (V - k)
                sum_log_q = sT.sum(-1, keepdim=True) - V * lseT
                tail_kl = torch.where(mass > 0, mass * torch.log(r.clamp_min(1e-30)) - r * (sum_log_q - log_q_k.sum(
                    -1, keepdim=True)), torch.zeros_like(mass))
                kl_rows = (p * (lp - log_q_k)).sum(-1, keepdim=True) + tail_kl
            kl_sum += (kl_rows * m).sum()
            if grad is not None:
                a = valid * ce_scale  # CE: softmax(s) - onehot
                b = m * (kl_scale * inv_t)  # KL: (softmax(s/T) - p) / T
                g = (s - lse1).exp_().mul_(a)
                q = (sT - lseT).exp_()
                if tail == "student" and not exact_tail:
                    # target on a tail token: mass * q_j / q_tail (the student's own tail, scaled to the teacher's)
                    ratio = mass * torch.exp(-log_q_tail)
                    g.add_(q.mul_(b * (1.0 - ratio)))
                    g.scatter_add_(1, ids, (ratio * log_q_k.exp() - p) * b)
                else:
                    g.add_(q.mul_(b))
                    if not exact_tail:
                        g.sub_(r * b)
                    g.scatter_add_(1, ids, -(p - r) * b)
                g.scatter_add_(1, tgt0, -a)
                grad[sl] = g.to(grad.dtype)
        ctx.save_for_backward(grad)
        ctx.mark_non_differentiable(ce_sum, kl_sum)
        return ce_scale * ce_sum + kl_scale * kl_sum, ce_sum, kl_sum

    @staticmethod
    def backward(ctx, grad_loss, _grad_ce, _grad_kl):
        (grad,) = ctx.saved_tensors
        return (grad * grad_loss.to(grad.dtype),) + (None,) * 9


def distillation_loss(student_logits, teacher, labels, *, alpha: float = 0.5, temperature: float = 2.0,
                      kl_normalization: str = "batchmean", teacher_weights=None, teacher_combine: str = "logits",
                      ce_denominator=None, kl_denominator=None, chunk_size: int = 1024,
                      tail: str = "student") -> DistillLoss:
    """``alpha*CE + (1-alpha)*T^2*KL(p_teacher || q_student)`` for causal LMs, fused and chunked.

    student_logits: [B, T, V]; teacher: one [B, T, V] logits tensor, a sequence of them (N teachers, combined by
    ``teacher_combine`` with ``teacher_weights``), or a ``TopKTeacher`` (cached; ``tail`` says how the mass outside
    the top-k is treated); labels: [B, T] with -100 where nothing is scored. Denominators default to this batch (CE:
    scored tokens; KL: sequences for ``batchmean``, scored positions for ``token_mean``); pass the whole accumulated
    batch's counts under gradient accumulation.
    """
    B, T, V = student_logits.shape
    targets, kl_mask, ce_den, kl_den, ce_scale, kl_scale = loss_scales(
        labels, alpha, temperature, kl_normalization, ce_denominator, kl_denominator)
    flat = (student_logits.reshape(B * T, V), targets.reshape(-1), kl_mask.reshape(-1))
    if isinstance(teacher, TopKTeacher):
        k = teacher.ids.shape[-1]
        if teacher.ids.shape[:2] != (B, T):
            raise ValueError(f"cached teacher {tuple(teacher.ids.shape)} does not match student logits {(B, T, V)}")
        loss, ce_sum, kl_sum = _FusedTopKDistillLoss.apply(
            *flat, teacher.ids.reshape(B * T, k), teacher.logp.reshape(B * T, k), ce_scale, kl_scale,
            float(temperature), int(chunk_size), tail)
    else:
        teachers = [teacher] if torch.is_tensor(teacher) else list(teacher)
        for t in teachers:
            if t.shape != student_logits.shape:
                raise ValueError(f"teacher logits {tuple(t.shape)} do not match student logits "
                                 f"{tuple(student_logits.shape)}")
        w = normalized_weights(teacher_weights, len(teachers))
        loss, ce_sum, kl_sum = _FusedDistillLoss.apply(
            *flat, ce_scale, kl_scale, float(temperature), w, teacher_combine, int(chunk_size),
            *[t.detach().reshape(B * T, V) for t in teachers])
    return DistillLoss(loss=loss, ce=ce_sum / ce_den, kl=kl_sum / kl_den)
