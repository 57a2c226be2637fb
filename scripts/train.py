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
    # For files the defaults are --max_length 1024 --truncation_side head+tail (texts: 256, head+tail).
    python scripts/train.py --output_dir outputs/files --data_dir path/to/files

    # Data larger than memory: --streaming reads the files (or a Hub dataset) as training goes, and needs --max_steps
    # and a validation split (--label_set a,b,c saves the first pass that finds the label set).
    python scripts/train.py --output_dir outputs/big --streaming --max_steps 20000 \
        --train_file big.jsonl.gz --validation_file dev.jsonl --max_eval_samples 5000 \
        --eval_strategy steps --eval_steps 2000 --save_strategy steps --save_steps 2000

    # A Hub dataset (needs network): name, config and split names.
    python scripts/train.py --output_dir outputs/imdb --dataset_name stanfordnlp/imdb --test_split_name test

    # Fine-tune a trained model (an output dir or a Hub id); a different label set needs --ignore_mismatched_sizes.
    python scripts/train.py --output_dir outputs/udhr-ft --model_name_or_path outputs/udhr --learning_rate 3e-4

    # Fine-tune a pretrained encoder (scripts/pretrain.py's output, or any PerceiverByte checkpoint without a sequence
    # classifier): its encoder weights load, the classifier head is new; the log lists both.
    python scripts/train.py --output_dir outputs/udhr-from-mlm --model_name_or_path outputs/mlm

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
import dataclasses
import functools
import json
import logging
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
import push_to_hub  # noqa: E402
import training_data  # noqa: E402
from common import TRUNCATION_SIDES, UserError  # noqa: E402
from perceiver_byte import PerceiverByteConfig, PerceiverByteTokenizer  # noqa: E402
from training_data import LabelSpec  # noqa: E402


logger = logging.getLogger("perceiver_byte.train")
SEQUENCE_CLASSIFIER = "PerceiverByteForSequenceClassification"

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


