"""A local stand-in for the Hugging Face Hub's HTTP API, so that huggingface_hub's real download path can be tested
on a machine that cannot reach the hub.

It answers the three requests minibert's use of huggingface_hub makes (read from huggingface_hub's file_download.py
and hf_api.py): the tree listing `GET /api/models/{repo}/tree/{revision}`, and `HEAD` / `GET
/{repo}/resolve/{revision}/{file}` with the headers hf_hub_download needs (X-Repo-Commit, ETag, Content-Length), and
the error codes it maps to exceptions (X-Error-Code: RepoNotFound, RevisionNotFound, EntryNotFound).
"""

import hashlib
import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote


class FakeHub:
    """Serve {(repo_id, revision): (commit, source directory)} on 127.0.0.1; `downloads` lists every file sent."""

    def __init__(self, repos: dict[tuple[str, str], tuple[str, Path]]):
        self.repos = repos
        self.downloads: list[str] = []
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()

    def lookup(self, repo_id: str, revision: str) -> tuple[str, Path] | str:
        """(commit, source) of a repo at a revision (a ref or a commit), else the X-Error-Code to answer with."""
        if not any(repo == repo_id for repo, _ in self.repos):
            return "RepoNotFound"
        for (repo, ref), (commit, source) in self.repos.items():
            if repo == repo_id and revision in (ref, commit):
                return commit, source
        return "RevisionNotFound"


def _handler(hub: FakeHub):
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):  # keep pytest's output clean
            pass

        def do_HEAD(self):
            self.resolve(send_body=False)

        def do_GET(self):
            if self.path.startswith("/api/models/"):
                self.tree()
            else:
                self.resolve(send_body=True)

        def tree(self):
            match = re.fullmatch(r"/api/models/([^/]+/[^/]+|[^/]+)/tree/([^/?]+)(?:\?.*)?", self.path)
            found = hub.lookup(match[1], unquote(match[2]))
            if isinstance(found, str):
                return self.error(found)
            commit, source = found
            files = [
                {
                    "type": "file",
                    "path": p.relative_to(source).as_posix(),
                    "size": p.stat().st_size,
                    "oid": hashlib.sha1(p.read_bytes()).hexdigest(),
                }
                for p in sorted(source.rglob("*"))
                if p.is_file()
            ]
            self.reply(json.dumps(files).encode(), {"Content-Type": "application/json", "X-Repo-Commit": commit})

        def resolve(self, send_body: bool):
            match = re.fullmatch(r"/(.+)/resolve/([^/]+)/(.+)", self.path.split("?")[0])
            repo_id, revision, filename = match[1], unquote(match[2]), unquote(match[3])
            found = hub.lookup(repo_id, revision)
            if isinstance(found, str):
                return self.error(found)
            commit, source = found
            path = source / filename
            if not path.is_file():
                return self.error("EntryNotFound", {"X-Repo-Commit": commit})
            data = path.read_bytes()
            if send_body:
                hub.downloads.append(filename)
            etag = hashlib.sha256(data).hexdigest()  # as for an LFS file; any stable id will do
            self.reply(data if send_body else b"", {"X-Repo-Commit": commit, "ETag": f'"{etag}"'}, len(data))

        def reply(self, body: bytes, headers: dict, length: int | None = None):
            self.send_response(200)
            for key, value in headers.items():
                self.send_header(key, value)
            self.send_header("Content-Length", str(len(body) if length is None else length))
            self.end_headers()
            self.wfile.write(body)

        def error(self, code: str, headers: dict | None = None):
            self.send_response(404)
            self.send_header("X-Error-Code", code)
            for key, value in (headers or {}).items():
                self.send_header(key, value)
            self.send_header("Content-Length", "0")
            self.end_headers()

    return Handler
