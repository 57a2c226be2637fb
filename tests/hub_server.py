"""A small, real Hugging Face Hub look-alike served over loopback HTTP, for tests.

It speaks the part of the Hub HTTP API that the *unmodified* ``huggingface_hub`` (2.4) and ``transformers`` (5.x)
clients use: repo create/delete/info, refs, branches/tags, tree listing, paths-info, preupload, NDJSON commits,
the git-LFS batch API (basic + optional multipart transfers, signed upload URLs, verify), ``/resolve`` downloads
(HEAD/GET, ``Range``/206, ``X-Repo-Commit``/``ETag``/``X-Linked-*`` headers, LFS files redirected to a separate
"CDN" origin), ``validate-yaml``, ``whoami-v2``, and Hub-style errors (``X-Error-Code``: ``RepoNotFound``,
``RevisionNotFound``, ``EntryNotFound``) so the clients raise their standard exceptions. Xet is never advertised:
clients must run with ``HF_HUB_DISABLE_XET=1`` (the fixture sets it) and then use plain LFS.

Stdlib only (``http.server.ThreadingHTTPServer``); PyYAML (a hard dependency of ``huggingface_hub``) is used by
``validate-yaml`` when importable.

Storage lives in a directory (a temp dir by default): regular files are content-addressed by their git blob id
under ``blobs/``, LFS objects by sha256 under ``lfs/``; repo metadata (refs, commits, trees) is kept in memory and
mirrored to ``state.json`` so a new ``HubServer(root=same_dir)`` sees the same repos. Every commit gets a fresh
40-hex sha and history is kept, so ``revision=<old sha>`` keeps resolving. Commits are atomic: the whole request
body is read and validated and the new tree is built before the branch ref is swapped under a lock; a dropped
connection or an invalid operation leaves the repo untouched. Partial LFS uploads never become visible either
(written to a temp file, sha256-checked, then renamed).

Usage with pytest (``tests`` is on ``pythonpath`` in pyproject.toml). The fixture is registered under the name
``hub_server``; import it into a test module (``hub_server_fixture`` avoids ruff's F811 on the test parameter) or,
once, into ``tests/conftest.py`` (``from hub_server import hub_server  # noqa: F401``)::

    from hub_server import hub_server_fixture  # noqa: F401  (registers the `hub_server` fixture)

    def test_roundtrip(hub_server):
        from huggingface_hub import HfApi, hf_hub_download

        api = HfApi()                                   # in-process clients already point at the server
        api.create_repo("user/demo")
        api.upload_file(path_or_fileobj=b"hi", path_in_repo="a.txt", repo_id="user/demo")
        path = hf_hub_download("user/demo", "a.txt", cache_dir=hub_server.fresh_cache_dir())
        assert open(path, "rb").read() == b"hi"

        # Most faithful: a subprocess that only sees environment variables (HF_ENDPOINT, HF_TOKEN, HF_HOME, ...).
        proc = hub_server.run_python(
            "from huggingface_hub import hf_hub_download; print(open(hf_hub_download('user/demo', 'a.txt')).read())",
            hf_home=hub_server.fresh_hf_home(),
        )
        assert proc.stdout.strip() == "hi"

    # transformers works the same way: model.push_to_hub("user/m"); AutoModel.from_pretrained("user/m",
    # cache_dir=hub_server.fresh_cache_dir()) -- see test_hub_server.py for a full round trip.

Without pytest: ``with HubServer() as server: server.api().create_repo(...)`` (``HfApi`` with explicit
endpoint/token), or ``configure_hf_clients(monkeypatch, server.url, hf_home)`` to point the global clients at it.

What the ``hub_server`` fixture does (function-scoped, one server per test):

* starts :class:`HubServer` on free loopback ports (hub origin + a separate "CDN" origin for LFS bytes) in
  background threads, storage under ``tmp_path``; stops it at teardown;
* sets (via ``monkeypatch``) ``HF_ENDPOINT``, ``HF_TOKEN`` (a fake token), ``HF_HOME``/``HF_HUB_CACHE``/
  ``HF_XET_CACHE``/``HF_TOKEN_PATH`` (inside ``tmp_path``), ``HF_HUB_DISABLE_XET=1``, ``HF_HUB_DISABLE_TELEMETRY=1``,
  ``NO_PROXY`` for loopback; unsets ``HF_HUB_OFFLINE``/``TRANSFORMERS_OFFLINE`` and legacy cache/token variables;
* because ``huggingface_hub`` reads these variables at import time, also patches the already-imported module state:
  ``huggingface_hub.constants`` (ENDPOINT, URL template, cache paths, offline/xet flags, ...),
  ``huggingface_hub.utils._http._HUB_ORIGINS``, the module-level ``huggingface_hub.hf_api.api.endpoint`` (used by
  ``huggingface_hub.upload_file`` & co), and resets ``transformers.utils.hub._hf_api``; it closes the shared HTTP
  session before and after so no pooled connection leaks between tests. Everything is restored at teardown.

Useful attributes/methods of the server object (see :class:`HubServer`): ``url``, ``cdn_url``, ``token``,
``username``, ``hf_home``, ``api()``, ``fresh_cache_dir()``, ``fresh_hf_home()``, ``client_env()``,
``run_python()``; state helpers ``repo_exists()``, ``head()``, ``list_files()``, ``read_file()``, ``commits()``;
request log ``requests`` / ``log_text()`` (method, path without query, status, origin, authenticated? -- never
headers or tokens), ``unhandled`` (routes the server did not know: should stay empty), ``errors`` (server-side
tracebacks); knobs:

* ``lfs_mode``: ``"auto"`` (default: LFS when size >= ``lfs_threshold`` (10 MiB), when the sample looks binary, or
  when the path matches an ``filter=lfs`` pattern of the revision's ``.gitattributes`` -- new repos get the Hub's
  default ``.gitattributes``), ``"always"`` (every non-empty file goes through LFS), ``"never"`` (all regular);
* ``lfs_redirect``: ``"cdn"`` (default: ``/resolve`` of an LFS file answers 302 to the CDN origin with
  ``X-Linked-Etag``/``X-Linked-Size``, like the real Hub; the client drops the token for that hop) or ``"hub"``
  (serve the bytes directly);
* ``lfs_multipart_chunk_size``: ``None`` (basic transfer) or an int (multipart transfer for larger objects);
* fault injection, each consumed by the next matching request: ``fail_next_commit_midway`` (read part of the
  commit body then drop the connection without a response), ``fail_next_lfs_upload_midway``,
  ``fail_next_download_midway`` (send headers and half of the bytes, then close: huggingface_hub resumes with a
  ``Range`` request, but only from its last full 10 MB buffer, so small files are simply re-fetched), and
  ``inject_error(status, method=None, path_regex=None, times=1, error_code=None, message=None)``;
* ``valid_tokens``: ``None`` accepts any ``Authorization: Bearer ...``; a set restricts it (others get 401).

Routes (``{t}`` = ``models``/``datasets``/``spaces``; ``{p}`` = ````/``datasets/``/``spaces/``):

* ``GET /api/whoami-v2``; ``POST /api/repos/create``; ``DELETE /api/repos/delete``; ``POST /api/repos/move``;
  ``POST /api/validate-yaml``; ``GET /api/agent-harnesses`` (empty registry);
* ``GET /api/{t}/{ns}/{name}[/revision/{rev}]`` (``sha``, ``siblings``, ``?blobs=true``, ``cardData``, ``expand``);
  ``GET .../refs[?include_prs=1]``; ``GET .../tree/{rev}[/{path}]?recursive=&expand=`` (cursor pagination via
  ``Link``); ``POST .../paths-info/{rev}``; ``POST .../preupload/{rev}``; ``POST .../commit/{rev}[?create_pr=1]``
  (NDJSON ``header``/``file``/``lfsFile``/``deletedFile``/``deletedFolder``, ``parentCommit`` => 412 if stale);
  ``GET .../commits/{rev}``; ``POST|DELETE .../branch/{b}``; ``POST .../tag/{rev}``, ``DELETE .../tag/{tag}``;
  ``PUT .../settings``; ``.../xet-*-token`` answers 501 (Xet is not implemented);
* ``POST /{p}{ns}/{name}.git/info/lfs/objects/batch`` (upload/download), ``.../verify``, ``.../complete/{id}``
  (multipart completion); on the CDN origin: ``PUT /lfs-upload/{sha256}``, ``PUT /lfs-part/{id}/{n}``,
  ``GET|HEAD /lfs/{sha256}`` (all signed, expiring URLs handed out by the hub origin);
* ``GET|HEAD /{p}{ns}/{name}/resolve/{rev}/{path}`` (branch, tag, ``refs/pr/N``, full or short commit sha).

Standalone: ``python tests/hub_server.py [--port N] [--root DIR] [--verbose]`` serves until Ctrl-C.
"""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import datetime as _dt
import fnmatch
import hashlib
import hmac
import json
import math
import os
import re
import secrets
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Iterable, Iterator
from urllib.parse import parse_qs, quote, unquote, urlencode, urlsplit

try:  # PyYAML is a hard dependency of huggingface_hub, but keep the server importable without it.
    import yaml as _yaml
except Exception:  # pragma: no cover
    _yaml = None

__all__ = [
    "FAKE_TOKEN",
    "HubServer",
    "hub_server",
    "hub_server_fixture",
    "configure_hf_clients",
    "client_env",
    "free_port",
]

FAKE_TOKEN = "hf_FakeTokenForTests0123456789abcdefXYZ"
REPO_ROOT = Path(__file__).resolve().parent.parent

_TYPE_PLURALS = {"models": "model", "datasets": "dataset", "spaces": "space"}
_URL_PREFIX = {"model": "", "dataset": "datasets/", "space": "spaces/"}
_HEX40 = re.compile(r"[0-9a-f]{40}")
_HEX64 = re.compile(r"[0-9a-f]{64}")
_REPO_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,95}")
_YAML_BLOCK = re.compile(r"^(\s*---(?:\r\n|\r|\n))([\S\s]*?)((?:\r\n|\r|\n)---[ \t]*(\r\n|\n|$))")
_CHUNK = 1024 * 1024

DEFAULT_GITATTRIBUTES = """\
*.7z filter=lfs diff=lfs merge=lfs -text
*.arrow filter=lfs diff=lfs merge=lfs -text
*.bin filter=lfs diff=lfs merge=lfs -text
*.bz2 filter=lfs diff=lfs merge=lfs -text
*.ckpt filter=lfs diff=lfs merge=lfs -text
*.ftz filter=lfs diff=lfs merge=lfs -text
*.gz filter=lfs diff=lfs merge=lfs -text
*.h5 filter=lfs diff=lfs merge=lfs -text
*.joblib filter=lfs diff=lfs merge=lfs -text
*.lfs.* filter=lfs diff=lfs merge=lfs -text
*.mlmodel filter=lfs diff=lfs merge=lfs -text
*.model filter=lfs diff=lfs merge=lfs -text
*.msgpack filter=lfs diff=lfs merge=lfs -text
*.npy filter=lfs diff=lfs merge=lfs -text
*.npz filter=lfs diff=lfs merge=lfs -text
*.onnx filter=lfs diff=lfs merge=lfs -text
*.ot filter=lfs diff=lfs merge=lfs -text
*.parquet filter=lfs diff=lfs merge=lfs -text
*.pb filter=lfs diff=lfs merge=lfs -text
*.pickle filter=lfs diff=lfs merge=lfs -text
*.pkl filter=lfs diff=lfs merge=lfs -text
*.pt filter=lfs diff=lfs merge=lfs -text
*.pth filter=lfs diff=lfs merge=lfs -text
*.rar filter=lfs diff=lfs merge=lfs -text
*.safetensors filter=lfs diff=lfs merge=lfs -text
saved_model/**/* filter=lfs diff=lfs merge=lfs -text
*.tar.* filter=lfs diff=lfs merge=lfs -text
*.tar filter=lfs diff=lfs merge=lfs -text
*.tflite filter=lfs diff=lfs merge=lfs -text
*.tgz filter=lfs diff=lfs merge=lfs -text
*.wasm filter=lfs diff=lfs merge=lfs -text
*.xz filter=lfs diff=lfs merge=lfs -text
*.zip filter=lfs diff=lfs merge=lfs -text
*.zst filter=lfs diff=lfs merge=lfs -text
*tfevents* filter=lfs diff=lfs merge=lfs -text
"""


