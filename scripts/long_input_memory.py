#!/usr/bin/env python
"""Peak memory and time of one long input through the default model, whole against streamed, in inference and in a
training step (forward + backward): the measurement behind the default `cross_attention_chunk_size`. Each cell runs
in a fresh process; memory is the peak RSS above what the process held once the model and the input were built.

Commands (from the repository root; one thread, a quiet machine):

    python scripts/long_input_memory.py --out docs/long_inputs.md
    python scripts/long_input_memory.py --lengths 65536,1048576 --chunk_sizes none,16384
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


def measure(length: int, chunk: int | None, mode: str) -> dict:
    """In this process: the default classifier with cross_attention_chunk_size=chunk, one input of `length` bytes."""
    import torch

    sys.path.insert(0, str(REPO_ROOT))
    from perceiver_byte import PerceiverByteConfig, PerceiverByteForSequenceClassification

    torch.set_num_threads(1)
    torch.manual_seed(0)
    model = PerceiverByteForSequenceClassification(PerceiverByteConfig(num_labels=4, cross_attention_chunk_size=chunk))
    ids = torch.randint(6, 262, (1, length))
    mask = torch.ones_like(ids)
    model.train(mode == "train")
    before = common.rss()
    common.reset_peak_rss()
    start = time.perf_counter()
    if mode == "train":
        model(input_ids=ids, attention_mask=mask, labels=torch.tensor([1])).loss.backward()
    else:
        with torch.inference_mode():
            model(input_ids=ids, attention_mask=mask)
    seconds = time.perf_counter() - start
    return {"peak_above_mib": (common.peak_rss() - before) / 2**20, "seconds": seconds}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lengths", default="16384,65536,262144,1048576", help="Input lengths in bytes.")
    parser.add_argument("--chunk_sizes", default="none,16384", help="cross_attention_chunk_size values ('none').")
    parser.add_argument("--modes", default="inference,train")
    parser.add_argument("--out", default=None, help="Also write the table (markdown) here.")
    parser.add_argument("--worker", nargs=3, metavar=("LENGTH", "CHUNK", "MODE"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        length, chunk, mode = args.worker
        print(json.dumps(measure(int(length), None if chunk == "none" else int(chunk), mode)))
        return
    rows = []
    for mode in args.modes.split(","):
        for length in map(int, args.lengths.split(",")):
            for chunk in args.chunk_sizes.split(","):
                done = subprocess.run([sys.executable, __file__, "--worker", str(length), chunk, mode],
                                      capture_output=True, text=True, check=False)  # fmt: skip
                if done.returncode:
                    raise common.UserError(f"the measurement {length} {chunk} {mode} failed:\n{done.stderr[-2000:]}")
                result = json.loads(done.stdout.strip().splitlines()[-1])
                rows.append([mode, f"{length:,}", chunk, f"{result['peak_above_mib']:,.0f}", f"{result['seconds']:.2f}"])
                print("\t".join(rows[-1]), flush=True)
    table = common.markdown_table(["mode", "bytes", "cross_attention_chunk_size", "peak MiB above", "seconds"], rows)
    print(table)
    if args.out:
        command = " ".join(["python scripts/long_input_memory.py", *(argv if argv is not None else sys.argv[1:])])
        Path(args.out).write_text(f"# One long input, whole and streamed\n\n`{command}`\n\n{common.machine_line()}; "
                                  f"1 thread, default model, batch 1.\n\n{table}\n", encoding="utf-8")  # fmt: skip


if __name__ == "__main__":
    sys.exit(common.run_cli(main))
