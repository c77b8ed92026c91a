"""Trainer callbacks of the training stages: evaluation at epoch ends (a curriculum's too), time-based checkpoints,
Ctrl-C to a checkpoint, a stop before a non-finite update reaches the weights, and BLiMP accuracy during training."""

from __future__ import annotations

import signal
import sys
import threading
import time
from pathlib import Path

import torch
from transformers import TrainerCallback

from babyllama.config import UserError
from babyllama.scoring import encode_pairs, load_pairs, score_encoded, summarize


class NonFiniteLoss(UserError):
    """The loss or a gradient became nan/inf: the run stops before the update and keeps its checkpoints."""


def _last_checkpoint(output_dir) -> str:
    found = sorted(Path(output_dir).glob("checkpoint-*"), key=lambda p: int(p.name.split("-")[-1]) if
                   p.name.split("-")[-1].isdigit() else -1)
    return str(found[-1]) if found else "none (no checkpoint was saved yet)"


class EpochEndEvalCallback(TrainerCallback):
    """With step evaluation on, still evaluate and save at the end of every epoch, unless that step was evaluated and
    saved already (eval_steps divides the epoch, or the last step: the Trainer evaluates it before the epoch ends, and
    a second pass, with live teachers a second pass of the teachers too, would only repeat its numbers)."""

    def __init__(self):
        self.evaluated = self.saved = -1

    def on_evaluate(self, args, state, control, **kw):
        self.evaluated = state.global_step

    def on_save(self, args, state, control, **kw):
        self.saved = state.global_step

    def on_epoch_end(self, args, state, control, **kw):
        control.should_evaluate = control.should_evaluate or self.evaluated != state.global_step
        control.should_save = control.should_save or self.saved != state.global_step
        return control


class EvalAtSteps(TrainerCallback):
    """Evaluate and save at the given global steps (where the epochs of a data curriculum end)."""

    def __init__(self, steps):
        self.steps = set(steps)

    def on_step_end(self, args, state, control, **kw):
        if state.global_step in self.steps:
            control.should_evaluate = True
            control.should_save = True
        return control

class LogBeforeSave(TrainerCallback):
    """Log the training loss at every save, so a checkpoint's log history covers every step up to it: a resumed run's
    train_loss over the whole run is then computed exactly (``trainer_setup.whole_run_train_loss``). Goes last."""

    def on_step_end(self, args, state, control, **kw):
        control.should_log = control.should_log or control.should_save
        return control

    on_epoch_end = on_step_end


class StopOnNonFinite(TrainerCallback):
    """Before each optimizer step, check that every gradient is finite (a nan/inf loss makes them so). If not, stop
    with a one-line error naming the step: the weights never see the bad update, and the checkpoints already written
    stay as they are. One fused norm per step: negligible next to the step."""

    def on_pre_optimizer_step(self, args, state, control, model=None, **kw):
        grads = [p.grad for p in model.parameters() if p.grad is not None]
        if grads and not bool(torch.isfinite(torch.stack(torch._foreach_norm(grads))).all()):
            raise NonFiniteLoss(f"non-finite loss or gradient at step {state.global_step + 1}: training stopped before "
                                f"that update; last good checkpoint: {_last_checkpoint(args.output_dir)}; lower "
                                "training.lr or check the data, then continue with --resume")


def _any_process(flag: bool) -> bool:
    """True on every process when it is true on one (processes must agree on saving: saves are collective)."""
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        t = torch.tensor([int(flag)])
        torch.distributed.all_reduce(t, op=torch.distributed.ReduceOp.MAX)
        return bool(t.item())
    return flag


class SaveEveryMinutes(TrainerCallback):
    """Save a checkpoint whenever ``minutes`` passed since the last save, so a crash loses at most that much work
    (epoch-end checkpoints alone can be hours apart on the paper's runs)."""

    def __init__(self, minutes: float):
        self.seconds = 60.0 * minutes
        self.last = time.monotonic()

    def on_train_begin(self, args, state, control, **kw):
        self.last = time.monotonic()

    def on_save(self, args, state, control, **kw):
        self.last = time.monotonic()

    def on_step_end(self, args, state, control, **kw):
        if _any_process(time.monotonic() - self.last >= self.seconds):
            control.should_save = True
        return control