# ----------------------------------------------------------------------------------------------------------------------
# Small helpers
# ----------------------------------------------------------------------------------------------------------------------


def _now_iso() -> str:
    now = _dt.datetime.now(_dt.timezone.utc)
    return now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}Z"


def git_blob_oid(data: bytes) -> str:
    """The git object id of a blob with this content (what the Hub calls a file's ``oid``/``blobId``)."""
    h = hashlib.sha1(b"blob %d\0" % len(data))
    h.update(data)
    return h.hexdigest()


def lfs_pointer(sha256: str, size: int) -> bytes:
    return f"version https://git-lfs.github.com/spec/v1\noid sha256:{sha256}\nsize {size}\n".encode()


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that had nothing listening on it a moment ago (useful for 'unreachable server' tests)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def _truthy(value: str | None) -> bool:
    return value is not None and value.strip().lower() in {"1", "true", "yes", "on"}


def _gitattributes_lfs_patterns(text: str) -> list[str]:
    patterns = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        parts = line.split()
        if "filter=lfs" in parts[1:]:
            patterns.append(parts[0])
    return patterns


def _gitignore_patterns(text: str) -> list[str]:
    return [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.strip().startswith(("#", "!"))]


def _path_matches(path: str, pattern: str) -> bool:
    pattern = pattern.lstrip("/")
    if pattern.endswith("/"):
        return path.startswith(pattern) or ("/" + pattern) in ("/" + path)
    if "/" not in pattern:
        return fnmatch.fnmatchcase(path.rsplit("/", 1)[-1], pattern)
    return fnmatch.fnmatchcase(path, pattern) or fnmatch.fnmatchcase(path, pattern.replace("**/", ""))


def _normalize_repo_path(path: str) -> str:
    if not isinstance(path, str):
        raise HubError(400, "Invalid path: expected a string")
    path = path.lstrip("/")
    if path.startswith("./"):
        path = path[2:]
    parts = path.split("/")
    if not path or any(p in ("", ".", "..") for p in parts) or ".git" in parts:
        raise HubError(400, f"Invalid path in repo: {path!r}")
    return path


