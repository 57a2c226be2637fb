#!/usr/bin/env python
"""Classify texts, files (read as raw bytes) or standard input with a trained Perceiver byte classifier.

The model is an output dir of scripts/train.py or a Hub id. Each input is tokenized exactly as in training (the saved
tokenizer keeps --max_length and --truncation_side); inputs are batched, with a progress bar on stderr. Output: one
line per input on stdout, `SOURCE<TAB>label (score), label (score), ...` with the top-k labels, or JSON lines with
--jsonl. Scores are softmax probabilities (sigmoid per label for a multi-label model).

Commands (from the repository root):

    # Texts (repeat --text):
    python scripts/predict.py --model outputs/udhr --text "Alle Menschen sind frei und gleich an Würde und Rechten geboren." \
        --text "Todos los seres humanos nacen libres e iguales en dignidad y derechos."

    # Files, read as raw bytes (paths, quoted globs with ** for recursion, or folders), top 3 labels, JSON lines:
    python scripts/predict.py --model outputs/files --file "samples/**/*.bin" --top_k 3 --jsonl
    python scripts/predict.py --model outputs/filetypes --file ~/Downloads --top_k 1

    # Standard input: the whole stream is one input, or one input per line with --lines:
    cat article.txt | python scripts/predict.py --model outputs/udhr
    python scripts/predict.py --model outputs/udhr --lines < sentences.txt

    # With ONNX Runtime, from an export (python scripts/export_onnx.py outputs/udhr outputs/udhr-onnx):
    python scripts/predict.py --onnx outputs/udhr-onnx --text "Hyvää huomenta"

    # A Hub model (code is loaded with the weights; needs network):
    python scripts/predict.py --model me/perceiver-byte-udhr --trust_remote_code --text "Hyvää huomenta"

Files are streamed a batch at a time, and only the bytes the model uses are read: with a max_length of L, at most the
first and the last L bytes of each file.

JSON lines: {"source": "text:0" | "file:PATH" | "stdin" | "stdin:LINE", "labels": [{"label": ..., "score": ...}, ...],
"num_bytes": N, "truncated": bool}.
"""

from __future__ import annotations

import argparse
import glob
import itertools
import json
import os
import sys
from pathlib import Path

from common import TRUNCATION_SIDES, UserError, run_cli

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:  # run from a checkout without `pip install -e .`
    sys.path.insert(0, str(REPO_ROOT))

DEFAULT_MODEL = "outputs/udhr"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", default=DEFAULT_MODEL,
                        help=f"Trained output dir of scripts/train.py, or a Hub model id (default: {DEFAULT_MODEL}).")
    parser.add_argument("--onnx", metavar="ONNX_DIR", default=None,
                        help="Classify with ONNX Runtime from an export of scripts/export_onnx.py (instead of --model).")
    parser.add_argument("--text", action="append", default=[], help="A text to classify (repeatable).")
    parser.add_argument("--file", action="append", default=[],
                        help="A file, a quoted glob or a folder (all files below it); each file is one input, "
                             "read as raw bytes (repeatable).")
    parser.add_argument("--lines", action="store_true",
                        help="Standard input: one input per line (default: the whole stream is one input).")
    parser.add_argument("--top_k", type=int, default=5, help="How many labels to show per input (default: 5).")
    parser.add_argument("--batch_size", type=int, default=32, help="Inputs per forward pass (default: 32).")
    parser.add_argument("--max_length", type=int, default=None,
                        help="Bytes per input incl. [CLS]/[SEP] (default: the tokenizer's, i.e. training's).")
    parser.add_argument("--truncation_side", choices=list(TRUNCATION_SIDES), default=None,
                        help="Which part of a long input to keep (default: the tokenizer's, i.e. training's).")
    parser.add_argument("--jsonl", action="store_true", help="Write one JSON object per input instead of text.")
    parser.add_argument("--device", default=None, help="torch device (default: cuda if available, else cpu).")
    parser.add_argument("--trust_remote_code", action="store_true", help="Allow the model repo's code (Hub ids).")
    parser.add_argument("--no_progress", action="store_true", help="No progress bar.")
    return parser


def read_ends(path, size: int, end_bytes: int | None) -> bytes:
    """A file's bytes, or only its first and last `end_bytes` when it is longer than both. Every truncation side keeps
    the same bytes of the two at a max_length of at most `end_bytes`, so a multi-GB file is never read whole."""
    with open(path, "rb") as f:
        if end_bytes is None or size <= 2 * end_bytes:
            return f.read()
        head = f.read(end_bytes)
        f.seek(-end_bytes, os.SEEK_END)
        return head + f.read(end_bytes)


def find_files(patterns: list[str]) -> list[str]:
    """Files named by paths, quoted globs (** is recursive) or folders (every file below, hidden ones skipped)."""
    found = []
    for pattern in patterns:
        if Path(pattern).is_dir():
            files = sorted(str(p) for p in Path(pattern).rglob("*")
                           if p.is_file() and not any(part.startswith(".") for part in p.relative_to(pattern).parts))
            if not files:
                raise UserError(f"--file {pattern}: the folder holds no files.")
        else:
            matches = sorted(glob.glob(pattern, recursive=True)) if glob.has_magic(pattern) else [pattern]
            files = [m for m in matches if Path(m).is_file()]
            if not files:
                what = "no file matches" if glob.has_magic(pattern) else "no such file or folder"
                raise UserError(f"--file {pattern}: {what}. Check the path or glob (quote globs so the shell does not "
                                "expand them).")  # fmt: skip
        found += files
    return found


