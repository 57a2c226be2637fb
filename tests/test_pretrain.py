"""scripts/pretrain.py: the span-masking collator, and masked-byte pretraining end to end on tiny models and data.

The collator tests check the masks over many rows (shares, span lengths, whole words, BERT's 80/10/10); the runs call
the script's `main(argv)` in this process with the real Trainer and datasets, except the command-line tests.

    python -m pytest tests/test_pretrain.py            # ~30 s
    python -m pytest tests/test_pretrain.py -m slow    # a real SIGKILL and resume; 2 processes (accelerate launch)
"""

import json
import math
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pretrain
import pytest
import torch
from safetensors.torch import load_file
import test_train as train_test
from test_train import results, udhr_rows, write_csv, write_jsonl

from perceiver_byte import PerceiverByteTokenizer


REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "scripts" / "pretrain.py"
TINY = "num_latents=16,d_latents=64,d_model=64,num_blocks=1,num_self_attends_per_block=1,ngram_buckets=1024"
MAX_LENGTH = 128
BODY = MAX_LENGTH - 2  # bytes per window between [CLS] and [SEP]
CLS, SEP, MASK = 4, 5, 3


def tiny_args(output_dir, *extra, steps=2):
    return [
        "--output_dir", output_dir, "--config_overrides", TINY, "--max_length", MAX_LENGTH, "--max_steps", steps,
        "--per_device_train_batch_size", 8, "--per_device_eval_batch_size", 32, "--learning_rate", 3e-3,
        "--warmup_steps", 0, "--logging_steps", 2, "--eval_strategy", "no", "--save_strategy", "no",
        "--report_to", "none", "--disable_tqdm", "true", "--dataloader_pin_memory", "false",
        "--torch_num_threads", 1, *extra,
    ]  # fmt: skip


def run_main(argv):
    return train_test.run_main(argv, pretrain.main)




def expect_error(argv, *fragments):
    with pytest.raises(pretrain.UserError) as info:
        run_main(argv)
    for fragment in fragments:
        assert fragment in str(info.value), f"{fragment!r} not in {str(info.value)!r}"


def windows_of(lengths, separators):
    """How many windows texts of these byte lengths give, joined by `separators` [SEP] each."""
    return math.ceil((sum(lengths) + separators) / BODY)


@pytest.fixture(scope="module")
def tokenizer():
    return PerceiverByteTokenizer()


@pytest.fixture(scope="module")
def texts():
    return {"train": [r["text"] for r in udhr_rows("train")],
            "validation": [r["text"] for r in udhr_rows("validation", per_label=3)]}


# --------------------------------------------------------------------------------------------- the collator


def masked_batch(rows, seed=0, **kwargs):
    """rows of ids -> (padded originals, the collator's batch) of a collator with this seed."""
    collator = pretrain.ByteSpanMaskingCollator(PerceiverByteTokenizer(), seed=seed, **kwargs)
    original = collator.pad([{"input_ids": r} for r in rows])
    return original, collator([{"input_ids": r} for r in rows])


def random_rows(n, low=20, high=500, seps=0.01, seed=0):
    """Rows [CLS] bytes [SEP] of random lengths, a share `seps` of the bytes [SEP] (as in windows of several texts)."""
    rng = np.random.default_rng(seed)
    rows = []
    for _ in range(n):
        ids = rng.integers(6, 262, rng.integers(low, high))
        ids[rng.random(len(ids)) < seps] = SEP
        rows.append([CLS, *ids.tolist(), SEP])
    return rows


def run_lengths(selected: np.ndarray) -> np.ndarray:
    """Lengths of the runs of True in each row of a (B, M) bool array."""
    padded = np.pad(selected.astype(np.int8), ((0, 0), (1, 1))).ravel()
    edges = np.diff(padded)
    return np.flatnonzero(edges == -1) - np.flatnonzero(edges == 1)


def test_collator_masks_the_share_and_never_special_tokens_or_padding():
    original, batch = masked_batch(random_rows(400))
    ids, mask = original["input_ids"], original["attention_mask"].bool()
    assert torch.equal(batch["attention_mask"], original["attention_mask"])
    selected = batch["labels"] != -100
    maskable = mask & (ids >= 6)
    assert not (selected & ~maskable).any(), "a special token or padding was selected"
    assert torch.equal(batch["labels"][selected], ids[selected])
    assert torch.equal(batch["input_ids"][~selected], ids[~selected]), "an unselected byte was changed"
    assert selected.sum() / maskable.sum() == pytest.approx(0.15, abs=0.01)


