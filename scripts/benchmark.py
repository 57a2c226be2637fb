#!/usr/bin/env python
"""Side-by-side speed and memory benchmark of three Perceivers over raw bytes, at a matched architecture.

Systems (the mapping of each is built by `system_mapping` below and written, with every parameter count, to the report):
  ours          perceiver_byte.PerceiverByteForSequenceClassification
  transformers  transformers.PerceiverForSequenceClassification (Perceiver IO: ONE cross-attend, text preprocessor with
                a learned position table of max_position_embeddings = M rows, cross-attention classification decoder)
  lucidrains    perceiver_pytorch.Perceiver (v0.11) behind an nn.Embedding(262, C), input_axis=1

Commands (run from the repository root, with the venv active):

    # Full run, on a QUIET machine (estimated 30-40 min on 2 CPU cores): writes docs/benchmarks.md, docs/benchmarks.json
    # and docs/benchmark_time.png, docs/benchmark_memory.png
    python scripts/benchmark.py

    # Quick smoke run: tiny model and sizes, 1 repeat (about 30-60 s); never writes into docs/ unless asked
    python scripts/benchmark.py --quick --out-dir /tmp/bench_quick

    # What the full run would measure, and an estimate of how long it takes, without running anything heavy
    python scripts/benchmark.py --plan

    # One measurement in this process, printed as one JSON line (what the parent launches per measurement)
    python scripts/benchmark.py --worker '{"system": "ours", "mode": "train", "M": 2048, "batch": 8}'

Scenarios (all in one run):
  matched   R = 1 (Perceiver IO has one cross-attend), batch 8: M in --sizes for every system, then --extra-sizes
            (64k..256k) for the systems that survive (anchors only up to --anchor-max-bytes). Training step
            (forward + backward + AdamW step) and inference (torch.inference_mode). The log-log slope of ours' training
            time and memory vs M over --fit-range (4k..256k) is fitted and printed (target <= 1.05).
  repeats   R = --repeats (8) with shared weights ("all_but_first": our key/value reuse computes K/V twice, once for
            repeat 1 and once for the shared repeats 2..R) vs lucidrains at depth R with weight_tie_layers=True
            (its K/V are recomputed in every block).
  compile   ours (the preset, R = 4 by default) eager vs torch.compile.
  long      ONE input of --long-bytes (1 MiB) bytes, batch 1, inference: ours (preset, with cross_attention_chunk_size
            when the config has that field) and the anchors mapped to the same preset; training at --long-train-bytes
            (65,536), batch 1: ours with gradient checkpointing, ours without, and the anchors.

Method: every measurement (system, scenario, M, mode, round) runs in its own process (`--launcher subprocess`:
`python scripts/benchmark.py --worker SPEC` printing one JSON line; `--launcher forkserver`: a child forked from a
server that imported torch/transformers once, each child still its own process with its own memory; --quick uses it).
The systems of one (scenario, M, mode) run interleaved, A B C A B C ..., for --rounds rounds; each process does
--warmup untimed steps then up to --iters timed steps (fewer when a step is so slow that the per-measurement budget
would be exceeded); the reported time is the median of all timed steps of all rounds. Peak memory (CPU): the
process's RSS high-water mark (VmHWM, reset through /proc/self/clear_refs after the model, optimizer and inputs are
built) minus the RSS at that moment: i.e. activations, gradients, optimizer state and temporaries of the steps, not
the interpreter, libraries or weights. tracemalloc does not see torch's allocations, and ru_maxrss alone would include
import-time peaks. On CUDA: torch.cuda.max_memory_allocated() minus memory_allocated() at the same point. Each worker
runs under an address-space limit (RLIMIT_AS, --mem-limit-gb above its size at start) so that a system running out
of memory fails cleanly ("OOM") instead of waking the kernel's OOM killer; a per-measurement wall-clock limit
(--time-limit, --long-time-limit) kills it otherwise ("timeout").
"""

from __future__ import annotations

import argparse
import datetime as _dt
import gc
import json
import os
import platform
import resource
import shlex
import statistics
import subprocess
import sys
import time
import traceback
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SYSTEMS = ("ours", "transformers", "lucidrains")
ANCHORS = ("transformers", "lucidrains")
PROJECTED = {"cross_attention_absorb_projections": False}  # the "ours projected" variant: keys/values of every byte
NUM_LABELS = 2
VOCAB = 262  # 6 special ids + 256 byte values (byte b has id b + 6), the scheme of transformers' PerceiverTokenizer

PRESETS = {
    "default": {},  # PerceiverByteConfig() defaults: C=128, n-grams 2-6, N=32, D=128, R=1, L=2, heads 4/4, widening 1/4
    "paper": "paper_imagenet",  # PerceiverByteConfig.paper_imagenet(): N=512, D=1024, C=64, R=8, L=6
    "tiny": dict(
        d_model=16,
        num_latents=8,
        d_latents=32,
        num_blocks=2,
        num_self_attends_per_block=1,
        num_cross_attention_heads=1,
        num_self_attention_heads=2,
    ),
}


# =====================================================================================================================
# configs and the mapping of each system
# =====================================================================================================================
def chunking_supported() -> bool:
    from perceiver_byte import PerceiverByteConfig

    return hasattr(PerceiverByteConfig, "cross_attention_chunk_size")


def our_config(preset: str, overrides: dict | None = None, chunk_size: int | None = None):
    """The PerceiverByteConfig of a measurement: the preset, then the scenario's overrides (num_blocks, sharing)."""
    from perceiver_byte import PerceiverByteConfig

    overrides = dict(overrides or {})
    if chunk_size is not None and chunking_supported():
        overrides["cross_attention_chunk_size"] = int(chunk_size)
    kind = PRESETS[preset]
    if kind == "paper_imagenet":
        return PerceiverByteConfig.paper_imagenet(num_labels=NUM_LABELS, **overrides)
    return PerceiverByteConfig(num_labels=NUM_LABELS, **{**kind, **overrides})


def absorbs_projections(cfg) -> bool:
    """Whether ours runs its cross-attentions in the absorbed form at this config (the model's own rule, asked of a
    model built on the meta device: no memory, no time)."""
    import torch

    from perceiver_byte import PerceiverByteModel

    if not hasattr(cfg, "cross_attention_absorb_projections"):
        return False
    with torch.device("meta"):
        return PerceiverByteModel(cfg).absorbs_projections()


def dims(cfg) -> dict:
    """The architecture numbers the FLOP formulas and the mappings use."""
    qk = cfg.qk_channels or cfg.d_latents
    v = cfg.v_channels or qk
    unique_cross = len(
        set(
            {"none": range(cfg.num_blocks), "all_but_first": [min(r, 1) for r in range(cfg.num_blocks)], "all": [0]}[
                cfg.cross_attention_weight_sharing
            ]
        )
    )
    return dict(
        C=cfg.d_model,
        N=cfg.num_latents,
        D=cfg.d_latents,
        K=qk,
        V=v,
        R=cfg.num_blocks,
        L=cfg.num_self_attends_per_block,
        hc=cfg.num_cross_attention_heads,
        hs=cfg.num_self_attention_heads,
        wc=cfg.cross_attention_widening_factor,
        ws=cfg.self_attention_widening_factor,
        U=unique_cross,
        mu=cfg.fourier_max_resolution,
        pos=cfg.position_encoding_type,
        ngrams=list(getattr(cfg, "ngram_orders", [])),
        buckets=getattr(cfg, "ngram_buckets", None),
        ngram_width=getattr(cfg, "ngram_embedding_size", None) or cfg.d_model,
        labels=NUM_LABELS,
        cross_sharing=cfg.cross_attention_weight_sharing,
        self_sharing=cfg.self_attention_weight_sharing,
        chunk=getattr(cfg, "cross_attention_chunk_size", None),
        absorbed=absorbs_projections(cfg),
    )


def transformers_config(cfg, max_positions: int):
    """transformers' PerceiverConfig at our architecture: one cross-attend (Perceiver IO), then num_blocks = R
    repeats of one block of L self-attends (weights shared between the repeats), max_position_embeddings = M."""
    from transformers import PerceiverConfig

    d = dims(cfg)
    return PerceiverConfig(
        num_latents=d["N"],
        d_latents=d["D"],
        d_model=d["C"],
        num_blocks=d["R"],
        num_self_attends_per_block=d["L"],
        num_self_attention_heads=d["hs"],
        num_cross_attention_heads=d["hc"],
        qk_channels=d["K"],
        v_channels=d["V"],
        cross_attention_widening_factor=d["wc"],
        self_attention_widening_factor=d["ws"],
        hidden_act=cfg.hidden_act,
        attention_probs_dropout_prob=0.0,
        max_position_embeddings=max(int(max_positions), 1),
        vocab_size=VOCAB,
        num_labels=NUM_LABELS,
        use_query_residual=True,
    )


