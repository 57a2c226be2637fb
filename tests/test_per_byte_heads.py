"""The per-byte heads (Perceiver IO's decoder): PerceiverByteForMaskedLM and PerceiverByteForTokenClassification."""

import json
import textwrap

import pytest
import torch
import torch.nn.functional as F
from model_tester import BLOCK_PACKAGE, tiny_config, tiny_inputs
from test_integration import run_python
from transformers import (
    AutoModelForMaskedLM,
    AutoModelForSequenceClassification,
    AutoModelForTokenClassification,
    pipeline,
)

from perceiver_byte import (
    PerceiverByteForMaskedLM,
    PerceiverByteForSequenceClassification,
    PerceiverByteForTokenClassification,
    PerceiverByteTokenizer,
)


HEADS = [PerceiverByteForMaskedLM, PerceiverByteForTokenClassification]
# the byte array's options that read context or reorder positions: n-grams, local mixing, pooling
BYTE_ARRAYS = {
    "default": {},
    "pooled": {"downsampling_factor": 2},
    "plain": {"ngram_orders": [], "local_kernel_size": 0, "position_encoding_type": "fourier"},
}


def build(cls, **overrides):
    torch.manual_seed(0)
    return cls(tiny_config(**overrides)).eval()


def out_features(model) -> int:
    return model.config.vocab_size if isinstance(model, PerceiverByteForMaskedLM) else model.config.num_labels


@pytest.mark.parametrize("cls", HEADS)
def test_shapes_and_loss_on_scored_positions_only(cls):
    model = build(cls)
    ids, mask = tiny_inputs()
    labels = torch.full_like(ids, -100)
    labels[0, 2], labels[1, 5], labels[2, 0] = 1, 2, 0
    out = model(ids, attention_mask=mask, labels=labels)
    assert out.logits.shape == (*ids.shape, out_features(model))
    scored = labels != -100
    expected = F.cross_entropy(out.logits[scored], labels[scored])
    torch.testing.assert_close(out.loss, expected)
    # a label outside the scored positions changes nothing; nothing scored is a zero loss, not NaN
    assert model(ids, attention_mask=mask, labels=torch.full_like(ids, -100)).loss.item() == 0.0


@pytest.mark.parametrize("cls", HEADS)
def test_bad_labels_are_refused_with_the_expected_shape(cls):
    model = build(cls)
    ids, mask = tiny_inputs()
    with pytest.raises(ValueError, match=r"shape \(batch, length\) = \(3, 13\)"):
        model(ids, attention_mask=mask, labels=torch.zeros(3, dtype=torch.long))
    with pytest.raises(ValueError, match="ids in"):
        model(ids, attention_mask=mask, labels=torch.full_like(ids, out_features(model)))


@pytest.mark.parametrize("byte_array", BYTE_ARRAYS)
@pytest.mark.parametrize("cls", HEADS)
def test_a_text_alone_and_padded_on_either_side_gives_the_same_per_byte_logits(cls, byte_array):
    model = build(cls, **BYTE_ARRAYS[byte_array])
    ids, _ = tiny_inputs(batch=1, length=11)
    alone = model(ids).logits  # (1, 11, K)
    other = torch.randint(6, 262, (1, 16))
    for side in ("right", "left"):
        pad = torch.zeros(1, 5, dtype=torch.long)
        row = torch.cat([ids, pad], 1) if side == "right" else torch.cat([pad, ids], 1)
        real = torch.cat([torch.ones(1, 11), torch.zeros(1, 5)], 1) if side == "right" else torch.cat(
            [torch.zeros(1, 5), torch.ones(1, 11)], 1
        )
        batch = torch.cat([row, other]), torch.cat([real.long(), torch.ones(1, 16, dtype=torch.long)])
        logits = model(batch[0], attention_mask=batch[1]).logits
        kept = logits[0, :11] if side == "right" else logits[0, 5:]
        torch.testing.assert_close(kept, alone[0], rtol=0, atol=1e-5, msg=side)


