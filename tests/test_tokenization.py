"""Tests of PerceiverByteTokenizer: id compatibility with transformers' PerceiverTokenizer, the vectorised batch path
against the generic one, raw-byte input, batching, truncation, padding, tensors, save/load, decoding, round trips
(hypothesis) and DataCollatorWithPadding."""

import itertools
import json
import logging

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from transformers import DataCollatorWithPadding, PerceiverTokenizer

from perceiver_byte.tokenization_perceiver_byte import PerceiverByteTokenizer



@pytest.fixture(autouse=True)
def _quiet_transformers():
    """The reference tokenizer warns on pair truncation; quiet it here only (other tests read transformers' logs)."""
    logger = logging.getLogger("transformers")
    level = logger.level
    logger.setLevel(logging.ERROR)
    yield
    logger.setLevel(level)

PNG = b"\x89PNG\r\n\x1a\n\x00\xff binary"
TEXTS = ["héllo wörld", "", "a", "abcdefghijklmnopq", "日本語テキスト 🙂"]
PAIRS = ["xyz", "", "a longer second sequence", "ü", "b"]


@pytest.fixture
def tok():
    return PerceiverByteTokenizer()


@pytest.fixture
def ref():
    return PerceiverTokenizer(model_max_length=int(1e30))


# ----------------------------------------------------------------------------- id scheme


def test_vocabulary_and_special_ids(tok):
    assert tok.vocab_size == 262 and len(tok) == 262
    assert [tok.pad_token_id, tok.bos_token_id, tok.eos_token_id, tok.mask_token_id, tok.cls_token_id] == [
        0,
        1,
        2,
        3,
        4,
    ]
    assert tok.sep_token_id == 5
    assert tok.convert_tokens_to_ids(["[PAD]", "[BOS]", "[EOS]", "[MASK]", "[CLS]", "[SEP]"]) == [0, 1, 2, 3, 4, 5]
    assert tok.model_max_length >= 10**20  # no arbitrary 2,048 cap


@pytest.mark.parametrize("text", ["hello world", "héllo wörld", "日本語", "emoji 🙂 ok", "", "\x00 ctrl \x7f"])
def test_ids_match_perceiver_tokenizer(tok, ref, text):
    assert tok(text)["input_ids"] == ref(text)["input_ids"]
    assert tok(text)["input_ids"] == [4] + [b + 6 for b in text.encode("utf-8")] + [5]
    assert tok.encode(text) == ref.encode(text)
    assert tok.tokenize(text) == ref.tokenize(text)
    assert tok.decode(tok.encode(text)) == ref.decode(ref.encode(text))


@pytest.mark.filterwarnings("ignore:`max_length` is ignored")
def test_matches_perceiver_tokenizer_across_options(tok, ref):
    """Same output as transformers' PerceiverTokenizer (or the same exception type) for many option combinations."""
    inputs = [
        {"text": TEXTS[0]},
        {"text": TEXTS},
        {"text": TEXTS[3], "text_pair": PAIRS[2]},
        {"text": TEXTS, "text_pair": PAIRS},
    ]
    options = itertools.product(
        ["right", "left"],  # padding side
        ["right", "left"],  # truncation side
        [True, False],  # add_special_tokens
        [False, True, "max_length"],
        [None, True, "only_first", "only_second"],
        [None, 3, 9, 32],  # max_length
        [None, 4],  # pad_to_multiple_of
    )
    checked = 0
    for padding_side, truncation_side, special, padding, truncation, max_length, multiple in options:
        tok.padding_side = ref.padding_side = padding_side
        tok.truncation_side = ref.truncation_side = truncation_side
        kwargs = {
            "add_special_tokens": special, "padding": padding, "truncation": truncation, "max_length": max_length,
            "pad_to_multiple_of": multiple, "return_special_tokens_mask": True, "return_token_type_ids": True,
            "return_length": True,
        }  # fmt: skip
        for inp in inputs:
            results = []
            for t in (tok, ref):
                try:
                    results.append(dict(t(**inp, **kwargs)))
                except Exception as err:  # noqa: BLE001 - both must fail the same way
                    results.append(type(err))
            assert results[0] == results[1], (inp, kwargs)
            checked += 1
    assert checked == 3072


