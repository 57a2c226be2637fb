"""Byte-level tokenizer for the Perceiver byte model, in the shape of transformers' ByT5 tokenizer.

A byte tokenizer is its id scheme; the ids are transformers' `PerceiverTokenizer`'s, so checkpoints and data move
freely between the two:

    [PAD]=0  [BOS]=1  [EOS]=2  [MASK]=3  [CLS]=4  [SEP]=5  byte b -> b + 6      (262 ids in all)

A `str` is encoded as UTF-8; `bytes`, `bytearray` and `memoryview` are taken byte for byte, so binary files can be
fed to the model. With special tokens a sequence is `[CLS] bytes [SEP]`, a pair `[CLS] a [SEP] b [SEP]`.

Truncation, padding, pairs and overflow are transformers' `PreTrainedTokenizer`'s. This class adds a third
`truncation_side`, `"head+tail"` (keep both ends of a long input, where file headers, trailers and the last lines
of code are), and one vectorised fast path for the common call, a batch of str/bytes, which gives exactly what the
generic path gives. There is no length cap by default (`model_max_length` is transformers' "no limit").

The module goes to the Hub as remote code: it imports only the standard library, NumPy, transformers and (for
`return_tensors="pt"`, lazily) torch, and does no I/O.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Mapping

import numpy as np
from transformers.tokenization_python import AddedToken, PreTrainedTokenizer
from transformers.tokenization_utils_base import BatchEncoding, PaddingStrategy, TruncationStrategy
from transformers.utils import is_torch_tensor, to_py_obj

_BYTES_LIKE = (bytes, bytearray, memoryview)
_TEXT = (str, *_BYTES_LIKE)
_TRUNCATION_SIDES = ("right", "left", "head+tail")


def _check_truncation_side(side: str) -> None:
    if side not in _TRUNCATION_SIDES:
        raise ValueError(f"truncation_side must be one of {_TRUNCATION_SIDES}, got {side!r}")


def _type_error(value) -> TypeError:
    return TypeError(
        "PerceiverByteTokenizer expects str (encoded as UTF-8), bytes, bytearray or memoryview (taken as raw bytes), a "
        f"list of int token ids, or a list/tuple of those for a batch; got {type(value).__name__}: {value!r:.80}"
    )


def _holds_torch_rows(encoded_inputs) -> bool:
    """Whether `pad()` was given torch tensors (it then returns torch tensors, as transformers' `pad` does)."""
    features = encoded_inputs[0] if isinstance(encoded_inputs, (list, tuple)) and encoded_inputs else encoded_inputs
    rows = features.get("input_ids") if isinstance(features, Mapping) else None
    return is_torch_tensor(rows[0] if isinstance(rows, (list, tuple)) and rows else rows)


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
            The six special tokens, ids 0..5 in this order. Only their spelling can change.
        model_max_length (`int`, *optional*):
            Length for `truncation=True` / `padding="max_length"` without `max_length`. Defaults to transformers'
            "no limit" value `int(1e30)` (then `truncation=True` alone truncates nothing).
        split_special_tokens (`bool`, *optional*, defaults to `True`):
            `True`: every input byte is a byte token, so a text that contains `"[MASK]"` is encoded as its six bytes
            (what raw binary input needs). `False` (also per call): special and added token strings in the input
            become their ids, as in `PerceiverTokenizer`; that is how a text marks the byte a fill-mask model fills.
        truncation_side (`str`, *optional*, defaults to `"right"`):
            `"right"` (keep the start), `"left"` (keep the end) or `"head+tail"` (keep both ends). Also per call:
            `tok(texts, truncation=True, max_length=n, truncation_side="head+tail")`.
        truncation_head_fraction (`float`, *optional*, defaults to 0.5):
            With `"head+tail"`, the share of a truncated sequence taken from its start (rounded half up).
        encoding_errors (`str`, *optional*, defaults to `"surrogatepass"`):
            Error handler of `str.encode("utf-8")`. It only decides what happens to lone surrogates (e.g. from a JSON
            `"\\ud800"` escape), which UTF-8 cannot represent: `"surrogatepass"` writes their 3-byte sequence, so
            nothing is lost (`decode_bytes` returns those bytes, `decode` shows U+FFFD); `"strict"` raises a
            `ValueError`; `"replace"` writes `?`.
    """

    model_input_names = ["input_ids", "attention_mask"]  # noqa: RUF012 - same convention as transformers

    #: Byte b has id b + `byte_offset`: the ids below are the six special tokens.
    byte_offset = 6

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
        _check_truncation_side(truncation_side)
        if not 0.0 <= float(truncation_head_fraction) <= 1.0:
            raise ValueError(f"truncation_head_fraction must be in [0, 1], got {truncation_head_fraction!r}")
        "".encode("utf-8", errors=encoding_errors)  # an unknown handler name fails here (LookupError), not later
        names = ("pad_token", "bos_token", "eos_token", "mask_token", "cls_token", "sep_token")
        tokens = [
            AddedToken(t, lstrip=False, rstrip=False, normalized=False, special=True) if isinstance(t, str) else t
            for t in (pad_token, bos_token, eos_token, mask_token, cls_token, sep_token)
        ]
        # The special tokens are not in the byte vocabulary: they own ids 0..5.
        self._added_tokens_decoder = dict(enumerate(tokens))
        self.truncation_head_fraction = float(truncation_head_fraction)
        self.encoding_errors = encoding_errors
        super().__init__(
            **dict(zip(names, tokens)),
            model_max_length=model_max_length,
            split_special_tokens=split_special_tokens,
            special_tokens_pattern="cls_sep",  # the base class builds [CLS] a [SEP] (b [SEP]) and its masks
            truncation_side="right",  # the base class knows only "right"/"left": the real side is set below
            truncation_head_fraction=self.truncation_head_fraction,
            encoding_errors=encoding_errors,
            **kwargs,
        )
        self.truncation_side = truncation_side
        self.init_kwargs["truncation_side"] = truncation_side

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

    # ------------------------------------------------------------------ the id scheme

    @property
    def vocab_size(self) -> int:
        """262: the 6 special ids and the 256 byte values (tokens added later with `add_tokens` come on top)."""
        return self.byte_offset + 256

    def get_vocab(self) -> dict[str, int]:
        # As PerceiverTokenizer: byte b is the one-character token chr(b).
        return {chr(b): b + self.byte_offset for b in range(256)} | self.added_tokens_encoder

    def _to_bytes(self, text) -> bytes | bytearray:
        """The bytes of one input: the UTF-8 of a `str`, a bytes-like object as it is."""
        if isinstance(text, str):
            try:
                return text.encode("utf-8", self.encoding_errors)
            except UnicodeEncodeError as err:
                raise ValueError(
                    f"Cannot encode text as UTF-8 with encoding_errors={self.encoding_errors!r}: {err}. Text with lone "
                    "surrogates is not valid Unicode; clean it, or build the tokenizer with "
                    "encoding_errors='surrogatepass' (keeps them as bytes) or 'replace'."
                ) from err
        if isinstance(text, (bytes, bytearray)):
            return text
        if isinstance(text, memoryview):
            return text.tobytes()
        raise _type_error(text)

    def tokenize(self, text, split_special_tokens: bool | None = None, **kwargs) -> list[str]:
        """The byte tokens of a `str` (its UTF-8) or of `bytes` (as they are). With `split_special_tokens=False`,
        each special or added token string in the input stays whole, one token."""
        if split_special_tokens is None:
            split_special_tokens = self.split_special_tokens
        data = self._to_bytes(text)
        added = sorted((t for t in self._added_tokens_encoder if t), key=len, reverse=True)  # longest match first
        if split_special_tokens or not added:
            return self._tokenize(data)
        pattern = b"(" + b"|".join(re.escape(t.encode("utf-8")) for t in added) + b")"
        tokens = []
        for i, piece in enumerate(re.split(pattern, bytes(data))):  # the group is kept: odd pieces are token strings
            tokens += [piece.decode("utf-8")] if i % 2 else self._tokenize(piece)
        return tokens

    def _tokenize(self, text) -> list[str]:
        # Latin-1 maps byte b to chr(b): one token per byte.
        return list(self._to_bytes(text).decode("latin-1"))

    def _convert_token_to_id(self, token: str) -> int | None:
        return ord(token) + self.byte_offset if len(token) == 1 and ord(token) < 256 else self.unk_token_id

    def _convert_id_to_token(self, index: int) -> str:
        if not self.byte_offset <= index < self.vocab_size:
            raise self._unknown_ids([index])
        return chr(index - self.byte_offset)

    def _unknown_ids(self, ids) -> ValueError:
        return ValueError(
            f"Token ids {sorted(ids)[:10]} are neither byte ids [{self.byte_offset}, {self.vocab_size}) nor "
            "special/added token ids (e.g. replace label padding -100 before decoding)."
        )

    def convert_tokens_to_string(self, tokens: list[str]) -> str:
        """Byte tokens give their byte, special and added tokens their UTF-8; the whole is decoded as UTF-8, with
        U+FFFD for invalid bytes."""
        added = self._added_tokens_encoder
        is_byte = lambda t: t not in added and len(t) == 1 and ord(t) < 256  # noqa: E731
        data = b"".join(t.encode("latin-1" if is_byte(t) else "utf-8") for t in tokens)
        return data.decode("utf-8", errors="replace")

    def decode_bytes(self, token_ids) -> bytes | list[bytes]:
        """Ids -> the raw bytes they encode, without special and added tokens: the exact inverse of encoding bytes.
        A batch (2-D list, array or tensor) gives one `bytes` per row."""
        token_ids = to_py_obj(token_ids)
        if isinstance(token_ids, int):
            token_ids = [token_ids]
        if token_ids and isinstance(token_ids[0], (list, tuple)):
            return [self.decode_bytes(row) for row in token_ids]
        ids = np.asarray(token_ids, dtype=np.int64)
        is_byte = (ids >= self.byte_offset) & (ids < self.vocab_size)
        unknown = set(ids[~is_byte].tolist()) - self._added_tokens_decoder.keys()
        if unknown:
            raise self._unknown_ids(unknown)
        return (ids[is_byte] - self.byte_offset).astype(np.uint8).tobytes()

    # ------------------------------------------------------------------ truncation

    @contextlib.contextmanager
    def _truncating_from(self, side: str):
        """`self.truncation_side = side` for the duration (transformers' truncation reads the attribute)."""
        _check_truncation_side(side)
        previous, self.truncation_side = self.truncation_side, side
        try:
            yield
        finally:
            self.truncation_side = previous

    def _cut(self, seq, keep: int):
        """The `keep` items of `seq` (a list or bytes) that truncation keeps: its start ("right"), its end ("left")
        or both ends ("head+tail", `truncation_head_fraction` of them from the start)."""
        if self.truncation_side == "right":
            head = keep
        elif self.truncation_side == "left":
            head = 0
        else:
            head = int(keep * self.truncation_head_fraction + 0.5)  # rounded half up
        return seq[:head] + seq[len(seq) - (keep - head) :]

    def truncate_sequences(self, ids, pair_ids=None, num_tokens_to_remove=0, truncation_strategy="longest_first",
                           stride=0):  # fmt: skip
        """transformers' truncation, plus "head+tail", and a fix: a pair truncated longest-first from the left keeps an
        empty second sequence (transformers makes it None, which drops its [SEP]). In both, each sequence keeps as
        many ids as with "right", cut by `_cut`; the overflow of a pair truncated longest-first is empty anyway."""
        pair_longest_first = pair_ids is not None and truncation_strategy == TruncationStrategy.LONGEST_FIRST
        if self.truncation_side == "right" or (self.truncation_side == "left" and not pair_longest_first):
            return super().truncate_sequences(ids, pair_ids, num_tokens_to_remove, truncation_strategy, stride)
        with self._truncating_from("right"):
            kept, kept_pair, _ = super().truncate_sequences(ids, pair_ids, num_tokens_to_remove, truncation_strategy)
        return self._cut(ids, len(kept)), pair_ids and self._cut(pair_ids, len(kept_pair)), []

    def prepare_for_model(self, ids, pair_ids=None, add_special_tokens=True, padding=False, truncation=False,
                          max_length=None, stride=0, **kwargs) -> BatchEncoding:  # fmt: skip
        if max_length == 0:  # transformers reads max_length=0 as "no limit" here; it means that no id fits
            strategy = self._get_padding_truncation_strategies(truncation=truncation, max_length=0)[1]
            ids, pair_ids, _ = self.truncate_sequences(ids, pair_ids, len(ids) + len(pair_ids or []), strategy)
        return super().prepare_for_model(ids, pair_ids, add_special_tokens, padding, truncation, max_length, stride,
                                         **kwargs)  # fmt: skip

    # ------------------------------------------------------------------ encoding

    def __call__(self, text=None, text_pair=None, text_target=None, *args, **kwargs) -> BatchEncoding:
        if text is None and text_target is None:
            raise _type_error(None)
        return super().__call__(text, text_pair, text_target, *args, **kwargs)

    def _as_input(self, value, split_special_tokens):
        """`value` for transformers' generic path, which takes str, ids and lists of them: bytes-like inputs become
        their ids; anything else that is not a text raises a `TypeError`."""
        if isinstance(value, _BYTES_LIKE):
            ids = self.convert_tokens_to_ids(self.tokenize(value, split_special_tokens=split_special_tokens))
            return ids or ""  # transformers reads an empty id list as an empty batch: "" is the empty sequence
        if isinstance(value, str) or (isinstance(value, (list, tuple)) and all(isinstance(i, int) for i in value)):
            return value
        if isinstance(value, (list, tuple)):  # a batch, or a (text, text_pair) tuple in one
            return type(value)(self._as_input(v, split_special_tokens) for v in value)
        raise _type_error(value)

    def _encode_plus(self, text, text_pair=None, truncation_side=None, **kwargs) -> BatchEncoding:
        """`__call__`'s and `encode`'s work: the fast path for a batch of str/bytes, else the generic path."""
        if kwargs.get("return_offsets_mapping"):
            raise NotImplementedError("return_offsets_mapping is not available: token i is byte i - 1 of the input "
                                      "(after [CLS]).")  # fmt: skip
        side = self.truncation_side if truncation_side is None else truncation_side
        if side == "head+tail" and kwargs.get("return_overflowing_tokens"):
            raise ValueError("truncation_side='head+tail' cannot be combined with return_overflowing_tokens=True.")
        split = kwargs.get("split_special_tokens", self.split_special_tokens)
        with self._truncating_from(side):
            if (
                isinstance(text, (list, tuple))
                and all(isinstance(t, _TEXT) for t in text)
                and (split or not text)  # with split_special_tokens=False, the generic path finds the token strings
                and (text_pair is None or (not text and text_pair == []))  # no pairs (an empty batch of them is fine)
                and not kwargs.get("is_split_into_words")
                and not kwargs.get("return_overflowing_tokens")
            ):
                return self._encode_batch(text, **kwargs)
            text = self._as_input(text, split)
            text_pair = None if text_pair is None else self._as_input(text_pair, split)
            if kwargs.get("return_overflowing_tokens"):  # transformers leaves the overflow out of tensors itself
                return super()._encode_plus(text, text_pair, **kwargs)
            return_tensors = kwargs.pop("return_tensors", None)
            encoding = super()._encode_plus(text, text_pair, return_tensors=None, **kwargs)
        rows = encoding["input_ids"]
        return self._tensors(encoding, return_tensors, prepend_batch_axis=not (rows and isinstance(rows[0], list)))

    def _encode_batch(self, texts, add_special_tokens=True, padding_strategy=PaddingStrategy.DO_NOT_PAD,
                      truncation_strategy=TruncationStrategy.DO_NOT_TRUNCATE, max_length=None, pad_to_multiple_of=None,
                      padding_side=None, return_tensors=None, return_token_type_ids=None, return_attention_mask=None,
                      return_special_tokens_mask=False, return_length=False, verbose=True, **_):  # fmt: skip
        """The fast path, vectorised with NumPy: exactly what the generic path gives (`prepare_for_model` per text,
        then `pad`), with no Python loop per byte. The whole batch is one byte buffer, scattered into place."""
        padding_side = padding_side or self.padding_side
        if padding_side not in ("right", "left"):
            raise ValueError(f"padding_side must be 'right' or 'left', got {padding_side!r}")
        data = [self._to_bytes(t) for t in texts]
        n_special = 2 if add_special_tokens else 0
        length = np.fromiter(map(len, data), dtype=np.int64, count=len(data))
        if max_length is not None and truncation_strategy in (TruncationStrategy.LONGEST_FIRST,
                                                              TruncationStrategy.ONLY_FIRST):  # fmt: skip
            length = np.minimum(length, max(max_length - n_special, 0))
            data = [d if n == len(d) else self._cut(d, n) for d, n in zip(data, length.tolist())]
        length = length + n_special  # each row's tokens, before padding
        if length.size:  # transformers' warning about a sequence too long for the model (it reads only the length)
            self._eventual_warn_about_too_long_sequence(range(int(length.max())), max_length, verbose)

        # Padding, as transformers' `pad`: to the longest row or to max_length, rounded up to a multiple of
        # pad_to_multiple_of; a row longer than that stays as it is.
        target = None
        if padding_strategy == PaddingStrategy.LONGEST:
            target = int(length.max(initial=0))
        elif padding_strategy == PaddingStrategy.MAX_LENGTH:
            target = max_length
        if target is not None and pad_to_multiple_of and target % pad_to_multiple_of:
            target += pad_to_multiple_of - target % pad_to_multiple_of
        width = length if target is None else np.maximum(length, target)

        # All rows, padding included, as one flat array of slots (flat, not rows x longest, so that one long row costs
        # only its own length). A row is three runs of slots: padding before its tokens, the tokens, padding after.
        before = width - length if padding_side == "left" else np.zeros_like(width)
        runs = np.stack([before, length, width - length - before], axis=1).ravel()
        is_token = np.repeat(np.tile([False, True, False], len(width)), runs)
        start = np.cumsum(width) - width + before  # each row's first token
        ids = np.full(is_token.size, self.pad_token_id, dtype=np.int64)
        is_byte = is_token
        if add_special_tokens:
            is_byte = is_token.copy()
            is_byte[start] = is_byte[start + length - 1] = False
            ids[start] = self.cls_token_id
            ids[start + length - 1] = self.sep_token_id
        ids[is_byte] = np.add(np.frombuffer(b"".join(data), dtype=np.uint8), self.byte_offset, dtype=np.int64)
        outputs = {"input_ids": ids}
        if return_token_type_ids or (return_token_type_ids is None and "token_type_ids" in self.model_input_names):
            outputs["token_type_ids"] = np.where(is_token, 0, self.pad_token_type_id)
        if return_special_tokens_mask:
            outputs["special_tokens_mask"] = (~is_byte).astype(np.int64)  # padding counts as special
        if return_attention_mask or (return_attention_mask is None and "attention_mask" in self.model_input_names):
            outputs["attention_mask"] = is_token.astype(np.int64)

        if width.size and (width != width[0]).any():  # rows of different lengths: lists of rows, as transformers
            bounds = np.cumsum(width)[:-1]
            encoding = {key: [row.tolist() for row in np.split(flat, bounds)] for key, flat in outputs.items()}
        else:
            shape = (len(width), int(width[0]) if width.size else target or 0)
            encoding = {key: flat.reshape(shape) for key, flat in outputs.items()}
            if return_tensors is None:
                encoding = {key: matrix.tolist() for key, matrix in encoding.items()}
        if return_length:
            encoding["length"] = length.tolist()
        return self._tensors(encoding, return_tensors)

    @staticmethod
    def _tensors(encoding, return_tensors, prepend_batch_axis: bool = False) -> BatchEncoding:
        """`BatchEncoding(encoding, tensor_type=return_tensors)`, except that rows of different lengths never become
        a torch tensor: transformers would build a (B, 0) tensor of them when the first row is empty, silently
        dropping every id, and gives an unclear error otherwise."""
        rows = encoding["input_ids"]
        if return_tensors == "pt":
            if isinstance(rows, list) and rows and isinstance(rows[0], list) and len(set(map(len, rows))) > 1:
                raise ValueError(
                    "Unable to create tensor from sequences of different lengths: activate padding (padding=True) "
                    "and/or truncation (truncation=True, max_length=...) to return a batched tensor."
                )
            import torch

            # The fast path's NumPy arrays are shared, not copied.
            encoding = {k: torch.from_numpy(v) if isinstance(v, np.ndarray) else v for k, v in encoding.items()}
        return BatchEncoding(dict(encoding), tensor_type=return_tensors, prepend_batch_axis=prepend_batch_axis)

    def pad(self, encoded_inputs, padding=True, max_length=None, pad_to_multiple_of=None, padding_side=None,
            return_attention_mask=None, return_tensors=None, verbose=True) -> BatchEncoding:  # fmt: skip
        """transformers' `pad` (what `DataCollatorWithPadding` calls), with torch tensors built by `_tensors`."""
        args = (padding, max_length, pad_to_multiple_of, padding_side, return_attention_mask)
        if return_tensors == "pt" or (return_tensors is None and _holds_torch_rows(encoded_inputs)):
            return self._tensors(super().pad(to_py_obj(encoded_inputs), *args, verbose=verbose), "pt")
        return super().pad(encoded_inputs, *args, return_tensors=return_tensors, verbose=verbose)


__all__ = ["PerceiverByteTokenizer"]
