"""Push a run's checkpoints by words seen to the Hugging Face Hub, once training is over (BabyLM submissions).

    python push_checkpoints.py models/baby-llama-58M --repo user/baby-llama-58m
    python push_checkpoints.py runs/paper/models/distilled --repo user/name --no-main   # the branches only

Each ``<run>/chck_<N>M/`` (written with ``training.save_words``) goes to the branch ``chck_<N>M`` of the repo, in
order of words seen, then the finished model (``<run>/`` itself, without checkpoints) to ``main``. The repo is created
when missing; ``--repo`` defaults to the run's ``training.hub_model_id``. A folder already on its branch (pushed by
the training run or an earlier call, recorded in ``<run>/hub_pushes.json``) is not pushed again; a failed push is
retried, and the command ends with exit status 1 naming what is still to push (run it again).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import huggingface_hub
import yaml

from babyllama.config import UserError, run_cli
from babyllama.hub import HubPusher
from babyllama.run_folder import is_finished
from babyllama.words import checkpoint_folders


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run", help="the run's output folder (training.output_dir)")
    parser.add_argument("--repo", help="Hub repo id, e.g. user/baby-llama-58m (default: the run's hub_model_id)")
    parser.add_argument("--no-main", action="store_true", help="push the checkpoints' branches only")
    args = parser.parse_args(argv)
    run = Path(args.run)
    if not run.is_dir():
        raise UserError(f"{run}: no such run folder; give a training.output_dir")
    repo = args.repo
    if repo is None and (run / "config.yaml").is_file():
        repo = ((yaml.safe_load((run / "config.yaml").read_text()) or {}).get("training") or {}).get("hub_model_id")
    if not repo:
        raise UserError(f"{run}: the run names no training.hub_model_id; pass --repo user/name")
    folders = checkpoint_folders(run)
    main_too = not args.no_main and is_finished(run)
    if not folders and not main_too:
        raise UserError(f"{run}: no chck_* checkpoints (training.save_words) and no finished model to push")
    try:
        huggingface_hub.HfApi().create_repo(repo, exist_ok=True)
    except Exception as e:  # no network, no token, no rights
        raise UserError(f"cannot create or reach {repo} on the Hub ({str(e).splitlines()[0][:160]}); log in with "
                        "`hf auth login` and check the network") from None
    pusher = HubPusher(repo, run, background=False)
    for folder in folders:
        pusher.push(folder, folder.name)
    if not main_too and not args.no_main:
        print(f"{run} holds no finished model (metrics.json): main not pushed")
    failed = pusher.finish(run if main_too else None)
    if failed:
        print(f"still to push: {', '.join(failed)}; run the same command again", file=sys.stderr)
        return 1
    print(f"{repo}: {len(folders)} checkpoint branches" + (" and main" if main_too else "") + " up to date")
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