def _comparable(result):
    """An encoding (or the exception a call raised) as plain values: key -> (type, dtype, rows as lists)."""
    if isinstance(result, Exception):
        return type(result), str(result)
    return {
        key: (type(value).__name__, str(getattr(value, "dtype", "")), [np.asarray(row).tolist() for row in value])
        for key, value in result.items()
    }


@pytest.mark.filterwarnings("ignore:`max_length` is ignored")
def test_fast_path_gives_what_the_generic_path_gives(tok):
    """A batch of str/bytes takes the vectorised path; with split_special_tokens=False (these inputs hold no token
    string, so the ids are the same) it takes transformers' generic path. Both give the same keys, types, dtypes
    and values, or the same error, for every option the fast path serves, head+tail and bytes included."""
    batch = [*TEXTS, PNG, b"", bytearray(b"\x00\xff" * 20), memoryview(b"mv")]
    options = itertools.product(
        ["right", "left", "head+tail"],  # truncation side
        ["right", "left"],  # padding side
        [False, True, "max_length"],
        [None, 0, 5, 24],  # max_length
        [None, 8],  # pad_to_multiple_of
        [True, False],  # add_special_tokens
        [None, "np", "pt"],
    )
    for truncation_side, padding_side, padding, max_length, multiple, special, tensors in options:
        kwargs = {
            "truncation": True, "truncation_side": truncation_side, "padding_side": padding_side, "padding": padding,
            "max_length": max_length, "pad_to_multiple_of": multiple, "add_special_tokens": special,
            "return_tensors": tensors, "return_special_tokens_mask": True, "return_length": True,
        }  # fmt: skip
        results = []
        for split in (True, False):
            try:
                results.append(_comparable(tok(batch, split_special_tokens=split, **kwargs)))
            except ValueError as err:
                results.append(_comparable(err))
        assert results[0] == results[1], kwargs


def test_split_special_tokens_option(tok, ref):
    text = "Paris is the [MASK] of France."
    raw = tok(text)["input_ids"]
    assert 3 not in raw and len(raw) == len(text.encode()) + 2  # default: the brackets are plain bytes
    parsed = PerceiverByteTokenizer(split_special_tokens=False)(text)["input_ids"]
    assert parsed == ref(text)["input_ids"] and 3 in parsed
    assert tok(text, split_special_tokens=False)["input_ids"] == parsed  # per call too
    assert tok([b"a[SEP]b"], split_special_tokens=False)["input_ids"] == [[4, 103, 5, 104, 5]]


# ----------------------------------------------------------------------------- bytes input


def test_bytes_input_including_nul_and_ff(tok):
    data = bytes([0, 255, 10, 0, 128, 255])
    ids = tok(data)["input_ids"]
    assert ids == [4, 6, 261, 16, 6, 134, 261, 5]
    assert tok.decode_bytes(ids) == data
    assert tok(bytearray(data))["input_ids"] == ids
    assert tok(memoryview(data))["input_ids"] == ids
    assert tok(bytes(range(256)), add_special_tokens=False)["input_ids"] == list(range(6, 262))


def test_mixed_batch_from_the_issue(tok):
    batch = tok(["héllo wörld", PNG], padding=True, truncation=True, max_length=4096, return_tensors="pt")
    ids, mask = batch["input_ids"], batch["attention_mask"]
    assert ids.dtype == torch.int64 and mask.dtype == torch.int64
    n0, n1 = len("héllo wörld".encode()) + 2, len(PNG) + 2
    assert ids.shape == (2, max(n0, n1))
    assert mask.sum(dim=1).tolist() == [n0, n1]
    assert tok.decode(ids[0], skip_special_tokens=True) == "héllo wörld"
    assert tok.decode_bytes(ids[1]) == PNG
    assert tok.decode_bytes(ids) == ["héllo wörld".encode(), PNG]
    mixed = tok(["é", b"\xc3\xa9", bytearray(b"\xc3\xa9"), memoryview(b"\xc3\xa9")])["input_ids"]
    assert mixed[0] == mixed[1] == mixed[2] == mixed[3] == [4, 201, 175, 5]


