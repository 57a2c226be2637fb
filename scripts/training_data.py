"""The training data of scripts/train.py (and the files of scripts/baseline.py and scripts/pretrain.py): read, checked
and labelled.

Sources: local files (csv / tsv / json / jsonl / parquet; json, jsonl, csv and tsv may be .gz; a CSV that is not
UTF-8 keeps its exact bytes), a folder of binary files with one sub-folder per label (--data_dir), a Hub dataset, or
the embedded UDHR data. Unlabelled data (pretrain.py, `labelled=False`) may also be .txt files and a --data_dir of
files in any layout. Every split goes through `datasets`: a `Dataset`, or with `streaming=True` an
`IterableDataset` that reads its files as it goes, so that data larger than memory can be trained on.

Bad input is a `UserError` naming the file, row or column and the fix, raised before any training.
"""

from __future__ import annotations

import csv
import gzip
import io
import logging
import math
import os
from dataclasses import dataclass
from pathlib import Path

import datasets
import numpy as np

import predict
from common import UserError


logger = logging.getLogger("perceiver_byte.train.data")  # a child of train.py's logger: its level and handler

DEFAULT_DATA_DIR = Path(__file__).resolve().parent.parent / "data" / "udhr"
TEXT_COLUMN_CANDIDATES = ("text", "sentence", "content", "document", "bytes", "data", "input", "review")
LABEL_COLUMN_CANDIDATES = ("label", "labels", "class", "category", "target")
SPLIT_ALIASES = {"train": ("train",), "validation": ("validation", "valid", "dev", "val"), "test": ("test",)}
FILE_KINDS = {".csv": "csv", ".tsv": "tsv", ".json": "json", ".jsonl": "jsonl", ".parquet": "parquet"}
#: Unlabelled data may also be plain text: one row per line, its line break kept (the rows joined are the file).
TEXT_FILE_KINDS = FILE_KINDS | {".txt": "txt"}
#: The `datasets` builder and its arguments for each kind of file.
BUILDERS = {"csv": ("csv", {}), "tsv": ("csv", {"sep": "\t"}), "json": ("json", {}), "jsonl": ("json", {}),
            "parquet": ("parquet", {}), "txt": ("text", {"keep_linebreaks": True})}  # fmt: skip
#: Rows read from each split of a stream to find its columns and their types.
STREAM_SAMPLE_ROWS = 1000


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


# --------------------------------------------------------------------------------------------- files


def _listed(items, last_word: str = "or") -> str:
    *most, last = items
    return f"{', '.join(most)} {last_word} {last}" if most else last


def data_file_kind(path_str: str, flag: str, kinds: dict = FILE_KINDS) -> tuple[str, bool]:
    """-> (kind, gzipped) of a data file, with clear errors for a missing, unsupported or empty (0 bytes) file."""
    path = Path(path_str)
    if not path.is_file():
        raise UserError(f"{flag} {path_str}: no such file. Check the path (relative paths start from {os.getcwd()}).")
    suffixes = [s.lower() for s in path.suffixes]
    compressed = suffixes[-1:] == [".gz"]
    kind = kinds.get(suffixes[-2 if compressed else -1] if len(suffixes) > compressed else "")
    if kind is None or (kind == "parquet" and compressed):
        gzippable = [k for k in kinds if k != ".parquet"]
        raise UserError(
            f"{flag} {path_str}: unsupported file type. Use {_listed(list(kinds))} "
            f"({_listed(gzippable, 'and')} may be gzipped, e.g. train.jsonl.gz)."
        )
    if path.stat().st_size == 0:
        raise UserError(f"{flag} {path_str} is empty (0 bytes): it needs a header/records and at least one example.")
    return kind, compressed


def load_data_file(path_str: str, split: str, kinds: dict = FILE_KINDS) -> tuple[datasets.Dataset, SplitSource]:
    """One data file -> a Dataset, with clear errors for a missing, empty, unsupported or undecodable file."""
    flag = f"--{split}_file"
    kind, compressed = data_file_kind(path_str, flag, kinds)
    path = Path(path_str)
    if kind == "parquet":
        ds = _load_with_datasets(kind, path, flag)
    else:
        try:
            with gzip.open(path, "rb") if compressed else open(path, "rb") as f:
                raw = f.read()
        except (OSError, EOFError) as err:
            raise UserError(f"{flag} {path_str}: cannot read it ({err}); is it a valid {'gzip ' if compressed else ''}file?")
        if not raw.strip():
            raise UserError(f"{flag} {path_str} is empty (only whitespace): it needs at least one example.")
        if kind in ("csv", "tsv"):
            try:
                raw.decode("utf-8")
            except UnicodeDecodeError as err:
                ds = load_non_utf8_csv(raw, BUILDERS[kind][1].get("sep", ","), err, path_str, flag)
            else:
                ds = _load_with_datasets(kind, path, flag)
        else:
            ds = _load_with_datasets(kind, path, flag)
    if len(ds) == 0:
        raise UserError(f"{flag} {path_str} has no rows (a header alone is not data): add at least one example.")
    return ds, SplitSource(f"{split} file {path_str}", kind)