@pytest.mark.parametrize("mean_span_length", [1, 3, 8])
def test_spans_have_geometric_lengths_of_the_mean_asked(mean_span_length):
    rows = random_rows(60, 2000, 2001, seps=0)  # no [SEP] inside: each run of selected bytes is one span
    original, batch = masked_batch(rows, mean_span_length=mean_span_length)
    selected = (batch["labels"] != -100).numpy()
    lengths = run_lengths(selected)
    assert lengths.mean() == pytest.approx(mean_span_length, rel=0.1)
    assert selected.sum() / (original["input_ids"] >= 6).sum().item() == pytest.approx(0.15, abs=0.01)
    if mean_span_length > 1:  # geometric: P(length 1) = 1 / mean
        assert (lengths == 1).mean() == pytest.approx(1 / mean_span_length, abs=0.05)
    else:
        assert (lengths == 1).all()


def test_whole_word_masking_masks_whole_words(tokenizer, texts):
    rows = tokenizer(texts["train"] * 4)["input_ids"]
    original, batch = masked_batch(rows, whole_word_masking=True)
    selected = (batch["labels"] != -100).numpy()
    ids = original["input_ids"].numpy()
    space = np.isin(ids, np.frombuffer(b" \t\n\v\f\r", np.uint8) + 6)
    in_word = (ids >= 6) & ~space
    assert not (selected & ~in_word).any(), "a space, special token or padding was selected"
    words = 0
    for row_selected, row_in_word in zip(selected, in_word):
        for word in np.split(row_selected, np.flatnonzero(np.diff(row_in_word.astype(np.int8))) + 1):
            words += 1
            assert word.all() or not word.any(), "a word was masked in part"
    assert words > 1000
    assert selected.sum() / in_word.sum() == pytest.approx(0.15, abs=0.02)


def test_selected_bytes_become_mask_random_or_stay_80_10_10():
    original, batch = masked_batch(random_rows(400), mlm_probability=0.3)
    selected = batch["labels"] != -100
    before, after = original["input_ids"][selected], batch["input_ids"][selected]
    masked = after == MASK
    random = ~masked & (after != before)
    assert masked.float().mean() == pytest.approx(0.8, abs=0.01)
    assert random.float().mean() == pytest.approx(0.1 * 255 / 256, abs=0.01)  # a random byte may be the same byte
    assert ((after >= 6) | masked).all(), "a random replacement was not a byte"


def test_masks_are_seeded(tokenizer):
    rows = random_rows(20)
    first, again = masked_batch(rows, seed=3)[1], masked_batch(rows, seed=3)[1]
    assert all(torch.equal(first[key], again[key]) for key in first)
    assert not torch.equal(masked_batch(rows, seed=3)[1]["labels"], masked_batch(rows, seed=4)[1]["labels"])
    # the masks are a function of the seed, the epoch and the batch: not of torch's running RNG state
    collator = pretrain.ByteSpanMaskingCollator(tokenizer, seed=3)
    features = [{"input_ids": r} for r in rows]
    first = collator(features)
    torch.rand(5)  # whatever else draws from torch's RNG in between
    assert torch.equal(first["labels"], collator(features)["labels"]) and first["labels"].ne(-100).any()
    collator.epoch = 1  # a new epoch masks the same windows anew
    assert not torch.equal(first["labels"], collator(features)["labels"])
    # the validation masks: fixed per batch of rows, and only padded afterwards
    fixed = collator.fixed_masks({"input_ids": rows}, list(range(20)), seed=42)
    assert fixed == collator.fixed_masks({"input_ids": rows}, list(range(20)), seed=42)
    padded = collator([{"input_ids": i, "labels": lab} for i, lab in zip(fixed["input_ids"], fixed["labels"])])
    assert padded["labels"].tolist()[0][: len(rows[0])] == fixed["labels"][0]
    assert (padded["labels"][padded["attention_mask"] == 0] == -100).all()