def test_type_errors_name_expected_types(tok):
    for bad in (5, None, 3.5, {"a": 1}, [None], ["ok", 7], [b"ok", None]):
        with pytest.raises(TypeError, match="str.*bytes"):
            tok(bad)
    with pytest.raises(TypeError, match="str.*bytes"):
        tok.encode(None)
    with pytest.raises(TypeError):
        tok("a", text_pair=3)


# ----------------------------------------------------------------------------- padding, truncation, tensors


def test_right_and_left_padding_with_attention_masks(tok):
    right = tok(["a", "abcd"], padding=True)
    assert right["input_ids"] == [[4, 103, 5, 0, 0, 0], [4, 103, 104, 105, 106, 5]]
    assert right["attention_mask"] == [[1, 1, 1, 0, 0, 0], [1, 1, 1, 1, 1, 1]]
    left = tok(["a", "abcd"], padding=True, padding_side="left")
    assert left["input_ids"] == [[0, 0, 0, 4, 103, 5], [4, 103, 104, 105, 106, 5]]
    assert left["attention_mask"] == [[0, 0, 0, 1, 1, 1], [1, 1, 1, 1, 1, 1]]
    left_tok = PerceiverByteTokenizer(padding_side="left")
    assert left_tok(["a", "abcd"], padding=True)["input_ids"] == left["input_ids"]
    multiple = tok(["a", "abcd"], padding=True, pad_to_multiple_of=8, return_tensors="np")
    assert multiple["input_ids"].shape == (2, 8) and multiple["attention_mask"].sum() == 9
    fixed = tok(["a"], padding="max_length", max_length=5)
    assert fixed["input_ids"] == [[4, 103, 5, 0, 0]]
    assert tok(["a", "abcd"], return_attention_mask=False, padding=True).keys() == {"input_ids"}


def test_truncation_keeps_room_for_special_tokens(tok):
    text = "abcdefghij"
    ids = tok(text, truncation=True, max_length=6)["input_ids"]
    assert ids == [4, 103, 104, 105, 106, 5]
    assert tok(text, truncation=True, max_length=6, truncation_side="left")["input_ids"] == [4, 109, 110, 111, 112, 5]
    assert tok(text, max_length=6)["input_ids"] == ids  # max_length alone truncates, as in transformers
    head_tail = tok(text, truncation=True, max_length=7, truncation_side="head+tail")["input_ids"]
    assert head_tail == [4, 103, 104, 105, 111, 112, 5]  # 5 bytes kept: 3 from the start, 2 from the end
    pair = tok("abcdef", "xyz", truncation=True, max_length=7)["input_ids"]
    assert pair == [4, 103, 104, 5, 126, 127, 5]
    # an empty second sequence keeps its [SEP] (transformers' own left truncation drops it)
    assert tok("abc", "", truncation=True, max_length=4, truncation_side="left")["input_ids"] == [4, 105, 5, 5]
    batch = tok([text, "ab"], truncation=True, max_length=5, padding=True, return_tensors="pt")
    assert batch["input_ids"].tolist() == [[4, 103, 104, 105, 5], [4, 103, 104, 5, 0]]


def test_head_plus_tail_truncation_setting_and_fraction():
    tok = PerceiverByteTokenizer(truncation_side="head+tail", truncation_head_fraction=0.25)
    data = bytes(range(100))
    ids = tok(data, truncation=True, max_length=10)["input_ids"]  # 8 bytes: 2 from the head, 6 from the tail
    assert tok.decode_bytes(ids) == data[:2] + data[-6:]
    assert tok(data[:8], truncation=True, max_length=10)["input_ids"] == tok(data[:8])["input_ids"]  # fits: untouched
    with pytest.raises(ValueError, match="truncation_side"):
        PerceiverByteTokenizer(truncation_side="middle")
    with pytest.raises(ValueError, match="truncation_side"):
        tok("abc", truncation=True, max_length=3, truncation_side="middle")


