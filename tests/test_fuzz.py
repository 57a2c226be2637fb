"""Property-based fuzzing (hypothesis) of the tokenizer, the model and the config, and the model's errors on bad
input at run time.

Two settings profiles, chosen with the environment variable HYPOTHESIS_PROFILE:

    python -m pytest tests/test_fuzz.py                                   # "ci": few examples, the default
    HYPOTHESIS_PROFILE=long python -m pytest tests/test_fuzz.py           # "long": many examples (minutes)
    HYPOTHESIS_PROFILE=long python -m pytest tests/test_fuzz.py --hypothesis-show-statistics

Each fuzz test takes the active profile's `max_examples` scaled by its own weight (a model example costs far more
than a tokenizer example). docs/reliability.md records the counts of both profiles and what they found.
"""

import math
import os
import tempfile
import warnings

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, assume, event, example, given, note, settings
from hypothesis import strategies as st
from model_tester import tiny_config
from transformers import AutoConfig
from transformers.activations import ACT2CLS

from perceiver_byte import PerceiverByteConfig, PerceiverByteForSequenceClassification, PerceiverByteTokenizer
from perceiver_byte.configuration_perceiver_byte import POSITION_ENCODINGS, SHARING_CHOICES

# ----------------------------------------------------------------------------------------------- profiles
_COMMON = dict(deadline=None, print_blob=True, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
settings.register_profile("ci", max_examples=100, **_COMMON)
settings.register_profile("long", max_examples=1000, **_COMMON)
PROFILE = os.environ.get("HYPOTHESIS_PROFILE", "ci")


def fuzz(weight: float = 1.0) -> settings:
    """The active profile with `max_examples` scaled by `weight` (its cost relative to a tokenizer example)."""
    profile = settings.get_profile(PROFILE)
    return settings(profile, max_examples=max(1, round(profile.max_examples * weight)))


TOK = PerceiverByteTokenizer()
CLS, SEP, PAD, OFFSET = 4, 5, 0, 6

# =============================================================================================== tokenizer fuzz
SURROGATES = st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF)
VALID_TEXT = st.text(max_size=40)  # any valid Unicode, NUL included, no surrogates
ANY_TEXT = st.text(alphabet=st.one_of(st.characters(), SURROGATES), max_size=40)  # lone surrogates too
BLOB = st.binary(max_size=60)  # NUL and 0xFF bytes included
LONG_BLOB = st.builds(lambda unit, n: unit * n, st.binary(min_size=1, max_size=8), st.integers(2_000, 40_000))
LONG_TEXT = st.builds(lambda unit, n: unit * n, st.text(min_size=1, max_size=4), st.integers(2_000, 20_000))
SEQUENCE = st.one_of(
    ANY_TEXT,
    VALID_TEXT,
    BLOB,
    BLOB.map(bytearray),
    BLOB.map(memoryview),
    st.one_of(LONG_BLOB, LONG_TEXT),  # one draw in ~6 is 2 KB .. 320 KB
)


def as_bytes(value) -> bytes:
    """What the tokenizer must see: UTF-8 of text (lone surrogates kept, as the default "surrogatepass"), raw bytes."""
    return value.encode("utf-8", "surrogatepass") if isinstance(value, str) else bytes(value)


def is_valid_unicode(value) -> bool:
    return isinstance(value, str) and not any(0xD800 <= ord(c) <= 0xDFFF for c in value)


@fuzz(1.0)
@given(SEQUENCE, st.sampled_from([None, "np", "pt"]))
def test_tokenizer_round_trip_of_any_input(value, return_tensors):
    data = as_bytes(value)
    out = TOK(value, return_tensors=return_tensors)
    ids = np.asarray(out["input_ids"]).reshape(-1)
    assert ids.tolist()[:1] == [CLS] and ids.tolist()[-1:] == [SEP] and len(ids) == len(data) + 2
    assert ((ids >= OFFSET) & (ids < 262))[1:-1].all()
    assert TOK.decode_bytes(out["input_ids"] if return_tensors is None else out["input_ids"][0]) == data
    text = TOK.decode(ids, skip_special_tokens=True)
    assert text == data.decode("utf-8", errors="replace")
    if is_valid_unicode(value):
        assert text == value  # decode(encode(x)) == x for valid UTF-8
    assert TOK.decode(ids) == "[CLS]" + text + "[SEP]"
    assert TOK.decode_bytes(TOK.encode(value, add_special_tokens=False)) == data


# --- every option together, against an independent pure-Python oracle of the documented behaviour
PADDING = st.sampled_from([False, True, "longest", "max_length", "do_not_pad"])
TRUNCATION = st.sampled_from([None, False, True, "longest_first", "only_first", "only_second", "do_not_truncate"])


@st.composite
def tokenizer_calls(draw):
    batched = draw(st.booleans())
    n = draw(st.integers(0, 5)) if batched else 1
    firsts = [draw(SEQUENCE) for _ in range(n)]
    seconds = [draw(SEQUENCE) for _ in range(n)] if draw(st.booleans()) else None
    kwargs = dict(
        padding=draw(PADDING),
        truncation=draw(TRUNCATION),
        max_length=draw(st.one_of(st.none(), st.integers(0, 12), st.integers(0, 90))),
        pad_to_multiple_of=draw(st.one_of(st.none(), st.integers(1, 8))),
        padding_side=draw(st.sampled_from(["right", "left"])),
        truncation_side=draw(st.sampled_from(["right", "left", "head+tail"])),
        add_special_tokens=draw(st.booleans()),
        return_tensors=draw(st.sampled_from([None, "np", "pt"])),
        return_attention_mask=draw(st.sampled_from([None, True, False])),
        return_token_type_ids=draw(st.sampled_from([None, True, False])),
        return_special_tokens_mask=draw(st.booleans()),
        return_length=draw(st.booleans()),
    )
    return batched, firsts, seconds, kwargs


def _cut(seq: list, keep: int, side: str) -> list:
    if keep >= len(seq):
        return seq
    if side == "right":
        return seq[:keep]
    if side == "left":
        return seq[len(seq) - keep :]
    head = min(keep, math.floor(keep * 0.5 + 0.5))  # "head+tail" with the default truncation_head_fraction 0.5
    return seq[:head] + seq[len(seq) - (keep - head) :]


