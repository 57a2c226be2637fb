#!/usr/bin/env python
"""Publish a training output (the --output_dir of scripts/train.py) to the Hugging Face Hub.

Log in first with `hf auth login`, or set HF_TOKEN. The token is never taken on the command line, never printed,
and a file that contains it is refused rather than uploaded.

Commands (from the repository root):

    # Weights, config, code files, tokenizer files, *_results.json and the model card (README.md).
    python scripts/push_to_hub.py outputs/udhr me/perceiver-byte-udhr

    # A private repo (when the script creates it), a commit message, a branch (created from main when missing;
    # load it with from_pretrained(..., revision="experiment-2")).
    python scripts/push_to_hub.py outputs/udhr me/perceiver-byte-udhr --private --commit-message "UDHR, 4 epochs" \
        --branch experiment-2

    # Also the logs (runs/, trainer_state.json) and the checkpoints with their optimizer, scheduler and RNG state
    # (checkpoint-*/, training_args.bin); --dry-run lists what would be uploaded, without contacting the Hub.
    python scripts/push_to_hub.py outputs/udhr me/perceiver-byte-udhr --include-logs --include-checkpoints --dry-run

    # Another Hub endpoint (a mirror, a local test server): the usual huggingface_hub environment variables.
    HF_ENDPOINT=http://127.0.0.1:8080 python scripts/push_to_hub.py outputs/udhr me/perceiver-byte-udhr

The files go up with `HfApi.upload_folder` as one commit, which the Hub applies atomically: an interrupted push
leaves the repo as it was, and running the command again is safe (files already uploaded are not sent twice). Only
a selection of more than about 250 files (many checkpoints) is split by huggingface_hub into several commits. Files
in the repo and absent from OUTPUT_DIR are kept. The card's usage snippets name the model as train.py saw it (an
output path unless it ran with --hub_model_id); the uploaded copy names REPO_ID (--keep-card: README.md as it is).
OUTPUT_DIR is only read.

Exit status: 0 published (or --dry-run), 1 the Hub or the network failed, 2 bad arguments or not a trained output.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import tempfile
import time
from pathlib import Path

import httpx2  # huggingface_hub's HTTP client
from huggingface_hub import HfApi, ModelCard, constants, get_token
from huggingface_hub.errors import HfHubHTTPError
from huggingface_hub.utils import filter_repo_objects

from common import UserError, run_cli

WEIGHT_FILES = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin",
                "pytorch_model.bin.index.json")  # fmt: skip
# Patterns as upload_folder's allow/ignore_patterns read them (fnmatch on the relative path; `*` also matches `/`).
#: Never uploaded: hidden files and folders, private files (the Trainer's "_*" rule), Python caches, editor leftovers.
ALWAYS_IGNORED = [".*", "*/.*", "_*", "*/_*", "*.pyc", "*~"]
#: Left out unless the option is given.
OPTIONAL = {
    "--include-checkpoints": ["checkpoint-*", "optimizer.*", "scheduler.pt", "scaler.pt", "rng_state*.pth",
                              "training_args.bin"],
    "--include-logs": ["runs/*", "*tfevents*", "trainer_state.json"],
}  # fmt: skip
TOKEN = re.compile(r"hf_[A-Za-z0-9]{30,}")  # the shape of a Hub access token
TOKEN_BYTES = re.compile(TOKEN.pattern.encode())
TEXT_SUFFIXES = (".md", ".json", ".txt", ".py", ".yaml", ".yml", ".csv", ".jinja", ".cfg")


class HubError(Exception):
    """The Hub or the network failed (exit status 1)."""


def check_trained_output(folder: Path) -> None:
    """Raise UserError naming what is missing: the config, the weights (all shards of an index), the code files
    that auto_map names (from_pretrained(..., trust_remote_code=True) loads them)."""
    if not folder.exists():
        raise UserError(f"{folder} does not exist.")
    if not folder.is_dir():
        raise UserError(f"{folder} is not a directory (expected the --output_dir of scripts/train.py).")
    # The last one (checkpoint-10 sorts after checkpoint-9) is what the hint names.
    checkpoints = sorted((p for p in folder.glob("checkpoint-*") if p.is_dir()), key=lambda p: (len(p.name), p.name))
    hint = (f" It holds {checkpoints[-1].name}/: if the run stopped before saving the final model, publish that "
            f"checkpoint instead: python scripts/push_to_hub.py {checkpoints[-1]} REPO_ID" if checkpoints else "")
    if not (folder / "config.json").is_file():
        raise UserError(f"{folder} is not a trained output: config.json is missing (scripts/train.py writes "
                        f"config.json, model.safetensors, the tokenizer files and README.md there).{hint}")
    weights = [name for name in WEIGHT_FILES if (folder / name).is_file()]
    if not weights:
        raise UserError(f"{folder} is not a trained output: the weights are missing (no model.safetensors, nor "
                        f"{', '.join(WEIGHT_FILES[1:])}).{hint}")  # fmt: skip
    for index in (name for name in weights if name.endswith(".index.json")):
        shards = set(read_json(folder / index).get("weight_map", {}).values())
        if missing := sorted(shard for shard in shards if not (folder / shard).is_file()):
            raise UserError(f"{folder} is incomplete: {missing[0]} (listed in {index}) is missing.")
    for source in ("config.json", "tokenizer_config.json"):
        auto_map = read_json(folder / source).get("auto_map", {}) if (folder / source).is_file() else {}
        refs = [ref for value in auto_map.values() for ref in (value if isinstance(value, list) else [value])]
        for ref in (ref for ref in refs if isinstance(ref, str) and "--" not in ref):  # "repo--module.Class": elsewhere
            module = ref.rsplit(".", 1)[0].replace(".", "/") + ".py"
            if not (folder / module).is_file():
                raise UserError(f"{folder} is incomplete: {module} is missing (named by auto_map in {source}; "
                                "needed to load the model with trust_remote_code=True).")  # fmt: skip


def read_json(path: Path) -> dict:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise UserError(f"{path}: not readable JSON ({err}).") from err
    if not isinstance(data, dict):
        raise UserError(f"{path}: a JSON object is expected.")
    return data


def select_files(folder: Path, included: dict[str, bool]) -> tuple[list[str], dict[str, list[str]]]:
    """-> (the paths to upload, {option: the paths it would add}), listed and filtered as upload_folder does."""
    files = [p.relative_to(folder).as_posix() for p in sorted(folder.glob("**/*")) if p.is_file()]
    upload, skipped = list(filter_repo_objects(files, ignore_patterns=ALWAYS_IGNORED)), {}
    for option, patterns in OPTIONAL.items():
        if not included[option]:
            kept = list(filter_repo_objects(upload, ignore_patterns=patterns))
            skipped[option], upload = sorted(set(upload) - set(kept)), kept
    return upload, {option: paths for option, paths in skipped.items() if paths}


def contains_token(path: Path, token: str | None) -> bool:
    """Whether the file holds the active token or, in a text file, anything shaped like a Hub token."""
    needle, tail = (token or "").encode(), b""
    with open(path, "rb") as f:
        while chunk := f.read(8 << 20):
            window = tail + chunk
            if (needle and needle in window) or (path.suffix in TEXT_SUFFIXES and TOKEN_BYTES.search(window)):
                return True
            tail = window[-max(64, len(needle)) :]  # a token split across two chunks
    return False


def retarget_card(text: str, repo_id: str) -> str:
    """Point the card's usage snippets (`from_pretrained("X"` and `--model X `) at REPO_ID."""
    for old in {m.group(1) for m in re.finditer(r'from_pretrained\(\s*"([^"\n]+)"', text)} - {repo_id}:
        text = text.replace(f'from_pretrained("{old}"', f'from_pretrained("{repo_id}"')
        text = re.sub(rf"(--model\s+){re.escape(old)}(?=\s)", lambda m: m.group(1) + repo_id, text)
    return text


