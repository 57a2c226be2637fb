"""scripts/train.py end to end, on tiny models and tiny data (a few UDHR languages, random binary files).

Most runs call the script's `main(argv)` in this process (the same code path as the command line, minus the Python
start-up); the resume test (SIGKILL after the first checkpoint) and the 2-process `accelerate launch` test run it as a
real command. Every run uses a model of a few thousand parameters, so the time goes to start-up and evaluation.
"""

import functools
import gzip
import json
import math
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import train as train_script
import training_data
from transformers import TrainerCallback
from hub_server import hub_server_fixture  # noqa: F401  (registers the `hub_server` fixture: a local fake Hub)


REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "scripts" / "train.py"
#: train.py with a callback that writes each rank's weight hash (the test hook lives in tests/, not in the script)
STATE_HASH_SCRIPT = REPO / "tests" / "train_with_state_hash.py"
UDHR = REPO / "data" / "udhr"
TINY = ("d_model=16,num_latents=4,d_latents=16,num_blocks=1,num_self_attends_per_block=1,"
        "num_cross_attention_heads=1,num_self_attention_heads=1")  # fmt: skip
LANGS = ("eng", "fra", "rus", "jpn")




def tiny_args(output_dir, *extra, steps=6):
    return [
        "--output_dir", str(output_dir), "--config_overrides", TINY, "--max_length", "64",
        "--max_steps", str(steps), "--per_device_train_batch_size", "8", "--per_device_eval_batch_size", "32",
        "--learning_rate", "3e-3", "--warmup_steps", "0", "--logging_steps", "2", "--eval_strategy", "no",
        "--save_strategy", "no", "--disable_tqdm", "true", "--dataloader_pin_memory", "false",
        # one thread: for a model this small a second OpenMP thread only adds waiting, and on a busy machine a lot
        "--torch_num_threads", "1", *extra,
    ]  # fmt: skip


def udhr_rows(split, langs=LANGS, per_label=12):
    rows, counts = [], {}
    with gzip.open(UDHR / f"{split}.jsonl.gz", "rt", encoding="utf-8") as f:
        for line in f:
            row = json.loads(line)
            if row["label"] in langs and counts.get(row["label"], 0) < per_label:
                counts[row["label"]] = counts.get(row["label"], 0) + 1
                rows.append(row)
    return rows


def write_csv(path, rows, columns=("text", "label"), sep=","):
    import csv

    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f, delimiter=sep)
        writer.writerow(columns)
        for row in rows:
            writer.writerow([row[c] for c in columns])
    return path


