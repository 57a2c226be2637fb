"""perceiver-byte on the Hub: the unmodified huggingface_hub / transformers clients against the fake Hub of
``hub_server.py`` (a real HTTP server on loopback).

* ``model.push_to_hub`` / ``tokenizer.push_to_hub`` round trips: fresh caches, with the package installed and, in a
  child process where it cannot be imported, through ``trust_remote_code=True``; a pinned ``revision=`` commit id.
* ``scripts/train.py --push_to_hub``: what lands in the repo, the model card (metadata, model-index round trip,
  validate-yaml), ``pipeline()`` from the repo, and an unreachable Hub.
* ``scripts/push_to_hub.py``: the files it selects, its options, its refusals, network failures, an interrupted commit.
* The standard exceptions, and the fake token never showing up in output, errors or the repo's files.

Subprocesses are expensive here (importing torch in a child takes ~10 s on a busy machine), so each one checks as
much as it can. ``scripts/push_to_hub.py`` imports neither torch nor transformers: its runs are cheap.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import textwrap
from pathlib import Path

import httpx2  # the HTTP library of huggingface_hub 2.x
import pytest
import torch
from hub_server import (
    FAKE_TOKEN,
    REPO_ROOT,
    free_port,
    hub_server_fixture,  # noqa: F401  (registers the `hub_server` fixture)
)
from huggingface_hub import HfApi, ModelCard, hf_hub_download
from huggingface_hub.errors import (
    EntryNotFoundError,
    RepositoryNotFoundError,
    RevisionNotFoundError,
)
from model_tester import BLOCK_PACKAGE, tiny_config
from transformers import AutoConfig, AutoModelForSequenceClassification, AutoTokenizer, pipeline

from perceiver_byte import PerceiverByteForSequenceClassification, PerceiverByteTokenizer

TRAIN = REPO_ROOT / "scripts" / "train.py"
PUSH = REPO_ROOT / "scripts" / "push_to_hub.py"
CODE_FILES = {"configuration_perceiver_byte.py", "modeling_perceiver_byte.py", "tokenization_perceiver_byte.py"}
TEXTS = ["Alle Menschen sind frei", "\x00\x01 binary \xff", "é", "a much longer text " * 5]


# Tiny everything: the training run takes seconds.
TINY_OVERRIDES = (
    "d_model=16,num_latents=8,d_latents=32,num_blocks=1,num_self_attends_per_block=1,"
    "num_cross_attention_heads=1,num_self_attention_heads=2"
)
TRAIN_ROWS = [("aaaa aaa aa", "a"), ("zzzz zz zzz", "z"), ("aaa aaaa", "a"), ("zz zzzz z", "z")]


# ----------------------------------------------------------------------------------------------------------------------
# helpers
# ----------------------------------------------------------------------------------------------------------------------


def _logits(model, tokenizer, texts=TEXTS) -> torch.Tensor:
    with torch.no_grad():
        return model.eval()(**tokenizer(texts, padding=True, return_tensors="pt")).logits


def _tree_digest(folder: Path) -> dict[str, str]:
    return {
        p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def _assert_no_token_in_repo(hub_server, repo_id: str, revision: str = "main") -> None:
    files = hub_server.list_files(repo_id, revision)
    for path in files:
        assert FAKE_TOKEN.encode() not in hub_server.read_file(repo_id, path, revision), f"token in {path}"
    assert FAKE_TOKEN not in hub_server.log_text()


def _run_script(hub_server, script: Path, args: list[str], *, env=None, prelude: str = "", timeout: float = 240):
    """Run a script as `python script args...` would, in a child configured only by environment variables."""
    code = prelude + textwrap.dedent(
        f"""
        import runpy, sys
        sys.argv = [{str(script)!r}, *{[str(a) for a in args]!r}]
        sys.path.insert(0, {str(script.parent)!r})  # as `python script` does: the scripts import each other by name
        runpy.run_path({str(script)!r}, run_name="__main__")
        """
    )
    proc = hub_server.run_python(code, hf_home=hub_server.fresh_hf_home(), env=env, check=False, timeout=timeout)
    assert FAKE_TOKEN not in proc.stdout + proc.stderr
    return proc


def _push_script(hub_server, args, **kwargs):
    return _run_script(hub_server, PUSH, [str(a) for a in args], **kwargs)


def _push_main(args, capfd) -> tuple[int, str, str]:
    """scripts/push_to_hub.py in this process (cheaper than a child; the fixture points the clients at the server)."""
    import push_to_hub

    code = push_to_hub.main([str(a) for a in args])
    out, err = capfd.readouterr()
    assert FAKE_TOKEN not in out + err
    return code, out, err


# The tiny-but-real training output of scripts/train.py, without running it (see test_train_push_to_hub_* for that).
CARD = """\
---
license: apache-2.0
language:
- en
library_name: transformers
pipeline_tag: text-classification
tags:
- perceiver-byte
datasets:
- tiny
metrics:
- accuracy
model-index:
- name: tiny
  results:
  - task:
      type: text-classification
    dataset:
      name: tiny
      type: tiny
      split: validation
    metrics:
    - type: accuracy
      value: 0.75
