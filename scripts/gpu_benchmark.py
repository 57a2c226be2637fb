#!/usr/bin/env python
"""One prepared GPU check of perceiver-byte (ours only): bf16 autocast + SDPA flash backend, checked against float32,
then training-step and inference timings with throughput, MFU and peak memory. Called by scripts/gpu_benchmark.sh.

    bash scripts/gpu_benchmark.sh                          # H200: default model, shapes that fill the chip
    bash scripts/gpu_benchmark.sh --device cpu --tiny      # the same script at a tiny size on the CPU (smoke test)
    OUT=/tmp/g python scripts/gpu_benchmark.py --shapes 64x32768 --modes train --compile

1. Correctness: the same weights run (a) in float32 with the eager attention (TF32 off) and (b) under bf16 autocast
   with SDPA restricted to the flash backend; the latents (B x N x D), the loss and all parameter gradients are
   compared (relative L2 error; gradient cosine similarity). When the config has cross_attention_chunk_size, the
   chunked float32 path is also compared with the unchunked one.
2. Timings per shape BxM (batch x bytes per row) and mode: training step = forward + loss + backward + AdamW (fused on
   CUDA), inference = forward under inference_mode, both under bf16 autocast + flash SDPA; --warmup untimed steps,
   then the median of --iters steps (CUDA-synchronised). Throughput in bytes/s (B*M / step), MFU = analytic FLOPs
   per step (the FLOP model of docs/benchmarks.md: 2*m*n*k per matmul, training = 3 x forward) / step time /
   --peak-tflops (790 TFLOP/s: H200 dense bf16). Peak memory: torch.cuda.max_memory_allocated above the allocation
   before the measurement (CPU: the RSS high-water mark above the RSS before it).
Everything goes under $OUT (default ./gpu_out): gpu_benchmark.json, gpu_benchmark.md (the table) and the log.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # perceiver_byte, when it is not installed

import benchmark as bench  # scripts/benchmark.py: configs, FLOP formulas, memory helpers
import common


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--device", default=None, help="cuda (default when available) or cpu")
    p.add_argument("--preset", default="default", choices=sorted(bench.PRESETS))
    p.add_argument(
        "--shapes", default=None, help="comma list of BxM (default 1024x2k,256x32k,32x256k,8x1m; --tiny 2x256)"
    )
    p.add_argument("--modes", default="train,infer")
    p.add_argument("--check-shape", default=None, help="BxM of the correctness check (default 4x8k; --tiny 2x256)")
    p.add_argument("--dtype", default="bf16", choices=("bf16", "fp16", "fp32"), help="autocast dtype of the timings")
    p.add_argument("--sdpa-backend", default="flash", choices=("flash", "efficient", "cudnn", "math", "any"))
    p.add_argument(
        "--chunk-size", type=int, default=None, help="cross_attention_chunk_size for the timings (default: none)"
    )
    p.add_argument("--compile", action="store_true", help="torch.compile the model for the timings")
    p.add_argument("--warmup", type=int, default=None, help="untimed steps (default 3; --tiny 1)")
    p.add_argument("--iters", type=int, default=None, help="timed steps (default 10; --tiny 2)")
    p.add_argument("--peak-tflops", type=float, default=790.0, help="dense bf16 peak for MFU (H200: 790)")
    p.add_argument("--tiny", action="store_true", help="tiny preset and shapes (CPU smoke test)")
    p.add_argument("--out", type=Path, default=None, help="output folder (default $OUT or ./gpu_out)")
    p.add_argument("--tolerance", type=float, default=3e-2, help="max relative L2 error of latents/loss vs float32")
    args = p.parse_args(argv)
    if args.tiny:
        args.preset = "tiny"
        args.shapes = args.shapes or "2x256"
        args.check_shape = args.check_shape or "2x256"
        args.warmup = 1 if args.warmup is None else args.warmup
        args.iters = 2 if args.iters is None else args.iters
    args.shapes = args.shapes or "1024x2k,256x32k,32x256k,8x1m"
    args.check_shape = args.check_shape or "4x8k"
    args.warmup = 3 if args.warmup is None else args.warmup
    args.iters = 10 if args.iters is None else args.iters
    args.out = args.out or Path(os.environ.get("OUT") or "gpu_out")
    return args


def parse_shape(text):
    b, m = text.lower().split("x")
    return int(b), bench.parse_sizes(m)[0]


class Env:
    def __init__(self, args):
        import torch
        from torch.nn.attention import SDPBackend

        self.torch = torch
        self.device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
        self.cuda = self.device.type == "cuda"
        self.dtype = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}[args.dtype]
        self.backends = {
            "flash": [SDPBackend.FLASH_ATTENTION],
            "efficient": [SDPBackend.EFFICIENT_ATTENTION],
            "cudnn": [SDPBackend.CUDNN_ATTENTION],
            "math": [SDPBackend.MATH],
            "any": None,
        }[args.sdpa_backend]

    def sync(self):
        if self.cuda:
            self.torch.cuda.synchronize(self.device)

    def autocast(self, enabled=True):
        return self.torch.autocast(
            self.device.type, dtype=self.dtype, enabled=enabled and self.dtype != self.torch.float32
        )

    def sdpa(self):
        from torch.nn.attention import sdpa_kernel

        return contextlib.nullcontext() if self.backends is None else sdpa_kernel(self.backends)


def build(args, env, attn, chunk=None):
    torch = env.torch
    from perceiver_byte import PerceiverByteForSequenceClassification

    torch.manual_seed(0)
    cfg = bench.our_config(args.preset, {"cross_attention_chunk_size": chunk})
    model = PerceiverByteForSequenceClassification(cfg).to(env.device)
    model.set_attn_implementation(attn)
    return model, cfg


def rel(a, b):
    a, b = a.float().flatten(), b.float().flatten()
    return (a - b).norm().item() / max(b.norm().item(), 1e-30)


def correctness(args, env, log) -> dict:
    torch = env.torch
    B, M = parse_shape(args.check_shape)
    saved_tf32 = (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32)
    torch.backends.cuda.matmul.allow_tf32 = False  # a true float32 reference
    torch.backends.cudnn.allow_tf32 = False
    model, _ = build(args, env, "eager")
    model.train()  # dropout is 0 in every preset; train mode so that the backward path is the timed one
    g = torch.Generator(device="cpu").manual_seed(1)
    ids = torch.randint(6, bench.VOCAB, (B, M), generator=g).to(env.device)
    labels = torch.randint(0, bench.NUM_LABELS, (B,), generator=g).to(env.device)

    def run(autocast, attn, chunk=None):
        model.set_attn_implementation(attn)
        model.config.cross_attention_chunk_size = chunk
        model.zero_grad(set_to_none=True)
        with env.autocast(autocast), env.sdpa() if attn == "sdpa" else contextlib.nullcontext():
            latents = model.base_model(input_ids=ids).last_hidden_state
            loss = model(input_ids=ids, labels=labels).loss
        loss.backward()
        grads = torch.cat([p.grad.flatten().float() for p in model.parameters() if p.grad is not None])
        return latents.detach().float(), loss.detach().float(), grads

    ref_lat, ref_loss, ref_grad = run(False, "eager")
    res = {"shape": [B, M], "dtype": args.dtype, "sdpa_backend": args.sdpa_backend}
    try:
        lat, loss, grad = run(True, "sdpa")
        cos = torch.nn.functional.cosine_similarity(grad, ref_grad, dim=0).item()
        res.update(
            latents_rel_err=rel(lat, ref_lat),
            loss_rel_err=rel(loss, ref_loss),
            grad_rel_err=rel(grad, ref_grad),
            grad_cosine=cos,
        )
        tol = args.tolerance if args.dtype != "fp32" else 1e-4
        res["ok"] = res["latents_rel_err"] < tol and res["loss_rel_err"] < tol and cos > 0.99
    except Exception as exc:  # noqa: BLE001 - e.g. no flash kernel for this dtype/shape: reported, not raised
        res.update(ok=False, error=f"{type(exc).__name__}: {str(exc)[:400]}")
    chunk = max(M // 4, 1)
    lat_c, _, grad_c = run(False, "eager", chunk)
    res["chunked_fp32"] = dict(chunk=chunk, latents_rel_err=rel(lat_c, ref_lat), grad_rel_err=rel(grad_c, ref_grad))
    res["chunked_ok"] = res["chunked_fp32"]["latents_rel_err"] < 1e-4 and res["chunked_fp32"]["grad_rel_err"] < 1e-3
    res["ok"] = bool(res.get("ok")) and res["chunked_ok"]
    log(
        f"correctness at B={B}, M={M}: "
        + json.dumps({k: (round(v, 6) if isinstance(v, float) else v) for k, v in res.items()})
    )
    model = None  # frees the reference model before the timings
    torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved_tf32
    if env.cuda:
        torch.cuda.empty_cache()
    return res


def timings(args, env, log) -> list[dict]:
    torch = env.torch
    rows = []
    model, cfg = build(args, env, "sdpa", args.chunk_size)
    d = bench.dims(cfg, model.base_model.absorbs_projections())
    params = sum(p.numel() for p in model.parameters())
    runner = torch.compile(model) if args.compile else model
    for shape in args.shapes.split(","):
        B, M = parse_shape(shape)
        for mode in [m.strip() for m in args.modes.split(",") if m.strip()]:
            row = {"mode": mode, "batch": B, "M": M, "params": params}
            flops = sum(bench.flops_forward("ours", d, B, M).values()) * (3 if mode == "train" else 1)
            row["flops_step"] = flops
            opt = None
            try:
                ids = torch.randint(6, bench.VOCAB, (B, M), device=env.device)
                labels = torch.randint(0, bench.NUM_LABELS, (B,), device=env.device)
                if mode == "train":
                    model.train()
                    opt = torch.optim.AdamW(model.parameters(), lr=1e-4, **({"fused": True} if env.cuda else {}))
                else:
                    model.eval()

                def step():
                    with env.autocast(), env.sdpa():
                        if mode == "train":
                            runner(input_ids=ids, labels=labels).loss.backward()
                        else:
                            with torch.inference_mode():
                                runner(input_ids=ids)
                    if opt is not None:
                        opt.step()
                        opt.zero_grad(set_to_none=True)

                base = bench.memory_mark(env.device)
                t_first = time.perf_counter()
                for _ in range(args.warmup):
                    step()
                env.sync()
                row["warmup_s"] = time.perf_counter() - t_first
                times = []
                for _ in range(args.iters):
                    env.sync()
                    t = time.perf_counter()
                    step()
                    env.sync()
                    times.append(time.perf_counter() - t)
                row["peak_bytes"] = bench.memory_peak(env.device) - base
                row["times_s"] = times
                row["time_s"] = statistics.median(times)
                row["bytes_per_s"] = B * M / row["time_s"]
                row["tflops"] = flops / row["time_s"] / 1e12
                row["mfu"] = row["tflops"] / args.peak_tflops
                row["status"] = "ok"
            except Exception as exc:  # noqa: BLE001 - OOM and friends are reported per row
                oom = "out of memory" in str(exc).lower() or isinstance(exc, MemoryError)
                row["status"] = "oom" if oom else "error"
                row["error"] = f"{type(exc).__name__}: {str(exc).splitlines()[0][:200] if str(exc) else ''}"
            finally:
                opt = None
                ids = labels = None
                model.zero_grad(set_to_none=True)
                gc.collect()
                if env.cuda:
                    torch.cuda.empty_cache()
            rows.append(row)
            if row["status"] == "ok":
                log(
                    f"{mode:<5} B={B:<5} M={M:<8} {row['time_s'] * 1e3:10.2f} ms  "
                    f"{bench.fmt_rate(row['bytes_per_s']) + 'B/s':>12}  {row['tflops']:8.3g} TFLOP/s  "
                    f"MFU {100 * row['mfu']:6.3g}%  peak {row['peak_bytes'] / 2**30:7.3f} GiB"
                )
            else:
                log(f"{mode:<5} B={B:<5} M={M:<8} {row['status']}: {row['error']}")
    return rows


def table(rows, args) -> str:
    header = ["mode", "B", "M", "ms/step", "bytes/s", "TFLOP/s", f"MFU (of {args.peak_tflops:.0f})", "peak GiB"]
    body = []
    for r in rows:
        cells = [r["mode"], r["batch"], f"{r['M']:,}"]
        if r["status"] == "ok":
            cells += [f"{r['time_s'] * 1e3:.2f}", f"{bench.fmt_rate(r['bytes_per_s'])}B/s", f"{r['tflops']:.3g}",
                      f"{100 * r['mfu']:.3g}%", f"{r['peak_bytes'] / 2**30:.3f}"]  # fmt: skip
        else:
            cells += [f"{r['status']}: {r['error'][:80]}", "", "", "", ""]
        body.append(cells)
    return common.markdown_table(header, body)


def main(argv=None):
    args = parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    log_path = args.out / "gpu_benchmark.log"
    log_file = open(log_path, "w")

    def log(msg):
        print(msg, flush=True)
        log_file.write(msg + "\n")
        log_file.flush()

    env = Env(args)
    torch = env.torch
    import transformers

    info = {
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "device": str(env.device),
        "preset": args.preset,
        "dtype": args.dtype,
        "sdpa_backend": args.sdpa_backend,
        "compile": args.compile,
        "chunk_size": args.chunk_size,
        "peak_tflops": args.peak_tflops,
        "argv": sys.argv[1:],
    }
    if env.cuda:
        info["gpu"] = torch.cuda.get_device_name(env.device)
        info["capability"] = list(torch.cuda.get_device_capability(env.device))
        info["gpu_memory_bytes"] = torch.cuda.get_device_properties(env.device).total_memory
    log("gpu_benchmark: " + json.dumps(info))
    t0 = time.perf_counter()
    check = correctness(args, env, log)
    rows = timings(args, env, log)
    info["duration_s"] = time.perf_counter() - t0
    md = [
        f"# perceiver-byte on {info.get('gpu', env.device)}",
        "",
        f"preset '{args.preset}', {args.dtype} autocast, SDPA backend '{args.sdpa_backend}', compile={args.compile}, "
        f"chunk={args.chunk_size}; torch {info['torch']}, transformers {info['transformers']}.",
        "",
        f"Correctness vs float32 (B x M = {check['shape'][0]} x {check['shape'][1]}): "
        + ("PASS" if check.get("ok") else "FAIL")
        + " "
        + json.dumps({k: v for k, v in check.items() if k != "shape"}),
        "",
        table(rows, args),
        "",
    ]
    (args.out / "gpu_benchmark.md").write_text("\n".join(md))
    (args.out / "gpu_benchmark.json").write_text(
        json.dumps({"info": info, "correctness": check, "rows": rows}, indent=1)
    )
    log("\n" + table(rows, args))
    log(
        f"correctness: {'PASS' if check.get('ok') else 'FAIL'}; wrote {args.out}/gpu_benchmark.md, .json, .log in "
        f"{info['duration_s']:.1f} s"
    )
    log_file.close()
    return 0 if check.get("ok") else 1


if __name__ == "__main__":
    sys.exit(main())
