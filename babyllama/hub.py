"""Pushing a run to the Hugging Face Hub as the BabyLM rules ask: the final model to ``main``, each words-seen
checkpoint ``chck_<N>M`` (babyllama/words.py) to the branch of that name in the same repo.

Uploads go through ``huggingface_hub`` (``create_branch``, ``upload_folder(revision=...)``); a checkpoint's branch
holds exactly its folder (files of the branch's starting point are deleted, ``.gitattributes`` kept). A failed push is
retried ``RETRIES`` times (each try after huggingface_hub's own retries of 5xx answers and network errors), then
reported; the local folder stays, and training goes on. Each push is recorded in
``<output_dir>/hub_pushes.json`` (repo -> branch -> fingerprint of the folder's files and the commit), so a folder
already on its branch is not pushed again: after a resume, or by ``push_checkpoints.py`` later.
"""

from __future__ import annotations

import fnmatch
import json
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import huggingface_hub
from transformers import TrainerCallback

from babyllama.files import hash_files, write_atomic
from babyllama.words import checkpoint_folders

RETRIES = 3
RETRY_SECONDS = 30.0  # the wait before the second try, doubled before each later one (a Hub hiccup, a dropped link)
RECORD = "hub_pushes.json"
NOT_ON_MAIN = ["checkpoint-*", "chck_*", ".*", RECORD]  # the run's other files: Trainer checkpoints, milestones, temps


def pushed_files(folder, branch: str) -> list[Path]:
    """The files of ``folder`` that a push to ``branch`` sends (main: not the run's checkpoints, temps and record)."""
    skip = NOT_ON_MAIN if branch == "main" else [".*"]
    return sorted(p for p in Path(folder).rglob("*") if p.is_file() and not any(
        fnmatch.fnmatch(str(p.relative_to(folder)), pattern) for pattern in skip))


def push_folder(api, repo_id: str, folder, branch: str = "main") -> str:
    """One push of ``folder`` to ``branch`` (created from main when missing); returns the commit id."""
    folder = Path(folder)
    if branch != "main":
        api.create_branch(repo_id, branch=branch, exist_ok=True)
    info = api.upload_folder(repo_id=repo_id, folder_path=str(folder), revision=branch,
                             commit_message=f"{folder.name} ({branch})",
                             ignore_patterns=NOT_ON_MAIN if branch == "main" else [".*"],
                             delete_patterns=None if branch == "main" else "*")
    return info.oid


class HubPusher(TrainerCallback):
    """Pushes a run's folders to one repo, each with retries, in order; ``background``: in a worker thread, so
    training does not wait. At train begin, checkpoints written but not yet pushed (a kill, a failed push) are
    queued again; ``finish(output_dir)`` waits for the queue and pushes the final model to main."""

    def __init__(self, repo_id: str, output_dir, background: bool = True, log=print):
        self.repo_id, self.output_dir, self.log = repo_id, Path(output_dir), log
        self.pool = ThreadPoolExecutor(max_workers=1) if background else None
        self.failed: list[str] = []
        self._branches = None  # the repo's branches, listed once

    def on_train_begin(self, args, state, control, **kw):
        for folder in checkpoint_folders(self.output_dir):
            self.push(folder, folder.name)

    # --- the record ---------------------------------------------------------------------------------------------------
    def recorded(self) -> dict:
        try:
            return json.loads((self.output_dir / RECORD).read_text()).get(self.repo_id, {})
        except (OSError, ValueError):
            return {}

    def _record(self, branch: str, fingerprint: str, commit: str):
        path = self.output_dir / RECORD
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError):
            data = {}
        data.setdefault(self.repo_id, {})[branch] = {"fingerprint": fingerprint, "commit": commit}
        write_atomic(path, json.dumps(data, indent=1) + "\n")

    def on_hub(self, api, branch: str) -> bool:
        if self._branches is None:
            self._branches = {b.name for b in api.list_repo_refs(self.repo_id).branches}
        return branch in self._branches

    # --- pushing -----------------------------------------------------------------------------------------------------
    def push(self, folder, branch: str):
        """Push ``folder`` to ``branch`` (queued when in the background)."""
        if self.pool is None:
            return self._push(Path(folder), branch)
        self.pool.submit(self._push, Path(folder), branch)

    def _push(self, folder: Path, branch: str) -> bool:
        api = huggingface_hub.HfApi()
        fingerprint = hash_files(pushed_files(folder, branch), root=folder)  # what goes up, names and contents
        error = None
        for attempt in range(RETRIES):
            try:
                if self.recorded().get(branch, {}).get("fingerprint") == fingerprint and self.on_hub(api, branch):
                    self.log(f"{folder.name} is on {self.repo_id}@{branch} already: not pushed again")
                    return True
                commit = push_folder(api, self.repo_id, folder, branch)
                self._record(branch, fingerprint, commit)
                self.log(f"pushed {folder} to https://huggingface.co/{self.repo_id}/tree/{branch}")
                return True
            except Exception as e:  # no network, a Hub error: retried, then reported; the folder stays
                error = str(e).splitlines()[0][:160] if str(e) else type(e).__name__
                if attempt + 1 < RETRIES:
                    self.log(f"pushing {folder.name} to {self.repo_id}@{branch} failed ({error}); trying again")
                    time.sleep(RETRY_SECONDS * 2 ** attempt)
        self.failed.append(branch)
        self.log(f"warning: pushing {folder} to {self.repo_id}@{branch} failed {RETRIES} times ({error}); the folder "
                 f"stays; push it later with: python push_checkpoints.py {self.output_dir} --repo {self.repo_id}")
        return False

    def finish(self, final_folder=None) -> list[str]:
        """Wait for the queued pushes, then push ``final_folder`` to main; the branches that failed."""
        if self.pool is not None:
            self.pool.shutdown(wait=True)
            self.pool = None
        if final_folder is not None:
            self._push(Path(final_folder), "main")
        return self.failed