def write_jsonl(path, rows, gz=False):
    opener = gzip.open if gz else open
    with opener(path, "wt", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
    return path


def run_main(argv, main=None):
    """`main` (train.py's by default) on `argv`, in this process."""
    import torch

    threads = torch.get_num_threads()
    try:
        return (main or train_script.main)([str(a) for a in argv])
    finally:
        torch.set_num_threads(threads)  # --torch_num_threads must not leak into other tests of this process


def results(output_dir):
    return json.loads((Path(output_dir) / "all_results.json").read_text())


def check_outputs(output_dir, labels, f1_name="Macro F1", test=True):
    """The files every training run must leave: model, code, tokenizer, labels, metrics, TensorBoard, model card."""
    out = Path(output_dir)
    for name in ("model.safetensors", "config.json", "tokenizer_config.json", "configuration_perceiver_byte.py",
                 "modeling_perceiver_byte.py", "tokenization_perceiver_byte.py", "all_results.json", "README.md"):  # fmt: skip
        assert (out / name).is_file(), f"{name} missing in {sorted(p.name for p in out.iterdir())}"
    config = json.loads((out / "config.json").read_text())
    assert sorted(config["label2id"]) == sorted(labels)
    assert {int(k): v for k, v in config["id2label"].items()} == {v: k for k, v in config["label2id"].items()}
    assert config["auto_map"]["AutoModelForSequenceClassification"].startswith("modeling_perceiver_byte.")
    metrics = results(out)
    keys = ["train_runtime", "eval_accuracy", "eval_f1"] + (["test_accuracy", "test_f1"] if test else [])
    for key in keys:
        assert key in metrics and math.isfinite(metrics[key]), (key, metrics)
    events = list(out.glob("runs/*/events.out.tfevents.*"))
    assert events, "no TensorBoard event file"

    from huggingface_hub import ModelCard

    card = ModelCard.load(out / "README.md")
    assert card.data.library_name == "transformers"
    assert card.data.pipeline_tag == "text-classification"
    assert card.data.license and card.data.tags and card.data.datasets and card.data.metrics
    by_key = {(r.dataset_split, r.metric_type): r for r in card.data.eval_results}
    assert by_key[("validation", "accuracy")].metric_value == pytest.approx(metrics["eval_accuracy"], abs=1e-4)
    assert by_key[("validation", "f1")].metric_value == pytest.approx(metrics["eval_f1"], abs=1e-4)
    assert f1_name in by_key[("validation", "f1")].metric_name
    if test:
        assert by_key[("test", "accuracy")].metric_value == pytest.approx(metrics["test_accuracy"], abs=1e-4)
    # round trip: what ModelCard writes back parses to the same eval results
    again = ModelCard(str(card))
    assert again.data.eval_results == card.data.eval_results
    return metrics, card


# --------------------------------------------------------------------------------------------- input kinds


@pytest.fixture(scope="module")
def csv_files(tmp_path_factory):
    d = tmp_path_factory.mktemp("csv")
    return {split: write_csv(d / f"{split}.csv", udhr_rows(split)) for split in ("train", "validation", "test")}


@pytest.fixture(scope="module")
def csv_run(csv_files, tmp_path_factory):
    out = tmp_path_factory.mktemp("csv_run") / "out"
    argv = tiny_args(out, "--train_file", csv_files["train"], "--validation_file", csv_files["validation"],
                     "--test_file", csv_files["test"], "--seed", "7")  # fmt: skip
    run_main(argv)
    return out, argv


def test_csv_end_to_end(csv_run):
    out, _ = csv_run
    metrics, card = check_outputs(out, LANGS)
    assert metrics["train_samples"] == 48 and metrics["eval_samples"] == len(udhr_rows("validation"))
    assert "Macro F1" in card.text and "| test |" in card.text
    # the saved model and tokenizer load back through the Auto classes and keep the training truncation
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(out)
    model = AutoModelForSequenceClassification.from_pretrained(out)
    assert tokenizer.model_max_length == 64 and model.config.num_labels == 4
    assert model.config.problem_type == "single_label_classification"


def test_seeded_runs_are_identical(csv_run, tmp_path):
    out, argv = csv_run
    again = tmp_path / "again"
    run_main([str(again) if a == str(out) else a for a in argv])
    first, second = results(out), results(again)
    keys = [k for k in first if k.startswith(("eval_", "test_")) and not k.endswith(("runtime", "per_second"))]
    keys.append("train_loss")
    assert {k: first[k] for k in keys} == {k: second[k] for k in keys}
    import safetensors.torch

    a = safetensors.torch.load_file(out / "model.safetensors")
    b = safetensors.torch.load_file(again / "model.safetensors")
    assert all((a[k] == b[k]).all() for k in a)


def test_jsonl_gz_int_labels_carved_validation(tmp_path):
    rows = [{"sentence": r["text"], "labels": LANGS.index(r["label"]) + 10, "id": i}
            for i, r in enumerate(udhr_rows("train"))]  # fmt: skip
    train = write_jsonl(tmp_path / "train.jsonl.gz", rows, gz=True)
    out = tmp_path / "out"
    run_main(tiny_args(out, "--train_file", train, "--validation_split_percentage", "25"))
    metrics, _ = check_outputs(out, ["10", "11", "12", "13"], test=False)
    assert metrics["eval_samples"] == 12 and metrics["train_samples"] == 36  # 25% held out, stratified: 3 per label


def test_parquet_multi_label(tmp_path):
    import pandas as pd

    def frame(split):
        rows = udhr_rows(split, per_label=8)
        # every row is "its language" plus "latin" for Latin-script languages: a list-valued label column
        return pd.DataFrame({"content": [r["text"] for r in rows],
                             "label": [[r["label"]] + (["latin"] if r["label"] in ("eng", "fra") else []) for r in rows]})  # fmt: skip

    paths = {}
    for split in ("train", "validation", "test"):
        paths[split] = tmp_path / f"{split}.parquet"
        frame(split).to_parquet(paths[split])
    out = tmp_path / "out"
    run_main(tiny_args(out, "--train_file", paths["train"], "--validation_file", paths["validation"],
                       "--test_file", paths["test"]))  # fmt: skip
    check_outputs(out, [*LANGS, "latin"], f1_name="Micro F1")
    config = json.loads((out / "config.json").read_text())
    assert config["problem_type"] == "multi_label_classification"


def test_tsv_multi_label_with_separator(tmp_path):
    rows = [{"text": r["text"], "tags": r["label"] + ("|latin" if r["label"] in ("eng", "fra") else "")}
            for r in udhr_rows("train", per_label=8)]  # fmt: skip
    train = write_csv(tmp_path / "train.tsv", rows, columns=("text", "tags"), sep="\t")
    out = tmp_path / "out"
    run_main(tiny_args(out, "--train_file", train, "--label_column", "tags", "--multi_label", "--label_separator", "|",
                       "--do_predict", "false"))  # fmt: skip
    check_outputs(out, [*LANGS, "latin"], f1_name="Micro F1", test=False)


@pytest.fixture
def binary_dir(tmp_path):
    import random

    rng = random.Random(0)
    root = tmp_path / "files"
    kinds = {"png": b"\x89PNG\r\n\x1a\n", "zip": b"PK\x03\x04", "text": b""}
    for label, magic in kinds.items():
        (root / label / "sub").mkdir(parents=True)
        for i in range(10):
            if label == "text":
                body = " ".join(rng.choice(["alpha", "beta", "gamma"]) for _ in range(30)).encode()
            else:
                body = magic + bytes(rng.randrange(256) for _ in range(rng.randrange(20, 120)))
            folder = root / label / ("sub" if i % 3 == 0 else "")
            (folder / f"f{i}.bin").write_bytes(body)
    (root / "png" / ".hidden").write_bytes(b"ignored")
    return root


def test_data_dir_of_binary_files(binary_dir, tmp_path):
    out = tmp_path / "out"
    args = tiny_args(out, "--data_dir", binary_dir)
    del args[args.index("--max_length") : args.index("--max_length") + 2]  # the defaults for files
    run_main(args)
    metrics, card = check_outputs(out, ["png", "text", "zip"], test=False)
    assert metrics["train_samples"] + metrics["eval_samples"] == 30
    tokenizer_config = json.loads((out / "tokenizer_config.json").read_text())
    assert (tokenizer_config["model_max_length"], tokenizer_config["truncation_side"]) == (
        train_script.DEFAULT_MAX_LENGTH["files"], "head+tail")


def test_early_stopping_and_bf16_and_gradient_checkpointing(csv_files, tmp_path):
    out = tmp_path / "out"
    # no improvement can reach the threshold, so training stops at the second evaluation (patience 1)
    run_main(tiny_args(out, "--train_file", csv_files["train"], "--validation_file", csv_files["validation"],
                       "--eval_strategy", "steps", "--eval_steps", "2", "--save_strategy", "steps", "--save_steps", "2",
                       "--early_stopping_patience", "1", "--early_stopping_threshold", "10", "--bf16",
                       "--gradient_checkpointing", "--do_predict", "false", steps=20))  # fmt: skip
    state = json.loads((out / "trainer_state.json").read_text())
    assert state["global_step"] < 20
    assert state["best_model_checkpoint"] is not None
    check_outputs(out, LANGS, test=False)
    assert "bf16" in (out / "README.md").read_text()


@pytest.mark.slow
def test_torch_compile(csv_files, tmp_path):
    out = tmp_path / "out"
    run_main(tiny_args(out, "--train_file", csv_files["train"], "--validation_file", csv_files["validation"],
                       "--torch_compile", "--do_predict", "false", steps=2))  # fmt: skip
    check_outputs(out, LANGS, test=False)


# --------------------------------------------------------------------------------------------- bad input


def expect_error(argv, *fragments):
    with pytest.raises(train_script.UserError) as info:
        run_main(argv)
    message = str(info.value)
    for fragment in fragments:
        assert fragment in message, f"{fragment!r} not in {message!r}"
    return message


class OptimizerGroups(TrainerCallback):
    """Records, at the start of training, each parameter's base learning rate in the optimizer."""

    def on_train_begin(self, args, state, control, model=None, optimizer=None, **kwargs):
        by_id = {id(p): g["initial_lr"] for g in optimizer.param_groups for p in g["params"]}
        self.lr = {name: by_id[id(p)] for name, p in model.named_parameters()}


@pytest.mark.parametrize("flag, expected", [((), 10 * 3e-3), (("--embedding_learning_rate", "5e-4"), 5e-4)])
def test_embedding_tables_train_at_their_own_learning_rate(csv_files, tmp_path, flag, expected):
    groups = OptimizerGroups()
    out = tmp_path / "out"
    run_main(tiny_args(out, "--train_file", csv_files["train"], "--validation_file", csv_files["validation"],
                       "--do_predict", "false", *flag, steps=2),
             main=functools.partial(train_script.main, callbacks=[groups]))  # fmt: skip
    tables = {n for n in groups.lr if n.endswith(("byte_embeddings.weight", "ngram_embeddings.weight"))}
    assert len(tables) == 2, sorted(groups.lr)
    assert [groups.lr[n] for n in sorted(tables)] == pytest.approx([expected] * 2)
    others = [lr for n, lr in groups.lr.items() if n not in tables]
    assert others == pytest.approx([3e-3] * len(others))
    assert f"| embedding_learning_rate | `{expected:.6g}` |" in (out / "README.md").read_text()


def test_refuses_a_learning_rate_of_zero_for_the_embeddings(tmp_path, csv_files):
    expect_error(tiny_args(tmp_path / "out", "--train_file", csv_files["train"], "--embedding_learning_rate", "0"),
                 "--embedding_learning_rate must be above 0")  # fmt: skip


def test_fine_tunes_a_pretrained_encoder_with_a_new_head(csv_files, tmp_path, caplog):
    """A masked-byte LM checkpoint (what scripts/pretrain.py writes) fine-tunes as a classifier: its encoder weights
    arrive unchanged, the head is new, the log says which is which, and "[MASK]" in a text is data again."""
    import torch
    from transformers import AutoModelForSequenceClassification

    from perceiver_byte import PerceiverByteConfig, PerceiverByteForMaskedLM, PerceiverByteTokenizer

    overrides = dict(item.split("=") for item in TINY.split(","))
    torch.manual_seed(0)
    pretrained = PerceiverByteForMaskedLM(PerceiverByteConfig(**{k: int(v) for k, v in overrides.items()}))
    pretrained.save_pretrained(tmp_path / "mlm")
    PerceiverByteTokenizer(split_special_tokens=False).save_pretrained(tmp_path / "mlm")
    out = tmp_path / "out"
    argv = tiny_args(out, "--model_name_or_path", tmp_path / "mlm", "--train_file", csv_files["train"],
                     "--validation_file", csv_files["validation"], "--learning_rate", "0")  # fmt: skip
    argv[argv.index("--config_overrides") : argv.index("--config_overrides") + 2] = []  # the checkpoint's shape
    with caplog.at_level("WARNING", logger="perceiver_byte.train"):
        run_main(argv)
    message = next(r.getMessage() for r in caplog.records if r.getMessage().startswith("Loaded "))
    assert "initialised anew: ['classifier.bias', 'classifier.weight', 'norm.bias', 'norm.weight']" in message
    assert "'decoder." in message and "'lm_head.weight'" in message  # left unused
    model = AutoModelForSequenceClassification.from_pretrained(out)
    assert model.config.num_labels == len(LANGS)
    for name, weight in model.perceiver.state_dict().items():  # learning rate 0: the pretrained encoder, unchanged
        assert torch.equal(weight, pretrained.perceiver.state_dict()[name]), name
    from transformers import AutoTokenizer

    assert AutoTokenizer.from_pretrained(out)("[MASK]")["input_ids"][1:-1] == [b + 6 for b in b"[MASK]"]


def test_missing_column_lists_columns(tmp_path, csv_files):
    train = write_csv(tmp_path / "train.csv", [{"body": "x", "label": "a"}, {"body": "y", "label": "b"}],
                      columns=("body", "label"))  # fmt: skip
    expect_error(tiny_args(tmp_path / "o1", "--train_file", train, "--text_column", "text"),
                 "train.csv", "'text'", "['body', 'label']", "--text_column")  # fmt: skip
    # a validation file without the column the training file has
    valid = write_csv(tmp_path / "valid.csv", [{"text": "x", "lang": "eng"}], columns=("text", "lang"))
    expect_error(tiny_args(tmp_path / "o2", "--train_file", csv_files["train"], "--validation_file", valid),
                 "valid.csv", "'label'", "['text', 'lang']")  # fmt: skip


def test_empty_files(tmp_path):
    empty = tmp_path / "train.csv"
    empty.write_bytes(b"")
    expect_error(tiny_args(tmp_path / "o1", "--train_file", empty), "train.csv", "empty")
    header_only = tmp_path / "header.csv"
    header_only.write_text("text,label\n")
    expect_error(tiny_args(tmp_path / "o2", "--train_file", header_only), "header.csv", "no rows")
    empty_jsonl = tmp_path / "train.jsonl.gz"
    with gzip.open(empty_jsonl, "wb"):
        pass
    expect_error(tiny_args(tmp_path / "o3", "--train_file", empty_jsonl), "train.jsonl.gz", "empty")


def test_unseen_label_in_validation(tmp_path, csv_files):
    valid = write_csv(tmp_path / "valid.csv", [{"text": "hello", "label": "eng"}, {"text": "Hallo", "label": "deu"}])
    expect_error(tiny_args(tmp_path / "o", "--train_file", csv_files["train"], "--validation_file", valid),
                 "valid.csv", "'deu'", "row 2", "line 3", "never")  # fmt: skip


def test_missing_label_names_the_row(tmp_path):
    train = tmp_path / "train.csv"
    train.write_text("text,label\nhello,eng\nbonjour,fra\nhola,\nciao,ita\n")
    expect_error(tiny_args(tmp_path / "o1", "--train_file", train), "train.csv", "row 3", "line 4", "no label")
    rows = [{"text": "a", "label": 1}, {"text": "b", "label": None}, {"text": "c", "label": 2}]
    jsonl = write_jsonl(tmp_path / "train.jsonl", rows)
    expect_error(tiny_args(tmp_path / "o2", "--train_file", jsonl), "train.jsonl", "row 2", "no label")
    nan = tmp_path / "nan.csv"
    nan.write_text("text,label\na,1\nb,NaN\nc,2\n")
    expect_error(tiny_args(tmp_path / "o3", "--train_file", nan), "nan.csv", "row 2", "NaN")


def test_invalid_utf8_csv_is_read_as_bytes(tmp_path, csv_files):
    raw = csv_files["train"].read_bytes()
    # add rows whose text is not UTF-8 (Latin-1 and raw binary): they must reach the tokenizer as the file's bytes
    raw += "caf\xe9 cr\xe8me,fra\n".encode("latin-1") + b"\xff\xfe\x00binary\x80,eng\n"
    bad = tmp_path / "latin1.csv"
    bad.write_bytes(raw)
    source = training_data.load_data_file(str(bad), "train")[0]
    assert source["text"][-2] == "caf\xe9 cr\xe8me".encode("latin-1")
    assert source["text"][-1] == b"\xff\xfe\x00binary\x80"
    assert source["label"][-1] == "eng"
    out = tmp_path / "out"
    run_main(tiny_args(out, "--train_file", bad, "--validation_file", csv_files["validation"], "--do_predict", "false",
                       steps=2))  # fmt: skip
    assert results(out)["train_samples"] == 50


def test_data_dir_with_one_class(tmp_path):
    (tmp_path / "files" / "only").mkdir(parents=True)
    (tmp_path / "files" / "only" / "a.bin").write_bytes(b"\x00\x01")
    (tmp_path / "files" / "empty").mkdir()
    expect_error(tiny_args(tmp_path / "o", "--data_dir", tmp_path / "files"), "files", "1 label folder", "at least 2")


def test_refuses_an_output_dir_with_another_run(tmp_path, csv_files):
    out = tmp_path / "out"
    out.mkdir()
    (out / "model.safetensors").write_bytes(b"precious")
    (out / "notes.txt").write_text("keep me")
    expect_error(tiny_args(out, "--train_file", csv_files["train"]), "not empty", "--overwrite_output_dir",
                 "nothing was changed")  # fmt: skip
    assert sorted(p.name for p in out.iterdir()) == ["model.safetensors", "notes.txt"]
    assert (out / "model.safetensors").read_bytes() == b"precious"


def test_cli_reports_errors_on_stderr(tmp_path):
    proc = subprocess.run([sys.executable, str(SCRIPT), "--output_dir", str(tmp_path / "o"), "--train_file",
                           str(tmp_path / "missing.csv")], capture_output=True, text=True, timeout=300)  # fmt: skip
    assert proc.returncode == 2
    assert "error: --train_file" in proc.stderr and "missing.csv" in proc.stderr and "no such file" in proc.stderr


# --------------------------------------------------------------------------------------------- resume, processes


def kill_at_first_checkpoint(argv, out, env, log_path):
    """Start the training command `argv` and SIGKILL it as soon as a checkpoint of `out` has its trainer_state.json;
    fails if the run ends first, or leaves final results."""
    with open(log_path, "w") as log:
        proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env=env)
        deadline = time.time() + 240
        try:
            while time.time() < deadline and proc.poll() is None:
                if list(out.glob("checkpoint-*/trainer_state.json")):
                    break
                time.sleep(0.02)
            assert proc.poll() is None, "the run ended before it could be killed: " + log_path.read_text()[-2000:]
            proc.send_signal(signal.SIGKILL)
            proc.wait(30)
        finally:
            if proc.poll() is None:
                proc.kill()
    assert proc.returncode == -signal.SIGKILL
    assert not (out / "all_results.json").exists()