def lucidrains_kwargs(cfg) -> dict:
    """perceiver_pytorch.Perceiver arguments at our architecture (the Embedding in front maps ids to C channels)."""
    d = dims(cfg)
    fourier = d["pos"] == "fourier"
    return dict(
        num_freq_bands=max(d["C"] // 2, 1),
        depth=d["R"],
        max_freq=d["mu"],
        input_channels=d["C"],
        input_axis=1,
        num_latents=d["N"],
        latent_dim=d["D"],
        cross_heads=d["hc"],
        latent_heads=d["hs"],
        cross_dim_head=d["K"] // d["hc"],
        latent_dim_head=d["K"] // d["hs"],
        num_classes=NUM_LABELS,
        attn_dropout=0.0,
        ff_dropout=0.0,
        weight_tie_layers=(d["cross_sharing"] != "none" or d["self_sharing"] != "none"),
        fourier_encode_data=fourier,
        self_per_cross_attn=d["L"],
    )


def system_mapping(system: str, cfg, attn: str | None = None) -> list[str]:
    """How `system` was mapped onto our architecture, line by line (written into the report)."""
    d = dims(cfg)
    attn = attn or cfg._attn_implementation or "sdpa"
    if system == "ours":
        form = (
            "ABSORBED cross-attention (the key/value projections and the byte LayerNorm's affine folded into the N "
            "latent queries and outputs; attention runs over the normalised C-channel byte array, no per-byte keys or "
            "values)"
            if d["absorbed"]
            else f"PROJECTED cross-attention (fused K/V projection of every byte, computed {d['U']}x per forward and "
            "reused by the repeats that share it)"
        )
        parts = ["byte embeddings"]
        if d["ngrams"]:
            parts.append(f"hashed n-grams of orders {d['ngrams']} ({d['buckets']:,} x {d['ngram_width']} table)")
        if d["pos"] == "fourier":
            parts.append(f"Fourier positions ({d['C'] // 2} frequencies 1..mu/2, mu={d['mu']}) added")
        elif d["pos"] == "learned":
            parts.append("a learned position table")
        byte_array = " + ".join(parts)
        lines = [
            f"PerceiverByteForSequenceClassification: C={d['C']}, N={d['N']}, D={d['D']}, R={d['R']}, L={d['L']}, "
            f"heads cross/self {d['hc']}/{d['hs']}, qk/v channels {d['K']}/{d['V']}, widening {d['wc']}/{d['ws']}, "
            f"sharing cross={d['cross_sharing']} self={d['self_sharing']}, {form}, byte array: {byte_array}, "
            f"mean-pool -> LayerNorm -> Linear head, attention: {attn} (transformers' default).",
        ]
        if d["chunk"]:
            lines.append(
                f"cross_attention_chunk_size={d['chunk']}: inputs longer than that are streamed chunk by "
                f"chunk (online softmax), always in the absorbed form."
            )
        return lines
    if system == "transformers":
        return [
            f"PerceiverForSequenceClassification(PerceiverConfig(d_model={d['C']}, num_latents={d['N']}, "
            f"d_latents={d['D']}, num_blocks={d['R']}, num_self_attends_per_block={d['L']}, heads cross/self "
            f"{d['hc']}/{d['hs']}, qk_channels={d['K']}, v_channels={d['V']}, widening {d['wc']}/{d['ws']}, "
            f"max_position_embeddings=M)).",
            "Perceiver IO: ONE cross-attend; num_blocks repeats only the latent block (shared weights), so it matches "
            "ours exactly at R = 1 only."
            + (f" Here R = {d['R']}: 1 cross-attend vs our {d['R']}." if d["R"] > 1 else ""),
            "Input: PerceiverTextPreprocessor = Embedding(262, C) + LEARNED position table of M x C (raised to M per "
            "measurement, so its parameter count grows with M; no Fourier features).",
            "Output: PerceiverClassificationDecoder = a trainable 1 x D query cross-attending to the N latents "
            "(qk = v = D, 1 head, MLP widening 1, query residual) -> Linear(D, labels); ours mean-pools instead.",
            "Separate K and V Linear layers (ours fuses them); layer norms eps 1e-5; attention: eager matmul+softmax "
            "(transformers' Perceiver has no SDPA path).",
        ]
    if system == "lucidrains":
        kw = lucidrains_kwargs(cfg)
        ctx = d["C"] + (2 * kw["num_freq_bands"] + 1 if kw["fourier_encode_data"] else 0)
        lines = [
            "nn.Embedding(262, C) -> perceiver_pytorch.Perceiver("
            + ", ".join(f"{k}={v}" for k, v in kw.items())
            + ").",
            f"Fourier: same frequencies as ours (num_freq_bands = C/2 = {kw['num_freq_bands']}, "
            "linspace(1, max_freq/2), "
            f"max_freq = mu = {d['mu']}), but positions are linspace(-1, 1, M) (scaled to each input's length) and the "
            f"features are CONCATENATED with the raw position: context width {ctx} = C + 2*{kw['num_freq_bands']} + 1 "
            f"instead of C = {d['C']}, so its K/V projection does {ctx / d['C']:.2f}x ours' work.",
            f"weight_tie_layers={kw['weight_tie_layers']}: block 1 has its own weights, blocks 2..R share one (cross "
            f"AND latent together) = ours' 'all_but_first' for both; but K/V are recomputed in every block "
            f"(R = {d['R']}x per forward).",
            "Feed-forwards are GEGLU with a fixed mult=4 (Linear(D, 8D), Linear(4D, D)) after cross- AND "
            "self-attention "
            f"(ours: GELU MLP, widening {d['wc']} after cross-attention, {d['ws']} after self-attention); q/kv "
            "projections have no bias; mean-pool -> LayerNorm -> Linear head like ours; attention: einsum+softmax.",
        ]
        if d["cross_sharing"] != d["self_sharing"] or d["cross_sharing"] == "all":
            lines.append(
                f"Our sharing (cross={d['cross_sharing']}, self={d['self_sharing']}) is not expressible; "
                f"closest: weight_tie_layers={kw['weight_tie_layers']}."
            )
        if d["V"] != d["K"]:
            lines.append(f"lucidrains uses one inner width for q/k/v: v_channels={d['V']} is mapped to {d['K']}.")
        return lines
    raise ValueError(system)


# =====================================================================================================================
# analytic FLOPs: 2*m*n*k per (m x k) @ (k x n) matmul; forward only, training step = 3 x forward
# =====================================================================================================================
FLOP_FORMULAS = r"""
Every matmul of an (m x k) by a (k x n) matrix counts 2*m*n*k FLOPs; elementwise work (layer norms, softmax, GELU,
Fourier features, embedding gathers, the optimizer) is not counted. A training step counts 3 x the forward (backward
= 2 x forward). Symbols: B batch, M bytes, C = d_model, N latents, D = d_latents, K = qk_channels and V = v_channels
(summed over heads), R repeats, L self-attends per repeat, wc / ws widening factors, n labels, U = distinct
cross-attention modules (K/V projections computed per forward: "none" R, "all_but_first" 2 (1 if R = 1), "all" 1).

ours (PerceiverByteForSequenceClassification), projected cross-attention (cross_attention_absorb_projections=False)
  K/V projection      U * 2*B*M*C*(K+V)         computed once per distinct cross-attention, reused by shared repeats
  per cross-attend    2*B*N*D*K (q) + 2*B*N*M*K (q.k) + 2*B*N*M*V (p.v) + 2*B*N*V*D (out) + 2*2*B*N*D*wc*D (MLP)
ours, absorbed cross-attention (the default choice whenever it is cheaper, and always when chunked); h = cross heads
  K/V projection      none                      attention runs over the normalised byte array x (B x M x C)
  per cross-attend    2*B*N*D*K (q) + 2*B*N*K*C (q folded to C channels) + 2*B*h*N*M*C (q.x) + 2*B*h*N*M*C (p.x)
                      + 2*B*N*C*V (values) + 2*B*N*V*D (out) + 2*2*B*N*D*wc*D (MLP)
  Both forms compute the same function (tests/test_modeling.py); the FLOPs counted are those each form executes, so
  the absorbed form's GFLOP/s and '% of matmul' are lower for the same speed: compare systems by time, not GFLOP/s.
  per self-attend     2*B*N*D*(2K+V) (qkv) + 2*B*N*N*K + 2*B*N*N*V + 2*B*N*V*D + 2*2*B*N*D*ws*D
  head                2*B*D*n
  forward = kv-projection + R * cross-attend + R*L * self-attend + head

transformers (PerceiverForSequenceClassification, one cross-attend, num_blocks = R latent blocks)
  K/V projection      2*B*M*C*K + 2*B*M*C*V     (separate key and value Linear layers, computed once)
  cross-attend        as ours, once
  self-attends        R*L, as ours
  decoder             1 query of D channels attending to the N latents, qk = v = D, MLP widening 1:
                      2*B*D*D (q) + 2*B*N*D*2D (k, v) + 2*B*N*D (q.k) + 2*B*N*D (p.v) + 2*B*D*D (out)
                      + 2*2*B*D*D (MLP) + 2*B*D*n (final Linear)

lucidrains (perceiver_pytorch.Perceiver, depth R, context width Cc = C + 2*(C/2) + 1 with Fourier features)
  per block           2*B*M*Cc*2K (to_kv, EVERY block: no reuse) + 2*B*N*D*K (q) + 2*B*N*M*K + 2*B*N*M*K
                      + 2*B*N*K*D (out) + GEGLU feed-forward 2*B*N*D*8D + 2*B*N*4D*D
                      + L * [2*B*N*D*3K + 2*2*B*N*N*K + 2*B*N*K*D + 2*B*N*D*8D + 2*B*N*4D*D]
  head                2*B*D*n
"""


def flops_forward(system: str, d: dict, B: int, M: int) -> dict:
    """Forward FLOPs of one batch, by component (see FLOP_FORMULAS)."""
    C, N, D, K, V, R, L, wc, ws, n = (d[k] for k in ("C", "N", "D", "K", "V", "R", "L", "wc", "ws", "labels"))
    self_layer = 2 * B * N * D * (2 * K + V) + 2 * B * N * N * (K + V) + 2 * B * N * V * D + 4 * B * N * D * ws * D
    cross_core = 2 * B * N * D * K + 2 * B * N * M * (K + V) + 2 * B * N * V * D + 4 * B * N * D * wc * D
    if system == "ours":
        chunked = d.get("chunk") is not None and M > d["chunk"]
        if d.get("absorbed") or chunked:
            h = d["hc"]
            cross = (
                2 * B * N * D * K + 2 * B * N * K * C + 4 * B * h * N * M * C + 2 * B * N * C * V + 2 * B * N * V * D
                + 4 * B * N * D * wc * D
            )  # fmt: skip
            return {
                "kv_projection": 0,
                "cross_attends": R * cross,
                "self_attends": R * L * self_layer,
                "head": 2 * B * D * n,
            }
        return {
            "kv_projection": d["U"] * 2 * B * M * C * (K + V),
            "cross_attends": R * cross_core,
            "self_attends": R * L * self_layer,
            "head": 2 * B * D * n,
        }
    if system == "transformers":
        decoder = 2 * B * D * D + 2 * B * N * D * 2 * D + 4 * B * N * D + 2 * B * D * D + 4 * B * D * D + 2 * B * D * n
        return {
            "kv_projection": 2 * B * M * C * (K + V),
            "cross_attends": cross_core,
            "self_attends": R * L * self_layer,
            "head": decoder,
        }
    if system == "lucidrains":
        Cc = C + (2 * max(C // 2, 1) + 1 if d["pos"] == "fourier" else 0)
        ff = 2 * B * N * D * 8 * D + 2 * B * N * 4 * D * D
        cross = 2 * B * N * D * K + 2 * 2 * B * N * M * K + 2 * B * N * K * D + ff
        latent = 2 * B * N * D * 3 * K + 2 * 2 * B * N * N * K + 2 * B * N * K * D + ff
        return {
            "kv_projection": R * 2 * B * M * Cc * 2 * K,
            "cross_attends": R * cross,
            "self_attends": R * L * latent,
            "head": 2 * B * D * n,
        }
    raise ValueError(system)


# =====================================================================================================================
# the worker: one measurement in this process
# =====================================================================================================================
def _status_kb(field: str) -> int | None:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def current_rss() -> int:
    kb = _status_kb("VmRSS")
    if kb is not None:
        return kb * 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def reset_peak_rss() -> bool:
    """Reset the RSS high-water mark (Linux >= 4.0); False when not possible (the peak is then ru_maxrss)."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def peak_rss() -> int:
    kb = _status_kb("VmHWM")
    if kb is not None:
        return kb * 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def limit_address_space(extra_bytes: int | None):
    """Cap this process's address space at its current size + extra_bytes, so an over-large allocation raises."""
    if not extra_bytes:
        return None
    size_kb = _status_kb("VmSize")
    if size_kb is None:
        return None
    limit = size_kb * 1024 + int(extra_bytes)
    try:
        resource.setrlimit(resource.RLIMIT_AS, (limit, resource.RLIM_INFINITY))
        return limit
    except (ValueError, OSError):
        return None


def classify_failure(exc: BaseException) -> str:
    text = f"{type(exc).__name__}: {exc}"
    low = text.lower()
    if (
        isinstance(exc, MemoryError)
        or "can't allocate memory" in low
        or "out of memory" in low
        or "cannot allocate" in low
    ):
        return "oom"
    return "error"


def build_system(spec: dict):
    """(model, train_loss(ids, labels) -> loss, infer(ids) -> logits, our config, mapping info)."""
    import torch.nn.functional as F
    from torch import nn

    cfg = our_config(spec.get("preset", "default"), spec.get("overrides"), spec.get("chunk_size"))
    system = spec["system"]
    if system == "ours":
        from perceiver_byte import PerceiverByteForSequenceClassification

        if spec.get("attn_implementation"):
            cfg._attn_implementation = spec["attn_implementation"]
        model = PerceiverByteForSequenceClassification(cfg)
        if spec.get("grad_ckpt"):
            if hasattr(model, "activation_checkpointing_enable"):  # transformers >= 5.2x
                model.activation_checkpointing_enable(activation_checkpointing_kwargs={"use_reentrant": False})
            else:
                model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})

        def train_loss(module, ids, labels):
            return module(input_ids=ids, labels=labels).loss

        def infer(module, ids):
            return module(input_ids=ids).logits

    elif system == "transformers":
        from transformers import PerceiverForSequenceClassification

        model = PerceiverForSequenceClassification(transformers_config(cfg, spec["M"]))

        def train_loss(module, ids, labels):
            return module(inputs=ids, labels=labels).loss

        def infer(module, ids):
            return module(inputs=ids).logits

    elif system == "lucidrains":
        from perceiver_pytorch import Perceiver

        class ByteClassifier(nn.Module):
            def __init__(self):
                super().__init__()
                self.embed = nn.Embedding(VOCAB, cfg.d_model)
                self.perceiver = Perceiver(**lucidrains_kwargs(cfg))

            def forward(self, ids):
                return self.perceiver(self.embed(ids))  # (B, M) -> (B, M, C) -> logits

        model = ByteClassifier()

        def train_loss(module, ids, labels):
            return F.cross_entropy(module(ids), labels)

        def infer(module, ids):
            return module(ids)

    else:
        raise ValueError(f"unknown system {system!r}")
    return model, train_loss, infer, cfg


def run_matmul(spec: dict) -> dict:
    """Median fp32 matmul rate of this machine: a square n x n product and the shape of our K/V projection."""
    import torch

    device = torch.device(spec.get("device", "cpu"))
    n = int(spec.get("n", 2048))
    rep = int(spec.get("reps", 7))
    rows = int(spec.get("rows", 65536))
    shapes = {"square": (n, n, n), "kv_projection": (rows, 128, 512)}
    out = {}
    for name, (m, k, nn_) in shapes.items():
        a = torch.randn(m, k, device=device)
        b = torch.randn(k, nn_, device=device)
        for _ in range(2):
            torch.matmul(a, b)
        times = []
        for _ in range(rep):
            sync(device)
            t = time.perf_counter()
            torch.matmul(a, b)
            sync(device)
            times.append(time.perf_counter() - t)
        med = statistics.median(times)
        out[name] = {"shape": [m, k, nn_], "gflops": 2 * m * k * nn_ / med / 1e9, "median_s": med, "times_s": times}
    return {"status": "ok", "matmul": out, "threads": torch.get_num_threads()}


def sync(device):
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)


