"""Baselines for any text-classification task: char and word TF-IDF + linear SVM, and fastText, on one split.

Three systems, the references the byte-level Perceiver is compared with:

    tfidf_char  TfidfVectorizer(analyzer="char_wb", lowercase=False, sublinear_tf=True, min_df=2,
                max_features=300000) + LinearSVC; grid: n-gram ranges --ngram_ranges (1-3) x --C (1,3)
    tfidf_word  TfidfVectorizer(analyzer="word", ngram_range=(1, 2), sublinear_tf=True) + LinearSVC(C=1)
                (sklearn defaults otherwise: lowercase, min_df=1; --word_C makes a grid)
    fasttext    supervised fastText (package fasttext-numpy2): epoch 25, lr 0.5, wordNgrams 2, char n-grams
                minn 2 / maxn 5, dim 100, loss softmax, bucket 2,000,000 and minCount 1 (fastText's defaults),
                thread 1 (deterministic with --seed), overridable with --fasttext_params

Every grid point is trained on train and scored on validation; the best validation macro-F1 wins (ties: accuracy,
then grid order) and that model, trained on train only, is scored once on test.  LinearSVC is liblinear's
one-vs-rest, single-threaded.

Commands, from the repository root (set OMP_NUM_THREADS=1 on a shared machine):

    # the embedded UDHR language-ID data (data/udhr/{train,validation,test}.jsonl.gz), all three systems
    python scripts/baseline.py --output_json baseline_udhr.json
    python scripts/baseline.py --systems tfidf_word,fasttext --output_json baseline_udhr_word_ft.json
    python scripts/baseline.py --max_bytes 254 --output_json baseline_udhr_256.json

    # your own files (csv / tsv / json / jsonl / parquet, read as train.py reads them); without --validation_file
    # the validation split is carved from train exactly as scripts/train.py carves it (--validation_split_percentage
    # 10, --split_seed 42 = train.py's --seed), so every system trains on the same 90% as the Perceiver
    python scripts/baseline.py --train_file train.csv --test_file test.csv --text_column review --label_column stars

    # wider grids, other fastText settings
    python scripts/baseline.py --systems tfidf_char --ngram_ranges 1-3,1-4 --C 0.3,1,3
    python scripts/baseline.py --systems tfidf_word --word_C 0.3,1,3
    python scripts/baseline.py --systems fasttext --fasttext_params bucket=200000,epoch=10

`--max_bytes N` keeps the first N UTF-8 bytes of every text of every split (a character cut at the boundary is
dropped).  The Perceiver tokenizer's `max_length=N` counts [CLS] and [SEP], so it keeps N - 2 text bytes: for an
exact match pass 254 / 510.  Labels in validation/test but not in train are allowed (always wrong).

Output, per system: validation and test accuracy and macro-F1, training wall and CPU time of the chosen model,
test inference throughput (documents/s and UTF-8 bytes/s, timed on predict from raw text only: TF-IDF transform +
SVM, or fastText's predict), and the size on disk of the saved model (joblib.dump of the sklearn pipeline, fastText's
save_model).  One markdown table is printed; `--output_json` also writes the grid, library versions, hardware and
the command line.  fastText reads one example per line: newlines, tabs and the other characters it splits on become
spaces, and labels are written as __label__<index into the sorted train labels>, so any label string is safe.

UDHR, untruncated, scikit-learn 1.9.1, fasttext-numpy2 0.10.4 (2 CPUs "AMD EPYC" shared with other jobs, load
average 5-6, 1 thread: wall times are inflated, CPU seconds are steadier):

    system      validation acc / F1   test acc / F1     train (chosen model)   test docs/s (MB/s)   model on disk
    tfidf_char  0.9906 / 0.9911       0.9895 / 0.9885   158 s wall, 99 s CPU   not re-measured      not re-measured
    tfidf_word  0.9698 / 0.9673       0.9678 / 0.9638   109 s wall, 79 s CPU   20,400 (3.9)         2,021 MB
    fasttext    0.8575 / 0.8411       0.8306 / 0.8101    90 s wall, 72 s CPU    5,300 (1.0)           883 MB

tfidf_char chose ngram_range 1-3, C=3; on the first 512 / 256 bytes its test accuracy / F1 is 0.9895 / 0.9885 and
0.9893 / 0.9882.  With 45 paragraphs per language, 25 fastText epochs underfit: `--fasttext_params epoch=100` gives
validation 0.9622 / 0.9609, test 0.9448 / 0.9420 (413 s wall, 289 s CPU).  The sizes are the dense LinearSVC weights
(452 classes x 555k word n-grams, float64) and fastText's input matrix ((words + 2M buckets) x 100, float32).
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import platform
import shlex
import sys
import tempfile
import time
from pathlib import Path

import training_data
from common import UserError, machine, machine_line, markdown_table, run_cli

SYSTEMS = ("tfidf_char", "tfidf_word", "fasttext")
FASTTEXT_PARAMS = {"epoch": 25, "lr": 0.5, "wordNgrams": 2, "minn": 2, "maxn": 5, "dim": 100, "loss": "softmax",
                   "bucket": 2_000_000, "minCount": 1, "thread": 1, "verbose": 0}  # fmt: skip
#: what fastText's reader splits words on ('\n' also ends an example): all become spaces.
ONE_LINE = str.maketrans(dict.fromkeys("\n\r\t\v\f\0", " "))


# ----------------------------------------------------------------------------------------------- data


def truncate_bytes(text: str, max_bytes: int | None) -> str:
    """The longest prefix of `text` whose UTF-8 encoding has at most `max_bytes` bytes (None: `text` unchanged)."""
    if max_bytes is None:
        return text
    data = text.encode("utf-8", errors="surrogatepass")
    return text if len(data) <= max_bytes else data[:max_bytes].decode("utf-8", errors="ignore")


def load_split(path: str, split: str, text_column: str, label_column: str, max_bytes: int | None):
    """(texts, labels) of the --{split}_file, read as train.py reads it (training_data); labels as str."""
    import datasets

    datasets.disable_progress_bars()
    ds, _ = training_data.load_data_file(path, split)
    for column, column_flag in ((text_column, "--text_column"), (label_column, "--label_column")):
        if column not in ds.column_names:
            raise UserError(f"--{split}_file {path}: no column {column!r} (its columns: {ds.column_names}); pass "
                            f"{column_flag}")  # fmt: skip
    texts = [truncate_bytes(_as_text(t), max_bytes) for t in ds[text_column]]
    return texts, [str(v) for v in ds[label_column]]


def _as_text(value) -> str:
    if isinstance(value, bytes):  # a cell of a CSV that is not UTF-8 (training_data keeps its bytes)
        return value.decode("utf-8", errors="replace")
    return "" if value is None else str(value)


def carve_validation(labels: list[str], percentage: float, seed: int) -> tuple[list[int], list[int]]:
    """Row indices (train, validation) of the split scripts/train.py carves, by its own function."""
    import datasets

    ds = datasets.Dataset.from_dict({"row": list(range(len(labels))), "label": labels})
    train, validation = training_data.carve_validation(ds, "label", percentage, seed)
    return train["row"], validation["row"]


# --------------------------------------------------------------------------------------------- systems


class Clock:
    def __enter__(self):
        self.wall0, self.cpu0 = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc):
        self.wall = time.perf_counter() - self.wall0
        self.cpu = time.process_time() - self.cpu0


class FastText:
    """fastText's supervised classifier behind fit/predict on lists of strings."""

    def __init__(self, params: dict):
        self.params = params

    def fit(self, texts, labels):
        import fasttext

        self.classes = sorted(set(labels))
        index = {c: i for i, c in enumerate(self.classes)}
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "train.txt"
            path.write_text("".join(f"__label__{index[y]} {x.translate(ONE_LINE)}\n" for x, y in zip(texts, labels)),
                            encoding="utf-8", newline="\n")  # fmt: skip
            self.model = fasttext.train_supervised(str(path), **self.params)
        return self

    def predict(self, texts):
        labels, _ = self.model.predict([t.translate(ONE_LINE) for t in texts], k=1)
        return [self.classes[int(label[0].removeprefix("__label__"))] for label in labels]