def read_files(paths: list[str], end_bytes: int | None):
    """Yield (source, bytes, size) for each file, read only when asked for and only its ends (`read_ends`)."""
    for path in paths:
        size = os.path.getsize(path)
        yield f"file:{path}", read_ends(path, size, end_bytes), size


def collect_inputs(args, files: list[str], stdin, end_bytes: int | None = None):
    """-> (number of inputs, iterator of (source, text or bytes, size in bytes)) in command-line order: texts, then
    files (read one batch at a time, only their ends), then stdin when neither is given."""
    texts = [(f"text:{i}", t, len(t.encode("utf-8"))) for i, t in enumerate(args.text)]
    if args.text or args.file:
        return len(texts) + len(files), itertools.chain(texts, read_files(files, end_bytes))
    if stdin is None or stdin.isatty():
        raise UserError("Nothing to classify: give --text, --file, or pipe data into standard input.")
    data = stdin.buffer.read() if hasattr(stdin, "buffer") else stdin.read()
    if isinstance(data, str):
        data = data.encode("utf-8")
    if not data.strip():
        raise UserError("Standard input was empty: nothing to classify.")
    if args.lines:
        inputs = [(f"stdin:{i + 1}", line, len(line)) for i, line in enumerate(data.splitlines()) if line.strip()]
    else:
        inputs = [("stdin", data, len(data))]
    return len(inputs), iter(inputs)


def load(model_id: str, trust_remote_code: bool, device: str | None):
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    import perceiver_byte  # noqa: F401  (registers the Auto classes: local output dirs need no remote code)

    if not Path(model_id).exists() and ("/" not in model_id or model_id.startswith((".", "/"))):
        raise UserError(f"--model {model_id}: no such folder. Train one first (python scripts/train.py --output_dir "
                        f"{model_id}) or give a Hub id such as user/model.")  # fmt: skip
    try:
        tokenizer = AutoTokenizer.from_pretrained(model_id, trust_remote_code=trust_remote_code)
        model = AutoModelForSequenceClassification.from_pretrained(model_id, trust_remote_code=trust_remote_code)
    except OSError as err:
        raise UserError(f"--model {model_id}: cannot load a model and tokenizer from it ({err}).") from err
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    return tokenizer, model.to(device).eval(), device


def predict(inputs, tokenizer, model, device, top_k=5, batch_size=32, max_length=None, progress=True, total=None):
    """Yield one dict per input of `inputs` ((source, text or bytes, size) tuples), a batch at a time: source, labels
    [{label, score}] best first, num_bytes, truncated."""
    import torch
    from tqdm.auto import tqdm

    max_length = input_limit(tokenizer, max_length)
    multi = model.config.problem_type == "multi_label_classification"
    id2label = model.config.id2label
    k = max(1, min(top_k, model.config.num_labels))
    inputs = iter(inputs)
    with tqdm(total=total, desc="Classifying", unit="input", disable=not progress, file=sys.stderr) as bar:
        while chunk := list(itertools.islice(inputs, batch_size)):
            batch = tokenizer([data for _, data, _ in chunk], truncation=max_length is not None, max_length=max_length,
                              padding=True, return_tensors="pt")  # fmt: skip
            with torch.inference_mode():
                logits = model(**{k2: v.to(device) for k2, v in batch.items()}).logits.float()
            scores = logits.sigmoid() if multi else logits.softmax(-1)
            top = scores.topk(k, dim=-1)
            for row, (source, _, num_bytes) in enumerate(chunk):
                yield {
                    "source": source,
                    "labels": [{"label": id2label[int(i)], "score": round(float(s), 6)}
                               for s, i in zip(top.values[row].tolist(), top.indices[row].tolist())],
                    "num_bytes": num_bytes,
                    "truncated": max_length is not None and num_bytes + 2 > max_length,
                }  # fmt: skip
            bar.update(len(chunk))


def input_limit(tokenizer, max_length=None) -> int | None:
    """The bytes per input the model sees: --max_length, else the tokenizer's (training's); None for no limit."""
    max_length = max_length or tokenizer.model_max_length
    return None if max_length is None or max_length > 1e9 else max_length


def main(argv=None, stdin=None, stdout=None) -> list[dict]:
    args = build_parser().parse_args(argv)
    stdin = sys.stdin if stdin is None else stdin
    stdout = sys.stdout if stdout is None else stdout
    if args.top_k < 1 or args.batch_size < 1:
        raise UserError("--top_k and --batch_size must be at least 1.")
    files = find_files(args.file)  # a bad path fails before the model loads
    if args.onnx:
        import export_onnx
        from transformers import AutoTokenizer

        model, device = export_onnx.OnnxClassifier(args.onnx), "cpu"
        tokenizer = AutoTokenizer.from_pretrained(args.onnx)
    else:
        tokenizer, model, device = load(args.model, args.trust_remote_code, args.device)
    if args.truncation_side:
        tokenizer.truncation_side = TRUNCATION_SIDES[args.truncation_side]
    total, inputs = collect_inputs(args, files, stdin, end_bytes=input_limit(tokenizer, args.max_length))
    results = []
    for result in predict(inputs, tokenizer, model, device, args.top_k, args.batch_size, args.max_length,
                          progress=not args.no_progress, total=total):  # fmt: skip
        results.append(result)
        if args.jsonl:
            stdout.write(json.dumps(result, ensure_ascii=False) + "\n")
        else:
            shown = ", ".join(f"{x['label']} ({x['score']:.3f})" for x in result["labels"])
            stdout.write(f"{result['source']}\t{shown}\n")
    stdout.flush()
    return results


if __name__ == "__main__":
    sys.exit(run_cli(main))
