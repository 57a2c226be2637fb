"""Configuration of the Perceiver byte model (Jaegle et al., 2021, "Perceiver: General Perception with Iterative
Attention"), applied to raw byte arrays.

A learned latent array (N x D) cross-attends to the byte array (M x C), then a latent Transformer (L self-attention
layers) refines it; cross-attend + latent Transformer repeat R times, with weights optionally shared between repeats.
Every field below is read by the model. As transformers' own configs do, each field declares its type and range
(`@strict` checks them on construction and on assignment) and `validate_architecture` checks the rules between fields.
"""

import math

# huggingface_hub's @strict and as_validated_field, reached through transformers (remote code imports only torch,
# numpy, transformers and the standard library)
from transformers.configuration_utils import PreTrainedConfig, strict
from transformers.utils.type_validators import activation_fn_key, as_validated_field, interval, positive_int_field


SHARING_CHOICES = ("none", "all_but_first", "all")
POSITION_ENCODINGS = ("fourier", "learned", "none")
PROBLEM_TYPES = ("regression", "single_label_classification", "multi_label_classification")
# Fields that decide the weights or the outputs. save_pretrained writes them all, so a config.json that lacks one was
# edited by hand or belongs to another model; it is refused rather than filled with defaults. Frozen: a field added in
# a later version must default to the old behaviour and stay out of this tuple, so that old checkpoints still load.
REQUIRED_FIELDS = (
    "vocab_size", "d_model", "position_encoding_type", "fourier_max_resolution", "max_position_embeddings",
    "num_latents", "d_latents", "num_blocks", "num_self_attends_per_block", "num_cross_attention_heads",
    "num_self_attention_heads", "qk_channels", "v_channels", "cross_attention_widening_factor",
    "self_attention_widening_factor", "hidden_act", "cross_attention_weight_sharing", "self_attention_weight_sharing",
    "layer_norm_eps", "pad_token_id",
)  # fmt: skip
# Fields added after the first release, with the value that reproduces a checkpoint saved before them. A config.json
# that lacks one of them was saved by an older version: it gets this value, not the (newer) class default.
ADDED_FIELDS_OLD_VALUES = {
    "ngram_orders": [], "local_kernel_size": 0, "downsampling_factor": 1, "cross_attention_normalize_values": True,
}  # fmt: skip
MAX_NGRAM_ORDER = 8


def check_config_file(config_dict: dict, where: str) -> None:
    """Refuse a config.json of another model type, or one that lacks fields the weights depend on."""
    model_type = config_dict.get("model_type", PerceiverByteConfig.model_type)
    if model_type != PerceiverByteConfig.model_type:
        raise ValueError(
            f"{where}: config.json has model_type={model_type!r}, not {PerceiverByteConfig.model_type!r}; it does not "
            "describe a PerceiverByte model."
        )
    for name, old_value in ADDED_FIELDS_OLD_VALUES.items():
        config_dict.setdefault(name, old_value)
    missing = [name for name in REQUIRED_FIELDS if name not in config_dict]
    if missing:
        raise ValueError(
            f"{where}: config.json lacks the field(s) {missing}, which the weights depend on; save_pretrained writes "
            "them all. Restore them (from the training run's config) rather than let defaults replace them."
        )


def repeat_schedule(sharing: str, num_blocks: int) -> list[int]:
    """Which unique module each of the R repeats runs: "none" -> 0, 1, ..., R-1; "all_but_first" -> 0, 1, 1, ...;
    "all" -> 0, 0, ...  Weights are shared by calling one module several times, never by listing it twice."""
    return [{"none": r, "all_but_first": min(r, 1), "all": 0}[sharing] for r in range(num_blocks)]


def rule(ok, allowed: str):
    """A field validator beyond transformers' own (`interval`, `positive_int_field`, `activation_fn_key`): a
    ValueError unless `ok(value)`. `@strict` runs the type check first, so `ok` sees a value of the declared type."""

    def check(value):
        if not ok(value):
            raise ValueError(f"Value must be {allowed}, got {value!r}.")

    return as_validated_field(check)