def grid(system: str, x_train, y_train, args):
    """Yield (params, fitted model, train wall s, train CPU s) for every grid point of `system`."""
    if system == "fasttext":
        params = {**FASTTEXT_PARAMS, "seed": args.seed, **args.fasttext_params}
        with Clock() as clock:
            model = FastText(params).fit(x_train, y_train)
        yield params, model, clock.wall, clock.cpu
        return
    import numpy as np
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.pipeline import Pipeline
    from sklearn.svm import LinearSVC

    if system == "tfidf_char":  # the model sees raw bytes: case is information
        vectorizers = [dict(analyzer="char_wb", ngram_range=r, lowercase=False, min_df=args.min_df,
                            max_features=args.max_features or None) for r in args.ngram_ranges]  # fmt: skip
        cs = args.C
    else:
        vectorizers, cs = [dict(analyzer="word", ngram_range=(1, 2))], args.word_C
    for vec_params in vectorizers:
        vectorizer = TfidfVectorizer(sublinear_tf=True, dtype=np.float32, **vec_params)
        with Clock() as vec_clock:
            features = vectorizer.fit_transform(x_train)
        for C in cs:  # one vectorizer fit for every C; a training time counts both fits
            svm = LinearSVC(C=C, tol=args.tol, max_iter=args.max_iter, random_state=args.seed)
            with Clock() as svm_clock:
                svm.fit(features, y_train)
            params = {"ngram_range": list(vec_params["ngram_range"]), "C": C, "features": features.shape[1]}
            yield (params, Pipeline([("tfidf", vectorizer), ("svm", svm)]), vec_clock.wall + svm_clock.wall,
                   vec_clock.cpu + svm_clock.cpu)  # fmt: skip
        del features


