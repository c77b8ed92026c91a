"""GAP, gradient ascent post-training (Yoon et al. 2023; the Baby Llama paper's appendix B): a few Adam steps that
*raise* a trained model's loss on chunks of text, written as a new model folder.

    python gap.py --config config/gap.yaml gap.model_dir=models/baby-llama-58M gap.output_dir=models/baby-llama-58M-gap
    python gap.py --config config/gap.yaml gap.model_dir=... gap.output_dir=... gap.steps=100

The input folder is only read. The output folder gets the model (its config.json says ``gap_steps``, ``gap_lr``,
``gap_batch_size`` and ``gap_from``), the tokenizer, the input's training config.yaml (so scoring encodes text as the
model was trained), ``gap.yaml`` (this run's settings) and ``metrics.json``: the mean CE of the ascended chunks before
and after, and per step. It is written to ``<output_dir>.tmp`` and renamed when complete.

A stage of its own, not a train.py option: it takes any trained model (a teacher, a plain or a distilled student),
runs seconds of batch-1 steps with no eval set, checkpoints or schedule, and none of train.py's model section applies.
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import numpy as np
import torch

from babylm_dataset import ChunkDataset, load_split_ids, trained_separator
from babyllama.config import UserError, run_cli, save_config, stage_main
from babyllama.files import write_atomic
from babyllama.locks import locked
from babyllama.models import check_model_folder, load_causal_lm, max_positions
from babyllama.schema import GapConfig
from tokenizer import load_tokenizer


@torch.no_grad()
def mean_loss(model, batches) -> float:
    model.eval()
    return float(np.mean([model(input_ids=b, labels=b).loss.item() for b in batches]))


@locked(lambda cfg: cfg.gap.output_dir, "gap.output_dir")  # one run at a time per output folder
def run(cfg: GapConfig) -> dict:
    g = cfg.gap
    out, tmp = Path(g.output_dir), Path(g.output_dir + ".tmp")
    if out.exists():
        raise UserError(f"gap.output_dir {out} exists; GAP writes a new folder: pick another path or move that one "
                        "aside")
    check_model_folder(g.model_dir, "gap.model_dir")
    tokenizer = load_tokenizer(g.model_dir)
    separator, every = trained_separator(g.model_dir)
    ids = load_split_ids(g.text_dir, g.model_dir, g.cache_dir, separator, every)
    chunks = ChunkDataset(ids, g.seq_length)
    need = g.steps * g.batch_size
    if len(chunks) < need:
        raise UserError(f"gap.text_dir {g.text_dir}: {len(chunks)} chunks of {g.seq_length} tokens, fewer than "
                        f"steps x batch_size = {need}; give more text or fewer steps")
    device = "cuda" if torch.cuda.is_available() else "cpu"
    model = load_causal_lm(g.model_dir, device=device, role="gap.model_dir")
    if (max_positions(model.config) or g.seq_length) < g.seq_length:
        raise UserError(f"gap.seq_length {g.seq_length}: the model accepts {max_positions(model.config)} positions; "
                        "lower it")
    picks = np.random.default_rng(g.seed).choice(len(chunks), size=need, replace=False)
    batches = [torch.stack([chunks[int(i)]["input_ids"] for i in picks[s * g.batch_size:(s + 1) * g.batch_size]])
               .to(device) for s in range(g.steps)]
    before = mean_loss(model, batches)
    optimizer = torch.optim.Adam(model.parameters(), lr=g.lr)
    model.train()
    per_step = []
    for batch in batches:
        loss = model(input_ids=batch, labels=batch).loss
        (-loss).backward()  # ascent: the optimizer descends -loss
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        per_step.append(round(loss.item(), 4))
    after = mean_loss(model, batches)
    model.config.update(dict(gap_steps=g.steps, gap_lr=g.lr, gap_batch_size=g.batch_size, gap_from=str(g.model_dir)))
    if tmp.exists():
        shutil.rmtree(tmp)  # a GAP run killed before its rename: nothing else writes there
    model.save_pretrained(str(tmp))
    tokenizer.save_pretrained(str(tmp))
    if (Path(g.model_dir) / "config.yaml").is_file():
        shutil.copyfile(Path(g.model_dir) / "config.yaml", tmp / "config.yaml")
    save_config(cfg, tmp, "gap.yaml")
    metrics = {"gap_steps": g.steps, "loss_before": before, "loss_after": after, "step_losses": per_step}
    write_atomic(tmp / "metrics.json", json.dumps(metrics, indent=2) + "\n")
    tmp.rename(out)
    print(f"GAP: {g.steps} steps on {g.text_dir}: CE of those chunks {before:.4f} -> {after:.4f}; saved {out}")
    return metrics


def main(argv=None) -> int:
    return stage_main(argv, GapConfig, run, "config/gap.yaml", __doc__.split("\n\n")[0])


if __name__ == "__main__":
    sys.exit(run_cli(main))