def stream_data_file(path_str: str, split: str,
                     kinds: dict = FILE_KINDS) -> tuple[datasets.IterableDataset, SplitSource]:
    """One data file -> an IterableDataset that reads it as it is iterated (the file is checked as far as that can be
    done without reading it; `stream_sample` reads its first rows)."""
    kind, _ = data_file_kind(path_str, f"--{split}_file", kinds)
    builder, kwargs = BUILDERS[kind]
    ds = datasets.load_dataset(builder, data_files=str(path_str), split="train", streaming=True, **kwargs)
    return ds, SplitSource(f"{split} file {path_str}", kind)


def _read_error(err: Exception, what: str, builder: str) -> UserError:
    """A parser's error (the innermost of the exceptions datasets wraps it in) as a UserError naming the file."""
    cause = err
    while cause.__cause__ is not None:
        cause = cause.__cause__
    detail = f"{type(cause).__name__}: {cause}".strip()
    return UserError(f"{what}: could not be read as {builder} ({detail[:500]}). Fix the file's format.")


def _load_with_datasets(kind: str, path: Path, flag: str) -> datasets.Dataset:
    builder, kwargs = BUILDERS[kind]
    try:
        return datasets.load_dataset(builder, data_files=str(path), split="train", **kwargs)
    except Exception as err:  # datasets wraps parser errors in several exception types
        error = _read_error(err, f"{flag} {path}", builder)
        if "corresponds to no data" in str(error):  # e.g. a CSV with a header line only: no rows, as load_data_file says
            return datasets.Dataset.from_dict({})
        raise error from err


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


# --------------------------------------------------------------------------------------------- --data_dir


def _is_hidden(name: str) -> bool:
    return name.startswith((".", "__"))


def _data_dir_examples(entries, end_bytes):
    for path, label, size, _mtime in entries:
        yield {"text": predict.read_ends(path, size, end_bytes), "label": label, "path": path}


def visible_files(folder: Path) -> list[Path]:
    """Every file under `folder`, at any depth, sorted; hidden files and those in hidden folders left out."""
    return sorted(p for p in folder.rglob("*")
                  if p.is_file() and not any(map(_is_hidden, p.relative_to(folder).parts)))  # fmt: skip


def list_label_folders(root: Path, what: str):
    """-> ([(path, label, size, mtime)] of every file under root's label folders, the labels, the label folders). The
    sizes and mtimes are in the entries so that datasets' cache of `from_generator` notices an edited file."""
    classes = sorted(d for d in root.iterdir() if d.is_dir() and not _is_hidden(d.name))
    stray = [p.name for p in root.iterdir() if p.is_file() and not _is_hidden(p.name)]
    if stray:
        logger.warning("%s: ignoring %d file(s) outside the label folders (e.g. %s).", what, len(stray), stray[0])
    entries, empty = [], []
    for folder in classes:
        files = visible_files(folder)
        if not files:
            empty.append(folder.name)
        for p in files:
            st = p.stat()
            entries.append((str(p), folder.name, st.st_size, st.st_mtime_ns))
    if empty:
        logger.warning("%s: label folder(s) with no files are ignored: %s", what, ", ".join(empty))
    return entries, sorted({e[1] for e in entries}), classes


def split_folders(root: Path) -> dict[str, Path]:
    """split -> folder: train/, validation/ and test/ (or their SPLIT_ALIASES) when they are all that root holds,
    else {"train": root}."""
    subdirs = {d.name for d in root.iterdir() if d.is_dir() and not _is_hidden(d.name)}
    if "train" in subdirs and subdirs <= {alias for aliases in SPLIT_ALIASES.values() for alias in aliases}:
        return {split: root / name for split, name in pick_splits(subdirs, {}).items()}
    return {"train": root}