def run_measurement(spec: dict) -> dict:
    """Build the system, warm up, time up to spec['iters'] steps; peak memory above the post-build baseline."""
    t_process = time.perf_counter()
    if hasattr(gc, "freeze"):
        gc.freeze()  # the imported modules' objects: never garbage, and gc.collect() below then skips them
    import numpy  # noqa: F401 - imported (with its BLAS buffers) before the address-space limit is set
    import torch

    if spec.get("system") in ("ours", "transformers"):
        import transformers.models.perceiver.modeling_perceiver  # noqa: F401

        import perceiver_byte  # noqa: F401
    elif spec.get("system") == "lucidrains":
        import perceiver_pytorch  # noqa: F401
    limit = limit_address_space(spec.get("mem_limit_bytes"))
    result = {"spec": spec, "status": "ok", "as_limit_bytes": limit}
    if spec.get("system") == "matmul":
        result.update(run_matmul(spec))
        return result

    if spec.get("threads"):
        torch.set_num_threads(int(spec["threads"]))
    device = torch.device(spec.get("device", "cpu"))
    torch.manual_seed(int(spec.get("seed", 0)))
    B, M, mode = int(spec["batch"]), int(spec["M"]), spec["mode"]
    stage = "build"
    try:
        model, train_loss, infer, cfg = build_system(spec)
        model.to(device)
        result["params"] = sum(p.numel() for p in model.parameters())
        d = dims(cfg)
        result["dims"] = d
        fwd = flops_forward(spec["system"], d, B, M)
        result["flops_forward_parts"] = fwd
        result["flops_forward"] = sum(fwd.values())
        result["flops_step"] = result["flops_forward"] * (3 if mode == "train" else 1)
        result["attn_implementation"] = getattr(getattr(model, "config", None), "_attn_implementation", "n/a")
        ids = torch.randint(6, VOCAB, (B, M), device=device)
        labels = torch.randint(0, NUM_LABELS, (B,), device=device)
        if mode == "train":
            model.train()
            optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
        else:
            model.eval()
        runner = model
        if spec.get("compile"):
            runner = torch.compile(model, backend=spec.get("compile_backend", "inductor"))

        def step():
            if mode == "train":
                loss = train_loss(runner, ids, labels)
                loss.backward()
                optimizer.step()
                optimizer.zero_grad(set_to_none=True)
            else:
                with torch.inference_mode():
                    infer(runner, ids)
            sync(device)

        gc.collect()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
            torch.cuda.reset_peak_memory_stats(device)
            baseline = torch.cuda.memory_allocated(device)
        else:
            baseline = current_rss()
            result["hwm_reset"] = reset_peak_rss()
        result["baseline_bytes"] = baseline
        result["build_s"] = time.perf_counter() - t_process
        time_limit = float(spec.get("time_limit_s", 600))
        budget = float(spec.get("budget_s", 0.5 * time_limit))
        t0 = time.perf_counter()
        warm = []
        stage = "warmup"
        for _ in range(max(int(spec.get("warmup", 1)), 0)):
            t = time.perf_counter()
            step()
            warm.append(time.perf_counter() - t)
        result["warmup_s"] = warm
        if warm and device.type != "cuda":
            # the steady-state step memory: RSS high-water mark of the timed steps above the RSS after warm-up
            # (optimizer state, touched library pages and the allocator's retained heap then count as baseline)
            result["peak_warmup_bytes"] = peak_rss() - baseline
            baseline_steady = current_rss()
            reset_peak_rss()
        elif warm:
            result["peak_warmup_bytes"] = torch.cuda.max_memory_allocated(device) - baseline
            baseline_steady = torch.cuda.memory_allocated(device)
            torch.cuda.reset_peak_memory_stats(device)
        else:
            baseline_steady = None
        times, cpu = [], []
        stage = "timed"
        for i in range(max(int(spec.get("iters", 3)), 1)):
            elapsed = time.perf_counter() - t_process
            last = times[-1] if times else (warm[-1] if warm else 0.0)
            # stop when the next step would overrun the budget; when even one timed step would overrun the hard
            # limit, keep the warm-up step as the (flagged) sample rather than be killed
            if i >= 1 and time.perf_counter() - t0 + last > budget:
                break
            if i == 0 and warm and elapsed + last > 0.9 * time_limit:
                result["warmup_only"] = True
                times = [warm[-1]]
                break
            r0 = resource.getrusage(resource.RUSAGE_SELF)
            t = time.perf_counter()
            step()
            times.append(time.perf_counter() - t)
            r1 = resource.getrusage(resource.RUSAGE_SELF)
            cpu.append((r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime))
        result["times_s"] = times
        result["cpu_s"] = cpu
        hwm = torch.cuda.max_memory_allocated(device) if device.type == "cuda" else peak_rss()
        if baseline_steady is None:
            result["peak_bytes"] = hwm - baseline
        else:
            result["peak_steady_bytes"] = hwm - baseline_steady
            result["peak_bytes"] = max(result["peak_warmup_bytes"], hwm - baseline)
        result["threads"] = torch.get_num_threads()
    except BaseException as exc:  # noqa: BLE001 - reported, not raised: the parent goes on with the next measurement
        if isinstance(exc, KeyboardInterrupt):
            raise
        result["status"] = classify_failure(exc)
        result["stage"] = stage
        result["error"] = f"{type(exc).__name__}: {str(exc).strip().splitlines()[0][:300] if str(exc).strip() else ''}"
        result["traceback"] = traceback.format_exc()[-2000:]
    result["process_s"] = time.perf_counter() - t_process
    return result