def one_of(*choices):  # a `Literal` would make a misspelt choice a TypeError; it is a wrong value, a ValueError
    return rule(lambda value: value in choices, f"one of {choices}")


ngram_order_list = rule(
    lambda orders: all(1 <= n <= MAX_NGRAM_ORDER for n in orders) and len(set(orders)) == len(orders),
    f"distinct integers between 1 and {MAX_NGRAM_ORDER}, e.g. [2, 3, 4, 5], or [] for byte embeddings only",
)
zero_or_odd = rule(lambda k: k == 0 or (k > 0 and k % 2 == 1), "0 (off) or an odd width such as 3 or 5")
dropout_rate = interval(min=0.0, max=1.0, exclude_max=True)
finite_positive = interval(min=0.0, max=math.inf, exclude_min=True, exclude_max=True)


def plain_errors(cls):
    """`@strict` reports a bad value as a StrictDataclassError, which is neither the TypeError nor the ValueError that
    callers catch. So run the same validators first and raise their own errors, saying the field and the value."""
    strict_setattr = cls.__setattr__

    def __setattr__(self, name, value):
        for validator in cls.__validators__.get(name, ()):  # the type check, then the field's own
            try:
                validator(value)
            except (TypeError, ValueError) as err:
                raise type(err)(f"{cls.__name__}.{name}={value!r} is not allowed: {err}") from None
        strict_setattr(self, name, value)

    def validate(self):  # `validate_architecture`, and transformers' own class validators
        for validator in cls.__class_validators__:
            validator(self)

    cls.__setattr__, cls.validate = __setattr__, validate
    return cls


