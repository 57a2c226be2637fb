#!/usr/bin/env python
"""Ours, Magika and libmagic side by side on the test split of a file-type data set (one folder per type).

    python scripts/compare_file_typers.py --model outputs/filetypes --data_dir outputs/filetypes-data \\
        --report docs/filetypes.md

Each tool's answers are mapped to our labels (MAGIKA and LIBMAGIC below; an answer with no entry is a miss). Two
scores: over the types all three tools can name (Magika's output labels; the MIME types in libmagic's compiled
database), and over all types, where a type a tool cannot name counts as its miss. Speed is files per second over the
whole test split on this CPU, reading the files included; size is what each tool loads to answer.
"""

from __future__ import annotations

import argparse
import collections
import functools
import json
import os
import re
import sys
import time
from pathlib import Path

import predict
from common import UserError, markdown_table, run_cli

# Magika's label -> ours (only where the names differ; a Magika label that is one of ours maps to itself).
MAGIKA = {"bzip": "bzip2", "txt": "text"}
# libmagic's MIME type -> ours.
LIBMAGIC = {
    "application/x-executable": "elf", "application/x-pie-executable": "elf", "application/x-sharedlib": "elf",
    "application/x-object": "elf", "application/vnd.debian.binary-package": "deb", "application/java-archive": "jar",
    "application/zip": "zip", "application/gzip": "gzip", "application/x-bzip2": "bzip2", "application/x-xz": "xz",
    "application/zstd": "zstd", "application/x-tar": "tar", "image/png": "png", "image/jpeg": "jpeg",
    "image/gif": "gif", "image/svg+xml": "svg", "image/vnd.microsoft.icon": "ico", "image/x-icon": "ico",
    "application/pdf": "pdf", "font/sfnt": "ttf", "font/woff2": "woff2", "text/html": "html", "text/xml": "xml",
    "application/xml": "xml", "application/json": "json", "text/troff": "troff", "text/plain": "text",
    "text/x-script.python": "python", "text/x-python": "python", "text/x-c": "c", "text/x-c++": "cpp",
    "text/x-shellscript": "shell", "text/x-perl": "perl", "text/x-ruby": "ruby", "text/x-php": "php",
    "text/x-lua": "lua", "text/x-java": "java", "text/x-tcl": "tcl", "text/x-tex": "latex", "text/csv": "csv",
    "text/x-makefile": "makefile", "application/javascript": "javascript", "text/javascript": "javascript",
}  # fmt: skip
LIBMAGIC_DB = Path("/usr/lib/file/magic.mgc")


def test_files(data_dir: Path, split: str) -> list[tuple[str, str]]:
    """-> [(path, true label)] for every file under DATA_DIR/SPLIT/LABEL/."""
    root = data_dir / split
    if not root.is_dir():
        raise UserError(f"--data_dir {data_dir}: no {split}/ folder (it must hold {split}/LABEL/... files).")
    return [(str(p), folder.name) for folder in sorted(root.iterdir()) if folder.is_dir()
            for p in sorted(folder.rglob("*")) if p.is_file()]  # fmt: skip


def run_ours(model_dir: str, paths: list[str], batch_size: int) -> list[str]:
    tokenizer, model, device = predict.load(model_dir, False, None)
    inputs = predict.read_files(paths, predict.input_limit(tokenizer))
    results = predict.predict(inputs, tokenizer, model, device, top_k=1, batch_size=batch_size, total=len(paths))
    return [r["labels"][0]["label"] for r in results]


@functools.cache
def _magika():
    from magika import Magika

    return Magika()


def run_magika(paths: list[str]) -> tuple[list[str], list[str]]:
    """-> (Magika's answer, its model's raw label before the confidence fallback to txt/unknown), mapped to ours."""
    results = _magika().identify_paths([Path(p) for p in paths])
    output = [MAGIKA.get(str(r.output.label), str(r.output.label)) for r in results]
    raw = [MAGIKA.get(str(r.dl.label), str(r.dl.label)) for r in results]
    return output, raw


def run_libmagic(paths: list[str]) -> list[str]:
    import magic

    detector = magic.Magic(mime=True)
    return [LIBMAGIC.get(detector.from_file(p), "?") for p in paths]


def vocabularies(ours: set[str]) -> dict[str, set[str]]:
    """The types each tool can name at all, in our labels."""
    magika = {MAGIKA.get(str(c), str(c)) for c in _magika().get_output_content_types()}
    mimes = set(re.findall(rb"[a-z]+/[A-Za-z0-9.+-]+", LIBMAGIC_DB.read_bytes()))
    libmagic = {label for mime, label in LIBMAGIC.items() if mime.encode() in mimes}
    return {"ours": ours, "magika": magika & ours, "libmagic": libmagic & ours}


