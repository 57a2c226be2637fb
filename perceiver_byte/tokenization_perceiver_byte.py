"""Byte-level tokenizer for the Perceiver byte model (a Hugging Face Transformers `PreTrainedTokenizer`).

Text (`str`) is encoded as UTF-8; `bytes`, `bytearray` and `memoryview` inputs are taken byte for byte, with no
decoding, so arbitrary binary files can be fed to the model. Ids follow transformers' `PerceiverTokenizer`, so
checkpoints and data move freely between the two:

    [PAD]=0  [BOS]=1  [EOS]=2  [MASK]=3  [CLS]=4  [SEP]=5  byte b -> b + 6      (262 ids in all)

With `add_special_tokens=True` a sequence becomes `[CLS] bytes [SEP]` and a pair `[CLS] a [SEP] b [SEP]`.

Encoding, truncation, padding and `pad()` are vectorised with NumPy (no per-byte Python loop): a batch of texts is
joined into one buffer, viewed with `np.frombuffer`, shifted by 6 and scattered into a padded matrix. There is no
built-in length cap: `model_max_length` defaults to transformers' "no limit" value (`int(1e30)`), and any explicit
`max_length` (e.g. 1,048,576) is honoured.

Besides the standard `"right"`/`"left"`, `truncation_side` may be `"head+tail"`: a truncated sequence keeps its
first `truncation_head_fraction` (default one half) of the byte budget from the start and the rest from the end.

The module is self-contained (it is uploaded to the Hub as remote code): it imports only the standard library,
NumPy, transformers and, lazily, torch; it does no I/O at import time.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import numpy as np
from transformers.tokenization_python import AddedToken, PreTrainedTokenizer
from transformers.tokenization_utils_base import (
    BatchEncoding,
    PaddingStrategy,
    TensorType,
    TruncationStrategy,
)
from transformers.utils import logging

logger = logging.get_logger(__name__)

_BYTES_LIKE = (bytes, bytearray, memoryview)
_TRUNCATION_SIDES = ("right", "left", "head+tail")
_SPECIAL_TOKEN_NAMES = ("pad_token", "bos_token", "eos_token", "mask_token", "cls_token", "sep_token")
_EXPECTED_TYPES = (
    "str (encoded as UTF-8), bytes, bytearray or memoryview (taken as raw bytes), a list/tuple of int token ids, "
    "or a list/tuple of those for a batch"
)


def _type_error(value: Any, what: str = "text") -> TypeError:
    return TypeError(
        f"PerceiverByteTokenizer expects `{what}` to be {_EXPECTED_TYPES}; got {type(value).__name__}: {value!r:.80}"
    )


def _is_int_sequence(value: Any) -> bool:
    """A non-empty list/tuple whose first element is an int (taken as already-encoded token ids)."""
    return (
        isinstance(value, (list, tuple))
        and len(value) > 0
        and isinstance(value[0], (int, np.integer))
        and not isinstance(value[0], bool)
    )


def _is_single_sequence(value: Any) -> bool:
    return isinstance(value, (str, *_BYTES_LIKE)) or _is_int_sequence(value)


class PerceiverByteTokenizer(PreTrainedTokenizer):
    """
    Raw-byte tokenizer for the Perceiver byte model, id-compatible with transformers' `PerceiverTokenizer`.

    ```python
    >>> tok = PerceiverByteTokenizer()
    >>> tok("hé")["input_ids"]
    [4, 110, 201, 175, 5]
    >>> batch = tok(["héllo wörld", b"\\x89PNG\\r\\n\\x1a\\n\\x00\\xff binary"], padding=True, return_tensors="pt")
    >>> tok.decode_bytes(batch["input_ids"][1])
    b'\\x89PNG\\r\\n\\x1a\\n\\x00\\xff binary'
    ```

    Args:
        pad_token, bos_token, eos_token, mask_token, cls_token, sep_token (`str`):
            Names of the six special tokens, with ids 0..5 in this order. Only their spelling can change.
        model_max_length (`int`, *optional*):
            Default length for `truncation=True` / `padding="max_length"` when no `max_length` is given. Defaults to
            transformers' "no limit" value `int(1e30)` (then `truncation=True` alone truncates nothing).
        split_special_tokens (`bool`, *optional*, defaults to `True`):
            `True`: every input byte is a byte token, so text that happens to contain `"[MASK]"` is encoded as its six
            bytes (what raw binary input needs). `False`: like `PerceiverTokenizer`, occurrences of special or added
            token strings in the input become their token id.
        truncation_side (`str`, *optional*, defaults to `"right"`):
            `"right"` (keep the start), `"left"` (keep the end) or `"head+tail"` (keep both ends). Can also be
            passed per call: `tok(texts, truncation=True, max_length=n, truncation_side="head+tail")`.
        truncation_head_fraction (`float`, *optional*, defaults to 0.5):
            With `"head+tail"`, the share of a truncated sequence's byte budget taken from its start.
        encoding_errors (`str`, *optional*, defaults to `"surrogatepass"`):
            Error handler for `str.encode("utf-8")`. Well-formed text never needs it; it only decides what happens to
            lone surrogates (e.g. from a JSON `"\\ud800"` escape), which UTF-8 cannot represent. `"surrogatepass"`
            writes them as their 3-byte (CESU-8 style) sequence, so nothing is lost (`decode_bytes` returns those
            bytes; `decode` shows each as U+FFFD since they are not valid UTF-8); `"strict"` raises a `ValueError`;
            `"replace"` turns each into `?`.
    """

    model_input_names = ["input_ids", "attention_mask"]  # noqa: RUF012 - same convention as transformers

    #: Number of special ids before the byte ids; byte b has id b + `byte_offset`.
    byte_offset = 6
    #: Number of possible byte values.
    num_byte_values = 256

    def __init__(
        self,
        pad_token: str = "[PAD]",
        bos_token: str = "[BOS]",
        eos_token: str = "[EOS]",
        mask_token: str = "[MASK]",
        cls_token: str = "[CLS]",
        sep_token: str = "[SEP]",
        model_max_length: int | None = None,
        split_special_tokens: bool = True,
        truncation_side: str = "right",
        truncation_head_fraction: float = 0.5,
        encoding_errors: str = "surrogatepass",
        **kwargs,
    ) -> None:
        if truncation_side not in _TRUNCATION_SIDES:
            raise ValueError(f"truncation_side must be one of {_TRUNCATION_SIDES}, got {truncation_side!r}")
        if not 0.0 <= float(truncation_head_fraction) <= 1.0:
            raise ValueError(f"truncation_head_fraction must be in [0, 1], got {truncation_head_fraction!r}")
        "".encode("utf-8", errors=encoding_errors)  # validates the handler name early (LookupError if unknown)

        def as_added(token):
            if isinstance(token, str):
                return AddedToken(token, lstrip=False, rstrip=False, normalized=False, special=True)
            return token

        tokens = [as_added(t) for t in (pad_token, bos_token, eos_token, mask_token, cls_token, sep_token)]
        # The six special tokens are not part of the byte vocabulary: they own ids 0..5.
        self._added_tokens_decoder: dict[int, AddedToken] = dict(enumerate(tokens))
        self.truncation_head_fraction = float(truncation_head_fraction)
        self.encoding_errors = encoding_errors
        self._added_tokens_pattern_cache: tuple[tuple, Any] | None = None

        super().__init__(
            **dict(zip(_SPECIAL_TOKEN_NAMES, tokens)),
            model_max_length=model_max_length,
            split_special_tokens=split_special_tokens,
            # The base class only knows "right"/"left"; "head+tail" is set just below.
            truncation_side="right" if truncation_side == "head+tail" else truncation_side,
            truncation_head_fraction=self.truncation_head_fraction,
            encoding_errors=encoding_errors,
            **kwargs,
        )
        self.truncation_side = truncation_side
        self.init_kwargs["truncation_side"] = truncation_side

    # ------------------------------------------------------------------ vocabulary

    @property
    def vocab_size(self) -> int:
        """262: the 6 special ids plus the 256 byte values (not counting tokens added later with `add_tokens`)."""
        return self.byte_offset + self.num_byte_values

    def get_vocab(self) -> dict[str, int]:
        # Like PerceiverTokenizer: byte b is the one-character token chr(b).
        vocab = {chr(i): i + self.byte_offset for i in range(self.num_byte_values)}
        vocab.update(self.added_tokens_encoder)
        return vocab

    def num_special_tokens_to_add(self, pair: bool = False) -> int:
        return 3 if pair else 2

    def build_inputs_with_special_tokens(
        self, token_ids_0: list[int], token_ids_1: list[int] | None = None
    ) -> list[int]:
        """`[CLS] A [SEP]` for one sequence, `[CLS] A [SEP] B [SEP]` for a pair (as `PerceiverTokenizer`)."""
        if token_ids_1 is None:
            return [self.cls_token_id] + list(token_ids_0) + [self.sep_token_id]
        return [self.cls_token_id] + list(token_ids_0) + [self.sep_token_id] + list(token_ids_1) + [self.sep_token_id]

    def get_special_tokens_mask(
        self, token_ids_0: list[int], token_ids_1: list[int] | None = None, already_has_special_tokens: bool = False
    ) -> list[int]:
        """1 for a special token, 0 for a byte token (vectorised; used by `DataCollatorForLanguageModeling`)."""
        if already_has_special_tokens:
            if token_ids_1 is not None:
                raise ValueError("With already_has_special_tokens=True, pass the whole sequence as token_ids_0.")
            ids = self._as_id_array(token_ids_0)
            return np.isin(ids, np.asarray(self.all_special_ids, dtype=np.int64)).astype(np.int64).tolist()
        if token_ids_1 is None:
            return [1] + [0] * len(token_ids_0) + [1]
        return [1] + [0] * len(token_ids_0) + [1] + [0] * len(token_ids_1) + [1]

    def tokenize(self, text: str | bytes, **kwargs) -> list[str]:
        """Byte tokens as one-character strings (byte b -> chr(b)), like `PerceiverTokenizer.tokenize`."""
        split_special_tokens = kwargs.pop("split_special_tokens", self.split_special_tokens)
        if isinstance(text, _BYTES_LIKE):
            return list(bytes(text).decode("latin-1"))
        if not isinstance(text, str):
            raise _type_error(text)
        if split_special_tokens:
            return self._tokenize(text)
        return super().tokenize(text, split_special_tokens=False, **kwargs)

    def _tokenize(self, text: str, **kwargs) -> list[str]:
        return list(bytes(self._to_bytes(text)).decode("latin-1"))

    def _convert_token_to_id(self, token: str) -> int | None:
        if len(token) == 1 and ord(token) < self.num_byte_values:
            return ord(token) + self.byte_offset
        return self.unk_token_id

    def _convert_id_to_token(self, index: int) -> str:
        index = int(index)
        if not self.byte_offset <= index < self.vocab_size:
            raise ValueError(f"Token id {index} is neither a byte id nor a known special/added token id.")
        return chr(index - self.byte_offset)

    def convert_tokens_to_string(self, tokens: list[str]) -> str:
        """Join byte tokens (and special/added token strings) and decode as UTF-8 with U+FFFD replacement."""
        added = self._added_tokens_encoder
        joined = "".join(tokens)
        if len(joined) == len(tokens) and not any(len(t) == 1 for t in added):
            try:
                return joined.encode("latin-1").decode("utf-8", errors="replace")
            except UnicodeEncodeError:
                pass
        out = bytearray()
        for token in tokens:
            if token in added or len(token) != 1 or ord(token) >= self.num_byte_values:
                out += token.encode("utf-8")
            else:
                out.append(ord(token))
        return out.decode("utf-8", errors="replace")

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, *init_inputs, **kwargs):
        try:
            return super().from_pretrained(pretrained_model_name_or_path, *init_inputs, **kwargs)
        except ValueError as err:  # json.JSONDecodeError is a ValueError; its message names no file
            if type(err).__name__ != "JSONDecodeError":
                raise
            raise OSError(
                f"A tokenizer file in {pretrained_model_name_or_path} (tokenizer_config.json, or "
                f"special_tokens_map.json / added_tokens.json if present) is not valid JSON: {err}. Save the tokenizer "
                "again."
            ) from err

    def save_vocabulary(self, save_directory: str, filename_prefix: str | None = None) -> tuple[str, ...]:
        """No vocabulary file: the byte vocabulary is implicit."""
        return ()

    # ------------------------------------------------------------------ encoding

    def __call__(self, text=None, text_pair=None, text_target=None, text_pair_target=None, *args, **kwargs):
        if text is None and text_target is None:
            raise TypeError(f"PerceiverByteTokenizer expects `text` to be {_EXPECTED_TYPES}; got None")
        return super().__call__(text, text_pair, text_target, text_pair_target, *args, **kwargs)

    def _added_tokens_pattern(self):
        """Compiled bytes regex matching any special/added token string (longest first), cached."""
        contents = tuple(sorted(self._added_tokens_encoder, key=len, reverse=True))
        cache = self._added_tokens_pattern_cache
        if cache is None or cache[0] != contents:
            pattern = re.compile(b"|".join(re.escape(c.encode("utf-8")) for c in contents if c))
            self._added_tokens_pattern_cache = cache = (contents, pattern)
        return cache[1]

    def _encoding_error(self, err: UnicodeEncodeError) -> ValueError:
        return ValueError(
            f"Cannot encode text as UTF-8 with encoding_errors={self.encoding_errors!r}: {err}. Text with lone "
            "surrogates is not valid Unicode; clean it, or build the tokenizer with "
            "encoding_errors='surrogatepass' (keeps them as bytes) or 'replace'."
        )

    def _encode_strs(self, texts: list[str]) -> list[bytes]:
        errors = self.encoding_errors
        try:
            return [t.encode("utf-8", errors) for t in texts]
        except UnicodeEncodeError as err:
            raise self._encoding_error(err) from err

    def _to_bytes(self, value: Any) -> bytes | bytearray | memoryview:
        if isinstance(value, str):
            try:
                return value.encode("utf-8", errors=self.encoding_errors)
            except UnicodeEncodeError as err:
                raise self._encoding_error(err) from err
        if isinstance(value, memoryview):
            return value.cast("B") if value.format != "B" or value.ndim != 1 else value
        if isinstance(value, (bytes, bytearray)):
            return value
        raise _type_error(value)

    def _bytes_to_ids(self, data: bytes | bytearray | memoryview) -> np.ndarray:
        return np.add(np.frombuffer(data, dtype=np.uint8), self.byte_offset, dtype=np.int64)

    def _sequence_to_units(self, value: Any, split_special_tokens: bool) -> bytes | bytearray | memoryview | np.ndarray:
        """One input sequence -> raw bytes (fast path), or an int64 id array (given ids / parsed special tokens)."""
        if _is_int_sequence(value):
            ids = np.asarray(value, dtype=np.int64)
            if ids.ndim != 1:
                raise _type_error(value)
            return ids
        if isinstance(value, (list, tuple)) and len(value) == 0:
            return b""
        data = self._to_bytes(value)
        if split_special_tokens:
            return data
        pattern = self._added_tokens_pattern()
        raw = bytes(data)
        pieces, pos = [], 0
        for match in pattern.finditer(raw):  # one iteration per special-token occurrence, not per byte
            pieces.append(self._bytes_to_ids(raw[pos : match.start()]))
            pieces.append(np.array([self._added_tokens_encoder[match.group().decode("utf-8")]], dtype=np.int64))
            pos = match.end()
        if not pieces:
            return data
        pieces.append(self._bytes_to_ids(raw[pos:]))
        return np.concatenate(pieces)

    def _split_batch(self, text, text_pair, is_split_into_words):
        """Normalise the inputs to (is_batched, list of first sequences, list of second sequences or None)."""

        def join_words(words):
            if not isinstance(words, (list, tuple)):
                raise _type_error(words)
            if words and _is_int_sequence(words):
                return list(words)
            return b"".join(bytes(self._to_bytes(w)) for w in words)

        if is_split_into_words:
            is_batched = isinstance(text, (list, tuple)) and len(text) > 0 and isinstance(text[0], (list, tuple))
            firsts = [join_words(t) for t in text] if is_batched else [join_words(text)]
            if text_pair is None:
                seconds = None
            elif is_batched:
                seconds = [join_words(t) for t in text_pair]
            else:
                seconds = [join_words(text_pair)]
            return is_batched, firsts, seconds

        if _is_single_sequence(text):
            if text_pair is not None and not _is_single_sequence(text_pair):
                raise _type_error(text_pair, "text_pair")
            return False, [text], None if text_pair is None else [text_pair]
        if not isinstance(text, (list, tuple)):
            raise _type_error(text)

        firsts, seconds = [], []
        if text_pair is not None:
            if not isinstance(text_pair, (list, tuple)) or _is_int_sequence(text_pair) or len(text_pair) != len(text):
                raise ValueError("If `text` is a batch, `text_pair` must be a batch (list) of the same length.")
            for a, b in zip(text, text_pair):
                if not _is_single_sequence(a) and not (isinstance(a, (list, tuple)) and len(a) == 0):
                    raise _type_error(a)
                if not _is_single_sequence(b) and not (isinstance(b, (list, tuple)) and len(b) == 0):
                    raise _type_error(b, "text_pair")
            return True, list(text), list(text_pair)

        has_pair = False
        for item in text:
            if _is_single_sequence(item) or (isinstance(item, (list, tuple)) and len(item) == 0):
                firsts.append(item)
                seconds.append(None)
            elif isinstance(item, (list, tuple)) and len(item) == 2 and all(map(_is_single_sequence, item)):
                firsts.append(item[0])  # (text, text_pair) tuple inside a batch, as transformers allows
                seconds.append(item[1])
                has_pair = True
            elif isinstance(item, (list, tuple)) and len(item) == 1 and _is_single_sequence(item[0]):
                firsts.append(item[0])
                seconds.append(None)
            else:
                raise _type_error(item)
        if has_pair and any(s is None for s in seconds):
            raise ValueError("A batch must be all single sequences or all (text, text_pair) pairs, not a mix.")
        return True, firsts, seconds if has_pair else None

    def _keep_ranges(self, lengths: np.ndarray, keep: np.ndarray, side: str) -> tuple[np.ndarray, ...]:
        """Per sequence, the kept ranges as (head_end, tail_start): kept = [0, head_end) + [tail_start, length)."""
        if side == "right":
            return keep, lengths
        if side == "left":
            return np.zeros_like(keep), lengths - keep
        head = np.floor(keep * self.truncation_head_fraction + 0.5).astype(np.int64)
        head = np.clip(head, 0, keep)
        return head, lengths - (keep - head)

    @staticmethod
    def _slices(seq, length: int, head_end: int, tail_start: int) -> list:
        """The kept parts of one truncated sequence: seq[:head_end] and seq[tail_start:] (views, no copy)."""
        if head_end >= tail_start:
            return [seq]
        pieces = []
        if head_end > 0:
            pieces.append(seq[:head_end])
        if tail_start < length:
            pieces.append(seq[tail_start:])
        return pieces

    def _encode_plus(
        self,
        text,
        text_pair=None,
        add_special_tokens: bool = True,
        padding_strategy: PaddingStrategy = PaddingStrategy.DO_NOT_PAD,
        truncation_strategy: TruncationStrategy = TruncationStrategy.DO_NOT_TRUNCATE,
        max_length: int | None = None,
        stride: int = 0,
        is_split_into_words: bool = False,
        pad_to_multiple_of: int | None = None,
        padding_side: str | None = None,
        return_tensors: str | TensorType | None = None,
        return_token_type_ids: bool | None = None,
        return_attention_mask: bool | None = None,
        return_overflowing_tokens: bool = False,
        return_special_tokens_mask: bool = False,
        return_offsets_mapping: bool = False,
        return_length: bool = False,
        verbose: bool = True,
        split_special_tokens: bool | None = None,
        truncation_side: str | None = None,
        **kwargs,
    ) -> BatchEncoding:
        """Vectorised encoder behind `__call__` and `encode` (same arguments as transformers' tokenizers)."""
        if return_offsets_mapping:
            raise NotImplementedError(
                "return_offsets_mapping is not available for PerceiverByteTokenizer (token i is byte i of the UTF-8 "
                "encoding, after the [CLS] token)."
            )
        kwargs.pop("sanitize_control_tokens", None)
        if kwargs and verbose:
            logger.warning_once(f"PerceiverByteTokenizer ignores unknown keyword arguments: {sorted(kwargs)}")
        if split_special_tokens is None:
            split_special_tokens = self.split_special_tokens
        side = self.truncation_side if truncation_side is None else truncation_side
        if side not in _TRUNCATION_SIDES:
            raise ValueError(f"truncation_side must be one of {_TRUNCATION_SIDES}, got {side!r}")
        padding_side = self.padding_side if padding_side is None else padding_side
        if padding_side not in ("right", "left"):
            raise ValueError(f"padding_side must be 'right' or 'left', got {padding_side!r}")
        padding_strategy = PaddingStrategy(padding_strategy)
        truncation_strategy = TruncationStrategy(truncation_strategy)
        if return_token_type_ids is None:
            return_token_type_ids = "token_type_ids" in self.model_input_names
        if return_attention_mask is None:
            return_attention_mask = "attention_mask" in self.model_input_names
        if return_tensors is not None:
            return_tensors = TensorType(return_tensors).value

        if (
            split_special_tokens
            and text_pair is None
            and not is_split_into_words
            and isinstance(text, list)
            and text
            and (all(type(x) is str for x in text) or all(type(x) is bytes for x in text))
        ):  # fast path for the common batch of str (or of bytes)
            is_batched, units_b = True, None
            units_a = self._encode_strs(text) if type(text[0]) is str else text
        else:
            is_batched, firsts, seconds = self._split_batch(text, text_pair, is_split_into_words)
            units_a = [self._sequence_to_units(x, split_special_tokens) for x in firsts]
            units_b = None if seconds is None else [self._sequence_to_units(x, split_special_tokens) for x in seconds]

        batch_size = len(units_a)
        pair = units_b is not None
        len_a = np.fromiter((len(u) for u in units_a), dtype=np.int64, count=batch_size)
        len_b = (
            np.fromiter((len(u) for u in units_b), dtype=np.int64, count=batch_size)
            if pair
            else np.zeros(batch_size, dtype=np.int64)
        )
        n_special = (3 if pair else 2) if add_special_tokens else 0

        # --- truncation: how many units each sequence keeps (same arithmetic as transformers' truncate_sequences)
        keep_a, keep_b = len_a, len_b
        if truncation_strategy != TruncationStrategy.DO_NOT_TRUNCATE and max_length is not None:
            limit = min(int(max_length), 2**62)
            remove = np.maximum(len_a + len_b + n_special - limit, 0)
            rem_a = np.zeros_like(remove)
            rem_b = np.zeros_like(remove)
            if truncation_strategy == TruncationStrategy.ONLY_FIRST or (
                truncation_strategy == TruncationStrategy.LONGEST_FIRST and not pair
            ):
                rem_a = remove
            elif truncation_strategy == TruncationStrategy.LONGEST_FIRST:
                first_remove = np.minimum(np.abs(len_b - len_a), remove)
                second_remove = remove - first_remove
                a_longer = len_a > len_b
                rem_a = np.where(a_longer, first_remove + second_remove // 2, second_remove // 2)
                rem_b = remove - rem_a
            elif truncation_strategy == TruncationStrategy.ONLY_SECOND and pair:
                rem_b = remove
            keep_a = len_a - np.minimum(rem_a, len_a)
            keep_b = len_b - np.minimum(rem_b, len_b)

        if return_overflowing_tokens:
            if pair and truncation_strategy == TruncationStrategy.LONGEST_FIRST:
                raise ValueError(
                    "Not possible to return overflowing tokens for pair of sequences with the `longest_first` "
                    "truncation strategy. Please select another truncation strategy than `longest_first`, for "
                    "instance `only_second` or `only_first`."
                )
            if (keep_a != len_a).any() or (keep_b != len_b).any():  # something overflows: generic path
                return self._encode_with_overflow(
                    units_a, units_b, is_batched, side, add_special_tokens=add_special_tokens,
                    padding_strategy=padding_strategy, truncation_strategy=truncation_strategy,
                    max_length=max_length, stride=stride, pad_to_multiple_of=pad_to_multiple_of,
                    padding_side=padding_side, return_tensors=return_tensors,
                    return_token_type_ids=return_token_type_ids, return_attention_mask=return_attention_mask,
                    return_special_tokens_mask=return_special_tokens_mask, return_length=return_length,
                    verbose=verbose,
                )  # fmt: skip

        # --- gather the kept units of every sequence into one flat content stream
        head_a, tail_a = self._keep_ranges(len_a, keep_a, side)
        head_b, tail_b = self._keep_ranges(len_b, keep_b, side)
        all_bytes = all(not isinstance(u, np.ndarray) for u in units_a) and (
            not pair or all(not isinstance(u, np.ndarray) for u in units_b)
        )
        if not all_bytes:
            to_ids = lambda u: u if isinstance(u, np.ndarray) else self._bytes_to_ids(u)
            units_a = [to_ids(u) for u in units_a]
            units_b = None if not pair else [to_ids(u) for u in units_b]

        def gather(units, lengths, keep, head, tail):
            rows = list(units)
            for i in np.flatnonzero(keep != lengths).tolist():  # only the truncated sequences
                seq = memoryview(units[i]) if all_bytes else units[i]
                rows[i] = self._slices(seq, int(lengths[i]), int(head[i]), int(tail[i]))
            return rows

        rows_a = gather(units_a, len_a, keep_a, head_a, tail_a)
        rows_b = gather(units_b, len_b, keep_b, head_b, tail_b) if pair else None
        if not pair and not any(isinstance(r, list) for r in rows_a):
            pieces = rows_a
        else:
            pieces = []
            for i in range(batch_size):  # per sequence, never per byte
                for rows in (rows_a, rows_b) if pair else (rows_a,):
                    if isinstance(rows[i], list):
                        pieces.extend(rows[i])
                    else:
                        pieces.append(rows[i])
        if all_bytes:
            content = self._bytes_to_ids(b"".join(pieces))
        else:
            content = np.concatenate(pieces) if pieces else np.zeros(0, dtype=np.int64)

        # --- special tokens and padding
        row_len = keep_a + keep_b + n_special
        target = None
        if padding_strategy == PaddingStrategy.LONGEST:
            target = int(row_len.max()) if batch_size else 0
        elif padding_strategy == PaddingStrategy.MAX_LENGTH and max_length is not None:
            target = int(max_length)
        if target is not None and pad_to_multiple_of and target % pad_to_multiple_of:
            target = (target // pad_to_multiple_of + 1) * pad_to_multiple_of
        if verbose and max_length is None and batch_size and int(row_len.max()) > self.model_max_length:
            self._eventual_warn_about_too_long_sequence(range(int(row_len.max())), None, verbose)

        outputs: dict[str, np.ndarray] = {}
        rows = None
        if target is not None and (batch_size == 0 or int(row_len.max()) <= target):
            # --- padded matrix: scatter the content straight into place, then write the special tokens
            cols = np.arange(target, dtype=np.int64)
            offset = target - row_len if padding_side == "left" else np.zeros_like(row_len)
            end = offset + row_len
            valid = (cols >= offset[:, None]) & (cols < end[:, None])
            input_ids = np.full((batch_size, target), self.pad_token_id, dtype=np.int64)
            if add_special_tokens:
                row_idx = np.arange(batch_size)
                sep_cols = [offset + 1 + keep_a] + ([offset + 2 + keep_a + keep_b] if pair else [])
                is_content = valid.copy()
                for col in [offset, *sep_cols]:
                    is_content[row_idx, col] = False
                input_ids[is_content] = content
                input_ids[row_idx, offset] = self.cls_token_id
                for col in sep_cols:
                    input_ids[row_idx, col] = self.sep_token_id
            else:
                is_content = valid
                input_ids[valid] = content
            outputs["input_ids"] = input_ids
            if return_token_type_ids:
                if pair and add_special_tokens:  # as transformers: without special tokens, type ids are all 0
                    second = (cols >= (offset + 2 + keep_a)[:, None]) & (cols < end[:, None])
                    token_type_ids = second.astype(np.int64)
                else:
                    token_type_ids = np.zeros((batch_size, target), dtype=np.int64)
                if self.pad_token_type_id:
                    token_type_ids[~valid] = self.pad_token_type_id
                outputs["token_type_ids"] = token_type_ids
            if return_special_tokens_mask:
                outputs["special_tokens_mask"] = (~is_content).astype(np.int64)  # padding counts as special
            if return_attention_mask:
                outputs["attention_mask"] = valid.astype(np.int64)
        else:
            # --- ragged rows (no padding, or rows longer than the `max_length` padding): flat token stream
            starts = np.zeros(batch_size, dtype=np.int64)
            if batch_size > 1:
                np.cumsum(row_len[:-1], out=starts[1:])
            total = int(row_len.sum())
            if add_special_tokens:
                flat = np.empty(total, dtype=np.int64)
                is_content = np.ones(total, dtype=bool)
                sep_pos = [starts + 1 + keep_a] + ([starts + 2 + keep_a + keep_b] if pair else [])
                for pos in [starts, *sep_pos]:
                    is_content[pos] = False
                flat[is_content] = content
                flat[starts] = self.cls_token_id
                for pos in sep_pos:
                    flat[pos] = self.sep_token_id
            else:
                flat = content
                is_content = np.ones(total, dtype=bool)
            pad_values: dict[str, int] = {"input_ids": self.pad_token_id}
            streams: dict[str, np.ndarray] = {"input_ids": flat}
            if return_token_type_ids:
                delta = np.zeros(total + 1, dtype=np.int64)
                if pair and add_special_tokens:
                    np.add.at(delta, starts + keep_a + 2, 1)
                    np.add.at(delta, starts + row_len, -1)
                streams["token_type_ids"] = np.cumsum(delta[:-1])
                pad_values["token_type_ids"] = self.pad_token_type_id
            if return_special_tokens_mask:
                streams["special_tokens_mask"] = (~is_content).astype(np.int64)
                pad_values["special_tokens_mask"] = 1
            bounds = np.concatenate([starts, [total]]).tolist()
            rows = {
                key: [stream[bounds[i] : bounds[i + 1]] for i in range(batch_size)] for key, stream in streams.items()
            }
            if return_attention_mask:
                rows["attention_mask"] = [np.ones(int(n), dtype=np.int64) for n in row_len]
                pad_values["attention_mask"] = 0
            if target is not None:  # pad the shorter rows only, like transformers does
                for key, seqs in rows.items():
                    for i, seq in enumerate(seqs):
                        if len(seq) < target:
                            fill = np.full(target - len(seq), pad_values[key], dtype=np.int64)
                            seqs[i] = np.concatenate([seq, fill] if padding_side == "right" else [fill, seq])
            lengths = {len(r) for r in rows["input_ids"]}
            if len(lengths) <= 1:  # all rows have the same length after all: a proper matrix
                width = lengths.pop() if lengths else 0
                for key, seqs in rows.items():
                    outputs[key] = np.stack(seqs) if seqs else np.zeros((0, width), dtype=np.int64)
                rows = None

        return self._finish(outputs, rows, row_len, is_batched, return_tensors, return_length)

    def _finish(self, outputs, rows, row_len, is_batched, return_tensors, return_length) -> BatchEncoding:
        """Build the BatchEncoding: Python lists when `return_tensors` is None, else int64 NumPy/torch tensors."""
        if rows is not None:  # ragged
            if return_tensors == "np" and is_batched:  # as transformers: an object array of 1-D int64 arrays
                outputs = {}
                for key, seqs in rows.items():
                    outputs[key] = np.empty(len(seqs), dtype=object)
                    outputs[key][:] = seqs
            elif return_tensors is not None and is_batched:
                raise ValueError(
                    "Unable to create tensor from sequences of different lengths: activate padding (padding=True) "
                    "and/or truncation (truncation=True, max_length=...) to return batched tensors."
                )
            else:
                outputs = {k: v if is_batched else v[0][None, :] for k, v in rows.items()}
        data: dict[str, Any] = {}
        key_order = ["input_ids", "token_type_ids", "special_tokens_mask", "attention_mask"]
        for key in key_order:
            if key not in outputs:
                continue
            value = outputs[key]
            if return_tensors is None:
                if isinstance(value, list):
                    data[key] = [v.tolist() for v in value]
                else:
                    data[key] = value.tolist() if is_batched else value[0].tolist()
            else:
                data[key] = value
        if return_length:
            # As transformers: a batch reports each sequence's unpadded length; a single input its final length.
            lengths = row_len if is_batched else np.array([len(outputs["input_ids"][0])], dtype=np.int64)
            if return_tensors is None:
                data["length"] = lengths.tolist() if is_batched else int(lengths[0])
            else:
                data["length"] = lengths.copy()
        return self._to_batch_encoding(data, return_tensors)

    @staticmethod
    def _to_batch_encoding(data: dict[str, Any], return_tensors: str | None) -> BatchEncoding:
        if return_tensors == "pt":
            import torch

            return BatchEncoding({k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in data.items()})
        if return_tensors is None or return_tensors == "np":
            return BatchEncoding(data)
        return BatchEncoding(data, tensor_type=return_tensors)

    def _encode_with_overflow(self, units_a, units_b, is_batched, side, truncation_strategy, **kwargs) -> BatchEncoding:
        """`return_overflowing_tokens=True`: delegate to the generic (slower, list-based) transformers path."""
        if side == "head+tail":
            raise ValueError("truncation_side='head+tail' cannot be combined with return_overflowing_tokens=True.")
        to_ids = lambda u: (u if isinstance(u, np.ndarray) else self._bytes_to_ids(u)).tolist()
        ids_a = [to_ids(u) for u in units_a]
        ids_b = None if units_b is None else [to_ids(u) for u in units_b]
        previous_side = self.truncation_side
        self.truncation_side = side
        try:
            if is_batched:
                return super()._encode_plus(
                    ids_a, ids_b, truncation_strategy=truncation_strategy, return_overflowing_tokens=True, **kwargs
                )
            return self.prepare_for_model(
                ids_a[0],
                pair_ids=None if ids_b is None else ids_b[0],
                add_special_tokens=kwargs["add_special_tokens"],
                padding=kwargs["padding_strategy"].value,
                truncation=truncation_strategy.value,
                max_length=kwargs["max_length"],
                stride=kwargs["stride"],
                pad_to_multiple_of=kwargs["pad_to_multiple_of"],
                padding_side=kwargs["padding_side"],
                return_tensors=kwargs["return_tensors"],
                prepend_batch_axis=True,
                return_attention_mask=kwargs["return_attention_mask"],
                return_token_type_ids=kwargs["return_token_type_ids"],
                return_overflowing_tokens=True,
                return_special_tokens_mask=kwargs["return_special_tokens_mask"],
                return_length=kwargs["return_length"],
                verbose=kwargs["verbose"],
            )
        finally:
            self.truncation_side = previous_side

    # ------------------------------------------------------------------ padding (DataCollatorWithPadding)

    def pad(
        self,
        encoded_inputs,
        padding: bool | str | PaddingStrategy = True,
        max_length: int | None = None,
        pad_to_multiple_of: int | None = None,
        padding_side: str | None = None,
        return_attention_mask: bool | None = None,
        return_tensors: str | TensorType | None = None,
        verbose: bool = True,
    ) -> BatchEncoding:
        """Same contract as transformers' `pad`, with a vectorised path for batches of 1-D sequences."""
        fast = self._fast_pad(
            encoded_inputs, padding, max_length, pad_to_multiple_of, padding_side, return_attention_mask,
            return_tensors, verbose,
        )  # fmt: skip
        if fast is not None:
            return fast
        return super().pad(
            encoded_inputs,
            padding=padding,
            max_length=max_length,
            pad_to_multiple_of=pad_to_multiple_of,
            padding_side=padding_side,
            return_attention_mask=return_attention_mask,
            return_tensors=return_tensors,
            verbose=verbose,
        )

    def _fast_pad(
        self, encoded_inputs, padding, max_length, pad_to_multiple_of, padding_side, return_attention_mask,
        return_tensors, verbose,
    ) -> BatchEncoding | None:  # fmt: skip
        """Vectorised `pad`; returns None when the input is not a plain batch of 1-D sequences (generic path)."""
        if isinstance(encoded_inputs, (list, tuple)):
            if not encoded_inputs or not all(isinstance(e, Mapping) for e in encoded_inputs):
                return None
            keys = list(encoded_inputs[0].keys())
            if any(list(e.keys()) != keys for e in encoded_inputs):
                return None
            batch = {k: [e[k] for e in encoded_inputs] for k in keys}
        elif isinstance(encoded_inputs, Mapping):
            batch = dict(encoded_inputs)
        else:
            return None
        main = self.model_input_names[0]
        if main not in batch:
            return None
        padding_strategy, _, max_length, _ = self._get_padding_truncation_strategies(
            padding=padding, max_length=max_length, verbose=verbose
        )
        padding_side = self.padding_side if padding_side is None else padding_side
        if padding_side not in ("right", "left"):
            raise ValueError(f"padding_side must be 'right' or 'left', got {padding_side!r}")

        pad_values = {
            main: self.pad_token_id,
            "attention_mask": 0,
            "token_type_ids": self.pad_token_type_id,
            "special_tokens_mask": 1,
        }
        inferred = None
        rows_by_key: dict[str, list[np.ndarray]] = {}
        for key in pad_values:
            if key not in batch:
                continue
            values = batch[key]
            if hasattr(values, "ndim") and hasattr(values, "shape"):  # a 2-D tensor/array: rows
                if values.ndim != 2:
                    return None
                inferred = inferred or ("np" if isinstance(values, np.ndarray) else "pt")
                values = list(values)
            if not isinstance(values, (list, tuple)) or not values:
                return None
            rows = []
            for row in values:
                if isinstance(row, np.ndarray):
                    inferred = inferred or "np"
                elif hasattr(row, "detach") and hasattr(row, "cpu"):  # torch tensor
                    inferred = inferred or "pt"
                    row = row.detach().cpu().numpy()
                elif not isinstance(row, (list, tuple)):
                    return None
                arr = np.asarray(row)
                if arr.ndim != 1 or (arr.size and not np.issubdtype(arr.dtype, np.integer)):
                    return None
                rows.append(arr.astype(np.int64, copy=False))
            rows_by_key[key] = rows
        lengths = np.fromiter((len(r) for r in rows_by_key[main]), dtype=np.int64, count=len(rows_by_key[main]))
        for rows in rows_by_key.values():
            if len(rows) != len(lengths) or any(len(r) != n for r, n in zip(rows, lengths)):
                return None
        if return_tensors is None:
            return_tensors = inferred
        elif return_tensors is not None:
            return_tensors = TensorType(return_tensors).value
        if padding_strategy == PaddingStrategy.DO_NOT_PAD:
            target = 0
        else:
            target = int(lengths.max()) if padding_strategy == PaddingStrategy.LONGEST else max_length
        if target is None:
            return None
        if pad_to_multiple_of and target % pad_to_multiple_of:
            target = (target // pad_to_multiple_of + 1) * pad_to_multiple_of
        if padding_strategy == PaddingStrategy.DO_NOT_PAD or int(lengths.max()) > target:
            # rows stay ragged (no padding, or rows longer than max_length): transformers' generic path, except for
            # torch tensors of different lengths, which it would turn into a (B, 0) tensor when the first row is empty
            if return_tensors == "pt" and len({max(int(n), target) for n in lengths}) > 1:
                raise ValueError(
                    "Unable to create tensor from sequences of different lengths: activate padding (padding=True) "
                    "and/or truncation to return a batched tensor."
                )
            return None

        if return_attention_mask is None:
            return_attention_mask = "attention_mask" in self.model_input_names
        batch_size = len(lengths)
        cols = np.arange(target, dtype=np.int64)
        offset = target - lengths if padding_side == "left" else np.zeros_like(lengths)
        valid = (cols >= offset[:, None]) & (cols < (offset + lengths)[:, None])
        out: dict[str, Any] = {}
        for key, rows in rows_by_key.items():
            matrix = np.full((batch_size, target), pad_values[key], dtype=np.int64)
            if batch_size:
                matrix[valid] = np.concatenate(rows)
            out[key] = matrix
        if return_attention_mask and "attention_mask" not in out:
            out["attention_mask"] = valid.astype(np.int64)

        data: dict[str, Any] = {}
        for key in batch:
            if key in out:
                data[key] = out[key] if return_tensors is not None else out[key].tolist()
            else:
                data[key] = batch[key]
        if "attention_mask" in out and "attention_mask" not in data:
            data["attention_mask"] = (
                out["attention_mask"] if return_tensors is not None else out["attention_mask"].tolist()
            )
        if return_tensors == "pt":
            import torch

            data = {k: torch.from_numpy(v) if isinstance(v, np.ndarray) else v for k, v in data.items()}
        return BatchEncoding(data, tensor_type=return_tensors)

    # ------------------------------------------------------------------ decoding

    @staticmethod
    def _as_id_array(ids: Any) -> np.ndarray:
        if hasattr(ids, "detach") and hasattr(ids, "cpu"):  # torch tensor
            ids = ids.detach().cpu().numpy()
        if isinstance(ids, (int, np.integer)):
            ids = [ids]
        arr = np.asarray(ids)
        if arr.size == 0:
            return np.zeros(0, dtype=np.int64)
        if not np.issubdtype(arr.dtype, np.integer):
            raise TypeError(f"Token ids must be integers, got an array of dtype {arr.dtype}.")
        return arr.astype(np.int64, copy=False)

    def _ids_to_bytes(self, ids: Any, keep_special_text: bool) -> bytes:
        """Token ids -> bytes. Special/added ids become their UTF-8 text if `keep_special_text`, else are dropped."""
        arr = self._as_id_array(ids)
        if arr.ndim != 1:
            raise ValueError(f"Expected a 1-D sequence of token ids, got shape {arr.shape}.")
        is_byte = (arr >= self.byte_offset) & (arr < self.vocab_size)
        if is_byte.all():
            return (arr - self.byte_offset).astype(np.uint8).tobytes()
        other = np.flatnonzero(~is_byte)
        unknown = [int(i) for i in np.unique(arr[other]) if int(i) not in self._added_tokens_decoder]
        if unknown:
            raise ValueError(
                f"Token ids {unknown[:10]} are neither byte ids [{self.byte_offset}, {self.vocab_size}) nor "
                "special/added token ids (e.g. replace label padding -100 before decoding)."
            )
        byte_values = np.where(is_byte, arr - self.byte_offset, 0).astype(np.uint8)
        if not keep_special_text:
            return byte_values[is_byte].tobytes()
        # Runs of identical consecutive non-byte ids (e.g. padding) are handled together: the loop is per run.
        values = arr[other]
        breaks = np.flatnonzero((np.diff(other) != 1) | (values[1:] != values[:-1])) + 1
        first = np.concatenate([[0], breaks])
        last = np.concatenate([breaks, [len(other)]]) - 1
        out, pos = [], 0
        for start, end in zip(other[first].tolist(), other[last].tolist()):
            out.append(byte_values[pos:start].tobytes())
            out.append(self._added_tokens_decoder[int(arr[start])].content.encode("utf-8") * (end - start + 1))
            pos = end + 1
        out.append(byte_values[pos:].tobytes())
        return b"".join(out)

    def _decode(
        self,
        token_ids: int | list[int],
        skip_special_tokens: bool = False,
        clean_up_tokenization_spaces: bool | None = None,
        **kwargs,
    ) -> str:
        arr = self._as_id_array(token_ids)
        if skip_special_tokens:
            arr = arr[~np.isin(arr, np.asarray(self.all_special_ids, dtype=np.int64))]
        text = self._ids_to_bytes(arr, keep_special_text=True).decode("utf-8", errors="replace")
        if (
            clean_up_tokenization_spaces
            if clean_up_tokenization_spaces is not None
            else self.clean_up_tokenization_spaces
        ):
            text = self.clean_up_tokenization(text)
        return text

    def decode(self, token_ids, skip_special_tokens: bool = False, **kwargs) -> str | list[str]:
        """Ids -> text (UTF-8; invalid sequences become U+FFFD). A 2-D input (batch) gives a list of strings."""
        if hasattr(token_ids, "ndim") and hasattr(token_ids, "shape"):  # NumPy array / torch tensor
            arr = self._as_id_array(token_ids)
            if arr.ndim == 2:
                return [self._decode(row, skip_special_tokens=skip_special_tokens, **kwargs) for row in arr]
            return self._decode(arr.reshape(-1), skip_special_tokens=skip_special_tokens, **kwargs)
        return super().decode(token_ids, skip_special_tokens=skip_special_tokens, **kwargs)

    def decode_bytes(self, token_ids) -> bytes | list[bytes]:
        """Ids -> the raw bytes they encode, skipping special/added token ids (exact round trip of binary input).

        A 2-D input (list of lists, array or tensor) gives a list of `bytes`, one per row.
        """
        if hasattr(token_ids, "ndim") and hasattr(token_ids, "shape"):
            arr = self._as_id_array(token_ids)
            if arr.ndim == 2:
                return [self._ids_to_bytes(row, keep_special_text=False) for row in arr]
            return self._ids_to_bytes(arr.reshape(-1), keep_special_text=False)
        if isinstance(token_ids, (list, tuple)) and token_ids and not isinstance(token_ids[0], (int, np.integer)):
            return [self.decode_bytes(row) for row in token_ids]
        return self._ids_to_bytes(token_ids, keep_special_text=False)


__all__ = ["PerceiverByteTokenizer"]
