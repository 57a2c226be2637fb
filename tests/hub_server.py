"""A small, real Hugging Face Hub look-alike served over loopback HTTP, for tests.

It answers the part of the Hub's HTTP API that the *unmodified* ``huggingface_hub`` (2.4) and ``transformers`` (5.x)
clients call in this project's tests (``push_to_hub``, ``from_pretrained``, ``pipeline``, ``ModelCard``,
``HfApi.create_repo``/``create_branch``/``upload_folder``, ``scripts/train.py --push_to_hub``,
``scripts/push_to_hub.py``):

* ``POST /api/repos/create``; ``POST /api/validate-yaml``;
* ``GET /api/models/{repo}[/revision/{rev}]`` (``sha``, ``private``, ``siblings``, ``cardData``), ``.../refs``,
  ``.../tree/{rev}[/{path}]``, ``.../commits/{rev}``; ``POST .../preupload/{rev}``, ``.../commit/{rev}`` (NDJSON:
  a header, then ``file`` and ``lfsFile`` lines), ``.../branch/{name}``;
* git LFS, basic transfer: ``POST /{repo}.git/info/lfs/objects/batch`` (upload) and ``.../verify``;
* ``GET|HEAD /{repo}/resolve/{rev}/{path}`` with ``X-Repo-Commit`` and ``ETag``. An LFS file answers 302 to a second
  origin, the "CDN", with ``X-Linked-Etag``/``X-Linked-Size``, as the Hub does: the client drops the token for that
  hop. The CDN takes ``PUT /lfs-upload/{sha256}`` and serves ``GET|HEAD /lfs/{sha256}``;
* Hub-style errors (``X-Error-Code``: ``RepoNotFound``, ``RevisionNotFound``, ``EntryNotFound``), so that the clients
  raise their standard exceptions.

Anything else (another route, a pull request, ``parentCommit``, a deletion, a ``Range`` request, a chunked body) is
answered 404 and listed in ``server.unhandled``, which the tests check stays empty. Xet is never offered: clients run
with ``HF_HUB_DISABLE_XET=1`` (the fixture sets it) and use plain LFS.

A file goes through LFS when it has 10 MiB or more or its sample holds a NUL byte, as the Hub decides for binary files.
Regular files are kept in memory, LFS objects under ``root/lfs/<sha256>``: written to a temporary file, renamed once
their sha256 matches, so a partial upload never shows. Every commit gets a fresh 40-hex id and history is kept, so
``revision=<old commit id>`` keeps resolving. A commit is atomic: its whole body is read and checked before the branch
moves, in one step; a dropped connection or a bad line leaves the repo as it was.

The ``hub_server`` fixture (import ``hub_server_fixture`` into a test module; the name avoids ruff's F811) starts a
server with its storage under ``tmp_path`` and points this process' clients at it: the environment variables, and the
values ``huggingface_hub`` and ``transformers`` computed from them at import time. ``server.run_python(code)`` runs a
child that is configured by the environment only. For assertions: ``head()``, ``commits()``, ``list_files()``,
``read_file()``, ``file_entry()``, ``repo_exists()``; the request log ``requests``, ``requests_matching()``,
``log_text()`` (method, path, status, origin, whether a token came with it: never a header, never a token);
``unhandled``; ``errors`` (tracebacks of the server's own failures). Faults: ``fail_next_commit_midway`` (read half
of the next commit's body, then reset the connection; ``dropped_connections`` counts them) and ``valid_tokens``
(``None`` accepts any token; a set answers 401 to the others).
"""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import datetime
import hashlib
import importlib.util
import json
import os
import re
import secrets
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import traceback
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote

import pytest
import yaml

FAKE_TOKEN = "hf_FakeTokenForTests0123456789abcdefXYZ"
REPO_ROOT = Path(__file__).resolve().parent.parent
LFS_THRESHOLD = 10 * 1024 * 1024  # the Hub's: a file this large goes through LFS
# The .gitattributes that the Hub puts into a new repo's initial commit (abridged: this server does not read it).
GITATTRIBUTES = b"""\
*.bin filter=lfs diff=lfs merge=lfs -text
*.pt filter=lfs diff=lfs merge=lfs -text
*.pth filter=lfs diff=lfs merge=lfs -text
*.safetensors filter=lfs diff=lfs merge=lfs -text
*tfevents* filter=lfs diff=lfs merge=lfs -text
"""
_CHUNK = 1024 * 1024
_SHA256 = re.compile(r"[0-9a-f]{64}")
_YAML_BLOCK = re.compile(r"\s*---\r?\n([\S\s]*?)\r?\n---[ \t]*(?:\r?\n|$)")
# A developer's own settings (offline mode, other caches, legacy token and cache variables) must not reach a client.
_UNSET = (
    "HF_HUB_OFFLINE",
    "TRANSFORMERS_OFFLINE",
    "HF_DATASETS_OFFLINE",
    "HF_ASSETS_CACHE",
    "HF_XET_CACHE",
    "HF_TOKEN_PATH",
    "HF_MODULES_CACHE",
    "HUGGINGFACE_HUB_CACHE",
    "HUGGINGFACE_ASSETS_CACHE",
    "HUGGING_FACE_HUB_TOKEN",
    "HUGGINGFACE_CO_STAGING",
    "HF_HUB_ENABLE_HF_TRANSFER",
    "HF_HUB_DISABLE_IMPLICIT_TOKEN",
    "HF_XET_HIGH_PERFORMANCE",
    "TRANSFORMERS_CACHE",
)


