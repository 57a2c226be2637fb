#!/usr/bin/env python
"""Train (or fine-tune) a Perceiver byte classifier with the Hugging Face `Trainer`.

Everything goes through `datasets` (loading, batched tokenization in `map`), `transformers` (`Trainer`,
`DataCollatorWithPadding`) and `evaluate` (accuracy and F1 from the metric modules shipped in `metrics/`, loaded by
path, so no Hub access is needed). Arguments are three dataclasses (model, data, run) plus `TrainingArguments`, read
by `HfArgumentParser` as in transformers' example scripts (`run_classification.py`); `--help` lists them all. A single
`.json` argument is read as a file of arguments.

Commands (from the repository root):

    # Default: the embedded UDHR language-ID data (data/udhr, 452 languages) and a fresh model with
    # PerceiverByteConfig()'s defaults (hashed byte n-gram embeddings of orders 2-6 under one cross-attention; 9.0M
    # parameters). Figures and timings: README.md. On a busy machine, 2 OpenMP threads can be 10x slower than 1: add
    # --torch_num_threads 1 there.
    python scripts/train.py --output_dir outputs/udhr

    # Local files: csv / tsv / json / jsonl / parquet (json, jsonl, csv and tsv may be .gz). Text and label columns
    # are detected when unambiguous ("text"/"sentence"/"content"..., "label"/"labels"...), else name them.
    python scripts/train.py --output_dir outputs/mycsv \
        --train_file train.csv --validation_file dev.csv --test_file test.csv \
        --text_column review --label_column stars

    # Multi-label: a list column is detected; a string column with separators needs --multi_label.
    python scripts/train.py --output_dir outputs/tags --train_file tags.csv --multi_label --label_separator "|"

    # Binary files: one sub-folder per label, every file read as raw bytes (optionally train/ validation/ test/
    # folders, each with one sub-folder per label). A validation split is carved from train when there is none.
    # For files the defaults are --max_length 1024 --truncation_side head+tail (texts: 256, head).
    python scripts/train.py --output_dir outputs/files --data_dir path/to/files

    # A Hub dataset (needs network): name, config and split names.
    python scripts/train.py --output_dir outputs/imdb --dataset_name stanfordnlp/imdb --test_split_name test

    # Fine-tune a trained model (an output dir or a Hub id); a different label set needs --ignore_mismatched_sizes.
    python scripts/train.py --output_dir outputs/udhr-ft --model_name_or_path outputs/udhr --learning_rate 3e-4

    # A bigger or different fresh model: overrides on top of PerceiverByteConfig()'s defaults.
    python scripts/train.py --output_dir outputs/big --config_overrides "num_latents=128,d_latents=256,num_blocks=4"

    # Resume: rerunning with the same --output_dir resumes from its last complete checkpoint automatically (one that
    # a killed run left half-written is moved aside to incomplete-checkpoint-N, with a warning saying why); or name
    # one. --overwrite_output_dir starts afresh instead (removes the old checkpoint folders only).
    python scripts/train.py --output_dir outputs/udhr --resume_from_checkpoint outputs/udhr/checkpoint-500

    # Early stopping on validation accuracy (turns on --load_best_model_at_end).
    python scripts/train.py --output_dir outputs/es --num_train_epochs 20 --early_stopping_patience 3

    # Mixed precision (bf16 autocast also works on CPU), activation checkpointing, torch.compile.
    python scripts/train.py --output_dir outputs/bf16 --bf16 --gradient_checkpointing --torch_compile

    # Data-parallel on CPU: 2 processes (DDP over gloo); the script is unchanged, only the main process writes
    # outputs. `--multi_gpu` is accelerate's name for its torchrun launcher and works without GPUs. NOTE: with
    # accelerate 1.15, `accelerate launch --cpu --num_processes 2 ...` starts ONE process (its CPU launcher only
    # starts several through MPI, with --mpirun_hostfile), so use one of these two:
    accelerate launch --multi_gpu --num_processes 2 --num_machines 1 --mixed_precision no --dynamo_backend no \
        scripts/train.py --output_dir outputs/ddp
    torchrun --nproc_per_node 2 scripts/train.py --output_dir outputs/ddp

    # Multi-GPU (DDP): one process per GPU; --per_device_train_batch_size is per process.
    accelerate launch --num_processes 4 --mixed_precision bf16 scripts/train.py --output_dir outputs/ddp --bf16
    # or: torchrun --nproc_per_node 4 scripts/train.py --output_dir outputs/ddp --bf16
    # FSDP: the layers to wrap are PerceiverByteCrossAttentionLayer and PerceiverByteSelfAttentionLayer
    # (model._no_split_modules); the default model (a few M parameters) gains nothing from sharding, use DDP for it.
    accelerate launch --num_processes 4 scripts/train.py --output_dir outputs/fsdp --bf16 \
        --fsdp "full_shard auto_wrap" \
        --fsdp_config '{"transformer_layer_cls_to_wrap": ["PerceiverByteCrossAttentionLayer", "PerceiverByteSelfAttentionLayer"]}'

    # Publish: pushes the model, tokenizer, code files and the model card (README.md).
    python scripts/train.py --output_dir outputs/udhr --push_to_hub --hub_model_id me/perceiver-byte-udhr

Outputs in --output_dir: model.safetensors, config.json (with label2id/id2label) and the model's code files
(configuration/modeling/tokenization_perceiver_byte.py, for `trust_remote_code=True`), the tokenizer,
all_results.json (plus train/eval/test_results.json), trainer_state.json, TensorBoard logs in runs/, checkpoints
(checkpoint-*) and README.md, the model card rendered from model_card.md with this run's data, hyper-parameters and
metrics. Predict with `python scripts/predict.py --model OUTPUT_DIR --text "..."`.

Bad input stops the run before training with a message naming the file, row or column and the fix; the command-line
entry point prints it as `error: ...` and exits with status 2.
"""

from __future__ import annotations

import argparse
import ast
import csv
import dataclasses
import gzip
import io
import json
import logging
import math
import os
import re
import shutil
import sys
import zipfile
from dataclasses import dataclass, field
from pathlib import Path


REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:  # run from a checkout without `pip install -e .`
    sys.path.insert(0, str(REPO_ROOT))

import datasets  # noqa: E402
import evaluate  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
import transformers  # noqa: E402
from huggingface_hub.errors import StrictDataclassError  # noqa: E402
from transformers import (  # noqa: E402
    AutoConfig,
    AutoModelForSequenceClassification,
    AutoTokenizer,
    DataCollatorWithPadding,
    EarlyStoppingCallback,
    EvalPrediction,
    HfArgumentParser,
    Trainer,
    TrainingArguments,
    set_seed,
)
from transformers.trainer_utils import sort_checkpoints  # noqa: E402

import common  # noqa: E402
import perceiver_byte  # noqa: E402  (registers the Auto classes)
import predict  # noqa: E402
import push_to_hub  # noqa: E402
from common import TRUNCATION_SIDES, UserError  # noqa: E402
from perceiver_byte import PerceiverByteConfig, PerceiverByteTokenizer  # noqa: E402


logger = logging.getLogger("perceiver_byte.train")

DEFAULT_DATA_DIR = REPO_ROOT / "data" / "udhr"
METRICS_DIR = REPO_ROOT / "metrics"
DEFAULT_MODEL_CARD_TEMPLATE = REPO_ROOT / "model_card.md"

#: Script defaults for `TrainingArguments` (any of them can be given on the command line).
TRAINING_DEFAULTS = dict(
    do_train=True,
    do_eval=True,
    do_predict=True,
    learning_rate=2e-3,
    num_train_epochs=5.0,
    per_device_train_batch_size=32,
    per_device_eval_batch_size=64,
    warmup_steps=0.06,
    weight_decay=0.01,
    lr_scheduler_type="linear",
    eval_strategy="epoch",
    save_strategy="epoch",
    save_total_limit=2,
    logging_steps=50,
    report_to="tensorboard",
    seed=42,
    ddp_find_unused_parameters=False,  # every parameter is used in each forward pass
)
TEXT_COLUMN_CANDIDATES = ("text", "sentence", "content", "document", "bytes", "data", "input", "review")
LABEL_COLUMN_CANDIDATES = ("label", "labels", "class", "category", "target")
SPLIT_ALIASES = {"train": ("train",), "validation": ("validation", "valid", "dev", "val"), "test": ("test",)}


# --------------------------------------------------------------------------------------------- arguments


