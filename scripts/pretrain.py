#!/usr/bin/env python
"""Pretrain a Perceiver byte model by masked-byte language modelling, with the Hugging Face `Trainer`.

transformers' `run_mlm.py`, for bytes. The texts (or files) are joined by [SEP] and cut into windows of --max_length:
[CLS] bytes [SEP]. A collator masks spans of geometric length (mean --mean_span_length) covering --mlm_probability of
the bytes, or whole words (--whole_word_masking); as in BERT, a selected byte becomes [MASK] 80% of the time, a random
byte 10%, and stays 10%. A batch's masks are a function of --seed, the epoch and the batch's bytes, so that a resumed
run masks exactly as the uninterrupted one; the validation masks are drawn once, so that every evaluation scores the
same bytes. Data loading, output-dir checks and resuming are
train.py's (scripts/training_data.py, train.py). `--help` lists every argument.

Commands (from the repository root):

    # Default: the texts of the embedded UDHR data (data/udhr), a fresh model with PerceiverByteConfig()'s defaults.
    python scripts/pretrain.py --output_dir outputs/mlm-udhr --torch_num_threads 1

    # Local files: .txt (a file is one text), csv / tsv / json / jsonl / parquet (a text column: detected as in
    # train.py, or --text_column); all but parquet may be .gz. Without a validation file 5% of the windows are held out.
    python scripts/pretrain.py --output_dir outputs/mlm --train_file corpus.txt.gz --validation_file dev.txt

    # A folder of files of any kind, each read as raw bytes (optionally in train/ and validation/ folders).
    python scripts/pretrain.py --output_dir outputs/mlm-files --data_dir path/to/files

    # More data than memory: --streaming reads the files (or a Hub dataset) as training goes; needs --max_steps.
    python scripts/pretrain.py --output_dir outputs/mlm-big --streaming --max_steps 100000 \
        --train_file big.jsonl.gz --validation_file dev.jsonl --max_eval_samples 2000 \
        --eval_strategy steps --eval_steps 5000 --save_strategy steps --save_steps 5000

    # A Hub dataset (needs network) with single-byte masking and a bigger model; whole-word masking.
    python scripts/pretrain.py --output_dir outputs/mlm-wiki --dataset_name wikitext \
        --dataset_config_name wikitext-2-raw-v1 --mean_span_length 1 --config_overrides "num_latents=256,num_blocks=4"
    python scripts/pretrain.py --output_dir outputs/mlm-words --whole_word_masking

    # Resume: rerun with the same --output_dir (its last complete checkpoint); --overwrite_output_dir starts afresh.
    # Several processes or GPUs, as train.py: accelerate launch (or torchrun).
    accelerate launch --num_processes 4 --mixed_precision bf16 scripts/pretrain.py --output_dir outputs/mlm --bf16

    # Then fine-tune the encoder as a classifier, or fill in masked bytes.
    python scripts/train.py --output_dir outputs/udhr-ft --model_name_or_path outputs/mlm-udhr
    python -c 'from transformers import pipeline; print(pipeline("fill-mask", model="outputs/mlm-udhr",
        trust_remote_code=True)("All human beings are born free and equal in [MASK]ignity."))'

Outputs in --output_dir: the model (model.safetensors, config.json, code files) and the tokenizer, which reads
"[MASK]" in a text as the mask token (the fill-mask pipeline); all_results.json (and train/eval_results.json) with
eval_masked_accuracy (argmax = byte, over the masked bytes), eval_bits_per_byte (their mean cross-entropy in bits)
and train_bytes_per_second (real bytes: no padding, no [CLS]/[SEP]; this run's); trainer_state.json, runs/, checkpoints.
"""

from __future__ import annotations

import hashlib
import math
import sys
from dataclasses import dataclass, field
from pathlib import Path


REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:  # run from a checkout without `pip install -e .`
    sys.path.insert(0, str(REPO_ROOT))

import datasets  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from torch.nn.utils.rnn import pad_sequence  # noqa: E402
from transformers import (  # noqa: E402
    AutoModelForMaskedLM,
    AutoTokenizer,
    TrainerCallback,
    TrainingArguments,
    set_seed,
)

import common  # noqa: E402
import train  # noqa: E402  (imports perceiver_byte, which registers the Auto classes)
import training_data  # noqa: E402
from common import UserError  # noqa: E402
from perceiver_byte import PerceiverByteTokenizer  # noqa: E402
from train import ModelArguments  # noqa: E402


