"""A local stand-in of the Hugging Face Hub's HTTP API, enough for huggingface_hub's own client code to create a repo
and branches, commit folders to a branch (files sent inline, as the Hub's "regular" upload mode), list refs and trees,
and download files (transformers' from_pretrained(repo, revision=branch)). It answers through an httpx MockTransport
installed with huggingface_hub.set_client_factory: no socket, no network. Every repo lives in memory:
{branch: commit}, {commit: {path: bytes}}. ``fail_commits`` makes the next n commits answer 403 (huggingface_hub
retries 5xx and network errors itself, for about 25 s, before our retries: a 403 comes through at once)."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import re
from urllib.parse import unquote

import httpx2
import huggingface_hub
from huggingface_hub.utils import _http

API = re.compile(r"^/api/models/([^/]+/[^/]+)/(refs|branch|preupload|commit|tree|revision)(?:/([^/]+))?(?:/(.*))?$")
RESOLVE = re.compile(r"^/([^/]+/[^/]+)/resolve/([^/]+)/(.+)$")


class LocalHub:
    def __init__(self):
        self.repos = {}  # repo_id -> {"branches": {name: commit}, "commits": {commit: {path: bytes}}}
        self.log = []  # (method, path) of every request
        self.commits = []  # (repo_id, branch, sorted paths) of every commit made
        self.fail_commits = 0

    # --- what a test reads back ------------------------------------------------------------------------------------
    def files(self, repo_id: str, branch: str) -> dict[str, bytes]:
        repo = self.repos[repo_id]
        return repo["commits"][repo["branches"][branch]]

    def branches(self, repo_id: str) -> list[str]:
        return sorted(self.repos[repo_id]["branches"])

    # --- the API -----------------------------------------------------------------------------------------------------
    def handle(self, request: httpx2.Request) -> httpx2.Response:
        path = unquote(request.url.path)
        self.log.append((request.method, path))
        if path == "/api/repos/create":
            body = json.loads(request.content)
            repo_id = f"{body['organization']}/{body['name']}"
            if repo_id in self.repos:  # the Hub's 409 names the repo's url too
                return httpx2.Response(409, headers={"X-Error-Message": "You already created this model repo"},
                                       json={"error": "You already created this model repo",
                                             "url": f"https://huggingface.co/{repo_id}"})
            init = self._commit_id(repo_id, "init")
            self.repos[repo_id] = {"branches": {"main": init},
                                   "commits": {init: {".gitattributes": b"*.safetensors filter=lfs\n"}}}
            return httpx2.Response(200, json={"url": f"https://huggingface.co/{repo_id}"})
        if path == "/api/validate-yaml":
            return httpx2.Response(200, json={})
        m = API.match(path) or RESOLVE.match(path)
        if m is None:
            return _error(404, "EntryNotFound", f"no route {path}")
        repo = self.repos.get(m.group(1))
        if repo is None:
            return _error(404, "RepoNotFound", "Repository not found")
        if m.re is RESOLVE:
            return self._resolve(request, repo, m.group(2), m.group(3))
        kind, rev = m.group(2), m.group(3)
        if kind == "refs":
            return httpx2.Response(200, json={"branches": [{"name": b, "ref": f"refs/heads/{b}", "targetCommit": c}
                                                           for b, c in repo["branches"].items()],
                                              "converts": [], "tags": []})
        if kind == "branch":
            if rev in repo["branches"]:
                return _error(409, None, "Reference already exists")
            start = (json.loads(request.content or b"{}") or {}).get("startingPoint", "main")
            repo["branches"][rev] = repo["branches"].get(start, start)
            return httpx2.Response(200, json={})
        if rev not in repo["branches"]:
            return _error(404, "RevisionNotFound", f"Invalid rev id: {rev}")
        files = repo["commits"][repo["branches"][rev]]
        if kind == "preupload":
            return httpx2.Response(200, json={"files": [{"path": f["path"], "uploadMode": "regular",
                                                         "shouldIgnore": False, "oid": None}
                                                        for f in json.loads(request.content)["files"]]})
        if kind == "tree":
            return httpx2.Response(200, json=[{"type": "file", "path": p, "size": len(b), "oid": _git_oid(b)}
                                              for p, b in sorted(files.items())])
        if kind == "revision":
            return httpx2.Response(200, json={"id": m.group(1), "sha": repo["branches"][rev],
                                              "siblings": [{"rfilename": p} for p in sorted(files)]})
        return self._commit(m.group(1), repo, rev, request.content)

    def _commit(self, repo_id, repo, branch, content: bytes) -> httpx2.Response:
        if self.fail_commits:
            self.fail_commits -= 1
            return _error(403, None, "You don't have the rights to write to this repo (stand-in)")
        files = dict(repo["commits"][repo["branches"][branch]])
        for line in content.splitlines():
            op = json.loads(line)
            value = op["value"]
            if op["key"] == "file":
                files[value["path"]] = base64.b64decode(value["content"])
            elif op["key"] == "deletedFile":
                files.pop(value["path"], None)
            elif op["key"] != "header":
                return _error(400, None, f"the stand-in does not take {op['key']}")
        commit = self._commit_id(repo_id, json.dumps(sorted((p, _git_oid(b)) for p, b in files.items())) + branch
                                 + str(len(self.commits)))
        repo["commits"][commit] = files
        repo["branches"][branch] = commit
        self.commits.append((repo_id, branch, sorted(files)))
        return httpx2.Response(200, json={"commitUrl": f"https://huggingface.co/{repo_id}/commit/{commit}",
                                          "commitOid": commit, "pullRequestUrl": None})

    def _resolve(self, request, repo, rev, path) -> httpx2.Response:
        commit = repo["branches"].get(rev, rev)
        files = repo["commits"].get(commit)
        if files is None:
            return _error(404, "RevisionNotFound", f"Invalid rev id: {rev}")
        if path not in files:
            return _error(404, "EntryNotFound", f"{path} does not exist on {rev}")
        body = files[path]
        headers = {"X-Repo-Commit": commit, "ETag": f'"{_git_oid(body)}"', "Content-Length": str(len(body))}
        return httpx2.Response(200, headers=headers, content=b"" if request.method == "HEAD" else body)

    @staticmethod
    def _commit_id(repo_id: str, salt: str) -> str:
        return hashlib.sha1(f"{repo_id}:{salt}".encode()).hexdigest()


def _git_oid(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def _error(status: int, code: str | None, message: str) -> httpx2.Response:
    headers = {"X-Error-Message": message, **({"X-Error-Code": code} if code else {})}
    return httpx2.Response(status, headers=headers, json={"error": message})


@contextlib.contextmanager
def serving(hub: LocalHub):
    """huggingface_hub's shared HTTP client answers from ``hub`` inside the block."""
    huggingface_hub.set_client_factory(lambda: httpx2.Client(
        transport=httpx2.MockTransport(hub.handle), event_hooks={"request": [_http.hf_request_event_hook]},
        follow_redirects=True))
    try:
        yield hub
    finally:
        huggingface_hub.set_client_factory(_http.default_client_factory)
