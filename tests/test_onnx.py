"""ONNX export (scripts/export_onnx.py) and ONNX Runtime inference: the same logits as PyTorch."""

import json

import numpy as np
import pytest
import torch

pytest.importorskip("onnxruntime")
pytest.importorskip("onnxscript")

import export_onnx  # noqa: E402
import predict  # noqa: E402

from perceiver_byte import PerceiverByteConfig, PerceiverByteForSequenceClassification, PerceiverByteTokenizer  # noqa: E402


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """A small classifier with n-grams, local mixing and Fourier positions (every part of the byte array), saved as
    train.py saves one, and its export."""
    torch.manual_seed(0)
    config = PerceiverByteConfig(
        num_labels=3, d_model=32, d_latents=32, num_latents=8, num_blocks=2, num_self_attends_per_block=1,
        ngram_buckets=512, local_kernel_size=3, position_encoding_type="fourier",
        id2label={0: "a", 1: "b", 2: "c"}, label2id={"a": 0, "b": 1, "c": 2},
    )  # fmt: skip
    model = PerceiverByteForSequenceClassification(config).eval()
    with torch.no_grad():  # away from the initialisation, so that a wrong graph cannot agree by accident
        for parameter in model.parameters():
            parameter.add_(torch.randn_like(parameter) * 0.05)
    model_dir, onnx_dir = tmp_path_factory.mktemp("model"), tmp_path_factory.mktemp("onnx")
    model.save_pretrained(model_dir)
    PerceiverByteTokenizer(model_max_length=4096).save_pretrained(model_dir)
    difference = export_onnx.export(str(model_dir), str(onnx_dir))
    return model, model_dir, onnx_dir, difference


def random_batch(batch_size: int, length: int, seed: int):
    """Ids of `batch_size` rows, the last ones shorter (padded on the right), the first `length` long."""
    generator = torch.Generator().manual_seed(seed)
    ids = torch.randint(6, 262, (batch_size, length), generator=generator)
    mask = torch.ones_like(ids)
    for row in range(1, batch_size):
        real = max(1, length - row * length // (batch_size + 1))
        ids[row, real:], mask[row, real:] = 0, 0
    return ids, mask


def test_export_writes_what_a_deployment_needs(exported):
    _, _, onnx_dir, difference = exported
    assert difference <= 1e-4
    assert {"model.onnx", "config.json", "tokenizer_config.json"} <= {p.name for p in onnx_dir.iterdir()}
    assert json.loads((onnx_dir / "config.json").read_text())["id2label"] == {"0": "a", "1": "b", "2": "c"}
    import onnx

    graph = onnx.load(str(onnx_dir / "model.onnx")).graph
    assert [i.name for i in graph.input] == ["input_ids", "attention_mask"]
    assert [o.name for o in graph.output] == ["logits"]
    dims = [[d.dim_param or d.dim_value for d in i.type.tensor_type.shape.dim] for i in graph.input]
    assert all(isinstance(d, str) for row in dims for d in row), f"batch and length must be dynamic axes: {dims}"
    # no op that runs once per byte: an exported embedding_bag became a Loop over the B*M bags, 30x slower than torch
    ops = {node.op_type for node in graph.node}
    assert not ops & {"Loop", "Scan", "SequenceEmpty"}, sorted(ops)


@pytest.mark.parametrize("batch_size", [1, 3])
@pytest.mark.parametrize("length", [1, 37, 700])
def test_onnx_runtime_gives_pytorchs_logits(exported, batch_size, length):
    model, _, onnx_dir, _ = exported
    ids, mask = random_batch(batch_size, length, seed=batch_size * 1000 + length)
    with torch.inference_mode():
        expected = model(input_ids=ids, attention_mask=mask).logits
    got = export_onnx.OnnxClassifier(onnx_dir)(input_ids=ids.numpy(), attention_mask=mask.numpy()).logits
    assert got.shape == expected.shape
    torch.testing.assert_close(got, expected, rtol=0, atol=1e-4)


def test_long_inputs_match_pytorchs_streamed_path(exported):
    """The graph attends to the whole input; PyTorch streams a long one in chunks: the same logits."""
    model, model_dir, onnx_dir, _ = exported
    streamed = PerceiverByteForSequenceClassification.from_pretrained(model_dir, cross_attention_chunk_size=1024)
    ids, mask = random_batch(2, 5000, seed=7)
    with torch.inference_mode():
        expected = streamed.eval()(input_ids=ids, attention_mask=mask).logits
    got = export_onnx.OnnxClassifier(onnx_dir)(input_ids=ids.numpy(), attention_mask=mask.numpy()).logits
    torch.testing.assert_close(got, expected, rtol=0, atol=1e-4)


def test_predict_with_onnx_gives_the_pytorch_labels(exported, tmp_path):
    _, model_dir, onnx_dir, _ = exported
    texts = ["Hyvää huomenta", "x" * 3000, "\u00e9t\u00e9"]
    argv = [arg for text in texts for arg in ("--text", text)] + ["--jsonl", "--top_k", "3"]
    with_torch = predict.main(["--model", str(model_dir), *argv], stdout=open(tmp_path / "a", "w"))
    with_onnx = predict.main(["--onnx", str(onnx_dir), *argv], stdout=open(tmp_path / "b", "w"))
    assert [r["source"] for r in with_onnx] == [r["source"] for r in with_torch]
    for a, b in zip(with_torch, with_onnx):
        assert [x["label"] for x in a["labels"]] == [x["label"] for x in b["labels"]]
        np.testing.assert_allclose([x["score"] for x in a["labels"]], [x["score"] for x in b["labels"]], atol=1e-4)


def test_a_folder_without_an_export_is_a_clear_error(tmp_path):
    with pytest.raises(export_onnx.UserError, match="has no model.onnx: make one with"):
        export_onnx.OnnxClassifier(tmp_path)