def git_blob_oid(data: bytes) -> str:
    """The git object id of a blob with this content (what the Hub calls a file's ``oid``)."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def lfs_pointer(sha256: str, size: int) -> bytes:
    """The pointer file that stands for an LFS object in the git tree."""
    return f"version https://git-lfs.github.com/spec/v1\noid sha256:{sha256}\nsize {size}\n".encode()


def free_port() -> int:
    """A loopback port that had nothing listening on it a moment ago (for 'the Hub is unreachable' tests)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def card_metadata(text: str) -> dict | None:
    """The YAML block at the top of a model card (``None`` without one); ``ValueError`` if it is not a mapping."""
    match = _YAML_BLOCK.match(text)
    if match is None:
        return None
    try:
        data = yaml.safe_load(match.group(1))
    except yaml.YAMLError as err:
        raise ValueError(f"Invalid YAML metadata: {str(err).splitlines()[0]}") from None
    if data is not None and not isinstance(data, dict):
        raise ValueError("The metadata must be a YAML mapping")
    return data


def client_env(endpoint: str, hf_home: str | os.PathLike, token: str | None = FAKE_TOKEN) -> dict[str, str | None]:
    """The environment of a client of the fake Hub at ``endpoint``, with its caches under ``hf_home`` (``None``:
    unset the variable)."""
    return {
        **dict.fromkeys(_UNSET),
        "HF_ENDPOINT": endpoint,
        "HF_TOKEN": token,
        "HF_HOME": str(hf_home),
        "HF_HUB_CACHE": os.path.join(hf_home, "hub"),
        "HF_HUB_DISABLE_XET": "1",
        "HF_HUB_DISABLE_TELEMETRY": "1",
        "HF_HUB_DISABLE_UPDATE_CHECK": "1",
        "HF_HUB_DISABLE_PROGRESS_BARS": "1",
        "NO_PROXY": "127.0.0.1,localhost",
        "no_proxy": "127.0.0.1,localhost",
    }


def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class HubError(Exception):
    """Answered as a Hub error: the status, the message (``X-Error-Message``, the body's ``error``), ``X-Error-Code``.
    ``fields`` go into the JSON body as well."""

    def __init__(self, status: int, message: str, code: str | None = None, headers: dict | None = None, **fields):
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code
        self.headers = headers or {}
        self.fields = fields


class _DropConnection(Exception):
    """Reset the client's connection without answering (a server that dies in the middle of a request)."""


class _ClientGone(ConnectionError):
    """The client closed the connection before it sent the whole request body."""


# ----------------------------------------------------------------------------------------------------------------------
# Data model
# ----------------------------------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class FileEntry:
    """A file in a commit's tree: a regular file with its bytes, or an LFS object (its bytes are under ``lfs/``)."""

    size: int
    oid: str  # the git blob id of the content, or of the LFS pointer
    data: bytes | None = None
    lfs_sha256: str | None = None

    @property
    def is_lfs(self) -> bool:
        return self.lfs_sha256 is not None


def _regular_file(data: bytes) -> FileEntry:
    return FileEntry(len(data), git_blob_oid(data), data=data)


def _lfs_file(sha256: str, size: int) -> FileEntry:
    return FileEntry(size, git_blob_oid(lfs_pointer(sha256, size)), lfs_sha256=sha256)


@dataclasses.dataclass(frozen=True)
class Commit:
    oid: str
    parent: str | None
    tree: dict[str, FileEntry]
    title: str
    message: str
    date: str


@dataclasses.dataclass
class Repo:
    private: bool
    branches: dict[str, str] = dataclasses.field(default_factory=dict)  # name -> commit id
    commits: dict[str, Commit] = dataclasses.field(default_factory=dict)  # commit id -> commit