def load_data_dir(data_dir: str, end_bytes: int | None = None) -> tuple[dict, dict[str, SplitSource]]:
    root = Path(data_dir)
    if not root.is_dir():
        raise UserError(f"--data_dir {data_dir}: no such folder. It must hold one sub-folder per label.")
    raw, sources = {}, {}
    features = datasets.Features({"text": datasets.Value("binary"), "label": datasets.Value("string"),
                                  "path": datasets.Value("string")})  # fmt: skip
    for split, folder in split_folders(root).items():
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


def _byte_files(entries):
    for path, _size, _mtime in entries:
        yield {"text": Path(path).read_bytes(), "path": path}


def load_byte_files(data_dir: str) -> tuple[dict, dict[str, SplitSource]]:
    """Unlabelled --data_dir (pretrain.py): every file under it (at any depth, hidden ones aside) is one example, its
    bytes as they are; train/, validation/ and test/ folders, when they are all it holds, are the splits."""
    root = Path(data_dir)
    if not root.is_dir():
        raise UserError(f"--data_dir {data_dir}: no such folder.")
    raw, sources = {}, {}
    features = datasets.Features({"text": datasets.Value("binary"), "path": datasets.Value("string")})
    for split, folder in split_folders(root).items():
        files = visible_files(folder)
        if not files:
            raise UserError(f"--data_dir {folder} holds no files (hidden ones are skipped): add files to train on.")
        entries = [(str(p), st.st_size, st.st_mtime_ns) for p in files for st in [p.stat()]]  # the cache sees edits
        raw[split] = datasets.Dataset.from_generator(_byte_files, features=features, gen_kwargs={"entries": entries})
        sources[split] = SplitSource(f"{split} folder {folder}", "data_dir")
    return raw, sources


# --------------------------------------------------------------------------------------------- the sources


def pick_splits(available, given: dict, dataset: str | None = None) -> dict[str, str]:
    """split -> the name it has among `available`: the one `given` names (an error if absent), else the first of
    SPLIT_ALIASES present."""
    found = {}
    for split, aliases in SPLIT_ALIASES.items():
        name = given.get(split)
        match = next((n for n in ((name,) if name else aliases) if n in available), None)
        if match is not None:
            found[split] = match
        elif name:
            raise UserError(f"{dataset} has no split {name!r}; it has {list(available)}.")
    return found


def default_files() -> dict[str, str]:
    """The embedded UDHR data: split -> file."""
    return {s: str(DEFAULT_DATA_DIR / f"{s}.jsonl.gz") for s in ("train", "validation", "test")}


def load_raw_datasets(data_args, cache_dir: str | None = None, token: str | None = None, streaming: bool = False,
                      labelled: bool = True):  # fmt: skip
    """-> (dict split -> Dataset, dict split -> SplitSource, dataset id for the model card, pretty name). `data_args`:
    train.py's DataArguments (or pretrain.py's, which has no test split). With `streaming`, IterableDatasets that
    read their files or the Hub as they go. Unlabelled data may also be .txt files, and --data_dir any files."""
    test_file = getattr(data_args, "test_file", None)
    given = [n for n in ("dataset_name", "train_file", "data_dir") if getattr(data_args, n)]
    if len(given) > 1:
        raise UserError(f"Give only one data source, got {', '.join('--' + g for g in given)}.")
    if not given and (data_args.validation_file or test_file):
        raise UserError("--validation_file/--test_file need a --train_file too.")

    if data_args.data_dir:
        if streaming:
            raise UserError("--streaming reads data files (--train_file ...) or a Hub dataset (--dataset_name), "
                            "not --data_dir: drop --streaming, or write the examples to a csv/jsonl file.")
        if labelled:
            raw, sources = load_data_dir(data_args.data_dir, end_bytes=data_args.max_length)
        else:
            raw, sources = load_byte_files(data_args.data_dir)
        return raw, sources, Path(data_args.data_dir).resolve().name, f"binary files in {data_args.data_dir}"

    if data_args.dataset_name:
        name = data_args.dataset_name
        try:
            loaded = datasets.load_dataset(name, data_args.dataset_config_name, cache_dir=cache_dir, token=token,
                                           streaming=streaming)  # fmt: skip
        except Exception as err:
            raise UserError(f"--dataset_name {name}: could not be loaded ({err}).") from err
        wanted = {"train": data_args.train_split_name, "validation": data_args.validation_split_name,
                  "test": getattr(data_args, "test_split_name", None)}  # fmt: skip
        found = pick_splits(list(loaded), wanted, name)
        raw = {split: loaded[n] for split, n in found.items()}
        return raw, {split: SplitSource(f"split {n!r} of {name}") for split, n in found.items()}, name, name

    if data_args.train_file:
        files = {"train": data_args.train_file, "validation": data_args.validation_file, "test": test_file}
        name = Path(data_args.train_file).name.split(".")[0]
        pretty = "local files " + ", ".join(f"{k}={v}" for k, v in files.items() if v)
    else:
        files = default_files()
        name, pretty = "udhr", "UDHR language identification (data/udhr: 452 languages, paragraph level)"
    raw, sources = {}, {}
    kinds = FILE_KINDS if labelled else TEXT_FILE_KINDS
    for split, path in files.items():
        if path:
            raw[split], sources[split] = (stream_data_file if streaming else load_data_file)(path, split, kinds)
    return raw, sources, name, pretty