logger = train.logger.getChild("pretrain")  # train.setup_logging sets its level and handler

#: Script defaults for `TrainingArguments` (any of them can be given on the command line).
TRAINING_DEFAULTS = dict(
    do_train=True, do_eval=True, learning_rate=1e-3, num_train_epochs=2.0, per_device_train_batch_size=16,
    per_device_eval_batch_size=32, warmup_steps=0.06, weight_decay=0.01, lr_scheduler_type="linear",
    eval_strategy="epoch", save_strategy="epoch", save_total_limit=2, logging_steps=50, report_to="tensorboard",
    seed=42, ddp_find_unused_parameters=False,  # every parameter is used in each forward pass
)  # fmt: skip


@dataclass
class DataArguments:
    """What to pretrain on and how to mask it. Without --dataset_name / --train_file / --data_dir: the UDHR texts."""

    dataset_name: str | None = field(default=None, metadata={"help": "A dataset id on the Hub (`load_dataset`)."})
    dataset_config_name: str | None = field(default=None, metadata={"help": "The Hub dataset's config name."})
    train_split_name: str = field(default="train", metadata={"help": "Hub dataset: the training split."})
    validation_split_name: str | None = field(default=None, metadata={"help": "Hub dataset: the validation split."})
    train_file: str | None = field(
        default=None, metadata={"help": "A .txt (one text), .csv, .tsv, .json, .jsonl or .parquet file (or .gz)."}
    )
    validation_file: str | None = field(default=None, metadata={"help": "Validation file (same formats)."})
    data_dir: str | None = field(
        default=None, metadata={"help": "Folder of files (any depth), each read as raw bytes; or train/, validation/."}
    )
    text_column: str | None = field(
        default=None, metadata={"help": f"Default: detected among {training_data.TEXT_COLUMN_CANDIDATES}."}
    )
    max_length: int = field(default=1024, metadata={"help": "Bytes per window, including its [CLS] and [SEP]."})
    pad_to_multiple_of: int | None = field(default=None, metadata={"help": "Pad each batch to a multiple of this."})
    validation_split_percentage: float = field(
        default=5.0, metadata={"help": "Percent of the training windows held out when there is no validation split."}
    )
    max_train_samples: int | None = field(default=None, metadata={"help": "Use only the first N training windows."})
    max_eval_samples: int | None = field(default=None, metadata={"help": "Use only the first N validation windows."})
    streaming: bool = field(
        default=False, metadata={"help": "Read the data as training goes (larger than memory); needs --max_steps."}
    )
    preprocessing_num_workers: int | None = field(default=None, metadata={"help": "Processes for windowing."})
    overwrite_cache: bool = field(default=False, metadata={"help": "Redo the cached dataset preprocessing."})
    mlm_probability: float = field(default=0.15, metadata={"help": "Share of the bytes to mask (0 < p < 1)."})
    mean_span_length: float = field(default=3.0, metadata={"help": "Mean length of the masked spans (geometric)."})
    whole_word_masking: bool = field(
        default=False, metadata={"help": "Mask whole words (runs of non-space bytes) instead of spans."}
    )

    def __post_init__(self):
        p, span = self.mlm_probability, self.mean_span_length
        if not 0 < p < 1:
            raise UserError(f"--mlm_probability {p}: must be between 0 and 1 (exclusive), e.g. 0.15.")
        if span < 1:
            raise UserError(f"--mean_span_length {span}: must be at least 1 (byte).")
        if not self.whole_word_masking and p > span / (span + 1):
            raise UserError(f"--mlm_probability {p} with --mean_span_length {span}: spans need a byte between "
                            f"them, so at most {span / (span + 1):.3g} of the bytes can be masked; lower one of them.")
        if self.max_length < 3:
            raise UserError(f"--max_length {self.max_length}: use at least 3 ([CLS], one byte, [SEP]).")
        if not 0 < self.validation_split_percentage < 100:
            raise UserError("--validation_split_percentage must be in (0, 100).")


@dataclass
class RunArguments:
    """Output handling, as train.py's."""

    overwrite_output_dir: bool = field(
        default=False, metadata={"help": "Train afresh in an output dir of another run; default: resume from it."}
    )
    torch_num_threads: int | None = field(default=None, metadata={"help": "torch.set_num_threads(N) (busy box: 1)."})


# --------------------------------------------------------------------------------------------- data


