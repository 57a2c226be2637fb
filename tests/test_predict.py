"""scripts/predict.py on a tiny model trained by scripts/train.py: texts, binary files (globs), stdin, --jsonl."""

import io
import json
import subprocess
import sys
from pathlib import Path

import predict
import pytest


REPO = Path(__file__).resolve().parents[1]
PREDICT = REPO / "scripts" / "predict.py"


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    from test_train import LANGS, run_main, tiny_args, udhr_rows, write_csv

    d = tmp_path_factory.mktemp("predict")
    train = write_csv(d / "train.csv", udhr_rows("train", per_label=10))
    out = d / "model"
    run_main(tiny_args(out, "--train_file", train, "--do_predict", "false", "--report_to", "none", steps=4))
    assert (out / "model.safetensors").is_file()
    return out, LANGS


def run(args, stdin=None):
    return subprocess.run([sys.executable, str(PREDICT), *map(str, args)], input=stdin, capture_output=True,
                          timeout=300)  # fmt: skip


def test_texts_binary_file_and_stdin_as_jsonl(model_dir, tmp_path):
    model, langs = model_dir
    blob = tmp_path / "blob.bin"
    blob.write_bytes(bytes(range(256)) * 3)  # not UTF-8, longer than max_length
    proc = run(["--model", model, "--text", "All human beings are born free.", "--text", "Tous les êtres humains",
                "--file", blob, "--top_k", "2", "--jsonl"])  # fmt: skip
    assert proc.returncode == 0, proc.stderr.decode()[-2000:]
    rows = [json.loads(line) for line in proc.stdout.decode().splitlines()]
    assert [r["source"] for r in rows] == ["text:0", "text:1", f"file:{blob}"]
    for r in rows:
        assert len(r["labels"]) == 2 and all(x["label"] in langs for x in r["labels"])
        assert r["labels"][0]["score"] >= r["labels"][1]["score"]
    assert rows[2]["num_bytes"] == 768 and rows[2]["truncated"] is True
    assert b"Classifying" in proc.stderr  # the progress bar goes to stderr, stdout stays clean

    proc = run(["--model", model, "--jsonl", "--lines", "--top_k", "1"], stdin=b"first line\n\nsecond \xff line\n")
    assert proc.returncode == 0, proc.stderr.decode()[-2000:]
    rows = [json.loads(line) for line in proc.stdout.decode().splitlines()]
    assert [r["source"] for r in rows] == ["stdin:1", "stdin:3"]
    assert rows[1]["num_bytes"] == len(b"second \xff line")

    proc = run(["--model", model, "--top_k", "3"], stdin="Всe люди рождаются свободными".encode())
    assert proc.returncode == 0
    source, labels = proc.stdout.decode().strip().split("\t")
    assert source == "stdin" and labels.count("(") == 3


def test_in_process_globs_and_scores(model_dir, tmp_path):
    model, langs = model_dir
    for i in range(5):
        (tmp_path / "sub").mkdir(exist_ok=True)
        (tmp_path / "sub" / f"f{i}.txt").write_bytes(f"file number {i}".encode())
    out = io.StringIO()
    results = predict.main(["--model", str(model), "--file", str(tmp_path / "**" / "*.txt"), "--batch_size", "2",
                            "--top_k", "10", "--no_progress"], stdout=out)  # fmt: skip
    assert len(results) == 5 and len(out.getvalue().splitlines()) == 5
    for r in results:
        assert len(r["labels"]) == len(langs)  # top_k is capped at the number of labels
        assert sum(x["score"] for x in r["labels"]) == pytest.approx(1.0, abs=1e-4)  # softmax over all labels


def test_errors(model_dir, tmp_path):
    model, _ = model_dir
    with pytest.raises(predict.UserError, match="no file matches"):
        predict.main(["--model", str(model), "--file", str(tmp_path / "*.nothing")])
    with pytest.raises(predict.UserError, match="no such folder"):
        predict.main(["--model", str(tmp_path / "missing"), "--text", "x"])
    proc = run(["--model", model], stdin=b"")
    assert proc.returncode == 2 and b"error: Standard input was empty" in proc.stderr
