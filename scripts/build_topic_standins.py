"""Two topic-classification stand-ins made from data/manpages in the format of the held-back benchmarks (lowercase
letters and single spaces only, CSV with `text` and `label`), to choose defaults on without seeing those benchmarks:

- `sections`: the man section (7 classes, 3,029 train / 755 test), data/manpages' own split (train + validation
  as train, so that train.py carves its validation as it would on a benchmark);
- `packages`: the Debian package a page comes from (71 classes of 6 to 893 pages: many classes with a handful of
  examples, like the 52-class benchmark), 70/30 per package, seeded.

    python scripts/build_topic_standins.py --out_dir /tmp/standins
    python scripts/train.py --train_file /tmp/standins/sections_train.csv --test_file /tmp/standins/sections_test.csv \
        --text_column text --label_column label --max_length 2048 --num_train_epochs 3 --output_dir outputs/sections
"""

import argparse
import collections
import csv
import gzip
import json
import random
import re
from pathlib import Path

MANPAGES = Path(__file__).resolve().parent.parent / "data" / "manpages"
MIN_PAGES_PER_PACKAGE = 6
TEST_FRACTION = 0.3


def letters_only(text: str) -> str:
    return " ".join(re.sub(r"[^a-z]+", " ", text.lower()).split())


def read(split: str) -> list[dict]:
    with gzip.open(MANPAGES / f"{split}.jsonl.gz", "rt", encoding="utf-8") as f:
        return [json.loads(line) for line in f]


def write(path: Path, rows: list[dict], label_key: str) -> None:
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["text", "label"])
        writer.writerows([letters_only(row["text"]), row[label_key]] for row in rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out_dir", required=True, type=Path)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    args.out_dir.mkdir(parents=True, exist_ok=True)
    train, validation, test = read("train"), read("validation"), read("test")
    write(args.out_dir / "sections_train.csv", train + validation, "label")
    write(args.out_dir / "sections_test.csv", test, "label")

    pages = collections.defaultdict(list)
    for row in train + validation + test:
        pages[row["package"]].append(row)
    package_train, package_test = [], []
    rng = random.Random(args.seed)
    for package in sorted(pages):
        rows = pages[package]
        if len(rows) < MIN_PAGES_PER_PACKAGE:
            continue
        rng.shuffle(rows)
        cut = max(1, round(len(rows) * TEST_FRACTION))
        package_test += rows[:cut]
        package_train += rows[cut:]
    write(args.out_dir / "packages_train.csv", package_train, "package")
    write(args.out_dir / "packages_test.csv", package_test, "package")
    print(f"sections: {len(train) + len(validation)} train, {len(test)} test; packages: "
          f"{len({r['package'] for r in package_train})} classes, {len(package_train)} train, {len(package_test)} test")


if __name__ == "__main__":
    main()