---

# tiny

```sh
python scripts/predict.py --model outputs/tiny --text "hello"
```

```python
model = AutoModelForSequenceClassification.from_pretrained("outputs/tiny", trust_remote_code=True)
```
"""


def _fake_training_output(folder: Path, seed: int = 0):
    torch.manual_seed(seed)
    model = PerceiverByteForSequenceClassification(tiny_config(num_labels=2, id2label={0: "a", 1: "z"},
                                                               label2id={"a": 0, "z": 1})).eval()  # fmt: skip
    tok = PerceiverByteTokenizer()
    model.save_pretrained(folder)
    tok.save_pretrained(folder)
    model_files = {p.name for p in folder.iterdir()}
    (folder / "README.md").write_text(CARD, encoding="utf-8")
    (folder / "all_results.json").write_text(json.dumps({"eval_accuracy": 0.75}))
    (folder / "train_results.json").write_text(json.dumps({"train_loss": 0.5}))
    logs = {"trainer_state.json", "runs/Nov29_16-00-00_host/events.out.tfevents.1795969719.host.1.0"}
    training_state = {"training_args.bin"} | {
        f"checkpoint-2/{name}"
        for name in ("model.safetensors", "optimizer.pt", "scheduler.pt", "rng_state.pth", "trainer_state.json")
    }
    for rel in logs | training_state:
        (folder / rel).parent.mkdir(parents=True, exist_ok=True)
        (folder / rel).write_bytes(b"\x00training state or logs " + rel.encode())
    (folder / ".cache/huggingface").mkdir(parents=True)
    (folder / ".cache/huggingface/upload.lock").write_bytes(b"")
    published = model_files | {"README.md", "all_results.json", "train_results.json"}
    return model, tok, published, logs, training_state


# ----------------------------------------------------------------------------------------------------------------------
# model.push_to_hub / tokenizer.push_to_hub round trips
# ----------------------------------------------------------------------------------------------------------------------


def test_push_to_hub_round_trip_installed_remote_code_and_pinned_revision(hub_server, tmp_path):
    repo = "user/perceiver-byte-tiny"
    torch.manual_seed(0)
    model = PerceiverByteForSequenceClassification(tiny_config(num_labels=3)).eval()
    tok = PerceiverByteTokenizer(model_max_length=64)
    expected_v1 = _logits(model, tok)
    model.push_to_hub(repo)
    tok.push_to_hub(repo)
    v1 = hub_server.head(repo)
    files = set(hub_server.list_files(repo))
    assert {"config.json", "model.safetensors", "tokenizer_config.json", *CODE_FILES} <= files
    assert hub_server.file_entry(repo, "model.safetensors").is_lfs
    config = json.loads(hub_server.read_file(repo, "config.json"))
    assert config["auto_map"]["AutoModelForSequenceClassification"].startswith("modeling_perceiver_byte.")

    # Fresh cache, package installed (this process): the registered classes.
    cache = hub_server.fresh_cache_dir()
    reloaded = AutoModelForSequenceClassification.from_pretrained(repo, cache_dir=cache)
    reloaded_tok = AutoTokenizer.from_pretrained(repo, cache_dir=cache)
    assert type(reloaded) is PerceiverByteForSequenceClassification and type(reloaded_tok) is PerceiverByteTokenizer
    assert reloaded_tok.model_max_length == 64
    assert torch.equal(_logits(reloaded, reloaded_tok), expected_v1)

    # A newer commit (other weights): main moves, revision=<v1 sha> still loads v1.
    with torch.no_grad():
        model.classifier.bias.add_(torch.arange(3.0))
    expected_v2 = _logits(model, tok)
    assert not torch.equal(expected_v1, expected_v2)
    # The connection drops in the middle of the commit: nothing of it is visible, and pushing again works.
    hub_server.fail_next_commit_midway = True
    with pytest.raises(httpx2.TransportError) as exc:
        model.push_to_hub(repo, commit_message="v2")
    assert FAKE_TOKEN not in str(exc.value) and hub_server.dropped_connections == 1
    assert hub_server.head(repo) == v1 and HfApi().list_repo_commits(repo)[0].commit_id == v1
    model.push_to_hub(repo, commit_message="v2")
    v2 = hub_server.head(repo)
    assert v2 != v1 and v1 in hub_server.commits(repo)
    cache = hub_server.fresh_cache_dir()
    latest = AutoModelForSequenceClassification.from_pretrained(repo, cache_dir=cache)
    pinned = AutoModelForSequenceClassification.from_pretrained(repo, revision=v1, cache_dir=cache)
    assert torch.equal(_logits(latest, tok), expected_v2)
    assert torch.equal(_logits(pinned, tok), expected_v1)

    # A process where perceiver_byte cannot be imported: the code comes from the repo (trust_remote_code=True), for
    # main and for the pinned commit; without trust_remote_code it is refused with a message that says so.
    (tmp_path / "expected.json").write_text(json.dumps({"texts": TEXTS, "v1": expected_v1.tolist(),
                                                        "v2": expected_v2.tolist()}))  # fmt: skip
    code = BLOCK_PACKAGE + textwrap.dedent(
        f"""
        import json, torch
        from transformers import AutoModelForSequenceClassification, AutoTokenizer
        ref = json.load(open({str(tmp_path / "expected.json")!r}))
        try:
            AutoModelForSequenceClassification.from_pretrained({repo!r}, trust_remote_code=False)
            raise SystemExit("loaded custom code without trust_remote_code")
        except ValueError as err:
            assert "trust_remote_code" in str(err), err
        tok = AutoTokenizer.from_pretrained({repo!r}, trust_remote_code=True)
        batch = tok(ref["texts"], padding=True, return_tensors="pt")
        for revision, key in (("main", "v2"), ({v1!r}, "v1")):
            model = AutoModelForSequenceClassification.from_pretrained({repo!r}, revision=revision,
                                                                       trust_remote_code=True).eval()
            with torch.no_grad():
                logits = model(**batch).logits
            assert torch.equal(logits, torch.tensor(ref[key])), (revision, logits, ref[key])
        print("identical", type(model).__module__, type(tok).__module__)
        """
    )
    proc = hub_server.run_python(code, hf_home=hub_server.fresh_hf_home())
    assert "identical transformers_modules." in proc.stdout
    assert FAKE_TOKEN not in proc.stdout + proc.stderr
    _assert_no_token_in_repo(hub_server, repo)
    assert hub_server.unhandled == [] and hub_server.errors == []


def test_missing_repo_revision_and_file_raise_the_standard_exceptions(hub_server):
    repo = "user/config-only"
    tiny_config().push_to_hub(repo)  # a config and no weights
    cache = hub_server.fresh_cache_dir()
    api = HfApi()
    errors = []

    with pytest.raises(RepositoryNotFoundError) as exc:
        api.model_info("user/no-such-model")
    errors.append(exc.value)
    with pytest.raises(OSError, match="user/no-such-model") as exc:
        AutoModelForSequenceClassification.from_pretrained("user/no-such-model", cache_dir=cache)
    assert isinstance(exc.value.__cause__, RepositoryNotFoundError) or "not a valid model identifier" in str(exc.value)
    errors.append(exc.value)

    with pytest.raises(RevisionNotFoundError) as exc:
        hf_hub_download(repo, "config.json", revision="no-such-branch", cache_dir=cache)
    errors.append(exc.value)
    with pytest.raises(OSError, match="no-such-branch") as exc:
        AutoConfig.from_pretrained(repo, revision="no-such-branch", cache_dir=cache)
    errors.append(exc.value)

    with pytest.raises(EntryNotFoundError) as exc:
        hf_hub_download(repo, "model.safetensors", cache_dir=cache)
    errors.append(exc.value)
    with pytest.raises(OSError, match=repo) as exc:  # a config and no weights
        AutoModelForSequenceClassification.from_pretrained(repo, cache_dir=cache)
    assert "model.safetensors" in str(exc.value) or "pytorch_model.bin" in str(exc.value)
    errors.append(exc.value)

    for err in errors:
        assert FAKE_TOKEN not in str(err) and FAKE_TOKEN not in repr(err)
    assert hub_server.errors == []


@pytest.mark.slow  # builds, writes, uploads and downloads a ~200 MB model
def test_model_over_100mb_goes_through_lfs(hub_server, tmp_path):
    repo = "user/perceiver-byte-big"
    torch.manual_seed(0)
    config = tiny_config(d_latents=1536, num_self_attention_heads=8, self_attention_widening_factor=4, num_blocks=1,
                         num_self_attends_per_block=2)  # fmt: skip
    model = PerceiverByteForSequenceClassification(config).eval()
    tok = PerceiverByteTokenizer()
    assert sum(p.numel() for p in model.parameters()) * 4 > 100 * 1024 * 1024
    expected = _logits(model, tok)
    out = tmp_path / "out"
    model.save_pretrained(out)
    tok.save_pretrained(out)
    weights = sorted(p.name for p in out.glob("model*.safetensors"))
    try:
        proc = _push_script(hub_server, [out, repo])
        assert proc.returncode == 0, proc.stderr
        sizes = [hub_server.file_entry(repo, name).size for name in weights]
        assert all(hub_server.file_entry(repo, name).is_lfs for name in weights)
        assert sum(sizes) > 100 * 1024 * 1024 and max(sizes) >= 100 * 1024 * 1024  # one file of >= 100 MB
        assert hub_server.requests_matching("PUT", r"^/lfs-upload/", origin="cdn")[-1].status == 200
        reloaded = AutoModelForSequenceClassification.from_pretrained(repo, cache_dir=hub_server.fresh_cache_dir())
        assert torch.equal(_logits(reloaded, tok), expected)
        assert hub_server.errors == []
    finally:  # don't leave ~600 MB behind in pytest's kept tmp dirs
        shutil.rmtree(out, ignore_errors=True)
        shutil.rmtree(hub_server.root / "lfs", ignore_errors=True)
        shutil.rmtree(tmp_path / "caches", ignore_errors=True)


# ----------------------------------------------------------------------------------------------------------------------
# scripts/train.py --push_to_hub
# ----------------------------------------------------------------------------------------------------------------------


def _tiny_data(folder: Path) -> list[str]:
    folder.mkdir(parents=True, exist_ok=True)
    for name, rows in (("train.csv", TRAIN_ROWS * 4), ("dev.csv", TRAIN_ROWS)):
        lines = ["text,label"] + [f"{text},{label}" for text, label in rows]
        (folder / name).write_text("\n".join(lines) + "\n")
    return ["--train_file", folder / "train.csv", "--validation_file", folder / "dev.csv", "--test_file",
            folder / "dev.csv", "--config_overrides", TINY_OVERRIDES, "--max_length", "32", "--num_train_epochs", "1",
            "--per_device_train_batch_size", "8", "--report_to", "none", "--use_cpu", "--seed", "0"]  # fmt: skip


def _expected_eval_results(all_results: dict) -> set[tuple]:
    expected = set()
    for split, prefix in (("validation", "eval"), ("test", "test")):
        for metric in ("accuracy", "f1"):
            if f"{prefix}_{metric}" in all_results:
                expected.add((split, metric, round(float(all_results[f"{prefix}_{metric}"]), 4)))
    return expected


def test_train_push_to_hub_publishes_model_card_and_pipeline_works(hub_server, tmp_path):
    repo = "user/perceiver-byte-trained"
    out = tmp_path / "out"
    args = [*_tiny_data(tmp_path / "data"), "--output_dir", out, "--push_to_hub", "--hub_model_id", repo,
            "--model_card_language", "en"]  # fmt: skip
    proc = _run_script(hub_server, TRAIN, args)
    assert proc.returncode == 0, proc.stderr[-4000:]

    # Local outputs complete; the repo holds the model, tokenizer, code and the rendered card, no checkpoints.
    local = {p.name for p in out.iterdir()}
    assert {"config.json", "model.safetensors", "tokenizer_config.json", "README.md", *CODE_FILES} <= local
    files = set(hub_server.list_files(repo))
    assert {"config.json", "model.safetensors", "tokenizer_config.json", "README.md", *CODE_FILES} <= files
    assert not [f for f in files if f.startswith("checkpoint-") or f.endswith(("optimizer.pt", "scheduler.pt"))]
    for name in ("config.json", "model.safetensors", "README.md", *CODE_FILES):
        assert hub_server.read_file(repo, name) == (out / name).read_bytes(), name

    # The model card: metadata, metrics, and the model-index round trip.
    all_results = json.loads((out / "all_results.json").read_text())
    card = ModelCard.load(repo)
    data = card.data
    assert data.license and data.language and data.library_name == "transformers"
    assert data.pipeline_tag == "text-classification" and "perceiver-byte" in data.tags
    assert data.datasets and set(data.metrics) >= {"accuracy", "f1"}
    pushed = {(r.dataset_split, r.metric_type, r.metric_value) for r in data.eval_results}
    assert pushed == _expected_eval_results(all_results) and pushed
    local_card = ModelCard.load(out / "README.md")
    assert data.eval_results == local_card.data.eval_results and data.model_name == local_card.data.model_name
    assert data.to_dict()["model-index"] == local_card.data.to_dict()["model-index"]
    assert f'from_pretrained("{repo}"' in card.text
    n_validations = len(hub_server.requests_matching("POST", r"^/api/validate-yaml$"))
    card.validate()  # the server's validate-yaml accepts it (and it did when the commit was made)
    assert [r.status for r in hub_server.requests_matching("POST", r"^/api/validate-yaml$")] == [200] * (
        n_validations + 1
    )
    assert HfApi().model_info(repo).card_data.license == data.license

    # pipeline() from the repo (package installed here), same scores as the local output.
    from_hub = pipeline("text-classification", model=repo, top_k=None)(TEXTS[:2])
    from_disk = pipeline("text-classification", model=str(out), top_k=None)(TEXTS[:2])
    assert from_hub == from_disk and {s["label"] for s in from_hub[0]} == {"a", "z"}

    # The same output published with scripts/push_to_hub.py: no logs, no training state, card retargeted.
    before = _tree_digest(out)
    proc = _push_script(hub_server, [out, "user/republished", "--commit-message", "republish"])
    assert proc.returncode == 0, proc.stderr
    published = set(hub_server.list_files("user/republished")) - {".gitattributes"}
    assert {"config.json", "model.safetensors", "tokenizer_config.json", "README.md", *CODE_FILES} <= published
    assert not {"training_args.bin", "trainer_state.json"} & published
    assert not [f for f in published if f.startswith(("checkpoint-", "runs/"))]
    assert 'from_pretrained("user/republished"' in hub_server.read_file("user/republished", "README.md").decode()
    assert HfApi().list_repo_commits("user/republished")[0].title == "republish"
    assert _tree_digest(out) == before
    scores = pipeline("text-classification", model="user/republished", top_k=None)(TEXTS[:2])
    assert scores == from_disk

    _assert_no_token_in_repo(hub_server, repo)
    _assert_no_token_in_repo(hub_server, "user/republished")
    assert hub_server.unhandled == [] and hub_server.errors == []


NO_RETRY_SLEEP = textwrap.dedent(
    """
    import time, types
    from huggingface_hub import file_download
    from huggingface_hub.utils import _http
    _fake_time = types.SimpleNamespace(**{k: getattr(time, k) for k in dir(time) if not k.startswith("_")})
    _fake_time.sleep = lambda seconds: None
    _http.time = file_download.time = _fake_time
    """
)


def test_train_push_to_hub_with_the_hub_unreachable_keeps_the_local_output(hub_server, tmp_path):
    out = tmp_path / "out"
    dead = f"http://127.0.0.1:{free_port()}"
    args = [*_tiny_data(tmp_path / "data"), "--output_dir", out, "--push_to_hub", "--hub_model_id", "user/never"]
    proc = _run_script(hub_server, TRAIN, args, env={"HF_ENDPOINT": dead}, prelude=NO_RETRY_SLEEP)
    assert proc.returncode != 0
    assert "Traceback (most recent call last)" not in proc.stderr, proc.stderr[-3000:]  # a clear error, not a crash
    assert dead in proc.stderr or "reach" in proc.stderr.lower() or "connect" in proc.stderr.lower()
    local = {p.name for p in out.iterdir()} if out.is_dir() else set()
    assert {"config.json", "model.safetensors", "tokenizer_config.json", "README.md", *CODE_FILES} <= local


@pytest.mark.slow
def test_train_hub_token_argument_is_never_published(hub_server, tmp_path):
    out = tmp_path / "out"
    args = [*_tiny_data(tmp_path / "data"), "--output_dir", out, "--push_to_hub", "--hub_model_id", "user/tok",
            "--hub_token", FAKE_TOKEN]  # fmt: skip
    proc = _run_script(hub_server, TRAIN, args, env={"HF_TOKEN": None})
    assert proc.returncode == 0, proc.stderr[-4000:]
    _assert_no_token_in_repo(hub_server, "user/tok")


# ----------------------------------------------------------------------------------------------------------------------
# scripts/push_to_hub.py
# ----------------------------------------------------------------------------------------------------------------------


def test_push_script_publishes_a_training_output_with_its_options(hub_server, tmp_path, capfd):
    repo = "user/published"
    out = tmp_path / "out"
    model, tok, published, logs, training_state = _fake_training_output(out)
    expected = _logits(model, tok)
    before = _tree_digest(out)

    proc = _push_script(hub_server, [out, repo, "--private", "--branch", "exp", "--commit-message", "tiny model"])
    assert proc.returncode == 0, proc.stderr
    assert "Pushed" in proc.stdout and "trainer_state.json" not in proc.stdout.split("skipped")[0]
    api = HfApi()
    assert api.model_info(repo).private is True
    assert HfApi(token=False).repo_exists(repo) is False
    assert set(hub_server.list_files(repo, "exp")) == published | {".gitattributes"}
    assert hub_server.list_files(repo, "main") == [".gitattributes"]  # only the branch was pushed
    assert api.list_repo_commits(repo, revision="exp")[0].title == "tiny model"
    card = hub_server.read_file(repo, "README.md", "exp").decode()
    assert 'from_pretrained("user/published"' in card and "--model user/published " in card
    assert "outputs/tiny" not in card
    assert ModelCard(card).data.eval_results[0].metric_value == 0.75
    assert _tree_digest(out) == before  # OUTPUT_DIR is only read
    reloaded = AutoModelForSequenceClassification.from_pretrained(repo, revision="exp",
                                                                  cache_dir=hub_server.fresh_cache_dir())  # fmt: skip
    assert torch.equal(_logits(reloaded, tok), expected)

    # In this process from here on (cheaper). --include-logs (to main this time): runs/ and trainer_state.json too,
    # still no training state.
    code, _, err = _push_main([out, repo, "--include-logs", "--keep-card"], capfd)
    assert code == 0, err
    assert set(hub_server.list_files(repo)) == published | logs | {".gitattributes"}
    assert hub_server.read_file(repo, "README.md") == CARD.encode()  # --keep-card: byte for byte
    # --include-checkpoints: the rest (but never hidden files such as .cache/).
    code, stdout, _ = _push_main([out, repo, "--include-logs", "--include-checkpoints", "--dry-run"], capfd)
    assert code == 0 and "nothing was uploaded" in stdout
    assert all(f"  {rel}  (" in stdout for rel in published | logs | training_state)
    assert ".cache" not in stdout
    assert _tree_digest(out) == before
    _assert_no_token_in_repo(hub_server, repo, "exp")
    _assert_no_token_in_repo(hub_server, repo)
    assert hub_server.unhandled == [] and hub_server.errors == []


def test_push_script_refuses_what_is_not_a_trained_output(hub_server, tmp_path, capfd):
    out = tmp_path / "out"
    _fake_training_output(out)
    n_requests = len(hub_server.requests)

    code, _, err = _push_main([tmp_path / "nowhere", "user/x"], capfd)
    assert code == 2 and "does not exist" in err
    (tmp_path / "empty").mkdir()
    code, _, err = _push_main([tmp_path / "empty", "user/x"], capfd)
    assert code == 2 and "not a trained output" in err and "config.json is missing" in err

    weights = (out / "model.safetensors").read_bytes()
    (out / "model.safetensors").unlink()
    code, _, err = _push_main([out, "user/x"], capfd)
    assert code == 2 and "model.safetensors" in err and "weights are missing" in err
    assert "checkpoint-2" in err  # points at the checkpoint that is there
    index = {"weight_map": {"w": "model-00001-of-00002.safetensors"}}
    (out / "model.safetensors.index.json").write_text(json.dumps(index))
    code, _, err = _push_main([out, "user/x"], capfd)
    assert code == 2 and "model-00001-of-00002.safetensors" in err
    (out / "model.safetensors.index.json").unlink()
    (out / "model.safetensors").write_bytes(weights)

    (out / "modeling_perceiver_byte.py").rename(tmp_path / "modeling_perceiver_byte.py")
    code, _, err = _push_main([out, "user/x"], capfd)
    assert code == 2 and "modeling_perceiver_byte.py is missing" in err and "trust_remote_code" in err
    (tmp_path / "modeling_perceiver_byte.py").rename(out / "modeling_perceiver_byte.py")

    card = (out / "README.md").read_text()
    (out / "README.md").write_text(card.replace("# tiny", f"# tiny\n\n    --hub_token {FAKE_TOKEN}"))
    code, _, err = _push_main([out, "user/x"], capfd)  # _push_main asserts the token is not printed
    assert code == 2 and "refusing to upload README.md" in err and "token" in err
    (out / "README.md").write_text(card.replace("license: apache-2.0", "license: [unclosed"))
    code, _, err = _push_main([out, "user/x"], capfd)
    assert code == 2 and "README.md" in err and "YAML" in err
    (out / "README.md").write_text(card)

    code, _, err = _push_main([out, "user/x", "--revision", "0" * 40], capfd)
    assert code == 2 and "branch" in err
    code, out_text, _ = _push_main([out, "user/x", "--dry-run"], capfd)
    assert code == 0 and "README.md" in out_text
    assert len(hub_server.requests) == n_requests and not hub_server.repo_exists("user/x")  # nothing was sent


def test_push_script_network_failures_and_an_interrupted_commit(hub_server, tmp_path, capfd):
    repo = "user/flaky"
    out = tmp_path / "out"
    _, _, published, _, _ = _fake_training_output(out)
    before = _tree_digest(out)

    # Nothing listens there: a clear one-line error, exit status 1, OUTPUT_DIR untouched.
    dead = f"http://127.0.0.1:{free_port()}"
    proc = _push_script(hub_server, [out, repo], env={"HF_ENDPOINT": dead})
    assert proc.returncode == 1
    assert f"cannot reach the Hub at {dead}" in proc.stderr and "Traceback" not in proc.stderr
    assert _tree_digest(out) == before and not hub_server.repo_exists(repo)

    # In this process from here on (cheaper). The Hub rejects the token.
    hub_server.valid_tokens = {"hf_some_other_token_that_is_valid_0000000"}
    code, _, err = _push_main([out, repo], capfd)
    assert code == 1 and "rejected the token (401)" in err
    hub_server.valid_tokens = None

    # The connection drops in the middle of the commit: no partial commit; running it again succeeds.
    HfApi().create_repo(repo)
    head = hub_server.head(repo)
    hub_server.fail_next_commit_midway = True
    code, _, err = _push_main([out, repo, "--retries", "0"], capfd)
    assert code == 1 and "interrupted" in err and "no partial commit" in err
    assert hub_server.dropped_connections == 1
    assert hub_server.head(repo) == head and hub_server.list_files(repo) == [".gitattributes"]
    code, _, err = _push_main([out, repo], capfd)
    assert code == 0, err
    assert set(hub_server.list_files(repo)) == published | {".gitattributes"}
    assert len(hub_server.commits(repo)) == 2

    # With retries (the default), one run gets through a dropped connection, with exactly one new commit.
    (out / "all_results.json").write_text(json.dumps({"eval_accuracy": 0.8}))
    hub_server.fail_next_commit_midway = True
    code, _, err = _push_main([out, repo], capfd)
    assert code == 0, err
    assert "Retrying" in err and hub_server.dropped_connections == 2
    assert len(hub_server.commits(repo)) == 3
    assert json.loads(hub_server.read_file(repo, "all_results.json")) == {"eval_accuracy": 0.8}
    _assert_no_token_in_repo(hub_server, repo)
    assert hub_server.unhandled == [] and hub_server.errors == []


def test_push_script_header_documents_the_commands():
    doc = PUSH.read_text().split('"""')[1]
    for option in ("--private", "--branch", "--commit-message", "--include-logs", "--dry-run"):
        assert option in doc
    assert "python scripts/push_to_hub.py outputs/udhr me/perceiver-byte-udhr" in doc