def find_text_column(raw: dict, sources: dict, data_args: DataArguments) -> str:
    """The text column of train (given or detected), which every split must have, holding strings or bytes."""
    views = {split: training_data.stream_sample(ds, sources[split]) if isinstance(ds, datasets.IterableDataset) else ds
             for split, ds in raw.items()}  # fmt: skip
    column = training_data.detect_column(views["train"], data_args.text_column, training_data.TEXT_COLUMN_CANDIDATES,
                                         "text", "--text_column", sources["train"])  # fmt: skip
    for split, ds in views.items():
        where = sources[split].description
        if column not in ds.column_names:
            raise UserError(f"{where}: no column {column!r} (the text column of train); its columns are "
                            f"{ds.column_names}. Rename it in the file, or pass --text_column.")  # fmt: skip
        if not training_data._is_text_feature(ds.features[column]):
            raise UserError(f"{where}: column {column!r} holds {ds.features[column]}, not text or bytes; name the "
                            "text column with --text_column.")  # fmt: skip
    return column


def window(batch: dict, column: str, tokenizer, max_length: int, join_with_sep: bool) -> dict:
    """A batch of texts -> windows [CLS] <= max_length - 2 byte ids [SEP]: the texts' bytes end to end (with [SEP]
    between texts, unless they are the lines of a text file), cut into pieces; only the batch's last window is shorter."""
    texts = [t for t in batch[column] if t]  # None and empty texts add nothing
    if not texts:
        return {"input_ids": []}
    ids = tokenizer(texts, add_special_tokens=False, return_attention_mask=False, split_special_tokens=True,
                    verbose=False)  # no warning about texts longer than model_max_length: they are cut here
    sep = [tokenizer.sep_token_id] if join_with_sep else []
    flat = np.concatenate([np.asarray(row + sep, dtype=np.int64) for row in ids["input_ids"]])
    flat = flat[: len(flat) - len(sep)]  # nothing after the last text
    body = max_length - 2
    cls_id, sep_id = tokenizer.cls_token_id, tokenizer.sep_token_id
    return {"input_ids": [[cls_id, *flat[i : i + body].tolist(), sep_id] for i in range(0, len(flat), body)]}


def geometric(shape, mean: float, generator) -> torch.Tensor:
    """Lengths >= 1, geometric with this mean (all 1 for a mean of 1)."""
    if mean <= 1:
        return torch.ones(shape)
    return torch.empty(shape).geometric_(1 / mean, generator=generator)


