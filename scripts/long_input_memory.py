#!/usr/bin/env python
"""Peak memory and time of one long input through the default model, whole against streamed, in inference and in a
training step (forward + backward): the measurement behind the default `cross_attention_chunk_size`. Each cell runs
in a fresh process; memory is the peak RSS above what the process held once the model and the input were built.

Commands (from the repository root; one thread, a quiet machine):

    python scripts/long_input_memory.py --out docs/long_inputs.md
    python scripts/long_input_memory.py --lengths 65536,1048576 --chunk_sizes none,4096
    python scripts/long_input_memory.py --heads token --lengths 1048576 --modes inference   # per-byte outputs

Heads: `sequence` (PerceiverByteForSequenceClassification, 4 labels) or `token` (PerceiverByteForTokenClassification,
4 labels per byte: the decoder's queries, one per byte, are built and decoded chunk by chunk too).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import common

REPO_ROOT = Path(__file__).resolve().parent.parent


def measure(length: int, chunk: int | None, mode: str, head: str = "sequence") -> dict:
    """In this process: the default model with cross_attention_chunk_size=chunk and `head`, one input of `length`
    bytes."""
    import torch

    sys.path.insert(0, str(REPO_ROOT))
    import perceiver_byte

    torch.set_num_threads(1)
    torch.manual_seed(0)
    cls = {"sequence": perceiver_byte.PerceiverByteForSequenceClassification,
           "token": perceiver_byte.PerceiverByteForTokenClassification}[head]  # fmt: skip
    model = cls(perceiver_byte.PerceiverByteConfig(num_labels=4, cross_attention_chunk_size=chunk))
    ids = torch.randint(6, 262, (1, length))
    mask = torch.ones_like(ids)
    labels = torch.tensor([1]) if head == "sequence" else torch.randint(0, 4, (1, length))
    model.train(mode == "train")
    before = common.rss()
    common.reset_peak_rss()
    start = time.perf_counter()
    if mode == "train":
        model(input_ids=ids, attention_mask=mask, labels=labels).loss.backward()
    else:
        with torch.inference_mode():
            model(input_ids=ids, attention_mask=mask)
    seconds = time.perf_counter() - start
    return {"peak_above_mib": (common.peak_rss() - before) / 2**20, "seconds": seconds}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lengths", default="16384,65536,262144,1048576", help="Input lengths in bytes.")
    parser.add_argument("--chunk_sizes", default="none,4096,16384",
                        help="cross_attention_chunk_size values ('none': whole).")  # fmt: skip
    parser.add_argument("--modes", default="inference,train")
    parser.add_argument("--heads", default="sequence", help="sequence and/or token (comma-separated).")
    parser.add_argument("--out", default=None, help="Also write the table (markdown) here.")
    parser.add_argument("--worker", nargs=4, metavar=("LENGTH", "CHUNK", "MODE", "HEAD"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        length, chunk, mode, head = args.worker
        print(json.dumps(measure(int(length), None if chunk == "none" else int(chunk), mode, head)))
        return
    rows = []
    cells = [(h, m, n, c) for h in args.heads.split(",") for m in args.modes.split(",")
             for n in map(int, args.lengths.split(",")) for c in args.chunk_sizes.split(",")]  # fmt: skip
    for head, mode, length, chunk in cells:
        done = subprocess.run([sys.executable, __file__, "--worker", str(length), chunk, mode, head],
                              capture_output=True, text=True, check=False)  # fmt: skip
        if done.returncode:
            raise common.UserError(f"the measurement {head} {length} {chunk} {mode} failed:\n{done.stderr[-2000:]}")
        result = json.loads(done.stdout.strip().splitlines()[-1])
        rows.append([head, mode, f"{length:,}", chunk, f"{result['peak_above_mib']:,.0f}", f"{result['seconds']:.2f}"])
        print("\t".join(rows[-1]), flush=True)
    table = common.markdown_table(["head", "mode", "bytes", "cross_attention_chunk_size", "peak MiB above", "seconds"],
                                  rows)  # fmt: skip
    print(table)
    if args.out:
        command = " ".join(["python scripts/long_input_memory.py", *(argv if argv is not None else sys.argv[1:])])
        Path(args.out).write_text(f"# One long input, whole and streamed\n\n`{command}`\n\n{common.machine_line()}; "
                                  f"1 thread, default model, batch 1.\n\n{table}\n", encoding="utf-8")  # fmt: skip


if __name__ == "__main__":
    sys.exit(common.run_cli(main))
