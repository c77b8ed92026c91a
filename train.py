"""Pretrain a causal LM (the teachers, or the student without distillation) from YAML with the stock HF Trainer.

    python train.py --config config/llama-360M.yaml
    python train.py --config config/tiny-llama.yaml training.lr=1e-3 training.num_epochs=2
    python train.py --config config/llama-360M.yaml --resume      # continue from the newest intact checkpoint

The output folder gets the final model (the best checkpoint by eval loss), its tokenizer, the resolved config
(``config.yaml``), a model card (``README.md``) and, last, ``metrics.json``; ``AutoModelForCausalLM.from_pretrained``
and ``AutoTokenizer.from_pretrained`` load it. Checkpoints go to ``<output_dir>/checkpoint-*``; with
``training.save_words`` (BabyLM: ``babylm``) a model folder ``<output_dir>/chck_<N>M`` at each number of words seen
(babyllama/words.py), never rotated away. ``words_seen`` is logged and kept in metrics.json. A folder holding a
finished model is never trained over: ``--overwrite`` moves it aside. Ctrl-C saves a checkpoint and prints the command
that resumes.
"""

from __future__ import annotations

import sys

from transformers import default_data_collator, set_seed

from babyllama.config import run_cli, save_config
from babyllama.schema import TrainConfig
from babyllama.models import count_parameters, initial_model
from babyllama.run_folder import prepare_output_dir
from babyllama.trainer_setup import (BabyTrainer, attach_callbacks, holds_output_dir, is_main_process, load_datasets,
                                     make_callbacks, preflight, resolve_precision, train_and_finish,
                                     training_arguments, training_main, world_size)


@holds_output_dir  # one run at a time in training.output_dir
def run(cfg: TrainConfig, resume: bool = False, overwrite: bool = False, callbacks=()) -> dict:
    t = cfg.training
    checkpoint = prepare_output_dir(cfg, resume, overwrite)  # before anything is written
    precision = resolve_precision(t.precision)
    args = training_arguments(t, precision, curriculum=cfg.data.curriculum is not None)
    tokenizer = preflight(cfg, args)
    train_ds, eval_ds = load_datasets(cfg, args)
    set_seed(t.seed)
    model = initial_model(cfg.model, tokenizer, cfg.data.seq_length, t.init_from)
    if is_main_process():
        print(f"{cfg.model.type} model: {count_parameters(model):,} parameters; {len(train_ds):,} train chunks, "
              f"{len(eval_ds):,} eval chunks of {cfg.data.seq_length} tokens; precision {precision}; batch "
              f"{t.batch_size} = {args.per_device_train_batch_size} x {args.gradient_accumulation_steps} accumulation "
              f"x {world_size()} processes")
        save_config(cfg, t.output_dir)
    trainer = BabyTrainer(model=model, args=args, data_collator=default_data_collator, train_dataset=train_ds,
                          eval_dataset=eval_ds, processing_class=tokenizer,
                          callbacks=list(callbacks) + make_callbacks(t, tokenizer, train_ds),
                          sam_rho=t.sam_rho if t.optimizer == "sam" else None)
    attach_callbacks(trainer)
    return train_and_finish(trainer, cfg, tokenizer, checkpoint, "pretraining", {"precision": precision})


def main(argv=None) -> int:
    return training_main(argv, TrainConfig, run, __doc__)


if __name__ == "__main__":
    sys.exit(run_cli(main))
