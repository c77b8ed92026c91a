"""Trainer callbacks of the training stages: evaluation at epoch ends, time-based checkpoints, Ctrl-C to a checkpoint,
and a stop before a non-finite update reaches the weights."""

from __future__ import annotations

import signal
import sys
import threading
import time
from pathlib import Path

import torch
from transformers import TrainerCallback

from config import UserError


class NonFiniteLoss(UserError):
    """The loss or a gradient became nan/inf: the run stops before the update and keeps its checkpoints."""


def _last_checkpoint(output_dir) -> str:
    found = sorted(Path(output_dir).glob("checkpoint-*"), key=lambda p: int(p.name.split("-")[-1]) if
                   p.name.split("-")[-1].isdigit() else -1)
    return str(found[-1]) if found else "none (no checkpoint was saved yet)"


class EpochEndEvalCallback(TrainerCallback):
    """With step evaluation on, still evaluate and save at the end of every epoch."""

    def on_epoch_end(self, args, state, control, **kw):
        control.should_evaluate = True
        control.should_save = True
        return control


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