def scores(y_true, y_pred) -> dict:
    from sklearn.metrics import accuracy_score, f1_score

    return {"accuracy": float(accuracy_score(y_true, y_pred)),
            "macro_f1": float(f1_score(y_true, y_pred, average="macro", zero_division=0))}  # fmt: skip


def saved_bytes(model) -> int:
    with tempfile.TemporaryDirectory() as tmp:
        if isinstance(model, FastText):
            model.model.save_model(str(Path(tmp) / "model.bin"))
        else:
            import joblib

            joblib.dump(model, Path(tmp) / "model.joblib")
        return sum(p.stat().st_size for p in Path(tmp).iterdir())


def run_system(system: str, data: dict, args) -> dict:
    (x_train, y_train), (x_val, y_val), (x_test, y_test) = data["train"], data["validation"], data["test"]
    entries, best = [], None
    for params, model, wall, cpu in grid(system, x_train, y_train, args):
        entry = {"params": params, "validation": scores(y_val, model.predict(x_val)),
                 "train_wall_s": round(wall, 2), "train_cpu_s": round(cpu, 2)}  # fmt: skip
        entries.append(entry)
        v = entry["validation"]
        print(f"  {system} {params}: validation accuracy {v['accuracy']:.4f} macro-F1 {v['macro_f1']:.4f}; "
              f"train {wall:.1f}s wall ({cpu:.1f}s CPU)", flush=True)  # fmt: skip
        key = (v["macro_f1"], v["accuracy"])
        if best is None or key > best[0]:  # strict: ties keep the earlier entry
            best = (key, entry, model)
        del model
    _, chosen, model = best
    with Clock() as clock:
        predicted = model.predict(x_test)
    test_bytes = sum(len(t.encode("utf-8", errors="surrogatepass")) for t in x_test)
    return {**chosen, "test": scores(y_test, predicted), "predict_wall_s": round(clock.wall, 3),
            "docs_per_s": len(x_test) / clock.wall, "bytes_per_s": test_bytes / clock.wall,
            "model_bytes": saved_bytes(model), "grid": entries}  # fmt: skip


def table(results: dict) -> str:
    header = ["system", "validation acc", "validation macro-F1", "test acc", "test macro-F1", "train wall s (CPU s)",
              "test docs/s", "test MB/s", "model MB"]  # fmt: skip
    rows = [[system, f"{r['validation']['accuracy']:.4f}", f"{r['validation']['macro_f1']:.4f}",
             f"{r['test']['accuracy']:.4f}", f"{r['test']['macro_f1']:.4f}",
             f"{r['train_wall_s']:.1f} ({r['train_cpu_s']:.1f})", f"{r['docs_per_s']:,.0f}",
             f"{r['bytes_per_s'] / 1e6:.2f}", f"{r['model_bytes'] / 1e6:.1f}"] for system, r in results.items()]
    return markdown_table(header, rows)


# ----------------------------------------------------------------------------------------------- main


def comma_list(parse, check, what):
    def parse_list(spec: str) -> list:
        out = [parse(x.strip()) for x in spec.split(",") if x.strip()]
        bad = [x for x in out if not check(x)] or ([] if out else [spec])
        if bad:
            raise argparse.ArgumentTypeError(f"{what}: {bad[0]!r}")
        return out

    return parse_list


def ngram_range(part: str) -> tuple[int, int]:
    lo, _, hi = part.partition("-")
    return int(lo), int(hi or lo)


