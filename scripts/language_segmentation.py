#!/usr/bin/env python
"""Language segmentation of mixed-language texts: a per-byte task that a sequence label cannot do.

Each example joins stretches of UDHR paragraphs (data/udhr) in different languages: mostly two (A then B), sometimes
three (A B A or A B C) or one, split at random points; every byte is labelled with its language. Spans come from the
rows of the example's own split, so train and test never share a source paragraph; the builder is seeded.
`PerceiverByteForTokenClassification` (one decoder query per byte) is trained with `Trainer` and scored on test beside
two systems without per-byte output: char 1-3-gram TF-IDF + LinearSVC (scripts/baseline.py's tfidf_char, C=3) trained
on the train paragraphs and applied to a window of --window bytes centred on each byte, and a whole-text label (the
SVM's label of the text, and the oracle: the language of most of its bytes) given to every byte.

Commands (from the repository root; on a shared machine set OMP_NUM_THREADS=1):

    OMP_NUM_THREADS=1 python scripts/language_segmentation.py --out docs/language_segmentation.md
    # other languages, a longer run, a bigger model
    python scripts/language_segmentation.py --languages deu,fra,ita,spa,por,nld --max_steps 2000 \
        --config_overrides "num_latents=64,d_latents=256"

Metrics: per-byte accuracy and macro-F1 over the languages (raw predictions). Boundaries are where the label changes
between two bytes; predictions are first smoothed minimally: a run shorter than --min_run bytes joins the run before it
(the first run: the one after), which removes flickers inside a multi-byte character or a word. A predicted change
counts if it lies within +-k bytes (--tolerance) of a true one, each true one matched at most once (closest pairs
first): precision, recall, F1 over all test texts. Boundary error: for each true change, the distance to the nearest
predicted change in its text (texts with none predicted are left out; recall counts them).
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import random
import shlex
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path


REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:  # run from a checkout without `pip install -e .`
    sys.path.insert(0, str(REPO_ROOT))

import numpy as np  # noqa: E402
import torch  # noqa: E402

import train  # noqa: E402  (apply_config_overrides / fresh_config: the same --config_overrides as train.py)
from common import UserError, machine_line, markdown_table, run_cli  # noqa: E402
from perceiver_byte import PerceiverByteForTokenClassification, PerceiverByteTokenizer  # noqa: E402


DATA_DIR = REPO_ROOT / "data" / "udhr"
MIN_SPAN = 24  # bytes: the shortest segment drawn, and the shortest paragraph used as a source
SEGMENTS = {1: 0.15, 2: 0.6, 3: 0.25}  # how many languages an example has, and how often
#: the model unless --config_overrides says otherwise: PerceiverByteConfig()'s defaults plus positions, so that the
#: latents can tell where in the text each language is, and local mixing over 9 bytes, so that each decoder query (the
#: byte array at its byte) also sees the bytes after it: the n-grams look back only (without it: byte accuracy 0.918,
#: change-point F1 0.702; with it 0.977 / 0.911, docs/language_segmentation.md)
MODEL_DEFAULTS = "position_encoding_type=fourier,local_kernel_size=9"


# ----------------------------------------------------------------------------------------------- data


def load_rows(split: str) -> dict[str, list[str]]:
    """The paragraphs of one split by language, those of at least MIN_SPAN bytes, in file order."""
    rows: dict[str, list[str]] = {}
    with gzip.open(DATA_DIR / f"{split}.jsonl.gz", "rt", encoding="utf-8") as f:
        for line in f:
            row = json.loads(line)
            if len(row["text"].encode("utf-8")) >= MIN_SPAN:
                rows.setdefault(row["label"], []).append(row["text"])
    return rows


def pick_languages(train_rows: dict[str, list[str]], languages: str | None, num_languages: int) -> list[str]:
    """--languages, or the --num_languages with the most train paragraphs (ties: by code); sorted = label ids."""
    if languages:
        chosen = [code.strip() for code in languages.split(",") if code.strip()]
        unknown = [code for code in chosen if code not in train_rows]
        if unknown or len(chosen) < 2:
            raise UserError(f"--languages: need 2 or more of the UDHR labels (data/udhr/languages.tsv); "
                            f"unknown: {unknown}")  # fmt: skip
        return sorted(set(chosen))
    return sorted(sorted(train_rows, key=lambda code: (-len(train_rows[code]), code))[:num_languages])


def stretch(paragraphs: list[str], row: int, budget: int, rng: random.Random) -> str:
    """A piece of at most `budget` UTF-8 bytes of paragraph `row` and the ones after it (space-joined, as many as it
    takes to fill the budget): all of it if it fits, else a window that starts at a word and ends at a word where
    there is a space in its second half (else at a character)."""
    end = row + 1
    while end < len(paragraphs) and sum(len(p.encode("utf-8")) + 1 for p in paragraphs[row:end]) <= budget:
        end += 1
    text = " ".join(paragraphs[row:end])
    data = text.encode("utf-8")
    if len(data) <= budget:
        return text
    starts = [0] + [i + 1 for i, b in enumerate(data[: len(data) - budget]) if b == 0x20]
    start = rng.choice(starts)
    piece = data[start : start + budget].decode("utf-8", errors="ignore")
    cut = piece.rfind(" ")
    return (piece[:cut] if cut > len(piece) // 2 else piece).strip()


def build_examples(rows: dict[str, list[str]], languages: list[str], count: int, max_length: int,
                   seed: str) -> list[dict]:  # fmt: skip
    """`count` mixed texts of at most max_length - 2 bytes (the tokenizer adds [CLS] and [SEP]). Each is
    {"text", "spans": [[start byte, end byte, language, first source row], ...]}: the spans cover the text; a space
    joins two of them and belongs to the first."""
    rng = random.Random(seed)
    examples = []
    for _ in range(count):
        n = rng.choices(list(SEGMENTS), weights=list(SEGMENTS.values()))[0]
        total = rng.randint(max(n * MIN_SPAN, max_length // 4), max_length - 2)
        cuts = [0]
        for j in range(n - 1):  # every part at least MIN_SPAN bytes
            cuts.append(rng.randint(cuts[-1] + MIN_SPAN, total - (n - 1 - j) * MIN_SPAN))
        cuts.append(total)
        text, spans, language = b"", [], None
        for j in range(n):
            language = rng.choice([code for code in languages if code != language])
            row = rng.randrange(len(rows[language]))
            last = j == n - 1
            piece = stretch(rows[language], row, cuts[j + 1] - cuts[j] - (not last), rng) + ("" if last else " ")
            spans.append([len(text), len(text) + len(piece.encode("utf-8")), language, row])
            text += piece.encode("utf-8")
        examples.append({"text": text.decode("utf-8"), "spans": spans})
    return examples


def byte_labels(example: dict, label_ids: dict[str, int]) -> list[int]:
    """The language id of every byte of the example's text."""
    return [label_ids[language] for start, end, language, _ in example["spans"] for _ in range(start, end)]