def expected_encoding(firsts, seconds, kw):
    """The documented behaviour, written independently of the tokenizer: (error message or None, rows per key)."""
    padding, truncation, max_length = kw["padding"], kw["truncation"], kw["max_length"]
    if max_length is not None and padding is False and truncation is None:
        truncation = "longest_first"  # transformers' backward-compatible rule
    pad = {False: None, "do_not_pad": None, True: "longest", "longest": "longest", "max_length": "max_length"}[padding]
    trunc = {None: None, False: None, "do_not_truncate": None, True: "longest_first"}.get(truncation, truncation)
    if max_length is None:  # model_max_length is "no limit": neither truncation nor max_length padding applies
        pad = None if pad == "max_length" else pad
        trunc = None
    multiple = kw["pad_to_multiple_of"]
    if trunc and pad and multiple and max_length % multiple:
        return "is not a multiple of pad_to_multiple_of", None
    pair = seconds is not None
    special = kw["add_special_tokens"]
    n_special = (3 if pair else 2) if special else 0
    rows = {"input_ids": [], "token_type_ids": [], "special_tokens_mask": [], "attention_mask": [], "kept": []}
    for i, first in enumerate(firsts):
        a = [b + OFFSET for b in as_bytes(first)]
        b = [x + OFFSET for x in as_bytes(seconds[i])] if pair else []
        keep_a, keep_b = len(a), len(b)
        if trunc:
            remove = max(len(a) + len(b) + n_special - max_length, 0)
            if trunc == "only_first" or (trunc == "longest_first" and not pair):
                keep_a -= min(remove, keep_a)
            elif trunc == "only_second" and pair:
                keep_b -= min(remove, keep_b)
            elif trunc == "longest_first":
                while remove and keep_a + keep_b:  # one unit at a time from the longer; a tie takes from the pair
                    if keep_a > keep_b:
                        keep_a -= 1
                    else:
                        keep_b -= 1
                    remove -= 1
        a, b = _cut(a, keep_a, kw["truncation_side"]), _cut(b, keep_b, kw["truncation_side"])
        if special:
            ids = [CLS, *a, SEP] + ([*b, SEP] if pair else [])
            types = [0] * (len(a) + 2) + [1] * (len(b) + 1 if pair else 0)
            specials = [1] + [0] * len(a) + [1] + ([0] * len(b) + [1] if pair else [])
        else:
            ids, types, specials = a + b, [0] * (len(a) + len(b)), [0] * (len(a) + len(b))
        for key, value in zip(rows, (ids, types, specials, [1] * len(ids), bytes(x - OFFSET for x in a + b))):
            rows[key].append(value)
    lengths = [len(r) for r in rows["input_ids"]]
    target = None
    if pad == "longest":
        target = max(lengths, default=0)
    elif pad == "max_length":
        target = max_length
    if target is not None and multiple and target % multiple:
        target = (target // multiple + 1) * multiple
    if target is not None:
        fill = {"input_ids": PAD, "token_type_ids": 0, "special_tokens_mask": 1, "attention_mask": 0}
        for key, value in fill.items():
            for i, row in enumerate(rows[key]):
                extra = [value] * max(target - len(row), 0)
                rows[key][i] = row + extra if kw["padding_side"] == "right" else extra + row
    rows["length"] = lengths
    rows["target"] = target
    return None, rows


def as_rows(value) -> list[list[int]]:
    if isinstance(value, torch.Tensor):
        assert value.dtype == torch.int64 and value.dim() == 2
        return value.tolist()
    if isinstance(value, np.ndarray) and value.dtype == object:  # ragged batch with return_tensors="np"
        return [np.asarray(v).tolist() for v in value]
    if isinstance(value, np.ndarray):
        assert value.dtype == np.int64 and value.ndim == 2
        return value.tolist()
    return value


@fuzz(1.0)
@given(tokenizer_calls())
@example((True, [], None, dict(padding=True, truncation=None, max_length=None, pad_to_multiple_of=None,
          padding_side="right", truncation_side="right", add_special_tokens=True, return_tensors="pt",
          return_attention_mask=None, return_token_type_ids=None, return_special_tokens_mask=False,
          return_length=False)))  # an empty batch  # fmt: skip
@example((False, ["a\ud800b\x00"], ["\udfff" * 3], dict(padding="max_length", truncation="longest_first",
          max_length=7, pad_to_multiple_of=None, padding_side="left", truncation_side="head+tail",
          add_special_tokens=True, return_tensors="np", return_attention_mask=True, return_token_type_ids=True,
          return_special_tokens_mask=True, return_length=True)))  # lone surrogates in a truncated pair  # fmt: skip
def test_tokenizer_every_option_combination(call):
    batched, firsts, seconds, kw = call
    text = firsts if batched else firsts[0]
    text_pair = None if seconds is None else (seconds if batched else seconds[0])
    error, rows = expected_encoding(firsts, seconds, kw)
    if error is None:
        truncated = any(len(k) < len(as_bytes(f)) + (len(as_bytes(seconds[i])) if seconds else 0)
                        for i, (k, f) in enumerate(zip(rows["kept"], firsts)))  # fmt: skip
        shape = f"{'batch' if batched else 'single'}{' pair' if seconds else ''}"
        padded = "padded" if rows["target"] is not None else "no padding"
        event(f"{shape}, {'truncated' if truncated else 'not truncated'}, {padded}")
    else:
        event("expected ValueError")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if error is not None:
            with pytest.raises(ValueError, match=error):
                TOK(text, text_pair, **kw)
            return
        lengths = {len(r) for r in rows["input_ids"]}
        if kw["return_tensors"] == "pt" and batched and len(lengths) > 1:
            with pytest.raises(ValueError, match="Unable to create tensor from sequences of different lengths"):
                TOK(text, text_pair, **kw)
            return
        out = TOK(text, text_pair, **kw)
    wanted = {"input_ids"}
    wanted |= {"attention_mask"} if kw["return_attention_mask"] in (None, True) else set()
    wanted |= {"token_type_ids"} if kw["return_token_type_ids"] else set()
    wanted |= {"special_tokens_mask"} if kw["return_special_tokens_mask"] else set()
    wanted |= {"length"} if kw["return_length"] else set()
    assert set(out.keys()) == wanted
    for key in wanted - {"length"}:
        value = out[key]
        if kw["return_tensors"] is None and not batched:
            value = [value]  # a single input gives one flat list
        got = as_rows(value)
        if len(firsts) == 0 and kw["return_tensors"] is not None:
            assert tuple(value.shape) == (0, rows["target"] or 0), key
        assert got == rows[key], key
    if kw["return_length"]:
        length = out["length"]
        expected = rows["length"] if batched else len(rows["input_ids"][0])
        assert np.asarray(length).tolist() == (expected if batched or kw["return_tensors"] is None else [expected])
    for ids, kept in zip(as_rows(out["input_ids"] if batched or kw["return_tensors"] else [out["input_ids"]]), rows["kept"]):
        assert all(0 <= i < 262 for i in ids)
        assert TOK.decode_bytes(ids) == kept
        assert TOK.decode(ids, skip_special_tokens=True) == kept.decode("utf-8", errors="replace")


@fuzz(0.5)
@given(
    st.lists(st.lists(st.integers(0, 261), max_size=30), min_size=1, max_size=6),
    st.sampled_from([True, "longest", "max_length"]),
    st.one_of(st.none(), st.integers(0, 40)),
    st.one_of(st.none(), st.integers(1, 8)),
    st.sampled_from(["right", "left"]),
    st.sampled_from([None, "np", "pt"]),
    st.sampled_from(["lists", "arrays", "tensors"]),
)
def test_tokenizer_pad_like_data_collator(rows, padding, max_length, multiple, side, return_tensors, row_type):
    """`pad()` (what DataCollatorWithPadding calls) over any id rows: each row is kept and padded on `side`."""
    # padding="max_length" without max_length pads nothing (no model_max_length): see test_ragged_tensor_rows_*
    assume(not (padding == "max_length" and max_length is None))
    convert = {"lists": list, "arrays": lambda r: np.asarray(r, dtype=np.int64), "tensors": torch.tensor}[row_type]
    features = [{"input_ids": convert(r), "attention_mask": convert([1] * len(r))} for r in rows]
    target = max_length if padding == "max_length" else max(map(len, rows))  # True/"longest" ignore max_length
    if multiple and target % multiple:
        target = (target // multiple + 1) * multiple
    ragged = len({max(len(r), target) for r in rows}) > 1  # rows longer than max_length are left as they are
    tensor_type = return_tensors or {"lists": None, "arrays": "np", "tensors": "pt"}[row_type]
    kwargs = dict(padding=padding, max_length=max_length, pad_to_multiple_of=multiple, padding_side=side,
                  return_tensors=return_tensors)  # fmt: skip
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if ragged and tensor_type == "pt":
            with pytest.raises(ValueError, match="Unable to create tensor"):
                TOK.pad(features, **kwargs)
            return
        out = TOK.pad(features, **kwargs)
    for i, row in enumerate(rows):
        got_ids = np.asarray(out["input_ids"][i]).tolist()
        got_mask = np.asarray(out["attention_mask"][i]).tolist()
        extra = max(target - len(row), 0)
        assert got_ids == (row + [PAD] * extra if side == "right" else [PAD] * extra + row)
        assert got_mask == ([1] * len(row) + [0] * extra if side == "right" else [0] * extra + [1] * len(row))


@pytest.mark.regression("bug T1 (transformers' generic pad): tensor rows that stay ragged (no padding, "
                   "or rows longer than max_length) with an empty first row give a (2, 0) tensor: the other ids are "
                   "silently lost")  # fmt: skip
@pytest.mark.parametrize("kwargs", [dict(padding=False), dict(padding="max_length", max_length=0)])
def test_ragged_tensor_rows_are_never_dropped(kwargs):
    features = [{"input_ids": torch.tensor([], dtype=torch.long)}, {"input_ids": torch.tensor([7])}]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            out = TOK.pad(features, **kwargs)
        except ValueError as err:  # the honest answer: these rows cannot form one tensor
            assert "Unable to create tensor" in str(err)
            return
    assert [np.asarray(r).tolist() for r in out["input_ids"]] == [[], [7]]


# =============================================================================================== model fuzz
ACTIVATIONS = sorted(ACT2CLS)


@st.composite
def model_configs(draw):
    """A random valid tiny config: every field that changes the computation varies."""
    position = draw(st.sampled_from(POSITION_ENCODINGS))
    d_model = draw(st.integers(1, 8)) * 2 if position == "fourier" else draw(st.integers(1, 16))
    return dict(
        d_model=d_model,
        position_encoding_type=position,
        fourier_max_resolution=draw(st.sampled_from([1, 3, 16, 4096])),
        max_position_embeddings=draw(st.integers(1, 24)),
        num_latents=draw(st.integers(1, 6)),
        d_latents=draw(st.sampled_from([4, 8, 12, 16])),  # channel counts are multiples of 4: any of 1, 2, 4 heads
        num_blocks=draw(st.integers(1, 3)),
        num_self_attends_per_block=draw(st.integers(0, 2)),
        num_cross_attention_heads=draw(st.sampled_from([1, 2, 4])),
        num_self_attention_heads=draw(st.sampled_from([1, 2, 4])),
        qk_channels=draw(st.sampled_from([None, 4, 8, 16])),
        v_channels=draw(st.sampled_from([None, 4, 8, 12])),
        cross_attention_widening_factor=draw(st.integers(1, 3)),
        self_attention_widening_factor=draw(st.integers(1, 3)),
        hidden_act=draw(st.sampled_from(ACTIVATIONS)),
        cross_attention_weight_sharing=draw(st.sampled_from(SHARING_CHOICES)),
        self_attention_weight_sharing=draw(st.sampled_from(SHARING_CHOICES)),
        cross_attention_chunk_size=draw(st.one_of(st.none(), st.integers(1, 9))),
        cross_attention_absorb_projections=draw(st.sampled_from([None, True, False])),
        cross_attention_normalize_values=draw(st.booleans()),
        layer_norm_eps=draw(st.sampled_from([1e-6, 1e-5, 1e-3])),
        initializer_range=draw(st.sampled_from([0.01, 0.02, 0.1, 0.3])),
        num_labels=draw(st.integers(1, 4)),
    )


@st.composite
def model_inputs(draw):
    """Ids (B, M) and a 0/1 mask: full rows, right/left padding, holes, all-masked rows; any ids under the mask."""
    batch, length = draw(st.integers(1, 4)), draw(st.integers(1, 20))
    seed = draw(st.integers(0, 2**31 - 1))
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(0, 262, (batch, length), generator=g)  # special ids in real positions too
    mask = torch.ones(batch, length, dtype=torch.long)
    for row in range(batch):
        kind = draw(st.sampled_from(["full", "right", "left", "holes", "empty"]))
        real = draw(st.integers(1, length))
        if kind == "right":
            mask[row, real:] = 0
        elif kind == "left":
            mask[row, : length - real] = 0
        elif kind == "holes":
            mask[row] = torch.tensor(draw(st.lists(st.booleans(), min_size=length, max_size=length)), dtype=torch.long)
        elif kind == "empty":
            mask[row] = 0
    dtype = draw(st.sampled_from([torch.long, torch.int32, torch.bool, torch.float32]))
    return ids, mask.to(dtype)


def max_diff(a, b) -> float:
    return (a - b).abs().max().item()


@fuzz(0.25)
@given(model_configs(), model_inputs())
@example(  # length 1, one latent, everything shared, chunk larger than the input
    dict(tiny_config(num_latents=1, num_blocks=2, cross_attention_weight_sharing="all",
                     cross_attention_chunk_size=4).to_diff_dict()),
    (torch.tensor([[7]]), torch.tensor([[1]])),
)  # fmt: skip
def test_model_fuzz(fields, inputs):
    """Finite outputs, right shapes, padding invariance (a row alone vs in a padded batch), eager = SDPA, chunked =
    whole, inputs_embeds = input_ids: every tolerance is 1e-5 (absolute)."""
    fields = {k: v for k, v in fields.items() if k in PerceiverByteConfig.__annotations__ or k == "num_labels"}
    config = PerceiverByteConfig(**fields)
    ids, mask = inputs
    batch, length = ids.shape
    torch.manual_seed(0)
    model = PerceiverByteForSequenceClassification(config).eval()
    note(f"config: {fields}\nids: {ids.tolist()}\nmask: {mask.long().tolist()}")
    if config.position_encoding_type == "learned" and length > config.max_position_embeddings:
        with pytest.raises(ValueError, match="max_position_embeddings"):
            model(ids, attention_mask=mask)
        return
    with torch.no_grad():
        out = model(ids, attention_mask=mask, output_hidden_states=True)
        assert out.logits.shape == (batch, config.num_labels)
        assert torch.isfinite(out.logits).all()
        assert len(out.hidden_states) == config.num_hidden_layers + 1
        assert all(h.shape == (batch, config.num_latents, config.d_latents) for h in out.hidden_states)
        assert all(torch.isfinite(h).all() for h in out.hidden_states)

        # padding invariance: each row with real bytes, alone and unpadded, gives the logits it has in the batch. A row
        # with holes keeps them as padding (n-grams read [PAD] there): alone with its mask, other ids under the mask.
        real = mask.bool()
        for row in range(batch):
            if real[row].any():
                where = real[row].nonzero()[:, 0]
                if int(where[-1] - where[0]) + 1 == len(where):  # contiguous: full, right or left padding
                    alone = model(ids[row][real[row]][None]).logits[0]
                else:
                    other = torch.where(real[row], ids[row], (ids[row] + 7) % 262)[None]
                    alone = model(other, attention_mask=mask[row][None]).logits[0]
                assert max_diff(alone, out.logits[row]) <= 1e-5, f"row {row}"

        # the same weights under eager attention, without chunking, and from inputs_embeds
        model.set_attn_implementation("eager")
        assert max_diff(model(ids, attention_mask=mask).logits, out.logits) <= 1e-5, "eager != sdpa"
        model.set_attn_implementation("sdpa")
        if config.cross_attention_chunk_size is not None:
            whole_config = PerceiverByteConfig(**{**fields, "cross_attention_chunk_size": None})
            whole = PerceiverByteForSequenceClassification(whole_config)
            whole.load_state_dict(model.state_dict())
            assert max_diff(whole.eval()(ids, attention_mask=mask).logits, out.logits) <= 1e-5, "chunked != whole"
        # the other cross-attention form (absorbed <-> projected), whole
        absorbed = config.cross_attention_absorb_projections
        other = not model.perceiver.absorbs_projections() if absorbed is None else not absorbed
        twin = PerceiverByteForSequenceClassification(
            PerceiverByteConfig(**{**fields, "cross_attention_absorb_projections": other, "cross_attention_chunk_size": None})
        )
        twin.load_state_dict(model.state_dict())
        assert max_diff(twin.eval()(ids, attention_mask=mask).logits, out.logits) <= 1e-5, "absorbed != projected"
        embeds = model.perceiver.embeddings.embed_ids(ids, mask)
        assert max_diff(model(inputs_embeds=embeds, attention_mask=mask).logits, out.logits) <= 1e-5

        # attention weights on request: one (B, h, N, M) map per repeat, zero on padding, each row summing to one
        seen = model(ids, attention_mask=mask, output_attentions=True)
        assert max_diff(seen.logits, out.logits) <= 1e-5
        assert len(seen.attentions) == config.num_blocks * config.num_self_attends_per_block
        n, heads = config.num_latents, config.num_self_attention_heads
        assert all(a.shape == (batch, heads, n, n) for a in seen.attentions)
        assert len(seen.cross_attentions) == config.num_blocks
        for weights in seen.cross_attentions:
            assert weights.shape == (batch, config.num_cross_attention_heads, config.num_latents, length)
            torch.testing.assert_close(weights.sum(-1), torch.ones_like(weights.sum(-1)))
            padding = (~real & real.any(-1, keepdim=True))[:, None, None, :].expand_as(weights)
            assert (weights[padding] == 0).all()


@pytest.mark.regression("bug M1: with cross_attention_chunk_size set and a longer input, "
                   "output_attentions=True returns an empty cross_attentions tuple (the streaming path forms no "
                   "weights)")  # fmt: skip
def test_chunked_model_returns_cross_attentions():
    torch.manual_seed(0)
    model = PerceiverByteForSequenceClassification(tiny_config(cross_attention_chunk_size=4)).eval()
    ids, mask = torch.randint(6, 262, (2, 10)), torch.ones(2, 10, dtype=torch.long)
    out = model(ids, attention_mask=mask, output_attentions=True)
    assert len(out.cross_attentions) == model.config.num_blocks
    assert out.cross_attentions[0].shape == (2, 1, 8, 10)


# =============================================================================================== config fuzz
POSITIVE_INT = ("d_model", "fourier_max_resolution", "max_position_embeddings", "num_latents", "d_latents", "num_blocks",
                "num_cross_attention_heads", "num_self_attention_heads", "cross_attention_widening_factor",
                "self_attention_widening_factor", "ngram_buckets", "downsampling_factor")  # fmt: skip
OPTIONAL_POSITIVE_INT = ("qk_channels", "v_channels", "cross_attention_chunk_size", "ngram_embedding_size")
TOKEN_IDS = ("pad_token_id", "bos_token_id", "eos_token_id")
PROBABILITIES = ("attention_dropout", "hidden_dropout")
POSITIVE_FLOATS = ("layer_norm_eps", "initializer_range")
CHOICES = {
    "position_encoding_type": POSITION_ENCODINGS,
    "cross_attention_weight_sharing": SHARING_CHOICES,
    "self_attention_weight_sharing": SHARING_CHOICES,
    "hidden_act": tuple(ACTIVATIONS),
}
INT_FIELDS = (*POSITIVE_INT, *OPTIONAL_POSITIVE_INT, *TOKEN_IDS, "num_self_attends_per_block", "vocab_size",
              "local_kernel_size")  # fmt: skip
FLOAT_FIELDS = (*PROBABILITIES, *POSITIVE_FLOATS)
OPTIONAL_BOOL_FIELDS = ("cross_attention_absorb_projections",)
BOOL_FIELDS = ("cross_attention_normalize_values",)
RANGE_FIELDS = (*INT_FIELDS, *FLOAT_FIELDS, *CHOICES)  # fields with values of the right type that are out of range
LIST_FIELDS = ("ngram_orders",)
ALL_FIELDS = (*RANGE_FIELDS, *OPTIONAL_BOOL_FIELDS, *BOOL_FIELDS, *LIST_FIELDS)


def test_the_config_fuzz_covers_every_field():
    own = {name for name in PerceiverByteConfig.__annotations__ if not name.startswith("_") and name != "model_type"}
    assert own == set(ALL_FIELDS)


NOT_A_NUMBER = st.one_of(st.text(max_size=5), st.binary(max_size=3), st.lists(st.integers(), max_size=2),
                         st.dictionaries(st.text(max_size=2), st.integers(), max_size=1), st.complex_numbers(),
                         st.booleans())  # fmt: skip


def wrong_types(field):
    if field in INT_FIELDS:  # an int field given a float (even 4.0), a bool, a string...; None only where not optional
        bad = st.one_of(NOT_A_NUMBER, st.floats(allow_nan=True, allow_infinity=True))
        return bad if field in OPTIONAL_POSITIVE_INT else st.one_of(bad, st.none())
    if field in FLOAT_FIELDS:
        return st.one_of(NOT_A_NUMBER, st.none())
    if field in LIST_FIELDS:
        return st.one_of(st.integers(), st.none(), st.text(max_size=3), st.lists(st.integers(9, 20), min_size=1, max_size=2),
                         st.lists(st.integers(max_value=0), min_size=1, max_size=2), st.just([2, 2]))  # fmt: skip
    if field in OPTIONAL_BOOL_FIELDS or field in BOOL_FIELDS:  # 0 and 1 too: a bool is asked for, not what equals one
        bad = st.one_of(st.integers(), st.floats(), st.text(max_size=5), st.binary(max_size=3), st.lists(st.booleans(), max_size=1))
        return bad if field in OPTIONAL_BOOL_FIELDS else st.one_of(bad, st.none())
    return st.one_of(st.integers(), st.floats(), st.none(), st.booleans(), st.binary(max_size=3),
                     st.lists(st.text(), max_size=1))  # fmt: skip


def out_of_range(field):
    if field in POSITIVE_INT or field in OPTIONAL_POSITIVE_INT:
        values = st.integers(max_value=0)
        if field in ("num_cross_attention_heads", "num_self_attention_heads"):  # must divide 32 (tiny d_latents)
            values = st.one_of(values, st.sampled_from([3, 5, 6, 7, 12, 24]), st.integers(33, 10_000))
        return values
    if field == "num_self_attends_per_block":
        return st.integers(max_value=-1)
    if field == "local_kernel_size":  # 0 (off) or odd
        return st.one_of(st.integers(max_value=-1), st.integers(1, 50).map(lambda v: 2 * v))
    if field == "vocab_size":
        return st.integers(max_value=261)
    if field in TOKEN_IDS:
        return st.one_of(st.integers(max_value=-1), st.integers(min_value=262))
    if field in PROBABILITIES:
        return st.one_of(st.floats(max_value=0.0, exclude_max=True), st.floats(min_value=1.0), st.just(math.nan))
    if field in POSITIVE_FLOATS:
        return st.one_of(st.floats(max_value=0.0), st.just(math.nan), st.just(-math.inf), st.just(math.inf))
    return st.text(max_size=12).filter(lambda v: v not in CHOICES[field])


def _raises_naming(field, value):
    with pytest.raises((TypeError, ValueError)) as caught:
        tiny_config(**{field: value})
    assert field in str(caught.value), str(caught.value)


@fuzz(1.0)
@given(st.sampled_from(ALL_FIELDS).flatmap(lambda f: st.tuples(st.just(f), wrong_types(f))))
def test_config_wrong_type_raises_naming_the_field(field_value):
    _raises_naming(*field_value)


@fuzz(1.0)
@given(st.sampled_from(RANGE_FIELDS).flatmap(lambda f: st.tuples(st.just(f), out_of_range(f))))
def test_config_out_of_range_raises_naming_the_field(field_value):
    _raises_naming(*field_value)


@st.composite
def valid_configs(draw):
    """Any valid config, sizes far beyond what a test could build (no model is built from these)."""
    cross_heads, self_heads = draw(st.integers(1, 8)), draw(st.integers(1, 8))
    unit = math.lcm(cross_heads, self_heads)
    position = draw(st.sampled_from(POSITION_ENCODINGS))
    vocab = draw(st.integers(262, 100_000))
    prob = st.floats(0.0, 1.0, exclude_max=True)
    positive = st.one_of(st.floats(min_value=1e-300, max_value=1e300), st.integers(1, 10))
    multiple = st.integers(1, 512).map(lambda k: k * unit)
    config = dict(
        vocab_size=vocab,
        d_model=draw(st.integers(1, 4096)) * (2 if position == "fourier" else 1),
        position_encoding_type=position,
        fourier_max_resolution=draw(st.integers(1, 10**9)),
        max_position_embeddings=draw(st.integers(1, 10**9)),
        num_latents=draw(st.integers(1, 10**6)),
        d_latents=draw(multiple),
        num_blocks=draw(st.integers(1, 64)),
        num_self_attends_per_block=draw(st.integers(0, 64)),
        num_cross_attention_heads=cross_heads,
        num_self_attention_heads=self_heads,
        qk_channels=draw(st.one_of(st.none(), multiple)),
        v_channels=draw(st.one_of(st.none(), multiple)),
        cross_attention_widening_factor=draw(st.integers(1, 16)),
        self_attention_widening_factor=draw(st.integers(1, 16)),
        hidden_act=draw(st.sampled_from(ACTIVATIONS)),
        cross_attention_weight_sharing=draw(st.sampled_from(SHARING_CHOICES)),
        self_attention_weight_sharing=draw(st.sampled_from(SHARING_CHOICES)),
        cross_attention_chunk_size=draw(st.one_of(st.none(), st.integers(1, 10**7))),
        cross_attention_absorb_projections=draw(st.sampled_from([None, True, False])),
        cross_attention_normalize_values=draw(st.booleans()),
        attention_dropout=draw(prob),
        hidden_dropout=draw(prob),
        layer_norm_eps=draw(positive),
        initializer_range=draw(positive),
        pad_token_id=draw(st.integers(0, vocab - 1)),
        bos_token_id=draw(st.integers(0, vocab - 1)),
        eos_token_id=draw(st.integers(0, vocab - 1)),
        num_labels=draw(st.integers(1, 20)),
        problem_type=draw(st.sampled_from([None, "regression", "single_label_classification", "multi_label_classification"])),
    )
    if config["problem_type"] == "single_label_classification":
        config["num_labels"] = max(config["num_labels"], 2)  # transformers: single-label needs 2 labels or more
    return config


def as_dict(config) -> dict:
    return {k: v for k, v in config.to_dict().items() if k != "_name_or_path"}  # where it was loaded from


@fuzz(0.3)
@given(valid_configs())
def test_config_save_load_round_trip(fields):
    config = PerceiverByteConfig(**fields)
    assert all(getattr(config, k) == v for k, v in fields.items() if k != "num_labels")
    with tempfile.TemporaryDirectory() as tmp:
        config.save_pretrained(tmp)
        for loaded in (PerceiverByteConfig.from_pretrained(tmp), AutoConfig.from_pretrained(tmp)):
            assert type(loaded) is PerceiverByteConfig
            assert as_dict(loaded) == as_dict(config)
    assert as_dict(PerceiverByteConfig.from_dict(config.to_dict())) == as_dict(config)
    assert as_dict(PerceiverByteConfig(**config.to_diff_dict())) == as_dict(config)


# --- config errors the fuzz above could not reach when they were found: each was a bug (docs/reliability.md), now fixed
@pytest.mark.regression("bug C1: keyword overrides given to from_pretrained/from_dict are set after "
                   "validate() ran, so they are never checked")  # fmt: skip
@pytest.mark.parametrize("field, value", [("num_latents", 0), ("hidden_act", "no_such_act"), ("d_model", 0),
                                          ("attention_dropout", 2.0)])  # fmt: skip
def test_config_overrides_at_load_time_are_validated(field, value, tmp_path):
    tiny_config().save_pretrained(tmp_path)
    for load in (PerceiverByteConfig.from_pretrained, AutoConfig.from_pretrained):
        with pytest.raises((TypeError, ValueError), match=field):
            load(tmp_path, **{field: value})
    with pytest.raises((TypeError, ValueError), match=field):
        PerceiverByteConfig.from_dict(tiny_config().to_dict(), **{field: value})


@pytest.mark.regression("bug C2: +inf layer_norm_eps / initializer_range are accepted (NaN or zero "
                   "logits)")  # fmt: skip
@pytest.mark.parametrize("field", POSITIVE_FLOATS)
def test_config_rejects_infinite_floats(field):
    _raises_naming(field, math.inf)


@pytest.mark.regression("bug C3: num_labels and problem_type (inherited fields that the loss reads) "
                   "are not validated: 0/-1 labels build an empty head, 2.5 fails inside range(), an unknown problem "
                   "type silently falls back to regression")  # fmt: skip
@pytest.mark.parametrize("field, value", [("num_labels", 0), ("num_labels", -1), ("num_labels", 2.5),
                                          ("problem_type", "multiclass"), ("problem_type", 3)])  # fmt: skip
def test_config_validates_the_fields_the_head_reads(field, value):
    _raises_naming(field, value)


@pytest.mark.regression("bug C4 (message): with qk_channels=None the head-divisibility error names "
                   "qk_channels/v_channels but not d_latents, the field the user actually set")  # fmt: skip
def test_head_divisibility_error_names_d_latents():
    _raises_naming("d_latents", 6)  # 4 self-attention heads in tiny_config


# =============================================================================================== bad input at run time
# tests/test_modeling.py::test_bad_inputs_raise_clear_errors already covers: ids out of range / negative / float / 1-D,
# a mask of the wrong shape or with 0.5, both or neither of input_ids/inputs_embeds, an empty batch, M = 0, an
# inputs_embeds of the wrong width and two wrong label shapes. Below: the rest, one case each, then a fuzz over all.
B, M = 2, 5
IDS = torch.tensor([[7, 8, 9, 10, 11], [12, 13, 14, 0, 0]])
MASK = torch.tensor([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0]])


def _model(**overrides):
    torch.manual_seed(0)
    return PerceiverByteForSequenceClassification(tiny_config(**overrides)).eval()


MODEL = _model()
REFERENCE = MODEL(IDS, attention_mask=MASK).logits.detach()


def _bug(reason):
    return pytest.mark.regression(reason)


R1 = _bug("bug R1: an integer/bool/complex attention_mask is not checked for 0/1 values: 2 or -1 silently changes "
          "the result")  # fmt: skip
R2 = _bug("bug R2: a list or NumPy array (e.g. tokenizer return_tensors='np') fails with AttributeError: 'list' "
          "object has no attribute 'dim'")  # fmt: skip
R3 = _bug("bug R3: input_ids of dtype uint8/int16/bool fail inside nn.Embedding with a RuntimeError")
R4 = _bug("bug R4: inputs_embeds that are not float32 (int, bool, float64, float16) fail inside LayerNorm/Linear "
          "with 'mixed dtype' RuntimeErrors")  # fmt: skip
R5 = _bug("bug R5: class ids outside [0, num_labels) give torch's IndexError 'Target 3 is out of bounds'")
R6 = _bug("bug R6: label and empty-input errors do not name the argument (`labels`, `input_ids`)")
R7 = _bug("bug R7: regression labels of any shape with B*num_labels elements are accepted (e.g. (6,) for B=2, 3 "
          "labels), though the message promises (B,) or (B, num_labels)")  # fmt: skip


@pytest.mark.parametrize(
    "kwargs, argument",
    [
        pytest.param(dict(input_ids=IDS, attention_mask=MASK * 2), "attention_mask", marks=R1, id="mask-int-2"),
        pytest.param(dict(input_ids=IDS, attention_mask=-MASK), "attention_mask", marks=R1, id="mask-int-negative"),
        pytest.param(dict(input_ids=IDS, attention_mask=MASK.to(torch.cfloat)), "attention_mask", marks=R1, id="mask-complex"),
        pytest.param(dict(input_ids=IDS, attention_mask=MASK[:, None, None, :]), "attention_mask", id="mask-4d-extended"),
        pytest.param(dict(input_ids=IDS, attention_mask=MASK.tolist()), "attention_mask", marks=R2, id="mask-list"),
        pytest.param(dict(input_ids=IDS, attention_mask=MASK.numpy()), "attention_mask", marks=R2, id="mask-numpy"),
        pytest.param(dict(input_ids=IDS.tolist()), "input_ids", marks=R2, id="ids-list"),
        pytest.param(dict(input_ids=IDS.numpy()), "input_ids", marks=R2, id="ids-numpy"),
        pytest.param(dict(input_ids=IDS[None]), "input_ids", id="ids-3d"),
        pytest.param(dict(input_ids=torch.tensor(7)), "input_ids", id="ids-0d"),
        pytest.param(dict(input_ids=IDS.to(torch.complex64)), "input_ids", id="ids-complex"),
        pytest.param(dict(input_ids=IDS.to(torch.int16)), "input_ids", marks=R3, id="ids-int16"),
        pytest.param(dict(input_ids=IDS.to(torch.uint8)), "input_ids", marks=R3, id="ids-uint8"),
        pytest.param(dict(input_ids=IDS.bool()), "input_ids", marks=R3, id="ids-bool"),
        pytest.param(dict(inputs_embeds=torch.ones(B, M, 16, dtype=torch.long)), "inputs_embeds", marks=R4, id="embeds-long"),
        pytest.param(dict(inputs_embeds=torch.ones(B, M, 16, dtype=torch.bool)), "inputs_embeds", marks=R4, id="embeds-bool"),
        pytest.param(dict(inputs_embeds=torch.ones(B, M, 16).double()), "inputs_embeds", marks=R4, id="embeds-float64"),
        pytest.param(dict(inputs_embeds=torch.ones(B, M, 16).tolist()), "inputs_embeds", marks=R2, id="embeds-list"),
        pytest.param(dict(inputs_embeds=torch.ones(B, M)), "inputs_embeds", id="embeds-2d"),
        pytest.param(dict(inputs_embeds=torch.ones(0, M, 16)), "inputs_embeds", marks=R6, id="embeds-empty-batch"),
        pytest.param(dict(input_ids=IDS[:, :0]), "input_ids", marks=R6, id="ids-M-0"),
        pytest.param(dict(input_ids=IDS, labels=torch.tensor([0, 3])), "labels", marks=R5, id="labels-too-big"),
        pytest.param(dict(input_ids=IDS, labels=torch.tensor([0, -1])), "labels", marks=R5, id="labels-negative"),
        pytest.param(dict(input_ids=IDS, labels=[0, 1]), "labels", marks=R2, id="labels-list"),
        pytest.param(dict(input_ids=IDS, labels=np.array([0, 1])), "labels", marks=R2, id="labels-numpy"),
        pytest.param(dict(input_ids=IDS, labels=torch.tensor([[0], [1]])), "labels", marks=R6, id="labels-B-1"),
        pytest.param(dict(input_ids=IDS, labels=torch.tensor([0, 1, 2])), "labels", marks=R6, id="labels-wrong-batch"),
        pytest.param(dict(input_ids=IDS, labels=torch.zeros(B, 3, dtype=torch.cfloat)), "labels", marks=R6, id="labels-complex"),
        pytest.param(dict(input_ids=IDS, labels=torch.ones(B)), "labels", marks=R6, id="labels-float-B"),
    ],
)  # fmt: skip
def test_bad_input_raises_a_clear_error_naming_the_argument(kwargs, argument):
    with pytest.raises((TypeError, ValueError)) as caught:
        MODEL(**kwargs)
    assert argument in str(caught.value)


@pytest.mark.parametrize(
    "problem_type, num_labels, labels",
    [
        pytest.param("regression", 3, torch.arange(6.0), marks=R7, id="regression-flat"),
        pytest.param("regression", 1, torch.ones(1, B), marks=R7, id="regression-1-label-row-vector"),
        pytest.param("multi_label_classification", 3, torch.ones(B), marks=R6, id="multi-label-1d"),
        pytest.param("single_label_classification", 3, torch.ones(B, 3), marks=R6, id="single-label-float"),
    ],
)  # fmt: skip
def test_labels_of_the_wrong_form_for_the_problem_type(problem_type, num_labels, labels):
    model = _model(problem_type=problem_type, num_labels=num_labels)
    with pytest.raises(ValueError, match="`labels`"):
        model(IDS, attention_mask=MASK, labels=labels)


def test_valid_inputs_of_other_dtypes_give_the_same_logits():
    """What must keep working while the checks above are added: int32 ids, bool/float/int32 masks."""
    for ids in (IDS, IDS.to(torch.int32)):
        for mask in (MASK, MASK.bool(), MASK.float(), MASK.to(torch.int32)):
            assert max_diff(MODEL(ids, attention_mask=mask).logits, REFERENCE) <= 1e-6


# --- the fuzz: any mix of containers, dtypes, shapes and values for the four arguments
ARGUMENTS = ("input_ids", "attention_mask", "inputs_embeds", "labels")
ALL_DTYPES = (torch.bool, torch.uint8, torch.int8, torch.int16, torch.int32, torch.int64, torch.float16,
              torch.bfloat16, torch.float32, torch.float64, torch.complex64)  # fmt: skip
INTEGER_DTYPES = (torch.uint8, torch.int8, torch.int16, torch.int32, torch.int64)


def _grade(valid: bool, canonical_dtype: bool) -> str:
    return "invalid" if not valid else ("canonical" if canonical_dtype else "convertible")


@st.composite
def runtime_calls(draw):
    """A call with each argument canonical, convertible (right values, other container/dtype) or invalid."""
    g = torch.Generator().manual_seed(draw(st.integers(0, 2**31 - 1)))
    batch, length = draw(st.integers(1, 3)), draw(st.integers(1, 6))
    call, status = {}, {}

    def container(name, tensor, dtype):
        kind = draw(st.sampled_from(["tensor"] * 4 + ["numpy", "list"])) if dtype != torch.bfloat16 else "tensor"
        if kind != "tensor":
            status[name] = "invalid" if status[name] == "invalid" else "convertible"
            return tensor.numpy() if kind == "numpy" else tensor.tolist()
        return tensor

    def shape(default, *others):
        return draw(st.sampled_from([default] * 4 + list(others)))

    source = draw(st.sampled_from(["input_ids"] * 5 + ["inputs_embeds"] * 3 + ["both", "neither"]))
    if source in ("input_ids", "both"):
        dims = shape((batch, length), (length,), (batch, length, 1), (), (0, length), (batch, 0))
        values = torch.randint(6, 262, dims, generator=g)
        if values.numel() and draw(st.booleans()):
            values.view(-1)[0] = draw(st.sampled_from([-1, 262, 10**6]))
        dtype = draw(st.sampled_from([torch.int64] * 6 + list(ALL_DTYPES)))
        ids = values.to(dtype)
        ok_values = dtype in INTEGER_DTYPES and bool(((ids.long() >= 0) & (ids.long() < 262)).all())
        valid = dims == (batch, length) and length > 0 and ok_values
        status["input_ids"] = _grade(valid, dtype in (torch.int64, torch.int32))
        call["input_ids"] = container("input_ids", ids, dtype)
    if source in ("inputs_embeds", "both"):
        dims = shape((batch, length, 16), (batch, length, 7), (batch, length), (0, length, 16))
        dtype = draw(st.sampled_from([torch.float32] * 6 + list(ALL_DTYPES)))
        embeds = torch.randn(dims, generator=g).to(dtype)
        valid = dims == (batch, length, 16) and dtype.is_floating_point
        status["inputs_embeds"] = _grade(valid, dtype == torch.float32)
        call["inputs_embeds"] = container("inputs_embeds", embeds, dtype)
    if source in ("both", "neither"):
        status["input_ids" if source == "neither" else "inputs_embeds"] = "invalid"
    if draw(st.booleans()):
        dims = shape((batch, length), (batch, 1, 1, length), (batch, length + 1), (length,))
        values = torch.randint(0, 2, dims, generator=g)
        if values.numel() and draw(st.booleans()):
            values = values.to(torch.float64)
            values.view(-1)[0] = draw(st.sampled_from([2, -1, 0.5]))
        dtype = draw(st.sampled_from([torch.int64] * 4 + list(ALL_DTYPES)))
        mask = values.to(dtype)
        valid = dims == (batch, length) and not dtype.is_complex and bool(((mask == 0) | (mask == 1)).all())
        status["attention_mask"] = _grade(valid, dtype in (torch.int64, torch.bool, torch.float32))
        call["attention_mask"] = container("attention_mask", mask, dtype)
    if draw(st.booleans()):
        kind = draw(st.sampled_from(["single", "multi", "other"]))
        if kind == "single":
            dims = shape((batch,), (batch, 1), (batch + 1,))
            labels = torch.randint(0, 3, dims, generator=g)
            if draw(st.booleans()):
                labels.view(-1)[0] = draw(st.sampled_from([3, -1, -100]))
            dtype = draw(st.sampled_from([torch.int64] * 4 + list(INTEGER_DTYPES)))
            labels = labels.to(dtype)
            valid = dims == (batch,) and bool((((labels.long() >= 0) & (labels.long() < 3)) | (labels.long() == -100)).all())
        else:
            dims = shape((batch, 3), (batch,), (batch, 1), (batch + 1, 3))
            dtype = draw(st.sampled_from([torch.float32, torch.float64, torch.float16, torch.complex64]))
            labels = torch.randint(0, 2, dims, generator=g).to(dtype)
            valid = dims == (batch, 3) and not dtype.is_complex
        status["labels"] = _grade(valid, dtype in (torch.int64, torch.float32))
        call["labels"] = container("labels", labels, dtype)
    return call, status


@fuzz(0.5)
@given(runtime_calls())
def test_runtime_bad_input_fuzz(call_status):
    """Invalid input raises TypeError/ValueError naming a broken argument; a convertible one (right values, other
    container or dtype) either gives the reference logits or such an error; a canonical call always works."""
    call, status = call_status
    note(f"status: {status}")
    invalid = [n for n in ARGUMENTS if status.get(n) == "invalid"]
    convertible = [n for n in ARGUMENTS if status.get(n) == "convertible"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            out = MODEL(**call)
        except (TypeError, ValueError) as err:
            if (invalid or convertible) and any(n in str(err) for n in invalid + convertible):
                event("clear error")
                return
            raise AssertionError(f"{type(err).__name__} that names none of {invalid + convertible}: {err}") from err
        except Exception as err:  # noqa: BLE001 - anything else is an error from inside torch
            raise AssertionError(f"obscure {type(err).__name__}: {err}") from err
    assert not invalid, f"invalid {invalid} accepted"
    ref = {k: torch.as_tensor(np.asarray(v) if not isinstance(v, torch.Tensor) else v) for k, v in call.items()}
    ids = ref.get("input_ids")
    embeds = ref.get("inputs_embeds")
    mask = ref.get("attention_mask")
    expected = MODEL(
        None if ids is None else ids.long(),
        attention_mask=None if mask is None else mask.long(),
        inputs_embeds=None if embeds is None else embeds.float(),
    ).logits
    assert max_diff(out.logits, expected) <= 1e-5
    assert ("labels" in call) == (out.loss is not None)
    event("accepted")
