#!/usr/bin/env python
"""Training-step time of the byte-array options (docs/accuracy.md): forward, backward and AdamW step of the default
classifier (452 labels, UDHR's count) on random bytes, one torch thread, with each variant's parameter count.

    python scripts/byte_array_step_times.py                      # batch 32 x 200 bytes, 10 timed steps
    python scripts/byte_array_step_times.py --length 2048 --batch 8

Run it on a quiet machine: it prints a markdown table and nothing else.
"""

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # perceiver_byte, when it is not installed

import torch  # noqa: E402

from common import markdown_table  # noqa: E402
from perceiver_byte import PerceiverByteConfig, PerceiverByteForSequenceClassification  # noqa: E402

VARIANTS = {  # the names of docs/accuracy.md's table
    "bytes alone (the landed byte array)": dict(ngram_orders=[]),
    "local mixing k = 5 only": dict(ngram_orders=[], local_kernel_size=5),
    "n-grams 2-6, 65,536 x 32 (the first round's default)": dict(ngram_embedding_size=32),
    "n-grams 2-6, 65,536 x 32 + local mixing k = 5": dict(ngram_embedding_size=32, local_kernel_size=5),
    "n-grams 2-6, 16,384 x 128 + local mixing k = 5": dict(ngram_buckets=16384, local_kernel_size=5),
    "n-grams 2-6, 65,536 x 128 (the default since the second round)": {},
    "n-grams 2-6, 262,144 x 32": dict(ngram_buckets=262144, ngram_embedding_size=32),
}


def step_time(overrides: dict, batch: int, length: int, steps: int) -> tuple[float, int]:
    torch.manual_seed(0)
    model = PerceiverByteForSequenceClassification(PerceiverByteConfig(num_labels=452, **overrides)).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    ids, labels = torch.randint(6, 262, (batch, length)), torch.randint(0, 452, (batch,))

    def step():
        model(ids, labels=labels).loss.backward()
        optimizer.step()
        optimizer.zero_grad()

    for _ in range(3):  # warm-up
        step()
    start = time.perf_counter()
    for _ in range(steps):
        step()
    return (time.perf_counter() - start) / steps, sum(p.numel() for p in model.parameters())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--length", type=int, default=200)
    parser.add_argument("--steps", type=int, default=10)
    args = parser.parse_args()
    torch.set_num_threads(1)
    rows = []
    for name, overrides in VARIANTS.items():
        seconds, parameters = step_time(overrides, args.batch, args.length, args.steps)
        rows.append([name, f"{1000 * seconds:.0f}", f"{parameters / 1e6:.2f}M"])
    header = [f"byte array (batch {args.batch} x {args.length} bytes, 1 thread)", "ms/step", "parameters"]
    print(markdown_table(header, rows))


if __name__ == "__main__":
    main()