def encode(examples: list[dict], tokenizer, label_ids: dict[str, int]):
    """A `datasets.Dataset` of input_ids / attention_mask / labels ([CLS] and [SEP] are -100)."""
    import datasets

    encoded = tokenizer([ex["text"] for ex in examples])
    labels = [[-100, *byte_labels(ex, label_ids), -100] for ex in examples]
    assert all(len(ids) == len(lab) for ids, lab in zip(encoded["input_ids"], labels)), "a byte without a label"
    return datasets.Dataset.from_dict({**encoded, "labels": labels})


# --------------------------------------------------------------------------------------------- scoring


def smooth(labels: list[int], min_run: int) -> list[int]:
    """Runs shorter than `min_run` join the run before them (a short first run: the one after)."""
    runs: list[list[int]] = []  # [label, length]
    for label in labels:
        if runs and runs[-1][0] == label:
            runs[-1][1] += 1
        else:
            runs.append([label, 1])
    merged: list[list[int]] = []
    for label, length in runs:
        if merged and (length < min_run or merged[-1][0] == label):
            merged[-1][1] += length
        else:
            merged.append([label, length])
    if len(merged) > 1 and merged[0][1] < min_run:
        merged[1][1] += merged.pop(0)[1]
    return [label for label, length in merged for _ in range(length)]