def is_transient(err: Exception) -> bool:
    """A dropped connection or a 5xx answer: no commit was made, and trying again may work."""
    return isinstance(err, httpx2.TransportError) or (
        isinstance(err, HfHubHTTPError) and err.response.status_code in (500, 502, 503, 504)
    )


def explain(err: Exception, token: str | None) -> str:
    """The failure in one line, without the token."""
    endpoint = re.sub(r"//[^/@]*@", "//", constants.ENDPOINT)  # no user:password@
    text = str(err).replace(token, "hf_***") if token else str(err)
    first_line = (TOKEN.sub("hf_***", text).strip().splitlines() or [""])[0]
    if isinstance(err, HfHubHTTPError) and err.response.status_code == 401:
        return f"{endpoint} rejected the token (401). Log in with `hf auth login` or set HF_TOKEN to a write token."
    if isinstance(err, httpx2.TransportError):
        return (f"cannot reach the Hub at {endpoint} ({type(err).__name__}: {first_line}). Check the network (and "
                "HF_ENDPOINT), then run the same command again.")  # fmt: skip
    return first_line if isinstance(err, HfHubHTTPError) else f"{type(err).__name__}: {first_line}"


def upload(api: HfApi, folder: Path, files: list[str], card: str | None, args, token: str | None):
    """upload_folder of the selection (linked into a temporary folder, with the card as it will read), tried again
    after a transient failure."""
    message = args.commit_message or f"Upload {folder.resolve().name} with scripts/push_to_hub.py"
    with tempfile.TemporaryDirectory() as staging:
        for rel in files:
            (Path(staging) / rel).parent.mkdir(parents=True, exist_ok=True)
            if rel == "README.md" and card is not None:
                Path(staging, rel).write_text(card, encoding="utf-8")
            else:
                Path(staging, rel).symlink_to((folder / rel).resolve())
        for attempt in range(1, args.retries + 2):
            try:
                return api.upload_folder(repo_id=args.repo_id, folder_path=staging, revision=args.revision,
                                         commit_message=message)  # fmt: skip
            except Exception as err:
                if attempt > args.retries or not is_transient(err):
                    raise
                wait = min(2 ** (attempt - 1), 10)
                print(f"warning: the push was interrupted: {explain(err, token)} Retrying in {wait} s "
                      f"({attempt}/{args.retries}).", file=sys.stderr)  # fmt: skip
                time.sleep(wait)


