"""Checks on the committed Debian man-page section data (data/manpages).

Stdlib only, no network; reads only the committed files.  Rebuild the data
with ``python scripts/build_manpages_dataset.py --out data/manpages --cache /tmp/manpages-debs``
and update the tables in ``data/manpages/README.md`` (these tests compare).
"""

import collections
import gzip
import hashlib
import json
import re
import statistics
from pathlib import Path

import pytest

from scripts import build_manpages_dataset as build

DATA = Path(__file__).resolve().parents[1] / "data" / "manpages"
SPLITS = ("train", "validation", "test")
LABELS = build.LABELS  # section -> label, the builder's rule
# Pages whose rendered text does not start with the NAME section (source quirks,
# documented in the data card).
NO_NAME_SECTION = {"postfix-collate.1", "__ppc_set_ppr_med.3"}
NOT_LETTERS = bytes(i for i in range(256) if not chr(i).isascii() or not chr(i).isalpha())


def card_table(header: str) -> list[list[str]]:
    """Rows (cells) of the README table whose header line starts with ``header``."""
    lines = (DATA / "README.md").read_text(encoding="utf-8").splitlines()
    start = next(i for i, l in enumerate(lines) if l.startswith(header))
    rows = []
    for line in lines[start + 2 :]:
        if not line.startswith("|"):
            break
        rows.append([c.strip().strip("`") for c in line.strip("|").split("|")])
    return rows


def group_of(page: str) -> str:
    return page.rsplit(".", 1)[0].lower()


@pytest.fixture(scope="module")
def data():
    out = {}
    for split in SPLITS:
        with gzip.open(DATA / f"{split}.jsonl.gz", "rt", encoding="utf-8") as f:
            out[split] = [json.loads(line) for line in f]
    return out


def test_fields_and_order(data):
    for split in SPLITS:
        rows = data[split]
        assert rows, split
        for r in rows:
            assert list(r) == ["text", "label", "page", "package"]
            assert all(isinstance(v, str) and v for v in r.values())
            assert LABELS[r["page"].rsplit(".", 1)[1][0]] == r["label"], r["page"]
        keys = [(r["label"], r["page"], r["package"]) for r in rows]
        assert keys == sorted(keys) and len(set(keys)) == len(keys)


def test_counts_match_card(data):
    table = {row[0]: [int(c) for c in row[1:]] for row in card_table("| label | train | validation | test | all |")}
    counts = {s: collections.Counter(r["label"] for r in data[s]) for s in SPLITS}
    assert set(table) == set(LABELS.values()) | {"all"}
    for label in LABELS.values():
        row = [counts[s][label] for s in SPLITS]
        assert table[label] == row + [sum(row)], label
        assert min(row) > 0, label  # every label in every split
    assert table["all"] == [len(data[s]) for s in SPLITS] + [sum(map(len, data.values()))]


def test_files_match_card():
    table = {row[0]: row[1:] for row in card_table("| file | bytes | sha256 |")}
    for split in SPLITS:
        raw = (DATA / f"{split}.jsonl.gz").read_bytes()
        assert table[f"{split}.jsonl.gz"] == [str(len(raw)), hashlib.sha256(raw).hexdigest()]


def test_split_by_page_group(data):
    groups = {s: {group_of(r["page"]) for r in data[s]} for s in SPLITS}
    for i, a in enumerate(SPLITS):
        for b in SPLITS[i + 1 :]:
            assert not groups[a] & groups[b], (a, b, sorted(groups[a] & groups[b])[:5])
    for split in SPLITS:  # the documented hash rule
        for g in groups[split]:
            h = int.from_bytes(hashlib.sha256(g.encode()).digest()[:8], "big") / 2**64
            assert split == ("train" if h < 0.7 else "validation" if h < 0.8 else "test"), g


def test_no_section_giveaway(data):
    header = re.compile(r"^(\S+)\((\d\w*)\) {2,}.*\S {2,}\1\(\2\)$", re.MULTILINE | re.IGNORECASE)
    titles = re.compile(
        r"^\S.*\b(User Commands|System Calls Manual|Library Functions Manual"
        r"|File Formats Manual|Miscellaneous Information Manual"
        r"|System Manager's Manual|General Commands Manual|Kernel Interfaces"
        r"|Devices Manual) {2,}",
        re.MULTILINE,
    )
    for split in SPLITS:
        for r in data[split]:
            name, ext = r["page"].rsplit(".", 1)
            text = r["text"]
            assert not header.search(text), r["page"]
            assert not titles.search(text), r["page"]
            if f"{name}({ext[0]}".lower() in text.lower():  # cheap filter, then exact rule
                self_ref = rf"(?<![\w.-]){re.escape(name)}\({ext[0]}[a-z0-9]*\)"
                assert not re.search(self_ref, text, re.IGNORECASE), r["page"]


def test_texts_are_english_documents(data):
    rows = [r for s in SPLITS for r in data[s]]
    texts = [r["text"] for r in rows]
    assert len(set(texts)) == len(texts), "duplicate text"
    common = re.compile(r"\b(the|a|an|of|to|is|and|in|for|this|that|with|be)\b")
    wordy = 0
    for r in rows:
        t = r["text"]
        assert t.strip() and t == t.strip("\n") and "\n\n\n" not in t, r["page"]
        assert not re.search(r"[\x00-\x08\x0b-\x1f\x7f]", t), r["page"]  # no overstrike/SGR
        assert t.startswith("NAME\n") or r["page"] in NO_NAME_SECTION, r["page"]
        visible = len(t) - t.count(" ") - t.count("\n")
        letters = len(t.encode("utf-8").translate(None, NOT_LETTERS))
        assert letters >= 0.4 * visible, r["page"]  # mostly Latin letters
        wordy += len(common.findall(t[:20000].lower())) >= 3
    assert wordy >= 0.99 * len(rows)
    assert statistics.median(len(t.encode()) for t in texts) > 2000  # long documents


def test_topic_standins_are_letters_and_spaces_with_the_documented_counts(tmp_path, monkeypatch):
    """scripts/build_topic_standins.py: the format of the held-back topic benchmarks, and the counts the docs give."""
    import csv
    import sys

    from scripts import build_topic_standins as standins

    monkeypatch.setattr(sys, "argv", ["build_topic_standins.py", "--out_dir", str(tmp_path)])
    standins.main()
    csv.field_size_limit(sys.maxsize)
    read = lambda name: list(csv.DictReader(open(tmp_path / name, encoding="utf-8")))  # noqa: E731
    sections_train, sections_test = read("sections_train.csv"), read("sections_test.csv")
    packages_train, packages_test = read("packages_train.csv"), read("packages_test.csv")
    assert (len(sections_train), len(sections_test)) == (3029, 755)
    assert len({r["label"] for r in sections_train}) == 7
    per_package = collections.Counter(r["label"] for r in packages_train)
    assert len(per_package) == 71 and min(per_package.values()) == 4 and max(per_package.values()) == 625
    assert {r["label"] for r in packages_test} <= set(per_package)
    for row in sections_train + packages_test:
        assert re.fullmatch(r"[a-z]+( [a-z]+)*", row["text"]), row["text"][:80]