def changes(labels: list[int]) -> list[int]:
    """Byte offsets i where labels[i] differs from labels[i - 1]."""
    return [i for i in range(1, len(labels)) if labels[i] != labels[i - 1]]


def match_boundaries(true: list[int], predicted: list[int], tolerance: int) -> int:
    """How many true changes have a predicted one within +-tolerance, one-to-one, closest pairs first."""
    pairs = sorted((abs(t - p), i, j) for i, t in enumerate(true) for j, p in enumerate(predicted))
    used_true, used_pred = set(), set()
    for distance, i, j in pairs:
        if distance <= tolerance and i not in used_true and j not in used_pred:
            used_true.add(i)
            used_pred.add(j)
    return len(used_true)


def score(gold: list[list[int]], predicted: list[list[int]], num_labels: int, tolerance: int, min_run: int) -> dict:
    """Per-byte accuracy and macro-F1 (raw), boundary precision/recall/F1 and error (smoothed) over the test texts."""
    from sklearn.metrics import f1_score

    flat_gold, flat_pred = np.concatenate(gold), np.concatenate(predicted)
    matched = n_true = n_pred = 0
    errors = []
    for g, p in zip(gold, predicted):
        true, pred = changes(g), changes(smooth(list(p), min_run))
        matched += match_boundaries(true, pred, tolerance)
        n_true, n_pred = n_true + len(true), n_pred + len(pred)
        errors += [min(abs(t - q) for q in pred) for t in true] if pred else []
    precision = matched / n_pred if n_pred else float("nan")
    recall = matched / n_true if n_true else float("nan")
    f1 = 2 * precision * recall / (precision + recall) if n_pred and matched else 0.0
    return {"accuracy": float((flat_gold == flat_pred).mean()),
            "macro_f1": float(f1_score(flat_gold, flat_pred, labels=range(num_labels), average="macro",
                                       zero_division=0)),
            "precision": precision, "recall": recall, "f1": f1, "predicted_changes": n_pred,
            "mean_abs_error": float(np.mean(errors)) if errors else float("nan")}  # fmt: skip


# --------------------------------------------------------------------------------------------- systems


def train_perceiver(args, train_ds, test_ds, languages: list[str], tokenizer) -> tuple[list[np.ndarray], dict]:
    """Train on train_ds with `Trainer`; -> (per-byte predictions of every test text, facts about the run)."""
    from transformers import DataCollatorForTokenClassification, Trainer, TrainingArguments, set_seed

    overrides = ",".join(filter(None, [MODEL_DEFAULTS, args.config_overrides]))
    config = train.fresh_config(train.ModelArguments(config_overrides=overrides))
    config.num_labels = len(languages)
    config.id2label, config.label2id = dict(enumerate(languages)), {code: i for i, code in enumerate(languages)}
    set_seed(args.seed)
    model = PerceiverByteForTokenClassification(config)
    with tempfile.TemporaryDirectory() as tmp:
        training_args = TrainingArguments(
            output_dir=args.output_dir or tmp, max_steps=args.max_steps if args.num_train_epochs is None else -1,
            num_train_epochs=args.num_train_epochs or 1.0, learning_rate=args.learning_rate,
            per_device_train_batch_size=args.batch_size, per_device_eval_batch_size=2 * args.batch_size,
            warmup_steps=0.06, weight_decay=0.01, lr_scheduler_type="linear", logging_steps=50,
            eval_strategy="no", save_strategy="no", report_to="none", seed=args.seed, disable_tqdm=True,
            dataloader_pin_memory=torch.cuda.is_available(),
        )  # fmt: skip
        trainer = Trainer(model=model, args=training_args, train_dataset=train_ds, processing_class=tokenizer,
                          data_collator=DataCollatorForTokenClassification(tokenizer))  # fmt: skip
        start = time.perf_counter()
        result = trainer.train()
        wall = time.perf_counter() - start
        if args.output_dir:
            trainer.save_model()
        output = trainer.predict(test_ds)
    logits, labels = output.predictions, output.label_ids  # (B, M, K), (B, M) padded with -100
    predicted = [row.argmax(-1)[mask] for row, mask in zip(logits, labels != -100)]
    facts = {"train_wall_s": wall, "steps": result.global_step, "train_loss": result.training_loss,
             "parameters": model.num_parameters(), "config_overrides": overrides}  # fmt: skip
    return predicted, facts