def test_long_max_length_beyond_2048(tok):
    text = "x" * 5000
    assert len(tok(text)["input_ids"]) == 5002  # no cap by default
    assert len(tok(text, truncation=True)["input_ids"]) == 5002  # model_max_length is "no limit"
    assert len(tok(text, truncation=True, max_length=4096)["input_ids"]) == 4096
    assert len(tok(text, truncation=True, max_length=1_048_576)["input_ids"]) == 5002
    padded = tok([text, "y"], padding="max_length", truncation=True, max_length=8192, return_tensors="np")
    assert padded["input_ids"].shape == (2, 8192) and padded["attention_mask"].sum(axis=1).tolist() == [5002, 3]
    small = PerceiverByteTokenizer(model_max_length=3000)
    assert len(small(text, truncation=True)["input_ids"]) == 3000


@pytest.mark.parametrize("return_tensors", ["pt", "np"])
def test_tensor_types_are_int64(tok, return_tensors):
    batch = tok(["ab", PNG], padding=True, return_tensors=return_tensors, return_special_tokens_mask=True)
    for key in ("input_ids", "attention_mask", "special_tokens_mask"):
        value = batch[key]
        assert isinstance(value, torch.Tensor if return_tensors == "pt" else np.ndarray)
        assert value.dtype == (torch.int64 if return_tensors == "pt" else np.int64)
        assert tuple(value.shape) == (2, len(PNG) + 2)
    single = tok("abc", return_tensors=return_tensors)
    assert tuple(single["input_ids"].shape) == (1, 5)
    if return_tensors == "pt":
        with pytest.raises(ValueError, match="padding"):
            tok(["a", "abc"], return_tensors="pt")  # ragged batch
    else:  # as transformers: a ragged batch becomes an object array of int64 rows
        ragged = tok(["a", "abc"], return_tensors="np")["input_ids"]
        assert ragged.dtype == object and [row.tolist() for row in ragged] == [[4, 103, 5], [4, 103, 104, 105, 5]]


def test_python_lists_when_no_tensors(tok):
    out = tok("text")
    assert isinstance(out["input_ids"], list) and all(type(i) is int for i in out["input_ids"])
    batch = tok(["a", "bcd"])  # what datasets.map(batched=True) passes and expects back
    assert batch["input_ids"] == [[4, 103, 5], [4, 104, 105, 106, 5]]
    assert batch["attention_mask"] == [[1, 1, 1], [1, 1, 1, 1, 1]]
    assert tok([])["input_ids"] == []
    lengths = tok(["a", "bcd"], return_length=True, padding=True)["length"]
    assert lengths == [3, 5]


def test_text_target_gives_labels(tok):
    out = tok(["ab"], text_target=["xyz"])
    assert out["labels"] == [[4, 126, 127, 128, 5]]


def test_overflowing_tokens_fall_back_to_the_generic_path(tok, ref):
    kwargs = {"return_overflowing_tokens": True, "truncation": True, "max_length": 4, "stride": 1}
    assert dict(tok(["abc", "defgh"], **kwargs)) == dict(ref(["abc", "defgh"], **kwargs))
    for text, pair in (("", None), ("abcdef", None), ("", "xyz"), ("ab", "wxyz")):
        for strategy in ("only_first", "only_second"):
            args = {**kwargs, "truncation": strategy}
            assert dict(tok(text, pair, **args)) == dict(ref(text, pair, **args)), (text, pair, strategy)
    with pytest.raises(ValueError, match="longest_first"):
        tok("abc", "def", **kwargs)


# ----------------------------------------------------------------------------- pad() and collators


