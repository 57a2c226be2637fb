"""One rank of a sharded training run with torch's FSDP2 (`fully_shard`) over gloo, against an unsharded replica that
every rank trains on the whole batch. Rank 0 gathers the full weights, saves them once with save_pretrained and
writes what it saw to OUT/fsdp.json.

    torchrun --nproc_per_node 2 tests/fsdp_worker.py OUT
"""

import copy
import json
import sys
from pathlib import Path

import torch
import torch.distributed as dist
from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict
from torch.distributed.fsdp import fully_shard
from torch.distributed.tensor import DTensor

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "scripts")]
from perceiver_byte import PerceiverByteConfig, PerceiverByteForSequenceClassification  # noqa: E402
from train import end_distributed  # noqa: E402

STEPS, BATCH, LENGTH = 3, 4, 48


def main(out: Path) -> None:
    dist.init_process_group("gloo")
    rank, world = dist.get_rank(), dist.get_world_size()
    torch.manual_seed(0)
    config = PerceiverByteConfig(num_labels=3, d_model=32, d_latents=32, num_latents=8, num_blocks=3,
                                 num_self_attends_per_block=1, ngram_buckets=1024, cross_attention_chunk_size=16)  # fmt: skip
    model = PerceiverByteForSequenceClassification(config)
    replica = copy.deepcopy(model)
    initial = copy.deepcopy(model.state_dict())
    # the layers accelerate's TRANSFORMER_BASED_WRAP would wrap (model._no_split_modules), then the rest
    for module in model.modules():
        if type(module).__name__ in model._no_split_modules:
            fully_shard(module)
    fully_shard(model)
    # SGD: the update is the gradient itself, so the check compares gradients (Adam would magnify rounding in tiny ones)
    optimizers = [torch.optim.SGD(m.parameters(), lr=0.5) for m in (model, replica)]
    generator = torch.Generator().manual_seed(1)
    share = slice(rank * BATCH // world, (rank + 1) * BATCH // world)
    for _ in range(STEPS):
        ids = torch.randint(6, 262, (BATCH, LENGTH), generator=generator)
        mask = torch.ones_like(ids)
        mask[1, LENGTH // 2 :] = 0  # a padded row; the streamed path (chunks of 16) too
        labels = torch.randint(0, 3, (BATCH,), generator=generator)
        for m, batch in ((model, share), (replica, slice(None))):  # FSDP averages the ranks' gradients
            m(input_ids=ids[batch], attention_mask=mask[batch], labels=labels[batch]).loss.backward()
        for optimizer in optimizers:
            optimizer.step()
            optimizer.zero_grad()
    sharded = all(isinstance(p, DTensor) for p in model.parameters())
    local = sum(p.to_local().numel() for p in model.parameters())
    full = get_model_state_dict(model, options=StateDictOptions(full_state_dict=True, cpu_offload=True))
    if rank == 0:
        expected = replica.state_dict()
        difference = max(float((full[k] - expected[k]).abs().max()) for k in expected)
        saved = PerceiverByteForSequenceClassification(config)
        saved.load_state_dict(full)
        saved.save_pretrained(out)
        record = {"world_size": world, "sharded": sharded, "local_numel": local,
                  "numel": sum(p.numel() for p in replica.parameters()), "max_difference": difference,
                  "max_change": max(float((expected[k] - initial[k]).abs().max()) for k in expected)}  # fmt: skip
        (out / "fsdp.json").write_text(json.dumps(record))
    end_distributed(succeeded=True)  # as the scripts end a run: barrier, destroy_process_group, no teardown


if __name__ == "__main__":
    main(Path(sys.argv[1]))