@dataclass
class ModelArguments:
    """Which model to train: a checkpoint to fine-tune, or a fresh Perceiver byte model."""

    model_name_or_path: str | None = field(
        default=None,
        metadata={"help": "A trained output dir or Hub id to fine-tune. Default: a fresh model with "
                          "PerceiverByteConfig()'s defaults (see --config_name / --config_overrides)."},
    )  # fmt: skip
    config_name: str | None = field(
        default=None,
        metadata={"help": "Base config of a fresh model: None = PerceiverByteConfig()'s defaults; "
                          "'paper_imagenet' = the paper's ImageNet size; or a config.json / folder / Hub id."},
    )  # fmt: skip
    config_overrides: str | None = field(
        default=None,
        metadata={"help": "Comma-separated key=value config fields applied on top of the base config of a fresh "
                          "model, e.g. 'num_latents=64,d_latents=256,position_encoding_type=learned'."},
    )  # fmt: skip
    attn_implementation: str | None = field(
        default=None,
        metadata={"help": "Attention kernel: 'eager', 'sdpa' (transformers' default) or another registered one."},
    )
    ignore_mismatched_sizes: bool = field(
        default=False,
        metadata={"help": "With --model_name_or_path: allow a label set that differs from the checkpoint's "
                          "(a new classifier head is initialised)."},
    )  # fmt: skip
    trust_remote_code: bool = field(
        default=False, metadata={"help": "Allow code from a Hub model repo (not needed for perceiver_byte models)."}
    )
    cache_dir: str | None = field(default=None, metadata={"help": "Where to cache Hub downloads."})
    model_revision: str = field(default="main", metadata={"help": "Branch, tag or commit of a Hub model."})
    token: str | None = field(default=None, metadata={"help": "Hub token for private models/datasets."})


# What an example keeps when --max_length / --truncation_side are not given: texts vs the files of --data_dir.
DEFAULTS_FOR_TEXT = {"max_length": 256, "truncation_side": "head"}
DEFAULTS_FOR_FILES = {"max_length": 1024, "truncation_side": "head+tail"}


@dataclass
class DataArguments:
    """What to train and evaluate on. With none of --dataset_name / --train_file / --data_dir: the embedded UDHR data."""

    dataset_name: str | None = field(default=None, metadata={"help": "A dataset id on the Hub (`load_dataset`)."})
    dataset_config_name: str | None = field(default=None, metadata={"help": "The Hub dataset's config name."})
    train_split_name: str = field(default="train", metadata={"help": "Hub dataset: the training split."})
    validation_split_name: str | None = field(
        default=None, metadata={"help": "Hub dataset: the validation split (default: validation/valid/dev/val)."}
    )
    test_split_name: str | None = field(default=None, metadata={"help": "Hub dataset: the test split (default: test)."})
    train_file: str | None = field(
        default=None, metadata={"help": "Training file: .csv, .tsv, .json, .jsonl, .parquet (json/jsonl/csv/tsv may be .gz)."}
    )
    validation_file: str | None = field(default=None, metadata={"help": "Validation file (same formats)."})
    test_file: str | None = field(default=None, metadata={"help": "Test file (same formats)."})
    data_dir: str | None = field(
        default=None,
        metadata={"help": "Folder with one sub-folder per label; each file inside is one example, read as raw bytes. "
                          "May instead hold train/, validation/ and test/ folders, each with one sub-folder per label."},
    )  # fmt: skip
    text_column: str | None = field(
        default=None, metadata={"help": f"Column with the text/bytes (default: detected among {TEXT_COLUMN_CANDIDATES})."}
    )
    label_column: str | None = field(
        default=None, metadata={"help": f"Column with the label(s) (default: detected among {LABEL_COLUMN_CANDIDATES})."}
    )
    multi_label: bool = field(
        default=False,
        metadata={"help": "Multi-label classification. Implied by a list-valued label column; with a string column, "
                          "each value is split on --label_separator."},
    )  # fmt: skip
    label_separator: str = field(default=",", metadata={"help": "Separator of labels in a string column (--multi_label)."})
    max_length: int | None = field(
        default=None,
        metadata={"help": f"Maximum bytes per example, including the [CLS] and [SEP] tokens. Default: "
                          f"{DEFAULTS_FOR_TEXT['max_length']} for texts, {DEFAULTS_FOR_FILES['max_length']} for the "
                          "files of --data_dir."},
    )  # fmt: skip
    truncation_side: str | None = field(
        default=None,
        metadata={"help": "What a longer example keeps: 'head' (its start), 'tail' (its end) or 'head+tail' "
                          f"(half of the budget from each end). Default: {DEFAULTS_FOR_TEXT['truncation_side']} for "
                          f"texts, {DEFAULTS_FOR_FILES['truncation_side']} for the files of --data_dir, whose type "
                          "shows at both ends (a header, a trailer, the last lines of code).",
                  "choices": ["head", "tail", "head+tail"]},
    )  # fmt: skip
    pad_to_multiple_of: int | None = field(
        default=None, metadata={"help": "Pad each batch to a multiple of this length (e.g. 8 for tensor cores)."}
    )
    validation_split_percentage: float = field(
        default=10.0, metadata={"help": "Percent of train held out for validation when there is no validation split."}
    )
    max_train_samples: int | None = field(default=None, metadata={"help": "Use only the first N training examples."})
    max_eval_samples: int | None = field(default=None, metadata={"help": "Use only the first N validation examples."})
    max_predict_samples: int | None = field(default=None, metadata={"help": "Use only the first N test examples."})
    preprocessing_num_workers: int | None = field(default=None, metadata={"help": "Processes for tokenization."})
    overwrite_cache: bool = field(default=False, metadata={"help": "Redo the cached dataset preprocessing."})

    def __post_init__(self):
        for name, value in (DEFAULTS_FOR_FILES if self.data_dir else DEFAULTS_FOR_TEXT).items():
            if getattr(self, name) is None:
                setattr(self, name, value)
        if self.max_length < 3:
            raise UserError(f"--max_length {self.max_length}: use at least 3 ([CLS], one byte, [SEP]).")
        if not 0 < self.validation_split_percentage < 100:
            raise UserError("--validation_split_percentage must be in (0, 100).")


@dataclass
class RunArguments:
    """Output handling, early stopping and the model card."""

    overwrite_output_dir: bool = field(
        default=False,
        metadata={"help": "Train afresh in an output dir that holds another run: its checkpoint-* (and "
                          "incomplete-checkpoint-*) folders are removed and other files overwritten. Without it such "
                          "a dir is resumed from its last checkpoint, or refused when it has none."},
    )  # fmt: skip
    torch_num_threads: int | None = field(
        default=None,
        metadata={"help": "torch.set_num_threads(N) in each process. Default: torch's own choice (one thread per "
                          "core). On a busy shared machine 1 thread can be much faster than 2 for this small model: "
                          "with another job on 2 cores we measured 16 vs 259 examples/s (OpenMP threads wait for "
                          "each other whenever one of them is descheduled)."},
    )  # fmt: skip
    early_stopping_patience: int | None = field(
        default=None,
        metadata={"help": "Stop after this many evaluations without improvement of --metric_for_best_model "
                          "(default accuracy); turns on --load_best_model_at_end."},
    )  # fmt: skip
    early_stopping_threshold: float = field(default=0.0, metadata={"help": "Minimum improvement that counts."})
    model_card_template: str = field(
        default=str(DEFAULT_MODEL_CARD_TEMPLATE), metadata={"help": "Template of the model card (README.md)."}
    )
    model_card_license: str = field(default="apache-2.0", metadata={"help": "License in the model card metadata."})
    model_card_language: str | None = field(
        default=None,
        metadata={"help": "Comma-separated language codes for the model card (default: 'multilingual' for the "
                          "UDHR data, none otherwise)."},
    )  # fmt: skip

    def __post_init__(self):
        if self.torch_num_threads is not None and self.torch_num_threads < 1:
            raise UserError("--torch_num_threads must be at least 1.")


