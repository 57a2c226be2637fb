"""Fast checks of scripts/baseline.py (char n-gram TF-IDF + LinearSVC) on a 5-language subset of the UDHR data."""

import gzip
import importlib.util
import json
from pathlib import Path

import pytest

pytest.importorskip("sklearn")

REPO = Path(__file__).resolve().parents[1]
DATA = REPO / "data" / "udhr"
LANGUAGES = ("deu", "fra", "rus", "cmn", "swh")  # Latin (two), Cyrillic, Han; chance = 1/5


def load_script():
    spec = importlib.util.spec_from_file_location("baseline_script", REPO / "scripts" / "baseline.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def baseline():
    return load_script()


@pytest.fixture(scope="module")
def subset(tmp_path_factory):
    """The 5 languages' train/validation/test rows, as .jsonl.gz (train), .jsonl and .csv (to cover the readers)."""
    out = tmp_path_factory.mktemp("udhr5")
    rows = {}
    for split in ("train", "validation", "test"):
        with gzip.open(DATA / f"{split}.jsonl.gz", "rt", encoding="utf-8") as f:
            rows[split] = [r for r in map(json.loads, f) if r["label"] in LANGUAGES]
        assert {r["label"] for r in rows[split]} == set(LANGUAGES)
    # Rename the columns to check --text_column / --label_column.
    renamed = {s: [{"sentence": r["text"], "lang": r["label"]} for r in rs] for s, rs in rows.items()}
    with gzip.open(out / "train.jsonl.gz", "wt", encoding="utf-8") as f:
        f.writelines(json.dumps(r, ensure_ascii=False) + "\n" for r in renamed["train"])
    (out / "validation.jsonl").write_text(
        "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in renamed["validation"]), encoding="utf-8"
    )
    import csv

    with open(out / "test.csv", "w", encoding="utf-8", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=["sentence", "lang"])
        writer.writeheader()
        writer.writerows(renamed["test"])
    return out, {s: len(rs) for s, rs in rows.items()}


def run(baseline, subset, tmp_path, *extra):
    folder, _ = subset
    out = tmp_path / "results.json"
    results = baseline.main([
        "--train_file", str(folder / "train.jsonl.gz"),
        "--validation_file", str(folder / "validation.jsonl"),
        "--test_file", str(folder / "test.csv"),
        "--text_column", "sentence", "--label_column", "lang",
        "--ngram_ranges", "1-3", "--C", "0.5,1",
        "--output_json", str(out),
        *extra,
    ])
    return results, json.loads(out.read_text(encoding="utf-8"))


@pytest.mark.parametrize("max_bytes", [None, 64])
def test_baseline_on_five_languages(baseline, subset, tmp_path, capsys, max_bytes):
    extra = [] if max_bytes is None else ["--max_bytes", str(max_bytes)]
    results, written = run(baseline, subset, tmp_path, *extra)
    printed = capsys.readouterr().out
    assert written == json.loads(json.dumps(results))  # the JSON file holds what main() returned

    _, counts = subset
    assert written["data"]["examples"] == counts
    assert written["data"]["classes"] == len(LANGUAGES)
    assert written["data"]["max_bytes"] == max_bytes
    assert len(written["grid"]) == 2  # 1 n-gram range x 2 C values, all scored on validation
    assert written["chosen"]["C"] in (0.5, 1.0) and written["chosen"]["ngram_range"] == [1, 3]
    for split in ("validation", "test"):
        m = written["metrics"][split]
        assert 0.0 <= m["accuracy"] <= 1.0 and 0.0 <= m["macro_f1"] <= 1.0
        # Chance is 0.2; these five languages are easy for character n-grams.
        assert m["accuracy"] >= 0.9 and m["macro_f1"] >= 0.9, (split, m)
        assert f"{split}: accuracy {m['accuracy']:.4f}  macro-F1 {m['macro_f1']:.4f}" in printed
    assert written["timings"]["train_wall_s"] >= 0
    assert written["hardware"]["cpu_count"] >= 1 and written["hardware"]["cpu_model"]
    assert "hardware: " in printed and "training time" in printed
    assert written["versions"]["sklearn"] and "--output_json" in written["command"]


def test_truncate_bytes(baseline):
    t = baseline.truncate_bytes
    assert t("abc", None) == "abc"
    assert t("abc", 10) == "abc"
    assert t("abcdef", 3) == "abc"
    # "é" is 2 bytes, "中" 3 bytes: a character cut at the boundary is dropped, never split.
    assert t("éé", 3) == "é"
    assert t("中文", 5) == "中"
    assert t("中文", 6) == "中文"
    for n in range(1, 12):
        assert len(t("aé中文b", n).encode("utf-8")) <= n


def test_readers_and_defaults(baseline):
    args = baseline.build_parser().parse_args([])
    assert Path(args.train_file) == DATA / "train.jsonl.gz" and Path(args.train_file).is_file()
    assert args.max_bytes is None
    assert baseline.parse_ngram_ranges("1-3, 2-4,2") == [(1, 3), (2, 4), (2, 2)]
    with pytest.raises(Exception):
        baseline.parse_ngram_ranges("3-1")