@plain_errors
@strict
class PerceiverByteConfig(PreTrainedConfig):
    r"""
    Configuration of [`PerceiverByteModel`] and [`PerceiverByteForSequenceClassification`].

    The defaults are a small classifier that fine-tunes on a CPU. The paper's ImageNet architecture is
    `PerceiverByteConfig.paper_imagenet()`.

    ```python
    >>> from perceiver_byte import PerceiverByteConfig, PerceiverByteForSequenceClassification
    >>> config = PerceiverByteConfig(num_labels=3)
    >>> model = PerceiverByteForSequenceClassification(config)
    ```
    """

    model_type = "perceiver_byte"
    # transformers' generic names, for tools that read them (Trainer, DeepSpeed, the common tests)
    attribute_map = {"hidden_size": "d_latents", "num_attention_heads": "num_self_attention_heads"}

    # --- the byte array (M x C) ---
    vocab_size: int = positive_int_field(default=262)
    """Number of input ids: 6 special tokens, then the 256 byte values (byte b has id b + 6)."""
    d_model: int = positive_int_field(default=128)
    """C: channels of the byte array (byte embedding, hashed n-gram embeddings and position encoding)."""
    ngram_orders: list[int] | tuple[int, ...] = ngram_order_list(default=(2, 3, 4, 5, 6))
    """Orders n of the hashed byte n-grams: each position adds the embeddings of the n-grams that end there (bytes
    before the row start, and padding, count as [PAD]), so the byte array sees words and their pieces, not single
    bytes. Empty: byte embeddings only (a bag of bytes). Orders between 1 and 8."""
    ngram_buckets: int = positive_int_field(default=65536)
    """Rows of the one hash table that all orders share (an n-gram's bucket mixes in its order). Its parameters,
    ngram_buckets * ngram_embedding_size, dominate the model's size on disk."""
    ngram_embedding_size: int | None = positive_int_field(default=None)
    """Width of the n-gram hash table; None (the default) means d_model. Narrower tables are projected to d_model by a
    Linear: smaller on disk, but at 32 wide they learned topics markedly worse (docs/accuracy.md)."""
    local_kernel_size: int = zero_or_odd(default=0)
    """Width k (odd) of the local mixing block over the byte array, x + W act(depthwise_conv_k(x)): each position's
    channels see their k neighbours (padding counts as zero). 0 (the default) turns the block off: over the default
    n-grams it made training slower per step and per epoch (docs/accuracy.md)."""
    downsampling_factor: int = positive_int_field(default=1)
    """s: the byte array is mean-pooled over blocks of s consecutive real bytes before the latents attend to it,
    dividing the cross-attention's cost by s (masked positions are dropped first). 1: no pooling."""
    position_encoding_type: str = one_of(*POSITION_ENCODINGS)(default="none")
    """Position encoding added to the byte embeddings: "fourier" (the paper's; any length), "learned" (a table of
    `max_position_embeddings` rows) or "none" (the model then sees a bag of bytes)."""
    fourier_max_resolution: int = positive_int_field(default=4096)
    """"fourier" only: the paper's maximum resolution mu; frequencies run linearly from 1 to mu / 2. Longer inputs
    still work, the encoding simply continues beyond [-1, 1]."""
    max_position_embeddings: int = positive_int_field(default=2048)
    """"learned" only: rows of the position table, the longest input the model accepts."""

    # --- the latent array (N x D) and the repeated blocks ---
    num_latents: int = positive_int_field(default=32)
    """N: number of latent vectors."""
    d_latents: int = positive_int_field(default=128)
    """D: channels of each latent vector."""
    num_blocks: int = positive_int_field(default=1)
    """R: repeats of (cross-attend, latent Transformer)."""
    num_self_attends_per_block: int = interval(min=0)(default=2)
    """L: self-attention layers in each latent Transformer."""
    num_cross_attention_heads: int = positive_int_field(default=1)
    """Heads of each cross-attention: 1, the paper's; as accurate as 4 on UDHR and the two topic stand-ins (seed 42)
    and cheaper per byte."""
    num_self_attention_heads: int = positive_int_field(default=4)
    """Heads of each latent self-attention."""
    qk_channels: int | None = positive_int_field(default=None)
    """Channels of queries and keys, split over the heads; None means d_latents."""
    v_channels: int | None = positive_int_field(default=None)
    """Channels of values, split over the heads; None means qk_channels."""
    cross_attention_widening_factor: int = positive_int_field(default=1)
    """Hidden width of the MLP after each cross-attention, as a multiple of d_latents."""
    self_attention_widening_factor: int = positive_int_field(default=4)
    """Hidden width of the MLP after each self-attention, as a multiple of d_latents."""
    hidden_act: str = activation_fn_key(default="gelu")
    """Activation of the MLPs: any key of transformers' ACT2FN."""
    cross_attention_weight_sharing: str = one_of(*SHARING_CHOICES)(default="all_but_first")
    """Which repeats share one cross-attention: "none" (R sets), "all_but_first" (the paper: repeat 1 has its own,
    repeats 2..R share one) or "all" (one set for every repeat)."""
    self_attention_weight_sharing: str = one_of(*SHARING_CHOICES)(default="all_but_first")
    """The same choice for the latent Transformers (the paper's text admits "all_but_first" and "all")."""
    cross_attention_chunk_size: int | None = positive_int_field(default=4096)
    """Inputs longer than this many bytes stream through each cross-attention in chunks of this size (rounded down to
    a multiple of downsampling_factor): an online softmax gives the same result in memory bounded by the chunk, and in
    training each chunk is rebuilt in the backward instead of kept (always the absorbed form). Shorter inputs take the
    whole path. 4096 is also faster than larger chunks or the whole path on long inputs: at batch 8 a chunk's
    tensors stay below glibc's 32 MiB mmap threshold, so they reuse heap memory instead of being mapped and
    page-faulted afresh at every step (docs/benchmarks_ngram_default.md). None: always whole; memory then grows with
    the input (docs/long_inputs.md)."""
    cross_attention_normalize_values: bool = False
    """What the cross-attention's values are made of. Keys always come from the LayerNormed byte array (the paper's).
    True: values too (the paper). False (the default): from the byte array itself, times 1 / initializer_range so
    that it starts at unit scale like a normalised one; an n-gram's embedding can then grow and weigh more in the
    latents' averages, as a TF-IDF weight would. Measured in docs/accuracy.md: better on topics, same on UDHR."""
    cross_attention_absorb_projections: bool | None = None
    """How cross-attention computes (both give the same result; costs in `PerceiverByteAttention`): True, the absorbed
    form (the key/value projections folded into the N latent queries and outputs: no keys or values are formed);
    False, the projected form (keys and values of every byte); None: the one with fewer multiply-adds per byte."""

    # --- regularisation and initialisation ---
    attention_dropout: int | float = dropout_rate(default=0.0)
    """Dropout on the attention probabilities."""
    hidden_dropout: int | float = dropout_rate(default=0.0)
    """Dropout on the output of every attention and MLP, before the residual sum."""
    layer_norm_eps: int | float = finite_positive(default=1e-5)
    """Epsilon of every LayerNorm."""
    initializer_range: int | float = finite_positive(default=0.05)
    """Standard deviation of the normal initialisation of weights, embeddings and latents. 0.05 is about PyTorch's
    own Linear scale at 128 channels; BERT's 0.02 learned topics markedly worse in 3 epochs (docs/accuracy.md)."""

    # --- special tokens (transformers' PerceiverTokenizer scheme) ---
    pad_token_id: int = 0
    """Id of [PAD]; its embedding starts at zero and padded positions are masked out."""
    bos_token_id: int = 1
    """Id of [BOS]."""
    eos_token_id: int = 2
    """Id of [EOS]."""

    def __post_init__(self, **kwargs):
        num_labels = kwargs.get("num_labels")  # the base class builds id2label from it before any validator runs
        if num_labels is not None and (isinstance(num_labels, bool) or not isinstance(num_labels, int)):
            kind = type(num_labels).__name__
            raise TypeError(f"PerceiverByteConfig.num_labels must be an int, got {num_labels!r} ({kind}).")
        if num_labels is not None and num_labels < 1:
            raise ValueError(
                f"PerceiverByteConfig.num_labels={num_labels!r} is not allowed: use an integer >= 1 (1: regression)."
            )
        super().__post_init__(**kwargs)
        self.ngram_orders = list(self.ngram_orders)  # JSON gives a list; keep one type for comparisons
        if getattr(self, "auto_map", None) is None:
            # `save_pretrained` records only the saved class; the full map lets every Auto class load remote code.
            self.auto_map = {
                "AutoConfig": "configuration_perceiver_byte.PerceiverByteConfig",
                "AutoModel": "modeling_perceiver_byte.PerceiverByteModel",
                "AutoModelForSequenceClassification": "modeling_perceiver_byte.PerceiverByteForSequenceClassification",
                "AutoModelForMaskedLM": "modeling_perceiver_byte.PerceiverByteForMaskedLM",
                "AutoModelForTokenClassification": "modeling_perceiver_byte.PerceiverByteForTokenClassification",
            }

    def validate_architecture(self):
        """The rules between fields (`@strict` runs this after construction; `validate()` runs it again)."""
        if self.vocab_size < 262:  # here rather than on the field: transformers' common tests set a smaller one
            raise ValueError(
                f"PerceiverByteConfig.vocab_size={self.vocab_size} is not allowed: use at least 262 (6 special "
                "tokens + 256 byte values)."
            )
        for name in ("pad_token_id", "bos_token_id", "eos_token_id"):
            if not 0 <= getattr(self, name) < self.vocab_size:
                raise ValueError(
                    f"PerceiverByteConfig.{name}={getattr(self, name)} is not allowed: use an id in [0, vocab_size="
                    f"{self.vocab_size})."
                )
        if self.problem_type is not None and self.problem_type not in PROBLEM_TYPES:
            raise ValueError(
                f"PerceiverByteConfig.problem_type={self.problem_type!r} is not allowed: choose None or one of "
                f"{PROBLEM_TYPES}."
            )
        if self.position_encoding_type == "fourier" and self.d_model % 2:
            raise ValueError(
                f"PerceiverByteConfig.d_model={self.d_model} is not allowed with position_encoding_type='fourier': its "
                "features come in sin/cos pairs, so use an even d_model."
            )
        qk, v = self.attention_qk_channels, self.attention_v_channels
        for heads in ("num_cross_attention_heads", "num_self_attention_heads"):
            n = getattr(self, heads)
            if qk % n or v % n:
                raise ValueError(
                    f"PerceiverByteConfig.{heads}={n} must divide the query/key channels ({qk}) and the value "
                    f"channels ({v}); change {heads}, d_latents, qk_channels or v_channels (None: they follow "
                    "d_latents)."
                )

    @classmethod
    def get_config_dict(cls, pretrained_model_name_or_path, **kwargs):
        config_dict, kwargs = super().get_config_dict(pretrained_model_name_or_path, **kwargs)
        if not config_dict:  # transformers returns {} when the directory has no config.json
            raise OSError(
                f"{pretrained_model_name_or_path} has no config.json: a PerceiverByte checkpoint needs the config.json "
                "that save_pretrained writes beside the weights."
            )
        check_config_file(config_dict, str(pretrained_model_name_or_path))
        return config_dict, kwargs

    @classmethod
    def from_dict(cls, config_dict, **kwargs):
        # AutoConfig reads config.json itself and comes here: a dict with a model_type is such a file's content.
        if "model_type" in config_dict:
            check_config_file(config_dict, str(config_dict.get("_name_or_path") or "config.json"))
        out = super().from_dict(config_dict, **kwargs)
        # keyword overrides (from_pretrained(..., num_latents=...)) are set one by one after construction: each field
        # is checked as it is set, the rules between fields here
        (out[0] if isinstance(out, tuple) else out).validate()
        return out

    @property
    def num_hidden_layers(self) -> int:
        """Layers the latents pass through: R cross-attentions and R * L self-attentions."""
        return self.num_blocks * (1 + self.num_self_attends_per_block)

    @property
    def attention_qk_channels(self) -> int:
        """Channels of queries and keys as the attentions use them: qk_channels, or d_latents when None."""
        return self.qk_channels or self.d_latents

    @property
    def attention_v_channels(self) -> int:
        """Channels of values as the attentions use them: v_channels, or the query/key channels when None."""
        return self.v_channels or self.attention_qk_channels

    @property
    def cross_attention_schedule(self) -> list[int]:
        """For each of the R repeats, the index of the unique cross-attention module it runs."""
        return repeat_schedule(self.cross_attention_weight_sharing, self.num_blocks)

    @property
    def self_attention_schedule(self) -> list[int]:
        """For each of the R repeats, the index of the unique latent Transformer it runs."""
        return repeat_schedule(self.self_attention_weight_sharing, self.num_blocks)

    @classmethod
    def paper_imagenet(cls, **kwargs) -> "PerceiverByteConfig":
        """The paper's ImageNet architecture over a byte array of C=64 channels: N=512, D=1024, 8 cross-attends with
        1 head (repeats 2..8 share one), 6 latent self-attention layers of 8 heads, and the paper's plain input array
        (byte embeddings, no n-grams or local mixing). The paper's 44.9M parameters are only reached with one latent
        Transformer for all 8 repeats, so that is the reading used here."""
        preset = dict(
            num_latents=512, d_latents=1024, d_model=64, num_blocks=8, num_self_attends_per_block=6,
            num_cross_attention_heads=1, num_self_attention_heads=8, cross_attention_widening_factor=1,
            self_attention_widening_factor=1, cross_attention_weight_sharing="all_but_first",
            self_attention_weight_sharing="all", ngram_orders=[], local_kernel_size=0,
            cross_attention_normalize_values=True,
        )  # fmt: skip
        return cls(**{**preset, **kwargs})


__all__ = ["PerceiverByteConfig"]