class _HelpFormatter(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """Defaults in the help, and the module docstring (with its commands) kept as written."""


def build_parser() -> HfArgumentParser:
    parser = HfArgumentParser((ModelArguments, DataArguments, RunArguments, TrainingArguments))
    parser.description = __doc__  # the commands above, verbatim
    parser.formatter_class = _HelpFormatter
    parser.set_defaults(**TRAINING_DEFAULTS)
    if not torch.accelerator.is_available():  # no CUDA, ROCm, XPU, MPS, ...
        # Without a GPU, TrainingArguments refuses --bf16/--fp16 unless --use_cpu: on a CPU-only machine it is the
        # only choice anyway, and it makes bf16 (and fp16) autocast work on the CPU.
        parser.set_defaults(use_cpu=True, dataloader_pin_memory=False)
    return parser


def parse_args(argv: list[str] | None):
    parser = build_parser()
    argv = sys.argv[1:] if argv is None else list(argv)
    if len(argv) == 1 and argv[0].endswith(".json"):
        return parser.parse_json_file(json_file=os.path.abspath(argv[0]))
    return parser.parse_args_into_dataclasses(args=argv)


# --------------------------------------------------------------------------------------------- data loading


@dataclass
class SplitSource:
    """Where a split came from, to name it in error messages."""

    description: str  # e.g. "train file data/train.csv"
    kind: str = "hub"  # csv, tsv, json, jsonl, parquet, data_dir, hub, carved

    def row(self, index: int, dataset: datasets.Dataset | None = None) -> str:
        if self.kind == "data_dir" and dataset is not None and "path" in dataset.column_names:
            return f"file {dataset[index]['path']}"
        if self.kind in ("csv", "tsv"):
            return f"row {index + 1} (line {index + 2} of the file, after the header line)"
        if self.kind == "jsonl":
            return f"row {index + 1} (line {index + 1} of the file)"
        return f"row {index + 1} (index {index})"


FILE_KINDS = {".csv": "csv", ".tsv": "tsv", ".json": "json", ".jsonl": "jsonl", ".parquet": "parquet"}


def load_data_file(path_str: str, split: str) -> tuple[datasets.Dataset, SplitSource]:
    """One data file -> a Dataset, with clear errors for a missing, empty, unsupported or undecodable file."""
    path, flag = Path(path_str), f"--{split}_file"
    if not path.is_file():
        raise UserError(f"{flag} {path_str}: no such file. Check the path (relative paths start from {os.getcwd()}).")
    suffixes = [s.lower() for s in path.suffixes]
    compressed = suffixes[-1:] == [".gz"]
    kind = FILE_KINDS.get(suffixes[-2 if compressed else -1] if len(suffixes) > compressed else "")
    if kind is None or (kind == "parquet" and compressed):
        raise UserError(
            f"{flag} {path_str}: unsupported file type. Use .csv, .tsv, .json, .jsonl or .parquet "
            "(.csv, .tsv, .json and .jsonl may be gzipped, e.g. train.jsonl.gz)."
        )
    if path.stat().st_size == 0:
        raise UserError(f"{flag} {path_str} is empty (0 bytes): it needs a header/records and at least one example.")
    if kind == "parquet":
        ds = _load_with_datasets("parquet", path, flag)
    else:
        try:
            with gzip.open(path, "rb") if compressed else open(path, "rb") as f:
                raw = f.read()
        except (OSError, EOFError) as err:
            raise UserError(f"{flag} {path_str}: cannot read it ({err}); is it a valid {'gzip ' if compressed else ''}file?")
        if not raw.strip():
            raise UserError(f"{flag} {path_str} is empty (only whitespace): it needs at least one example.")
        if kind in ("json", "jsonl"):
            ds = _load_with_datasets("json", path, flag)
        else:
            sep = "\t" if kind == "tsv" else ","
            try:
                raw.decode("utf-8")
            except UnicodeDecodeError as err:
                ds = load_non_utf8_csv(raw, sep, err, path_str, flag)
            else:
                ds = _load_with_datasets("csv", path, flag, sep=sep)
    if len(ds) == 0:
        raise UserError(f"{flag} {path_str} has no rows (a header alone is not data): add at least one example.")
    return ds, SplitSource(f"{split} file {path_str}", kind)


def _load_with_datasets(builder: str, path: Path, flag: str, **kwargs) -> datasets.Dataset:
    try:
        return datasets.load_dataset(builder, data_files=str(path), split="train", **kwargs)
    except Exception as err:  # datasets wraps parser errors in several exception types
        cause = err
        while cause.__cause__ is not None:
            cause = cause.__cause__
        detail = f"{type(cause).__name__}: {cause}".strip()
        if "corresponds to no data" in detail:  # e.g. a CSV with a header line only: no rows, as load_data_file says
            return datasets.Dataset.from_dict({})
        raise UserError(f"{flag} {path}: could not be read as {builder} ({detail[:500]}). Fix the file's format.") from err


#: Cells read as missing, as pandas (and so datasets' CSV loader) does by default.
_CSV_NA_VALUES = {"", "#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan", "1.#IND", "1.#QNAN", "<NA>",
                  "N/A", "NA", "NULL", "NaN", "None", "n/a", "nan", "null"}  # fmt: skip


def load_non_utf8_csv(raw: bytes, sep: str, err: UnicodeDecodeError, path_str: str, flag: str) -> datasets.Dataset:
    """A CSV that is not valid UTF-8: keep the exact bytes. The file is decoded with `surrogateescape` and parsed with
    the csv module; every column with an undecodable cell becomes a binary column holding each cell's original bytes
    (the tokenizer takes bytes), the other columns stay text."""
    line = raw.count(b"\n", 0, err.start) + 1
    logger.warning(
        "%s %s is not valid UTF-8 (first invalid byte 0x%02x at byte offset %d, line %d); its text is read as raw "
        "bytes, exactly as in the file.", flag, path_str, raw[err.start], err.start, line,
    )  # fmt: skip
    try:
        rows = list(csv.reader(io.StringIO(raw.decode("utf-8", "surrogateescape"), newline=""), delimiter=sep))
    except csv.Error as read_err:
        raise UserError(f"{flag} {path_str}: could not be read as CSV ({read_err}). Fix the file's format.") from read_err
    rows = [r for r in rows if r]  # blank lines
    if not rows:
        raise UserError(f"{flag} {path_str} is empty: it needs a header line and at least one example.")
    header, body = rows[0], rows[1:]
    if any(_has_surrogates(name) for name in header):
        raise UserError(f"{flag} {path_str}: the header line is not valid UTF-8; write the column names in UTF-8.")
    for index, row in enumerate(body):
        if len(row) != len(header):
            raise UserError(f"{flag} {path_str}: row {index + 1} has {len(row)} fields but the header has "
                            f"{len(header)} ({header}). Fix the quoting or the separators of that row.")  # fmt: skip
    columns = {}
    for j, name in enumerate(header):
        values = [None if row[j] in _CSV_NA_VALUES else row[j] for row in body]
        if any(v is not None and _has_surrogates(v) for v in values):
            values = [None if v is None else v.encode("utf-8", "surrogateescape") for v in values]
        columns[name] = values
    return datasets.Dataset.from_dict(columns)


def _has_surrogates(text: str) -> bool:
    try:
        text.encode("utf-8")
        return False
    except UnicodeEncodeError:
        return True


def _is_hidden(name: str) -> bool:
    return name.startswith((".", "__"))


def _data_dir_examples(entries, end_bytes):
    for path, label, size, _mtime in entries:
        yield {"text": predict.read_ends(path, size, end_bytes), "label": label, "path": path}


def list_label_folders(root: Path, what: str):
    """-> ([(path, label, size, mtime)] of every file under root's label folders, the labels, the label folders). The
    sizes and mtimes are in the entries so that datasets' cache of `from_generator` notices an edited file."""
    classes = sorted(d for d in root.iterdir() if d.is_dir() and not _is_hidden(d.name))
    stray = [p.name for p in root.iterdir() if p.is_file() and not _is_hidden(p.name)]
    if stray:
        logger.warning("%s: ignoring %d file(s) outside the label folders (e.g. %s).", what, len(stray), stray[0])
    entries, empty = [], []
    for folder in classes:
        files = sorted(p for p in folder.rglob("*")
                       if p.is_file() and not any(map(_is_hidden, p.relative_to(folder).parts)))  # fmt: skip
        if not files:
            empty.append(folder.name)
        for p in files:
            st = p.stat()
            entries.append((str(p), folder.name, st.st_size, st.st_mtime_ns))
    if empty:
        logger.warning("%s: label folder(s) with no files are ignored: %s", what, ", ".join(empty))
    return entries, sorted({e[1] for e in entries}), classes


def load_data_dir(data_dir: str, end_bytes: int | None = None) -> tuple[dict, dict[str, SplitSource]]:
    root = Path(data_dir)
    if not root.is_dir():
        raise UserError(f"--data_dir {data_dir}: no such folder. It must hold one sub-folder per label.")
    subdirs = {d.name for d in root.iterdir() if d.is_dir() and not _is_hidden(d.name)}
    split_folders = {"train": root}
    if "train" in subdirs and subdirs <= {alias for aliases in SPLIT_ALIASES.values() for alias in aliases}:
        split_folders = {}
        for split, aliases in SPLIT_ALIASES.items():
            alias = next((a for a in aliases if a in subdirs), None)
            if alias:
                split_folders[split] = root / alias
    raw, sources = {}, {}
    features = datasets.Features({"text": datasets.Value("binary"), "label": datasets.Value("string"),
                                  "path": datasets.Value("string")})  # fmt: skip
    for split, folder in split_folders.items():
        what = f"--data_dir {folder}"
        entries, labels, classes = list_label_folders(folder, what)
        if split == "train" and len(labels) < 2:
            found = ", ".join(d.name for d in classes) or "none"
            raise UserError(
                f"{what} has {len(labels)} label folder(s) with files (found sub-folders: {found}); a classifier needs "
                "at least 2. Put each class's files in a sub-folder named after its label, e.g. "
                f"{folder}/cats/a.jpg and {folder}/dogs/b.jpg."
            )
        if not entries:
            raise UserError(f"{what} has no files in its label folders: add at least one file per label.")
        raw[split] = datasets.Dataset.from_generator(
            _data_dir_examples, features=features, gen_kwargs={"entries": entries, "end_bytes": end_bytes}
        )
        sources[split] = SplitSource(f"{split} folder {folder}", "data_dir")
    return raw, sources


def load_raw_datasets(data_args: DataArguments, model_args: ModelArguments):
    """-> (dict split -> Dataset, dict split -> SplitSource, dataset id for the model card, pretty name)."""
    given = [n for n in ("dataset_name", "train_file", "data_dir") if getattr(data_args, n)]
    if len(given) > 1:
        raise UserError(f"Give only one data source, got {', '.join('--' + g for g in given)}.")
    if not given and (data_args.validation_file or data_args.test_file):
        raise UserError("--validation_file/--test_file need a --train_file too.")

    if data_args.data_dir:
        raw, sources = load_data_dir(data_args.data_dir, end_bytes=data_args.max_length)
        return raw, sources, Path(data_args.data_dir).resolve().name, f"binary files in {data_args.data_dir}"

    if data_args.dataset_name:
        name = data_args.dataset_name
        try:
            loaded = datasets.load_dataset(name, data_args.dataset_config_name, cache_dir=model_args.cache_dir,
                                           token=model_args.token)  # fmt: skip
        except Exception as err:
            raise UserError(f"--dataset_name {name}: could not be loaded ({err}).") from err
        raw, sources = {}, {}
        wanted = {"train": data_args.train_split_name, "validation": data_args.validation_split_name,
                  "test": data_args.test_split_name}  # fmt: skip
        for split, given_name in wanted.items():
            found = next((n for n in ((given_name,) if given_name else SPLIT_ALIASES[split]) if n in loaded), None)
            if found is not None:
                raw[split] = loaded[found]
                sources[split] = SplitSource(f"split {found!r} of {name}")
            elif given_name:
                raise UserError(f"{name} has no split {given_name!r}; it has {list(loaded)}.")
        return raw, sources, name, name

    if data_args.train_file:
        files = {"train": data_args.train_file, "validation": data_args.validation_file, "test": data_args.test_file}
        name = Path(data_args.train_file).name.split(".")[0]
        pretty = "local files " + ", ".join(f"{k}={v}" for k, v in files.items() if v)
    else:  # the embedded default
        files = {s: str(DEFAULT_DATA_DIR / f"{s}.jsonl.gz") for s in ("train", "validation", "test")}
        name, pretty = "udhr", "UDHR language identification (data/udhr: 452 languages, paragraph level)"
    raw, sources = {}, {}
    for split, path in files.items():
        if path:
            raw[split], sources[split] = load_data_file(path, split)
    return raw, sources, name, pretty


# --------------------------------------------------------------------------------------------- columns and labels


def detect_column(ds: datasets.Dataset, given: str | None, candidates, role: str, flag: str, source: SplitSource,
                  exclude: str | None = None) -> str:  # fmt: skip
    columns = ds.column_names
    if given is not None:
        if given not in columns:
            raise UserError(f"{source.description}: no {role} column {given!r}; its columns are {columns}. "
                            f"Pass the right name with {flag}.")  # fmt: skip
        return given
    found = [c for c in candidates if c in columns and c != exclude]
    if len(found) > 1:
        raise UserError(f"{source.description}: several columns could be the {role} ({found}); choose one with "
                        f"{flag}. Columns present: {columns}.")  # fmt: skip
    if not found and role == "text":
        found = [c for c in columns if c != exclude and _is_text_feature(ds.features[c])]
    if len(found) == 1:
        return found[0]
    raise UserError(f"{source.description}: cannot find the {role} column (looked for {list(candidates)}); its "
                    f"columns are {columns}. Pass the right name with {flag}.")  # fmt: skip


def carve_validation(train: datasets.Dataset, label_column: str, percentage: float, seed: int, stratify: bool = True):
    """(train, validation): `percentage` % of train held out, stratified on str(label) when every class can give one
    example to each side (and `stratify`), else a plain split. scripts/baseline.py carves with this too."""
    share = percentage / 100
    if stratify:
        try:
            keyed = train.map(lambda b: {"__strat": [str(v) for v in b[label_column]]}, batched=True,
                              load_from_cache_file=False).class_encode_column("__strat")  # fmt: skip
            split = keyed.train_test_split(test_size=share, seed=seed, stratify_by_column="__strat")
            return split["train"].remove_columns("__strat"), split["test"].remove_columns("__strat")
        except ValueError:
            pass
    split = train.train_test_split(test_size=share, seed=seed)
    return split["train"], split["test"]


def _is_text_feature(feature) -> bool:
    return isinstance(feature, datasets.Value) and feature.dtype in ("string", "large_string", "binary", "large_binary")


def _is_missing(value) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def label_key(value, where, column: str) -> str:
    """A label value -> its string key; None/NaN/invalid values are errors naming the row (`where()`: the split's
    description and the row)."""
    if _is_missing(value):
        source, row = where()
        raise UserError(f"{source}: {row} has no label (empty/None/NaN in column {column!r}). Fill it in or remove "
                        "the row.")  # fmt: skip
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, (bytes, bytearray)):
        source, row = where()
        raise UserError(f"{source}: the label column {column!r} is not valid UTF-8 (e.g. {row}); labels must be "
                        "text. Re-encode the file's labels as UTF-8.")  # fmt: skip
    if not isinstance(value, (str, int, np.integer, float)):
        source, row = where()
        raise UserError(f"{source}: {row} has a label of type {type(value).__name__} ({value!r}); labels must be "
                        "strings or integers (or lists of them for multi-label).")  # fmt: skip
    return str(value).strip() if isinstance(value, str) else str(value)