class HubError(Exception):
    """An error answered to the client as a Hub-style error response."""

    def __init__(self, status: int, message: str, code: str | None = None, headers: dict | None = None, body=None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code
        self.headers = headers or {}
        self.body = body


class _DropConnection(Exception):
    """Raised to close the client connection without sending any (further) response.

    ``abrupt=True`` resets the connection (RST); otherwise it is closed normally (FIN) -- what a server that
    dies mid-response usually looks like, and what the download client knows how to resume from.
    """

    def __init__(self, abrupt: bool = True):
        super().__init__("connection dropped on purpose")
        self.abrupt = abrupt


class _ClientGone(Exception):
    """The client closed the connection before sending the full request body."""


# ----------------------------------------------------------------------------------------------------------------------
# Data model
# ----------------------------------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class FileEntry:
    oid: str  # git blob id (of the content, or of the LFS pointer for LFS files)
    size: int  # real size of the file (not of the pointer)
    lfs_sha256: str | None = None
    pointer_size: int | None = None

    @property
    def is_lfs(self) -> bool:
        return self.lfs_sha256 is not None

    def to_json(self) -> list:
        return [self.oid, self.size, self.lfs_sha256, self.pointer_size]

    @classmethod
    def from_json(cls, data: list) -> "FileEntry":
        return cls(*data)


@dataclasses.dataclass
class Commit:
    oid: str
    parents: list[str]
    tree: dict[str, FileEntry]
    title: str
    message: str
    date: str
    author: str

    def to_json(self) -> dict:
        return {
            "parents": self.parents,
            "tree": {p: e.to_json() for p, e in self.tree.items()},
            "title": self.title,
            "message": self.message,
            "date": self.date,
            "author": self.author,
        }

    @classmethod
    def from_json(cls, oid: str, data: dict) -> "Commit":
        return cls(
            oid=oid,
            parents=list(data["parents"]),
            tree={p: FileEntry.from_json(e) for p, e in data["tree"].items()},
            title=data["title"],
            message=data["message"],
            date=data["date"],
            author=data["author"],
        )


@dataclasses.dataclass
class Repo:
    repo_type: str
    repo_id: str
    private: bool
    created_at: str
    branches: dict[str, str] = dataclasses.field(default_factory=dict)
    tags: dict[str, str] = dataclasses.field(default_factory=dict)
    prs: dict[int, str] = dataclasses.field(default_factory=dict)
    commits: dict[str, Commit] = dataclasses.field(default_factory=dict)
    gated: Any = False

    def to_json(self) -> dict:
        return {
            "repo_type": self.repo_type,
            "repo_id": self.repo_id,
            "private": self.private,
            "created_at": self.created_at,
            "branches": self.branches,
            "tags": self.tags,
            "prs": {str(k): v for k, v in self.prs.items()},
            "commits": {oid: c.to_json() for oid, c in self.commits.items()},
            "gated": self.gated,
        }

    @classmethod
    def from_json(cls, data: dict) -> "Repo":
        return cls(
            repo_type=data["repo_type"],
            repo_id=data["repo_id"],
            private=data["private"],
            created_at=data["created_at"],
            branches=dict(data["branches"]),
            tags=dict(data["tags"]),
            prs={int(k): v for k, v in data["prs"].items()},
            commits={oid: Commit.from_json(oid, c) for oid, c in data["commits"].items()},
            gated=data.get("gated", False),
        )


@dataclasses.dataclass
class RequestRecord:
    """One line of the server's request log. Deliberately holds no header and no query string."""

    method: str
    path: str
    status: int  # -1 = in progress, 0 = connection dropped on purpose, 499 = client went away
    origin: str  # "hub" or "cdn"
    authenticated: bool

    def __str__(self) -> str:
        auth = "auth" if self.authenticated else "anon"
        return f"[{self.origin}] {self.method} {self.path} -> {self.status} ({auth})"


# ----------------------------------------------------------------------------------------------------------------------
# The server
# ----------------------------------------------------------------------------------------------------------------------


class HubServer:
    """A fake Hugging Face Hub. Start with :meth:`start` (or use as a context manager), stop with :meth:`stop`."""

    def __init__(
        self,
        root: str | os.PathLike | None = None,
        *,
        username: str = "user",
        token: str = FAKE_TOKEN,
        host: str = "127.0.0.1",
        port: int = 0,
        lfs_mode: str = "auto",
        lfs_threshold: int = 10 * 1024 * 1024,
        lfs_redirect: str = "cdn",
        lfs_multipart_chunk_size: int | None = None,
        init_gitattributes: bool = True,
        tree_page_size: int = 1000,
        valid_tokens: Iterable[str] | None = None,
        verbose: bool = False,
    ) -> None:
        self._owns_root = root is None
        self.root = Path(root) if root is not None else Path(tempfile.mkdtemp(prefix="fake-hub-"))
        self.username = username
        self.token = token  # the token clients are configured with (the server accepts any unless valid_tokens)
        self.host = host
        self._requested_port = port
        self.lfs_mode = lfs_mode
        self.lfs_threshold = lfs_threshold
        self.lfs_redirect = lfs_redirect
        self.lfs_multipart_chunk_size = lfs_multipart_chunk_size
        self.init_gitattributes = init_gitattributes
        self.tree_page_size = tree_page_size
        self.valid_tokens = set(valid_tokens) if valid_tokens is not None else None
        self.verbose = verbose

        # Fault-injection knobs (each one is consumed by the next matching request).
        self.fail_next_commit_midway = False
        self.fail_next_lfs_upload_midway = False
        self.fail_next_download_midway = False
        self._injected: list[dict] = []

        # Introspection.
        self.requests: list[RequestRecord] = []
        self.unhandled: list[str] = []
        self.errors: list[str] = []
        self.dropped_connections = 0

        # Set by fixtures / callers for convenience.
        self.hf_home: Path | None = None

        self._lock = threading.RLock()
        self._repos: dict[tuple[str, str], Repo] = {}
        self._multipart: dict[str, dict] = {}
        self._secret = secrets.token_bytes(32)
        self._counter = 0
        self._servers: list[ThreadingHTTPServer] = []
        self._threads: list[threading.Thread] = []
        for sub in ("blobs", "lfs", "tmp"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)
        self._load_state()

    # -- lifecycle -------------------------------------------------------------------------------------------------

    def start(self) -> "HubServer":
        if self._servers:
            return self
        hub = _make_http_server(self, "hub", self.host, self._requested_port)
        cdn = _make_http_server(self, "cdn", self.host, 0)
        self._servers = [hub, cdn]
        for srv in self._servers:
            t = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
            t.name = f"fake-hub-{srv.origin_name}"
            t.start()
            self._threads.append(t)
        return self

    def stop(self) -> None:
        for srv in self._servers:
            srv.shutdown()
            srv.server_close()
            srv.close_all_connections()
        for t in self._threads:
            t.join(timeout=5)
        self._servers, self._threads = [], []

    def cleanup(self) -> None:
        """Stop and remove the storage directory if the server created it."""
        self.stop()
        if self._owns_root:
            shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> "HubServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.cleanup()

    @property
    def port(self) -> int:
        return self._servers[0].server_address[1]

    @property
    def url(self) -> str:
        """The Hub endpoint (what ``HF_ENDPOINT`` must be set to)."""
        return f"http://{self.host}:{self._servers[0].server_address[1]}"

    @property
    def cdn_url(self) -> str:
        """A second origin serving LFS bytes and accepting LFS uploads (like S3/CloudFront)."""
        return f"http://{self.host}:{self._servers[1].server_address[1]}"

    # -- client-side conveniences ----------------------------------------------------------------------------------

    def api(self, **kwargs):
        """An ``HfApi`` pointed at this server with the fake token (independent of env/constants patching)."""
        from huggingface_hub import HfApi

        kwargs.setdefault("endpoint", self.url)
        kwargs.setdefault("token", self.token)
        return HfApi(**kwargs)

    def fresh_cache_dir(self) -> str:
        """A new, empty directory to use as ``cache_dir=`` (a 'fresh cache')."""
        base = (self.hf_home.parent if self.hf_home is not None else self.root) / "caches"
        base.mkdir(parents=True, exist_ok=True)
        return tempfile.mkdtemp(prefix="cache-", dir=base)

    def fresh_hf_home(self) -> str:
        """A new, empty directory to use as ``HF_HOME`` (e.g. for :meth:`run_python`)."""
        base = (self.hf_home.parent if self.hf_home is not None else self.root) / "homes"
        base.mkdir(parents=True, exist_ok=True)
        return tempfile.mkdtemp(prefix="hf-home-", dir=base)

    def client_env(self, hf_home: str | os.PathLike | None = None, token: str | None = None) -> dict[str, str | None]:
        """Environment variables a client process needs to talk to this server (``None`` = must be unset)."""
        home = hf_home if hf_home is not None else self.hf_home
        if home is None:
            home = self.fresh_hf_home()
        return client_env(self.url, home, self.token if token is None else token)

    def run_python(
        self,
        code: str,
        *,
        hf_home: str | os.PathLike | None = None,
        env: dict[str, str | None] | None = None,
        timeout: float = 180,
        check: bool = True,
        cwd: str | os.PathLike | None = None,
    ) -> subprocess.CompletedProcess:
        """Run ``python -c code`` in a subprocess whose environment points the clients at this server.

        The repo root and ``tests/`` are on ``PYTHONPATH`` (so ``import perceiver_byte`` / ``import hub_server``
        work). ``env`` entries override (``None`` unsets). With ``check=True`` a non-zero exit raises
        ``AssertionError`` carrying the process output.
        """
        full_env = dict(os.environ)
        for key, value in {**self.client_env(hf_home), **(env or {})}.items():
            if value is None:
                full_env.pop(key, None)
            else:
                full_env[key] = value
        pythonpath = [str(REPO_ROOT), str(REPO_ROOT / "tests")]
        if full_env.get("PYTHONPATH"):
            pythonpath.append(full_env["PYTHONPATH"])
        full_env["PYTHONPATH"] = os.pathsep.join(pythonpath)
        proc = subprocess.run(
            [sys.executable, "-c", code],
            env=full_env,
            cwd=str(cwd or REPO_ROOT),
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if check and proc.returncode != 0:
            raise AssertionError(
                f"subprocess failed with exit code {proc.returncode}\n--- stdout ---\n{proc.stdout[-5000:]}"
                f"\n--- stderr ---\n{proc.stderr[-8000:]}"
            )
        return proc

    # -- fault injection / introspection ---------------------------------------------------------------------------

    def inject_error(
        self,
        status: int,
        *,
        method: str | None = None,
        path_regex: str | None = None,
        times: int = 1,
        error_code: str | None = None,
        message: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        """Answer the next ``times`` requests matching ``method``/``path_regex`` with an error ``status``."""
        with self._lock:
            self._injected.append(
                {
                    "status": status,
                    "method": method.upper() if method else None,
                    "regex": re.compile(path_regex) if path_regex else None,
                    "times": times,
                    "code": error_code,
                    "message": message or f"Injected error {status}",
                    "headers": headers or {},
                }
            )

    def _take_injected(self, method: str, path: str) -> dict | None:
        with self._lock:
            for fault in self._injected:
                if fault["method"] not in (None, method):
                    continue
                if fault["regex"] is not None and not fault["regex"].search(path):
                    continue
                fault["times"] -= 1
                if fault["times"] <= 0:
                    self._injected.remove(fault)
                return fault
        return None

    def _take_flag(self, name: str) -> bool:
        with self._lock:
            if getattr(self, name):
                setattr(self, name, False)
                return True
        return False

    def log_text(self) -> str:
        """The full server log: one line per request, plus server-side errors. Never contains headers/tokens."""
        with self._lock:
            lines = [str(r) for r in self.requests] + self.errors
        return "\n".join(lines)

    def _record_start(self, record: RequestRecord) -> None:
        with self._lock:
            self.requests.append(record)  # arrival order; the status is filled in before the answer goes out

    def _record_done(self, record: RequestRecord) -> None:
        if self.verbose:
            print(f"[fake-hub] {record}", file=sys.stderr)

    def requests_matching(self, method: str | None = None, path_regex: str | None = None, origin: str | None = None):
        with self._lock:
            records = list(self.requests)
        return [
            r
            for r in records
            if (method is None or r.method == method)
            and (path_regex is None or re.search(path_regex, r.path))
            and (origin is None or r.origin == origin)
        ]

    # -- state helpers (for assertions in tests) -------------------------------------------------------------------

    def repo_exists(self, repo_id: str, repo_type: str = "model") -> bool:
        with self._lock:
            return (repo_type, repo_id) in self._repos

    def head(self, repo_id: str, revision: str = "main", repo_type: str = "model") -> str:
        with self._lock:
            repo = self._get_repo(repo_type, repo_id, authenticated=True)
            return self._resolve(repo, revision)

    def list_files(self, repo_id: str, revision: str = "main", repo_type: str = "model") -> list[str]:
        with self._lock:
            repo = self._get_repo(repo_type, repo_id, authenticated=True)
            return sorted(repo.commits[self._resolve(repo, revision)].tree)

    def read_file(self, repo_id: str, path: str, revision: str = "main", repo_type: str = "model") -> bytes:
        with self._lock:
            repo = self._get_repo(repo_type, repo_id, authenticated=True)
            entry = repo.commits[self._resolve(repo, revision)].tree[path]
        return self._content_path(entry).read_bytes()

    def file_entry(self, repo_id: str, path: str, revision: str = "main", repo_type: str = "model") -> FileEntry:
        with self._lock:
            repo = self._get_repo(repo_type, repo_id, authenticated=True)
            return repo.commits[self._resolve(repo, revision)].tree[path]

    def commits(self, repo_id: str, revision: str = "main", repo_type: str = "model") -> list[str]:
        """Commit shas reachable from ``revision`` (newest first, first-parent history)."""
        with self._lock:
            repo = self._get_repo(repo_type, repo_id, authenticated=True)
            return [c.oid for c in self._history(repo, self._resolve(repo, revision))]

    def lfs_object_exists(self, sha256: str) -> bool:
        return self._lfs_path(sha256).is_file()

    # -- storage ---------------------------------------------------------------------------------------------------

    def _blob_path(self, oid: str) -> Path:
        return self.root / "blobs" / oid[:2] / oid

    def _lfs_path(self, sha256: str) -> Path:
        return self.root / "lfs" / sha256[:2] / sha256

    def _content_path(self, entry: FileEntry) -> Path:
        return self._lfs_path(entry.lfs_sha256) if entry.is_lfs else self._blob_path(entry.oid)

    def _new_tmp(self) -> tuple[int, str]:
        return tempfile.mkstemp(dir=self.root / "tmp", prefix="upload-")

    def _store_blob(self, data: bytes) -> str:
        oid = git_blob_oid(data)
        dest = self._blob_path(oid)
        if not dest.exists():
            dest.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = self._new_tmp()
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            os.replace(tmp, dest)
        return oid

    def _commit_tmp_to_lfs(self, tmp: str, sha256: str) -> None:
        dest = self._lfs_path(sha256)
        dest.parent.mkdir(parents=True, exist_ok=True)
        if dest.exists():
            os.unlink(tmp)
        else:
            os.replace(tmp, dest)

    def _save_state(self) -> None:
        with self._lock:
            data = {"version": 1, "repos": [r.to_json() for r in self._repos.values()], "counter": self._counter}
            fd, tmp = self._new_tmp()
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                json.dump(data, f)
            os.replace(tmp, self.root / "state.json")

    def _load_state(self) -> None:
        path = self.root / "state.json"
        if not path.is_file():
            return
        data = json.loads(path.read_text(encoding="utf-8"))
        self._counter = data.get("counter", 0)
        for raw in data["repos"]:
            repo = Repo.from_json(raw)
            self._repos[(repo.repo_type, repo.repo_id)] = repo

    # -- repo logic (all called with self._lock held unless stated otherwise) --------------------------------------

    def _get_repo(self, repo_type: str, repo_id: str, authenticated: bool) -> Repo:
        repo = self._repos.get((repo_type, repo_id))
        if repo is None:
            raise HubError(404, "Repository not found", code="RepoNotFound")
        if repo.private and not authenticated:
            raise HubError(401, "Repository not found", code="RepoNotFound")
        return repo

    def _resolve(self, repo: Repo, revision: str | None) -> str:
        rev = revision or "main"
        if rev.startswith("refs/heads/") and rev[len("refs/heads/") :] in repo.branches:
            return repo.branches[rev[len("refs/heads/") :]]
        if rev.startswith("refs/tags/") and rev[len("refs/tags/") :] in repo.tags:
            return repo.tags[rev[len("refs/tags/") :]]
        m = re.fullmatch(r"refs/pr/(\d+)", rev)
        if m and int(m.group(1)) in repo.prs:
            return repo.prs[int(m.group(1))]
        if rev in repo.branches:
            return repo.branches[rev]
        if rev in repo.tags:
            return repo.tags[rev]
        if _HEX40.fullmatch(rev) and rev in repo.commits:
            return rev
        if re.fullmatch(r"[0-9a-f]{7,39}", rev):
            matches = [oid for oid in repo.commits if oid.startswith(rev)]
            if len(matches) == 1:
                return matches[0]
        raise HubError(404, f"Invalid rev id: {rev}", code="RevisionNotFound")

    def _history(self, repo: Repo, oid: str) -> list[Commit]:
        out = []
        seen = set()
        while oid and oid not in seen:
            seen.add(oid)
            commit = repo.commits[oid]
            out.append(commit)
            oid = commit.parents[0] if commit.parents else None
        return out

    def _new_commit_oid(self, tree: dict[str, FileEntry], parents: list[str], title: str) -> str:
        self._counter += 1
        h = hashlib.sha1()
        h.update(self._tree_hash(tree, "").encode())
        h.update(json.dumps([parents, title, time.time_ns(), self._counter, uuid.uuid4().hex]).encode())
        return h.hexdigest()

    @staticmethod
    def _tree_hash(tree: dict[str, FileEntry], folder: str) -> str:
        prefix = folder + "/" if folder else ""
        h = hashlib.sha1(b"tree\0")
        for path in sorted(tree):
            if path.startswith(prefix):
                h.update(f"{path[len(prefix) :]}\0{tree[path].oid}\n".encode())
        return h.hexdigest()

    def _create_repo(self, repo_type: str, repo_id: str, private: bool) -> Repo:
        repo = Repo(repo_type=repo_type, repo_id=repo_id, private=private, created_at=_now_iso())
        tree: dict[str, FileEntry] = {}
        if self.init_gitattributes:
            data = DEFAULT_GITATTRIBUTES.encode()
            tree[".gitattributes"] = FileEntry(oid=self._store_blob(data), size=len(data))
        oid = self._new_commit_oid(tree, [], "initial commit")
        repo.commits[oid] = Commit(oid, [], tree, "initial commit", "", repo.created_at, self.username)
        repo.branches["main"] = oid
        self._repos[(repo_type, repo_id)] = repo
        self._save_state()
        return repo

    def _read_tree_text(self, tree: dict[str, FileEntry], path: str, limit: int = 1_000_000) -> str | None:
        entry = tree.get(path)
        if entry is None or entry.size > limit:
            return None
        try:
            return self._content_path(entry).read_bytes().decode("utf-8", errors="replace")
        except OSError:
            return None

    def _upload_mode(self, tree: dict[str, FileEntry], path: str, size: int, sample: bytes) -> str:
        if size == 0 or self.lfs_mode == "never":
            return "regular"
        if self.lfs_mode == "always":
            return "lfs"
        if size >= self.lfs_threshold or b"\x00" in sample:
            return "lfs"
        attributes = self._read_tree_text(tree, ".gitattributes")
        if attributes and any(_path_matches(path, p) for p in _gitattributes_lfs_patterns(attributes)):
            return "lfs"
        return "regular"

    @staticmethod
    def _folders(tree: dict[str, FileEntry]) -> set[str]:
        folders = set()
        for path in tree:
            parts = path.split("/")[:-1]
            for i in range(1, len(parts) + 1):
                folders.add("/".join(parts[:i]))
        return folders

    def _entry_json(self, repo: Repo, commit_oid: str, tree: dict, path: str, is_folder: bool, expand: bool) -> dict:
        if is_folder:
            item: dict[str, Any] = {"type": "directory", "oid": self._tree_hash(tree, path), "size": 0, "path": path}
        else:
            entry = tree[path]
            item = {"type": "file", "oid": entry.oid, "size": entry.size, "path": path}
            if entry.is_lfs:
                item["lfs"] = {"oid": entry.lfs_sha256, "size": entry.size, "pointerSize": entry.pointer_size}
        if expand:
            last = self._last_commit(repo, commit_oid, path, is_folder)
            item["lastCommit"] = {"id": last.oid, "title": last.title, "date": last.date}
        return item

    def _last_commit(self, repo: Repo, commit_oid: str, path: str, is_folder: bool) -> Commit:
        history = self._history(repo, commit_oid)

        def state(c: Commit):
            return self._tree_hash(c.tree, path) if is_folder else c.tree.get(path)

        for i, commit in enumerate(history):
            parent = history[i + 1] if i + 1 < len(history) else None
            if parent is None or state(parent) != state(commit):
                return commit
        return history[-1]

    def _apply_commit(
        self,
        repo_type: str,
        repo_id: str,
        revision: str,
        header: dict,
        ops: list[tuple[str, dict]],
        create_pr: bool,
        authenticated: bool,
    ) -> dict:
        """Validate + apply a commit atomically. Returns the JSON answer. Holds the lock for the whole swap."""
        with self._lock:
            repo = self._get_repo(repo_type, repo_id, authenticated)
            target_pr: int | None = None
            m = re.fullmatch(r"refs/pr/(\d+)", revision)
            branch = revision[len("refs/heads/") :] if revision.startswith("refs/heads/") else revision
            if m:
                target_pr = int(m.group(1))
                if target_pr not in repo.prs:
                    raise HubError(404, f"Invalid rev id: {revision}", code="RevisionNotFound")
                base_oid = repo.prs[target_pr]
            elif branch in repo.branches:
                base_oid = repo.branches[branch]
            else:
                self._resolve(repo, revision)  # raises RevisionNotFound if it does not exist at all
                raise HubError(400, f"Cannot commit to '{revision}': not a branch")

            parent_commit = header.get("parentCommit")
            if parent_commit and not create_pr and parent_commit != base_oid:
                raise HubError(
                    412,
                    f"A commit has happened since {parent_commit}. Please refresh and try again.",
                    code="PreconditionFailed",
                )
            if create_pr and parent_commit:
                base_oid = self._resolve(repo, parent_commit)

            tree = dict(repo.commits[base_oid].tree)
            for key, value in ops:
                if key == "file":
                    path = _normalize_repo_path(value.get("path"))
                    tree[path] = value["_entry"]
                elif key == "lfsFile":
                    path = _normalize_repo_path(value.get("path"))
                    sha = str(value.get("oid", ""))
                    if value.get("algo", "sha256") != "sha256" or not _HEX64.fullmatch(sha):
                        raise HubError(400, f"Invalid LFS oid for {path}: {sha!r}")
                    lfs_path = self._lfs_path(sha)
                    if not lfs_path.is_file():
                        raise HubError(
                            400,
                            f"Your push was rejected because an LFS pointer pointed to a file that does not exist."
                            f" ({path}: sha256 {sha})",
                        )
                    size = lfs_path.stat().st_size
                    if value.get("size") is not None and int(value["size"]) != size:
                        raise HubError(400, f"LFS object size mismatch for {path}: {value['size']} != {size}")
                    pointer = lfs_pointer(sha, size)
                    tree[path] = FileEntry(
                        oid=git_blob_oid(pointer), size=size, lfs_sha256=sha, pointer_size=len(pointer)
                    )
                elif key == "deletedFile":
                    path = _normalize_repo_path(value.get("path"))
                    if path not in tree:
                        raise HubError(404, f"A file with this name doesn't exist: {path}", code="EntryNotFound")
                    del tree[path]
                elif key == "deletedFolder":
                    folder = _normalize_repo_path(str(value.get("path", "")).rstrip("/"))
                    doomed = [p for p in tree if p.startswith(folder + "/")]
                    if not doomed:
                        raise HubError(404, f"A folder with this name doesn't exist: {folder}", code="EntryNotFound")
                    for p in doomed:
                        del tree[p]
                else:
                    raise HubError(400, f"Unknown commit operation: {key!r}")

            folders = self._folders(tree)
            clashes = sorted(p for p in tree if p in folders)
            if clashes:
                raise HubError(400, f"Path conflicts: {clashes[0]!r} is both a file and a folder")

            title = str(header.get("summary", "")).strip()
            if not title:
                raise HubError(400, "Commit summary cannot be empty")
            description = str(header.get("description") or "")
            oid = self._new_commit_oid(tree, [base_oid], title)
            commit = Commit(oid, [base_oid], tree, title, description, _now_iso(), self.username)

            # Atomic swap: the commit object first, then the ref. Readers hold the same lock.
            repo.commits[oid] = commit
            pr_num = None
            if create_pr:
                pr_num = max(repo.prs, default=0) + 1
                repo.prs[pr_num] = oid
            elif target_pr is not None:
                repo.prs[target_pr] = oid
            else:
                repo.branches[branch] = oid
            self._save_state()

        base = f"{self.url}/{_URL_PREFIX[repo_type]}{repo_id}"
        answer = {"success": True, "commitOid": oid, "commitUrl": f"{base}/commit/{oid}", "hookOutput": ""}
        if pr_num is not None:
            answer["pullRequestUrl"] = f"{base}/discussions/{pr_num}"
        return answer

    # -- signing for the CDN origin --------------------------------------------------------------------------------

    def _sign(self, *parts: str) -> str:
        return hmac.new(self._secret, "\0".join(parts).encode(), hashlib.sha256).hexdigest()[:32]

    def _check_sig(self, query: dict, *parts: str) -> None:
        expires = (query.get("expires") or ["0"])[0]
        sig = (query.get("sig") or [""])[0]
        if not expires.isdigit() or int(expires) < time.time():
            raise HubError(403, "Request has expired")
        if not hmac.compare_digest(sig, self._sign(*parts, expires)):
            raise HubError(403, "Signature does not match")

    def _signed_query(self, *parts: str, extra: dict | None = None) -> str:
        expires = str(int(time.time()) + 3600)
        query = dict(extra or {})
        query.update({"expires": expires, "sig": self._sign(*parts, expires)})
        return urlencode(query)

    def _lfs_download_url(self, sha256: str, filename: str) -> str:
        return f"{self.cdn_url}/lfs/{sha256}?" + self._signed_query("get", sha256, extra={"filename": filename})


def client_env(endpoint: str, hf_home: str | os.PathLike, token: str | None = FAKE_TOKEN) -> dict[str, str | None]:
    """Environment for a client process talking to a fake Hub at ``endpoint`` (``None`` = unset the variable)."""
    home = str(hf_home)
    return {
        "HF_ENDPOINT": endpoint,
        "HF_TOKEN": token,
        "HF_HOME": home,
        "HF_HUB_CACHE": os.path.join(home, "hub"),
        "HF_ASSETS_CACHE": os.path.join(home, "assets"),
        "HF_XET_CACHE": os.path.join(home, "xet"),
        "HF_TOKEN_PATH": os.path.join(home, "token"),
        "HF_MODULES_CACHE": os.path.join(home, "modules"),
        "HF_HUB_DISABLE_XET": "1",
        "HF_HUB_DISABLE_TELEMETRY": "1",
        "HF_HUB_DISABLE_UPDATE_CHECK": "1",
        "HF_HUB_DISABLE_PROGRESS_BARS": "1",
        "NO_PROXY": "127.0.0.1,localhost",
        "no_proxy": "127.0.0.1,localhost",
        "HF_HUB_OFFLINE": None,
        "TRANSFORMERS_OFFLINE": None,
        "HF_DATASETS_OFFLINE": None,
        "HUGGINGFACE_HUB_CACHE": None,
        "HUGGINGFACE_ASSETS_CACHE": None,
        "HUGGING_FACE_HUB_TOKEN": None,
        "HUGGINGFACE_CO_STAGING": None,
        "HF_HUB_ENABLE_HF_TRANSFER": None,
        "HF_HUB_DISABLE_IMPLICIT_TOKEN": None,
        "HF_XET_HIGH_PERFORMANCE": None,
        "TRANSFORMERS_CACHE": None,
    }


# ----------------------------------------------------------------------------------------------------------------------
# HTTP layer
# ----------------------------------------------------------------------------------------------------------------------


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, hub: HubServer, origin_name: str, address):
        self.hub = hub
        self.origin_name = origin_name
        self._connections: set[socket.socket] = set()
        self._conn_lock = threading.Lock()
        super().__init__(address, _Handler)

    def process_request(self, request, client_address):
        with self._conn_lock:
            self._connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request):
        with self._conn_lock:
            self._connections.discard(request)
        super().shutdown_request(request)

    def close_all_connections(self) -> None:
        with self._conn_lock:
            conns = list(self._connections)
            self._connections.clear()
        for conn in conns:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
            with contextlib.suppress(OSError):
                conn.close()

    def handle_error(self, request, client_address):  # keep stderr quiet; remember the traceback instead
        self.hub.errors.append(traceback.format_exc())


def _make_http_server(hub: HubServer, origin_name: str, host: str, port: int) -> _HTTPServer:
    return _HTTPServer(hub, origin_name, (host, port))


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "FakeHub/1.0"
    sys_version = ""
    timeout = 120  # idle keep-alive connections are closed after this many seconds
    disable_nagle_algorithm = True  # headers and body go out in separate writes: avoid Nagle + delayed-ACK stalls
    server: _HTTPServer

    # Never log anything by default (the base class would print the request line; headers are never printed).
    def log_message(self, format, *args):  # noqa: A002
        return

    def log_request(self, code="-", size="-"):
        return

    @property
    def _status(self) -> int:
        rec = getattr(self, "_rec", None)
        return rec.status if rec is not None else -1

    @_status.setter
    def _status(self, value: int) -> None:
        rec = getattr(self, "_rec", None)
        if rec is not None:
            rec.status = value

    # -- entry points ----------------------------------------------------------------------------------------------

    def do_GET(self):
        self._handle("GET")

    def do_HEAD(self):
        self._handle("HEAD")

    def do_POST(self):
        self._handle("POST")

    def do_PUT(self):
        self._handle("PUT")

    def do_DELETE(self):
        self._handle("DELETE")

    def do_PATCH(self):
        self._handle("PATCH")

    def _handle(self, method: str) -> None:
        hub = self.server.hub
        self._method = method
        self._rec = None
        self._body_remaining: int | None = None
        self._chunked = "chunked" in (self.headers.get("Transfer-Encoding") or "").lower()
        length = self.headers.get("Content-Length")
        self._body_remaining = int(length) if (length and length.isdigit() and not self._chunked) else None
        if self._body_remaining is None and not self._chunked:
            self._body_remaining = 0
        raw_path, _, query = self.path.partition("?")
        self._query = parse_qs(query, keep_blank_values=True)
        self._authenticated, self._auth_valid = self._check_auth()
        origin = self.server.origin_name
        self._rec = RequestRecord(method, raw_path, -1, origin, self._authenticated)
        hub._record_start(self._rec)
        try:
            fault = hub._take_injected(method, raw_path)
            if fault is not None:
                raise HubError(fault["status"], fault["message"], code=fault["code"], headers=fault["headers"])
            if origin == "cdn":
                self._route_cdn(method, raw_path)
            else:
                self._route_hub(method, raw_path)
        except _DropConnection as drop:
            self._status = 0
            with hub._lock:
                hub.dropped_connections += 1
            if drop.abrupt:
                self._abort_connection()
            else:
                self.close_connection = True
        except _ClientGone:
            self._status = 499
            self.close_connection = True
        except (BrokenPipeError, ConnectionResetError, ConnectionAbortedError, socket.timeout):
            if self._status == -1:
                self._status = 499
            self.close_connection = True
        except HubError as err:
            try:
                self._send_error(err)
            except (OSError, _ClientGone):
                self._status = 499
                self.close_connection = True
        except Exception:  # a bug in the fake server: answer 500 and remember the traceback
            hub.errors.append(f"{method} {raw_path}\n{traceback.format_exc()}")
            self.close_connection = True
            with contextlib.suppress(Exception):
                self._send_error(HubError(500, "Internal error in fake hub server"))
        finally:
            if self._rec.status == -1:
                self._rec.status = 499
            hub._record_done(self._rec)

    def _check_auth(self) -> tuple[bool, bool]:
        value = self.headers.get("Authorization")
        if not value:
            return False, False
        scheme, _, token = value.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return True, False
        valid = self.server.hub.valid_tokens
        return True, (valid is None or token.strip() in valid)

    def _require_auth(self) -> None:
        if not self._auth_valid:
            raise HubError(401, "Invalid credentials in Authorization header")

    def _authorized_read(self) -> bool:
        if self._authenticated and not self._auth_valid:
            raise HubError(401, "Invalid credentials in Authorization header")
        return self._auth_valid

    # -- request body ----------------------------------------------------------------------------------------------

    def _iter_body(self, chunk_size: int = _CHUNK) -> Iterator[bytes]:
        if self._chunked:
            while True:
                line = self.rfile.readline(65537)
                if not line:
                    raise _ClientGone()
                size = int(line.split(b";", 1)[0].strip() or b"0", 16)
                if size == 0:
                    while True:  # trailers
                        trailer = self.rfile.readline(65537)
                        if not trailer or trailer in (b"\r\n", b"\n"):
                            break
                    self._chunked = False
                    self._body_remaining = 0
                    return
                while size > 0:
                    data = self.rfile.read(min(size, chunk_size))
                    if not data:
                        raise _ClientGone()
                    size -= len(data)
                    yield data
                self.rfile.readline(3)  # CRLF after each chunk
        else:
            while self._body_remaining:
                data = self.rfile.read(min(self._body_remaining, chunk_size))
                if not data:
                    raise _ClientGone()
                self._body_remaining -= len(data)
                yield data

    def _read_body(self, limit: int = 2 * 1024**3) -> bytes:
        out = bytearray()
        for chunk in self._iter_body():
            out += chunk
            if len(out) > limit:
                raise HubError(413, "Request body too large")
        return bytes(out)

    def _read_json(self) -> Any:
        raw = self._read_body()
        try:
            return json.loads(raw or b"null")
        except ValueError:
            raise HubError(400, "Invalid JSON body") from None

    def _drain_body(self) -> None:
        if self._chunked or (self._body_remaining or 0) > 0:
            if not self._chunked and self._body_remaining > 64 * 1024 * 1024:
                self.close_connection = True
                return
            for _ in self._iter_body():
                pass

    def _abort_connection(self) -> None:
        """Close the socket abruptly (RST), no response."""
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        with contextlib.suppress(OSError):
            self.connection.shutdown(socket.SHUT_RDWR)

    # -- responses -------------------------------------------------------------------------------------------------

    def _start_response(self, status: int, headers: dict[str, Any], content_length: int) -> None:
        with contextlib.suppress(_ClientGone, OSError):
            self._drain_body()
        self._status = status
        self.send_response(status)
        self.send_header("X-Request-Id", "Root=1-" + uuid.uuid4().hex[:24])
        for key, value in headers.items():
            if value is not None:
                self.send_header(key, str(value))
        self.send_header("Content-Length", str(content_length))
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()

    def _send(self, status: int, body: bytes = b"", headers: dict | None = None, content_type: str | None = None):
        headers = dict(headers or {})
        if content_type:
            headers.setdefault("Content-Type", content_type)
        self._start_response(status, headers, len(body))
        if self._method != "HEAD" and body:
            self.wfile.write(body)

    def _send_json(self, obj: Any, status: int = 200, headers: dict | None = None, content_type="application/json"):
        self._send(status, json.dumps(obj).encode(), headers, content_type + "; charset=utf-8")

    def _send_error(self, err: HubError) -> None:
        headers = dict(err.headers)
        if err.code:
            headers["X-Error-Code"] = err.code
        headers["X-Error-Message"] = err.message.replace("\r", " ").replace("\n", " ")
        body = err.body if err.body is not None else {"error": err.message}
        self._send_json(body, status=err.status, headers=headers)

    def _stream_file(self, path: Path, size: int, headers: dict, filename: str) -> None:
        """Answer a GET/HEAD for a file's bytes, honoring Range; may drop midway when the knob is set."""
        hub = self.server.hub
        headers = dict(headers)
        headers.setdefault("Content-Type", "application/octet-stream")
        headers["Accept-Ranges"] = "bytes"
        headers["Content-Disposition"] = f"inline; filename*=UTF-8''{quote(filename)}; filename=\"{filename}\";"
        start, end, status = 0, size - 1, 200
        range_header = self.headers.get("Range")
        if range_header:
            m = re.fullmatch(r"\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*", range_header)
            if not m or (not m.group(1) and not m.group(2)):
                raise HubError(416, "Invalid range", headers={"Content-Range": f"bytes */{size}"})
            if m.group(1):
                start = int(m.group(1))
                end = min(int(m.group(2)), size - 1) if m.group(2) else size - 1
            else:
                start = max(size - int(m.group(2)), 0)
            if start >= size or start > end:
                raise HubError(416, "Requested range not satisfiable", headers={"Content-Range": f"bytes */{size}"})
            status = 206
            headers["Content-Range"] = f"bytes {start}-{end}/{size}"
        length = max(end - start + 1, 0)
        self._start_response(status, headers, length)
        if self._method == "HEAD" or length == 0:
            return
        drop_after = length // 2 if hub._take_flag("fail_next_download_midway") else None
        sent = 0
        with open(path, "rb") as f:
            f.seek(start)
            while sent < length:
                n = min(_CHUNK, length - sent)
                if drop_after is not None:
                    n = min(n, drop_after - sent)
                    if n <= 0:
                        raise _DropConnection(abrupt=False)
                data = f.read(n)
                if not data:
                    raise RuntimeError("storage file shorter than expected")
                self.wfile.write(data)
                sent += len(data)

    # -- routing ---------------------------------------------------------------------------------------------------

    def _unhandled(self, method: str, raw_path: str) -> None:
        self.server.hub.unhandled.append(f"{method} {raw_path}")
        raise HubError(404, f"Not found: {method} {raw_path}")

    def _route_hub(self, method: str, raw_path: str) -> None:
        segs = raw_path.split("/")[1:]
        if segs and segs[0] == "api":
            return self._route_api(method, segs[1:], raw_path)

        # /[datasets/|spaces/]{ns}/{name}.git/info/lfs/objects/...   and   /[...]{ns}/{name}/resolve/{rev}/{path}
        repo_type = "model"
        if len(segs) >= 4 and segs[0] in ("datasets", "spaces") and (segs[2].endswith(".git") or segs[3] == "resolve"):
            repo_type = _TYPE_PLURALS[segs[0]]
            segs = segs[1:]
        if len(segs) >= 6 and segs[1].endswith(".git") and segs[2:5] == ["info", "lfs", "objects"]:
            repo_id = f"{unquote(segs[0])}/{unquote(segs[1])[:-4]}"
            action = segs[5:]
            if action == ["batch"] and method == "POST":
                return self._lfs_batch(repo_type, repo_id)
            if action == ["verify"] and method == "POST":
                return self._lfs_verify(repo_type, repo_id)
            if len(action) == 2 and action[0] == "complete" and method == "POST":
                return self._lfs_complete(repo_type, repo_id, action[1])
            return self._unhandled(method, raw_path)
        if len(segs) >= 5 and segs[2] == "resolve" and method in ("GET", "HEAD"):
            repo_id = f"{unquote(segs[0])}/{unquote(segs[1])}"
            revision = unquote(segs[3])
            path = "/".join(unquote(s) for s in segs[4:])
            return self._resolve_file(repo_type, repo_id, revision, path)
        return self._unhandled(method, raw_path)

    def _route_api(self, method: str, rest: list[str], raw_path: str) -> None:
        if rest == ["whoami-v2"] and method == "GET":
            return self._whoami()
        if rest == ["repos", "create"] and method == "POST":
            return self._repo_create()
        if rest == ["repos", "delete"] and method == "DELETE":
            return self._repo_delete()
        if rest == ["repos", "move"] and method == "POST":
            return self._repo_move()
        if rest == ["validate-yaml"] and method == "POST":
            return self._validate_yaml()
        if rest == ["agent-harnesses"] and method == "GET":
            return self._send_json({"standardEnvVars": [], "harnesses": {}})
        if len(rest) >= 2 and rest[0] in _TYPE_PLURALS:
            repo_type = _TYPE_PLURALS[rest[0]]
            if len(rest) == 2:  # canonical (namespace-less) repo ids are not supported by this server
                raise HubError(404, "Repository not found", code="RepoNotFound")
            repo_id = f"{unquote(rest[1])}/{unquote(rest[2])}"
            tail = rest[3:]
            if not tail and method == "GET":
                return self._repo_info(repo_type, repo_id, None)
            if len(tail) == 2 and tail[0] == "revision" and method == "GET":
                return self._repo_info(repo_type, repo_id, unquote(tail[1]))
            if tail == ["refs"] and method == "GET":
                return self._refs(repo_type, repo_id)
            if len(tail) >= 2 and tail[0] == "tree" and method == "GET":
                path = "/".join(unquote(s) for s in tail[2:])
                return self._tree(repo_type, repo_id, unquote(tail[1]), path)
            if len(tail) == 2 and tail[0] == "paths-info" and method == "POST":
                return self._paths_info(repo_type, repo_id, unquote(tail[1]))
            if len(tail) == 2 and tail[0] == "preupload" and method == "POST":
                return self._preupload(repo_type, repo_id, unquote(tail[1]))
            if len(tail) == 2 and tail[0] == "commit" and method == "POST":
                return self._commit(repo_type, repo_id, unquote(tail[1]))
            if len(tail) == 2 and tail[0] == "commits" and method == "GET":
                return self._list_commits(repo_type, repo_id, unquote(tail[1]))
            if len(tail) == 2 and tail[0] == "branch" and method in ("POST", "DELETE"):
                return self._branch(method, repo_type, repo_id, unquote(tail[1]))
            if len(tail) == 2 and tail[0] == "tag" and method in ("POST", "DELETE"):
                return self._tag(method, repo_type, repo_id, unquote(tail[1]))
            if tail == ["settings"] and method == "PUT":
                return self._settings(repo_type, repo_id)
            if tail and tail[0] in ("xet-read-token", "xet-write-token"):
                self.server.hub.unhandled.append(f"{method} {raw_path}")
                raise HubError(
                    501,
                    "This fake Hub does not implement Xet storage: run the client with "
                    "HF_HUB_DISABLE_XET=1 (plain git-LFS uploads are supported)",
                )
        return self._unhandled(method, raw_path)

    def _route_cdn(self, method: str, raw_path: str) -> None:
        hub = self.server.hub
        segs = raw_path.split("/")[1:]
        if len(segs) == 2 and segs[0] == "lfs" and method in ("GET", "HEAD"):
            sha = segs[1]
            hub._check_sig(self._query, "get", sha)
            path = hub._lfs_path(sha)
            if not path.is_file():
                raise HubError(404, "Object not found")
            filename = (self._query.get("filename") or [sha])[0].rsplit("/", 1)[-1]
            return self._stream_file(path, path.stat().st_size, {"ETag": f'"{sha}"'}, filename)
        if len(segs) == 2 and segs[0] == "lfs-upload" and method == "PUT":
            return self._lfs_put(segs[1])
        if len(segs) == 3 and segs[0] == "lfs-part" and method == "PUT":
            return self._lfs_put_part(segs[1], segs[2])
        return self._unhandled(method, raw_path)

    # -- API handlers ----------------------------------------------------------------------------------------------

    def _whoami(self) -> None:
        self._require_auth()
        hub = self.server.hub
        self._send_json(
            {
                "type": "user",
                "id": hashlib.sha1(hub.username.encode()).hexdigest()[:24],
                "name": hub.username,
                "fullname": "Fake Test User",
                "email": f"{hub.username}@example.invalid",
                "emailVerified": True,
                "canPay": False,
                "isPro": False,
                "periodEnd": None,
                "avatarUrl": "",
                "orgs": [],
                "auth": {
                    "type": "access_token",
                    "accessToken": {
                        "displayName": "fake-token",
                        "role": "write",
                        "createdAt": "2024-01-01T00:00:00.000Z",
                    },
                },
            }
        )

    def _repo_create(self) -> None:
        hub = self.server.hub
        payload = self._read_json() or {}
        self._require_auth()
        name = payload.get("name")
        namespace = payload.get("organization") or hub.username
        repo_type = payload.get("type") or "model"
        if repo_type not in _URL_PREFIX:
            raise HubError(400, f"Invalid repo type: {repo_type}")
        if (
            not isinstance(name, str)
            or not _REPO_NAME.fullmatch(name)
            or "--" in name
            or ".." in name
            or name.endswith(".git")
        ):
            raise HubError(400, f"Invalid repo name: {name!r}")
        if not _REPO_NAME.fullmatch(namespace):
            raise HubError(400, f"Invalid namespace: {namespace!r}")
        repo_id = f"{namespace}/{name}"
        visibility = payload.get("visibility")
        private = bool(payload.get("private")) or visibility in ("private", "protected")
        url = f"{hub.url}/{_URL_PREFIX[repo_type]}{repo_id}"
        with hub._lock:
            if (repo_type, repo_id) in hub._repos:
                raise HubError(
                    409,
                    f"You already created this {repo_type} repo",
                    body={"error": f"You already created this {repo_type} repo", "url": url},
                )
            hub._create_repo(repo_type, repo_id, private)
        self._send_json({"url": url, "name": repo_id, "id": hashlib.sha1(url.encode()).hexdigest()[:24]})

    def _repo_delete(self) -> None:
        hub = self.server.hub
        payload = self._read_json() or {}
        self._require_auth()
        repo_id = f"{payload.get('organization') or hub.username}/{payload.get('name')}"
        repo_type = payload.get("type") or "model"
        with hub._lock:
            if (repo_type, repo_id) not in hub._repos:
                raise HubError(404, "Repository not found", code="RepoNotFound")
            del hub._repos[(repo_type, repo_id)]
            hub._save_state()
        self._send(200, b"")

    def _repo_move(self) -> None:
        hub = self.server.hub
        payload = self._read_json() or {}
        self._require_auth()
        repo_type = payload.get("type") or "model"
        src, dst = payload.get("fromRepo"), payload.get("toRepo")
        with hub._lock:
            repo = hub._get_repo(repo_type, str(src), True)
            if (repo_type, dst) in hub._repos:
                raise HubError(409, "A repo with this name already exists")
            del hub._repos[(repo_type, src)]
            repo.repo_id = dst
            hub._repos[(repo_type, dst)] = repo
            hub._save_state()
        self._send(200, b"")

    def _settings(self, repo_type: str, repo_id: str) -> None:
        hub = self.server.hub
        payload = self._read_json() or {}
        self._require_auth()
        with hub._lock:
            repo = hub._get_repo(repo_type, repo_id, True)
            if "private" in payload:
                repo.private = bool(payload["private"])
            if "visibility" in payload:
                repo.private = payload["visibility"] in ("private", "protected")
            if "gated" in payload:
                repo.gated = payload["gated"]
            hub._save_state()
        self._send_json({})

    def _card_data(self, tree: dict[str, FileEntry]) -> dict | None:
        text = self.server.hub._read_tree_text(tree, "README.md")
        if not text or _yaml is None:
            return None
        m = _YAML_BLOCK.search(text)
        if not m:
            return None
        try:
            data = _yaml.safe_load(m.group(2))
        except Exception:
            return None
        return data if isinstance(data, dict) else None

    def _repo_info(self, repo_type: str, repo_id: str, revision: str | None) -> None:
        hub = self.server.hub
        authenticated = self._authorized_read()
        with hub._lock:
            repo = hub._get_repo(repo_type, repo_id, authenticated)
            oid = hub._resolve(repo, revision)
            commit = repo.commits[oid]
            tree = dict(commit.tree)
            private, created_at, gated = repo.private, repo.created_at, repo.gated
        blobs = _truthy((self._query.get("blobs") or [None])[0])
        siblings = []
        for path in sorted(tree):
            item: dict[str, Any] = {"rfilename": path}
            if blobs:
                entry = tree[path]
                item.update({"size": entry.size, "blobId": entry.oid})
                if entry.is_lfs:
                    item["lfs"] = {"size": entry.size, "sha256": entry.lfs_sha256, "pointerSize": entry.pointer_size}
            siblings.append(item)
        card = self._card_data(tree)
        info: dict[str, Any] = {
            "_id": hashlib.sha1(f"{repo_type}/{repo_id}".encode()).hexdigest()[:24],
            "id": repo_id,
            "author": repo_id.split("/")[0],
            "sha": oid,
            "lastModified": commit.date,
            "createdAt": created_at,
            "private": private,
            "gated": gated,
            "disabled": False,
            "downloads": 0,
            "likes": 0,
            "tags": list(card.get("tags") or []) if card and isinstance(card.get("tags"), list) else [],
            "siblings": siblings,
            "usedStorage": sum(e.size for e in tree.values()),
        }
        if card is not None:
            info["cardData"] = card
        if repo_type == "model":
            info["modelId"] = repo_id
            if card and isinstance(card.get("library_name"), str):
                info["library_name"] = card["library_name"]
            if card and isinstance(card.get("pipeline_tag"), str):
                info["pipeline_tag"] = card["pipeline_tag"]
        if repo_type == "space":
            info.update({"sdk": (card or {}).get("sdk"), "runtime": None, "subdomain": repo_id.replace("/", "-")})
        expand = self._query.get("expand") or self._query.get("expand[]")
        if expand:
            info = {k: v for k, v in info.items() if k in set(expand) | {"_id", "id"}}
        self._send_json(info)

    def _refs(self, repo_type: str, repo_id: str) -> None:
        hub = self.server.hub
        authenticated = self._authorized_read()
        with hub._lock:
            repo = hub._get_repo(repo_type, repo_id, authenticated)
            data = {
                "branches": [
                    {"name": b, "ref": f"refs/heads/{b}", "targetCommit": oid}
                    for b, oid in sorted(repo.branches.items())
                ],
                "converts": [],
                "tags": [
                    {"name": t, "ref": f"refs/tags/{t}", "targetCommit": oid} for t, oid in sorted(repo.tags.items())
                ],
            }
            if _truthy((self._query.get("include_prs") or [None])[0]):
                data["pullRequests"] = [
                    {"name": f"refs/pr/{n}", "ref": f"refs/pr/{n}", "targetCommit": oid}
                    for n, oid in sorted(repo.prs.items())
                ]
        self._send_json(data)

    def _paginate(self, items: list, page_size: int) -> None:
        cursor = (self._query.get("cursor") or ["0"])[0]
        start = int(cursor) if cursor.isdigit() else 0
        page = items[start : start + page_size]
        headers = {}
        if start + page_size < len(items):
            query = {k: v[-1] for k, v in self._query.items() if k != "cursor"}
            query["cursor"] = str(start + page_size)
            raw_path = self.path.partition("?")[0]
            headers["Link"] = f'<{self.server.hub.url}{raw_path}?{urlencode(query)}>; rel="next"'
        self._send_json(page, headers=headers)

    def _tree(self, repo_type: str, repo_id: str, revision: str, path: str) -> None:
        hub = self.server.hub
        authenticated = self._authorized_read()
        recursive = _truthy((self._query.get("recursive") or [None])[0])
        expand = _truthy((self._query.get("expand") or [None])[0])
        path = path.strip("/")
        with hub._lock:
            repo = hub._get_repo(repo_type, repo_id, authenticated)
            oid = hub._resolve(repo, revision)
            tree = repo.commits[oid].tree
            folders = hub._folders(tree)
            if path and path not in folders:
                if path in tree:
                    items = [hub._entry_json(repo, oid, tree, path, False, expand)]
                    return self._send_json(items)
                raise HubError(404, f"Entry not found: {path}", code="EntryNotFound", headers={"X-Repo-Commit": oid})
            prefix = path + "/" if path else ""
            out_folders, out_files = [], []
            for folder in sorted(folders):
                if folder.startswith(prefix) and (recursive or "/" not in folder[len(prefix) :]):
                    out_folders.append(folder)
            for file_path in sorted(tree):
                if file_path.startswith(prefix) and (recursive or "/" not in file_path[len(prefix) :]):
                    out_files.append(file_path)
            items = [hub._entry_json(repo, oid, tree, f, True, expand) for f in out_folders]
            items += [hub._entry_json(repo, oid, tree, f, False, expand) for f in out_files]
        self._paginate(items, 50 if expand else hub.tree_page_size)

    def _paths_info(self, repo_type: str, repo_id: str, revision: str) -> None:
        hub = self.server.hub
        raw = self._read_body()
        ctype = (self.headers.get("Content-Type") or "").lower()
        if "json" in ctype:
            payload = json.loads(raw or b"{}")
            paths = payload.get("paths") or []
            expand = bool(payload.get("expand"))
        else:
            form = parse_qs(raw.decode(), keep_blank_values=True)
            paths = form.get("paths", [])
            expand = _truthy((form.get("expand") or [None])[0])
        authenticated = self._authorized_read()
        with hub._lock:
            repo = hub._get_repo(repo_type, repo_id, authenticated)
            oid = hub._resolve(repo, revision)
            tree = repo.commits[oid].tree
            folders = hub._folders(tree)
            items = []
            for p in paths:
                p = str(p).strip("/")
                if p in tree:
                    items.append(hub._entry_json(repo, oid, tree, p, False, expand))
                elif p in folders:
                    items.append(hub._entry_json(repo, oid, tree, p, True, expand))
        self._send_json(items)

    def _preupload(self, repo_type: str, repo_id: str, revision: str) -> None:
        hub = self.server.hub
        payload = self._read_json() or {}
        self._require_auth()
        with hub._lock:
            repo = hub._get_repo(repo_type, repo_id, True)
            oid = hub._resolve(repo, revision)
            tree = dict(repo.commits[oid].tree)
        ignore_text = payload.get("gitIgnore")
        if ignore_text is None:
            ignore_text = hub._read_tree_text(tree, ".gitignore")
        ignore_patterns = _gitignore_patterns(ignore_text) if ignore_text else []
        files = []
        for item in payload.get("files") or []:
            path = str(item.get("path", "")).lstrip("/")
            try:
                sample = base64.b64decode(item.get("sample") or "")
            except ValueError:
                raise HubError(400, f"Invalid sample for {path}") from None
            mode = hub._upload_mode(tree, path, int(item.get("size") or 0), sample)
            existing = tree.get(path)
            remote_oid = None
            if existing is not None:
                remote_oid = existing.lfs_sha256 if existing.is_lfs else existing.oid
            files.append(
                {
                    "path": path,
                    "uploadMode": mode,
                    "shouldIgnore": any(_path_matches(path, p) for p in ignore_patterns),
                    "oid": remote_oid,
                }
            )
        self._send_json({"files": files, "commitOid": oid})

    def _commit(self, repo_type: str, repo_id: str, revision: str) -> None:
        hub = self.server.hub
        if hub._take_flag("fail_next_commit_midway"):
            # Read part of the body, then drop the connection without answering.
            target = (self._body_remaining or 2) // 2 if not self._chunked else _CHUNK
            read = 0
            for chunk in self._iter_body(chunk_size=max(1, min(_CHUNK, target))):
                read += len(chunk)
                if read >= target:
                    break
            raise _DropConnection()
        self._require_auth()
        create_pr = _truthy((self._query.get("create_pr") or [None])[0])

        # 1. Read the whole NDJSON body (spooled to disk if large); a truncated body aborts the commit.
        with tempfile.SpooledTemporaryFile(max_size=16 * 1024 * 1024, dir=hub.root / "tmp") as spool:
            for chunk in self._iter_body():
                spool.write(chunk)
            spool.seek(0)
            header = None
            ops: list[tuple[str, dict]] = []
            for lineno, line in enumerate(spool, start=1):
                line = line.strip()
                if not line:
                    continue
                try:
                    item = json.loads(line)
                    key, value = item["key"], item["value"]
                except (ValueError, KeyError, TypeError):
                    raise HubError(400, f"Invalid NDJSON commit payload at line {lineno}") from None
                if header is None:
                    if key != "header":
                        raise HubError(400, "The first line of a commit payload must be the header")
                    header = value if isinstance(value, dict) else {}
                    continue
                if key == "file":
                    # 2. Store regular file contents (content-addressed; invisible until a ref points at them).
                    encoding = value.get("encoding", "base64")
                    content = value.get("content", "")
                    try:
                        data = base64.b64decode(content, validate=True) if encoding == "base64" else content.encode()
                    except ValueError:
                        raise HubError(400, f"Invalid base64 content for {value.get('path')}") from None
                    value = dict(value)
                    value.pop("content", None)
                    value["_entry"] = FileEntry(oid=hub._store_blob(data), size=len(data))
                ops.append((key, value))
        if header is None:
            raise HubError(400, "Empty commit payload")

        # 3. Build the new tree and swap the ref atomically.
        answer = hub._apply_commit(repo_type, repo_id, revision, header, ops, create_pr, True)
        self._send_json(answer)

    def _list_commits(self, repo_type: str, repo_id: str, revision: str) -> None:
        hub = self.server.hub
        authenticated = self._authorized_read()
        with hub._lock:
            repo = hub._get_repo(repo_type, repo_id, authenticated)
            history = hub._history(repo, hub._resolve(repo, revision))
            items = [
                {
                    "id": c.oid,
                    "title": c.title,
                    "message": c.message,
                    "authors": [{"user": c.author, "avatar": ""}],
                    "date": c.date,
                    "formatted": {"title": c.title, "message": c.message},
                }
                for c in history
            ]
        self._paginate(items, 50)

    def _branch(self, method: str, repo_type: str, repo_id: str, branch: str) -> None:
        hub = self.server.hub
        payload = self._read_json() if method == "POST" else None
        self._require_auth()
        with hub._lock:
            repo = hub._get_repo(repo_type, repo_id, True)
            if method == "DELETE":
                if branch not in repo.branches:
                    raise HubError(404, f"Invalid rev id: {branch}", code="RevisionNotFound")
                if branch == "main":
                    raise HubError(403, "Cannot delete the default branch")
                del repo.branches[branch]
            else:
                if branch.startswith("refs/") or ".." in branch or not branch or branch.endswith("/"):
                    raise HubError(400, f"Invalid branch name: {branch}")
                if branch in repo.branches:
                    raise HubError(409, f"Reference already exists: refs/heads/{branch}")
                start = (payload or {}).get("startingPoint")
                repo.branches[branch] = hub._resolve(repo, start)
            hub._save_state()
        self._send_json({})

    def _tag(self, method: str, repo_type: str, repo_id: str, target: str) -> None:
        hub = self.server.hub
        payload = self._read_json() if method == "POST" else None
        self._require_auth()
        with hub._lock:
            repo = hub._get_repo(repo_type, repo_id, True)
            if method == "DELETE":
                if target not in repo.tags:
                    raise HubError(404, f"Invalid rev id: {target}", code="RevisionNotFound")
                del repo.tags[target]
            else:
                tag = str((payload or {}).get("tag") or "")
                if not tag or tag.startswith("refs/"):
                    raise HubError(400, f"Invalid tag name: {tag!r}")
                if tag in repo.tags:
                    raise HubError(409, f"Reference already exists: refs/tags/{tag}")
                repo.tags[tag] = hub._resolve(repo, target)
            hub._save_state()
        self._send_json({})

    def _validate_yaml(self) -> None:
        payload = self._read_json() or {}
        content = payload.get("content")
        errors: list[dict] = []
        if not isinstance(content, str):
            errors.append({"message": "'content' must be a string"})
        else:
            m = _YAML_BLOCK.search(content)
            if m and _yaml is not None:
                try:
                    metadata = _yaml.safe_load(m.group(2))
                except Exception as e:
                    metadata = None
                    errors.append({"message": f"Invalid YAML metadata: {str(e).splitlines()[0]}"})
                if not errors:
                    errors.extend(_check_card_metadata(metadata))
        if errors:
            if "text/plain" in (self.headers.get("Accept") or ""):
                text = "\n".join(f"- {e['message']}" for e in errors)
                return self._send(400, text.encode(), content_type="text/plain; charset=utf-8")
            return self._send_json({"errors": errors, "warnings": []}, status=400)
        self._send_json({"errors": [], "warnings": []})

    # -- resolve / download ----------------------------------------------------------------------------------------

    def _resolve_file(self, repo_type: str, repo_id: str, revision: str, path: str) -> None:
        hub = self.server.hub
        authenticated = self._authorized_read()
        with hub._lock:
            repo = hub._get_repo(repo_type, repo_id, authenticated)
            oid = hub._resolve(repo, revision)
            entry = repo.commits[oid].tree.get(path)
        if entry is None:
            raise HubError(404, "Entry not found", code="EntryNotFound", headers={"X-Repo-Commit": oid})
        filename = path.rsplit("/", 1)[-1]
        headers: dict[str, Any] = {"X-Repo-Commit": oid}
        if entry.is_lfs:
            headers["ETag"] = f'"{entry.oid}"'
            headers["X-Linked-Etag"] = f'"{entry.lfs_sha256}"'
            headers["X-Linked-Size"] = str(entry.size)
            if hub.lfs_redirect == "cdn":
                location = hub._lfs_download_url(entry.lfs_sha256, filename)
                headers["Location"] = location
                body = f"Found. Redirecting to {location}".encode()
                return self._send(302, body, headers, "text/plain; charset=utf-8")
            headers["ETag"] = f'"{entry.lfs_sha256}"'
        else:
            headers["ETag"] = f'"{entry.oid}"'
        ctype = "application/octet-stream" if entry.is_lfs else _guess_text_type(path)
        headers["Content-Type"] = ctype
        self._stream_file(hub._content_path(entry), entry.size, headers, filename)

    # -- git LFS ---------------------------------------------------------------------------------------------------

    def _lfs_batch(self, repo_type: str, repo_id: str) -> None:
        hub = self.server.hub
        payload = self._read_json() or {}
        operation = payload.get("operation")
        if operation == "upload":
            self._require_auth()
        authenticated = self._authorized_read()
        with hub._lock:
            hub._get_repo(repo_type, repo_id, authenticated)
        transfers = payload.get("transfers") or ["basic"]
        chunk = hub.lfs_multipart_chunk_size
        use_multipart = operation == "upload" and chunk is not None and "multipart" in transfers
        objects = []
        for obj in payload.get("objects") or []:
            oid, size = str(obj.get("oid", "")), obj.get("size")
            out: dict[str, Any] = {"oid": oid, "size": size if isinstance(size, int) else 0}
            if not _HEX64.fullmatch(oid) or not isinstance(size, int) or size < 0:
                out["error"] = {"code": 422, "message": "Invalid object oid or size"}
                objects.append(out)
                continue
            path = hub._lfs_path(oid)
            exists = path.is_file() and path.stat().st_size == size
            if operation == "download":
                if exists:
                    out["actions"] = {"download": {"href": hub._lfs_download_url(oid, oid)}}
                else:
                    out["error"] = {"code": 404, "message": "Object does not exist"}
            elif operation == "upload":
                out["authenticated"] = True
                if not exists:
                    base = f"{hub.url}/{_URL_PREFIX[repo_type]}{repo_id}.git/info/lfs/objects"
                    verify = {"href": f"{base}/verify"}
                    if use_multipart and size > chunk:
                        upload_id = uuid.uuid4().hex
                        n_parts = math.ceil(size / chunk)
                        header = {"chunk_size": str(chunk)}
                        for i in range(1, n_parts + 1):
                            header[str(i)] = f"{hub.cdn_url}/lfs-part/{upload_id}/{i}?" + hub._signed_query(
                                "part", upload_id, str(i)
                            )
                        with hub._lock:
                            hub._multipart[upload_id] = {"oid": oid, "size": size, "parts": {}, "n": n_parts}
                        upload = {"href": f"{base}/complete/{upload_id}", "header": header}
                    else:
                        upload = {
                            "href": f"{hub.cdn_url}/lfs-upload/{oid}?"
                            + hub._signed_query("put", oid, str(size), extra={"size": str(size)})
                        }
                    out["actions"] = {"upload": upload, "verify": verify}
            else:
                raise HubError(400, f"Unsupported LFS operation: {operation!r}")
            objects.append(out)
        transfer = "multipart" if use_multipart else "basic"
        self._send_json(
            {"transfer": transfer, "objects": objects, "hash_algo": "sha256"},
            content_type="application/vnd.git-lfs+json",
        )

    def _receive_to_tmp(self, expected_size: int, fault_flag: str) -> tuple[str, str, int]:
        """Stream the request body into a temp file; returns (tmp_path, sha256, size). Deletes it on failure."""
        hub = self.server.hub
        drop_after = max(1, expected_size // 2) if hub._take_flag(fault_flag) else None
        fd, tmp = hub._new_tmp()
        h = hashlib.sha256()
        size = 0
        ok = False
        try:
            with os.fdopen(fd, "wb") as f:
                for data in self._iter_body():
                    f.write(data)
                    h.update(data)
                    size += len(data)
                    if drop_after is not None and size >= drop_after:
                        raise _DropConnection()
            ok = True
            return tmp, h.hexdigest(), size
        finally:
            if not ok:
                with contextlib.suppress(OSError):
                    os.unlink(tmp)

    def _lfs_put(self, oid: str) -> None:
        hub = self.server.hub
        size_q = (self._query.get("size") or [""])[0]
        hub._check_sig(self._query, "put", oid, size_q)
        expected = int(size_q)
        tmp, sha, size = self._receive_to_tmp(expected, "fail_next_lfs_upload_midway")
        if size != expected or sha != oid:
            os.unlink(tmp)
            raise HubError(400, f"Uploaded content does not match: expected sha256 {oid} ({expected} bytes)")
        hub._commit_tmp_to_lfs(tmp, oid)
        self._send(200, b"", {"ETag": f'"{hashlib.md5(oid.encode()).hexdigest()}"'})

    def _lfs_put_part(self, upload_id: str, part: str) -> None:
        hub = self.server.hub
        hub._check_sig(self._query, "part", upload_id, part)
        with hub._lock:
            state = hub._multipart.get(upload_id)
        if state is None:
            raise HubError(404, "Unknown upload")
        chunk = hub.lfs_multipart_chunk_size or 0
        index = int(part)
        expected = min(chunk, state["size"] - (index - 1) * chunk)
        tmp, sha, size = self._receive_to_tmp(expected, "fail_next_lfs_upload_midway")
        if size != expected:
            os.unlink(tmp)
            raise HubError(400, f"Part {part}: expected {expected} bytes, got {size}")
        etag = hashlib.md5(sha.encode()).hexdigest()
        with hub._lock:
            old = state["parts"].get(index)
            state["parts"][index] = (tmp, etag)
        if old:
            with contextlib.suppress(OSError):
                os.unlink(old[0])
        self._send(200, b"", {"ETag": f'"{etag}"'})

    def _lfs_complete(self, repo_type: str, repo_id: str, upload_id: str) -> None:
        hub = self.server.hub
        payload = self._read_json() or {}
        with hub._lock:
            state = hub._multipart.get(upload_id)
        if state is None or payload.get("oid") != state["oid"]:
            raise HubError(404, "Unknown upload")
        parts = payload.get("parts") or []
        if [p.get("partNumber") for p in parts] != list(range(1, state["n"] + 1)):
            raise HubError(400, "Missing or unordered parts")
        for p in parts:
            got = state["parts"].get(p["partNumber"])
            if got is None or str(p.get("etag", "")).strip('"') != got[1]:
                raise HubError(400, f"ETag mismatch for part {p.get('partNumber')}")
        fd, tmp = hub._new_tmp()
        h = hashlib.sha256()
        with os.fdopen(fd, "wb") as out:
            for i in range(1, state["n"] + 1):
                with open(state["parts"][i][0], "rb") as f:
                    while data := f.read(_CHUNK):
                        h.update(data)
                        out.write(data)
        if h.hexdigest() != state["oid"] or os.path.getsize(tmp) != state["size"]:
            os.unlink(tmp)
            raise HubError(400, "Assembled object does not match its oid/size")
        hub._commit_tmp_to_lfs(tmp, state["oid"])
        with hub._lock:
            hub._multipart.pop(upload_id, None)
        for part_tmp, _ in state["parts"].values():
            with contextlib.suppress(OSError):
                os.unlink(part_tmp)
        self._send_json({})

    def _lfs_verify(self, repo_type: str, repo_id: str) -> None:
        hub = self.server.hub
        payload = self._read_json() or {}
        with hub._lock:
            hub._get_repo(repo_type, repo_id, self._authorized_read())
        oid, size = str(payload.get("oid", "")), payload.get("size")
        path = hub._lfs_path(oid) if _HEX64.fullmatch(oid) else None
        if path is None or not path.is_file() or path.stat().st_size != size:
            raise HubError(404, f"LFS object not found: {oid}")
        self._send_json({"oid": oid, "size": size})


def _guess_text_type(path: str) -> str:
    lowered = path.lower()
    if lowered.endswith(".json"):
        return "application/json; charset=utf-8"
    if lowered.endswith((".md", ".txt", ".py", ".yaml", ".yml", ".gitattributes", ".jinja", ".csv")):
        return "text/plain; charset=utf-8"
    return "application/octet-stream"


def _check_card_metadata(metadata: Any) -> list[dict]:
    """A few of the Hub's model-card metadata checks (enough to exercise the error path)."""
    if metadata is None:
        return []
    if not isinstance(metadata, dict):
        return [{"message": "Metadata must be a YAML dictionary"}]
    errors = []
    for key in ("license", "library_name", "pipeline_tag"):
        if key in metadata and metadata[key] is not None and not isinstance(metadata[key], str):
            errors.append({"message": f'"{key}" must be a string'})
    for key in ("tags", "datasets", "metrics"):
        value = metadata.get(key)
        if value is not None and not (
            isinstance(value, str) or (isinstance(value, list) and all(isinstance(v, str) for v in value))
        ):
            errors.append({"message": f'"{key}" must be a string or an array of strings'})
    language = metadata.get("language")
    if language is not None and not (isinstance(language, (str, list))):
        errors.append({"message": '"language" must be a string or an array of strings'})
    if "model-index" in metadata and not isinstance(metadata["model-index"], list):
        errors.append({"message": '"model-index" must be an array'})
    return errors


# ----------------------------------------------------------------------------------------------------------------------
# Client-side wiring (in-process) and the pytest fixture
# ----------------------------------------------------------------------------------------------------------------------


def configure_hf_clients(monkeypatch, endpoint: str, hf_home: str | os.PathLike, token: str | None = FAKE_TOKEN):
    """Point the (already imported or not) ``huggingface_hub``/``transformers`` of this process at ``endpoint``.

    Sets the environment variables (for subprocesses and for modules imported later) and patches the module-level
    values that ``huggingface_hub`` computed from them at import time. Uses ``monkeypatch`` so everything is undone
    at teardown.
    """
    for key, value in client_env(endpoint, hf_home, token).items():
        if value is None:
            monkeypatch.delenv(key, raising=False)
        else:
            monkeypatch.setenv(key, value)

    home = str(hf_home)
    try:
        import huggingface_hub.constants as C
    except ImportError:  # pragma: no cover - nothing to patch
        return
    values = {
        "ENDPOINT": endpoint,
        "HUGGINGFACE_CO_URL_TEMPLATE": endpoint + "/{repo_id}/resolve/{revision}/{filename}",
        "HF_HOME": home,
        "default_cache_path": os.path.join(home, "hub"),
        "default_assets_cache_path": os.path.join(home, "assets"),
        "HUGGINGFACE_HUB_CACHE": os.path.join(home, "hub"),
        "HUGGINGFACE_ASSETS_CACHE": os.path.join(home, "assets"),
        "HF_HUB_CACHE": os.path.join(home, "hub"),
        "HF_ASSETS_CACHE": os.path.join(home, "assets"),
        "HF_TOKEN_PATH": os.path.join(home, "token"),
        "HF_STORED_TOKENS_PATH": os.path.join(home, "stored_tokens"),
        "HF_XET_CACHE": os.path.join(home, "xet"),
        "default_xet_cache_path": os.path.join(home, "xet"),
        "CHECK_FOR_UPDATE_DONE_PATH": os.path.join(home, ".check_for_update_done"),
        "CHECK_FOR_SKILL_UPDATE_DONE_PATH": os.path.join(home, ".check_for_skill_update_done"),
        "AGENT_HARNESSES_PATH": os.path.join(home, ".agent_harnesses.json"),
        "HF_HUB_OFFLINE": False,
        "HF_HUB_DISABLE_XET": True,
        "HF_HUB_DISABLE_TELEMETRY": True,
        "HF_HUB_DISABLE_UPDATE_CHECK": True,
        "HF_HUB_DISABLE_IMPLICIT_TOKEN": False,
        "HF_XET_HIGH_PERFORMANCE": False,
        "_staging_mode": False,
    }
    for name, value in values.items():
        if hasattr(C, name):
            monkeypatch.setattr(C, name, value)
    host = urlsplit(endpoint).hostname
    if hasattr(C, "HF_URL_HOSTS") and host:
        monkeypatch.setattr(C, "HF_URL_HOSTS", frozenset(C.HF_URL_HOSTS | {host.lower()}))

    from huggingface_hub.utils import _http

    if hasattr(_http, "_HUB_ORIGINS") and hasattr(_http, "_url_origin"):
        monkeypatch.setattr(_http, "_HUB_ORIGINS", frozenset(_http._HUB_ORIGINS | {_http._url_origin(endpoint)}))

    # Module-level objects created at import time with the old values.
    for modname, attr, value in (
        ("huggingface_hub.utils._cache_manager", "HF_HUB_CACHE", os.path.join(home, "hub")),
        ("huggingface_hub.utils._cache_assets", "HF_ASSETS_CACHE", os.path.join(home, "assets")),
        ("huggingface_hub.utils._git_credential", "ENDPOINT", endpoint),
        ("transformers.utils.hub", "HF_MODULES_CACHE", os.path.join(home, "modules")),
        ("transformers.dynamic_module_utils", "HF_MODULES_CACHE", os.path.join(home, "modules")),
    ):
        module = sys.modules.get(modname)
        if module is not None and hasattr(module, attr):
            monkeypatch.setattr(module, attr, value)
    hf_api_module = sys.modules.get("huggingface_hub.hf_api")
    if hf_api_module is not None and hasattr(hf_api_module, "api"):
        monkeypatch.setattr(hf_api_module.api, "endpoint", endpoint)
        monkeypatch.setattr(hf_api_module.api, "_whoami_cache", {})
    tf_hub = sys.modules.get("transformers.utils.hub")
    if tf_hub is not None and hasattr(tf_hub, "_hf_api"):
        monkeypatch.setattr(tf_hub, "_hf_api", None)  # re-created lazily with the patched endpoint

    # Fresh HTTP client: honors NO_PROXY and holds no keep-alive connection to a previous test's server.
    _http.close_session()


def _pytest_fixture(name: str):
    def decorate(func):
        try:
            import pytest
        except ImportError:  # pragma: no cover - allows using HubServer without pytest installed
            return func
        return pytest.fixture(name=name)(func)

    return decorate


@_pytest_fixture(name="hub_server")
def hub_server_fixture(tmp_path, monkeypatch):
    """A running :class:`HubServer` with this process' HF clients (and ``server.run_python``) pointed at it."""
    hf_home = tmp_path / "hf_home"
    hf_home.mkdir()
    server = HubServer(root=tmp_path / "hub_storage").start()
    server.hf_home = hf_home
    try:
        configure_hf_clients(monkeypatch, server.url, hf_home, server.token)
        yield server
    finally:
        try:
            from huggingface_hub.utils import _http

            _http.close_session()
        except ImportError:  # pragma: no cover
            pass
        server.stop()


# The fixture is registered under the name "hub_server" whichever of these names is imported.
hub_server = hub_server_fixture


def main(argv: list[str] | None = None) -> None:  # pragma: no cover - manual use
    import argparse

    parser = argparse.ArgumentParser(description="Run the fake Hugging Face Hub server")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--root", default=None)
    parser.add_argument("--lfs-mode", default="auto", choices=["auto", "always", "never"])
    parser.add_argument("--verbose", action="store_true")
    args = parser.parse_args(argv)
    server = HubServer(root=args.root, port=args.port, lfs_mode=args.lfs_mode, verbose=args.verbose).start()
    print(f"HF_ENDPOINT={server.url}  (storage: {server.root}; HF_HUB_DISABLE_XET=1 required)", flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()


if __name__ == "__main__":  # pragma: no cover
    main()