def scores(truth, predicted, labels) -> dict:
    from sklearn.metrics import f1_score

    keep = [i for i, t in enumerate(truth) if t in labels]
    y_true, y_pred = [truth[i] for i in keep], [predicted[i] for i in keep]
    return {"accuracy": sum(t == p for t, p in zip(y_true, y_pred)) / len(keep), "files": len(keep),
            "macro_f1": float(f1_score(y_true, y_pred, labels=sorted(labels), average="macro", zero_division=0))}


def disk_size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) if path.is_dir() else path.stat().st_size


def report(args, truth, answers, seconds, sizes, vocab) -> tuple[str, dict]:
    present = set(truth)
    common = present & vocab["ours"] & vocab["magika"] & vocab["libmagic"]
    tools = list(answers)
    figures = {tool: {"common": scores(truth, answers[tool], common), "all": scores(truth, answers[tool], present),
                      "files_per_s": len(truth) / seconds[tool], "size_bytes": sizes[tool]}
               for tool in tools}  # fmt: skip
    header = ["tool", "accuracy (common types)", "macro-F1 (common)", "accuracy (all types)", "macro-F1 (all)",
              "files/s", "size on disk"]  # fmt: skip
    rows = [[tool, f"{f['common']['accuracy']:.4f}", f"{f['common']['macro_f1']:.4f}", f"{f['all']['accuracy']:.4f}",
             f"{f['all']['macro_f1']:.4f}", f"{f['files_per_s']:,.0f}", f"{f['size_bytes'] / 2**20:.1f} MiB"]
            for tool, f in figures.items()]  # fmt: skip
    lines = [f"Test split of `{args.data_dir}`: {len(truth)} files, {len(present)} types; {len(common)} of them all "
             f"three tools can name: {', '.join(sorted(common))}.", "", markdown_table(header, rows)]  # fmt: skip
    cannot = {tool: sorted(present - vocab[tool.split(" ")[0]]) for tool in tools}
    lines += ["", "Types a tool cannot name (all its misses): " + "; ".join(
        f"{tool}: {', '.join(c) or 'none'}" for tool, c in cannot.items()) + "."]  # fmt: skip
    rows = []
    for label in sorted(present):
        idx = [i for i, t in enumerate(truth) if t == label]
        rows.append([label, len(idx), *(f"{sum(answers[tool][i] == label for i in idx) / len(idx):.2f}"
                                        for tool in tools)])  # fmt: skip
    lines += ["", "Accuracy per type (recall):", "", markdown_table(["type", "files", *tools], rows)]
    for tool in tools:
        confused = collections.Counter((t, p) for t, p in zip(truth, answers[tool]) if t != p)
        top = ", ".join(f"{t} -> {p} ({n})" for (t, p), n in confused.most_common(args.confusions))
        lines += ["", f"Most frequent confusions of {tool} (true -> answer): {top or 'none'}."]
    return "\n".join(lines), figures


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, help="Output dir of scripts/train.py trained on the train split.")
    parser.add_argument("--data_dir", type=Path, required=True, help="Folder with SPLIT/LABEL/... files.")
    parser.add_argument("--split", default="test")
    parser.add_argument("--batch_size", type=int, default=64)
    parser.add_argument("--confusions", type=int, default=8, help="Confusions to list per tool.")
    parser.add_argument("--report", type=Path, default=None, help="Also write the markdown here (and .json beside).")
    args = parser.parse_args(argv)
    import magika
    import torch

    files = test_files(args.data_dir, args.split)
    paths, truth = [p for p, _ in files], [t for _, t in files]
    answers, seconds = {}, {}
    for tool, run in (("ours", lambda: run_ours(args.model, paths, args.batch_size)),
                      ("magika", lambda: run_magika(paths)), ("libmagic", lambda: run_libmagic(paths))):  # fmt: skip
        start = time.perf_counter()
        out = run()
        seconds[tool] = time.perf_counter() - start
        if tool == "magika":
            out, answers["magika (raw model label)"] = out
            seconds["magika (raw model label)"] = seconds[tool]
        answers[tool] = out
    model_files = [p for p in Path(args.model).iterdir() if p.suffix in (".json", ".safetensors", ".py")]
    magika_model = Path(magika.__file__).parent / "models"
    sizes = {"ours": sum(p.stat().st_size for p in model_files), "libmagic": disk_size(LIBMAGIC_DB)}
    sizes["magika"] = sizes["magika (raw model label)"] = disk_size(magika_model)
    from transformers import AutoConfig

    vocab = vocabularies(set(AutoConfig.from_pretrained(args.model).label2id))
    text, figures = report(args, truth, answers, seconds, sizes, vocab)
    header = (f"Command: `python scripts/compare_file_typers.py --model {args.model} --data_dir {args.data_dir}`; "
              f"torch {torch.__version__} with {torch.get_num_threads()} thread(s), magika {magika.__version__}, "
              f"{os.cpu_count()} CPU cores.\n\n")  # fmt: skip
    print(header + text)
    if args.report:
        args.report.write_text(header + text + "\n")
        args.report.with_suffix(".json").write_text(json.dumps(figures, indent=1) + "\n")


if __name__ == "__main__":
    sys.exit(run_cli(main))