@dataclasses.dataclass
class RequestRecord:
    """One line of the request log. It holds no header and no query string, so never a token."""

    method: str
    path: str
    status: int  # -1 while in progress, 0 connection dropped on purpose, 499 the client went away
    origin: str  # "hub" or "cdn"
    authenticated: bool  # whether a token came with the request

    def __str__(self) -> str:
        auth = "auth" if self.authenticated else "anon"
        return f"[{self.origin}] {self.method} {self.path} -> {self.status} ({auth})"


# ----------------------------------------------------------------------------------------------------------------------
# The server
# ----------------------------------------------------------------------------------------------------------------------


class HubServer:
    """The fake Hub: two loopback HTTP servers (the Hub and its "CDN") over one store. ``start()``, then ``stop()``."""

    def __init__(self, root: str | os.PathLike, *, username: str = "user") -> None:
        self.root = Path(root)
        self.username = username  # the token's user: the namespace of a repo created without one
        self.valid_tokens: set[str] | None = None  # None: any token is accepted
        self.fail_next_commit_midway = False
        self.dropped_connections = 0
        self.requests: list[RequestRecord] = []
        self.unhandled: list[str] = []
        self.errors: list[str] = []
        self._repos: dict[str, Repo] = {}
        self._lock = threading.Lock()  # held while a repo, a branch or a commit is written
        self._servers: list[_HTTPServer] = []
        for folder in ("lfs", "tmp"):
            (self.root / folder).mkdir(parents=True, exist_ok=True)

    def start(self) -> HubServer:
        self._servers = [_HTTPServer(self, "hub"), _HTTPServer(self, "cdn")]
        for server in self._servers:
            threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        return self

    def stop(self) -> None:
        for server in self._servers:
            server.shutdown()
            server.server_close()

    @property
    def url(self) -> str:
        """The Hub endpoint (what ``HF_ENDPOINT`` is set to)."""
        return f"http://127.0.0.1:{self._servers[0].server_port}"

    @property
    def cdn_url(self) -> str:
        """The second origin: it takes the LFS uploads and serves the LFS bytes, as S3 and CloudFront do for the Hub."""
        return f"http://127.0.0.1:{self._servers[1].server_port}"

    # -- clients -------------------------------------------------------------------------------------------------------

    def fresh_cache_dir(self) -> str:
        """A new, empty folder for ``cache_dir=``."""
        return self._fresh_dir("caches")

    def fresh_hf_home(self) -> str:
        """A new, empty folder for ``HF_HOME`` (of a :meth:`run_python` child)."""
        return self._fresh_dir("homes")

    def _fresh_dir(self, kind: str) -> str:
        base = self.root.parent / kind
        base.mkdir(exist_ok=True)
        return tempfile.mkdtemp(dir=base)

    def run_python(
        self,
        code: str,
        *,
        hf_home: str | os.PathLike | None = None,
        env: dict[str, str | None] | None = None,
        timeout: float = 180,
        check: bool = True,
    ) -> subprocess.CompletedProcess:
        """``python -c code`` in a child whose environment points the clients at this server.

        The repository root and ``tests/`` are on ``PYTHONPATH``; ``env`` entries override (``None`` unsets). With
        ``check=True`` a non-zero exit raises ``AssertionError`` with the child's output.
        """
        full_env = dict(os.environ)
        for key, value in {**client_env(self.url, hf_home or self.fresh_hf_home()), **(env or {})}.items():
            if value is None:
                full_env.pop(key, None)
            else:
                full_env[key] = value
        pythonpath = [str(REPO_ROOT), str(REPO_ROOT / "tests"), full_env.get("PYTHONPATH")]
        full_env["PYTHONPATH"] = os.pathsep.join(filter(None, pythonpath))
        argv = [sys.executable, "-c", code]
        proc = subprocess.run(
            argv, env=full_env, cwd=REPO_ROOT, capture_output=True, text=True, timeout=timeout, check=False
        )
        if check and proc.returncode != 0:
            raise AssertionError(
                f"subprocess failed with exit code {proc.returncode}\n--- stdout ---\n{proc.stdout[-5000:]}"
                f"\n--- stderr ---\n{proc.stderr[-8000:]}"
            )
        return proc

    # -- for assertions ------------------------------------------------------------------------------------------------

    def requests_matching(
        self, method: str | None = None, path_regex: str | None = None, origin: str | None = None
    ) -> list[RequestRecord]:
        return [
            r
            for r in list(self.requests)
            if (method is None or r.method == method)
            and (path_regex is None or re.search(path_regex, r.path))
            and (origin is None or r.origin == origin)
        ]

    def log_text(self) -> str:
        """The request log, one line per request, then the server's own tracebacks. Never a header, never a token."""
        return "\n".join([*map(str, list(self.requests)), *self.errors])

    def repo_exists(self, repo_id: str) -> bool:
        return repo_id in self._repos

    def head(self, repo_id: str, revision: str = "main") -> str:
        """The commit id that ``revision`` (a branch or a commit id) stands for."""
        return self._resolve(self._repo(repo_id), revision)

    def commits(self, repo_id: str, revision: str = "main") -> list[str]:
        """The ids of the commits reachable from ``revision``, newest first."""
        return [commit.oid for commit in self._history(self._repo(repo_id), revision)]

    def list_files(self, repo_id: str, revision: str = "main") -> list[str]:
        return sorted(self._files(repo_id, revision))

    def file_entry(self, repo_id: str, path: str, revision: str = "main") -> FileEntry:
        return self._files(repo_id, revision)[path]

    def read_file(self, repo_id: str, path: str, revision: str = "main") -> bytes:
        return self._content(self.file_entry(repo_id, path, revision))

    # -- the store -----------------------------------------------------------------------------------------------------

    def _repo(self, repo_id: str, authenticated: bool = True) -> Repo:
        repo = self._repos.get(repo_id)
        if repo is None:
            raise HubError(404, "Repository not found", code="RepoNotFound")
        if repo.private and not authenticated:  # the Hub does not tell a private repo from a missing one
            raise HubError(401, "Repository not found", code="RepoNotFound")
        return repo

    def _resolve(self, repo: Repo, revision: str) -> str:
        """The commit id of a branch name or of a full commit id."""
        if revision in repo.branches:
            return repo.branches[revision]
        if revision in repo.commits:
            return revision
        raise HubError(404, f"Invalid rev id: {revision}", code="RevisionNotFound")

    def _history(self, repo: Repo, revision: str) -> list[Commit]:
        oid: str | None = self._resolve(repo, revision)
        history = []
        while oid is not None:
            history.append(repo.commits[oid])
            oid = history[-1].parent
        return history

    def _files(self, repo_id: str, revision: str) -> dict[str, FileEntry]:
        repo = self._repo(repo_id)
        return repo.commits[self._resolve(repo, revision)].tree

    def _content(self, entry: FileEntry) -> bytes:
        return self._lfs_path(entry.lfs_sha256).read_bytes() if entry.is_lfs else entry.data

    def _lfs_path(self, sha256: str) -> Path:
        if not _SHA256.fullmatch(sha256):
            raise HubError(400, f"Invalid LFS object id: {sha256!r}")
        return self.root / "lfs" / sha256

    def _add_commit(self, repo: Repo, branch: str, tree: dict[str, FileEntry], title: str, message: str = "") -> str:
        """Store a commit on top of ``branch`` and move the branch to it. Called with the lock held."""
        oid = secrets.token_hex(20)
        repo.commits[oid] = Commit(oid, repo.branches.get(branch), tree, title, message, _now())
        repo.branches[branch] = oid  # the commit is stored before the branch moves: a reader sees one or the other
        return oid

    def _create_repo(self, repo_id: str, private: bool) -> None:
        """A repo with the Hub's initial commit. Called with the lock held."""
        repo = Repo(private)
        self._add_commit(repo, "main", {".gitattributes": _regular_file(GITATTRIBUTES)}, "initial commit")
        self._repos[repo_id] = repo