def stream_sample(ds: datasets.IterableDataset, source: SplitSource) -> datasets.Dataset:
    """The first rows of a stream as a Dataset (its columns and their types, for `detect_column` and the checks)."""
    try:
        rows = list(ds.take(STREAM_SAMPLE_ROWS))
    except Exception as err:  # the file is parsed only now
        raise _read_error(err, source.description, source.kind) from err
    if not rows:
        raise UserError(f"{source.description} has no rows (a header alone is not data): add at least one example.")
    return datasets.Dataset.from_list(rows, features=ds.features)


# --------------------------------------------------------------------------------------------- columns


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


def _as_strings(batch, column: str) -> dict:
    return {column: [None if v is None else str(v) for v in batch[column]]}


def _is_text_feature(feature) -> bool:
    return isinstance(feature, datasets.Value) and feature.dtype in ("string", "large_string", "binary", "large_binary")


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


# --------------------------------------------------------------------------------------------- labels


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

    def encoder(self, column: str, sep: str):
        """-> a function from a batch's label values to the model's labels: class ids, or one 0/1 float per label."""
        label2id, multi = self.label2id, self.multi_label

        def ids_of(keys):
            try:
                return [label2id[k] for k in keys]
            except KeyError as err:  # only a stream's rows reach here unchecked (see build_label_spec)
                raise UserError(f"label {err.args[0]!r} (column {column!r}) is not one of the {len(label2id)} labels "
                                f"{self.names[:5]}...: add it to --label_set.") from err  # fmt: skip

        def encode(values):
            if self.class_label:  # ClassLabel ids, used as they are
                ids = [set(v) if multi else v for v in values]
            else:  # the rows of a Dataset were checked in build_label_spec: row_label_keys raises nothing here
                ids = [ids_of(row_label_keys(v, multi, sep, column)) for v in values]
                ids = [set(row) if multi else row[0] for row in ids]
            return [[float(i in row) for i in range(len(label2id))] for row in ids] if multi else ids

        return encode


def scan_labels(values, split: str, source: SplitSource, column: str, multi: bool, sep: str, ds=None,
                seen=None) -> dict:  # fmt: skip
    """The label keys of every row of `values` (in order of appearance), each value checked; with `seen` (train's
    keys), a key it lacks is an error naming the row."""
    found: dict[str, None] = {}
    for index, value in enumerate(values):
        keys = row_label_keys(value, multi, sep, column, lambda: (source.description, source.row(index, ds)))
        if seen is not None and (unknown := [k for k in keys if k not in seen]):
            raise UserError(
                f"{source.description}: {source.row(index, ds)} has label {unknown[0]!r}, which the training "
                f"data never has (train has {len(seen)} labels, e.g. {sorted(seen)[:5]}). The model cannot "
                f"predict an unseen label: add training examples of it, or remove such rows from the {split} data."
            )
        found.update(dict.fromkeys(keys))
    return found


def build_label_spec(raw: dict, sources: dict, column: str, feature, data_args,
                     label_names: list[str] | None = None) -> LabelSpec:  # fmt: skip
    """The label set of the training split, after checking every label of every split (the errors name the row).

    A stream (IterableDataset) is read once, its label column only, and only the train split (memory: the label set);
    with `label_names` not at all. `feature`: the label column's type (a stream's, from its first rows)."""
    train = raw["train"]
    if isinstance(feature, datasets.ClassLabel):
        return LabelSpec(names=list(feature.names), multi_label=False, class_label=True)
    if isinstance(getattr(feature, "feature", None), datasets.ClassLabel):
        return LabelSpec(names=list(feature.feature.names), multi_label=True, class_label=True)
    multi = data_args.multi_label or isinstance(feature, (datasets.Sequence, datasets.List, list))
    sep = data_args.label_separator
    if label_names is not None:
        return LabelSpec(names=list(label_names), multi_label=multi)
    if isinstance(train, datasets.IterableDataset):
        values = (v for batch in train.select_columns([column]).iter(batch_size=1000) for v in batch[column])
        seen = scan_labels(values, "train", sources["train"], column, multi, sep)
    else:
        seen = scan_labels(train[column], "train", sources["train"], column, multi, sep, train)
        for split in ("validation", "test"):
            if split in raw:
                scan_labels(raw[split][column], split, sources[split], column, multi, sep, raw[split], seen)
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


