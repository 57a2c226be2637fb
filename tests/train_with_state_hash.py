"""scripts/train.py plus one test hook: when training ends, every rank writes the hash of its final weights to
DIR/state_hash_rank{RANK}.json, so that a test can check that the ranks of a distributed run agree.

    accelerate launch --multi_gpu --num_processes 2 ... tests/train_with_state_hash.py DIR [train.py arguments]
"""

import hashlib
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))

import common  # noqa: E402
import train  # noqa: E402
from torch.distributed.tensor import DTensor  # noqa: E402
from transformers import TrainerCallback  # noqa: E402


def state_dict_sha256(model) -> str:
    """The hash of the full weights; a sharded (FSDP) parameter is gathered first, which every rank must call."""
    digest = hashlib.sha256()
    for key, tensor in sorted(model.state_dict().items()):
        tensor = tensor.full_tensor() if isinstance(tensor, DTensor) else tensor
        digest.update(key.encode())
        digest.update(tensor.detach().cpu().contiguous().float().numpy().tobytes())
    return digest.hexdigest()


class StateHash(TrainerCallback):
    def __init__(self, directory: str):
        self.directory = Path(directory)

    def on_train_end(self, args, state, control, model=None, **kwargs):
        record = {"rank": args.process_index, "world_size": args.world_size, "global_step": state.global_step,
                  "is_world_process_zero": state.is_world_process_zero, "sha256": state_dict_sha256(model),
                  "sharded": any(isinstance(p, DTensor) for p in model.parameters())}  # fmt: skip
        self.directory.mkdir(parents=True, exist_ok=True)
        (self.directory / f"state_hash_rank{args.process_index}.json").write_text(json.dumps(record))


if __name__ == "__main__":
    directory, argv = sys.argv[1], sys.argv[2:]
    sys.exit(common.run_cli(lambda a: train.main(a, callbacks=[StateHash(directory)]), argv, train.end_distributed))