@pytest.mark.parametrize("byte_array", BYTE_ARRAYS)
@pytest.mark.parametrize("cls", HEADS)
def test_chunked_decoding_equals_the_whole_input(cls, byte_array):
    model = build(cls, **BYTE_ARRAYS[byte_array]).train()  # no dropout by default: train() changes nothing else
    ids, mask = tiny_inputs(length=37)
    labels = torch.randint(0, out_features(model), ids.shape).masked_fill(mask == 0, -100)

    def run(chunk):
        model.config.cross_attention_chunk_size = chunk
        model.zero_grad()
        out = model(ids, attention_mask=mask, labels=labels)
        out.loss.backward()
        return out.logits.detach(), {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}

    whole_logits, whole_grads = run(None)
    chunked_logits, chunked_grads = run(8)  # 37 positions: 5 chunks, the last one short
    torch.testing.assert_close(chunked_logits, whole_logits, rtol=0, atol=1e-5)
    assert chunked_grads.keys() == whole_grads.keys()
    for name in whole_grads:
        torch.testing.assert_close(chunked_grads[name], whole_grads[name], rtol=1e-4, atol=1e-6, msg=name)


def test_a_long_input_decodes_chunk_by_chunk(monkeypatch):
    model = build(PerceiverByteForTokenClassification, cross_attention_chunk_size=64)
    spans = []
    original = model.decoder.decode
    monkeypatch.setattr(model.decoder, "decode", lambda q, *a: spans.append(q.shape[1]) or original(q, *a))
    with torch.no_grad():
        logits = model(torch.randint(6, 262, (1, 300))).logits
    assert logits.shape == (1, 300, 3) and spans == [64, 64, 64, 64, 44]  # never more than a chunk of queries


@pytest.mark.parametrize("cls", HEADS)
def test_gradient_checkpointing_and_compile(cls):
    model = build(cls).train()
    ids, mask = tiny_inputs()
    labels = torch.zeros_like(ids).masked_fill(mask == 0, -100)
    eager = model(ids, attention_mask=mask, labels=labels).loss
    model.gradient_checkpointing_enable()
    torch.testing.assert_close(model(ids, attention_mask=mask, labels=labels).loss, eager)
    model.gradient_checkpointing_disable()
    compiled = torch.compile(model, fullgraph=True)
    loss = compiled(ids, attention_mask=mask, labels=labels).loss
    loss.backward()
    torch.testing.assert_close(loss, eager, rtol=1e-4, atol=1e-5)


def test_sdpa_equals_eager():
    ids, mask = tiny_inputs()
    for cls in HEADS:
        sdpa = build(cls)
        eager = build(cls, attn_implementation="eager")
        eager.load_state_dict(sdpa.state_dict())
        torch.testing.assert_close(sdpa(ids, attention_mask=mask).logits, eager(ids, attention_mask=mask).logits,
                                   rtol=1e-5, atol=1e-5)  # fmt: skip


@pytest.mark.parametrize("cls,auto", [(PerceiverByteForMaskedLM, AutoModelForMaskedLM),
                                      (PerceiverByteForTokenClassification, AutoModelForTokenClassification)])  # fmt: skip
def test_save_load_and_remote_code_in_a_clean_process(cls, auto, tmp_path):
    model = build(cls)
    model.save_pretrained(tmp_path / "m")
    PerceiverByteTokenizer().save_pretrained(tmp_path / "m")
    loaded = auto.from_pretrained(tmp_path / "m").eval()
    assert type(loaded) is cls
    ids, mask = tiny_inputs()
    expected = model(ids, attention_mask=mask).logits
    torch.testing.assert_close(loaded(ids, attention_mask=mask).logits, expected, rtol=0, atol=0)
    (tmp_path / "expected.json").write_text(json.dumps({"ids": ids.tolist(), "mask": mask.tolist(),
                                                        "logits": expected.tolist()}))  # fmt: skip
    code = BLOCK_PACKAGE + textwrap.dedent(
        f"""
        import json, torch
        from transformers import {auto.__name__}
        ref = json.load(open({str(tmp_path / "expected.json")!r}))
        model = {auto.__name__}.from_pretrained({str(tmp_path / "m")!r}, trust_remote_code=True).eval()
        logits = model(torch.tensor(ref["ids"]), attention_mask=torch.tensor(ref["mask"])).logits
        assert torch.equal(logits, torch.tensor(ref["logits"])), "remote code gives other logits"
        print(type(model).__name__, type(model).__module__)
        """
    )
    out = run_python(code, tmp_path, tmp_path)
    assert f"{cls.__name__} transformers_modules" in out


