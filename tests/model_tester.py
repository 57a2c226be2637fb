"""ModelTester-style helpers: tiny configs and inputs that every model test builds on."""

import textwrap

import torch

from perceiver_byte import PerceiverByteConfig

TINY = dict(
    d_model=16, num_latents=8, d_latents=32, num_blocks=3, num_self_attends_per_block=2,
    num_cross_attention_heads=1, num_self_attention_heads=4, cross_attention_widening_factor=1,
    self_attention_widening_factor=2, num_labels=3, local_kernel_size=3,
    ngram_buckets=97,  # a small hash table: tests save and load often
)  # fmt: skip


def tiny_config(**overrides) -> PerceiverByteConfig:
    return PerceiverByteConfig(**{**TINY, **overrides})


def tiny_inputs(batch=3, length=13, seed=0, padded=True):
    """Random byte ids (B, M) with a mask whose rows have different real lengths (right padding)."""
    g = torch.Generator().manual_seed(seed)
    input_ids = torch.randint(6, 262, (batch, length), generator=g)
    attention_mask = torch.ones(batch, length, dtype=torch.long)
    if padded:
        for row in range(1, batch):
            real = max(1, length - 3 * row)
            attention_mask[row, real:] = 0
            input_ids[row, real:] = 0
    return input_ids, attention_mask


def count_params(module) -> int:
    return sum(p.numel() for p in module.parameters())


# Put first in a child process: from then on `import perceiver_byte` fails, as on a machine without the package.
BLOCK_PACKAGE = textwrap.dedent(
    """
    import importlib.abc, sys
    class _Block(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name == "perceiver_byte" or name.startswith("perceiver_byte."):
                raise ModuleNotFoundError(f"No module named {name!r} (blocked by the test)")
    sys.meta_path.insert(0, _Block())
    try:
        import perceiver_byte
        raise SystemExit("perceiver_byte is importable: the test would prove nothing")
    except ModuleNotFoundError:
        pass
    """
)
