#!/usr/bin/env python
"""From scratch against masked-byte pretraining then fine-tuning, at the same training time, side by side.

For each task: (a) `train.py` from scratch with the task's usual command, which takes T seconds to train; (b)
`pretrain.py` on the task's own training texts (no labels) for about T/2 seconds (runs of 10 and 40 steps measure
its step time), then `train.py --model_name_or_path` on the pretrained encoder for half of (a)'s epochs, about T/2. Test
accuracy and macro-F1 of both, and the pretraining's bits per byte and masked-byte accuracy on its held-out 5%.
Every run is its own process with one thread; the report lists each command.

Commands (from the repository root; a quiet machine, about 2 x the tasks' scratch training time):

    python scripts/pretraining_experiment.py --out docs/pretraining.md
    python scripts/pretraining_experiment.py --tasks manpages --out_dir outputs/pretraining
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import common

REPO_ROOT = Path(__file__).resolve().parent.parent
MANPAGES = [f"--{split}_file=data/manpages/{split}.jsonl.gz" for split in ("train", "validation", "test")]
#: task -> (train.py's arguments, pretrain.py's data arguments, train.py's epochs)
TASKS = {
    "udhr": ([], [], 5.0),  # the embedded default data, as `make train`
    "manpages": ([*MANPAGES, "--max_length=2048"], [MANPAGES[0]], 3.0),  # the held-back benchmarks' command
}
THREADS = ["--torch_num_threads=1", "--disable_tqdm=true", "--report_to=none"]


def run(script: str, args: list[str], output_dir: Path) -> dict:
    """One run of scripts/`script` in its own process -> its all_results.json, plus the command. A run whose output
    dir holds the results of the same command is not run again (an interrupted experiment picks up where it was)."""
    command = [sys.executable, str(REPO_ROOT / "scripts" / script), f"--output_dir={output_dir}",
               "--overwrite_output_dir", *THREADS, *args]  # fmt: skip
    done_file = output_dir / "experiment_command.json"
    if not (done_file.is_file() and json.loads(done_file.read_text()) == command):
        print("$", " ".join(command[1:]), flush=True)
        done = subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True, check=False)
        if done.returncode:
            raise common.UserError(f"{script} failed:\n{done.stderr[-3000:]}")
        done_file.write_text(json.dumps(command))
    results = json.loads((output_dir / "all_results.json").read_text())
    results["command"] = " ".join(["python", f"scripts/{script}", *command[2:]]).replace(str(REPO_ROOT) + "/", "")
    return results


def experiment(task: str, out_dir: Path) -> list[dict]:
    train_args, pretrain_data, epochs = TASKS[task]
    scratch = run("train.py", [*train_args, f"--num_train_epochs={epochs}"], out_dir / task / "scratch")
    budget = scratch["train_runtime"] / 2
    # the step time, from two short runs (their difference leaves out the first steps' warm-up)
    probes = [run("pretrain.py", [*pretrain_data, f"--max_steps={n}", "--eval_strategy=no", "--do_eval=false",
                                  "--save_strategy=no"], out_dir / task / f"probe{n}")["train_runtime"]
              for n in (10, 40)]  # fmt: skip
    steps = max(10, round(10 + (budget - probes[0]) / ((probes[1] - probes[0]) / 30)))
    mlm = run("pretrain.py", [*pretrain_data, f"--max_steps={steps}", "--eval_strategy=no", "--save_strategy=no"],
              out_dir / task / "mlm")  # fmt: skip
    tuned = run("train.py", [*train_args, f"--model_name_or_path={out_dir / task / 'mlm'}",
                             f"--num_train_epochs={epochs / 2}"], out_dir / task / "pretrained")  # fmt: skip
    return [
        {"task": task, "arm": "from scratch", "seconds": scratch["train_runtime"], "test": scratch,
         "commands": [scratch["command"]]},
        {"task": task, "arm": f"pretrain {steps} steps + fine-tune {epochs / 2:g} epochs",
         "seconds": mlm["train_runtime"] + tuned["train_runtime"], "test": tuned, "mlm": mlm,
         "commands": [mlm["command"], tuned["command"]]},
    ]  # fmt: skip


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", default="udhr,manpages", help=f"Comma-separated, of {sorted(TASKS)}.")
    parser.add_argument("--out_dir", default="outputs/pretraining", help="Where the runs write their outputs.")
    parser.add_argument("--out", default=None, help="Also write the report (markdown) here.")
    args = parser.parse_args(argv)
    unknown = sorted(set(args.tasks.split(",")) - set(TASKS))
    if unknown:
        raise common.UserError(f"--tasks: unknown {unknown}; choose from {sorted(TASKS)}.")
    arms = [arm for task in args.tasks.split(",") for arm in experiment(task, Path(args.out_dir).resolve())]
    rows = []
    for arm in arms:
        mlm = arm.get("mlm")
        rows.append([arm["task"], arm["arm"], f"{arm['test']['test_accuracy']:.4f}", f"{arm['test']['test_f1']:.4f}",
                     f"{arm['seconds']:.0f}",
                     f"{mlm['train_bytes_per_second']:,.0f}" if mlm else "",
                     f"{mlm['eval_bits_per_byte']:.3f} / {mlm['eval_masked_accuracy']:.3f}" if mlm else ""])  # fmt: skip
    table = common.markdown_table(["task", "arm", "test accuracy", "test macro-F1", "training s",
                                   "pretraining bytes/s", "held-out bits/byte / masked acc"], rows)  # fmt: skip
    commands = "\n".join(f"    {c}" for arm in arms for c in arm["commands"])
    report = (f"# From scratch, or masked-byte pretraining then fine-tuning, at the same training time\n\n"
              f"`python scripts/pretraining_experiment.py {' '.join(argv if argv is not None else sys.argv[1:])}`\n\n"
              f"{common.machine_line()}; 1 thread per run.\n\n{table}\n\nThe runs:\n\n{commands}\n")  # fmt: skip
    print(report)
    if args.out:
        Path(args.out).write_text(report, encoding="utf-8")


if __name__ == "__main__":
    sys.exit(common.run_cli(main))