def row_label_keys(value, multi: bool, sep: str, column: str, where=None) -> list[str]:
    """The label keys of one row: one, or for multi-label those of a list value or of a string split on `sep`."""
    if multi and isinstance(value, str):
        return [p for p in (p.strip() for p in value.split(sep)) if p]
    if multi and isinstance(value, (list, tuple)):
        return [label_key(v, where, column) for v in value]
    return [label_key(value, where, column)]


@dataclass
class LabelSpec:
    names: list[str]  # id -> name
    multi_label: bool
    class_label: bool = False  # the column is a ClassLabel whose ids are used directly

    @property
    def label2id(self) -> dict[str, int]:
        return {n: i for i, n in enumerate(self.names)}


def build_label_spec(raw: dict, sources: dict, column: str, data_args: DataArguments) -> LabelSpec:
    """The label set of the training split, after checking every label of every split (the errors name the row)."""
    feature = raw["train"].features[column]
    if isinstance(feature, datasets.ClassLabel):
        return LabelSpec(names=list(feature.names), multi_label=False, class_label=True)
    if isinstance(getattr(feature, "feature", None), datasets.ClassLabel):
        return LabelSpec(names=list(feature.feature.names), multi_label=True, class_label=True)
    multi = data_args.multi_label or isinstance(feature, (datasets.Sequence, datasets.List, list))
    seen: dict[str, None] = {}
    for split in ("train", "validation", "test"):
        ds, source = raw.get(split), sources.get(split)
        for index, value in enumerate(ds[column] if ds is not None else ()):
            keys = row_label_keys(value, multi, data_args.label_separator, column,
                                  lambda: (source.description, source.row(index, ds)))  # fmt: skip
            if split == "train":
                seen.update(dict.fromkeys(keys))
            elif unknown := [k for k in keys if k not in seen]:
                raise UserError(
                    f"{source.description}: {source.row(index, ds)} has label {unknown[0]!r}, which the training "
                    f"data never has (train has {len(seen)} labels, e.g. {sorted(seen)[:5]}). The model cannot "
                    f"predict an unseen label: add training examples of it, or remove such rows from the {split} data."
                )
    names = sorted(seen, key=int) if all(_is_int_string(n) for n in seen) else sorted(seen)
    if len(names) < 2 and not multi:
        raise UserError(f"{sources['train'].description}: column {column!r} has only {len(names)} distinct label(s) "
                        f"({names}); a classifier needs at least 2.")  # fmt: skip
    if not names:
        raise UserError(f"{sources['train'].description}: column {column!r} holds no labels at all.")
    return LabelSpec(names=names, multi_label=multi)