def worker_main(spec_json: str):
    spec = json.loads(spec_json)
    result = run_measurement(spec)
    sys.stdout.write("\n" + json.dumps(result) + "\n")
    sys.stdout.flush()


def _fork_child(spec: dict, conn):
    try:
        conn.send(run_measurement(spec))
    finally:
        conn.close()
        if not spec.get("compile"):  # (compiled children exit normally, so that torch's compile workers clean up)
            os._exit(0)  # skip the interpreter's teardown of torch/transformers: the result is already sent


# =====================================================================================================================
# launching workers
# =====================================================================================================================
class Launcher:
    def __init__(self, kind: str):
        self.kind = kind
        self.ctx = None
        if kind == "forkserver":
            import multiprocessing as mp

            self.ctx = mp.get_context("forkserver")
            self.ctx.set_forkserver_preload(
                [
                    "__main__",
                    "torch",
                    "perceiver_byte",
                    "perceiver_pytorch",
                    "transformers.models.perceiver.modeling_perceiver",
                ]
            )

    def run(self, spec: dict) -> dict:
        limit = float(spec.get("time_limit_s", 600))
        t = time.perf_counter()
        if self.kind == "subprocess":
            out = self._run_subprocess(spec, limit)
        else:
            out = self._run_fork(spec, limit)
        out.setdefault("spec", spec)
        out["wall_s"] = time.perf_counter() - t
        return out

    def _run_subprocess(self, spec, limit):
        cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", json.dumps(spec)]
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=limit, cwd=REPO, env=env)
        except subprocess.TimeoutExpired:
            return {"status": "timeout", "error": f"killed after the {limit:.0f} s per-measurement limit"}
        for line in reversed(proc.stdout.splitlines()):
            if line.startswith("{"):
                try:
                    return json.loads(line)
                except json.JSONDecodeError:
                    break
        return self._died(proc.returncode, proc.stderr)

    def _run_fork(self, spec, limit):
        parent, child = self.ctx.Pipe(duplex=False)
        proc = self.ctx.Process(target=_fork_child, args=(spec, child))
        proc.start()
        child.close()
        result = None
        try:
            if parent.poll(limit):
                result = parent.recv()
        except (EOFError, OSError):
            result = None
        proc.join(5 if result is not None else 0.1)
        if proc.is_alive():
            proc.kill()
            proc.join()
            if result is None:
                return {"status": "timeout", "error": f"killed after the {limit:.0f} s per-measurement limit"}
        if result is None:
            return self._died(proc.exitcode, "")
        return result

    @staticmethod
    def _died(code, stderr):
        tail = (stderr or "").strip().splitlines()[-1:] or [""]
        if code is not None and code < 0:
            sig = -code
            why = "killed by SIGKILL (likely the kernel's OOM killer)" if sig == 9 else f"killed by signal {sig}"
            return {"status": "oom" if sig == 9 else "crash", "error": why}
        return {"status": "crash", "error": f"worker exited with code {code} without a result: {tail[0][:300]}"}


# =====================================================================================================================
# the plan
# =====================================================================================================================
def kib(n):
    return f"{n // 1024}k" if n % 1024 == 0 and n >= 1024 else str(n)


def parse_sizes(text: str) -> list[int]:
    out = []
    for part in text.split(","):
        part = part.strip().lower()
        if not part:
            continue
        mult = 1
        if part.endswith("k"):
            mult, part = 1024, part[:-1]
        elif part.endswith("m"):
            mult, part = 1024 * 1024, part[:-1]
        out.append(int(float(part) * mult))
    return out


def build_plan(args) -> list[dict]:
    """Groups of measurements: each group is one (scenario, M, mode, batch) whose variants run interleaved."""
    groups = []
    common = dict(
        preset=args.preset,
        warmup=args.warmup,
        iters=args.iters,
        device=args.device,
        time_limit_s=args.time_limit,
        threads=args.threads,
    )

    def variant(name, system, **kw):
        return dict(name=name, system=system, **kw)

    systems = [s for s in args.systems if s in SYSTEMS]
    if "matched" in args.scenarios:
        all_sizes = sorted(set(args.sizes) | set(args.extra_sizes))
        for M in all_sizes:
            for mode in args.modes:
                vs = []
                for s in systems:
                    if M not in args.sizes and s in ANCHORS and M > args.anchor_max_bytes:
                        continue
                    vs.append(variant(s, s, overrides={"num_blocks": 1}))
                    if s == "ours" and args.projected and M <= args.anchor_max_bytes:
                        vs.append(variant("ours projected", s, overrides={"num_blocks": 1, **PROJECTED}))
                if vs:
                    groups.append(dict(scenario="matched", M=M, mode=mode, batch=args.batch_size, variants=vs))
    if "repeats" in args.scenarios and args.repeats:
        share = {
            "num_blocks": args.repeats,
            "cross_attention_weight_sharing": "all_but_first",
            "self_attention_weight_sharing": "all_but_first",
        }
        for M in args.repeats_sizes:
            for mode in args.modes:
                vs = [variant(f"{s} R={args.repeats}", s, overrides=share) for s in systems if s != "transformers"]
                if "ours" in systems and args.projected:
                    vs.insert(1, variant(f"ours projected R={args.repeats}", "ours", overrides={**share, **PROJECTED}))
                groups.append(dict(scenario="repeats", M=M, mode=mode, batch=args.batch_size, variants=vs))
    if "compile" in args.scenarios and "ours" in systems:
        for M in args.compile_sizes:
            for mode in args.modes:
                vs = [
                    variant("ours eager", "ours"),
                    variant(
                        "ours compiled",
                        "ours",
                        compile=True,
                        compile_backend=args.compile_backend,
                        warmup=max(args.warmup, 2),
                        time_limit_s=args.compile_time_limit,
                    ),
                ]
                groups.append(dict(scenario="compile", M=M, mode=mode, batch=args.batch_size, variants=vs))
    if "long" in args.scenarios:
        chunk = args.chunk_size
        if chunk is None and chunking_supported():
            from perceiver_byte import PerceiverByteConfig

            chunk = getattr(PerceiverByteConfig, "cross_attention_chunk_size", None) or 16384
        long_common = dict(time_limit_s=args.long_time_limit, warmup=0 if args.long_no_warmup else 1, iters=1)
        if "infer" in args.modes:
            vs = []
            for s in systems:
                kw = dict(long_common)
                if s == "ours" and chunking_supported():
                    kw["chunk_size"] = chunk
                chunked = "chunk_size" in kw and args.long_bytes > kw["chunk_size"]
                vs.append(variant(s + (f" (chunk {kib(chunk)})" if chunked else ""), s, **kw))
            groups.append(dict(scenario="long", M=args.long_bytes, mode="infer", batch=1, variants=vs))
        if "train" in args.modes:
            vs = []
            for s in systems:
                if s == "ours":
                    kw = dict(long_common, grad_ckpt=True)
                    if chunking_supported():
                        kw["chunk_size"] = chunk
                    chunked = "chunk_size" in kw and args.long_train_bytes > kw["chunk_size"]
                    vs.append(variant("ours + grad ckpt" + (f" (chunk {kib(chunk)})" if chunked else ""), s, **kw))
                    vs.append(variant("ours", s, **long_common))
                else:
                    vs.append(variant(s, s, **long_common))
            groups.append(dict(scenario="long", M=args.long_train_bytes, mode="train", batch=1, variants=vs))
    for g in groups:
        specs = []
        for v in g["variants"]:
            spec = dict(common)
            spec.update(scenario=g["scenario"], M=g["M"], mode=g["mode"], batch=g["batch"])
            spec.update({k: val for k, val in v.items()})
            if args.mem_limit_gb:
                spec["mem_limit_bytes"] = int(args.mem_limit_gb * 2**30)
            spec["budget_s"] = args.budget_fraction * float(spec["time_limit_s"])
            specs.append(spec)
        g["specs"] = specs
        g["rounds"] = 1 if g["scenario"] == "long" else args.rounds
    return groups


