"""scripts/train.py --streaming: data larger than memory.

The memory test trains on a ~10 MB and a ~100 MB jsonl file, each in its own process, and compares the two peak
resident sizes: a run that loaded its corpus would need at least 90 MB more for the larger one; a stream needs the same.
"""

import json
import random
import subprocess
import sys

import pytest
from test_train import SCRIPT, check_outputs, results, run_main, tiny_args, train_script

LABELS = ("alpha", "beta", "gamma")
WORDS = {label: [f"{label[:2]}{i}" for i in range(50)] for label in LABELS}  # each label its own words
#: Runs a command, then prints its peak RSS in KiB (the largest child's `ru_maxrss`; Linux counts KiB).
PEAK_RSS = ("import resource, subprocess, sys; subprocess.run(sys.argv[1:], check=True, stdout=subprocess.DEVNULL); "
            "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)")  # fmt: skip


def write_corpus(path, megabytes, seed=0):
    """A jsonl file of about `megabytes` MB: lines of ~1 KB text, the label's words, labels in turn."""
    rng = random.Random(seed)
    lines = [json.dumps({"text": " ".join(rng.choices(WORDS[label], k=250)), "label": label})
             for _ in range(30) for label in LABELS]  # fmt: skip
    block = "\n".join(lines) + "\n"
    with open(path, "w", encoding="utf-8") as f:
        for _ in range(max(1, round(megabytes * 1e6 / len(block)))):
            f.write(block)
    return path


@pytest.fixture(scope="module")
def dev_file(tmp_path_factory):
    return write_corpus(tmp_path_factory.mktemp("dev") / "dev.jsonl", 0.01, seed=1)  # 90 examples


def streaming_args(out, train, dev, *extra, steps=4):
    return tiny_args(out, "--streaming", "--train_file", train, "--validation_file", dev, "--do_predict", "false",
                     *extra, steps=steps)  # fmt: skip


@pytest.mark.slow  # 20-50 s; and its margin is tight on a busy machine (runs differed by 0-54 MB)
def test_peak_memory_does_not_grow_with_the_data(tmp_path, dev_file):
    peaks = {}
    for megabytes in (10, 100):
        train = write_corpus(tmp_path / f"train{megabytes}.jsonl", megabytes)
        out = tmp_path / f"out{megabytes}"
        argv = [sys.executable, str(SCRIPT), *map(str, streaming_args(out, train, dev_file, "--report_to", "none"))]
        proc = subprocess.run([sys.executable, "-c", PEAK_RSS, *argv], capture_output=True, text=True, timeout=600)
        assert proc.returncode == 0, proc.stderr[-3000:]
        peaks[megabytes] = int(proc.stdout.split()[-1]) / 1024  # MiB
        metrics = results(out)
        assert metrics["train_samples"] == 4 * 8 and metrics["eval_samples"] == 90
        assert json.loads((out / "config.json").read_text())["label2id"] == {"alpha": 0, "beta": 1, "gamma": 2}
    assert peaks[100] - peaks[10] < 75, peaks  # loading the corpus would add >= 90 MB; streams differed by <= 54


def test_streaming_run_outputs_label_set_and_resume(tmp_path, dev_file):
    train = write_corpus(tmp_path / "train.jsonl", 0.05)
    out = tmp_path / "out"
    args = streaming_args(out, train, dev_file, "--label_set", "gamma,beta,alpha", "--save_strategy", "steps",
                          "--save_steps", "2")  # fmt: skip
    run_main(args)
    check_outputs(out, LABELS, test=False)
    assert json.loads((out / "config.json").read_text())["label2id"] == {"gamma": 0, "beta": 1, "alpha": 2}
    # a longer run in the same output dir resumes from its last checkpoint: Trainer skips the stream's first batches
    run_main(streaming_args(out, train, dev_file, "--label_set", "gamma,beta,alpha", steps=6))
    state = json.loads((out / "trainer_state.json").read_text())
    assert state["global_step"] == 6 == state["max_steps"]
    assert results(out)["train_samples"] == 6 * 8


def test_streaming_errors(tmp_path, dev_file):
    train = write_corpus(tmp_path / "train.jsonl", 0.01)
    no_steps = [a for a in streaming_args(tmp_path / "o1", train, dev_file)]
    no_steps[no_steps.index("--max_steps") + 1] = "-1"
    for argv, fragments in (
        (no_steps, ["--streaming needs --max_steps"]),
        (tiny_args(tmp_path / "o2", "--streaming", "--train_file", train), ["cannot be carved", "--validation_file"]),
        (streaming_args(tmp_path / "o3", train, dev_file, "--label_set", "alpha,beta"), ["'gamma'", "--label_set"]),
    ):  # fmt: skip
        with pytest.raises(train_script.UserError) as info:
            run_main(argv)
        assert all(f in str(info.value) for f in fragments), str(info.value)