@dataclass
class ByteSpanMaskingCollator:
    """Pads a batch of windows and masks it: input_ids, attention_mask and labels (the original id of each selected
    byte, -100 elsewhere). Never selects special tokens or padding. Rows that already have labels (the validation
    windows, masked once) are only padded. The masks come from a generator seeded by `seed`, `epoch` (set by
    `EpochCallback` as training enters each epoch) and a hash of the batch's ids: not from a running RNG state, which
    a resumed run could not restore exactly (accelerate fetches a batch ahead, before a checkpoint is written)."""

    tokenizer: PerceiverByteTokenizer
    mlm_probability: float = 0.15
    mean_span_length: float = 3.0
    whole_word_masking: bool = False
    mask_replace_prob: float = 0.8  # of the selected bytes: [MASK]; then random_replace_prob a random byte; else kept
    random_replace_prob: float = 0.1
    pad_to_multiple_of: int | None = None
    seed: int = 0
    epoch: int = 0

    def __post_init__(self):
        offset = self.tokenizer.byte_offset  # byte b has id b + offset
        self.byte_ids = (offset, offset + 256)
        self.special_ids = torch.tensor(self.tokenizer.all_special_ids)
        self.space_ids = torch.tensor(list(b" \t\n\v\f\r")) + offset

    def __call__(self, features: list[dict]) -> dict[str, torch.Tensor]:
        batch = self.pad(features)
        if "labels" not in batch:
            ids = batch["input_ids"]
            digest = hashlib.blake2b(ids.numpy().tobytes(), digest_size=8, key=f"{self.seed}/{self.epoch}".encode())
            generator = torch.Generator().manual_seed(int.from_bytes(digest.digest(), "little") >> 1)
            batch["input_ids"], batch["labels"] = self.mask(ids, batch["attention_mask"], generator)
        return batch

    def pad(self, features: list[dict]) -> dict[str, torch.Tensor]:
        lengths = torch.tensor([len(f["input_ids"]) for f in features])
        width = int(lengths.max())
        if self.pad_to_multiple_of:
            width = -(-width // self.pad_to_multiple_of) * self.pad_to_multiple_of
        batch = {"attention_mask": (torch.arange(width) < lengths[:, None]).long()}  # (B, M)
        for key, value in (("input_ids", self.tokenizer.pad_token_id), ("labels", -100)):
            if key in features[0]:
                rows = pad_sequence([torch.as_tensor(f[key]) for f in features], batch_first=True, padding_value=value)
                batch[key] = F.pad(rows, (0, width - rows.shape[1]), value=value)
        return batch

    def mask(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, generator: torch.Generator):
        """-> (masked input_ids, labels), both (B, M)."""
        maskable = attention_mask.bool() & ~torch.isin(input_ids, self.special_ids)  # (B, M)
        select = self._words if self.whole_word_masking else self._spans
        selected = select(input_ids, maskable, generator)
        labels = torch.where(selected, input_ids, -100)
        action = torch.rand(input_ids.shape, generator=generator)
        masked = input_ids.clone()
        masked[selected & (action < self.mask_replace_prob)] = self.tokenizer.mask_token_id
        randomised = selected & (action >= self.mask_replace_prob)
        randomised &= action < self.mask_replace_prob + self.random_replace_prob
        masked[randomised] = torch.randint(*self.byte_ids, (int(randomised.sum()),), generator=generator)
        return masked, labels

    def _spans(self, input_ids, maskable, generator):
        # Over each row's maskable bytes in order: alternating runs, spans of geometric length with mean L and gaps
        # of mean L(1 - p)/p, the first a span with probability p: a share p of the bytes is in a span, and each span
        # has its own length (spans never touch, so none merge into longer ones).
        B, M = input_ids.shape
        p, L = self.mlm_probability, self.mean_span_length
        is_span = (torch.arange(M) % 2 == 0) == (torch.rand((B, 1), generator=generator) < p)  # (B, M): run k a span?
        runs = torch.where(is_span, geometric((B, M), L, generator), geometric((B, M), L * (1 - p) / p, generator))
        ends = runs.double().cumsum(1)  # (B, M): where run k ends; M runs of >= 1 cover any row
        rank = (maskable.cumsum(1) - 1).double()  # (B, M): each byte's index among the row's maskable bytes
        run = torch.searchsorted(ends, rank, right=True).clamp(max=M - 1)  # (B, M): the run a byte falls in
        return maskable & is_span.gather(1, run)

    def _words(self, input_ids, maskable, generator):
        # A word is a run of maskable non-space bytes; each is selected whole, with probability p, by its first byte's
        # draw (propagated to the word's bytes through the position of the last word start).
        in_word = maskable & ~torch.isin(input_ids, self.space_ids)  # (B, M)
        starts = in_word & ~F.pad(in_word[:, :-1], (1, 0), value=False)
        positions = torch.arange(input_ids.shape[1]).expand_as(input_ids)
        word_start = torch.where(starts, positions, 0).cummax(1).values  # (B, M)
        draw = torch.rand(input_ids.shape, generator=generator)
        return in_word & (draw.gather(1, word_start) < self.mlm_probability)

    def fixed_masks(self, batch: dict, indices: list[int], seed: int) -> dict:
        """For `Dataset.map(batched=True, with_indices=True)`: mask rows once, from a generator seeded by the seed and
        the batch's first index (the same masks however often, and in whatever order, the rows are read)."""
        padded = self.pad([{"input_ids": ids} for ids in batch["input_ids"]])
        generator = torch.Generator().manual_seed(seed + (indices[0] if indices else 0))
        masked, labels = self.mask(padded["input_ids"], padded["attention_mask"], generator)
        lengths = padded["attention_mask"].sum(1).tolist()
        return {"input_ids": [row[:n] for row, n in zip(masked.tolist(), lengths)],
                "labels": [row[:n] for row, n in zip(labels.tolist(), lengths)]}  # fmt: skip


# --------------------------------------------------------------------------------------------- metrics, trainer


def per_byte_predictions(logits, labels):
    """`preprocess_logits_for_metrics`: of the (B, M, 262) logits keep, per byte, the argmax and the cross-entropy of
    the label (nats; 0 where it is -100), so that evaluation gathers (B, M) numbers, not the logits."""
    logits = logits[0] if isinstance(logits, tuple) else logits
    nll = F.cross_entropy(logits.transpose(1, 2).float(), labels, ignore_index=-100, reduction="none")
    return logits.argmax(-1), nll


def compute_metrics(prediction) -> dict[str, float]:
    """Over all the masked bytes of the split (not Trainer's eval_loss, a mean of batch means)."""
    argmax, nll = prediction.predictions
    labels = prediction.label_ids
    scored = labels != -100
    return {"masked_accuracy": float((argmax[scored] == labels[scored]).mean()),
            "bits_per_byte": float(nll[scored].mean() / math.log(2)), "masked_bytes": int(scored.sum())}  # fmt: skip


class EpochCallback(TrainerCallback):
    """Tells the collator which epoch it masks for (a resumed run enters its epoch again), so that each epoch masks a
    window anew."""

    def __init__(self, collator: ByteSpanMaskingCollator):
        self.collator, self.epoch = collator, None

    def on_epoch_begin(self, args, state, control, **kwargs):
        # The first epoch this run enters is state.epoch's (a resumed run's); each later one is the next. Not read from
        # state.epoch after the first: for a stream it counts toward max_steps, not passes over the data.
        self.epoch = int(state.epoch or 0) if self.epoch is None else self.epoch + 1
        self.collator.epoch = self.epoch


class PretrainTrainer(train.PerceiverByteTrainer):
    """train.py's Trainer, counting the real bytes it trains on (no padding, no [CLS]/[SEP]) on the device."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.frame_ids = torch.tensor([self.processing_class.cls_token_id, self.processing_class.sep_token_id])
        self.bytes_trained = torch.zeros((), dtype=torch.int64, device=self.args.device)

    def training_step(self, model, inputs, *args, **kwargs):
        ids = inputs["input_ids"]
        real = inputs["attention_mask"].bool() & ~torch.isin(ids, self.frame_ids.to(ids.device))
        self.bytes_trained += real.sum().to(self.bytes_trained.device)
        return super().training_step(model, inputs, *args, **kwargs)


def build_model(model_args: ModelArguments, training_args: TrainingArguments):
    """-> (model, tokenizer): --model_name_or_path with a masked-LM head (new if it has none), or a fresh model."""
    hub = dict(cache_dir=model_args.cache_dir, revision=model_args.model_revision, token=model_args.token,
               trust_remote_code=model_args.trust_remote_code)  # fmt: skip
    extra = {"attn_implementation": model_args.attn_implementation} if model_args.attn_implementation else {}
    name = model_args.model_name_or_path
    if not name:
        config = train.fresh_config(model_args)
        set_seed(training_args.seed)  # the initial weights depend on the seed only
        return AutoModelForMaskedLM.from_config(config, **extra), PerceiverByteTokenizer()
    if model_args.config_overrides or model_args.config_name:
        raise UserError("--config_name/--config_overrides shape a fresh model; they cannot change the architecture "
                        "of --model_name_or_path. Drop one of them.")  # fmt: skip
    try:
        model = AutoModelForMaskedLM.from_pretrained(name, ignore_mismatched_sizes=model_args.ignore_mismatched_sizes,
                                                     **hub, **extra)  # fmt: skip
        return model, AutoTokenizer.from_pretrained(name, **hub)
    except (OSError, ValueError) as err:
        raise UserError(f"--model_name_or_path {name}: could not be loaded ({err}).") from err


# --------------------------------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> dict[str, float]:
    """Pretrain, evaluate, write the model, tokenizer and metrics; -> all metrics."""
    argv = sys.argv[1:] if argv is None else list(argv)
    model_args, data_args, run_args, training_args = train.parse_args(
        argv, (ModelArguments, DataArguments, RunArguments, TrainingArguments), TRAINING_DEFAULTS, __doc__)
    train.setup_logging(training_args)
    last_checkpoint = train.start_run(training_args, run_args, data_args.streaming)

    # ---- data: texts -> windows of max_length
    with training_args.main_process_first(desc="loading the data"):
        raw, sources, _, _ = training_data.load_raw_datasets(data_args, model_args.cache_dir, model_args.token,
                                                             streaming=data_args.streaming, labelled=False)  # fmt: skip
    raw.pop("test", None)
    column = find_text_column(raw, sources, data_args)
    model, tokenizer = build_model(model_args, training_args)
    # The saved tokenizer reads "[MASK]" in a text as the mask token (the fill-mask pipeline); the data is tokenized
    # with split_special_tokens=True, so that such a string there stays its six bytes.
    for key, value in (("split_special_tokens", False), ("model_max_length", data_args.max_length)):
        setattr(tokenizer, key, value)
        tokenizer.init_kwargs[key] = value
    collator = ByteSpanMaskingCollator(tokenizer, data_args.mlm_probability, data_args.mean_span_length,
                                       data_args.whole_word_masking, pad_to_multiple_of=data_args.pad_to_multiple_of,
                                       seed=training_args.seed)  # fmt: skip

    def to_windows(split, ds):
        kwargs = dict(column=column, tokenizer=tokenizer, max_length=data_args.max_length,
                      join_with_sep=sources[split].kind != "txt")  # fmt: skip
        if isinstance(ds, datasets.IterableDataset):  # windowed as the Trainer reads it
            return ds.select_columns([column]).map(window, batched=True, fn_kwargs=kwargs, remove_columns=[column])
        return ds.map(window, batched=True, fn_kwargs=kwargs, remove_columns=ds.column_names,
                      num_proc=data_args.preprocessing_num_workers, load_from_cache_file=not data_args.overwrite_cache,
                      desc=f"Cutting {split} into windows")  # fmt: skip

    with training_args.main_process_first(desc="windowing"):
        windows = {split: to_windows(split, ds) for split, ds in raw.items()}
        if "validation" not in windows and training_args.do_eval:
            train_windows = windows["train"]
            if isinstance(train_windows, datasets.IterableDataset):
                raise UserError("--streaming: no validation split, and a stream cannot be carved: pass "
                                "--validation_file (Hub: --validation_split_name), or --do_eval false.")  # fmt: skip
            if len(train_windows) < 2:
                raise UserError(f"{sources['train'].description}: {len(train_windows)} window(s) of "
                                f"{data_args.max_length} bytes, too few to hold a validation split out: pass "
                                "--validation_file.")  # fmt: skip
            split = train_windows.train_test_split(test_size=data_args.validation_split_percentage / 100,
                                                   seed=training_args.seed)  # fmt: skip
            windows["train"], windows["validation"] = split["train"], split["test"]
        for split, limit in (("train", data_args.max_train_samples), ("validation", data_args.max_eval_samples)):
            ds = windows.get(split)
            if limit is not None and ds is not None:
                streamed = isinstance(ds, datasets.IterableDataset)
                windows[split] = ds.take(limit) if streamed else ds.select(range(min(limit, len(ds))))
        if "validation" in windows:  # masked once: every evaluation scores the same bytes
            validation = windows["validation"]
            kwargs = {} if isinstance(validation, datasets.IterableDataset) else {"desc": "Masking validation"}
            windows["validation"] = validation.map(collator.fixed_masks, batched=True, with_indices=True,
                                                   fn_kwargs={"seed": training_args.seed}, **kwargs)  # fmt: skip

    logger.info("Windows of up to %d bytes: %s", data_args.max_length,
                {k: len(v) if isinstance(v, datasets.Dataset) else "streamed" for k, v in windows.items()})  # fmt: skip

    # Publishing is one push of the finished output (scripts/push_to_hub.py), as in train.py.
    publish, training_args.push_to_hub = training_args.push_to_hub, False
    trainer = PretrainTrainer(
        model=model,
        args=training_args,
        train_dataset=windows["train"] if training_args.do_train else None,
        eval_dataset=windows.get("validation") if training_args.do_eval else None,
        processing_class=tokenizer,
        data_collator=collator,
        compute_metrics=compute_metrics,
        preprocess_logits_for_metrics=per_byte_predictions,
        callbacks=[EpochCallback(collator)],
    )

    all_metrics: dict[str, float] = {}

    def record(prefix: str, metrics: dict, split: str) -> None:
        if isinstance(windows[split], datasets.Dataset):
            metrics[f"{prefix}_samples"] = len(windows[split])
        trainer.log_metrics(prefix, metrics)
        trainer.save_metrics(prefix, metrics)
        all_metrics.update(metrics)

    if training_args.do_train:
        result = trainer.train(resume_from_checkpoint=last_checkpoint)
        trainer.save_model()  # model, config, code files and tokenizer (main process only)
        metrics = dict(result.metrics)
        metrics["train_bytes"] = int(trainer.accelerator.reduce(trainer.bytes_trained, reduction="sum"))
        metrics["train_bytes_per_second"] = round(metrics["train_bytes"] / max(metrics["train_runtime"], 1e-9), 1)
        record("train", metrics, "train")
        trainer.save_state()
    if training_args.do_eval and "validation" in windows:
        record("eval", trainer.evaluate(metric_key_prefix="eval"), "validation")
    trainer.close_loggers()
    if publish and trainer.is_world_process_zero():
        train.publish_output(training_args)
    return all_metrics


if __name__ == "__main__":
    sys.exit(common.run_cli(main, cleanup=train.end_distributed))
