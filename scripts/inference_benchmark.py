#!/usr/bin/env python
"""Inference throughput of one classifier three ways, side by side in one run: PyTorch eager, torch.compile, and
ONNX Runtime on its export (scripts/export_onnx.py). The model is the default configuration (random weights: speed
does not depend on them) unless --model names a trained output dir.

Commands (from the repository root; time on a quiet machine):

    python scripts/inference_benchmark.py --out docs/inference.md
    python scripts/inference_benchmark.py --lengths 256,2048 --batch_size 8 --threads 2

Each cell: the median of --repeats timed calls after --warmup untimed ones, as inputs/s and MB/s (bytes of input,
padding excluded: every row is full), and the speed ratio to eager.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import common
import export_onnx

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))


def timed(call, warmup: int, repeats: int) -> float:
    for _ in range(warmup):
        call()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=None, help="A trained output dir (default: a fresh default model).")
    parser.add_argument("--lengths", default="256,2048,16384", help="Input lengths in bytes, comma-separated.")
    parser.add_argument("--batch_size", type=int, default=8)
    parser.add_argument("--threads", type=int, default=1, help="torch and onnxruntime intra-op threads.")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--out", default=None, help="Also write the table (markdown) here.")
    args = parser.parse_args(argv)
    lengths = [int(x) for x in args.lengths.split(",")]

    import torch

    from perceiver_byte import PerceiverByteConfig, PerceiverByteForSequenceClassification, PerceiverByteTokenizer

    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        model_dir = args.model
        if model_dir is None:
            model_dir = str(Path(tmp) / "model")
            PerceiverByteForSequenceClassification(PerceiverByteConfig(num_labels=8)).save_pretrained(model_dir)
            PerceiverByteTokenizer().save_pretrained(model_dir)
        eager = PerceiverByteForSequenceClassification.from_pretrained(model_dir).eval()
        eager.config.cross_attention_chunk_size = None  # the whole path in every system: the one the graph holds
        compiled = torch.compile(eager, dynamic=True)
        export_onnx.export(model_dir, str(Path(tmp) / "onnx"))
        onnx = export_onnx.OnnxClassifier(Path(tmp) / "onnx", threads=args.threads)
        rows = []
        for length in lengths:
            ids = torch.randint(6, 262, (args.batch_size, length))
            mask = torch.ones_like(ids)
            ids_np, mask_np = ids.numpy(), mask.numpy()
            seconds = {}
            with torch.inference_mode():
                seconds["eager"] = timed(lambda: eager(input_ids=ids, attention_mask=mask), args.warmup, args.repeats)
                seconds["compiled"] = timed(lambda: compiled(input_ids=ids, attention_mask=mask), args.warmup,
                                            args.repeats)  # fmt: skip
            seconds["onnxruntime"] = timed(lambda: onnx(input_ids=ids_np, attention_mask=mask_np), args.warmup,
                                           args.repeats)  # fmt: skip
            for system, s in seconds.items():
                rows.append([f"{length:,}", system, f"{args.batch_size / s:,.1f}",
                             f"{args.batch_size * length / s / 1e6:.2f}", f"{seconds['eager'] / s:.2f}x"])  # fmt: skip
                print("\t".join(rows[-1]), flush=True)
    table = common.markdown_table(["bytes per input", "system", "inputs/s", "MB/s", "speed vs eager"], rows)
    versions = f"torch {torch.__version__}, onnxruntime {__import__('onnxruntime').__version__}"
    report = (f"# Inference: PyTorch eager, torch.compile, ONNX Runtime\n\n`python scripts/inference_benchmark.py "
              f"{' '.join(argv if argv is not None else sys.argv[1:])}`\n\n{common.machine_line()}; {versions}; "
              f"{args.threads} thread(s), batch {args.batch_size}, median of {args.repeats}.\n\n{table}\n")  # fmt: skip
    print(table)
    if args.out:
        Path(args.out).write_text(report, encoding="utf-8")


if __name__ == "__main__":
    sys.exit(common.run_cli(main))