def publish(argv: list[str] | None) -> None:
    args = build_parser().parse_args(argv)
    if args.revision is not None and re.fullmatch(r"[0-9a-f]{40}", args.revision):
        raise UserError(f"--revision {args.revision} is a commit id; a push needs a branch name.")
    if args.retries < 0:
        raise UserError("--retries must be >= 0.")
    folder, token, branch = Path(args.output_dir), get_token(), args.revision
    check_trained_output(folder)
    included = {"--include-checkpoints": args.include_checkpoints, "--include-logs": args.include_logs}
    files, skipped = select_files(folder, included)
    if leaking := [rel for rel in files if contains_token(folder / rel, token)]:
        raise UserError(f"refusing to upload {', '.join(leaking)}: contains a Hub access token (for example a "
                        "--hub_token given to the training run). Remove the token from the file, or leave the file "
                        "out (training_args.bin is only uploaded with --include-checkpoints).")  # fmt: skip
    card = None
    if "README.md" in files:
        card = (folder / "README.md").read_text(encoding="utf-8")
        try:
            ModelCard(card, ignore_metadata_errors=False)
        except Exception as err:  # yaml's errors, ValueError
            raise UserError(f"{folder / 'README.md'}: the model card's metadata block is not valid YAML ({err}).")
        card = None if args.keep_card else retarget_card(card, args.repo_id)
    else:
        print(f"warning: {folder} has no README.md: the repo will have no model card.", file=sys.stderr)
    if "tokenizer_config.json" not in files:
        print(f"warning: {folder} has no tokenizer_config.json: AutoTokenizer/pipeline will not load from the repo.",
              file=sys.stderr)  # fmt: skip

    sizes = {rel: (folder / rel).stat().st_size for rel in files}
    print(f"{len(files)} files ({sum(sizes.values()):,} bytes) from {folder}:")
    for rel, size in sizes.items():
        print(f"  {rel}  ({size:,} bytes)")
    for option, paths in skipped.items():
        print(f"skipped {len(paths)} files (upload them with {option}), e.g. {', '.join(paths[:3])}")
    if args.dry_run:
        print("--dry-run: nothing was uploaded.")
        return
    if not token:
        raise UserError("no Hub token: log in with `hf auth login`, or set HF_TOKEN.")

    api = HfApi()
    print(f"Publishing to {args.repo_id}" + (f"@{branch}" if branch else "") + " ...")
    try:
        api.create_repo(args.repo_id, private=args.private, exist_ok=True)
        if branch not in (None, "main"):
            api.create_branch(args.repo_id, branch=branch, exist_ok=True)
    except Exception as err:
        raise HubError(f"could not prepare the repo: {explain(err, token)} {folder} is unchanged.") from None
    try:
        commit = upload(api, folder, files, card, args, token)
    except Exception as err:
        if is_transient(err):
            raise HubError(f"the push was interrupted: {explain(err, token)} Hub commits are atomic: no partial "
                           f"commit was made. {folder} is unchanged.") from None  # fmt: skip
        raise HubError(f"the push failed: {explain(err, token)} {folder} is unchanged.") from None
    print(f"Pushed {len(files)} files to {commit.repo_url} (commit {commit.oid}).")
    revision = f', revision="{branch}"' if branch not in (None, "main") else ""
    print(f'Load with: AutoModelForSequenceClassification.from_pretrained("{args.repo_id}"{revision}, '
          "trust_remote_code=True)")  # fmt: skip


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="push_to_hub.py", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    parser.add_argument("output_dir", metavar="OUTPUT_DIR", help="A training output (scripts/train.py --output_dir).")
    parser.add_argument("repo_id", metavar="REPO_ID", help="The Hub model repo, 'user/name' (created when missing).")
    parser.add_argument("--private", action="store_true", help="Create the repo private (an existing one stays as is).")
    parser.add_argument("--revision", "--branch", dest="revision", metavar="BRANCH",
                        help="Push to this branch (created from main when missing). Default: main.")  # fmt: skip
    parser.add_argument("--commit-message", help="The commit message.")
    parser.add_argument("--include-logs", action="store_true", help="Also runs/ (TensorBoard), trainer_state.json.")
    parser.add_argument("--include-checkpoints", action="store_true",
                        help="Also checkpoint-*/, optimizer/scheduler/RNG state and training_args.bin.")  # fmt: skip
    parser.add_argument("--keep-card", action="store_true", help="README.md as it is (not pointed at REPO_ID).")
    parser.add_argument("--retries", type=int, default=2, help="Tries again after a dropped connection or a 5xx.")
    parser.add_argument("--dry-run", action="store_true", help="List the files to upload; contact nothing.")
    return parser


def main(argv: list[str] | None = None) -> int:
    try:
        return run_cli(publish, argv)
    except HubError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