def estimate_plan(groups, args, rate_gflops: float) -> float:
    """Rough seconds for the plan: per process startup + (warmup + timed steps) at `rate_gflops` effective, with the
    same budget rule as the worker."""
    from perceiver_byte import PerceiverByteConfig  # noqa: F401 - config building needs the package

    total = 0.0
    startup = args.assume_startup_s
    for g in groups:
        for spec in g["specs"]:
            cfg = our_config(spec["preset"], spec.get("overrides"), spec.get("chunk_size"))
            f = sum(flops_forward(spec["system"], dims(cfg), spec["batch"], spec["M"]).values())
            f *= 3 if spec["mode"] == "train" else 1
            step = f / (rate_gflops * 1e9) + 0.01
            if spec.get("grad_ckpt"):
                step *= 1.33
            n_warm = spec.get("warmup", 1)
            n = 1
            while n < spec["iters"] and (n_warm + n) * step + step <= spec["budget_s"]:
                n += 1
            one = startup + (n_warm + n) * step
            if spec.get("compile"):
                one += args.assume_compile_s
            total += g["rounds"] * min(one, spec["time_limit_s"])
    return total + 2 * (startup + 3)


# =====================================================================================================================
# running, aggregating, reporting
# =====================================================================================================================
def fmt_bytes(n):
    if n is None:
        return "-"
    return f"{n / 2**20:,.1f}"


def fmt_time_ms(s):
    return f"{s * 1e3:,.1f}" if s < 100 else f"{s * 1e3:,.0f}"


def fmt_rate(x):
    for unit, scale in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if x >= scale:
            return f"{x / scale:.2f} {unit}"
    return f"{x:.0f} "


def failure_text(rec) -> str:
    st = rec.get("status")
    err = rec.get("error", "")
    if st == "oom":
        import re

        lim = rec.get("spec", {}).get("mem_limit_bytes")
        extra = f" under the {lim / 2**30:.2f} GiB allowance" if lim else ""
        m = re.search(r"allocate (\d+) bytes", err)
        if m:
            err = f"an allocation of {int(m.group(1)) / 2**20:,.0f} MiB failed"
        where = (
            f" in the {rec['stage']} step"
            if rec.get("stage") in ("warmup", "timed")
            else (" while building" if rec.get("stage") == "build" else "")
        )
        return f"OOM{extra}{where}: {err}"[:200]
    if st == "timeout":
        return f"timeout: {err}"
    if st == "skipped":
        return err
    return f"{st}: {err}"[:200]


def run_plan(groups, launcher, args, log) -> list[dict]:
    records = []
    failed = {}  # (scenario, variant name, mode) -> "failed at M=..."
    total = sum(len(g["specs"]) * g["rounds"] for g in groups)
    done = 0
    t_start = time.perf_counter()
    for g in groups:
        for rnd in range(g["rounds"]):
            for spec in g["specs"]:
                key = (g["scenario"], spec["name"], g["mode"])
                done += 1
                if key in failed:
                    if rnd == 0:
                        records.append({"spec": dict(spec, round=rnd), "status": "skipped", "error": failed[key]})
                    continue
                spec_r = dict(spec, round=rnd)
                rec = launcher.run(spec_r)
                rec["spec"] = spec_r
                records.append(rec)
                el = time.perf_counter() - t_start
                head = (
                    f"[{done}/{total} {el / 60:5.1f} min] {g['scenario']:<8} {g['mode']:<5} M={kib(g['M']):>6} "
                    f"B={g['batch']} {spec['name']:<26} r{rnd + 1}/{g['rounds']}: "
                )
                if rec.get("status") == "ok":
                    med = statistics.median(rec["times_s"])
                    log(
                        head
                        + f"{fmt_time_ms(med)} ms/step (n={len(rec['times_s'])}), peak {fmt_bytes(rec['peak_bytes'])} "
                        f"MiB, {rec.get('wall_s', 0):.1f} s"
                    )
                else:
                    log(head + failure_text(rec))
                    failed[key] = f"skipped: failed at M={g['M']} ({rec.get('status')})"
                    # larger inputs of the same variant and mode are skipped, smaller rounds too
    return records


def aggregate(records) -> list[dict]:
    """One row per (scenario, variant, mode, M, batch): median time over all timed steps of all rounds."""
    rows = {}
    for rec in records:
        spec = rec["spec"]
        if spec.get("system") == "matmul":
            continue
        key = (spec["scenario"], spec["name"], spec["mode"], spec["M"], spec["batch"])
        row = rows.setdefault(
            key,
            dict(
                scenario=spec["scenario"],
                name=spec["name"],
                system=spec["system"],
                mode=spec["mode"],
                M=spec["M"],
                batch=spec["batch"],
                times=[],
                peaks=[],
                cpu=[],
                failures=[],
                rounds=0,
                warmup_only=False,
                compile_first=[],
            ),
        )
        if rec.get("status") == "ok":
            row["rounds"] += 1
            row["times"] += rec["times_s"]
            row["cpu"] += rec.get("cpu_s", [])
            row["peaks"].append(rec["peak_bytes"])
            if rec.get("peak_steady_bytes") is not None:
                row.setdefault("steady", []).append(rec["peak_steady_bytes"])
            row["warmup_only"] |= bool(rec.get("warmup_only"))
            for k in ("params", "flops_step", "flops_forward_parts", "attn_implementation", "dims"):
                row[k] = rec.get(k)
            if spec.get("compile") and rec.get("warmup_s"):
                row["compile_first"].append(rec["warmup_s"][0])
        else:
            row["failures"].append(failure_text(rec))
    out = []
    for row in rows.values():
        if row["times"]:
            row["status"] = "ok"
            row["time_s"] = statistics.median(row["times"])
            row["time_min_s"], row["time_max_s"] = min(row["times"]), max(row["times"])
            row["peak_bytes"] = statistics.median(row["peaks"])
            row["peak_steady_bytes"] = statistics.median(row["steady"]) if row.get("steady") else None
            row["bytes_per_s"] = row["batch"] * row["M"] / row["time_s"]
            row["achieved_flops"] = row["flops_step"] / row["time_s"]
            if row["cpu"]:
                row["cpu_s"] = statistics.median(row["cpu"])
        else:
            row["status"] = "failed"
            row["failure"] = row["failures"][0] if row["failures"] else "no result"
        out.append(row)
    return out


def loglog_slope(xs, ys):
    import numpy as np

    if len(xs) < 2:
        return None
    return float(np.polyfit(np.log(np.asarray(xs, float)), np.log(np.asarray(ys, float)), 1)[0])


def find(rows, **kw):
    return [r for r in rows if all(r.get(k) == v for k, v in kw.items())]


def scaling_fits(rows, lo, hi):
    fits = {}
    for mode in ("train", "infer"):
        pts = sorted(
            (r["M"], r["time_s"], r["peak_bytes"])
            for r in find(rows, scenario="matched", name="ours", mode=mode)
            if r["status"] == "ok" and lo <= r["M"] <= hi
        )
        fits[mode] = {
            "points": len(pts),
            "range": [lo, hi],
            "M": [p[0] for p in pts],
            "time_slope": loglog_slope([p[0] for p in pts], [p[1] for p in pts]),
            "memory_slope": loglog_slope([p[0] for p in pts], [max(p[2], 1) for p in pts]),
        }
    return fits


def machine_info(args) -> dict:
    import torch
    import transformers

    cpu = platform.processor() or "?"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    mem = None
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemTotal"):
                    mem = int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        from importlib.metadata import version

        lucid = version("perceiver-pytorch")
    except Exception:  # noqa: BLE001
        lucid = "?"
    commit = None
    try:
        commit = (
            subprocess.run(
                ["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True, timeout=10
            ).stdout.strip()
            or None
        )
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout.strip()
        if commit and dirty:
            commit += " (with uncommitted changes)"
    except Exception:  # noqa: BLE001
        pass
    info = dict(
        cpu=cpu,
        logical_cpus=os.cpu_count(),
        usable_cpus=len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        torch_threads=torch.get_num_threads(),
        memory_bytes=mem,
        platform=platform.platform(),
        python=platform.python_version(),
        torch=torch.__version__,
        transformers=transformers.__version__,
        perceiver_pytorch=lucid,
        commit=commit,
        device=args.device,
    )
    if args.device == "cuda" and torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
    return info


def make_plots(rows, out_dir: Path, stem: str) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    colors = {"ours": "C0", "transformers": "C1", "lucidrains": "C2", "ours projected": "C3"}
    files = []
    for what, key, ylabel, fname in (
        ("time", "time_s", "seconds per step", f"{stem}_time.png"),
        ("memory", "peak_bytes", "peak memory above baseline (MiB)", f"{stem}_memory.png"),
    ):
        fig, axes = plt.subplots(1, 2, figsize=(12, 4.6))
        for ax, mode in zip(axes, ("train", "infer"), strict=True):
            for scen, style in (("matched", "-o"), ("repeats", "--s")):
                names = sorted({r["name"] for r in find(rows, scenario=scen, mode=mode)})
                for name in names:
                    pts = sorted(
                        (r["M"], r[key]) for r in find(rows, scenario=scen, mode=mode, name=name) if r["status"] == "ok"
                    )
                    if not pts:
                        continue
                    sysname = "ours projected" if name.startswith("ours projected") else name.split()[0]
                    ys = [p[1] / (2**20 if key == "peak_bytes" else 1) for p in pts]
                    label = f"{name} (R=1)" if scen == "matched" else name
                    ax.plot(
                        [p[0] for p in pts],
                        ys,
                        style,
                        color=colors.get(sysname),
                        label=label,
                        alpha=1.0 if scen == "matched" else 0.6,
                    )
                    fails = [r for r in find(rows, scenario=scen, mode=mode, name=name) if r["status"] != "ok"]
                    for r in fails:
                        ax.plot([r["M"]], [ys[-1]], "x", color=colors.get(sysname), markersize=10)
            ours_pts = sorted(
                (r["M"], r[key]) for r in find(rows, scenario="matched", mode=mode, name="ours") if r["status"] == "ok"
            )
            if len(ours_pts) >= 2:  # a slope-1 guide through ours' largest point: linear scaling
                m1, y1 = ours_pts[-1]
                y1 /= 2**20 if key == "peak_bytes" else 1
                m0 = ours_pts[0][0]
                ax.plot([m0, m1], [y1 * m0 / m1, y1], ":", color="grey", linewidth=1, label="slope 1 (linear in M)")
            ax.set_xscale("log", base=2)
            ax.set_yscale("log")
            ax.set_xlabel("input bytes M (per row)")
            ax.set_ylabel(ylabel)
            ax.set_title(f"{'training step' if mode == 'train' else 'inference'}: {what} vs M")
            ax.grid(True, which="both", alpha=0.3)
            ax.legend(fontsize=8)
        fig.suptitle("x = failed at that M (plotted at the last good value)", fontsize=8, y=0.02)
        fig.tight_layout()
        fig.savefig(out_dir / fname, dpi=110)
        plt.close(fig)
        files.append(fname)
    return files


def md_table(header, rows_):
    out = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    out += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows_]
    return "\n".join(out)