def test_pad_matches_reference_and_collator(tok, ref):
    features = [tok(t) for t in ["a", "bcdef", ""]]
    for kwargs in (
        {},
        {"padding_side": "left"},
        {"pad_to_multiple_of": 4},
        {"padding": "max_length", "max_length": 12},
        {"return_tensors": "np"},
    ):
        ours, theirs = tok.pad(features, **kwargs), ref.pad(features, **kwargs)
        assert {k: np.asarray(v).tolist() for k, v in ours.items()} == {
            k: np.asarray(v).tolist() for k, v in theirs.items()
        }, kwargs
    assert tok.pad(tok(["a", "bcd"]))["input_ids"] == [[4, 103, 5, 0, 0], [4, 104, 105, 106, 5]]  # dict of lists
    with_labels = [dict(f, label=i) for i, f in enumerate(features)]
    batch = DataCollatorWithPadding(tok)(with_labels)
    assert batch["input_ids"].shape == (3, 7) and batch["input_ids"].dtype == torch.int64
    assert batch["attention_mask"].sum(dim=1).tolist() == [3, 7, 2]
    assert batch["labels"].tolist() == [0, 1, 2]
    tensors = [{"input_ids": torch.tensor([4, 103, 5])}, {"input_ids": torch.tensor([4, 5])}]
    padded = tok.pad(tensors)
    assert padded["input_ids"].tolist() == [[4, 103, 5], [4, 5, 0]] and padded["attention_mask"].dtype == torch.int64


def test_special_tokens_mask_helpers(tok, ref):
    ids = tok(["ab", "c"], padding=True)["input_ids"][1]
    assert tok.get_special_tokens_mask(ids, already_has_special_tokens=True) == [1, 0, 1, 1]
    assert tok.get_special_tokens_mask([7, 8]) == ref.get_special_tokens_mask([7, 8]) == [1, 0, 0, 1]
    assert tok.build_inputs_with_special_tokens([7], [8]) == [4, 7, 5, 8, 5]


# ----------------------------------------------------------------------------- save / load


def test_save_and_load_round_trip(tmp_path):
    tok = PerceiverByteTokenizer(padding_side="left", truncation_side="head+tail", model_max_length=4096)
    saved = tok.save_pretrained(tmp_path)
    assert tok.save_vocabulary(str(tmp_path)) == ()
    config = json.loads((tmp_path / "tokenizer_config.json").read_text())
    assert config["tokenizer_class"] == "PerceiverByteTokenizer"
    assert any(str(p).endswith("tokenizer_config.json") for p in saved)
    loaded = PerceiverByteTokenizer.from_pretrained(tmp_path)
    assert isinstance(loaded, PerceiverByteTokenizer)
    assert (loaded.padding_side, loaded.truncation_side, loaded.model_max_length) == ("left", "head+tail", 4096)
    assert loaded.all_special_ids == tok.all_special_ids and len(loaded) == 262
    texts = ["héllo", PNG, "z" * 5000]
    assert dict(loaded(texts, padding=True, truncation=True)) == dict(tok(texts, padding=True, truncation=True))

    default = PerceiverByteTokenizer()
    default.save_pretrained(tmp_path / "default")
    reloaded = PerceiverByteTokenizer.from_pretrained(tmp_path / "default")
    assert reloaded.model_max_length == default.model_max_length and reloaded.truncation_side == "right"


# ----------------------------------------------------------------------------- decoding


def test_decode_invalid_utf8_gives_replacement_characters(tok):
    ids = tok(b"ok \xff\xfe \xc3", add_special_tokens=False)["input_ids"]
    assert tok.decode(ids) == "ok \ufffd\ufffd \ufffd"
    assert tok.decode_bytes(ids) == b"ok \xff\xfe \xc3"


def test_decode_special_tokens(tok):
    ids = tok(["hé", "a"], padding=True)["input_ids"]
    assert tok.decode(ids[1]) == "[CLS]a[SEP][PAD][PAD]"
    assert tok.decode(ids[1], skip_special_tokens=True) == "a"
    assert tok.decode(ids, skip_special_tokens=True) == ["hé", "a"]
    assert tok.batch_decode(torch.tensor(ids), skip_special_tokens=True) == ["hé", "a"]
    assert tok.decode(np.array(ids[0])) == "[CLS]hé[SEP]"
    assert tok.decode([3]) == "[MASK]" and tok.decode(7) == "\x01"
    assert tok.convert_ids_to_tokens([4, 103, 5]) == ["[CLS]", "a", "[SEP]"]
    with pytest.raises(ValueError, match="-100"):
        tok.decode([4, 103, -100])
    with pytest.raises(ValueError):
        tok.decode_bytes([262])


NO_SURROGATES = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=200)


