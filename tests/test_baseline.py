"""Fast checks of scripts/baseline.py (TF-IDF char / word + LinearSVC, fastText) on a tiny generated data set."""

import csv
import gzip
import json
import random
from pathlib import Path

import pytest
from common import UserError

pytest.importorskip("sklearn")
pytest.importorskip("fasttext")

REPO = Path(__file__).resolve().parents[1]
#: labels with spaces, a colon and Cyrillic, to check fastText's label encoding; chance = 1/3
VOCAB = {"class one": "apple banana cherry grape lemon mango", "класс два": "dog cat mouse horse sheep goat",
         "3: three": "red blue green black white brown"}  # fmt: skip
FAST = ["--fasttext_params", "bucket=10000"]  # fastText's default 2M buckets x dim 100 would take 800 MB


@pytest.fixture(scope="module")
def baseline():
    import baseline

    return baseline


def toy_rows(per_label, seed, singleton=False):
    """Separable toy examples (each label its own words, plus shared noise), some across lines and tabs."""
    rng = random.Random(seed)
    rows = []
    for label, words in VOCAB.items():
        for _ in range(1 if singleton and label == "3: three" else per_label):
            text = " ".join(rng.choice(words.split() + ["the", "a"]) for _ in range(8))
            rows.append({"sentence": text.replace(" ", rng.choice([" ", " ", "\n", "\t"]), 2), "lang": label})
    rng.shuffle(rows)
    return [{"id": f"row{i}", **r} for i, r in enumerate(rows)]


def write(path, rows):
    if path.name.endswith(".csv"):
        with open(path, "w", encoding="utf-8", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
    else:
        with (gzip.open if path.name.endswith(".gz") else open)(path, "wt", encoding="utf-8") as f:
            f.writelines(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)
    return str(path)


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    d = tmp_path_factory.mktemp("toy")
    return {"train": write(d / "train.csv", toy_rows(40, 0)),  # three readers: csv, jsonl, jsonl.gz
            "validation": write(d / "validation.jsonl", toy_rows(8, 1)),
            "test": write(d / "test.jsonl.gz", toy_rows(8, 2))}


def run(baseline, files, *extra):
    argv = ["--train_file", files["train"], "--test_file", files["test"], "--text_column", "sentence",
            "--label_column", "lang", *FAST, *extra]  # fmt: skip
    if "validation" in files:
        argv += ["--validation_file", files["validation"]]
    return baseline.main(argv)


def test_every_system_beats_chance(baseline, toy, tmp_path, capsys):
    out = tmp_path / "r.json"
    report = run(baseline, toy, "--output_json", str(out), "--C", "0.5,1")
    printed = capsys.readouterr().out
    assert json.loads(out.read_text(encoding="utf-8")) == json.loads(json.dumps(report))
    assert report["data"]["examples"] == {"train": 120, "validation": 24, "test": 24} and report["data"]["classes"] == 3
    assert list(report["systems"]) == ["tfidf_char", "tfidf_word", "fasttext"]
    for system, r in report["systems"].items():
        for split in ("validation", "test"):
            assert r[split]["accuracy"] >= 0.9 and r[split]["macro_f1"] >= 0.9, (system, split, r[split])
        assert r["train_wall_s"] >= 0 and r["docs_per_s"] > 0 and r["bytes_per_s"] > r["docs_per_s"]
        assert r["model_bytes"] > 1000
        assert f"| {system} | {r['validation']['accuracy']:.4f} | {r['validation']['macro_f1']:.4f} |" in printed
    assert len(report["systems"]["tfidf_char"]["grid"]) == 2 and len(report["systems"]["tfidf_word"]["grid"]) == 1
    ft_params = report["systems"]["fasttext"]["params"]
    assert ft_params == {**baseline.FASTTEXT_PARAMS, "bucket": 10000, "seed": 0}
    assert {"scikit-learn", "datasets", "fasttext-numpy2"} <= set(report["versions"])
    assert report["hardware"]["cpu_count"] >= 1 and "--output_json" in report["command"]


def test_max_bytes_and_carved_validation(baseline, toy):
    report = run(baseline, {"train": toy["train"], "test": toy["test"]}, "--systems", "tfidf_word", "--max_bytes", "20")
    assert report["data"]["examples"] == {"train": 108, "validation": 12, "test": 24}  # 10% of 120 held out
    assert report["systems"]["tfidf_word"]["test"]["accuracy"] > 0.5


@pytest.mark.parametrize("singleton", [False, True], ids=["stratified", "plain"])  # plain: a label with 1 example
def test_carve_matches_train_py(baseline, tmp_path, monkeypatch, singleton):
    import datasets

    rows = toy_rows(30, 3, singleton=singleton)
    path = write(tmp_path / "train.jsonl", rows)
    train_rows, val_rows = baseline.carve_validation(baseline.load_split(path, "", "sentence", "lang", None)[1], 10, 42)
    ours = [[rows[i]["id"] for i in r] for r in (train_rows, val_rows)]

    class Carved(Exception):
        pass

    split_once = datasets.Dataset.train_test_split

    def spy(self, *args, **kwargs):  # train.py's carve: record the ids it holds out, then stop the run
        split = split_once(self, *args, **kwargs)
        raise Carved([split["train"]["id"], split["test"]["id"]])

    monkeypatch.setattr(datasets.Dataset, "train_test_split", spy)
    import train

    with pytest.raises(Carved) as carved:
        train.main(["--output_dir", str(tmp_path / "out"), "--train_file", path, "--text_column", "sentence",
                    "--label_column", "lang", "--torch_num_threads", "1"])  # fmt: skip
    assert carved.value.args[0] == ours
    assert sorted(ours[0] + ours[1]) == sorted(r["id"] for r in rows) and 0.09 < len(ours[1]) / len(rows) < 0.12


def test_bad_inputs(baseline, toy, capsys):
    with pytest.raises(UserError, match=r"no column 'body' \(its columns: \['id', 'sentence', 'lang'\]\)"):
        run(baseline, toy, "--text_column", "body")
    with pytest.raises(UserError, match="no such file"):
        run(baseline, {**toy, "test": toy["test"] + ".missing.csv"})
    for argv, message in ((["--systems", "tfidf_char,svm"], "unknown system (known: tfidf_char, tfidf_word, "
                           "fasttext): 'svm'"), (["--train_file", toy["train"]], "--test_file is needed"),
                          (["--test_file", toy["test"]], "need a --train_file too"),
                          (["--fasttext_params", "epochs=3"], "unknown fastText parameter 'epochs'")):  # fmt: skip
        with pytest.raises(SystemExit) as exit_:
            baseline.main(argv)
        assert exit_.value.code == 2 and message in capsys.readouterr().err


def test_truncate_bytes_and_defaults(baseline):
    t = baseline.truncate_bytes
    assert t("abc", None) == "abc" and t("abcdef", 3) == "abc"
    assert t("éé", 3) == "é" and t("中文", 5) == "中" and t("中文", 6) == "中文"  # a cut character is dropped
    assert all(len(t("aé中文b", n).encode("utf-8")) <= n for n in range(1, 12))
    args = baseline.build_parser().parse_args([])
    assert args.systems == list(baseline.SYSTEMS) and args.train_file is None and args.ngram_ranges == [(1, 3)]
    assert (REPO / "data" / "udhr" / "train.jsonl.gz").is_file()