def result_cells(r, matmul_rate):
    if r["status"] != "ok":
        return None
    flag = " †" if r.get("warmup_only") else ""
    frac = r["achieved_flops"] / matmul_rate if matmul_rate else float("nan")
    return [
        f"{fmt_time_ms(r['time_s'])}{flag}",
        f"{fmt_time_ms(r['time_min_s'])}–{fmt_time_ms(r['time_max_s'])}",
        str(len(r["times"])),
        fmt_rate(r["bytes_per_s"]) + "B/s",
        fmt_bytes(r["peak_bytes"]),
        fmt_bytes(r.get("peak_steady_bytes")),
        f"{r['flops_step'] / 1e9:,.2f}",
        f"{r['achieved_flops'] / 1e9:,.1f}",
        f"{100 * frac:.1f}%",
    ]


RESULT_HEADER = [
    "M",
    "system",
    "params",
    "median ms/step",
    "min–max ms",
    "n",
    "bytes/s",
    "peak MiB",
    "steady MiB",
    "GFLOP/step",
    "GFLOP/s",
    "% of matmul",
]


def scenario_table(rows, scenario, mode, matmul_rate):
    sel = sorted(find(rows, scenario=scenario, mode=mode), key=lambda r: (r["M"], r["name"]))
    body = []
    for r in sel:
        cells = result_cells(r, matmul_rate)
        params = f"{r['params']:,}" if r.get("params") else "-"
        if cells is None:
            body.append([kib(r["M"]), r["name"], params, r["failure"]] + [""] * 8)
        else:
            body.append([kib(r["M"]), r["name"], params] + cells)
    return md_table(RESULT_HEADER, body)


def ratio_table(rows, scenario, ours_name, anchors):
    body = []
    Ms = sorted({r["M"] for r in find(rows, scenario=scenario)})
    for mode in ("train", "infer"):
        for M in Ms:
            o = find(rows, scenario=scenario, mode=mode, M=M, name=ours_name)
            if not o:
                continue
            o = o[0]
            if not any(find(rows, scenario=scenario, mode=mode, M=M, name=a) for a in anchors):
                continue
            cells = [mode, kib(M)]
            for a in anchors:
                ar = find(rows, scenario=scenario, mode=mode, M=M, name=a)
                if not ar:
                    cells += ["not run", "not run"]
                elif ar[0]["status"] != "ok":
                    cells += [f"anchor failed ({ar[0]['failure'][:40]})", ""]
                elif o["status"] != "ok":
                    cells += ["ours failed", ""]
                else:
                    cells += [
                        f"{o['time_s'] / ar[0]['time_s']:.2f}",
                        f"{o['peak_bytes'] / max(ar[0]['peak_bytes'], 1):.2f}",
                    ]
            body.append(cells)
    header = ["mode", "M"]
    for a in anchors:
        header += [f"time ours/{a}", f"memory ours/{a}"]
    return md_table(header, body)


def write_report(out_dir: Path, stem: str, data: dict, rows: list[dict], plots: list[str]) -> str:
    args = data["args"]
    mm = data["matmul"]
    rate = mm["reference_flops"]
    m = data["machine"]
    lines = ["# Benchmarks: perceiver-byte vs transformers' Perceiver IO vs lucidrains' Perceiver", ""]
    lines.append(
        f"Generated by `scripts/benchmark.py` on {data['date']} ("
        + ("QUICK smoke run: tiny sizes, not a benchmark" if args["quick"] else "full run")
        + ")."
    )
    lines += ["", "Command:", "", "```", data["command"], "```", ""]
    lines += [
        "## Machine",
        "",
        f"- CPU: {m['cpu']}; {m['usable_cpus']} usable cores, torch threads: {m['torch_threads']}; memory "
        f"{(m['memory_bytes'] or 0) / 2**30:.1f} GiB; {m['platform']}",
        f"- Python {m['python']}, torch {m['torch']}, transformers {m['transformers']}, perceiver-pytorch "
        f"{m['perceiver_pytorch']}; repository commit {m['commit']}",
        f"- Load average at start / end: {data['loadavg_start']} / {data['loadavg_end']} (a quiet machine has "
        f"less than its core count; higher means the timings are noisy)",
        f"- fp32 matmul rate measured in this run (median of {args['matmul_reps']}): "
        + "; ".join(
            f"{k} {v['shape'][0]}x{v['shape'][1]} @ {v['shape'][1]}x{v['shape'][2]}: "
            f"start {v['gflops_start']:.1f}, end {v['gflops_end']:.1f} GFLOP/s"
            for k, v in mm["shapes"].items()
        )
        + f". Reference for '% of matmul': {rate / 1e9:.1f} GFLOP/s (square, mean of start and end).",
        f"- Run time: {data['duration_s'] / 60:.1f} min for {data['n_measurements']} measurements "
        f"(launcher: {args['launcher']}).",
        "",
    ]
    lines += [
        "## Method",
        "",
        "Each measurement (system, scenario, input length M, training or inference, round) runs in its own "
        f"process; the systems of one (scenario, M, mode) run interleaved, A B C A B C, for {args['rounds']} rounds "
        "(1 for the long-input runs). A process builds the model, AdamW optimizer and a random input of byte ids, "
        f"runs {args['warmup']} warm-up step(s) (2 when compiled), then up to {args['iters']} timed steps (fewer "
        f"when a step is slow: budget {args['budget_fraction']:.0%} of the per-measurement limit of "
        f"{args['time_limit']:.0f} s; {args['long_time_limit']:.0f} s for the long-input runs). Reported: the "
        "median over all timed steps of all rounds, with min–max and the count n. "
        "A training step is forward + cross-entropy loss + backward + AdamW step; inference is a forward under "
        "torch.inference_mode(). All fp32, no padding, no attention mask. † = the warm-up step was the only "
        "sample (a timed step would have overrun the limit).",
        "",
        "Peak memory: the process's RSS high-water mark (VmHWM, reset via /proc/self/clear_refs after model, "
        "optimizer and inputs are built) minus the RSS at that moment, i.e. what the steps add: activations, "
        "gradients, AdamW state (created in the first step), temporaries. (tracemalloc does not see torch's "
        "allocator; ru_maxrss alone would include import-time peaks.) On CUDA: torch.cuda.max_memory_allocated "
        "minus memory_allocated at the same point. 'steady MiB' is the same for the timed steps alone, above the "
        "memory after warm-up: the step's working set without one-off costs of the first step (AdamW state, "
        "compilation, library pages touched for the first time). Each worker runs under an address-space limit "
        f"(RLIMIT_AS: {args['mem_limit_gb']:.1f} GiB above its size at start) so that running out of memory "
        "fails cleanly as OOM; a failure at some M skips the larger M of that system and mode.",
        "",
        "bytes/s = batch x M / median step time. GFLOP/s = the analytic FLOPs of the step (formulas below) / "
        "median step time; '% of matmul' = that / the machine's measured fp32 matmul rate.",
        "",
    ]
    lines += ["## Systems and how each was mapped", ""]
    for scen, mapping in data["mappings"].items():
        lines.append(f"### {scen}")
        lines.append("")
        for name, info in mapping.items():
            lines.append(f"- **{name}** ({info['params']})")
            for ln in info["lines"]:
                lines.append(f"  - {ln}")
        lines.append("")
    lines += ["## FLOP formulas", "", "```", FLOP_FORMULAS.strip("\n"), "```", ""]

    cfgline = data["matched_config"]
    if find(rows, scenario="matched"):
        lines += [
            f"## Matched architecture (R = 1), batch {args['batch_size']}",
            "",
            cfgline,
            f"Every system ran at M in {{{', '.join(kib(x) for x in args['sizes'])}}}; the larger "
            f"{{{', '.join(kib(x) for x in args['extra_sizes'])}}} ran for ours and, up to "
            f"{kib(args['anchor_max_bytes'])} (--anchor-max-bytes, to bound the run time), for the anchors that "
            f"had not failed.",
            "",
        ]
        for mode in ("train", "infer"):
            lines += [
                "### "
                + ("Training step (forward + backward + AdamW)" if mode == "train" else "Inference (inference_mode)"),
                "",
                scenario_table(rows, "matched", mode, rate),
                "",
            ]
        lines += [
            "### Ratios ours / anchor (below 1: ours faster / smaller)",
            "",
            ratio_table(rows, "matched", "ours", (*ANCHORS, "ours projected")),
            "",
        ]
        fits = data["fits"]
        lines += [
            "### Linear scaling of ours",
            "",
            f"Log-log slope of ours' time and peak memory vs M over M in [{kib(fits['train']['range'][0])}, "
            f"{kib(fits['train']['range'][1])}] (matched sweep; target <= 1.05):",
            "",
        ]
        body = []
        for mode in ("train", "infer"):
            f = fits[mode]
            ts = "-" if f["time_slope"] is None else f"{f['time_slope']:.3f}"
            ms = "-" if f["memory_slope"] is None else f"{f['memory_slope']:.3f}"
            ok = lambda s: "" if s is None else (" ✓" if s <= 1.05 else " ✗")  # noqa: E731
            body.append(
                [mode, ", ".join(kib(x) for x in f["M"]) or "-", ts + ok(f["time_slope"]), ms + ok(f["memory_slope"])]
            )
        lines += [md_table(["mode", "M points", "time slope", "memory slope"], body), ""]
    if find(rows, scenario="repeats"):
        R = args["repeats"]
        lines += [
            f"## R = {R} repeats with shared weights, batch {args['batch_size']}",
            "",
            f"Ours shares the cross-attention of repeats 2..{R} ('all_but_first'). In the projected form ('ours "
            f"projected') its K/V projection of the byte array runs 2x per forward (key/value reuse); the absorbed "
            f"form ('ours', the default choice here) forms no keys or values at all. lucidrains "
            f"(weight_tie_layers=True) recomputes K/V in each of its {R} blocks. transformers' Perceiver IO has one "
            "cross-attend and is not run here.",
            "",
        ]
        for mode in ("train", "infer"):
            lines += [f"### {mode}", "", scenario_table(rows, "repeats", mode, rate), ""]
        lines += [
            "### Ratios",
            "",
            ratio_table(rows, "repeats", f"ours R={R}", [f"lucidrains R={R}", f"ours projected R={R}"]),
            "",
            ratio_table(rows, "repeats", f"ours projected R={R}", [f"lucidrains R={R}"]).replace(
                "ours/", "ours projected/"
            ),
            "",
        ]
    if find(rows, scenario="compile"):
        lines += [
            f"## Eager vs torch.compile (ours, preset '{args['preset']}', backend {args['compile_backend']}), "
            f"batch {args['batch_size']}",
            "",
        ]
        for mode in ("train", "infer"):
            lines += [f"### {mode}", "", scenario_table(rows, "compile", mode, rate), ""]
        cf = [
            (r["mode"], r["M"], r["compile_first"])
            for r in find(rows, scenario="compile", name="ours compiled")
            if r.get("compile_first")
        ]
        if cf:
            lines += [
                "First compiled step (compilation included), per process: "
                + "; ".join(f"{mode} M={kib(M)}: " + ", ".join(f"{t:.1f} s" for t in ts) for mode, M, ts in cf),
                "",
            ]
        lines += [
            "### Ratios compiled / eager",
            "",
            ratio_table(rows, "compile", "ours compiled", ["ours eager"]).replace("ours/ours eager", "compiled/eager"),
            "",
        ]
    if find(rows, scenario="long"):
        lines += [
            f"## Long inputs, batch 1 (preset '{args['preset']}')",
            "",
            f"Inference on ONE input of {args['long_bytes']:,} bytes (target for ours: peak < 1 GiB) and "
            f"training at {args['long_train_bytes']:,} bytes. cross_attention_chunk_size: "
            f"{data['chunk_size'] if data['chunk_size'] else 'not in the config (unchunked)'}.",
            "",
        ]
        for mode in ("infer", "train"):
            lines += [f"### {mode}", "", scenario_table(rows, "long", mode, rate), ""]
        lo = [r for r in find(rows, scenario="long", mode="infer") if r["system"] == "ours" and r["status"] == "ok"]
        if lo:
            pk = lo[0]["peak_bytes"]
            lines += [
                f"Ours at {args['long_bytes']:,} bytes: peak {pk / 2**30:.3f} GiB above baseline "
                f"({'meets' if pk < 2**30 else 'MISSES'} the < 1 GiB target).",
                "",
            ]
    if plots:
        lines += ["## Plots", "", "Matched sweep (solid) and the R-repeats scenario (dashed), log-log:", ""]
        lines += [f"![{p}]({p})" for p in plots] + [""]
    lines += [f"Raw measurements (every process, every step time): `{stem}.json`.", ""]
    text = "\n".join(lines)
    (out_dir / f"{stem}.md").write_text(text)
    return text