def _is_int_string(text: str) -> bool:
    try:
        return str(int(text)) == text
    except ValueError:
        return False


# --------------------------------------------------------------------------------------------- model


def apply_config_overrides(config: PerceiverByteConfig, overrides: str | None) -> None:
    """--config_overrides ("key=value,key=value") on a fresh config, then the config's own validation; every error is a
    UserError naming the field. A value goes through transformers' `update_from_string`, which converts it to the type
    of the field's current value (bools: true/false); a field that is None or a list (qk_channels,
    cross_attention_chunk_size, ngram_orders=[2,3]) has no type to convert to and takes a Python literal, and none/null
    sets a field to None (a string field's choice "none")."""
    for item in re.split(r",(?![^\[]*\])", overrides or ""):  # commas inside [...] belong to a list value
        if not item.strip():
            continue
        key, sep, value = (s.strip() for s in item.partition("="))
        if not sep:
            raise UserError(f"--config_overrides: {item.strip()!r} is not key=value; write e.g. "
                            "'num_latents=64,d_latents=256'.")  # fmt: skip
        if key not in config.to_dict():
            raise UserError(f"--config_overrides: {key!r} is not a PerceiverByteConfig field; the fields are "
                            f"{sorted(PerceiverByteConfig.__annotations__)}.")  # fmt: skip
        current = getattr(config, key)
        try:
            if value.lower() in ("none", "null"):
                setattr(config, key, "none" if isinstance(current, str) else None)
            elif current is None or isinstance(current, (list, tuple)):
                setattr(config, key, _literal(value))
            else:
                config.update_from_string(f"{key}={value}")
        except (TypeError, ValueError, StrictDataclassError) as err:
            raise UserError(f"--config_overrides: {key}={value}: {err}") from err
    try:
        config.validate()
    except (TypeError, ValueError, StrictDataclassError) as err:
        raise UserError(f"--config_overrides: {err}") from err


def _literal(text: str):
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text  # a word: the config's validation names the field if it is not allowed


def fresh_config(model_args: ModelArguments) -> PerceiverByteConfig:
    """PerceiverByteConfig()'s defaults, the paper's ImageNet size, or --config_name; then --config_overrides."""
    if model_args.config_name in (None, "paper_imagenet"):
        config = PerceiverByteConfig.paper_imagenet() if model_args.config_name else PerceiverByteConfig()
    else:
        try:
            config = PerceiverByteConfig.from_pretrained(model_args.config_name, cache_dir=model_args.cache_dir,
                                                         token=model_args.token)  # fmt: skip
        except Exception as err:
            raise UserError(f"--config_name {model_args.config_name}: could not be loaded ({err}).") from err
    apply_config_overrides(config, model_args.config_overrides)
    return config


def checkpoint_config(model_args: ModelArguments, labels: LabelSpec, hub: dict):
    """-> (the config of --model_name_or_path, whether its label set differs from the data's). With the same label
    set, `labels` takes the checkpoint's ids, so that its classifier head stays valid."""
    name = model_args.model_name_or_path
    if model_args.config_overrides or model_args.config_name:
        raise UserError("--config_name/--config_overrides shape a fresh model; they cannot change the "
                        "architecture of --model_name_or_path. Drop one of them.")  # fmt: skip
    try:
        config = AutoConfig.from_pretrained(name, **hub)
    except Exception as err:
        raise UserError(f"--model_name_or_path {name}: no model config could be loaded ({err}). Give a trained "
                        "output dir or a Hub model id.") from err  # fmt: skip
    old = {k: int(v) for k, v in (getattr(config, "label2id", None) or {}).items()}
    if set(old) == set(labels.names):
        labels.names = sorted(old, key=old.get)
        return config, False
    if not model_args.ignore_mismatched_sizes:
        raise UserError(
            f"--model_name_or_path {name} was trained on {len(old)} labels ({sorted(old)[:8]}...) but the data has "
            f"{len(labels.names)} ({sorted(labels.names)[:8]}...). Pass --ignore_mismatched_sizes to fine-tune with "
            "a new classifier head."
        )
    return config, True


def build_model(model_args: ModelArguments, labels: LabelSpec, training_args: TrainingArguments):
    """-> (model, tokenizer): the checkpoint of --model_name_or_path with this data's labels, or a fresh model."""
    hub = dict(cache_dir=model_args.cache_dir, revision=model_args.model_revision, token=model_args.token,
               trust_remote_code=model_args.trust_remote_code)  # fmt: skip
    extra = {"attn_implementation": model_args.attn_implementation} if model_args.attn_implementation else {}
    name = model_args.model_name_or_path
    config, mismatch = checkpoint_config(model_args, labels, hub) if name else (fresh_config(model_args), False)
    config.num_labels = len(labels.names)
    config.label2id, config.id2label = labels.label2id, dict(enumerate(labels.names))
    config.problem_type = "multi_label_classification" if labels.multi_label else "single_label_classification"
    if name:
        model = AutoModelForSequenceClassification.from_pretrained(name, config=config, ignore_mismatched_sizes=mismatch,
                                                                   **hub, **extra)  # fmt: skip
        return model, AutoTokenizer.from_pretrained(name, **hub)
    set_seed(training_args.seed)  # the initial weights depend on the seed only
    return AutoModelForSequenceClassification.from_config(config, **extra), PerceiverByteTokenizer()


# --------------------------------------------------------------------------------------------- metrics


def load_metrics(multi_label: bool):
    config_name = "multilabel" if multi_label else None
    accuracy = evaluate.load(str(METRICS_DIR / "accuracy"), config_name, keep_in_memory=True)
    f1 = evaluate.load(str(METRICS_DIR / "f1"), config_name, keep_in_memory=True)
    return accuracy, f1


def make_compute_metrics(multi_label: bool, accuracy, f1):
    def compute_metrics(prediction: EvalPrediction) -> dict[str, float]:
        logits = prediction.predictions[0] if isinstance(prediction.predictions, tuple) else prediction.predictions
        references = prediction.label_ids
        if multi_label:
            predictions = (logits > 0).astype(np.int32).tolist()
            references = (references > 0.5).astype(np.int32).tolist()
            average = "micro"
        else:
            predictions, average = logits.argmax(-1), "macro"
        scores = accuracy.compute(predictions=predictions, references=references)
        return scores | f1.compute(predictions=predictions, references=references, average=average, zero_division=0)

    return compute_metrics


# --------------------------------------------------------------------------------------------- outputs