@settings(max_examples=200, deadline=None)
@given(NO_SURROGATES)
def test_text_round_trip(text):
    tok = PerceiverByteTokenizer()
    ids = tok(text)["input_ids"]
    assert len(ids) == len(text.encode("utf-8")) + 2
    assert tok.decode(ids, skip_special_tokens=True) == text
    assert tok.decode_bytes(ids) == text.encode("utf-8")


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=300))
def test_bytes_round_trip(data):
    tok = PerceiverByteTokenizer()
    ids = tok(data)["input_ids"]
    assert ids[0] == 4 and ids[-1] == 5 and all(6 <= i < 262 for i in ids[1:-1])
    assert tok.decode_bytes(ids) == data
    assert tok.decode(ids, skip_special_tokens=True) == data.decode("utf-8", errors="replace")


@settings(max_examples=100, deadline=None)
@given(
    st.lists(st.binary(max_size=40), min_size=1, max_size=6),
    st.integers(min_value=2, max_value=50),
    st.sampled_from(["right", "left", "head+tail"]),
    st.sampled_from(["right", "left"]),
)
def test_batch_truncation_and_padding_properties(blobs, max_length, truncation_side, padding_side):
    tok = PerceiverByteTokenizer()
    out = tok(
        blobs, truncation=True, max_length=max_length, padding=True, return_tensors="np",
        truncation_side=truncation_side, padding_side=padding_side,
    )  # fmt: skip
    ids, mask = out["input_ids"], out["attention_mask"]
    assert ids.shape[1] == min(max_length, max(len(b) for b in blobs) + 2)
    for row, row_mask, data in zip(ids, mask, blobs):
        kept = tok.decode_bytes(row)
        budget = max_length - 2
        assert len(kept) == min(len(data), budget) == row_mask.sum() - 2
        if truncation_side == "right":
            assert kept == data[: len(kept)]
        elif truncation_side == "left":
            assert kept == data[len(data) - len(kept) :]
        else:
            head = (len(kept) + 1) // 2
            assert kept == data[:head] + data[len(data) - (len(kept) - head) :]
        real = row[row_mask == 1]
        assert real[0] == 4 and real[-1] == 5 and (row[row_mask == 0] == 0).all()
        assert (row_mask[: len(real)] == 1).all() if padding_side == "right" else (row_mask[-len(real) :] == 1).all()


def test_lone_surrogates_policy():
    text = "a\ud800b"  # not valid Unicode: UTF-8 cannot encode it
    tok = PerceiverByteTokenizer()  # default encoding_errors="surrogatepass": kept as bytes, nothing lost
    ids = tok(text)["input_ids"]
    assert tok.decode_bytes(ids) == b"a\xed\xa0\x80b"
    assert tok.decode_bytes(ids).decode("utf-8", errors="surrogatepass") == text
    decoded = tok.decode(ids, skip_special_tokens=True)  # invalid UTF-8 bytes -> U+FFFD
    assert decoded.startswith("a\ufffd") and decoded.endswith("\ufffdb") and "\ud800" not in decoded
    strict = PerceiverByteTokenizer(encoding_errors="strict")
    with pytest.raises(ValueError, match="surrogate"):
        strict(text)
    with pytest.raises(ValueError, match="surrogate"):
        strict(["fine", text])


# ----------------------------------------------------------------------------- vectorisation sanity (not timed)


def test_one_mebibyte_input(tok):
    data = np.random.default_rng(0).integers(0, 256, size=1 << 20, dtype=np.uint8).tobytes()
    ids = tok(data, return_tensors="np")["input_ids"]
    assert ids.shape == (1, (1 << 20) + 2)
    assert tok.decode_bytes(ids[0]) == data
    text = "é" * (1 << 19)  # 1 MiB of UTF-8
    batch = tok([text, "a"], padding=True, return_tensors="pt")
    assert batch["input_ids"].shape == (2, (1 << 20) + 2) and int(batch["attention_mask"].sum()) == (1 << 20) + 5
    assert tok.decode(batch["input_ids"][0], skip_special_tokens=True) == text
    assert len(tok(text, truncation=True, max_length=1_048_576)["input_ids"]) == 1_048_576
