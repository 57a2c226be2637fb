"""Checks on the committed UDHR language-identification data (data/udhr).

Stdlib only and fast; rebuild the data with
``python scripts/build_udhr_dataset.py --out data/udhr``.
"""

import collections
import gzip
import json
from pathlib import Path

import pytest

DATA = Path(__file__).resolve().parents[1] / "data" / "udhr"
SPLITS = ("train", "validation", "test")
# Keep in step with scripts/build_udhr_dataset.py and data/udhr/README.md.
VALIDATION_ARTICLES = {3, 8, 13, 18, 22, 27, 30}
TEST_ARTICLES = {4, 10, 15, 20, 25, 28}
MIN_CLASSES = 400
MIN_TRAIN = 20
MIN_EVAL = 5


@pytest.fixture(scope="module")
def data():
    out = {}
    for split in SPLITS:
        path = DATA / f"{split}.jsonl.gz"
        assert path.is_file(), f"missing {path}"
        with gzip.open(path, "rt", encoding="utf-8") as f:
            out[split] = [json.loads(line) for line in f]
    return out


def test_splits_and_fields(data):
    for split in SPLITS:
        rows = data[split]
        assert rows, split
        for r in rows:
            assert set(r) == {"text", "label", "article"}
            assert isinstance(r["text"], str) and isinstance(r["label"], str)
            assert isinstance(r["article"], int) and 0 <= r["article"] <= 30


def test_split_by_article(data):
    articles = {s: {r["article"] for r in data[s]} for s in SPLITS}
    for i, a in enumerate(SPLITS):
        for b in SPLITS[i + 1 :]:
            assert not articles[a] & articles[b], (a, b, articles[a] & articles[b])
    assert articles["validation"] == VALIDATION_ARTICLES
    assert articles["test"] == TEST_ARTICLES
    assert articles["train"] == set(range(31)) - VALIDATION_ARTICLES - TEST_ARTICLES


def test_labels(data):
    counts = {s: collections.Counter(r["label"] for r in data[s]) for s in SPLITS}
    train = set(counts["train"])
    assert set(counts["validation"]) <= train
    assert set(counts["test"]) <= train
    # Every kept label is in all three splits, with the documented minimums.
    assert set(counts["validation"]) == set(counts["test"]) == train
    assert len(train) >= MIN_CLASSES
    assert min(counts["train"].values()) >= MIN_TRAIN
    assert min(counts["validation"].values()) >= MIN_EVAL
    assert min(counts["test"].values()) >= MIN_EVAL


def test_texts(data):
    texts = [r["text"] for s in SPLITS for r in data[s]]
    assert all(t.strip() for t in texts), "empty or whitespace-only text"
    assert all(t == t.strip() for t in texts), "untrimmed text"
    assert all("\n" not in t for t in texts), "unwrapped line break"
    assert len(set(texts)) == len(texts), "duplicate text"


def test_languages_tsv(data):
    lines = (DATA / "languages.tsv").read_text(encoding="utf-8").splitlines()
    header = lines[0].split("\t")
    assert header == ["label", "name", "declarations", "train", "validation", "test"]
    rows = [dict(zip(header, line.split("\t"))) for line in lines[1:]]
    for split in SPLITS:
        counts = collections.Counter(r["label"] for r in data[split])
        assert {r["label"]: int(r[split]) for r in rows} == dict(counts)