def test_windows_keep_every_byte(tokenizer):
    texts = ["abc [MASK] def", None, "", b"\x00\xff" * 20, "é" * 10]
    out = pretrain.window({"text": texts}, "text", tokenizer, 16, join_with_sep=True)["input_ids"]
    assert all(w[0] == CLS and w[-1] == SEP and len(w) <= 16 for w in out)
    assert all(len(w) == 16 for w in out[:-1])
    inner = [i for w in out for i in w[1:-1]]
    parts = [list(t.encode() if isinstance(t, str) else t) for t in texts if t]
    expected = [i for part in parts for i in [*[b + 6 for b in part], SEP]][:-1]
    assert inner == expected  # "[MASK]" in a text is its six bytes
    lines = pretrain.window({"text": ["one\n", "two\n"]}, "text", tokenizer, 16, join_with_sep=False)["input_ids"]
    assert lines == [[CLS, *[b + 6 for b in b"one\ntwo\n"], SEP]]


# --------------------------------------------------------------------------------------------- runs


def test_pretraining_lowers_the_loss_and_saves_a_fill_mask_model(tmp_path, texts):
    train = write_jsonl(tmp_path / "train.jsonl", [{"text": t} for t in texts["train"]])
    dev = write_jsonl(tmp_path / "dev.jsonl", [{"text": t} for t in texts["validation"]])
    out = tmp_path / "out"
    run_main(tiny_args(out, "--train_file", train, "--validation_file", dev, "--eval_on_start", "true", steps=20))
    metrics = results(out)
    history = json.loads((out / "trainer_state.json").read_text())["log_history"]
    before = next(e for e in history if "eval_loss" in e and e["step"] == 0)
    assert metrics["eval_loss"] < before["eval_loss"] - 0.5
    assert metrics["eval_bits_per_byte"] < before["eval_bits_per_byte"]
    assert metrics["eval_masked_accuracy"] > before["eval_masked_accuracy"]
    assert metrics["eval_masked_bytes"] == before["eval_masked_bytes"]  # the same masks each time
    assert metrics["eval_bits_per_byte"] == pytest.approx(metrics["eval_loss"] / math.log(2), rel=0.05)
    train_bytes = sum(len(t.encode()) for t in texts["train"])
    assert metrics["train_samples"] == windows_of([train_bytes], len(texts["train"]) - 1)
    assert 0 < metrics["train_bytes"] <= 20 * 8 * BODY
    per_second = metrics["train_bytes"] / metrics["train_runtime"]
    assert metrics["train_bytes_per_second"] == pytest.approx(per_second, rel=0.01)

    from transformers import AutoModelForMaskedLM, AutoTokenizer, pipeline

    model = AutoModelForMaskedLM.from_pretrained(out)
    assert type(model).__name__ == "PerceiverByteForMaskedLM"
    saved = AutoTokenizer.from_pretrained(out)
    assert saved("a[MASK]b")["input_ids"] == [CLS, ord("a") + 6, MASK, ord("b") + 6, SEP]
    assert saved.model_max_length == MAX_LENGTH
    fill = pipeline("fill-mask", model=str(out), trust_remote_code=True)
    two = fill("All human beings are [MASK]orn free and [MASK]qual.", top_k=3)
    assert len(two) == 2 and all(len(predictions) == 3 for predictions in two)
    one = fill("All human beings are born [MASK]ree.")
    assert len(one) == 5 and all(p["sequence"].startswith("All human beings are born ") for p in one)


@pytest.mark.parametrize("kind", ["txt", "csv", "jsonl.gz"])
def test_text_csv_and_gzipped_jsonl_files(tmp_path, texts, kind):
    rows = texts["train"]
    path = tmp_path / f"train.{kind}"
    if kind == "txt":
        path.write_text("".join(t + "\n" for t in rows), encoding="utf-8")  # one text: its lines end to end
        expected = windows_of([len(path.read_bytes())], 0)
    elif kind == "csv":
        write_csv(path, [{"content": t, "n": i} for i, t in enumerate(rows)], columns=("n", "content"))
        expected = windows_of([len(t.encode()) for t in rows], len(rows) - 1)
    else:
        write_jsonl(path, [{"sentence": t, "id": i} for i, t in enumerate(rows)], gz=True)
        expected = windows_of([len(t.encode()) for t in rows], len(rows) - 1)
    out = tmp_path / "out"
    metrics = run_main(tiny_args(out, "--train_file", path, "--validation_split_percentage", 20))
    assert metrics["train_samples"] + metrics["eval_samples"] == expected  # every byte, in windows
    assert metrics["eval_samples"] == math.ceil(expected * 0.2)
    assert math.isfinite(metrics["eval_bits_per_byte"]) and 0 <= metrics["eval_masked_accuracy"] <= 1
    assert (out / "model.safetensors").is_file() and (out / "tokenizer_config.json").is_file()


