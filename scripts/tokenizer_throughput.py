"""Measure PerceiverByteTokenizer throughput (MB/s) on a batch of 1,000 texts of 1 KiB each.

Run from the repository root:

    python scripts/tokenizer_throughput.py                # PerceiverByteTokenizer only
    python scripts/tokenizer_throughput.py --compare      # also transformers' PerceiverTokenizer, for reference

Each configuration tokenizes the whole batch in one call; the figure is the median over `--repeats` calls
(after one warm-up call) of input bytes / time, in MB/s (1 MB = 10**6 bytes), by wall-clock time and by the
process's CPU time. Inputs are deterministic (seeded) and made here; nothing is downloaded.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # perceiver_byte, when it is not installed

from perceiver_byte.tokenization_perceiver_byte import PerceiverByteTokenizer


def make_texts(n: int, size: int, seed: int = 0) -> list[str]:
    """`n` texts of exactly `size` UTF-8 bytes: ASCII words with some 2-byte letters (é, ö, ß)."""
    rng = random.Random(seed)
    alphabet = "abcdefghijklmnopqrstuvwxyz      ABCDEFGHIJ.,éöß"
    texts = []
    for _ in range(n):
        chars, used = [], 0
        while used < size:
            c = rng.choice(alphabet)
            width = len(c.encode("utf-8"))
            if used + width > size:
                c, width = " ", 1
            chars.append(c)
            used += width
        texts.append("".join(chars))
    return texts


def measure(fn, n_bytes: int, repeats: int) -> tuple[float, float]:
    """(MB/s by wall-clock time, MB/s by this process's CPU time), each from the median of `repeats` calls."""
    fn()  # warm-up
    wall, cpu = [], []
    for _ in range(repeats):
        start_wall, start_cpu = time.perf_counter(), time.process_time()
        fn()
        wall.append(time.perf_counter() - start_wall)
        cpu.append(time.process_time() - start_cpu)
    return n_bytes / statistics.median(wall) / 1e6, n_bytes / statistics.median(cpu) / 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--texts", type=int, default=1000)
    parser.add_argument("--size", type=int, default=1024, help="bytes per text")
    parser.add_argument("--repeats", type=int, default=9)
    parser.add_argument("--compare", action="store_true", help="also time transformers' PerceiverTokenizer")
    args = parser.parse_args()

    texts = make_texts(args.texts, args.size)
    blobs = [t.encode("utf-8") for t in texts]
    n_bytes = sum(len(b) for b in blobs)
    tok = PerceiverByteTokenizer()
    configs = {
        'tok(texts, padding=True, truncation=True, max_length=2048, return_tensors="pt")': lambda: tok(
            texts, padding=True, truncation=True, max_length=2048, return_tensors="pt"
        ),
        'tok(texts, padding=True, return_tensors="np")': lambda: tok(texts, padding=True, return_tensors="np"),
        "tok(texts)  (Python lists, as datasets.map(batched=True) gets)": lambda: tok(texts),
        'tok(list of bytes, padding=True, return_tensors="pt")': lambda: tok(blobs, padding=True, return_tensors="pt"),
    }
    print(f"{args.texts} texts x {args.size} bytes = {n_bytes / 1e6:.3f} MB per call; median of {args.repeats} calls")
    print("wall MB/s   CPU MB/s   (CPU-time figure is less sensitive to other load on the machine)")
    for name, fn in configs.items():
        wall, cpu = measure(fn, n_bytes, args.repeats)
        print(f"{wall:9.1f}  {cpu:9.1f}   PerceiverByteTokenizer  {name}")
    if args.compare:
        from transformers import PerceiverTokenizer

        ref = PerceiverTokenizer(model_max_length=10**9)
        fn = lambda: ref(texts, padding=True, truncation=True, max_length=2048, return_tensors="pt")
        wall, cpu = measure(fn, n_bytes, max(1, args.repeats // 3))
        print(f"{wall:9.1f}  {cpu:9.1f}   transformers PerceiverTokenizer  "
              'ref(texts, padding=True, truncation=True, max_length=2048, return_tensors="pt")')  # fmt: skip


if __name__ == "__main__":
    main()
