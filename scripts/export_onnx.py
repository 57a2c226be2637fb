#!/usr/bin/env python
"""Export a trained Perceiver byte classifier to ONNX, and run such an export with ONNX Runtime.

The export goes through `torch.onnx.export(..., dynamo=True)` with dynamic batch and length axes. ONNX_DIR receives
`model.onnx` (inputs `input_ids` and `attention_mask`, int64, B x M; output `logits`, B x num_labels), the config
(labels) and the tokenizer, so that it is all a deployment needs. The exported graph is then run once with
onnxruntime on a padded batch and its logits compared with PyTorch's.

Commands (from the repository root):

    python scripts/export_onnx.py outputs/udhr outputs/udhr-onnx
    python scripts/predict.py --onnx outputs/udhr-onnx --text "Hyvää huomenta"

Why not optimum: its ONNX package (optimum-onnx 0.1.0, the newest on PyPI) requires transformers < 4.58 and cannot
be installed beside transformers 5; the plain exporter needs no model-specific configuration.

The graph computes each cross-attention over the whole input, so its memory grows with the input length; PyTorch's
streamed path (cross_attention_chunk_size) gives the same logits in bounded memory.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from types import SimpleNamespace

import common
from common import UserError

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

ONNX_FILE = "model.onnx"
INPUT_NAMES = ("input_ids", "attention_mask")
#: Texts of two lengths, so that the example batch has a padded row.
EXAMPLE_TEXTS = ("A short one.", "A longer example text, padded to nothing: the other row is padded to its length.")


class OnnxClassifier:
    """An ONNX export run by onnxruntime, called like the PyTorch classifier: `model(input_ids=..., attention_mask=...)
    .logits` (a torch tensor), with the saved config (`model.config.id2label`)."""

    def __init__(self, onnx_dir: str | Path, threads: int | None = None):
        import onnxruntime
        from transformers import AutoConfig

        import perceiver_byte  # noqa: F401  (registers the config class)

        path = Path(onnx_dir) / ONNX_FILE
        if not path.is_file():
            raise UserError(f"{onnx_dir} has no {ONNX_FILE}: make one with python scripts/export_onnx.py OUTPUT_DIR "
                            f"{onnx_dir}")  # fmt: skip
        options = onnxruntime.SessionOptions()
        if threads:
            options.intra_op_num_threads = threads
        self.session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        self.config = AutoConfig.from_pretrained(onnx_dir)

    def __call__(self, input_ids, attention_mask=None, **_):
        import numpy as np
        import torch

        ids = np.asarray(input_ids, dtype=np.int64)
        mask = np.ones_like(ids) if attention_mask is None else np.asarray(attention_mask, dtype=np.int64)
        (logits,) = self.session.run(["logits"], {"input_ids": ids, "attention_mask": mask})
        return SimpleNamespace(logits=torch.from_numpy(logits))

    # predict.py moves a PyTorch model to a device and into eval mode; an ONNX session is already both
    def to(self, device):
        return self

    def eval(self):
        return self


def export(model_dir: str, onnx_dir: str, opset: int | None = None) -> float:
    """Write ONNX_DIR; return the largest |logit difference| between onnxruntime and PyTorch on an example batch."""
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    import perceiver_byte  # noqa: F401

    try:
        tokenizer = AutoTokenizer.from_pretrained(model_dir)
        model = AutoModelForSequenceClassification.from_pretrained(model_dir).eval()
    except (OSError, ValueError) as err:
        raise UserError(f"{model_dir}: cannot load a trained model and tokenizer from it ({err}).") from err
    # One graph for every length: the cross-attention over the whole input, not the streamed Python loop over chunks
    # (the same logits).
    model.config.cross_attention_chunk_size = None
    batch = tokenizer(list(EXAMPLE_TEXTS), padding=True, return_tensors="pt")
    inputs = {name: batch[name].to(torch.int64) for name in INPUT_NAMES}
    axes = {name: {0: torch.export.Dim("batch"), 1: torch.export.Dim("length")} for name in INPUT_NAMES}
    out = Path(onnx_dir)
    out.mkdir(parents=True, exist_ok=True)
    program = torch.onnx.export(model, (), kwargs=inputs, dynamo=True, dynamic_shapes=axes, opset_version=opset,
                                input_names=list(INPUT_NAMES), output_names=["logits"], verbose=False)  # fmt: skip
    program.save(str(out / ONNX_FILE))
    model.config.save_pretrained(out)
    tokenizer.save_pretrained(out)
    with torch.inference_mode():
        expected = model(**inputs).logits
    got = OnnxClassifier(out)(**{name: t.numpy() for name, t in inputs.items()}).logits
    return float((got - expected).abs().max())


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model_dir", metavar="OUTPUT_DIR", help="A trained model: an output dir of scripts/train.py.")
    parser.add_argument("onnx_dir", metavar="ONNX_DIR", help="Where to write model.onnx, the config and the tokenizer.")
    parser.add_argument("--opset", type=int, default=None, help="ONNX opset (default: the exporter's).")
    return parser


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    if not Path(args.model_dir).is_dir():
        raise UserError(f"{args.model_dir}: no such folder; train a model first (python scripts/train.py "
                        f"--output_dir {args.model_dir}).")  # fmt: skip
    difference = export(args.model_dir, args.onnx_dir, args.opset)
    print(f"wrote {Path(args.onnx_dir) / ONNX_FILE}; onnxruntime vs PyTorch on an example batch: max |logit "
          f"difference| {difference:.2e}")  # fmt: skip


if __name__ == "__main__":
    sys.exit(common.run_cli(main))