def check_output_dir(training_args: TrainingArguments, run_args: RunArguments) -> str | None:
    """-> the checkpoint to resume from (or None). Refuses an output dir that holds another run.

    Called by every process, the main one first (see `main`): only the main process moves incomplete checkpoints
    aside, and the others then see the same folder."""
    resume = training_args.resume_from_checkpoint
    out = Path(training_args.output_dir)
    needs_optimizer = not training_args.save_only_model
    if resume is not None and str(resume).lower() not in ("", "false", "none"):
        if str(resume).lower() == "true":
            last, incomplete = find_checkpoints(out, needs_optimizer) if out.is_dir() else (None, [])
            if last is None:
                raise UserError(f"--resume_from_checkpoint true: {out} has no complete checkpoint-* folder to resume "
                                f"from{describe_incomplete(incomplete)}.")  # fmt: skip
            set_incomplete_aside(incomplete, last, training_args)
            return last
        if not Path(resume).is_dir():
            raise UserError(f"--resume_from_checkpoint {resume}: no such folder; name a checkpoint-* folder of an "
                            f"earlier run.")  # fmt: skip
        problem = checkpoint_problem(Path(resume), needs_optimizer)
        if problem is not None:
            raise UserError(f"--resume_from_checkpoint {resume}: not a complete checkpoint: {problem}. Name another "
                            f"checkpoint-* folder of that run.")  # fmt: skip
        return str(resume)
    if not training_args.do_train or not out.is_dir():
        return None
    if run_args.overwrite_output_dir:
        return None
    last, incomplete = find_checkpoints(out, needs_optimizer)
    if last is not None:
        set_incomplete_aside(incomplete, last, training_args)
        logger.warning("Resuming from %s (the last complete checkpoint in --output_dir); pass --overwrite_output_dir "
                       "to train afresh instead.", last)  # fmt: skip
        return last
    skipped = {path.name for path, _ in incomplete}
    contents = sorted(p.name for p in out.iterdir() if p.name not in skipped)
    leftovers = [name for name in contents if name == "runs" or name.startswith(INCOMPLETE_PREFIX)]
    if contents and contents != leftovers:
        raise UserError(
            f"--output_dir {out} is not empty ({len(contents)} entries, e.g. {contents[:5]}) and holds no checkpoint "
            f"to resume from{describe_incomplete(incomplete)}. Choose another --output_dir, or pass "
            "--overwrite_output_dir to train there anyway (overwrites its files); nothing was changed."
        )
    if incomplete or leftovers:  # a run of this script stopped before its first complete checkpoint
        logger.warning("--output_dir %s holds only what an interrupted run leaves before its first complete checkpoint "
                       "(%s): training from the start.", out, ", ".join(sorted(skipped) + leftovers))  # fmt: skip
        set_incomplete_aside(incomplete, None, training_args)
    return None


#: An incomplete checkpoint-N is renamed to incomplete-checkpoint-N: out of the way of Trainer's resume, of its
#: rotation (`checkpoint-*` only) and of its next save at step N, but kept for the user to look at or delete.
INCOMPLETE_PREFIX = "incomplete-"
#: Files every checkpoint holds (Trainer._save_checkpoint); optimizer and scheduler unless --save_only_model.
CHECKPOINT_STATE = "trainer_state.json"
CHECKPOINT_OPTIMIZER_FILES = ("optimizer.pt", "scheduler.pt")


def checkpoint_problem(path: Path, needs_optimizer: bool = True) -> str | None:
    """Why the checkpoint folder `path` cannot be resumed from (naming the missing or damaged file), or None.

    Trainer writes a checkpoint in place, in this order: the model (weights, config, code and tokenizer files,
    training_args.bin), optimizer.pt, scheduler.pt, the RNG state and last trainer_state.json (opened, then written).
    A run killed while saving therefore leaves a folder without a parseable trainer_state.json. The other checks find
    damage done afterwards (a truncated copy, a full disk): every weight file's header and extent, and the zip
    directory at the end of each torch.save file. No tensor is loaded."""
    state_file = path / CHECKPOINT_STATE
    if not state_file.is_file():
        return f"{CHECKPOINT_STATE} is missing (Trainer writes it last: the run was stopped while saving)"
    try:
        state = json.loads(state_file.read_text(encoding="utf-8"))
        step = state["global_step"]
    except (ValueError, KeyError, TypeError) as err:
        return f"{CHECKPOINT_STATE} is damaged ({type(err).__name__}: {err}; the run was stopped while writing it)"
    suffix = path.name.rsplit("-", 1)[-1]
    if suffix.isdigit() and int(suffix) != step:
        return f"{CHECKPOINT_STATE} is for step {step}, not {suffix}"
    weights = sorted(path.glob("*.safetensors"))
    index = path / "model.safetensors.index.json"
    if index.is_file():
        try:
            shards = set(json.loads(index.read_text(encoding="utf-8"))["weight_map"].values())
        except (ValueError, KeyError, TypeError, AttributeError) as err:
            return f"{index.name} is damaged ({type(err).__name__}: {err})"
        missing = sorted(name for name in shards if not (path / name).is_file())
        if missing:
            return f"{missing[0]} is missing (listed in {index.name})"
    elif not weights and not (path / "pytorch_model.bin").is_file():
        return "model.safetensors is missing"
    from safetensors import SafetensorError, safe_open

    for file in weights:
        try:
            with safe_open(str(file), framework="pt"):  # parses the header and checks it covers the whole file
                pass
        except (SafetensorError, OSError) as err:
            return f"{file.name} is damaged ({err})"
    optimizer_files = CHECKPOINT_OPTIMIZER_FILES if needs_optimizer else ()
    for name in optimizer_files:
        if not (path / name).is_file():
            return f"{name} is missing"
    torch_files = [path / n for n in optimizer_files] + sorted(path.glob("rng_state*.pth"))
    torch_files += [p for p in (path / "scaler.pt", path / "pytorch_model.bin") if p.is_file()]
    for file in torch_files:
        try:
            with zipfile.ZipFile(file):  # torch.save writes a zip; its directory is at the very end of the file
                pass
        except (zipfile.BadZipFile, OSError) as err:
            return f"{file.name} is damaged ({err})"
    return None


def find_checkpoints(folder: Path, needs_optimizer: bool = True) -> tuple[str | None, list[tuple[Path, str]]]:
    """-> (the complete checkpoint-* folder with the highest step or None, [(incomplete folder above it, why)]).

    The checkpoints are those Trainer itself finds (`sort_checkpoints`, as in its rotation; `get_last_checkpoint`
    gives only the newest), walked from the newest down to the first that `checkpoint_problem` passes."""
    incomplete = []
    for path in map(Path, reversed(sort_checkpoints(str(folder)))):
        problem = checkpoint_problem(path, needs_optimizer)
        if problem is None:
            return str(path), incomplete
        incomplete.append((path, problem))
    return None, incomplete


def describe_incomplete(incomplete: list[tuple[Path, str]]) -> str:
    return "".join(f" ({path.name} is incomplete: {why})" for path, why in incomplete[:3])


def set_incomplete_aside(incomplete: list[tuple[Path, str]], resume: str | None, training_args) -> None:
    """Rename each incomplete checkpoint above the one resumed from to incomplete-checkpoint-N (main process only).
    Left in place, Trainer's rotation would count it as the newest checkpoint and could delete the complete ones
    (with save_total_limit=1, the very checkpoint it has just saved), and its next save at step N would write over
    it."""
    for path, why in incomplete:
        target = path.with_name(INCOMPLETE_PREFIX + path.name)
        for n in range(1, 1000):
            if not target.exists():
                break
            target = path.with_name(f"{INCOMPLETE_PREFIX}{path.name}.{n}")
        if training_args.process_index == 0:
            path.rename(target)
        logger.warning("Skipping %s: incomplete checkpoint (%s); moved it to %s (delete it once you no longer need "
                       "it); resuming from %s.", path, why, target.name, resume or "the start")  # fmt: skip


def clear_old_checkpoints(output_dir: str) -> None:
    out = Path(output_dir)
    if not out.is_dir():
        return
    for path in sorted([*out.glob("checkpoint-*"), *out.glob(INCOMPLETE_PREFIX + "checkpoint-*")]):
        if path.is_dir():
            logger.warning("--overwrite_output_dir: removing %s of an earlier run.", path)
            shutil.rmtree(path)


# --------------------------------------------------------------------------------------------- the model card


#: The config fields the card's architecture table lists.
CARD_ARCHITECTURE = ("d_model", "position_encoding_type", "num_latents", "d_latents", "num_blocks",
                     "num_self_attends_per_block", "num_cross_attention_heads", "num_self_attention_heads",
                     "cross_attention_widening_factor", "self_attention_widening_factor",
                     "cross_attention_weight_sharing", "self_attention_weight_sharing", "hidden_dropout",
                     "attention_dropout")  # fmt: skip