def test_fill_mask_pipeline_fills_each_mask_in_text(tmp_path):
    model = build(PerceiverByteForMaskedLM)
    model.save_pretrained(tmp_path)
    PerceiverByteTokenizer(split_special_tokens=False).save_pretrained(tmp_path)  # "[MASK]" in text is the mask
    fill = pipeline("fill-mask", model=str(tmp_path), trust_remote_code=True)
    tok = PerceiverByteTokenizer(split_special_tokens=False)
    results = fill("The capital of France is [MASK][MASK][MASK][MASK][MASK].", top_k=3)
    assert len(results) == 5 and all(len(r) == 3 for r in results)  # one list of predictions per mask
    for predictions in results:
        assert all(0 <= p["token"] < 262 and p["token_str"] == tok.decode([p["token"]]) for p in predictions)
        assert predictions[0]["score"] >= predictions[1]["score"] >= predictions[2]["score"]
    # the scores are the model's own softmax at the first masked position
    ids = tok("The capital of France is [MASK][MASK][MASK][MASK][MASK].", return_tensors="pt")["input_ids"]
    first = int((ids[0] == tok.mask_token_id).nonzero()[0])
    with torch.no_grad():
        probs = model(ids).logits[0, first].softmax(-1)
    assert results[0][0]["token"] == int(probs.argmax())
    assert results[0][0]["score"] == pytest.approx(float(probs.max()), rel=1e-5)


def test_token_classification_pipeline_gives_a_prediction_per_byte(tmp_path):
    model = build(PerceiverByteForTokenClassification, num_labels=2, id2label={0: "en", 1: "fr"},
                  label2id={"en": 0, "fr": 1})  # fmt: skip
    model.save_pretrained(tmp_path)
    PerceiverByteTokenizer().save_pretrained(tmp_path)
    tag = pipeline("token-classification", model=str(tmp_path), trust_remote_code=True, ignore_labels=[])
    text = "Hello, monde"
    entities = tag(text)
    assert [e["word"] for e in entities] == list(text)  # one per byte, [CLS]/[SEP] left out
    assert {e["entity"] for e in entities} <= {"en", "fr"}
    with torch.no_grad():
        logits = model(**PerceiverByteTokenizer()(text, return_tensors="pt")).logits[0, 1:-1]
    assert [e["entity"] for e in entities] == [model.config.id2label[int(i)] for i in logits.argmax(-1)]


def test_pretrained_encoder_arrives_unchanged_in_a_classifier(tmp_path):
    pretrained = build(PerceiverByteForMaskedLM)
    pretrained.save_pretrained(tmp_path)
    classifier, info = AutoModelForSequenceClassification.from_pretrained(tmp_path, num_labels=4,
                                                                         output_loading_info=True)  # fmt: skip
    assert isinstance(classifier, PerceiverByteForSequenceClassification)
    encoder = pretrained.perceiver.state_dict()
    for name, weight in classifier.perceiver.state_dict().items():
        assert torch.equal(weight, encoder[name]), name
    assert sorted(info["missing_keys"]) == ["classifier.bias", "classifier.weight", "norm.bias", "norm.weight"]
    assert {k.split(".")[0] for k in info["unexpected_keys"]} == {"decoder", "lm_head"}