# What an example keeps when --max_length / --truncation_side are not given: bytes for texts and for the files of
# --data_dir, and, of a longer example, half of them from each end (docs/accuracy.md: the start and the end of a
# document, a file's header and trailer)
DEFAULT_MAX_LENGTH = {"text": 256, "files": 1024}
DEFAULT_TRUNCATION_SIDE = "head+tail"


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
        default=None, metadata={"help": f"Column with the text/bytes (default: detected among {training_data.TEXT_COLUMN_CANDIDATES})."}
    )
    label_column: str | None = field(
        default=None, metadata={"help": f"Column with the label(s) (default: detected among {training_data.LABEL_COLUMN_CANDIDATES})."}
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
                          f"{DEFAULT_MAX_LENGTH['text']} for texts, {DEFAULT_MAX_LENGTH['files']} for the files of "
                          "--data_dir."},
    )  # fmt: skip
    truncation_side: str | None = field(
        default=None,
        metadata={"help": "What a longer example keeps: 'head' (its start), 'tail' (its end) or 'head+tail' "
                          f"(half of the budget from each end). Default: {DEFAULT_TRUNCATION_SIDE}: a document's "
                          "subject shows at both ends (a title and a signature, a file's header and trailer); on "
                          "man pages and two topic stand-ins it beat 'head' (docs/accuracy.md).",
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
    streaming: bool = field(
        default=False,
        metadata={"help": "Read --train_file/--validation_file/--test_file or --dataset_name as a stream "
                          "(`load_dataset(..., streaming=True)`), tokenized as training reads it: data larger than "
                          "memory. Needs --max_steps and a validation split (or --do_eval false); the label set is "
                          "--label_set, or else read from one pass over train's label column."},
    )  # fmt: skip
    label_set: str | None = field(
        default=None,
        metadata={"help": "Comma-separated label set, in id order (default: every label of the training data, "
                          "sorted). With --streaming it saves the pass over the training data."},
    )  # fmt: skip
    preprocessing_num_workers: int | None = field(default=None, metadata={"help": "Processes for tokenization."})
    overwrite_cache: bool = field(default=False, metadata={"help": "Redo the cached dataset preprocessing."})

    def __post_init__(self):
        if self.max_length is None:
            self.max_length = DEFAULT_MAX_LENGTH["files" if self.data_dir else "text"]
        if self.truncation_side is None:
            self.truncation_side = DEFAULT_TRUNCATION_SIDE
        if self.max_length < 3:
            raise UserError(f"--max_length {self.max_length}: use at least 3 ([CLS], one byte, [SEP]).")
        if not 0 < self.validation_split_percentage < 100:
            raise UserError("--validation_split_percentage must be in (0, 100).")
        if self.label_set is not None:
            names = [n.strip() for n in self.label_set.split(",")]
            if "" in names or len(set(names)) != len(names) or len(names) < 2 - self.multi_label:
                raise UserError(f"--label_set {self.label_set!r}: give distinct, non-empty names separated by "
                                "commas, at least 2 (1 with --multi_label).")  # fmt: skip


#: The embedding tables' learning rate over the rest's, unless --embedding_learning_rate is given (docs/accuracy.md).
EMBEDDING_LEARNING_RATE_SCALE = 10


@dataclass
class RunArguments:
    """Output handling, early stopping, the embedding tables' learning rate and the model card."""

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
    embedding_learning_rate: float | None = field(
        default=None,
        metadata={"help": f"Learning rate of the embedding tables (bytes, hashed n-grams, learned positions). Default: "
                          f"{EMBEDDING_LEARNING_RATE_SCALE} x --learning_rate. A row of the n-gram table learns only "
                          f"in the steps whose batch holds its n-gram; at 10x man pages gained 1.1 points of "
                          f"accuracy, UDHR 0.3, a 71-class task of 4 to 625 examples a class 0.6 and 0.056 of "
                          f"macro-F1 (mean of 3 seeds; docs/accuracy.md)."},
    )  # fmt: skip
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
        if self.embedding_learning_rate is not None and not self.embedding_learning_rate > 0:
            raise UserError(f"--embedding_learning_rate must be above 0, got {self.embedding_learning_rate}.")


class _HelpFormatter(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """Defaults in the help, and the module docstring (with its commands) kept as written."""


def parse_args(argv: list[str] | None, dataclass_types=None, defaults=None, description: str | None = None):
    """The script's arguments (`argv`, or one .json file of them) -> its dataclasses, as train.py's by default;
    pretrain.py passes its own dataclasses, TrainingArguments defaults and help text."""
    parser = HfArgumentParser(dataclass_types or (ModelArguments, DataArguments, RunArguments, TrainingArguments))
    parser.description = description or __doc__  # the commands above, verbatim
    parser.formatter_class = _HelpFormatter
    parser.set_defaults(**(defaults or TRAINING_DEFAULTS))
    if not torch.accelerator.is_available():  # no CUDA, ROCm, XPU, MPS, ...
        # Without a GPU, TrainingArguments refuses --bf16/--fp16 unless --use_cpu: on a CPU-only machine it is the
        # only choice anyway, and it makes bf16 (and fp16) autocast work on the CPU.
        parser.set_defaults(use_cpu=True, dataloader_pin_memory=False)
    argv = sys.argv[1:] if argv is None else list(argv)
    if len(argv) == 1 and argv[0].endswith(".json"):
        return parser.parse_json_file(json_file=os.path.abspath(argv[0]))
    return parser.parse_args_into_dataclasses(args=argv)


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
    if SEQUENCE_CLASSIFIER not in (config.architectures or []):  # a pretrained encoder: the head is new anyway
        return config, model_args.ignore_mismatched_sizes
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


def report_loading(name: str, model, info: dict) -> None:
    """Log which weights came from the checkpoint and which are new; refuse one whose encoder does not fit."""
    heads = model._head_prefixes
    for kind, keys in (("lack encoder weights", info["missing_keys"]), ("hold weights the encoder lacks",
                                                                       info["unexpected_keys"])):  # fmt: skip
        body = sorted(k for k in keys if not k.startswith(heads))
        if body:
            raise UserError(f"--model_name_or_path {name}: its weights {kind}: {body[:5]}; it is not a "
                            "PerceiverByte checkpoint of this architecture.")  # fmt: skip
    new = set(info["missing_keys"]) | {key for key, *_ in info["mismatched_keys"]}
    loaded = [n for n in model.state_dict() if n not in new]
    logger.warning("Loaded %d weight tensors from %s; initialised anew: %s; left unused: %s", len(loaded), name,
                   sorted(new) or "none", sorted(info["unexpected_keys"]) or "none")  # fmt: skip


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
        model, info = AutoModelForSequenceClassification.from_pretrained(
            name, config=config, ignore_mismatched_sizes=mismatch, output_loading_info=True, **hub, **extra
        )  # fmt: skip
        report_loading(name, model, info)
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
        "embedding_learning_rate": trainer.embedding_learning_rate,
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


def embedding_learning_rate(run_args: RunArguments, training_args: TrainingArguments) -> float:
    if run_args.embedding_learning_rate is not None:
        return run_args.embedding_learning_rate
    return EMBEDDING_LEARNING_RATE_SCALE * training_args.learning_rate


class PerceiverByteTrainer(Trainer):
    """Trainer whose optimizer gives the embedding tables their own learning rate (`embedding_learning_rate`; None:
    the same as the rest)."""

    def __init__(self, *args, embedding_learning_rate: float | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.embedding_learning_rate = embedding_learning_rate

    def create_optimizer(self, model=None):
        if self.optimizer is not None or self.embedding_learning_rate is None:
            return super().create_optimizer(model)
        optimizer = super().create_optimizer(model)
        model = self.model if model is None else model
        tables = {id(m.weight) for m in model.modules() if isinstance(m, torch.nn.Embedding)}
        for group in list(optimizer.param_groups):  # each of Trainer's groups (decay, no decay) splits in two
            moved = [p for p in group["params"] if id(p) in tables]
            if moved:
                group["params"] = [p for p in group["params"] if id(p) not in tables]
                optimizer.add_param_group({**group, "params": moved, "lr": self.embedding_learning_rate})
        return optimizer

    def close_loggers(self) -> None:
        """Close the TensorBoard writer that an evaluate() after training opens (Trainer closed the first one when
        training ended), so that its events reach the disk also when a distributed run leaves by os._exit."""
        for callback in self.callback_handler.callbacks:
            if getattr(callback, "tb_writer", None) is not None:
                callback.tb_writer.close()
                callback.tb_writer = None

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


def start_run(training_args: TrainingArguments, run_args, streaming: bool) -> str | None:
    """What train.py and pretrain.py do before they read data: refuse fp16 on a CPU and a stream without --max_steps,
    set the threads, check the output dir (-> the checkpoint to resume from, or None), clear its old checkpoints with
    --overwrite_output_dir, seed."""
    if streaming and training_args.do_train and training_args.max_steps <= 0:
        raise UserError("--streaming needs --max_steps N: a stream has no length, so the run cannot count epochs.")
    if training_args.fp16 and training_args.device.type == "cpu":
        # accelerate enables fp16 autocast (and its grad scaler) only on accelerators: on a CPU the run would train in
        # float32 while the outputs say fp16
        raise UserError("--fp16 does not apply on a CPU (accelerate would silently train in float32): use --bf16.")
    if run_args.torch_num_threads is not None:
        torch.set_num_threads(run_args.torch_num_threads)
    with training_args.main_process_first(desc="checking the output dir", local=False):
        last_checkpoint = check_output_dir(training_args, run_args)
    if run_args.overwrite_output_dir and training_args.do_train and training_args.resume_from_checkpoint is None:
        with training_args.main_process_first(desc="clearing old checkpoints"):
            if training_args.process_index == 0:
                clear_old_checkpoints(training_args.output_dir)
    set_seed(training_args.seed)
    return last_checkpoint


def main(argv: list[str] | None = None, callbacks=()) -> dict[str, float]:
    """Train, evaluate, test, write the outputs and the model card, publish with --push_to_hub; -> all metrics.
    `callbacks`: more `TrainerCallback`s for the Trainer (the tests' per-rank weight hash, for one)."""
    argv = sys.argv[1:] if argv is None else list(argv)
    model_args, data_args, run_args, training_args = parse_args(argv)
    setup_logging(training_args)
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
    last_checkpoint = start_run(training_args, run_args, data_args.streaming)

    # ---- data
    with training_args.main_process_first(desc="loading the data"):
        raw, sources, dataset_id, dataset_pretty = training_data.load_raw_datasets(
            data_args, model_args.cache_dir, model_args.token, streaming=data_args.streaming
        )  # fmt: skip
    raw, text_column, label_column, labels = training_data.prepare_columns(raw, sources, data_args)
    training_data.select_splits(raw, sources, label_column, labels, data_args, training_args.seed,
                                carve=training_args.do_eval)  # fmt: skip

    # ---- model and tokenizer
    model, tokenizer = build_model(model_args, labels, training_args)
    for key, value in (("truncation_side", TRUNCATION_SIDES[data_args.truncation_side]),
                       ("model_max_length", data_args.max_length),
                       ("split_special_tokens", True)):  # every byte is data (a pretrained one may read "[MASK]")  # fmt: skip
        setattr(tokenizer, key, value)
        tokenizer.init_kwargs[key] = value  # what save_pretrained writes: predict.py tokenizes as in training
    encode_labels = labels.encoder(label_column, data_args.label_separator)

    def preprocess(batch):
        encoded = tokenizer(["" if t is None else t for t in batch[text_column]], truncation=True,
                            max_length=data_args.max_length)  # fmt: skip
        encoded["labels"] = encode_labels(batch[label_column])
        return encoded

    def tokenize(split, ds):
        if isinstance(ds, datasets.IterableDataset):  # tokenized as the Trainer reads it
            columns = [text_column, label_column]
            return ds.select_columns(columns).map(preprocess, batched=True, remove_columns=columns)
        return ds.map(preprocess, batched=True, num_proc=data_args.preprocessing_num_workers,
                      remove_columns=ds.column_names, load_from_cache_file=not data_args.overwrite_cache,
                      desc=f"Tokenizing {split}")  # fmt: skip

    with training_args.main_process_first(desc="tokenization"):
        processed = {split: tokenize(split, ds) for split, ds in raw.items()}

    with training_args.main_process_first(desc="loading metrics"):
        accuracy, f1 = load_metrics(labels.multi_label)
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
        compute_metrics=make_compute_metrics(labels.multi_label, accuracy, f1),
        callbacks=callbacks,
        embedding_learning_rate=embedding_learning_rate(run_args, training_args),
    )

    all_metrics: dict[str, float] = {}

    @functools.cache
    def examples(split: str) -> int:
        """A split's size; a stream's is the examples trained on (train) or counted by reading the split again."""
        if isinstance(processed[split], datasets.Dataset):
            return len(processed[split])
        if split == "train":
            args = trainer.args
            return trainer.state.global_step * args.train_batch_size * args.gradient_accumulation_steps * args.world_size
        return sum(len(batch[label_column]) for batch in raw[split].select_columns([label_column]).iter(1000))

    def record(prefix: str, metrics: dict, split: str) -> None:
        metrics[f"{prefix}_samples"] = examples(split)
        trainer.log_metrics(prefix, metrics)
        trainer.save_metrics(prefix, metrics)
        all_metrics.update(metrics)

    if training_args.do_train:
        result = trainer.train(resume_from_checkpoint=last_checkpoint)
        trainer.save_model()  # model, config, code files and tokenizer (main process only)
        record("train", dict(result.metrics), "train")
        trainer.save_state()
    if training_args.do_eval and "validation" in processed:
        record("eval", trainer.evaluate(processed["validation"], metric_key_prefix="eval"), "validation")
    if training_args.do_predict and "test" in processed:
        record("test", trainer.predict(processed["test"], metric_key_prefix="test").metrics, "test")
    elif training_args.do_predict:
        logger.info("No test split: skipping prediction.")
    trainer.close_loggers()

    if trainer.is_world_process_zero():
        card = render_model_card(trainer, model_args, data_args, run_args, labels, (dataset_id, dataset_pretty),
                                 all_metrics, {split: examples(split) for split in processed}, argv)  # fmt: skip
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
    """End a distributed run so that the launcher reports what the run did. After a success the ranks first wait
    for each other (rank 0 may still be writing the model), tear the process group down, and leave without the
    interpreter's teardown: a rank aborted there once ("terminate called without an active exception", SIGABRT)
    even after an orderly destroy_process_group (docs/reliability.md, D2), so that a run that worked exited 1.
    After an error the ranks cannot be relied on to arrive, so each destroys its group and fails normally."""
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()):
        return
    if not succeeded:
        dist.destroy_process_group()
        return
    dist.barrier()
    dist.destroy_process_group()
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


if __name__ == "__main__":
    sys.exit(common.run_cli(main, cleanup=end_distributed))