def render_model_card(trainer: Trainer, model_args, data_args, run_args, labels: LabelSpec, dataset: tuple[str, str],
                      metrics: dict, split_sizes: dict, argv: list[str]) -> str:  # fmt: skip
    """README.md: --model_card_template (str.format placeholders; literal braces are doubled) filled with this run's
    data, hyper-parameters and metrics. The model-index metadata is huggingface_hub's (`EvalResult`), so that
    `ModelCard.load(...).data.eval_results` reads back the metrics."""
    import yaml
    from huggingface_hub import EvalResult
    from huggingface_hub.repocard_data import eval_results_to_model_index

    args, model = trainer.args, trainer.accelerator.unwrap_model(trainer.model)
    dataset_id, dataset_pretty = dataset
    f1_name, f1_average = ("Micro F1", "micro") if labels.multi_label else ("Macro F1", "macro")
    model_name = args.hub_model_id.split("/")[-1] if args.hub_model_id else Path(args.output_dir).name
    eval_results = [
        EvalResult(task_type="text-classification", task_name="Text Classification", dataset_type=dataset_id,
                   dataset_name=dataset_pretty, dataset_split=split, metric_type=metric,
                   metric_value=round(float(metrics[f"{prefix}_{metric}"]), 4), metric_name=f"{name} ({split})",
                   metric_args={"average": f1_average} if metric == "f1" else None)  # fmt: skip
        for split, prefix in (("validation", "eval"), ("test", "test"))
        for metric, name in (("accuracy", "Accuracy"), ("f1", f1_name))
        if metrics.get(f"{prefix}_{metric}") is not None
    ]
    model_index = yaml.safe_dump({"model-index": eval_results_to_model_index(model_name, eval_results)},
                                 sort_keys=False, allow_unicode=True).rstrip("\n") if eval_results else ""  # fmt: skip
    if run_args.model_card_language:
        languages = [s.strip() for s in run_args.model_card_language.split(",")]
    else:
        languages = ["multilingual"] if dataset_id == "udhr" else []
    tags = ["perceiver", "perceiver-byte", "byte-level", "text-classification", "custom_code"]
    tags += ["language-identification"] if dataset_id == "udhr" else []

    results = []
    for split, prefix in (("train", "train"), ("validation", "eval"), ("test", "test")):
        if split in split_sizes:
            scores = [metrics.get(f"{prefix}_{m}") for m in ("accuracy", "f1")]
            results.append((split, split_sizes[split], *("-" if s is None else f"{s:.4f}" for s in scores)))
    hyperparameters = {
        "learning_rate": args.learning_rate,
        "train_batch_size (per device)": args.per_device_train_batch_size,
        "devices (processes)": args.world_size,
        "gradient_accumulation_steps": args.gradient_accumulation_steps,
        "total_train_batch_size": args.per_device_train_batch_size * args.world_size * args.gradient_accumulation_steps,
        "num_train_epochs": args.num_train_epochs,
        "max_steps": args.max_steps,
        "optimizer": str(getattr(args.optim, "value", args.optim)),
        "weight_decay": args.weight_decay,
        "lr_scheduler_type": str(getattr(args.lr_scheduler_type, "value", args.lr_scheduler_type)),
        "warmup_steps": args.warmup_steps,
        "max_length (bytes incl. [CLS]/[SEP])": data_args.max_length,
        "truncation_side": data_args.truncation_side,
        "mixed_precision": "bf16" if args.bf16 else "fp16" if args.fp16 else "no (fp32)",
        "gradient_checkpointing": args.gradient_checkpointing,
        "seed": args.seed,
        "global_step": trainer.state.global_step,
    }
    architecture = {k: getattr(model.config, k) for k in CARD_ARCHITECTURE if hasattr(model.config, k)}
    position = architecture.get("position_encoding_type")
    versions = {"transformers": transformers.__version__, "torch": torch.__version__,
                "datasets": datasets.__version__, "evaluate": evaluate.__version__,
                "perceiver_byte": perceiver_byte.__version__}  # fmt: skip
    values = dict(
        license=json.dumps(run_args.model_card_license),
        language_block=("language:\n" + _yaml_list(languages) + "\n") if languages else "",
        tags_yaml=_yaml_list(tags),
        datasets_yaml=_yaml_list([dataset_id]),
        model_index_yaml=model_index,
        model_name=model_name,
        model_id=args.hub_model_id or str(args.output_dir),
        dataset_pretty=dataset_pretty,
        num_labels=len(labels.names),
        labels_preview=", ".join(f"`{n}`" for n in labels.names[:20]) + (" ..." if len(labels.names) > 20 else ""),
        problem=("multi-label (one sigmoid per label; a label is predicted when its score > 0.5)"
                 if labels.multi_label else "single-label (softmax over the labels)"),  # fmt: skip
        f1_name=f1_name,
        results_table=common.markdown_table(("split", "examples", "accuracy", f1_name.lower()), results),
        hyperparameters_table=common.markdown_table(
            ("hyper-parameter", "value"), [(k, f"`{v:.6g}`" if isinstance(v, float) else f"`{v}`")
                                           for k, v in hyperparameters.items()]),  # fmt: skip
        architecture_table=common.markdown_table(("config field", "value"), [(k, f"`{v}`") for k, v in architecture.items()]),
        num_parameters=f"{sum(p.numel() for p in model.parameters()):,}",
        max_length=data_args.max_length,
        truncation_side=data_args.truncation_side,
        train_runtime=f"{metrics.get('train_runtime', float('nan')):.1f}",
        command="python " + " ".join([os.path.relpath(__file__), *without_tokens(argv)]),
        versions=", ".join(f"{k} {v}" for k, v in versions.items()),
        base_model_note=(f"Fine-tuned from `{model_args.model_name_or_path}`." if model_args.model_name_or_path
                         else "Trained from scratch (random initialisation)."),  # fmt: skip
        position_note=(
            "Position encoding: none, so the model sees which bytes occur and how often, not their order (enough "
            "for language identification, not for tasks that depend on word order)."
            if position == "none" else f"Position encoding: {position}."
        ),  # fmt: skip
    )
    template = run_args.model_card_template
    try:
        return Path(template).read_text(encoding="utf-8").format(**values)
    except (KeyError, IndexError, ValueError) as err:
        raise UserError(f"--model_card_template {template}: bad placeholder ({err!r}); available placeholders: "
                        f"{sorted(values)} (write literal braces doubled).") from err  # fmt: skip


def _yaml_list(items) -> str:
    return "\n".join(f"- {json.dumps(str(i))}" for i in items)


def without_tokens(argv) -> list[str]:
    """The command line with any token argument's value replaced, for the model card."""
    out, hide = [], False
    for arg in map(str, argv):
        if hide:
            arg = "***"
        elif arg.startswith(("--hub_token=", "--token=")):
            arg = arg.split("=", 1)[0] + "=***"
        hide = arg in ("--hub_token", "--token")
        out.append(arg)
    return out


class PerceiverByteTrainer(Trainer):
    def _run_epoch(self, *args, **kwargs):
        # Resumed from the run's last checkpoint (killed after it, e.g. while evaluating): nothing is left to train.
        # Trainer 5.24 checks for the end only after a step, so it would train one step past --max_steps whenever
        # max_steps is not a whole number of epochs.
        if self.state.global_step >= self.state.max_steps > 0:
            return None
        return super()._run_epoch(*args, **kwargs)


# --------------------------------------------------------------------------------------------- main


def setup_logging(training_args: TrainingArguments) -> None:
    logging.basicConfig(format="%(asctime)s - %(levelname)s - %(name)s - %(message)s", datefmt="%H:%M:%S",
                        handlers=[logging.StreamHandler(sys.stderr)])  # fmt: skip
    level = training_args.get_process_log_level()
    logger.setLevel(level)
    datasets.utils.logging.set_verbosity(level)
    transformers.utils.logging.set_verbosity(level)
    transformers.utils.logging.enable_default_handler()
    transformers.utils.logging.enable_explicit_format()


