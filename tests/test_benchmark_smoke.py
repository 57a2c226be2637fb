"""Smoke tests of the benchmark scripts: `scripts/benchmark.py --quick` and `scripts/gpu_benchmark.sh --device cpu
--tiny`, each into a temporary folder (docs/ is never touched). They check that the reports exist and hold a row (or a
failure reason) for every system of every scenario, not the numbers: those come from the full run on a quiet machine.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SYSTEMS = ("ours", "transformers", "lucidrains")


def run(cmd, env=None, timeout=600):
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=timeout, env=env)
    assert proc.returncode == 0, f"{cmd} failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc


@pytest.fixture(scope="module")
def quick(tmp_path_factory):
    out = tmp_path_factory.mktemp("bench")
    proc = run([sys.executable, "scripts/benchmark.py", "--quick", "--out-dir", str(out), "--stem", "benchmarks"])
    return out, proc.stdout


def test_quick_run_writes_every_output(quick):
    out, stdout = quick
    for name in ("benchmarks.md", "benchmarks.json", "benchmark_time.png", "benchmark_memory.png"):
        assert (out / name).is_file() and (out / name).stat().st_size > 0, name
    assert (
        not (ROOT / "docs" / "benchmarks.json").is_file()
        or (ROOT / "docs" / "benchmarks.json").stat().st_mtime < (out / "benchmarks.json").stat().st_mtime
    ), "the quick run must not write into docs/"
    assert "log-log slope" in stdout


def test_quick_run_has_a_row_or_a_reason_for_every_system(quick):
    out, _ = quick
    data = json.loads((out / "benchmarks.json").read_text())
    rows = data["summary"]
    md = (out / "benchmarks.md").read_text()

    def rows_of(scenario, mode, system):
        return [r for r in rows if r["scenario"] == scenario and r["mode"] == mode and r["system"] == system]

    expected = {
        "matched": SYSTEMS,
        "repeats": ("ours", "lucidrains"),
        "compile": ("ours",),
        "long": SYSTEMS,
    }
    for scenario, systems in expected.items():
        for mode in ("train", "infer"):
            for system in systems:
                found = rows_of(scenario, mode, system)
                assert found, (scenario, mode, system)
                for r in found:
                    # a measured row, or a failure with its reason
                    assert (r["status"] == "ok" and r["time_s"] > 0 and r["peak_bytes"] is not None) or r.get("failure")
                    assert r["name"] in md
    for scenario in ("matched", "repeats"):  # the projected form of ours runs beside the absorbed default
        assert any(r["name"].startswith("ours projected") for r in rows if r["scenario"] == scenario), scenario
    assert "time ours/ours projected" in md and "ABSORBED cross-attention" in md and "PROJECTED" in md
    compiled = [r for r in rows if r["scenario"] == "compile" and r["name"] == "ours compiled"]
    assert len(compiled) == 2
    for system in SYSTEMS:
        assert f"**{system}**" in md  # its mapping and parameter count
    for heading in ("## Machine", "## FLOP formulas", "Linear scaling", "## Long inputs", "time ours/transformers"):
        assert heading in md, heading
    assert data["matmul"]["reference_flops"] > 0
    assert data["machine"]["torch"] and data["command"].startswith("python scripts/benchmark.py")
    ok = [r for r in rows if r["status"] == "ok" and r["scenario"] == "matched"]
    assert ok and all(r["flops_step"] > 0 for r in ok)


def test_worker_prints_one_json_line():
    spec = {
        "scenario": "matched",
        "system": "lucidrains",
        "name": "lucidrains",
        "preset": "tiny",
        "mode": "infer",
        "M": 64,
        "batch": 1,
        "warmup": 1,
        "iters": 1,
        "threads": 1,
    }
    proc = run([sys.executable, "scripts/benchmark.py", "--worker", json.dumps(spec)], timeout=300)
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["status"] == "ok", result
    assert result["params"] > 0 and len(result["times_s"]) == 1 and result["peak_bytes"] >= 0


def test_gpu_script_runs_on_cpu_tiny(tmp_path):
    env = dict(os.environ, OUT=str(tmp_path / "gpu_out"), PYTHON=sys.executable)
    proc = run(["bash", "scripts/gpu_benchmark.sh", "--device", "cpu", "--tiny"], env=env)
    out = tmp_path / "gpu_out"
    for name in ("gpu_benchmark.md", "gpu_benchmark.json", "gpu_benchmark.log", "gpu_env.txt"):
        assert (out / name).is_file(), name
    data = json.loads((out / "gpu_benchmark.json").read_text())
    assert data["correctness"]["ok"], data["correctness"]
    assert {(r["mode"], r["status"]) for r in data["rows"]} == {("train", "ok"), ("infer", "ok")}
    assert "MFU" in (out / "gpu_benchmark.md").read_text() and "correctness: PASS" in proc.stdout


def test_profile_script_tables_every_variant(tmp_path):
    out = tmp_path / "profile.md"
    proc = run([sys.executable, "scripts/profile_step.py", "--sizes", "256", "--out", str(out)], timeout=300)
    text = out.read_text()
    assert "| kind of work | ours | ours projected | transformers |" in text and "attention kernel" in text
    rows = [line.split("|")[2:-1] for line in text.splitlines() if line.startswith("| ") and "%" in line]
    kinds = [[float(c.strip().rstrip("%")) for c in row] for row in rows[:-1]]  # the last: share inside AdamW
    assert len(kinds) == 8 and all(0 <= v <= 100 for row in kinds for v in row)
    for column in zip(*kinds, strict=True):  # the kinds partition each variant's step
        assert abs(sum(column) - 100) < 0.5, column
    assert proc.stdout.strip()