def console_summary(rows, fits, matmul_rate) -> str:
    out = []
    for scen in ("matched", "repeats", "compile", "long"):
        sel = sorted(find(rows, scenario=scen), key=lambda r: (r["mode"], r["M"], r["name"]))
        if not sel:
            continue
        out.append(f"\n== {scen} ==")
        out.append(
            f"{'mode':<6}{'M':>8}  {'system':<28}{'params':>12}{'ms/step':>12}{'bytes/s':>12}{'peak MiB':>11}"
            f"{'GFLOP/s':>9}{'%mm':>7}"
        )
        for r in sel:
            p = f"{r['params']:,}" if r.get("params") else "-"
            if r["status"] == "ok":
                frac = 100 * r["achieved_flops"] / matmul_rate if matmul_rate else float("nan")
                out.append(
                    f"{r['mode']:<6}{kib(r['M']):>8}  {r['name']:<28}{p:>12}{fmt_time_ms(r['time_s']):>12}"
                    f"{fmt_rate(r['bytes_per_s']) + 'B':>12}{fmt_bytes(r['peak_bytes']):>11}"
                    f"{r['achieved_flops'] / 1e9:>9.2f}{frac:>6.1f}%"
                )
            else:
                out.append(f"{r['mode']:<6}{kib(r['M']):>8}  {r['name']:<28}{p:>12}  {r['failure'][:90]}")
    for mode, f in fits.items():
        if f["time_slope"] is not None:
            out.append(
                f"ours log-log slope ({mode}, M in {kib(f['range'][0])}..{kib(f['range'][1])}, {f['points']} points): "
                f"time {f['time_slope']:.3f}, memory {f['memory_slope']:.3f} (target <= 1.05)"
            )
    return "\n".join(out)


def parse_args(argv=None):
    p = argparse.ArgumentParser(
        description=__doc__.split("\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--worker", metavar="SPEC_JSON", help="run one measurement in this process, print one JSON line")
    p.add_argument("--quick", action="store_true", help="tiny model and sizes, 1 repeat (smoke test)")
    p.add_argument("--plan", action="store_true", help="print the measurements and an estimated duration, then exit")
    p.add_argument("--out-dir", type=Path, default=None, help="where the report goes (default docs/)")
    p.add_argument(
        "--stem", default="benchmarks", help="report file names: STEM.md, STEM.json (plots: benchmark_*.png)"
    )
    p.add_argument("--preset", choices=sorted(PRESETS), default=None, help="model config (default: our defaults)")
    p.add_argument("--systems", default=",".join(SYSTEMS), help="comma list of ours, transformers, lucidrains")
    p.add_argument("--scenarios", default="matched,repeats,compile,long", help="comma list")
    p.add_argument("--modes", default="train,infer")
    p.add_argument("--batch-size", "--batch_size", type=int, default=None)
    p.add_argument("--sizes", default=None, help="M for every system (default 512,2k,4k,8k,32k)")
    p.add_argument("--extra-sizes", default=None, help="larger M for the survivors (default 64k,128k,256k)")
    p.add_argument("--anchor-max-bytes", type=int, default=None, help="anchors' largest extra size (default 65536)")
    p.add_argument("--repeats", type=int, default=None, help="R of the shared-weights scenario (default 8; 0 = skip)")
    p.add_argument(
        "--no-projected", dest="projected", action="store_false",
        help="skip the 'ours projected' variant (cross_attention_absorb_projections=False) in the matched and repeats "
        "scenarios",
    )  # fmt: skip
    p.add_argument("--repeats-sizes", default=None, help="M of that scenario (default 2k,8k,32k)")
    p.add_argument("--compile-sizes", default=None, help="M of the eager-vs-compile scenario (default 8k)")
    p.add_argument("--compile-backend", default=None, help="torch.compile backend (default inductor)")
    p.add_argument("--long-bytes", type=int, default=None, help="the long inference input (default 1,048,576)")
    p.add_argument("--long-train-bytes", type=int, default=None, help="the long training input (default 65,536)")
    p.add_argument("--long-no-warmup", action="store_true", help="no warm-up step for the long-input runs")
    p.add_argument("--chunk-size", type=int, default=None, help="ours' cross_attention_chunk_size in the long runs")
    p.add_argument("--fit-range", default=None, help="M range of the slope fit (default 4k,256k)")
    p.add_argument("--rounds", type=int, default=None, help="interleaved rounds, one process each (default 2)")
    p.add_argument("--iters", type=int, default=None, help="timed steps per process at most (default 3)")
    p.add_argument("--warmup", type=int, default=None, help="untimed steps per process (default 1)")
    p.add_argument("--time-limit", type=float, default=None, help="seconds per measurement process (default 240)")
    p.add_argument("--long-time-limit", type=float, default=None, help="seconds per long-input process (default 420)")
    p.add_argument("--compile-time-limit", type=float, default=None, help="seconds per compiled process (default 420)")
    p.add_argument("--budget-fraction", type=float, default=0.5, help="of the limit, for timed steps (default 0.5)")
    p.add_argument(
        "--mem-limit-gb",
        type=float,
        default=None,
        help="address-space allowance per worker (default: 85%% of MemAvailable at start)",
    )
    p.add_argument("--matmul-size", type=int, default=None, help="n of the n x n matmul rate (default 2048)")
    p.add_argument("--matmul-reps", type=int, default=None)
    p.add_argument(
        "--launcher",
        choices=("subprocess", "forkserver"),
        default=None,
        help="subprocess (default): python benchmark.py --worker per measurement; forkserver (--quick): "
        "children forked from a server that preloaded torch/transformers",
    )
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=None, help="torch threads in each worker (default: torch's)")
    p.add_argument(
        "--assume-gflops",
        type=float,
        default=None,
        help="--plan: effective rate (default 75: one core did 48 GFLOP/s on these models)",
    )
    p.add_argument("--assume-startup-s", type=float, default=None, help="--plan: seconds per process start (default 3)")
    p.add_argument("--assume-compile-s", type=float, default=60.0, help="--plan: seconds of compilation per process")
    args = p.parse_args(argv)

    full = dict(
        preset="default",
        batch_size=8,
        sizes="512,2k,4k,8k,32k",
        extra_sizes="64k,128k,256k",
        anchor_max_bytes=65536,
        repeats=8,
        repeats_sizes="2k,8k,32k",
        compile_sizes="8k",
        compile_backend="inductor",
        long_bytes=1048576,
        long_train_bytes=65536,
        fit_range="4k,256k",
        rounds=2,
        iters=3,
        warmup=1,
        time_limit=240.0,
        long_time_limit=420.0,
        compile_time_limit=420.0,
        matmul_size=2048,
        matmul_reps=7,
        launcher="subprocess",
        assume_gflops=75.0,
        assume_startup_s=3.0,
    )
    quick = dict(
        full,
        preset="tiny",
        batch_size=2,
        sizes="256",
        extra_sizes="1k",
        anchor_max_bytes=256,
        repeats=2,
        repeats_sizes="256",
        compile_sizes="256",
        compile_backend="aot_eager",
        long_bytes=8192,
        long_train_bytes=2048,
        fit_range="256,1k",
        rounds=1,
        iters=1,
        warmup=1,
        time_limit=120.0,
        long_time_limit=120.0,
        compile_time_limit=120.0,
        matmul_size=512,
        matmul_reps=5,
        launcher="forkserver",
        assume_startup_s=0.5,
        threads=1,
        chunk_size=2048,
    )
    for k, v in (quick if args.quick else full).items():
        if getattr(args, k, None) is None:
            setattr(args, k, v)
    if args.out_dir is None:
        args.out_dir = REPO / "docs"
    args.systems = [s.strip() for s in args.systems.split(",") if s.strip()]
    args.scenarios = [s.strip() for s in args.scenarios.split(",") if s.strip()]
    args.modes = [s.strip() for s in args.modes.split(",") if s.strip()]
    for name in ("sizes", "extra_sizes", "repeats_sizes", "compile_sizes", "fit_range"):
        setattr(
            args,
            name,
            parse_sizes(getattr(args, name)) if isinstance(getattr(args, name), str) else getattr(args, name),
        )
    if args.mem_limit_gb is None:
        avail = _meminfo("MemAvailable")
        args.mem_limit_gb = 0.85 * avail / 2**30 if avail else 0.0
    bad = set(args.systems) - set(SYSTEMS)
    if bad:
        p.error(f"unknown systems {sorted(bad)}; choose from {SYSTEMS}")
    return args