class SaveOnInterrupt(TrainerCallback):
    """Ctrl-C (SIGINT) during training finishes the current step, saves a checkpoint and stops; ``interrupted`` then
    tells the caller to say how to resume. A second Ctrl-C stops at once. Single-process runs only (processes of a
    distributed run would not agree on the step)."""

    def __init__(self):
        self.interrupted = False
        self._previous = None

    def _handler(self, signum, frame):
        if self.interrupted:
            raise KeyboardInterrupt
        self.interrupted = True
        print("\ninterrupted: saving a checkpoint after this step (Ctrl-C again to stop at once)", file=sys.stderr,
              flush=True)

    def on_train_begin(self, args, state, control, **kw):
        if args.world_size == 1 and threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGINT, self._handler)

    def on_step_end(self, args, state, control, **kw):
        if self.interrupted:
            control.should_save = True
            control.should_training_stop = True
        return control

    def on_train_end(self, args, state, control, **kw):
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)
            self._previous = None


class BlimpCallback(TrainerCallback):
    """Score the first ``pairs_per_file`` pairs of each BLiMP file every ``every_steps`` optimizer steps and log
    ``blimp_acc`` (mean over phenomena), ``blimp_acc_files`` (mean over files) and ``blimp_<phenomenon>``.

        cb = BlimpCallback("data/blimp", every_steps=500, pairs_per_file=20)
        trainer = Trainer(model=..., args=..., processing_class=tokenizer, ...)
        cb.attach(trainer)   # trainer.add_callback(cb) unless already there; cb.trainer = trainer

    With the trainer attached, the metrics go through ``trainer.log`` and so reach wandb/tensorboard and
    ``state.log_history``; without it they are only appended to ``state.log_history`` and printed. The model and
    tokenizer come from the callback's ``model``/``processing_class`` arguments (or pass ``tokenizer=``). The pairs
    are read at construction (a bad folder fails before training) and tokenized once. The model's train/eval mode is
    restored afterwards. Only the main process scores.
    """

    def __init__(self, blimp_dir, every_steps: int = 500, pairs_per_file: int = 20, batch_size: int = 64,
                 prefix: str = "bos", tokenizer=None, trainer=None):
        self.pairs = load_pairs(blimp_dir, pairs_per_file, identical="tie")  # BLiMP's 7 identical pairs: as lm-eval
        self.every_steps, self.batch_size, self.prefix = every_steps, batch_size, prefix
        self.tokenizer, self.trainer = tokenizer, trainer
        self._encoded = None

    def attach(self, trainer):
        if self not in trainer.callback_handler.callbacks:  # already given as Trainer(callbacks=[cb])
            trainer.add_callback(self)
        self.trainer = trainer
        return self

    def evaluate(self, model, tokenizer=None) -> dict:
        """Score the subset now and return the metrics (does not log)."""
        if self._encoded is None:
            tok = tokenizer or self.tokenizer
            if tok is None:
                raise ValueError("BlimpCallback needs a tokenizer: pass tokenizer= or give the Trainer a "
                                 "processing_class")
            self._encoded = encode_pairs(tok, self.pairs, self.prefix)
        was_training = model.training
        try:
            scores = score_encoded(model, self._encoded, self.batch_size)
        finally:
            model.train(was_training)
        res = summarize(self.pairs, scores)
        metrics = {"blimp_acc": res["averages"]["phenomena"], "blimp_acc_files": res["averages"]["files"]}
        if metrics["blimp_acc"] is None:  # only supplement files
            metrics["blimp_acc"] = metrics["blimp_acc_files"]
        metrics.update({f"blimp_{k}": v["acc"] for k, v in res["phenomena"].items()})
        if res["averages"]["supplement"] is not None:
            metrics["blimp_supplement"] = res["averages"]["supplement"]
        return metrics

    def on_step_end(self, args, state, control, model=None, processing_class=None, **kwargs):
        if state.global_step % self.every_steps or not state.is_world_process_zero or model is None:
            return
        metrics = self.evaluate(model, self.tokenizer or processing_class)
        if self.trainer is not None:
            self.trainer.log(dict(metrics))
        else:
            state.log_history.append({**metrics, "step": state.global_step})
            print(f"step {state.global_step}: blimp_acc {metrics['blimp_acc']:.4f}")