def fasttext_params(spec: str) -> dict:
    out = {}
    for item in filter(None, (s.strip() for s in spec.split(","))):
        key, _, value = item.partition("=")
        if key not in FASTTEXT_PARAMS:
            raise argparse.ArgumentTypeError(f"unknown fastText parameter {key!r} (known: {sorted(FASTTEXT_PARAMS)})")
        kind = type(FASTTEXT_PARAMS[key])
        out[key] = int(float(value)) if kind is int else kind(value)
    return out


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    systems = comma_list(str, SYSTEMS.__contains__, f"unknown system (known: {', '.join(SYSTEMS)})")
    p.add_argument("--systems", type=systems, default=list(SYSTEMS), help="comma-separated (default: all three)")
    p.add_argument("--train_file", default=None, help="default: data/udhr/{train,validation,test}.jsonl.gz")
    p.add_argument("--validation_file", default=None, help="default: carved from train as train.py carves it")
    p.add_argument("--test_file", default=None, help="needed with --train_file")
    p.add_argument("--text_column", default="text")
    p.add_argument("--label_column", default="label")
    p.add_argument("--max_bytes", type=int, default=None, help="keep the first N UTF-8 bytes of each text")
    p.add_argument("--validation_split_percentage", type=float, default=10.0, help="as train.py's (default: 10)")
    p.add_argument("--split_seed", type=int, default=42, help="train.py's --seed, for the carve (default: 42)")
    p.add_argument("--ngram_ranges", type=comma_list(ngram_range, lambda r: 1 <= r[0] <= r[1], "bad n-gram range"),
                   default=[(1, 3)], help="tfidf_char: char_wb n-gram ranges (default: 1-3)")  # fmt: skip
    positive = comma_list(float, lambda x: x > 0, "C must be > 0")
    p.add_argument("--C", type=positive, default=[1.0, 3.0], help="tfidf_char: LinearSVC C values (default: 1,3)")
    p.add_argument("--min_df", type=int, default=2, help="tfidf_char: TfidfVectorizer min_df (default: 2)")
    p.add_argument("--max_features", type=int, default=300_000, help="tfidf_char: most frequent n-grams kept "
                   "(default: 300000; 0 = all)")  # fmt: skip
    p.add_argument("--word_C", type=positive, default=[1.0], help="tfidf_word: LinearSVC C values (default: 1)")
    p.add_argument("--tol", type=float, default=1e-3, help="LinearSVC tol (default: 1e-3)")
    p.add_argument("--max_iter", type=int, default=1000, help="LinearSVC max_iter (default: 1000)")
    p.add_argument("--fasttext_params", type=fasttext_params, default={},
                   help="fastText overrides, e.g. bucket=200000,epoch=10,thread=2")
    p.add_argument("--seed", type=int, default=0, help="LinearSVC random_state and fastText seed (default: 0)")
    p.add_argument("--output_json", default=None, help="write the results here")
    return p


def versions(systems) -> dict:
    out = {"python": platform.python_version()}
    for name in ("numpy", "scipy", "scikit-learn", "datasets"):
        out[name] = importlib.metadata.version(name)
    if "fasttext" in systems:
        dist = importlib.metadata.packages_distributions()["fasttext"][0]
        out[dist] = importlib.metadata.version(dist)
    return out


def main(argv: list[str] | None = None) -> dict:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.max_bytes is not None and args.max_bytes < 1:
        parser.error("--max_bytes must be >= 1")
    if args.train_file is None:
        if args.validation_file or args.test_file:
            parser.error("--validation_file/--test_file need a --train_file too")
        files = training_data.default_files()
    elif not args.test_file:
        parser.error("--test_file is needed with --train_file: every system is scored and timed on it")
    else:
        files = {"train": args.train_file, "validation": args.validation_file, "test": args.test_file}
    command = shlex.join([sys.executable, *(sys.argv if argv is None else [sys.argv[0], *argv])])
    hw = machine()  # its load average is the one at the start
    wall0 = time.perf_counter()

    data = {split: load_split(path, split, args.text_column, args.label_column, args.max_bytes)
            for split, path in files.items() if path}  # fmt: skip
    if "validation" not in data:
        texts, labels = data["train"]
        train_rows, val_rows = carve_validation(labels, args.validation_split_percentage, args.split_seed)
        def pick(rows):
            return [texts[i] for i in rows], [labels[i] for i in rows]

        data["train"], data["validation"] = pick(train_rows), pick(val_rows)
        files["validation"] = f"{args.validation_split_percentage:g}% of train, carved as train.py does"
    examples = {split: len(data[split][0]) for split in ("train", "validation", "test")}
    classes = len(set(data["train"][1]))
    print(f"data: {examples} examples, {classes} classes, max_bytes={args.max_bytes}; validation: "
          f"{files['validation']}", flush=True)  # fmt: skip

    results = {system: run_system(system, data, args) for system in args.systems}
    hw["loadavg_1_5_15_at_end"] = machine()["loadavg_1_5_15"]
    report = {
        "systems": results,
        "data": {"files": files, "text_column": args.text_column, "label_column": args.label_column,
                 "max_bytes": args.max_bytes, "examples": examples, "classes": classes},  # fmt: skip
        "total_wall_s": round(time.perf_counter() - wall0, 2),
        "hardware": hw,
        "versions": versions(args.systems),
        "command": command,
    }
    print(table(results))
    print(f"whole run {report['total_wall_s']:.1f}s wall; hardware at the start: {machine_line(hw)}")
    if args.output_json:
        out = Path(args.output_json)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        print(f"wrote {out}")
    return report


if __name__ == "__main__":
    sys.exit(run_cli(main))