def test_data_dir_of_binary_files(tmp_path):
    rng = np.random.default_rng(0)
    files = {"a.bin": 700, "deep/er/b.png": 300, "c": 1000}
    for name, size in files.items():
        (tmp_path / "files" / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "files" / name).write_bytes(rng.integers(0, 256, size, dtype=np.uint8).tobytes())
    (tmp_path / "files" / ".hidden").write_bytes(b"x" * 5000)
    metrics = run_main(tiny_args(tmp_path / "out", "--data_dir", tmp_path / "files"))
    assert metrics["train_samples"] + metrics["eval_samples"] == windows_of(files.values(), len(files) - 1)
    assert math.isfinite(metrics["eval_loss"])


def test_streaming_with_max_steps(tmp_path, texts):
    train = write_jsonl(tmp_path / "train.jsonl", [{"text": t} for t in texts["train"]])
    dev = write_jsonl(tmp_path / "dev.jsonl", [{"text": t} for t in texts["validation"]])
    out = tmp_path / "out"
    metrics = run_main(tiny_args(out, "--streaming", "--train_file", train, "--validation_file", dev,
                                 "--max_eval_samples", 4, steps=3))  # fmt: skip
    assert json.loads((out / "trainer_state.json").read_text())["global_step"] == 3
    assert math.isfinite(metrics["eval_bits_per_byte"]) and metrics["train_bytes"] > 0
    no_steps = tiny_args(tmp_path / "o2", "--streaming", "--train_file", train, "--validation_file", dev)
    no_steps[no_steps.index("--max_steps") + 1] = -1
    expect_error(no_steps, "--streaming needs --max_steps")
    expect_error(tiny_args(tmp_path / "o3", "--streaming", "--train_file", train), "cannot be carved",
                 "--validation_file")  # fmt: skip


def resume_args(out, train):
    # 16 windows, batch 8: 2 steps an epoch, so the rerun from checkpoint-3 resumes inside the second epoch and crosses
    # into the third (the masks depend on the epoch)
    return tiny_args(out, "--train_file", train, "--do_eval", "false", "--save_strategy", "steps", "--save_steps", 3,
                     "--max_train_samples", 16, steps=6)  # fmt: skip


def test_resume_after_a_kill_is_reproducible(tmp_path, texts, caplog):
    """What a kill while checkpoint-6 was written leaves (checkpoint-3 whole, checkpoint-6 without its
    trainer_state.json): the rerun resumes from checkpoint-3, sets the half-written folder aside and trains to the
    end, with the weights of the uninterrupted run, bit for bit (the masks depend on the seed, epoch and batch only)."""
    train = write_jsonl(tmp_path / "train.jsonl", [{"text": t} for t in texts["train"]])
    reference = tmp_path / "reference"
    run_main(resume_args(reference, train))
    weights = []
    for rerun in ("out1", "out2"):
        out = tmp_path / rerun
        shutil.copytree(reference / "checkpoint-3", out / "checkpoint-3")
        shutil.copytree(reference / "checkpoint-6", out / "checkpoint-6")
        (out / "checkpoint-6" / "trainer_state.json").unlink()
        caplog.clear()
        with caplog.at_level("WARNING", logger="perceiver_byte.train"):
            run_main(resume_args(out, train))
        assert re.search(r"Resuming from \S*checkpoint-3\b", caplog.text), caplog.text
        assert (out / "incomplete-checkpoint-6").is_dir()
        assert json.loads((out / "trainer_state.json").read_text())["global_step"] == 6
        weights.append(load_file(out / "model.safetensors"))
    uninterrupted = load_file(reference / "model.safetensors")
    for resumed in weights:
        assert all(torch.equal(resumed[k], uninterrupted[k]) for k in uninterrupted), "a resumed run differs"
    # an output dir holding something else and no checkpoint is refused, and left as it is
    other = tmp_path / "other"
    other.mkdir()
    (other / "notes.txt").write_text("keep me")
    expect_error(resume_args(other, train), "not empty", "--overwrite_output_dir")
    assert [p.name for p in other.iterdir()] == ["notes.txt"]