# ----------------------------------------------------------------------------------------------------------------------
# HTTP
# ----------------------------------------------------------------------------------------------------------------------

_REPO = r"(?P<repo_id>[^/]+/[^/]+)"
_REV = r"(?P<revision>[^/]+)"  # a branch name with "/" in it comes %2F-quoted
# origin -> (methods, path pattern, the _Handler method that answers)
_ROUTES = {
    "hub": [
        ("POST", r"/api/repos/create", "on_create_repo"),
        ("POST", r"/api/validate-yaml", "on_validate_yaml"),
        ("GET", rf"/api/models/{_REPO}(?:/revision/{_REV})?", "on_repo_info"),
        ("GET", rf"/api/models/{_REPO}/refs", "on_refs"),
        ("GET", rf"/api/models/{_REPO}/tree/{_REV}(?:/(?P<path>.+))?", "on_tree"),
        ("GET", rf"/api/models/{_REPO}/commits/{_REV}", "on_commits"),
        ("POST", rf"/api/models/{_REPO}/preupload/{_REV}", "on_preupload"),
        ("POST", rf"/api/models/{_REPO}/commit/{_REV}", "on_commit"),
        ("POST", rf"/api/models/{_REPO}/branch/(?P<branch>[^/]+)", "on_create_branch"),
        ("POST", rf"/{_REPO}\.git/info/lfs/objects/batch", "on_lfs_batch"),
        ("POST", rf"/{_REPO}\.git/info/lfs/objects/verify", "on_lfs_verify"),
        ("GET HEAD", rf"/{_REPO}/resolve/{_REV}/(?P<path>.+)", "on_resolve"),
    ],
    "cdn": [
        ("PUT", r"/lfs-upload/(?P<sha256>[0-9a-f]{64})", "on_lfs_upload"),
        ("GET HEAD", r"/lfs/(?P<sha256>[0-9a-f]{64})", "on_lfs_download"),
    ],
}


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, hub: HubServer, origin: str):
        self.hub = hub
        self.origin = origin
        super().__init__(("127.0.0.1", 0), _Handler)

    def handle_error(self, request, client_address):  # not on stderr: kept for the test to show
        self.hub.errors.append(traceback.format_exc())


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as the clients' connection pools expect
    timeout = 120  # an idle keep-alive connection is closed after this many seconds
    disable_nagle_algorithm = True  # headers and body are separate writes: avoid Nagle + delayed-ACK stalls
    server: _HTTPServer

    def log_message(self, format, *args):  # quiet: the hub keeps its own request log
        pass

    def do_GET(self) -> None:
        self._handle()

    do_HEAD = do_POST = do_PUT = do_DELETE = do_PATCH = do_GET

    def _handle(self) -> None:
        hub = self.server.hub
        path, _, query = self.path.partition("?")
        self._query = parse_qs(query)
        self._remaining = int(self.headers.get("Content-Length") or 0)
        token = self.headers.get("Authorization", "").removeprefix("Bearer ").strip() or None
        self._authenticated = token is not None and (hub.valid_tokens is None or token in hub.valid_tokens)
        self._record = RequestRecord(self.command, path, -1, self.server.origin, token is not None)
        hub.requests.append(self._record)
        try:
            try:
                if self.server.origin == "hub" and token is not None and not self._authenticated:
                    raise HubError(401, "Invalid credentials in Authorization header")
                self._route(path)
            except HubError as err:
                self._send_error(err)
        except _DropConnection:
            self._record.status = 0
            with hub._lock:
                hub.dropped_connections += 1
            self._reset_connection()
        except (ConnectionError, TimeoutError):  # the client went away (_ClientGone, a broken pipe, a reset)
            self._record.status = 499
            self.close_connection = True
        except Exception:  # noqa: BLE001  (a bug in the fake Hub: answer 500, keep the traceback for the test to show)
            hub.errors.append(f"{self.command} {path}\n{traceback.format_exc()}")
            self.close_connection = True
            with contextlib.suppress(OSError):
                self._send_error(HubError(500, "Internal error in the fake Hub"))

    def _route(self, path: str) -> None:
        if "chunked" in self.headers.get("Transfer-Encoding", "") or "Range" in self.headers:
            self._unhandled(f"{self.command} {path} with a chunked body or a Range")
        for methods, pattern, name in _ROUTES[self.server.origin]:
            match = re.fullmatch(pattern, path)
            if match and self.command in methods.split():
                args = {key: unquote(value) for key, value in match.groupdict().items() if value is not None}
                return getattr(self, name)(**args)
        self._unhandled(f"{self.command} {path}")

    def _unhandled(self, what: str) -> None:
        """Something the clients did not need so far: listed in ``unhandled``, which the tests check stays empty."""
        self.server.hub.unhandled.append(what)
        raise HubError(404, f"Not implemented by the fake Hub: {what}")

    def _require_token(self) -> None:
        if not self._authenticated:
            raise HubError(401, "Invalid credentials in Authorization header")

    def _readable_repo(self, repo_id: str) -> Repo:
        return self.server.hub._repo(repo_id, self._authenticated)

    # -- the request body ----------------------------------------------------------------------------------------------

    def _read(self, size: int) -> bytes:
        """The next ``size`` bytes of the request body (fewer at its end); ``_ClientGone`` if the client stops."""
        size = min(size, self._remaining)
        data = self.rfile.read(size)
        if len(data) < size:
            raise _ClientGone()
        self._remaining -= size
        return data

    def _json(self) -> Any:
        try:
            return json.loads(self._read(self._remaining) or b"{}")
        except ValueError:
            raise HubError(400, "Invalid JSON body") from None

    # -- answers -------------------------------------------------------------------------------------------------------

    def _start(self, status: int, headers: dict, length: int) -> None:
        self._read(self._remaining)  # the body the handler left: the connection carries the next request
        self._record.status = status
        self.send_response(status)
        for key, value in headers.items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(length))
        self.end_headers()

    def _send(self, status: int, body: bytes = b"", headers: dict | None = None) -> None:
        self._start(status, headers or {}, len(body))
        if self.command != "HEAD":
            self.wfile.write(body)

    def _send_json(self, obj: Any, status: int = 200, headers: dict | None = None) -> None:
        self._send(status, json.dumps(obj).encode(), {"Content-Type": "application/json", **(headers or {})})

    def _send_error(self, err: HubError) -> None:
        headers = {"X-Error-Message": err.message, **err.headers}
        if err.code:
            headers["X-Error-Code"] = err.code
        self._send_json({"error": err.message, **err.fields}, err.status, headers)

    def _send_file(self, path: Path, headers: dict) -> None:
        self._start(200, headers, path.stat().st_size)
        if self.command != "HEAD":
            with open(path, "rb") as f:
                while data := f.read(_CHUNK):
                    self.wfile.write(data)

    def _reset_connection(self) -> None:
        """Close the socket with a reset (RST), answering nothing."""
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.connection.shutdown(socket.SHUT_RDWR)

    # -- repos, revisions, files ---------------------------------------------------------------------------------------

    def on_create_repo(self) -> None:
        hub = self.server.hub
        payload = self._json()
        self._require_token()
        if payload.get("type", "model") != "model":
            self._unhandled(f"create a {payload['type']} repo")
        repo_id = f"{payload.get('organization') or hub.username}/{payload['name']}"
        url = f"{hub.url}/{repo_id}"
        with hub._lock:
            if repo_id in hub._repos:
                raise HubError(409, "You already created this model repo", url=url)  # exist_ok=True reads the url
            hub._create_repo(repo_id, private=payload.get("visibility") == "private")
        self._send_json({"url": url})

    def on_create_branch(self, repo_id: str, branch: str) -> None:
        hub = self.server.hub
        payload = self._json()
        self._require_token()
        with hub._lock:
            repo = hub._repo(repo_id)
            if branch in repo.branches:
                raise HubError(409, f"Reference already exists: refs/heads/{branch}")  # exist_ok=True ignores it
            repo.branches[branch] = hub._resolve(repo, payload.get("startingPoint", "main"))
        self._send_json({})

    def on_repo_info(self, repo_id: str, revision: str = "main") -> None:
        hub = self.server.hub
        repo = self._readable_repo(repo_id)
        oid = hub._resolve(repo, revision)
        tree = repo.commits[oid].tree
        siblings = [{"rfilename": p} for p in sorted(tree)]
        info = {"id": repo_id, "sha": oid, "private": repo.private, "siblings": siblings}
        if "README.md" in tree:
            with contextlib.suppress(ValueError):  # the Hub leaves out metadata it cannot read
                info["cardData"] = card_metadata(hub._content(tree["README.md"]).decode())
        self._send_json(info)

    def on_refs(self, repo_id: str) -> None:
        repo = self._readable_repo(repo_id)
        branches = [{"name": b, "ref": f"refs/heads/{b}", "targetCommit": c} for b, c in sorted(repo.branches.items())]
        self._send_json({"branches": branches, "converts": [], "tags": []})

    def on_tree(self, repo_id: str, revision: str, path: str = "") -> None:
        repo = self._readable_repo(repo_id)
        oid = self.server.hub._resolve(repo, revision)
        tree = repo.commits[oid].tree
        prefix = f"{path}/" if path else ""
        files = [p for p in sorted(tree) if p.startswith(prefix)]
        if path and not files:
            raise HubError(404, f"Entry not found: {path}", code="EntryNotFound", headers={"X-Repo-Commit": oid})
        rel_paths = [p[len(prefix) :] for p in files]  # the folders on the way to each file:
        folders = {prefix + "/".join(rel.split("/")[:n]) for rel in rel_paths for n in range(1, rel.count("/") + 1)}
        if self._query.get("recursive") != ["true"]:  # only what is directly in the folder
            folders = {f for f in folders if "/" not in f[len(prefix) :]}
            files = [p for p in files if "/" not in p[len(prefix) :]]
        items = [{"type": "directory", "oid": git_blob_oid(f.encode()), "size": 0, "path": f} for f in sorted(folders)]
        for file_path in files:
            entry = tree[file_path]
            item = {"type": "file", "oid": entry.oid, "size": entry.size, "path": file_path}
            if entry.is_lfs:
                pointer_size = len(lfs_pointer(entry.lfs_sha256, entry.size))
                item["lfs"] = {"oid": entry.lfs_sha256, "size": entry.size, "pointerSize": pointer_size}
            items.append(item)
        self._send_json(items)

    def on_commits(self, repo_id: str, revision: str) -> None:
        hub = self.server.hub
        items = [
            {"id": c.oid, "title": c.title, "message": c.message, "authors": [{"user": hub.username}], "date": c.date}
            for c in hub._history(self._readable_repo(repo_id), revision)
        ]
        self._send_json(items)

    def on_resolve(self, repo_id: str, revision: str, path: str) -> None:
        hub = self.server.hub
        repo = self._readable_repo(repo_id)
        oid = hub._resolve(repo, revision)
        entry = repo.commits[oid].tree.get(path)
        if entry is None:  # X-Repo-Commit lets the client cache that the file does not exist at that commit
            raise HubError(404, "Entry not found", code="EntryNotFound", headers={"X-Repo-Commit": oid})
        headers = {"X-Repo-Commit": oid, "ETag": f'"{entry.oid}"'}
        if not entry.is_lfs:
            return self._send(200, entry.data, headers)
        headers["Location"] = f"{hub.cdn_url}/lfs/{entry.lfs_sha256}"
        headers["X-Linked-Etag"] = f'"{entry.lfs_sha256}"'
        headers["X-Linked-Size"] = str(entry.size)
        self._send(302, b"", headers)

    def on_validate_yaml(self) -> None:
        try:
            card_metadata(self._json().get("content", ""))
        except ValueError as err:
            if "text/plain" in self.headers.get("Accept", ""):  # RepoCard.validate shows this body as it is
                return self._send(400, f"- {err}".encode(), {"Content-Type": "text/plain"})
            return self._send_json({"errors": [{"message": str(err)}], "warnings": []}, status=400)
        self._send_json({"errors": [], "warnings": []})

    # -- commits -------------------------------------------------------------------------------------------------------

    def on_preupload(self, repo_id: str, revision: str) -> None:
        hub = self.server.hub
        payload = self._json()
        self._require_token()
        repo = hub._repo(repo_id)
        oid = hub._resolve(repo, revision)
        tree = repo.commits[oid].tree
        files = []
        for item in payload["files"]:
            binary = b"\0" in base64.b64decode(item["sample"])
            existing = tree.get(item["path"])
            files.append(
                {
                    "path": item["path"],
                    "uploadMode": "lfs" if binary or item["size"] >= LFS_THRESHOLD else "regular",
                    "shouldIgnore": False,
                    # what the client compares with its file to skip an unchanged one
                    "oid": None if existing is None else existing.lfs_sha256 or existing.oid,
                }
            )
        self._send_json({"files": files, "commitOid": oid})

    def on_commit(self, repo_id: str, revision: str) -> None:
        hub = self.server.hub
        with hub._lock:
            drop = hub.fail_next_commit_midway
            hub.fail_next_commit_midway = False
        if drop:
            self._read(self._remaining // 2)
            raise _DropConnection()
        self._require_token()
        if "create_pr" in self._query:
            self._unhandled("a pull request")
        # The whole body first: a connection that breaks off leaves nothing behind.
        try:
            lines = [json.loads(line) for line in self._read(self._remaining).splitlines() if line.strip()]
        except ValueError:
            raise HubError(400, "Invalid NDJSON commit payload") from None
        if not lines or lines[0]["key"] != "header":
            raise HubError(400, "The first line of a commit payload must be the header")
        header = lines[0]["value"]
        if header.get("parentCommit"):
            self._unhandled("a commit with parentCommit")
        added = {line["value"]["path"]: self._added_file(line["key"], line["value"]) for line in lines[1:]}
        with hub._lock:
            repo = hub._repo(repo_id)
            if revision not in repo.branches:
                hub._resolve(repo, revision)  # RevisionNotFound if it is nothing at all
                raise HubError(400, f"Cannot commit to {revision}: not a branch")
            tree = {**repo.commits[repo.branches[revision]].tree, **added}
            oid = hub._add_commit(repo, revision, tree, header["summary"], header.get("description") or "")
        commit_url = f"{hub.url}/{repo_id}/commit/{oid}"
        self._send_json({"success": True, "commitOid": oid, "commitUrl": commit_url, "hookOutput": ""})

    def _added_file(self, key: str, value: dict) -> FileEntry:
        if key == "file":
            return _regular_file(base64.b64decode(value["content"]))
        if key != "lfsFile":
            self._unhandled(f"the commit operation {key}")
        path = self.server.hub._lfs_path(value["oid"])
        if not path.is_file():
            raise HubError(400, f"Your push was rejected: the LFS object of {value['path']} was never uploaded")
        return _lfs_file(value["oid"], path.stat().st_size)

    # -- git LFS -------------------------------------------------------------------------------------------------------

    def on_lfs_batch(self, repo_id: str) -> None:
        hub = self.server.hub
        payload = self._json()
        self._require_token()
        hub._repo(repo_id)
        if payload.get("operation") != "upload":
            self._unhandled(f"the LFS operation {payload.get('operation')}")
        objects = []
        for obj in payload["objects"]:
            item = {"oid": obj["oid"], "size": obj["size"]}
            if not hub._lfs_path(obj["oid"]).is_file():  # one already stored is not sent again
                item["actions"] = {
                    "upload": {"href": f"{hub.cdn_url}/lfs-upload/{obj['oid']}"},
                    "verify": {"href": f"{hub.url}/{repo_id}.git/info/lfs/objects/verify"},
                }
            objects.append(item)
        lfs_json = {"Content-Type": "application/vnd.git-lfs+json"}
        self._send_json({"transfer": "basic", "objects": objects}, headers=lfs_json)

    def on_lfs_verify(self, repo_id: str) -> None:
        payload = self._json()
        self._require_token()
        path = self.server.hub._lfs_path(payload["oid"])
        if not path.is_file() or path.stat().st_size != payload["size"]:
            raise HubError(404, f"LFS object not found: {payload['oid']}")
        self._send_json({})

    def on_lfs_upload(self, sha256: str) -> None:
        """Streamed to a temporary file, renamed into the store once its sha256 matches."""
        hub = self.server.hub
        fd, tmp = tempfile.mkstemp(dir=hub.root / "tmp")
        digest = hashlib.sha256()
        try:
            with os.fdopen(fd, "wb") as f:
                while self._remaining:
                    data = self._read(_CHUNK)
                    digest.update(data)
                    f.write(data)
            if digest.hexdigest() != sha256:
                raise HubError(400, f"The uploaded bytes do not have the sha256 {sha256}")
            os.replace(tmp, hub._lfs_path(sha256))
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
        self._send(200)

    def on_lfs_download(self, sha256: str) -> None:
        path = self.server.hub._lfs_path(sha256)
        if not path.is_file():
            raise HubError(404, "Object not found")
        self._send_file(path, {"ETag": f'"{sha256}"', "Content-Type": "application/octet-stream"})


# ----------------------------------------------------------------------------------------------------------------------
# The pytest fixture
# ----------------------------------------------------------------------------------------------------------------------


def _point_clients_at(monkeypatch, endpoint: str, hf_home: Path) -> None:
    """Point this process' ``huggingface_hub`` and ``transformers`` at ``endpoint``; ``monkeypatch`` undoes it."""
    for key, value in client_env(endpoint, hf_home).items():
        if value is None:
            monkeypatch.delenv(key, raising=False)
        else:
            monkeypatch.setenv(key, value)
    # huggingface_hub computed its constants from the environment at import time: run its constants module again,
    # and patch the values that came out different (endpoint, URL template and hosts, caches, offline and Xet flags).
    from huggingface_hub import constants

    spec = importlib.util.spec_from_file_location("_fake_hub_constants", constants.__file__)
    fresh = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(fresh)
    for name, value in vars(fresh).items():
        if not name.startswith("__") and not callable(value) and getattr(constants, name, None) != value:
            monkeypatch.setattr(constants, name, value)
    # Objects made at import time from the old values.
    for module in ("transformers.utils.hub", "transformers.dynamic_module_utils"):
        if module in sys.modules:
            monkeypatch.setattr(sys.modules[module], "HF_MODULES_CACHE", str(hf_home / "modules"))
    if "transformers.utils.hub" in sys.modules:
        monkeypatch.setattr(sys.modules["transformers.utils.hub"], "_hf_api", None)  # made again with the endpoint
    from huggingface_hub import hf_api

    monkeypatch.setattr(hf_api.api, "endpoint", endpoint)  # the HfApi behind huggingface_hub.upload_file & co


@pytest.fixture(name="hub_server")
def hub_server_fixture(tmp_path, monkeypatch):
    """A running :class:`HubServer` (its storage under ``tmp_path``), this process' clients pointed at it."""
    from huggingface_hub.utils import _http

    server = HubServer(tmp_path / "hub_storage").start()
    (tmp_path / "hf_home").mkdir()
    _point_clients_at(monkeypatch, server.url, tmp_path / "hf_home")
    _http.close_session()  # a fresh connection pool: none kept open to another test's server, NO_PROXY read again
    try:
        yield server
    finally:
        _http.close_session()
        server.stop()
