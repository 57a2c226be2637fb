"""Drive the unmodified huggingface_hub / transformers clients against the fake Hub in ``hub_server.py``."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
import socket
import time
from pathlib import Path

import httpx2  # the HTTP library huggingface_hub 2.x is built on
import pytest
from hub_server import (
    FAKE_TOKEN,
    hub_server_fixture,  # noqa: F401  (registers the `hub_server` fixture)
)
from huggingface_hub import (
    HfApi,
    ModelCard,
    ModelCardData,
    hf_hub_download,
    snapshot_download,
)
from huggingface_hub.errors import (
    EntryNotFoundError,
    HfHubHTTPError,
    RemoteEntryNotFoundError,
    RepositoryNotFoundError,
    RevisionNotFoundError,
)

REPO = "user/demo"


def _sha256(path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def _make_folder(root: Path) -> dict[str, bytes]:
    files = {
        "config.json": json.dumps({"a": 1, "b": [1, 2, 3]}).encode(),
        "notes/readme.txt": b"hello\nworld\n",
        "notes/deep/x.py": b"print('x')\n",
        "vocab.txt": "\n".join(f"tok{i}" for i in range(500)).encode(),
    }
    for rel, data in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(data)
    return files


# ----------------------------------------------------------------------------------------------------------------------
# Repo management
# ----------------------------------------------------------------------------------------------------------------------


def test_create_repo(hub_server):
    api = HfApi()
    assert api.endpoint == hub_server.url  # the fixture re-pointed the clients

    url = api.create_repo(REPO)
    assert url.repo_id == REPO and url.endpoint == hub_server.url
    assert hub_server.repo_exists(REPO)
    assert api.list_repo_files(REPO) == [".gitattributes"]  # like the real Hub: initial commit with .gitattributes

    with pytest.raises(HfHubHTTPError) as exc:
        api.create_repo(REPO)
    assert exc.value.response.status_code == 409
    assert api.create_repo(REPO, exist_ok=True).repo_id == REPO

    # No namespace => the token's user namespace.
    assert api.create_repo("bare-name").repo_id == f"{hub_server.username}/bare-name"
    assert api.repo_exists(f"{hub_server.username}/bare-name")


def test_private_repo_needs_a_token(hub_server):
    api = HfApi()
    api.create_repo("user/secret", private=True)
    api.upload_file(path_or_fileobj=b"s3cr3t", path_in_repo="s.txt", repo_id="user/secret")
    assert api.model_info("user/secret").private is True
    with pytest.raises(RepositoryNotFoundError):
        HfApi(token=False).model_info("user/secret")
    with pytest.raises(RepositoryNotFoundError):
        hf_hub_download("user/secret", "s.txt", token=False, cache_dir=hub_server.fresh_cache_dir())
    local = hf_hub_download("user/secret", "s.txt", cache_dir=hub_server.fresh_cache_dir())
    assert Path(local).read_bytes() == b"s3cr3t"


# ----------------------------------------------------------------------------------------------------------------------
# Regular (non-LFS) uploads and downloads
# ----------------------------------------------------------------------------------------------------------------------


def test_upload_file_and_folder_regular_mode_then_download(hub_server, tmp_path):
    api = HfApi()
    api.create_repo(REPO)
    folder = tmp_path / "folder"
    files = _make_folder(folder)

    info = api.upload_file(path_or_fileobj=b"just bytes", path_in_repo="single.txt", repo_id=REPO)
    assert info.oid == hub_server.head(REPO)
    api.upload_folder(folder_path=folder, repo_id=REPO, commit_message="Add folder")
    files["single.txt"] = b"just bytes"

    assert sorted(api.list_repo_files(REPO)) == sorted([".gitattributes", *files])
    for path in files:
        assert not hub_server.file_entry(REPO, path).is_lfs  # regular upload mode: content inlined in the commit
    assert not hub_server.requests_matching(path_regex=r"\.git/info/lfs")  # no LFS traffic at all
    assert api.list_repo_commits(REPO)[0].title == "Add folder"

    # hf_hub_download into a fresh cache returns identical bytes.
    cache = hub_server.fresh_cache_dir()
    for path, data in files.items():
        local = hf_hub_download(REPO, path, cache_dir=cache)
        assert Path(local).read_bytes() == data
        assert f"snapshots{os.sep}{hub_server.head(REPO)}" in local

    # snapshot_download (fresh cache) gets everything.
    snap = Path(snapshot_download(REPO, cache_dir=hub_server.fresh_cache_dir()))
    assert snap.name == hub_server.head(REPO)
    for path, data in files.items():
        assert (snap / path).read_bytes() == data
    # ... and into a local_dir.
    local_dir = tmp_path / "local"
    snapshot_download(REPO, local_dir=local_dir)
    assert (local_dir / "notes/deep/x.py").read_bytes() == files["notes/deep/x.py"]

    # Metadata endpoints.
    tree = {f.path: f for f in api.list_repo_tree(REPO, recursive=True)}
    assert "notes" in tree and "notes/deep" in tree  # folders are listed too
    assert tree["vocab.txt"].size == len(files["vocab.txt"])
    top = [f.path for f in api.list_repo_tree(REPO)]
    assert "notes/readme.txt" not in top and "notes" in top
    assert sorted(f.path for f in api.list_repo_tree(REPO, path_in_repo="notes")) == ["notes/deep", "notes/readme.txt"]
    assert api.file_exists(REPO, "config.json") and not api.file_exists(REPO, "nope.json")
    assert {s.rfilename for s in api.model_info(REPO).siblings} == {".gitattributes", *files}
    assert hub_server.unhandled == [] and hub_server.errors == []


def test_resolve_headers(hub_server):
    api = HfApi()
    api.create_repo(REPO)
    text = b"plain text file\n" * 10
    api.upload_file(path_or_fileobj=text, path_in_repo="t.txt", repo_id=REPO)
    head = httpx2.head(f"{hub_server.url}/{REPO}/resolve/main/t.txt")
    assert head.status_code == 200
    assert head.headers["X-Repo-Commit"] == hub_server.head(REPO)
    assert head.headers["Content-Length"] == str(len(text))
    assert head.headers["ETag"] == f'"{hub_server.file_entry(REPO, "t.txt").oid}"'  # git blob id

    data = bytes(range(256)) * 4
    api.upload_file(path_or_fileobj=data, path_in_repo="r.bin", repo_id=REPO)
    url = f"{hub_server.url}/{REPO}/resolve/main/r.bin"
    # b"\x00" in the sample => binary => LFS: /resolve redirects to the CDN origin.
    head = httpx2.head(url)
    assert head.status_code == 302 and head.headers["Location"].startswith(hub_server.cdn_url)
    assert head.headers["X-Linked-Size"] == str(len(data))
    assert head.headers["X-Linked-Etag"] == f'"{hashlib.sha256(data).hexdigest()}"'
    assert head.headers["X-Repo-Commit"] == hub_server.head(REPO)


# ----------------------------------------------------------------------------------------------------------------------
# Revisions
# ----------------------------------------------------------------------------------------------------------------------


def test_revision_pinned_to_old_commit_sha(hub_server):
    api = HfApi()
    api.create_repo(REPO)
    old = api.upload_file(path_or_fileobj=b"version 1", path_in_repo="f.txt", repo_id=REPO).oid
    new = api.upload_file(path_or_fileobj=b"version 2", path_in_repo="f.txt", repo_id=REPO).oid
    assert old != new and len(old) == len(new) == 40

    cache = hub_server.fresh_cache_dir()
    assert Path(hf_hub_download(REPO, "f.txt", cache_dir=cache)).read_bytes() == b"version 2"
    assert Path(hf_hub_download(REPO, "f.txt", revision=old, cache_dir=cache)).read_bytes() == b"version 1"
    assert api.model_info(REPO, revision=old).sha == old
    snap = Path(snapshot_download(REPO, revision=old, cache_dir=hub_server.fresh_cache_dir()))
    assert snap.name == old and (snap / "f.txt").read_bytes() == b"version 1"
    assert [c.commit_id for c in api.list_repo_commits(REPO)][-1] == hub_server.commits(REPO)[-1]
    assert old in hub_server.commits(REPO)


def test_branches(hub_server):
    api = HfApi()
    api.create_repo(REPO)
    api.upload_file(path_or_fileobj=b"main", path_in_repo="f.txt", repo_id=REPO)
    api.create_branch(REPO, branch="dev")
    api.create_branch(REPO, branch="dev", exist_ok=True)
    api.upload_file(path_or_fileobj=b"dev", path_in_repo="f.txt", repo_id=REPO, revision="dev")
    refs = api.list_repo_refs(REPO)
    assert {b.name for b in refs.branches} == {"main", "dev"}

    cache = hub_server.fresh_cache_dir()
    assert Path(hf_hub_download(REPO, "f.txt", cache_dir=cache)).read_bytes() == b"main"
    assert Path(hf_hub_download(REPO, "f.txt", revision="dev", cache_dir=cache)).read_bytes() == b"dev"


# ----------------------------------------------------------------------------------------------------------------------
# Errors
# ----------------------------------------------------------------------------------------------------------------------


def test_standard_exceptions(hub_server):
    api = HfApi()
    api.create_repo(REPO)
    api.upload_file(path_or_fileobj=b"x", path_in_repo="x.txt", repo_id=REPO)
    cache = hub_server.fresh_cache_dir()
    raised = []

    for call in (
        lambda: api.model_info("user/does-not-exist"),
        lambda: api.list_repo_files("user/does-not-exist"),
        lambda: hf_hub_download("user/does-not-exist", "x.txt", cache_dir=cache),
        lambda: snapshot_download("user/does-not-exist", cache_dir=cache),
    ):
        with pytest.raises(RepositoryNotFoundError) as exc:
            call()
        raised.append(exc.value)

    for call in (
        lambda: api.model_info(REPO, revision="no-such-branch"),
        lambda: hf_hub_download(REPO, "x.txt", revision="no-such-branch", cache_dir=cache),
        lambda: hf_hub_download(REPO, "x.txt", revision="0" * 40, cache_dir=cache),
        lambda: api.list_repo_files(REPO, revision="no-such-branch"),
    ):
        with pytest.raises(RevisionNotFoundError) as exc:
            call()
        raised.append(exc.value)

    with pytest.raises(RemoteEntryNotFoundError) as exc:
        hf_hub_download(REPO, "missing.bin", cache_dir=cache)
    assert isinstance(exc.value, EntryNotFoundError)
    raised.append(exc.value)
    # The non-existence was cached against the commit sha (needs X-Repo-Commit on the 404).
    assert list(Path(cache).glob(f"models--user--demo/.no_exist/{hub_server.head(REPO)}/missing.bin"))
    with pytest.raises(EntryNotFoundError):
        list(api.list_repo_tree(REPO, path_in_repo="no-such-folder"))

    for err in raised:
        assert FAKE_TOKEN not in str(err) and FAKE_TOKEN not in repr(err)
    assert hub_server.errors == []


# ----------------------------------------------------------------------------------------------------------------------
# Atomic commits and fault injection
# ----------------------------------------------------------------------------------------------------------------------


def test_interrupted_commit_leaves_no_partial_commit_and_retry_succeeds(hub_server, tmp_path):
    api = HfApi()
    api.create_repo(REPO)
    api.upload_file(path_or_fileobj=b"base", path_in_repo="base.txt", repo_id=REPO)
    head_before, files_before = hub_server.head(REPO), api.list_repo_files(REPO)
    folder = tmp_path / "folder"
    files = _make_folder(folder)

    hub_server.fail_next_commit_midway = True
    with pytest.raises(httpx2.TransportError):
        api.upload_folder(folder_path=folder, repo_id=REPO)
    assert hub_server.dropped_connections == 1
    assert hub_server.head(REPO) == head_before
    assert api.list_repo_files(REPO) == files_before
    assert len(api.list_repo_commits(REPO)) == 2

    api.upload_folder(folder_path=folder, repo_id=REPO)  # retry
    assert sorted(api.list_repo_files(REPO)) == sorted([*files_before, *files])
    assert len(api.list_repo_commits(REPO)) == 3
    assert hub_server.errors == []


def test_client_dropping_mid_body_commits_nothing(hub_server):
    api = HfApi()
    api.create_repo(REPO)
    head_before = hub_server.head(REPO)
    lines = [
        {"key": "header", "value": {"summary": "partial", "description": ""}},
        {"key": "file", "value": {"path": "p.txt", "encoding": "base64", "content": base64.b64encode(b"p").decode()}},
    ]
    body = b"".join(json.dumps(x).encode() + b"\n" for x in lines)
    port = int(hub_server.url.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall(
            (
                f"POST /api/models/{REPO}/commit/main HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                f"Authorization: Bearer {FAKE_TOKEN}\r\nContent-Type: application/x-ndjson\r\n"
                f"Content-Length: {len(body) + 100}\r\n\r\n"
            ).encode()
            + body
        )
        sock.shutdown(socket.SHUT_WR)  # ... and never send the remaining 100 bytes
        assert sock.recv(1024) == b""  # the server gave up without committing
    deadline = time.time() + 5
    while time.time() < deadline and [r.status for r in hub_server.requests_matching("POST", r"/commit/")] != [499]:
        time.sleep(0.01)
    assert [r.status for r in hub_server.requests_matching("POST", r"/commit/")] == [499]
    assert hub_server.head(REPO) == head_before
    assert api.list_repo_files(REPO) == [".gitattributes"]


# ----------------------------------------------------------------------------------------------------------------------
# LFS
# ----------------------------------------------------------------------------------------------------------------------


def test_lfs_upload_and_download_through_cdn(hub_server):
    api = HfApi()
    api.create_repo(REPO)
    data = b"\x00" + os.urandom(2_000_000)  # a NUL byte in the sample => binary => LFS
    api.upload_file(path_or_fileobj=data, path_in_repo="weights.bin", repo_id=REPO)
    entry = hub_server.file_entry(REPO, "weights.bin")
    assert entry.is_lfs and entry.lfs_sha256 == hashlib.sha256(data).hexdigest()
    puts = hub_server.requests_matching("PUT", r"^/lfs-upload/", origin="cdn")
    assert [r.status for r in puts] == [200]
    assert hub_server.requests_matching("POST", r"\.git/info/lfs/objects/verify$")[-1].status == 200

    lfs_file = api.list_repo_tree(REPO)
    lfs_info = {f.path: f for f in lfs_file}["weights.bin"].lfs
    assert lfs_info.sha256 == entry.lfs_sha256 and lfs_info.size == len(data)

    local = hf_hub_download(REPO, "weights.bin", cache_dir=hub_server.fresh_cache_dir())
    assert _sha256(local) == entry.lfs_sha256
    # The blob is cached under the sha256 (X-Linked-Etag), and the token never went to the CDN origin.
    assert Path(local).resolve().name == entry.lfs_sha256
    cdn = hub_server.requests_matching(origin="cdn")
    assert cdn and not any(r.authenticated for r in cdn)
    assert hub_server.requests_matching("HEAD", r"/resolve/")[-1].status == 302
    # Re-uploading identical content skips the upload entirely.
    n_puts = len(hub_server.requests_matching("PUT"))
    api.upload_file(path_or_fileobj=data, path_in_repo="copy.bin", repo_id=REPO)
    assert len(hub_server.requests_matching("PUT")) == n_puts
    assert hub_server.file_entry(REPO, "copy.bin").lfs_sha256 == entry.lfs_sha256
    assert not any("xet" in r.path for r in hub_server.requests)
    assert hub_server.unhandled == [] and hub_server.errors == []


@pytest.mark.slow
def test_lfs_100mb_file_roundtrip(hub_server, tmp_path):
    """A >= 100 MB file goes through preupload -> LFS batch -> PUT -> verify -> commit, and downloads identically."""
    size = 100 * 1024 * 1024 + 12345
    src = tmp_path / "big.bin"
    block = os.urandom(1 << 20)
    h = hashlib.sha256()
    with open(src, "wb") as f:
        for i in range(size // len(block)):
            chunk = i.to_bytes(8, "little") + block[8:]
            f.write(chunk)
            h.update(chunk)
        tail = os.urandom(size % len(block))
        f.write(tail)
        h.update(tail)
    expected = h.hexdigest()

    api = HfApi()
    api.create_repo(REPO)
    api.upload_file(path_or_fileobj=str(src), path_in_repo="big.bin", repo_id=REPO)  # >= 10 MiB => LFS in auto mode
    entry = hub_server.file_entry(REPO, "big.bin")
    assert entry.is_lfs and entry.size == size and entry.lfs_sha256 == expected
    assert hub_server.requests_matching("PUT", r"^/lfs-upload/", origin="cdn")[-1].status == 200

    cache = hub_server.fresh_cache_dir()
    try:
        local = hf_hub_download(REPO, "big.bin", cache_dir=cache)
        assert os.path.getsize(local) == size and _sha256(local) == expected
        assert hub_server.errors == []
    finally:  # don't leave 300 MB behind in pytest's kept tmp dirs
        src.unlink(missing_ok=True)
        shutil.rmtree(cache, ignore_errors=True)
        (hub_server.root / "lfs" / expected).unlink(missing_ok=True)


# ----------------------------------------------------------------------------------------------------------------------
# Token hygiene
# ----------------------------------------------------------------------------------------------------------------------


def test_token_never_logged_or_leaked(hub_server, capfd):
    api = HfApi()
    api.create_repo(REPO)
    api.upload_file(path_or_fileobj=b"abc", path_in_repo="a.txt", repo_id=REPO)
    hf_hub_download(REPO, "a.txt", cache_dir=hub_server.fresh_cache_dir())
    errors = []
    for call in (
        lambda: api.model_info("user/missing"),
        lambda: api.model_info(REPO, revision="nope"),
        lambda: hf_hub_download(REPO, "missing", cache_dir=hub_server.fresh_cache_dir()),
        lambda: api.create_repo(REPO),
    ):
        with pytest.raises(HfHubHTTPError) as exc:
            call()
        errors.append(exc.value)

    hub_requests = hub_server.requests_matching(origin="hub")
    assert hub_requests and all(r.authenticated for r in hub_requests)  # the token *was* sent ...
    log = hub_server.log_text()
    assert "POST /api/models/user/demo/commit/main -> 200" in log
    assert FAKE_TOKEN not in log  # ... but never logged
    out, err = capfd.readouterr()
    assert FAKE_TOKEN not in out and FAKE_TOKEN not in err
    for e in errors:
        assert FAKE_TOKEN not in str(e) and FAKE_TOKEN not in repr(e)
        assert FAKE_TOKEN not in str(e.server_message)


def test_restricted_tokens(hub_server):
    hub_server.valid_tokens = {"hf_the_only_good_one"}
    with pytest.raises(HfHubHTTPError) as exc:
        HfApi().create_repo(REPO)
    assert exc.value.response.status_code == 401
    assert HfApi(token="hf_the_only_good_one").create_repo(REPO).repo_id == REPO


# ----------------------------------------------------------------------------------------------------------------------
# Model cards
# ----------------------------------------------------------------------------------------------------------------------


def test_model_card_push_to_hub_and_validate_yaml(hub_server):
    api = HfApi()
    api.create_repo(REPO)
    card = ModelCard.from_template(
        ModelCardData(license="mit", language="en", tags=["perceiver", "bytes"], library_name="transformers"),
        model_id="demo",
    )
    card.validate()
    card.push_to_hub(REPO)
    assert "README.md" in api.list_repo_files(REPO)
    info = api.model_info(REPO)
    assert info.card_data.license == "mit" and "perceiver" in info.card_data.tags
    assert ModelCard.load(REPO).data.license == "mit"
    assert hub_server.requests_matching("POST", r"^/api/validate-yaml$")

    # Broken YAML never leaves ModelCard (parsed locally), so post it raw.
    resp = httpx2.post(
        f"{hub_server.url}/api/validate-yaml",
        json={"content": "---\nlicense: [unclosed\n---\n# broken\n", "repoType": "model"},
    )
    assert resp.status_code == 400 and "Invalid YAML" in resp.json()["errors"][0]["message"]


# ----------------------------------------------------------------------------------------------------------------------
# Subprocess clients
# ----------------------------------------------------------------------------------------------------------------------


def test_subprocess_client_configured_by_env_only(hub_server):
    api = HfApi()
    api.create_repo(REPO)
    api.upload_file(path_or_fileobj=b"from the fake hub", path_in_repo="hello.txt", repo_id=REPO)
    code = (
        "import os\n"
        "from huggingface_hub import HfApi, hf_hub_download, constants\n"
        "assert constants.ENDPOINT == os.environ['HF_ENDPOINT'] and constants.HF_HUB_DISABLE_XET\n"
        "path = hf_hub_download('user/demo', 'hello.txt')\n"
        "assert path.startswith(os.environ['HF_HUB_CACHE']), path\n"
        "print(open(path).read())\n"
        "HfApi().upload_file(path_or_fileobj=b'from a subprocess', path_in_repo='sub.txt', repo_id='user/demo')\n"
    )
    proc = hub_server.run_python(code, hf_home=hub_server.fresh_hf_home())
    assert proc.stdout.strip() == "from the fake hub"
    assert hub_server.read_file(REPO, "sub.txt") == b"from a subprocess"
    assert FAKE_TOKEN not in proc.stdout + proc.stderr


# ----------------------------------------------------------------------------------------------------------------------
# transformers round trip
# ----------------------------------------------------------------------------------------------------------------------


def _tiny_bert_pushed(hub_server, repo_id: str):
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    torch.manual_seed(0)
    config = transformers.BertConfig(
        vocab_size=99, hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=37, num_labels=3
    )
    model = transformers.BertForSequenceClassification(config).eval()
    input_ids = [[1, 5, 7, 9, 2, 0], [3, 4, 5, 6, 7, 8]]
    with torch.no_grad():
        expected = model(torch.tensor(input_ids)).logits
    model.push_to_hub(repo_id)
    return torch, transformers, input_ids, expected


def test_transformers_push_to_hub_then_from_pretrained_fresh_cache(hub_server):
    torch, transformers, input_ids, expected = _tiny_bert_pushed(hub_server, "user/tiny-bert")
    files = set(hub_server.list_files("user/tiny-bert"))
    assert {"config.json", "model.safetensors", "README.md"} <= files
    assert hub_server.file_entry("user/tiny-bert", "model.safetensors").is_lfs  # via .gitattributes *.safetensors

    n_before = len(hub_server.requests)
    reloaded = transformers.AutoModelForSequenceClassification.from_pretrained(
        "user/tiny-bert", cache_dir=hub_server.fresh_cache_dir()
    ).eval()
    with torch.no_grad():
        assert torch.equal(reloaded(torch.tensor(input_ids)).logits, expected)
    fetched = {r.path.rsplit("/", 1)[-1] for r in hub_server.requests[n_before:] if r.method == "GET"}
    assert "config.json" in fetched  # really downloaded from the server, not from a cache
    assert hub_server.unhandled == [] and hub_server.errors == []


@pytest.mark.slow  # ~15 s: a second interpreter has to import torch + transformers
def test_transformers_from_pretrained_in_a_fresh_subprocess(hub_server, tmp_path):
    """Same round trip, but loading in a separate process configured only through environment variables."""
    torch, _, input_ids, expected = _tiny_bert_pushed(hub_server, "user/tiny-bert")
    out = tmp_path / "logits.pt"
    code = (
        "import torch\n"
        "from transformers import AutoModelForSequenceClassification\n"
        "m = AutoModelForSequenceClassification.from_pretrained('user/tiny-bert').eval()\n"
        "with torch.no_grad():\n"
        f"    logits = m(torch.tensor({input_ids!r})).logits\n"
        f"torch.save(logits, {str(out)!r})\n"
    )
    n_before = len(hub_server.requests)
    proc = hub_server.run_python(code, hf_home=hub_server.fresh_hf_home())
    assert torch.equal(torch.load(out), expected)
    downloaded = {r.path for r in hub_server.requests[n_before:] if r.method == "GET"}
    assert any(p.endswith("/config.json") for p in downloaded)
    assert FAKE_TOKEN not in proc.stdout + proc.stderr
    assert hub_server.unhandled == [] and hub_server.errors == []