def test_resume_after_sigkill(csv_files, tmp_path):
    out = tmp_path / "out"
    max_steps = 120  # enough steps after the first checkpoint (step 4) that the kill lands mid-run
    argv = [sys.executable, str(SCRIPT), *tiny_args(out, "--train_file", csv_files["train"], "--validation_file",
            csv_files["validation"], "--do_predict", "false", "--save_strategy", "steps", "--save_steps", "4",
            "--report_to", "none", steps=max_steps)]  # fmt: skip
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    kill_at_first_checkpoint(argv, out, env, tmp_path / "first.log")
    killed_at = min(int(p.parent.name.split("-")[1]) for p in out.glob("checkpoint-*/trainer_state.json"))
    assert killed_at < max_steps

    second = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=300)
    assert second.returncode == 0, second.stderr[-3000:]
    resumed = re.search(r"Resuming from \S*checkpoint-(\d+)", second.stderr)
    assert resumed and killed_at <= int(resumed.group(1)) < max_steps, second.stderr[-3000:]
    state = json.loads((out / "trainer_state.json").read_text())
    assert state["global_step"] == max_steps == state["max_steps"]
    assert results(out)["eval_accuracy"] >= 0


def test_accelerate_launch_two_cpu_processes(csv_files, tmp_path):
    out, hashes = tmp_path / "out", tmp_path / "hashes"
    max_steps = 4
    # `--multi_gpu` is accelerate's torchrun launcher (DDP, gloo on CPU); `--cpu --num_processes 2` would start a
    # single process with accelerate 1.15 (its CPU launcher needs MPI for more), see the docstring of scripts/train.py
    argv = ["accelerate", "launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1", "--mixed_precision", "no",
            "--dynamo_backend", "no", str(STATE_HASH_SCRIPT), str(hashes), *tiny_args(out, "--train_file",
            csv_files["train"], "--validation_file", csv_files["validation"], "--test_file", csv_files["test"],
            steps=max_steps)]  # fmt: skip
    accelerate = Path(sys.executable).with_name("accelerate")
    argv[0] = str(accelerate) if accelerate.exists() else "accelerate"
    env = dict(os.environ, OMP_NUM_THREADS="1")
    proc = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=420)
    assert proc.returncode == 0, proc.stderr[-4000:]
    records = sorted((json.loads(p.read_text()) for p in hashes.glob("state_hash_rank*.json")), key=lambda r: r["rank"])
    assert [r["rank"] for r in records] == [0, 1]
    assert all(r["world_size"] == 2 and r["global_step"] == max_steps for r in records)
    assert [r["is_world_process_zero"] for r in records] == [True, False]
    assert records[0]["sha256"] == records[1]["sha256"], "the two ranks ended with different weights"
    metrics, _ = check_outputs(out, LANGS)
    # only the main process wrote: TensorBoard event files (named ...tfevents.TIME.HOST.PID.N) of one process only
    events = sorted(out.glob("runs/*/events.out.tfevents.*"), key=lambda p: int(p.name.split(".")[-1]))
    assert len({p.name.split(".")[-2] for p in events}) == 1, events
    # the evaluation after training reached its event file although the ranks leave without teardown (os._exit)
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    last = EventAccumulator(str(events[-1]))
    last.Reload()
    assert [e.value for e in last.Scalars("eval/accuracy")] == pytest.approx([metrics["eval_accuracy"]])
    assert "| devices (processes) | `2` |" in (out / "README.md").read_text()
    assert metrics["train_samples"] == 48


def test_push_to_hub_uploads_model_code_and_card(csv_files, tmp_path, hub_server):
    from huggingface_hub import HfApi, ModelCard, hf_hub_download

    out = tmp_path / "out"
    run_main(tiny_args(out, "--train_file", csv_files["train"], "--validation_file", csv_files["validation"],
                       "--do_predict", "false", "--report_to", "none", "--push_to_hub", "--hub_model_id",
                       "user/perceiver-byte-tiny", steps=2))  # fmt: skip
    files = set(HfApi().list_repo_files("user/perceiver-byte-tiny"))
    assert {"README.md", "model.safetensors", "config.json", "tokenizer_config.json", "modeling_perceiver_byte.py",
            "configuration_perceiver_byte.py", "tokenization_perceiver_byte.py", "all_results.json"} <= files  # fmt: skip
    assert not any(f.startswith("checkpoint-") for f in files)
    card = ModelCard.load(hf_hub_download("user/perceiver-byte-tiny", "README.md", cache_dir=hub_server.fresh_cache_dir()))
    assert card.data.model_name == "perceiver-byte-tiny" and card.data.eval_results[0].metric_type == "accuracy"
    assert "perceiver-byte-tiny" in card.text