def main(argv: list[str] | None = None, callbacks=()) -> dict[str, float]:
    """Train, evaluate, test, write the outputs and the model card, publish with --push_to_hub; -> all metrics.
    `callbacks`: more `TrainerCallback`s for the Trainer (the tests' per-rank weight hash, for one)."""
    argv = sys.argv[1:] if argv is None else list(argv)
    model_args, data_args, run_args, training_args = parse_args(argv)
    setup_logging(training_args)
    if training_args.fp16 and training_args.device.type == "cpu":
        # accelerate enables fp16 autocast (and its grad scaler) only on accelerators: on a CPU the run would train in
        # float32 while the outputs say fp16
        raise UserError("--fp16 does not apply on a CPU (accelerate would silently train in float32): use --bf16.")
    if run_args.early_stopping_patience is not None:
        changes = {} if training_args.load_best_model_at_end else {"load_best_model_at_end": True}
        if training_args.metric_for_best_model is None:
            changes.update(metric_for_best_model="accuracy", greater_is_better=True)
        if changes:
            logger.info("--early_stopping_patience: setting %s", changes)
            training_args = dataclasses.replace(training_args, **changes)
    logger.warning(
        "Process rank %s, world size %s, device %s, bf16 %s, fp16 %s", training_args.process_index,
        training_args.world_size, training_args.device, training_args.bf16, training_args.fp16,
    )  # fmt: skip
    if run_args.torch_num_threads is not None:
        torch.set_num_threads(run_args.torch_num_threads)
    with training_args.main_process_first(desc="checking the output dir", local=False):
        last_checkpoint = check_output_dir(training_args, run_args)
    if run_args.overwrite_output_dir and training_args.do_train and training_args.resume_from_checkpoint is None:
        with training_args.main_process_first(desc="clearing old checkpoints"):
            if training_args.process_index == 0:
                clear_old_checkpoints(training_args.output_dir)
    set_seed(training_args.seed)

    # ---- data
    with training_args.main_process_first(desc="loading the data"):
        raw, sources, dataset_id, dataset_pretty = load_raw_datasets(data_args, model_args)
    if "train" not in raw:
        raise UserError("No training split found.")
    text_column = detect_column(raw["train"], data_args.text_column, TEXT_COLUMN_CANDIDATES, "text", "--text_column",
                                sources["train"], exclude=data_args.label_column)  # fmt: skip
    label_column = detect_column(raw["train"], data_args.label_column, LABEL_COLUMN_CANDIDATES, "label",
                                 "--label_column", sources["train"], exclude=text_column)  # fmt: skip
    for split, ds in raw.items():
        for column, flag in ((text_column, "--text_column"), (label_column, "--label_column")):
            if column not in ds.column_names:
                raise UserError(f"{sources[split].description}: no column {column!r} (used for {split} as in train); "
                                f"its columns are {ds.column_names}. Rename it in the file, or pass {flag}.")  # fmt: skip
    labels = build_label_spec(raw, sources, label_column, data_args)
    for split, ds in raw.items():
        if not _is_text_feature(ds.features[text_column]):
            logger.warning("%s: column %r is %s, not text; converting it to strings.", sources[split].description,
                           text_column, ds.features[text_column])  # fmt: skip
            raw[split] = ds.cast_column(text_column, datasets.Value("string"))
    logger.info("Text column %r, label column %r, %d labels (%s), splits %s", text_column, label_column,
                len(labels.names), "multi-label" if labels.multi_label else "single-label",
                {k: len(v) for k, v in raw.items()})  # fmt: skip

    if "validation" not in raw and training_args.do_eval:
        train = raw["train"]
        raw["train"], raw["validation"] = carve_validation(
            train, label_column, data_args.validation_split_percentage, training_args.seed,
            stratify=not labels.multi_label and not labels.class_label,
        )  # fmt: skip
        sources["validation"] = SplitSource(f"validation split carved from {sources['train'].description}", "carved")
        logger.info("No validation split: held out %d of %d training examples (%.1f%%).", len(raw["validation"]),
                    len(train), data_args.validation_split_percentage)  # fmt: skip
    for split, limit in (("train", data_args.max_train_samples), ("validation", data_args.max_eval_samples),
                         ("test", data_args.max_predict_samples)):  # fmt: skip
        if limit is not None and split in raw:
            raw[split] = raw[split].select(range(min(limit, len(raw[split]))))

    # ---- model and tokenizer
    model, tokenizer = build_model(model_args, labels, training_args)
    for key, value in (("truncation_side", TRUNCATION_SIDES[data_args.truncation_side]),
                       ("model_max_length", data_args.max_length)):  # fmt: skip
        setattr(tokenizer, key, value)
        tokenizer.init_kwargs[key] = value  # what save_pretrained writes: predict.py tokenizes as in training
    label2id, multi, sep = labels.label2id, labels.multi_label, data_args.label_separator

    def preprocess(batch):
        encoded = tokenizer(["" if t is None else t for t in batch[text_column]], truncation=True,
                            max_length=data_args.max_length)  # fmt: skip
        if labels.class_label:  # ClassLabel ids, used as they are
            ids = [set(v) if multi else v for v in batch[label_column]]
        else:  # every value was checked in build_label_spec: row_label_keys raises nothing here
            keys = [row_label_keys(v, multi, sep, label_column) for v in batch[label_column]]
            ids = [{label2id[k] for k in row} if multi else label2id[row[0]] for row in keys]
        encoded["labels"] = [[float(i in row) for i in range(len(label2id))] for row in ids] if multi else ids
        return encoded

    with training_args.main_process_first(desc="tokenization"):
        processed = {
            split: ds.map(preprocess, batched=True, num_proc=data_args.preprocessing_num_workers,
                          remove_columns=ds.column_names, load_from_cache_file=not data_args.overwrite_cache,
                          desc=f"Tokenizing {split}")  # fmt: skip
            for split, ds in raw.items()
        }

    with training_args.main_process_first(desc="loading metrics"):
        accuracy, f1 = load_metrics(multi)
    callbacks = list(callbacks)
    if run_args.early_stopping_patience is not None:
        callbacks.append(EarlyStoppingCallback(run_args.early_stopping_patience, run_args.early_stopping_threshold))
    # Publishing is one push of the finished output at the end (scripts/push_to_hub.py), not Trainer's: Trainer would
    # contact the Hub in its constructor (an unreachable Hub would end the run before training), push checkpoints
    # mid-training and upload training_args.bin, which holds --hub_token.
    publish, training_args.push_to_hub = training_args.push_to_hub, False
    trainer = PerceiverByteTrainer(
        model=model,
        args=training_args,
        train_dataset=processed["train"] if training_args.do_train else None,
        eval_dataset=processed.get("validation") if training_args.do_eval else None,
        processing_class=tokenizer,
        data_collator=DataCollatorWithPadding(tokenizer, pad_to_multiple_of=data_args.pad_to_multiple_of),
        compute_metrics=make_compute_metrics(multi, accuracy, f1),
        callbacks=callbacks,
    )

    all_metrics: dict[str, float] = {}

    def record(prefix: str, metrics: dict, samples: int) -> None:
        metrics[f"{prefix}_samples"] = samples
        trainer.log_metrics(prefix, metrics)
        trainer.save_metrics(prefix, metrics)
        all_metrics.update(metrics)

    if training_args.do_train:
        result = trainer.train(resume_from_checkpoint=last_checkpoint)
        trainer.save_model()  # model, config, code files and tokenizer (main process only)
        record("train", dict(result.metrics), len(processed["train"]))
        trainer.save_state()
    if training_args.do_eval and "validation" in processed:
        record("eval", trainer.evaluate(processed["validation"], metric_key_prefix="eval"), len(processed["validation"]))
    if training_args.do_predict and "test" in processed:
        record("test", trainer.predict(processed["test"], metric_key_prefix="test").metrics, len(processed["test"]))
    elif training_args.do_predict:
        logger.info("No test split: skipping prediction.")

    if trainer.is_world_process_zero():
        card = render_model_card(trainer, model_args, data_args, run_args, labels, (dataset_id, dataset_pretty),
                                 all_metrics, {k: len(v) for k, v in processed.items()}, argv)  # fmt: skip
        Path(training_args.output_dir, "README.md").write_text(card, encoding="utf-8")
        logger.info("Model card written to %s", Path(training_args.output_dir, "README.md"))
        if publish:
            publish_output(training_args)
    return all_metrics


def publish_output(training_args: TrainingArguments) -> None:
    """Push the finished output_dir as one commit with scripts/push_to_hub.py (model, tokenizer, code, card; no
    checkpoints, logs or training_args.bin). A failure keeps the local output and says how to publish it later."""
    repo_id = training_args.hub_model_id or Path(training_args.output_dir).name
    if training_args.hub_token:
        os.environ["HF_TOKEN"] = training_args.hub_token  # push_to_hub.py reads the token from the environment only
    argv = [str(training_args.output_dir), repo_id, "--commit-message", "perceiver-byte: model, tokenizer, code, card"]
    if push_to_hub.main(argv + (["--private"] if training_args.hub_private_repo else [])) != 0:
        raise UserError(
            f"the model is saved in {training_args.output_dir}, but publishing it to {repo_id} failed (see above); "
            f"publish it later with: python scripts/push_to_hub.py {training_args.output_dir} {repo_id}"
        )


def end_distributed(succeeded: bool) -> None:
    """Tear the process group down in order, so that no rank aborts at exit ("terminate called without an active
    exception") after a run that worked. After a success the ranks first wait for each other (rank 0 may still be
    writing the model); after an error they cannot be relied on to arrive, so each leaves at once."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        if succeeded:
            dist.barrier()
        dist.destroy_process_group()


if __name__ == "__main__":
    sys.exit(common.run_cli(main, cleanup=end_distributed))