def train_svm(train_rows: dict[str, list[str]], languages: list[str], seed: int):
    """scripts/baseline.py's tfidf_char (char_wb 1-3-grams, C=3, its choice on UDHR) on the train paragraphs."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.pipeline import Pipeline
    from sklearn.svm import LinearSVC

    texts = [text for code in languages for text in train_rows[code]]
    labels = [i for i, code in enumerate(languages) for _ in train_rows[code]]
    vectorizer = TfidfVectorizer(analyzer="char_wb", ngram_range=(1, 3), lowercase=False, min_df=2,
                                 max_features=300_000, sublinear_tf=True, dtype=np.float32)  # fmt: skip
    start = time.perf_counter()
    svm = Pipeline([("tfidf", vectorizer), ("svm", LinearSVC(C=3.0, random_state=seed))]).fit(texts, labels)
    return svm, time.perf_counter() - start


def windows(text: str, width: int) -> list[str]:
    """For each byte, the text of the `width` bytes centred on it (characters cut at the edges are dropped)."""
    data = text.encode("utf-8")
    half = width // 2
    return [data[max(0, i - half) : i + width - half].decode("utf-8", errors="ignore") for i in range(len(data))]


# ----------------------------------------------------------------------------------------------- main


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", default=None, help="write the markdown report here")
    p.add_argument("--languages", default=None, help="comma-separated UDHR labels (default: --num_languages)")
    p.add_argument("--num_languages", type=int, default=24, help="the languages with the most train paragraphs")
    p.add_argument("--max_length", type=int, default=512, help="tokens per example, [CLS] and [SEP] included")
    p.add_argument("--train_examples", type=int, default=20000)
    p.add_argument("--test_examples", type=int, default=1000)
    p.add_argument("--config_overrides", default=None, help=f"as train.py's, after {MODEL_DEFAULTS!r}")
    p.add_argument("--max_steps", type=int, default=1200)
    p.add_argument("--num_train_epochs", type=float, default=None, help="instead of --max_steps")
    p.add_argument("--learning_rate", type=float, default=2e-3)
    p.add_argument("--batch_size", type=int, default=16)
    p.add_argument("--tolerance", type=int, default=8, help="k: a predicted change within +-k bytes is a hit")
    p.add_argument("--min_run", type=int, default=8, help="smoothing: shorter runs join the previous one")
    p.add_argument("--window", type=int, default=32, help="bytes the SVM sees around each byte")
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--torch_num_threads", type=int, default=None)
    p.add_argument("--output_dir", default=None, help="save the trained model here (default: not saved)")
    return p


def main(argv: list[str] | None = None) -> dict:
    args = build_parser().parse_args(argv)
    if args.num_languages < 2:
        raise UserError("--num_languages must be at least 2")
    if args.max_length < 3 * MIN_SPAN + 2:
        raise UserError(f"--max_length must be at least {3 * MIN_SPAN + 2} (three segments of {MIN_SPAN} bytes)")
    if args.torch_num_threads:
        torch.set_num_threads(args.torch_num_threads)
    threads = [f"OMP_NUM_THREADS={os.environ['OMP_NUM_THREADS']}"] if "OMP_NUM_THREADS" in os.environ else []
    script = ["python", "scripts/language_segmentation.py"]
    command = shlex.join([*threads, *script, *(sys.argv[1:] if argv is None else argv)])
    rows = {split: load_rows(split) for split in ("train", "test")}
    languages = pick_languages(rows["train"], args.languages, args.num_languages)
    label_ids = {code: i for i, code in enumerate(languages)}
    examples = {split: build_examples(rows[split], languages, getattr(args, f"{split}_examples"), args.max_length,
                                      f"{args.seed}-{split}") for split in rows}  # fmt: skip
    tokenizer = PerceiverByteTokenizer()
    data = {split: encode(examples[split], tokenizer, label_ids) for split in examples}
    gold = [np.array(byte_labels(ex, label_ids)) for ex in examples["test"]]

    predicted, facts = train_perceiver(args, data["train"], data["test"], languages, tokenizer)
    svm, svm_wall = train_svm(rows["train"], languages, args.seed)
    texts = [ex["text"] for ex in examples["test"]]
    flat = svm.predict([w for text in texts for w in windows(text, args.window)])
    offsets = np.cumsum([0] + [len(g) for g in gold])
    whole = svm.predict(texts)
    systems = {
        "PerceiverByteForTokenClassification": (predicted, facts["train_wall_s"]),
        f"TF-IDF char 1-3 + LinearSVC, {args.window}-byte window": (
            [flat[a:b] for a, b in zip(offsets[:-1], offsets[1:])], svm_wall),
        "whole-text label: TF-IDF + LinearSVC on the text": ([np.full(len(g), y) for g, y in zip(gold, whole)],
                                                             svm_wall),
        "whole-text label: oracle (majority language)": (
            [np.full(len(g), np.bincount(g).argmax()) for g in gold], None),
    }  # fmt: skip
    results = {name: {**score(gold, pred, len(languages), args.tolerance, args.min_run), "train_wall_s": wall}
               for name, (pred, wall) in systems.items()}  # fmt: skip

    def fmt(x, digits=3):
        return "n/a" if x != x else f"{x:.{digits}f}"

    header = ["system", "byte accuracy", "byte macro-F1", f"boundary P (±{args.tolerance})", "boundary R",
              "boundary F1", "boundary error (bytes)", "train wall s"]  # fmt: skip
    table = markdown_table(header, [[name, fmt(r["accuracy"]), fmt(r["macro_f1"]), fmt(r["precision"]),
                                     fmt(r["recall"]), fmt(r["f1"]), fmt(r["mean_abs_error"], 1),
                                     "–" if r["train_wall_s"] is None else f"{r['train_wall_s']:.1f}"]
                                    for name, r in results.items()])  # fmt: skip
    print(table)
    segments = {split: Counter(len(ex["spans"]) for ex in exs) for split, exs in examples.items()}
    counts = [[split, sum(len(rows[split][c]) for c in languages), len(examples[split]),
               " / ".join(str(segments[split][n]) for n in SEGMENTS),
               sum(len(ex["spans"]) - 1 for ex in examples[split]),
               sum(ex["spans"][-1][1] for ex in examples[split]) // len(examples[split])] for split in examples]
    report = "\n".join([
        "# Language segmentation: per-byte labels on mixed-language UDHR texts", "",
        "Written by `scripts/language_segmentation.py` (its docstring defines the task and the metrics).", "",
        "```", command, "```", "", f"Machine: {machine_line()}; torch threads: {torch.get_num_threads()}.", "",
        f"Languages ({len(languages)}): {', '.join(languages)}. Test: {len(gold)} texts; boundaries scored within "
        f"±{args.tolerance} bytes after smoothing runs shorter than {args.min_run} bytes.", "",
        table, "",
        f"Model: {facts['parameters']:,} parameters, config overrides `{facts['config_overrides']}`, "
        f"{facts['steps']} steps of batch {args.batch_size}, learning rate {args.learning_rate:g}, mean training "
        f"loss {facts['train_loss']:.3f}. SVM training time is for the paragraphs of the train split.", "",
        markdown_table(["split", "source paragraphs", "texts", "texts with 1 / 2 / 3 languages", "boundaries",
                        "mean bytes per text"], counts),  # fmt: skip
        "",
    ])  # fmt: skip
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(report, encoding="utf-8")
        print(f"wrote {args.out}")
    return {"results": results, "model": facts, "languages": languages}


if __name__ == "__main__":
    sys.exit(run_cli(main))
