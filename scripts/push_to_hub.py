#!/usr/bin/env python
"""Publish an existing training output (the --output_dir of scripts/train.py) to the Hugging Face Hub.

Log in first with `hf auth login`, or put the token in the HF_TOKEN environment variable. The token is never taken
on the command line, never printed, and a file that contains it is refused rather than uploaded.

Commands (from the repository root):

    # Model weights, config, code files, tokenizer files, *_results.json and the model card (README.md).
    python scripts/push_to_hub.py outputs/udhr me/perceiver-byte-udhr

    # A private repo (applies when the script creates the repo), a custom commit message.
    python scripts/push_to_hub.py outputs/udhr me/perceiver-byte-udhr --private --commit-message "UDHR, 4 epochs"

    # To a branch (created from main when missing); load it with from_pretrained(..., revision="experiment-2").
    python scripts/push_to_hub.py outputs/udhr me/perceiver-byte-udhr --branch experiment-2

    # Also the training logs (TensorBoard runs/, trainer_state.json) and/or the checkpoints with their optimizer,
    # scheduler and RNG state (checkpoint-*/, training_args.bin).
    python scripts/push_to_hub.py outputs/udhr me/perceiver-byte-udhr --include-logs --include-checkpoints

    # List what would be uploaded, without contacting the Hub.
    python scripts/push_to_hub.py outputs/udhr me/perceiver-byte-udhr --dry-run

    # Another Hub endpoint (a mirror, a local test server): the usual huggingface_hub environment variables.
    HF_ENDPOINT=http://127.0.0.1:8080 python scripts/push_to_hub.py outputs/udhr me/perceiver-byte-udhr

Everything is sent as one commit, which the Hub applies atomically: an interrupted push leaves the repo as it was,
and running the same command again is safe (large files already uploaded are not sent twice). Transport errors
during the commit are retried --retries times. Files already in the repo and absent from OUTPUT_DIR are kept.
The model card's usage snippets name the model as train.py saw it (an output path unless it ran with
--hub_model_id); the uploaded copy names REPO_ID instead (--keep-card to upload README.md byte for byte).
OUTPUT_DIR itself is only read, never modified.

Exit status: 0 published (or --dry-run), 1 the Hub or the network failed, 2 bad arguments or not a trained output.
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import os
import re
import sys
import time
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from urllib.parse import urlsplit, urlunsplit

WEIGHT_FILES = (
    "model.safetensors",
    "model.safetensors.index.json",
    "pytorch_model.bin",
    "pytorch_model.bin.index.json",
)
#: Excluded unless --include-logs.
LOG_PATTERNS = ("runs/*", "*tfevents*", "trainer_state.json")
#: Excluded unless --include-checkpoints.
CHECKPOINT_PATTERNS = (
    "checkpoint-*",
    "checkpoint-*/*",
    "optimizer.pt",
    "optimizer.bin",
    "scheduler.pt",
    "scaler.pt",
    "rng_state*.pth",
    "training_args.bin",
)
#: Never uploaded: hidden files and folders (.cache/huggingface of upload_folder, .git), private files (the Trainer's
#: "_*" rule), Python caches, editor leftovers.
ALWAYS_EXCLUDED = (".*", "*/.*", "_*", "*/_*", "__pycache__", "*/__pycache__/*", "__pycache__/*", "*.pyc", "*~")
TOKEN_PATTERN = re.compile(rb"hf_[A-Za-z0-9]{30,}")  # the shape of a Hub access token
TOKEN_TEXT_PATTERN = re.compile(TOKEN_PATTERN.pattern.decode())
SCAN_CHUNK = 8 * 1024 * 1024


class UsageError(Exception):
    """Bad arguments or an OUTPUT_DIR that is not a trained output (exit status 2)."""


class HubFailure(Exception):
    """The Hub or the network failed (exit status 1)."""


@dataclass
class Selection:
    upload: list[str]  # posix paths relative to OUTPUT_DIR
    skipped: dict[str, list[str]]  # reason -> paths (logs / checkpoints)


# --------------------------------------------------------------------------------------------- helpers


def _matches(path: str, patterns) -> bool:
    parts = PurePosixPath(path).parts
    for pattern in patterns:
        if fnmatch.fnmatch(path, pattern):
            return True
        if "/" not in pattern and any(fnmatch.fnmatch(p, pattern) for p in parts[:-1]):  # a matching folder
            return True
    return False


def _secrets() -> list[str]:
    """The token the Hub client would send (never printed)."""
    try:
        from huggingface_hub import get_token

        token = get_token()
    except Exception:  # noqa: BLE001 - a broken token setup is reported later by the Hub call itself
        token = None
    return [token] if token else []


def redact(text: str, secrets: list[str] | None = None) -> str:
    """Remove tokens (the active one, and anything shaped like a Hub token) from a message."""
    for secret in secrets if secrets is not None else _secrets():
        if secret:
            text = text.replace(secret, "hf_***")
    return TOKEN_TEXT_PATTERN.sub("hf_***", text)


def _endpoint() -> str:
    from huggingface_hub import constants

    parts = urlsplit(constants.ENDPOINT)
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path, "", ""))  # no user:password@


def _human(size: int) -> str:
    value = float(size)
    for unit in ("B", "kB", "MB", "GB"):
        if value < 1000 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    return f"{size} B"


# --------------------------------------------------------------------------------------------- the output dir


def check_trained_output(folder: Path) -> dict:
    """Raise UsageError naming what is missing; -> the parsed config.json."""
    if not folder.exists():
        raise UsageError(f"{folder} does not exist.")
    if not folder.is_dir():
        raise UsageError(f"{folder} is not a directory (expected the --output_dir of scripts/train.py).")
    hint = ""
    checkpoints = sorted((p for p in folder.glob("checkpoint-*") if p.is_dir()), key=lambda p: p.name)
    if checkpoints:
        hint = (f" It holds {checkpoints[-1].name}/: if the run stopped before saving the final model, publish that "
                f"checkpoint instead: python scripts/push_to_hub.py {checkpoints[-1]} REPO_ID")  # fmt: skip
    config_path = folder / "config.json"
    if not config_path.is_file():
        raise UsageError(
            f"{folder} is not a trained output: config.json is missing (scripts/train.py writes config.json, "
            f"model.safetensors, the tokenizer files and README.md there).{hint}"
        )
    try:
        config = json.loads(config_path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise UsageError(f"{config_path}: not a readable JSON config ({err}).") from err
    if not isinstance(config, dict):
        raise UsageError(f"{config_path}: not a model config (a JSON object is expected).")

    present = [name for name in WEIGHT_FILES if (folder / name).is_file()]
    if not present:
        raise UsageError(f"{folder} is not a trained output: the weights are missing (no model.safetensors, nor "
                         f"{', '.join(WEIGHT_FILES[1:])}).{hint}")  # fmt: skip
    for index_name in (n for n in present if n.endswith(".index.json")):
        try:
            weight_map = json.loads((folder / index_name).read_text(encoding="utf-8"))["weight_map"]
        except (OSError, ValueError, KeyError, TypeError) as err:
            raise UsageError(f"{folder / index_name}: not a readable weight index ({err!r}).") from err
        for shard in sorted(set(weight_map.values())):
            if not (folder / shard).is_file():
                raise UsageError(f"{folder} is incomplete: {shard} (listed in {index_name}) is missing.")

    # Code files referenced by auto_map (needed by from_pretrained(..., trust_remote_code=True)).
    code_refs = []
    tokenizer_config = _read_json(folder / "tokenizer_config.json")
    for source, data in (("config.json", config), ("tokenizer_config.json", tokenizer_config)):
        auto_map = data.get("auto_map") if isinstance(data, dict) else None
        if isinstance(auto_map, dict):
            for value in auto_map.values():
                for ref in value if isinstance(value, (list, tuple)) else [value]:
                    if isinstance(ref, str) and "--" not in ref and "." in ref:  # "repo--module.Class": other repo
                        code_refs.append((source, ref.rsplit(".", 1)[0].replace(".", "/") + ".py"))
    for source, module_file in code_refs:
        if not (folder / module_file).is_file():
            raise UsageError(f"{folder} is incomplete: {module_file} is missing (named by auto_map in {source}; "
                             f"needed to load the model with trust_remote_code=True).")  # fmt: skip
    return config


def _read_json(path: Path):
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def select_files(folder: Path, include_logs: bool, include_checkpoints: bool) -> Selection:
    upload, skipped = [], {"logs (--include-logs)": [], "checkpoints and training state (--include-checkpoints)": []}
    for root, dirs, files in os.walk(folder):
        dirs.sort()
        rel_root = Path(root).relative_to(folder)
        for name in sorted(files):
            rel = (rel_root / name).as_posix() if str(rel_root) != "." else name
            if _matches(rel, ALWAYS_EXCLUDED) or not (Path(root) / name).is_file():
                continue
            if _matches(rel, CHECKPOINT_PATTERNS) and not include_checkpoints:
                skipped["checkpoints and training state (--include-checkpoints)"].append(rel)
            elif _matches(rel, LOG_PATTERNS) and not include_logs:
                skipped["logs (--include-logs)"].append(rel)
            else:
                upload.append(rel)
    return Selection(upload=upload, skipped={k: v for k, v in skipped.items() if v})


def find_secret(path: Path, secrets: list[str]) -> bool:
    """Whether the file contains the active token (or, in a text file, anything shaped like a Hub token)."""
    needles = [s.encode() for s in secrets if s]
    overlap = max([len(n) for n in needles] + [64])
    text_like = path.suffix.lower() in (".md", ".json", ".txt", ".py", ".yaml", ".yml", ".csv", ".jinja", ".cfg")
    tail = b""
    with open(path, "rb") as f:
        while chunk := f.read(SCAN_CHUNK):
            window = tail + chunk
            if any(n in window for n in needles) or (text_like and TOKEN_PATTERN.search(window)):
                return True
            tail = window[-overlap:]
    return False


def retarget_card(text: str, repo_id: str) -> str:
    """Point the card's usage snippets at REPO_ID (train.py renders them with the model id it knew: a local path
    unless it ran with --hub_model_id). Only `from_pretrained("X"` and `--model X ` are touched."""
    old_ids = {m.group(1) for m in re.finditer(r'from_pretrained\(\s*"([^"\n]+)"', text)} - {repo_id}
    for old in old_ids:
        text = text.replace(f'from_pretrained("{old}"', f'from_pretrained("{repo_id}"')
        text = re.sub(rf"(--model\s+){re.escape(old)}(?=\s)", lambda m: m.group(1) + repo_id, text)
    return text


def check_card(text: str, folder: Path) -> None:
    from huggingface_hub import ModelCard

    try:
        card = ModelCard(text, ignore_metadata_errors=False)
    except Exception as err:  # yaml errors, ValueError
        raise UsageError(f"{folder / 'README.md'}: the model card's metadata block is not valid YAML ({err}).") from err
    missing = [k for k in ("license", "library_name", "pipeline_tag") if not card.data.get(k)]
    if missing:
        print(f"warning: README.md has no {', '.join(missing)} in its metadata.", file=sys.stderr)


# --------------------------------------------------------------------------------------------- the Hub


def _transport_errors() -> tuple[type[BaseException], ...]:
    types: list[type[BaseException]] = [ConnectionError, TimeoutError]
    for module_name, attr in (("httpx2", "TransportError"), ("httpx", "TransportError"),
                              ("requests", "ConnectionError")):  # fmt: skip
        module = sys.modules.get(module_name)
        if module is not None and isinstance(getattr(module, attr, None), type):
            types.append(getattr(module, attr))
    return tuple(types)


def explain(err: BaseException, repo_id: str, revision: str | None, stage: str) -> HubFailure:
    from huggingface_hub.errors import HfHubHTTPError, RepositoryNotFoundError, RevisionNotFoundError

    endpoint = _endpoint()
    first_line = redact(str(err)).strip().splitlines()[0] if str(err).strip() else type(err).__name__
    if isinstance(err, RepositoryNotFoundError):
        return HubFailure(f"{stage}: repository {repo_id} not found on {endpoint}, or this token cannot access it.")
    if isinstance(err, RevisionNotFoundError):
        return HubFailure(f"{stage}: branch {revision!r} not found in {repo_id}.")
    if isinstance(err, HfHubHTTPError):
        status = getattr(getattr(err, "response", None), "status_code", None)
        if status == 401:
            return HubFailure(f"{stage}: {endpoint} rejected the token (401). Log in with `hf auth login` or set "
                              "HF_TOKEN to a token with write access.")  # fmt: skip
        if status == 403:
            return HubFailure(f"{stage}: the token has no write access to {repo_id} (403): {first_line}")
        return HubFailure(f"{stage}: the Hub answered {status}: {first_line}")
    if isinstance(err, _transport_errors()):
        return HubFailure(f"{stage}: cannot reach the Hub at {endpoint} ({type(err).__name__}: {first_line}). "
                          "Check the network (and HF_ENDPOINT), then run the same command again.")  # fmt: skip
    return HubFailure(f"{stage}: {type(err).__name__}: {first_line}")


def publish(args: argparse.Namespace) -> int:
    folder = Path(args.output_dir)
    check_trained_output(folder)
    selection = select_files(folder, args.include_logs, args.include_checkpoints)
    secrets = _secrets()
    leaking = [rel for rel in selection.upload if find_secret(folder / rel, secrets)]
    if leaking:
        raise UsageError(f"refusing to upload {', '.join(leaking)}: contains a Hub access token (for example a "
                         "--hub_token given to the training run). Remove the token from the file, or leave the file "
                         "out (training_args.bin is only uploaded with --include-checkpoints).")  # fmt: skip
    card_bytes = None
    if "README.md" in selection.upload:
        text = (folder / "README.md").read_text(encoding="utf-8")
        check_card(text, folder)
        if not args.keep_card:
            card_bytes = retarget_card(text, args.repo_id).encode("utf-8")
    else:
        print(f"warning: {folder} has no README.md: the repo will have no model card.", file=sys.stderr)
    if "tokenizer_config.json" not in selection.upload:
        print(f"warning: {folder} has no tokenizer_config.json: AutoTokenizer/pipeline will not load from the repo.",
              file=sys.stderr)  # fmt: skip

    total = sum((folder / rel).stat().st_size for rel in selection.upload)
    print(f"{len(selection.upload)} files ({_human(total)}) from {folder}:")
    for rel in selection.upload:
        print(f"  {rel}  ({_human((folder / rel).stat().st_size)})")
    for reason, paths in selection.skipped.items():
        print(f"skipped {len(paths)} files of {reason}, e.g. {', '.join(paths[:3])}")
    if args.dry_run:
        print("--dry-run: nothing was uploaded.")
        return 0
    if not secrets:
        raise UsageError("no Hub token: log in with `hf auth login`, or set HF_TOKEN.")

    from huggingface_hub import CommitOperationAdd, HfApi
    from huggingface_hub.errors import RepositoryNotFoundError

    api = HfApi()
    repo_id, branch = args.repo_id, args.revision
    target = f"{repo_id}" + (f"@{branch}" if branch else "")
    print(f"Publishing to {_endpoint()}/{target} ...")
    try:
        try:
            info = api.repo_info(repo_id)
            if args.private and not info.private:
                print(f"warning: {repo_id} already exists and is public; --private only applies to a new repo "
                      "(change the visibility in the repo settings).", file=sys.stderr)  # fmt: skip
        except RepositoryNotFoundError:
            repo_id = api.create_repo(repo_id, private=args.private, exist_ok=True).repo_id
            print(f"Created {'private ' if args.private else ''}repo {repo_id}")
        if branch and branch != "main":
            refs = api.list_repo_refs(repo_id)
            if branch not in {b.name for b in refs.branches}:
                api.create_branch(repo_id, branch=branch, exist_ok=True)
                print(f"Created branch {branch} (from main)")
    except Exception as err:  # noqa: BLE001
        raise explain(err, repo_id, branch, "could not prepare the repo") from None

    operations = []
    for rel in selection.upload:
        content = card_bytes if rel == "README.md" and card_bytes is not None else str(folder / rel)
        operations.append(CommitOperationAdd(path_in_repo=rel, path_or_fileobj=content))
    message = args.commit_message or f"Upload {folder.resolve().name} with scripts/push_to_hub.py"
    attempt = 0
    while True:
        try:
            commit = api.create_commit(repo_id, operations=operations, commit_message=message, revision=branch)
            break
        except ValueError as err:  # e.g. the Hub refused the model card's metadata
            raise HubFailure(f"the Hub refused the commit: {redact(str(err)).strip()}") from None
        except Exception as err:  # noqa: BLE001
            from huggingface_hub.errors import HfHubHTTPError

            status = getattr(getattr(err, "response", None), "status_code", None)
            retriable = isinstance(err, _transport_errors()) or (isinstance(err, HfHubHTTPError) and status
                                                                  in (500, 502, 503, 504))  # fmt: skip
            failure = explain(err, repo_id, branch, "the push was interrupted" if retriable else "the push failed")
            if not retriable or attempt >= args.retries:
                if retriable:
                    failure = HubFailure(f"{failure} Hub commits are atomic: no partial commit was made.")
                raise failure from None
            attempt += 1
            wait = min(2 ** (attempt - 1), 10)
            print(f"warning: {failure} Retrying in {wait} s ({attempt}/{args.retries}).", file=sys.stderr)
            time.sleep(wait)
            # A fresh HTTP session: the dropped connection may linger in the pool.
            from huggingface_hub.utils import _http

            if hasattr(_http, "close_session"):
                _http.close_session()
    oid = getattr(commit, "oid", None)
    print(f"Pushed {len(operations)} files to {getattr(commit, 'repo_url', repo_id)} (commit {oid}).")
    revision_hint = f', revision="{branch}"' if branch and branch != "main" else ""
    print(f'Load with: AutoModelForSequenceClassification.from_pretrained("{repo_id}"{revision_hint}, '
          "trust_remote_code=True)")  # fmt: skip
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="push_to_hub.py",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("output_dir", metavar="OUTPUT_DIR", help="A training output (scripts/train.py --output_dir).")
    parser.add_argument("repo_id", metavar="REPO_ID", help="The Hub model repo, 'user/name' (created when missing).")
    parser.add_argument("--private", action="store_true", help="Create the repo as private.")
    parser.add_argument("--revision", "--branch", dest="revision", default=None, metavar="BRANCH",
                        help="Push to this branch (created from main when missing). Default: main.")  # fmt: skip
    parser.add_argument("--commit-message", default=None, help="The commit message.")
    parser.add_argument("--include-logs", action="store_true",
                        help="Also upload the TensorBoard runs/ folder and trainer_state.json.")  # fmt: skip
    parser.add_argument(
        "--include-checkpoints",
        action="store_true",
        help="Also upload checkpoint-*/ folders, optimizer/scheduler/RNG state and training_args.bin.",
    )
    parser.add_argument(
        "--keep-card",
        action="store_true",
        help="Upload README.md as it is (default: its usage snippets are pointed at REPO_ID).",
    )
    parser.add_argument("--retries", type=int, default=2,
                        help="Retries of the commit after a dropped connection or a 5xx answer.")  # fmt: skip
    parser.add_argument("--dry-run", action="store_true", help="List the files to upload; contact nothing.")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.revision is not None and re.fullmatch(r"[0-9a-f]{40}", args.revision):
        print(f"error: --revision {args.revision} is a commit id; a push needs a branch name.", file=sys.stderr)
        return 2
    if args.retries < 0:
        print("error: --retries must be >= 0.", file=sys.stderr)
        return 2
    try:
        return publish(args)
    except UsageError as err:
        print(f"error: {redact(str(err))}", file=sys.stderr)
        return 2
    except HubFailure as err:
        print(f"error: {redact(str(err))} {args.output_dir} is unchanged.", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
