"""Trainer callbacks shared by the training scripts: BLiMP accuracy during training."""

from __future__ import annotations

from transformers import TrainerCallback

from scoring import encode_pairs, load_pairs, score_encoded, summarize


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