# --------------------------------------------------------------------------------------------- bad input


def test_bad_input_is_a_clear_error(tmp_path, texts):
    numbers = write_csv(tmp_path / "numbers.csv", [{"a": 1, "b": 2}], columns=("a", "b"))
    tiny = tmp_path / "tiny.txt"
    tiny.write_text("too short\n")
    (tmp_path / "empty").mkdir()
    (tmp_path / "x.xml").write_text("<a/>")
    good = write_jsonl(tmp_path / "good.jsonl", [{"text": t} for t in texts["train"]])
    for extra, fragments in (
        (["--train_file", tmp_path / "missing.txt"], ["--train_file", "missing.txt", "no such file"]),
        (["--train_file", tmp_path / "x.xml"], ["unsupported file type", ".txt"]),
        (["--train_file", numbers], ["cannot find the text column", "--text_column"]),
        (["--train_file", good, "--text_column", "body"], ["no text column 'body'", "['text']"]),
        (["--train_file", tiny], ["1 window(s)", "--validation_file"]),
        (["--data_dir", tmp_path / "empty"], ["holds no files"]),
        (["--mlm_probability", 0], ["--mlm_probability 0"]),
        (["--mlm_probability", 1.5], ["between 0 and 1"]),
        (["--mean_span_length", 0.5], ["--mean_span_length 0.5", "at least 1"]),
        (["--mlm_probability", 0.6, "--mean_span_length", 1], ["at most 0.5"]),
        (["--config_overrides", "num_latent=3"], ["'num_latent' is not a PerceiverByteConfig field"]),
    ):  # fmt: skip
        expect_error(tiny_args(tmp_path / "o", *extra), *fragments)  # a flag given twice: the last one counts


def test_cli_reports_errors_on_stderr(tmp_path):
    proc = subprocess.run([sys.executable, str(SCRIPT), "--output_dir", str(tmp_path / "o"), "--mlm_probability", "2"],
                          capture_output=True, text=True, timeout=300)  # fmt: skip
    assert proc.returncode == 2 and "error: --mlm_probability 2" in proc.stderr, proc.stderr[-2000:]


# --------------------------------------------------------------------------------------------- processes (slow)


@pytest.mark.slow
def test_resume_after_sigkill(tmp_path, texts):
    train = write_jsonl(tmp_path / "train.jsonl", [{"text": t} for t in texts["train"]] * 4)
    out, max_steps = tmp_path / "out", 150
    argv = [sys.executable, str(SCRIPT), *map(str, tiny_args(out, "--train_file", train, "--save_strategy", "steps",
                                                             "--save_steps", 5, steps=max_steps))]  # fmt: skip
    env = dict(os.environ, PYTHONUNBUFFERED="1", OMP_NUM_THREADS="1")
    train_test.kill_at_first_checkpoint(argv, out, env, tmp_path / "first.log")
    second = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=300)
    assert second.returncode == 0, second.stderr[-3000:]
    resumed = re.search(r"Resuming from \S*checkpoint-(\d+)", second.stderr)
    assert resumed and 0 < int(resumed.group(1)) < max_steps, second.stderr[-3000:]
    assert json.loads((out / "trainer_state.json").read_text())["global_step"] == max_steps
    assert math.isfinite(results(out)["eval_bits_per_byte"])


@pytest.mark.slow
def test_accelerate_launch_two_cpu_processes(tmp_path, texts):
    train = write_jsonl(tmp_path / "train.jsonl", [{"text": t} for t in texts["train"]])
    out = tmp_path / "out"
    accelerate = Path(sys.executable).with_name("accelerate")
    argv = [str(accelerate) if accelerate.exists() else "accelerate", "launch", "--multi_gpu", "--num_processes", "2",
            "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no", str(SCRIPT),
            *map(str, tiny_args(out, "--train_file", train, steps=4))]  # fmt: skip
    proc = subprocess.run(argv, capture_output=True, text=True, env=dict(os.environ, OMP_NUM_THREADS="1"), timeout=420)
    assert proc.returncode == 0, proc.stderr[-4000:]
    metrics = results(out)
    assert json.loads((out / "trainer_state.json").read_text())["global_step"] == 4
    assert 4 * 8 * BODY < metrics["train_bytes"] <= 4 * 2 * 8 * BODY  # more than one process trains on: both counted
    assert math.isfinite(metrics["eval_bits_per_byte"])
