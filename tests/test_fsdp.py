"""FSDP: sharded training of the model, on 2 CPU processes over gloo, and scripts/train.py under `accelerate launch`
with FSDP where accelerate allows it.

torch shards on a CPU: `fully_shard` (FSDP2) over gloo trains the model exactly as one unsharded process does, and
the gathered weights save once and load. accelerate 1.15 does not: it turns FSDP on only for accelerator process
groups (multi-GPU, XPU, NPU, ...; accelerate/state.py), so on a CPU `accelerate launch --use_fsdp` silently trains
with DDP. The train.py test therefore needs 2 accelerators; scripts/gpu_benchmark.sh runs it on a GPU machine.
Its flags: FSDP version 2, and `--fsdp_sync_module_states false` (every rank builds the same weights from the seed).
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from test_train import LANGS, STATE_HASH_SCRIPT, check_outputs, tiny_args, udhr_rows, write_csv
from train_with_state_hash import state_dict_sha256

from perceiver_byte import PerceiverByteForSequenceClassification

FSDP_ARGS = ["--use_fsdp", "--fsdp_version", "2", "--fsdp_sync_module_states", "false",
             "--fsdp_auto_wrap_policy", "TRANSFORMER_BASED_WRAP",
             "--fsdp_transformer_layer_cls_to_wrap", "PerceiverByteCrossAttentionLayer,PerceiverByteSelfAttentionLayer",
             "--fsdp_state_dict_type", "FULL_STATE_DICT"]  # fmt: skip


def test_fsdp2_on_two_cpu_processes_trains_what_one_process_does(tmp_path):
    torchrun = Path(sys.executable).with_name("torchrun")
    argv = [str(torchrun) if torchrun.exists() else "torchrun", "--nproc_per_node", "2",
            str(Path(__file__).with_name("fsdp_worker.py")), str(tmp_path)]  # fmt: skip
    proc = subprocess.run(argv, capture_output=True, text=True, env=dict(os.environ, OMP_NUM_THREADS="1"), timeout=300)
    assert proc.returncode == 0, proc.stderr[-4000:]
    record = json.loads((tmp_path / "fsdp.json").read_text())
    assert record["world_size"] == 2 and record["sharded"], record
    assert record["local_numel"] < 0.6 * record["numel"], f"rank 0 holds more than its share: {record}"
    assert record["max_change"] > 1e-2, f"training hardly moved the weights, so agreeing proves little: {record}"
    assert record["max_difference"] < 1e-5, record
    loaded = PerceiverByteForSequenceClassification.from_pretrained(tmp_path)
    assert sum(p.numel() for p in loaded.parameters()) == record["numel"]


@pytest.mark.skipif(torch.accelerator.device_count() < 2, reason="accelerate 1.15 runs FSDP only on accelerators "
                    "(on a CPU it falls back to DDP); needs 2 of them (scripts/gpu_benchmark.sh runs this on GPUs)")
def test_train_py_under_accelerate_fsdp_trains_sharded_and_saves_one_whole_model(tmp_path):
    files = {split: write_csv(tmp_path / f"{split}.csv", udhr_rows(split)) for split in ("train", "validation", "test")}
    out, hashes, max_steps = tmp_path / "out", tmp_path / "hashes", 4
    accelerate = Path(sys.executable).with_name("accelerate")
    argv = [str(accelerate) if accelerate.exists() else "accelerate", "launch", "--num_processes", "2",
            "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no", *FSDP_ARGS,
            str(STATE_HASH_SCRIPT), str(hashes),
            *tiny_args(out, "--train_file", files["train"], "--validation_file", files["validation"], "--test_file",
                       files["test"], steps=max_steps)]  # fmt: skip
    proc = subprocess.run(argv, capture_output=True, text=True, env=dict(os.environ, OMP_NUM_THREADS="1"), timeout=420)
    assert proc.returncode == 0, proc.stderr[-4000:]

    records = sorted((json.loads(p.read_text()) for p in hashes.glob("state_hash_rank*.json")), key=lambda r: r["rank"])
    assert [r["rank"] for r in records] == [0, 1]
    assert all(r["world_size"] == 2 and r["global_step"] == max_steps for r in records)
    assert all(r["sharded"] for r in records), "the parameters were not sharded (no DTensor): FSDP did not run"
    assert records[0]["sha256"] == records[1]["sha256"], "the two ranks ended with different weights"

    check_outputs(out, LANGS)
    weights = sorted(p.name for p in out.glob("*.safetensors*"))
    assert weights == ["model.safetensors"], f"one whole model file is expected, got {weights}"
    loaded = PerceiverByteForSequenceClassification.from_pretrained(out)
    assert state_dict_sha256(loaded) == records[0]["sha256"], "the saved model is not what the ranks computed"