def prepare_columns(raw: dict, sources: dict, data_args):
    """Find the text and label columns (in train; every split must have them), check the labels and make the text
    column text. -> (raw with text columns, text column, label column, LabelSpec). Streams are sampled for their
    columns and types (`stream_sample`)."""
    if "train" not in raw:
        raise UserError("No training split found.")
    views = {split: stream_sample(ds, sources[split]) if isinstance(ds, datasets.IterableDataset) else ds
             for split, ds in raw.items()}  # fmt: skip
    text_column = detect_column(views["train"], data_args.text_column, TEXT_COLUMN_CANDIDATES, "text", "--text_column",
                                sources["train"], exclude=data_args.label_column)  # fmt: skip
    label_column = detect_column(views["train"], data_args.label_column, LABEL_COLUMN_CANDIDATES, "label",
                                 "--label_column", sources["train"], exclude=text_column)  # fmt: skip
    for split, ds in views.items():
        for column, flag in ((text_column, "--text_column"), (label_column, "--label_column")):
            if column not in ds.column_names:
                raise UserError(f"{sources[split].description}: no column {column!r} (used for {split} as in train); "
                                f"its columns are {ds.column_names}. Rename it in the file, or pass {flag}.")  # fmt: skip
    names = [n.strip() for n in data_args.label_set.split(",")] if data_args.label_set else None
    labels = build_label_spec(raw, sources, label_column, views["train"].features[label_column], data_args, names)
    for split, ds in views.items():
        if not _is_text_feature(ds.features[text_column]):
            logger.warning("%s: column %r is %s, not text; converting it to strings.", sources[split].description,
                           text_column, ds.features[text_column])  # fmt: skip
            if isinstance(raw[split], datasets.IterableDataset):  # its types may be unknown: convert each value
                raw[split] = raw[split].map(_as_strings, batched=True, fn_kwargs={"column": text_column})
            else:
                raw[split] = ds.cast_column(text_column, datasets.Value("string"))
    logger.info("Text column %r, label column %r, %d labels (%s), splits %s", text_column, label_column,
                len(labels.names), "multi-label" if labels.multi_label else "single-label",
                {k: len(v) if isinstance(v, datasets.Dataset) else "streamed" for k, v in raw.items()})  # fmt: skip
    return raw, text_column, label_column, labels


def select_splits(raw: dict, sources: dict, label_column: str, labels: LabelSpec, data_args, seed: int,
                  carve: bool) -> None:  # fmt: skip
    """In place: with `carve` and no validation split, hold one out of train (`carve_validation`; a stream cannot be
    carved); then keep the first --max_train_samples / --max_eval_samples / --max_predict_samples of each split."""
    if "validation" not in raw and carve:
        train = raw["train"]
        if isinstance(train, datasets.IterableDataset):
            raise UserError("--streaming: no validation split to evaluate on, and a stream cannot be carved (that "
                            "would need the whole train split): pass --validation_file (for a Hub dataset "
                            "--validation_split_name; --max_eval_samples N evaluates on its first N examples), or "
                            "--do_eval false.")  # fmt: skip
        raw["train"], raw["validation"] = carve_validation(
            train, label_column, data_args.validation_split_percentage, seed,
            stratify=not labels.multi_label and not labels.class_label,
        )  # fmt: skip
        sources["validation"] = SplitSource(f"validation split carved from {sources['train'].description}", "carved")
        logger.info("No validation split: held out %d of %d training examples (%.1f%%).", len(raw["validation"]),
                    len(train), data_args.validation_split_percentage)  # fmt: skip
    for split, limit in (("train", data_args.max_train_samples), ("validation", data_args.max_eval_samples),
                         ("test", data_args.max_predict_samples)):  # fmt: skip
        if limit is not None and split in raw:
            ds = raw[split]
            streamed = isinstance(ds, datasets.IterableDataset)
            raw[split] = ds.take(limit) if streamed else ds.select(range(min(limit, len(ds))))