def _meminfo(field):
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    if args.worker:
        worker_main(args.worker)
        return 0
    sys.path.insert(0, str(REPO))
    groups = build_plan(args)
    n_meas = sum(len(g["specs"]) * g["rounds"] for g in groups) + 2
    if args.plan:
        for g in groups:
            one = estimate_plan([g], args, args.assume_gflops) - estimate_plan([], args, args.assume_gflops)
            print(
                f"{g['scenario']:<8} {g['mode']:<5} M={kib(g['M']):>6} B={g['batch']} x{g['rounds']}: "
                + ", ".join(s["name"] for s in g["specs"])
                + f"  (~{one:.0f} s)"
            )
        est = estimate_plan(groups, args, args.assume_gflops)
        print(
            f"{n_meas} measurement processes; estimated {est / 60:.1f} min at an effective {args.assume_gflops:.0f} "
            f"GFLOP/s and {args.assume_startup_s:.1f} s per process start (compilation {args.assume_compile_s:.0f} s"
            f" per compiled process), before failures cut it short."
        )
        return 0

    def log(msg):
        print(msg, flush=True)

    args.out_dir.mkdir(parents=True, exist_ok=True)
    date = _dt.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")
    command = "python scripts/benchmark.py" + ("" if not argv else " " + shlex.join(argv))
    load_start = [round(x, 2) for x in os.getloadavg()] if hasattr(os, "getloadavg") else None
    log(f"{command}\n{n_meas} measurement processes, launcher {args.launcher}; load average {load_start}")
    t_all = time.perf_counter()
    launcher = Launcher(args.launcher)
    mm_spec = dict(
        system="matmul",
        n=args.matmul_size,
        reps=args.matmul_reps,
        device=args.device,
        time_limit_s=300,
        rows=8192 if args.quick else 65536,
        threads=args.threads,
    )
    mm_start = launcher.run(dict(mm_spec, scenario="matmul", name="matmul start"))
    if mm_start.get("status") == "ok":
        log("matmul: " + ", ".join(f"{k} {v['gflops']:.1f} GFLOP/s" for k, v in mm_start["matmul"].items()))
    records = [mm_start]
    records += run_plan(groups, launcher, args, log)
    mm_end = launcher.run(dict(mm_spec, scenario="matmul", name="matmul end"))
    records.append(mm_end)
    load_end = [round(x, 2) for x in os.getloadavg()] if hasattr(os, "getloadavg") else None

    shapes = {}
    for k in ("square", "kv_projection"):
        s = mm_start.get("matmul", {}).get(k)
        e = mm_end.get("matmul", {}).get(k)
        if s or e:
            shapes[k] = {
                "shape": (s or e)["shape"],
                "gflops_start": (s or e)["gflops"],
                "gflops_end": (e or s)["gflops"],
            }
    ref = shapes.get("square")
    matmul = {"shapes": shapes, "reference_flops": 1e9 * (ref["gflops_start"] + ref["gflops_end"]) / 2 if ref else 0.0}

    rows = aggregate(records)
    fits = scaling_fits(rows, *args.fit_range[:2])
    chunk_used = None
    for r in records:
        if r.get("spec", {}).get("chunk_size") and r.get("dims"):
            chunk_used = r["dims"].get("chunk")
    data_chunk = chunk_used
    # the mapping of each system, per scenario's config, with parameter counts measured in the run
    mappings = {}
    for scen, overrides, label in (
        ("matched", {"num_blocks": 1}, "Matched sweep (R = 1)"),
        (
            "repeats",
            {
                "num_blocks": args.repeats,
                "cross_attention_weight_sharing": "all_but_first",
                "self_attention_weight_sharing": "all_but_first",
            },
            f"Repeats scenario (R = {args.repeats})",
        ),
        ("long", {}, f"Compile and long-input scenarios (preset '{args.preset}' as is)"),
    ):
        if scen not in args.scenarios and not (scen == "long" and "compile" in args.scenarios):
            continue
        cfg = our_config(args.preset, overrides, data_chunk if scen == "long" else None)
        entry = {}
        for s in args.systems:
            if scen == "repeats" and s == "transformers":
                continue
            counts = sorted(
                {
                    (r["M"], r["params"])
                    for r in rows
                    if r["system"] == s
                    and r.get("params")
                    and r["scenario"] in ((scen,) if scen != "long" else ("long", "compile"))
                }
            )
            if s == "transformers" and counts:
                ptxt = (
                    "params "
                    + ", ".join(f"{p:,} at M={kib(M)}" for M, p in counts[:3])
                    + (" …" if len(counts) > 3 else "")
                    + f" (the position table adds C = {cfg.d_model} per byte of M)"
                )
            elif counts:
                ptxt = f"params {counts[0][1]:,}"
            else:
                ptxt = "params: not measured"
            attn = next(
                (r.get("attn_implementation") for r in rows if r["system"] == s and r.get("attn_implementation")), None
            )
            entry[s] = {"params": ptxt, "lines": system_mapping(s, cfg, attn)}
            if s == "ours" and scen != "long" and any(r["name"].startswith("ours projected") for r in rows):
                projected = our_config(args.preset, {**overrides, **PROJECTED})
                entry["ours projected"] = {"params": ptxt, "lines": system_mapping(s, projected, attn)}
        mappings[label] = entry
    d = dims(our_config(args.preset, {"num_blocks": 1}))
    matched_config = (
        f"Config: preset '{args.preset}' with R = 1: C={d['C']}, N={d['N']}, D={d['D']}, L={d['L']}, heads "
        f"{d['hc']}/{d['hs']}, qk/v {d['K']}/{d['V']}, widening {d['wc']}/{d['ws']}."
    )
    data = dict(
        date=date,
        command=command,
        args={k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        machine=machine_info(args),
        loadavg_start=load_start,
        loadavg_end=load_end,
        matmul=matmul,
        duration_s=time.perf_counter() - t_all,
        n_measurements=len(records),
        fits=fits,
        mappings=mappings,
        matched_config=matched_config,
        chunk_size=chunk_used,
        flop_formulas=FLOP_FORMULAS,
        summary=[{k: v for k, v in r.items() if k not in ("times", "cpu", "peaks", "steady")} for r in rows],
        measurements=records,
    )
    plots = []
    try:
        plots = make_plots(rows, args.out_dir, "benchmark" if args.stem == "benchmarks" else args.stem)
    except Exception as exc:  # noqa: BLE001 - a report without plots beats no report
        log(f"plots failed: {type(exc).__name__}: {exc}")
    data["plots"] = plots
    (args.out_dir / f"{args.stem}.json").write_text(json.dumps(data, indent=1, default=str))
    write_report(args.out_dir, args.stem, data, rows, plots)
    log(console_summary(rows, fits, matmul["reference_flops"]))
    log(
        f"\nwrote {args.out_dir / (args.stem + '.md')}, {args.stem}.json and {', '.join(plots)} in "
        f"{data['duration_s'] / 60:.1f} min"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
