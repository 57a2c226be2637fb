"""The Perceiver (Jaegle et al., 2021) over raw byte arrays, as a transformers model.

A learned latent array (N x D) cross-attends to the byte array (M x C: byte embeddings plus position encodings;
queries from the latents, keys and values from the bytes), then a latent Transformer (L self-attention layers)
refines it. Cross-attend + latent Transformer repeat R times; weights are shared between repeats by a schedule over
unique modules. The latents are averaged and projected to logits. Cost: O(M*N) + O(R*L*N^2), linear in M.

Per-byte outputs use Perceiver IO's decoder (Jaegle et al., 2022): one query per byte cross-attends to the final
latents, O(M*N) too.

Read from top to bottom: attention functions, attention module, MLP, the two layers, the byte array, the byte source
(the byte array in the form the cross-attentions read), `PerceiverBytePreTrainedModel`, `PerceiverByteModel`,
`PerceiverByteForSequenceClassification`, the decoder, `PerceiverByteForMaskedLM`,
`PerceiverByteForTokenClassification`.
Shapes: B batch, M bytes, C = d_model, N = num_latents, D = d_latents, h heads, dk/dv channels per head.
"""

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.checkpoint import checkpoint
from transformers import initialization as init
from transformers.activations import ACT2FN
from transformers.modeling_layers import GradientCheckpointingLayer
from transformers.modeling_outputs import BaseModelOutputWithPoolingAndCrossAttentions, ModelOutput
from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS, PreTrainedModel
from transformers.processing_utils import Unpack
from transformers.utils import TransformersKwargs, can_return_tuple
from transformers.utils.output_capturing import OutputRecorder, capture_outputs

from .configuration_perceiver_byte import PROBLEM_TYPES, PerceiverByteConfig


def eager_attention_forward(module, query, key, value, attention_mask, scaling, dropout=0.0, **kwargs):
    # query (B, h, T, dk), key (B, h, M, dk), value (B, h, M, dv), attention_mask (B, 1, 1, M) additive or None
    scores = torch.matmul(query, key.transpose(2, 3)) * scaling  # (B, h, T, M)
    if attention_mask is not None:
        scores = scores + attention_mask
    weights = F.softmax(scores, dim=-1, dtype=torch.float32).to(query.dtype)
    weights = F.dropout(weights, p=dropout, training=module.training)
    output = torch.matmul(weights, value).transpose(1, 2).contiguous()  # (B, T, h, dv)
    return output, weights


def attend_to_chunk(module, query, chunk, dropout):
    """One chunk's share of a streamed attention: the chunk's keys and values come from `chunk()` (key (B, h, c, dk),
    value (B, h, c, dv), additive mask (B, 1, 1, c) or None). -> its score maximum m (B, h, T, 1), a stabiliser only,
    and sum_j exp(s_j - m) (B, h, T, 1) and sum_j exp(s_j - m) v_j (B, h, T, dv), in float32."""
    key, value, mask = chunk()
    # the scores with the chunk's positions first, (B, h, c, T): then the gradient of `key` comes out of the matmul
    # contiguous, as the LayerNorm backward behind it needs (in (T, c) order it would copy a transposed c x dk tensor)
    scores = torch.matmul(key.to(query.dtype), query.transpose(2, 3))  # (B, h, c, T)
    if mask is not None:
        scores = scores + mask.transpose(2, 3)  # (B, 1, c, 1)
    chunk_max = scores.amax(-2, keepdim=True).detach()  # (B, h, 1, T)
    probs = torch.exp(scores - chunk_max)
    denominator = probs.sum(-2, keepdim=True)
    probs = F.dropout(probs, p=dropout, training=module.training)
    numerator = torch.matmul(probs.transpose(2, 3).to(value.dtype), value).float()  # (B, h, T, dv)
    return chunk_max.transpose(2, 3), denominator.transpose(2, 3), numerator


def streamed_attention_forward(module, query, chunks, scaling, dropout=0.0):
    """Attention of `query` (B, h, T, dk) over keys and values built chunk by chunk (`chunks`: one callable per chunk,
    see `attend_to_chunk`), merged with an online softmax in float32: the result of attending to all of them at once,
    in memory bounded by the chunk size. When gradients are needed, each chunk is checkpointed: the backward builds it
    again rather than keeping it, so training memory is bounded too. Returns (B, T, h, dv), like the attention
    functions."""
    query = query.float() * scaling
    checkpointed = torch.is_grad_enabled()
    running_max = query.new_full((*query.shape[:-1], 1), float("-inf"))  # (B, h, T, 1)
    denominator = torch.zeros_like(running_max)
    numerator = 0.0  # becomes (B, h, T, dv)
    for chunk in chunks:
        if checkpointed:
            stats = checkpoint(attend_to_chunk, module, query, chunk, dropout, use_reentrant=False)
        else:
            stats = attend_to_chunk(module, query, chunk, dropout)
        chunk_max, chunk_denominator, chunk_numerator = stats
        new_max = torch.maximum(running_max, chunk_max)
        old_scale, chunk_scale = torch.exp(running_max - new_max), torch.exp(chunk_max - new_max)
        denominator = denominator * old_scale + chunk_denominator * chunk_scale
        numerator = numerator * old_scale + chunk_numerator * chunk_scale
        running_max = new_max
    return (numerator / denominator).to(module.o_proj.weight.dtype).transpose(1, 2)  # (B, T, h, dv)


class PerceiverByteAttention(nn.Module):
    """Multi-head attention with queries from the latents (or, in the decoder, from the bytes: `q_dim`).

    Self-attention (`kv_dim=None`) projects Q, K and V with one matmul. The decoder's cross-attention attends to the
    latents' keys and values, projected once (`project_kv`) for all its queries. Cross-attention reads a `PerceiverByteSource`,
    in one of two forms that compute the same thing:
    - projected: K and V of the byte array with one matmul (`project_kv`), which repeats sharing this module reuse;
    - absorbed: the key and value projections (and the byte array's LayerNorm affine) are folded into the N queries
      and the N outputs (`absorbed_projections`), so that attention runs over the normalised byte array itself and
      no (M x K) keys or (M x V) values are ever formed: per byte 4*h*N*C multiply-adds instead of 2*C*(K+V) + 2*N*(K+V).
      Whole, or streamed: chunk by chunk with an online softmax (`streamed_attention_forward`).
    """

    is_causal = False  # transformers' SDPA path would otherwise default to a causal mask

    def __init__(
        self, config: PerceiverByteConfig, num_heads: int, kv_dim: int | None = None, q_dim: int | None = None
    ):
        super().__init__()
        q_dim = q_dim or config.d_latents  # the queries' (and the output's) width: the latents', or the decoder's
        self.config = config
        self.num_heads = num_heads
        self.qk_channels = config.attention_qk_channels
        self.v_channels = config.attention_v_channels
        self.scaling = (self.qk_channels // num_heads) ** -0.5
        self.attention_dropout = config.attention_dropout
        self.is_cross_attention = kv_dim is not None
        if self.is_cross_attention:
            self.q_proj = nn.Linear(q_dim, self.qk_channels)
            self.kv_proj = nn.Linear(kv_dim, self.qk_channels + self.v_channels)
        else:
            self.qkv_proj = nn.Linear(q_dim, 2 * self.qk_channels + self.v_channels)
        self.o_proj = nn.Linear(self.v_channels, q_dim)
        # values from the unnormalised byte array (cross_attention_normalize_values=False) are scaled by this, folded
        # into the value weights, so that they start at unit scale as normalised ones do
        self.value_scale = 1.0 if config.cross_attention_normalize_values else 1.0 / config.initializer_range

    def split_heads(self, x):
        return x.unflatten(-1, (self.num_heads, -1)).transpose(1, 2)  # (B, T, h*d) -> (B, h, T, d)

    def project_kv(self, inputs, values=None):
        # inputs (B, M, C) -> key (B, h, M, dk), value (B, h, M, dv). values (B, M, C): what the values are made of,
        # when not `inputs`
        if values is None:
            key, value = self.kv_proj(inputs).split([self.qk_channels, self.v_channels], dim=-1)
        else:
            (w_k, w_v), (b_k, b_v) = (t.split([self.qk_channels, self.v_channels]) for t in (self.kv_proj.weight, self.kv_proj.bias))
            key, value = F.linear(inputs, w_k, b_k), F.linear(values, w_v, b_v)
        return self.split_heads(key), self.split_heads(value)

    def absorbed_projections(self, norm: nn.LayerNorm):
        """The key/value projection and the LayerNorm affine (gamma, beta) before it, folded for attention over the
        normalised bytes x_j:  q . k_j = (W_k^T q * gamma) . x_j + q . (W_k beta + b_k), whose second term is the same
        for every j and drops out of the softmax;  sum_j p_j v_j = W_v (gamma * s * sum_j p_j y_j) + (sum_j p_j)(W_v
        beta + b_v), where y_j is x_j, s = 1, or the unnormalised byte array, s = `value_scale`
        (`cross_attention_normalize_values`), and sum_j p_j = 1 unless dropout thinned the probabilities."""
        w_k, w_v = self.kv_proj.weight.split([self.qk_channels, self.v_channels])  # (K, C), (V, C)
        b_v = self.kv_proj.bias[self.qk_channels :] + w_v @ norm.bias  # (V,)
        w_k = (w_k * norm.weight).unflatten(0, (self.num_heads, -1))  # (h, dk, C)
        w_v = (w_v * (norm.weight * self.value_scale)).unflatten(0, (self.num_heads, -1)).transpose(1, 2)  # (h, C, dv)
        return w_k, w_v, b_v.unflatten(0, (self.num_heads, 1, -1))  # ..., (h, 1, dv)

    def attend(self, query, key, value, attention_mask, **kwargs):
        # query (B, h, T, dk), key (B, h, M, dk), value (B, h, M, dv) -> (B, T, h, dv), weights (B, h, T, M) or None
        dropout = self.attention_dropout if self.training else 0.0
        implementation = "eager" if kwargs.get("output_attentions") else self.config._attn_implementation
        attention_interface = ALL_ATTENTION_FUNCTIONS.get_interface(implementation, eager_attention_forward)
        return attention_interface(
            self, query, key, value, attention_mask, dropout=dropout, scaling=self.scaling, **kwargs
        )

    def forward(self, hidden_states, source=None, tensors=(), norm=None, **kwargs):
        # hidden_states (B, N, D) -> (B, N, D), attention weights (B, h, N, M) or None. Self-attention: nothing else.
        # Cross-attention: the `PerceiverByteSource`, the `tensors` it gave this module (projected: key (B, h, M, dk)
        # and value (B, h, M, dv); absorbed: the normalised byte array and what the values are made of, (B, M, C)
        # each; streamed: none) and `norm`, the byte array's LayerNorm, whose affine the absorbed form folds in.
        # The decoder: no source, `tensors` the latents' key (B, h, N, dk) and value (B, h, N, dv), nothing masked.
        if source is not None and source.absorbed:
            return self.forward_absorbed(hidden_states, source, tensors, norm, **kwargs)
        if self.is_cross_attention:
            query = self.split_heads(self.q_proj(hidden_states))  # (B, h, T, dk)
            (key, value), attention_mask = tensors, None if source is None else source.mask
        else:
            qkv = self.qkv_proj(hidden_states).split([self.qk_channels, self.qk_channels, self.v_channels], dim=-1)
            (query, key, value), attention_mask = (self.split_heads(t) for t in qkv), None  # (B, h, N, d) each
        output, weights = self.attend(query, key, value, attention_mask, **kwargs)
        output = self.o_proj(output.reshape(*hidden_states.shape[:-1], -1))  # (B, N, h*dv) -> (B, N, D)
        return output, weights

    def forward_absorbed(self, hidden_states, source, tensors, norm, **kwargs):
        batch, num_latents = hidden_states.shape[:2]
        w_k, w_v, b_v = self.absorbed_projections(norm)
        query = torch.matmul(self.split_heads(self.q_proj(hidden_states)), w_k)  # (B, h, N, dk) @ (h, dk, C)
        # every head attends over the same x_j: one head of h*N queries, (B, 1, h*N, C)
        query = query.reshape(batch, 1, self.num_heads * num_latents, -1)
        # with dropout the probabilities no longer sum to 1: a channel of ones in the values sums them
        count = self.training and self.attention_dropout > 0
        as_values = (lambda x: F.pad(x, (0, 1), value=1.0)) if count else (lambda x: x)
        if source.streamed:  # chunks of (key, value, mask), online softmax
            def chunk_at(start):  # -> a callable that builds the chunk at `start` as keys, values and mask
                def build():
                    normalized, values, mask = source.chunk(start)
                    return normalized[:, None], as_values(values[:, None]), mask

                return build

            chunks = (chunk_at(start) for start in source.chunk_starts())
            dropout = self.attention_dropout if self.training else 0.0
            output, weights = streamed_attention_forward(self, query, chunks, self.scaling, dropout), None
        else:
            normalized, values = (x[:, None] for x in tensors)  # (B, 1, M, C) each
            output, weights = self.attend(query, normalized, as_values(values), source.mask, **kwargs)
        output = output.reshape(batch, self.num_heads, num_latents, -1)  # (B, h*N, 1, C) -> (B, h, N, C or C + 1)
        channels = w_v.shape[1]
        sums = output[..., channels:] if count else 1.0  # (B, h, N, 1): each query's probability mass
        values = torch.matmul(output[..., :channels], w_v) + sums * b_v  # (B, h, N, C) @ (h, C, dv) -> (B, h, N, dv)
        output = self.o_proj(values.transpose(1, 2).reshape(batch, num_latents, -1))  # (B, N, h*dv) -> (B, N, D)
        if weights is not None:
            weights = weights.reshape(batch, self.num_heads, num_latents, -1)  # (B, h, N, M)
        return output, weights


class PerceiverByteMLP(nn.Module):
    def __init__(self, config: PerceiverByteConfig, widening_factor: int, width: int | None = None):
        super().__init__()
        width = width or config.d_latents  # the latents', or the decoder's (d_model)
        self.fc1 = nn.Linear(width, width * widening_factor)
        self.act = ACT2FN[config.hidden_act]
        self.fc2 = nn.Linear(width * widening_factor, width)

    def forward(self, hidden_states):
        return self.fc2(self.act(self.fc1(hidden_states)))  # (B, T, width)


class PerceiverByteCrossAttentionLayer(GradientCheckpointingLayer):
    """The latents attend to the byte array, then an MLP; pre-norm residual blocks."""

    def __init__(self, config: PerceiverByteConfig):
        super().__init__()
        self.inputs_norm = nn.LayerNorm(config.d_model, eps=config.layer_norm_eps)
        self.latents_norm = nn.LayerNorm(config.d_latents, eps=config.layer_norm_eps)
        self.cross_attn = PerceiverByteAttention(config, config.num_cross_attention_heads, kv_dim=config.d_model)
        self.mlp_norm = nn.LayerNorm(config.d_latents, eps=config.layer_norm_eps)
        self.mlp = PerceiverByteMLP(config, config.cross_attention_widening_factor)
        self.dropout = nn.Dropout(config.hidden_dropout)

    def project_kv(self, byte_array, values=None):
        # byte_array (B, M, C) -> key (B, h, M, dk), value (B, h, M, dv). values (B, M, C): what the values are made
        # of instead of the normalised byte array (the LayerNorm's affine still applies), or None
        norm = self.inputs_norm
        affine = None if values is None else values * (norm.weight * self.cross_attn.value_scale) + norm.bias
        return self.cross_attn.project_kv(norm(byte_array), affine)

    def forward(self, hidden_states, source, *tensors, **kwargs):
        # hidden_states (B, N, D) -> (B, N, D). source: the `PerceiverByteSource`; tensors: what `source.tensors(i)`
        # gave this layer, passed positionally so that reentrant gradient checkpointing sees them.
        attended, _ = self.cross_attn(self.latents_norm(hidden_states), source, tensors, self.inputs_norm, **kwargs)
        hidden_states = hidden_states + self.dropout(attended)
        return hidden_states + self.dropout(self.mlp(self.mlp_norm(hidden_states)))


class PerceiverByteSelfAttentionLayer(GradientCheckpointingLayer):
    """One layer of the latent Transformer: self-attention over the latents, then an MLP; pre-norm residual blocks."""

    def __init__(self, config: PerceiverByteConfig):
        super().__init__()
        self.attn_norm = nn.LayerNorm(config.d_latents, eps=config.layer_norm_eps)
        self.self_attn = PerceiverByteAttention(config, config.num_self_attention_heads)
        self.mlp_norm = nn.LayerNorm(config.d_latents, eps=config.layer_norm_eps)
        self.mlp = PerceiverByteMLP(config, config.self_attention_widening_factor)
        self.dropout = nn.Dropout(config.hidden_dropout)

    def forward(self, hidden_states, **kwargs):
        # hidden_states (B, N, D) -> (B, N, D)
        attended, _ = self.self_attn(self.attn_norm(hidden_states), **kwargs)
        hidden_states = hidden_states + self.dropout(attended)
        return hidden_states + self.dropout(self.mlp(self.mlp_norm(hidden_states)))


def fourier_position_encoding(position_ids, channels: int, max_resolution: int):
    """The paper's Fourier features of a 1-D position: sin and cos of pi * f * x for `channels / 2` frequencies f
    spaced linearly in [1, mu / 2], with x = 2 p / mu - 1 running over [-1, 1) for the first mu positions."""
    # position_ids (B, M) -> (B, M, channels)
    x = position_ids.to(torch.float32) * (2.0 / max_resolution) - 1.0
    freqs = torch.linspace(1.0, max_resolution / 2, channels // 2, device=position_ids.device)
    angles = math.pi * x[..., None] * freqs  # (B, M, channels / 2)
    return torch.cat([angles.sin(), angles.cos()], dim=-1)


# Odd multipliers (40 bits) of the byte k places back in an n-gram, and a salt per order: (id + 1) * multiplier stays
# below 2**49, so the hash is exact in int64 on every device.
NGRAM_MULTIPLIERS = (992746589899, 274737037309, 254042550741, 181218243651, 1099483558675, 979542843343,
                     94183489157, 151309895463)  # fmt: skip
NGRAM_SALTS = (1049356144132, 42462689545, 501771005044, 192592992624, 728532998835, 331127832619, 183747570061,
               592105693831)  # fmt: skip


def hash_ngrams(input_ids, orders, num_buckets: int, pad_token_id: int):
    """Bucket of the byte n-gram of each order in `orders` that ends at each position; positions before the start
    count as [PAD]. One shift, multiply and xor per byte of the longest order: (B, L) -> (B, L, len(orders))."""
    ids, length = input_ids.long(), input_ids.shape[1]
    running = torch.zeros_like(ids)
    buckets = []
    for back in range(max(orders)):
        shifted = F.pad(ids, (back, 0), value=pad_token_id)[:, :length]  # the byte `back` places earlier
        running = running ^ ((shifted + 1) * NGRAM_MULTIPLIERS[back])
        if back + 1 in orders:
            buckets.append((running ^ NGRAM_SALTS[back]) % 2147483647 % num_buckets)  # mod a prime mixes high bits
    return torch.stack(buckets, dim=-1)


class PerceiverByteLocalMixing(nn.Module):
    """x + W act(depthwise_conv_k(x)): each position's channels see their k neighbours; a residual block, so the
    byte array keeps each byte's own features."""

    def __init__(self, config: PerceiverByteConfig):
        super().__init__()
        k, channels = config.local_kernel_size, config.d_model
        self.conv = nn.Conv1d(channels, channels, k, padding=k // 2, groups=channels)
        self.act = ACT2FN[config.hidden_act]
        self.proj = nn.Linear(channels, channels)

    def forward(self, byte_array):
        # byte_array (B, L, C), zero at padding -> (B, L, C)
        mixed = self.conv(byte_array.transpose(1, 2)).transpose(1, 2)
        return byte_array + self.proj(self.act(mixed))


class PerceiverByteEmbeddings(nn.Module):
    """The byte array that the latents attend to, built from the bytes in four steps:
    1. each byte's embedding plus the embeddings of the hashed n-grams that end at it (`ngram_orders`);
    2. a position encoding of each byte's place among its row's real (unpadded) bytes;
    3. local mixing: a depthwise convolution over k neighbours (`local_kernel_size`);
    4. mean-pooling over blocks of s real bytes (`downsampling_factor`).
    Padding and positions outside the row count as [PAD] in the n-grams and as zero in the convolution, so a row alone
    and padded (on either side) give the same array at its real bytes (padding is masked out of the attention). Any
    span of positions can be built on its own (`forward(..., start, end)`): it reads the few bytes of context around it, so a streamed input gives the whole input's array."""

    def __init__(self, config: PerceiverByteConfig):
        super().__init__()
        self.config = config
        self.byte_embeddings = nn.Embedding(config.vocab_size, config.d_model, padding_idx=config.pad_token_id)
        if config.ngram_orders:
            width = config.ngram_embedding_size or config.d_model
            self.ngram_embeddings = nn.Embedding(config.ngram_buckets, width)
            self.ngram_projection = nn.Linear(width, config.d_model, bias=False) if width != config.d_model else None
        if config.position_encoding_type == "learned":
            self.position_embeddings = nn.Embedding(config.max_position_embeddings, config.d_model)
        self.local_mixing = PerceiverByteLocalMixing(config) if config.local_kernel_size else None
        # context each output position reads: the n-grams look back (over ids), the convolution both ways
        self.context = (max(config.ngram_orders, default=1) - 1, config.local_kernel_size // 2)

    @staticmethod
    def position_ids(attention_mask, length: int, device):
        if attention_mask is None:
            return torch.arange(length, device=device)[None]  # (1, M)
        return (attention_mask.long().cumsum(-1) - 1).clamp(min=0)  # (B, M): 0, 1, ... over each row's real bytes

    def embed_ids(self, input_ids, attention_mask=None, lookback: int = 0):
        """Step 1 alone: byte plus n-gram embeddings of `input_ids` (B, M) -> (B, M - lookback, C), padding read as
        [PAD]; the first `lookback` positions only give the n-grams after them their bytes. What `inputs_embeds` must
        hold to reproduce `input_ids`."""
        if attention_mask is not None:
            input_ids = input_ids.masked_fill(attention_mask == 0, self.config.pad_token_id)
        embeds = self.byte_embeddings(input_ids[:, lookback:])
        if self.config.ngram_orders:
            config = self.config
            buckets = hash_ngrams(input_ids, config.ngram_orders, config.ngram_buckets, config.pad_token_id)
            buckets = buckets[:, lookback:]  # (B, M - lookback, orders)
            table = self.ngram_embeddings.weight
            if torch.compiler.is_exporting():  # ONNX has no EmbeddingBag (exported, it loops over the B*M bags)
                ngrams = sum(F.embedding(buckets[..., k], table) for k in range(buckets.shape[-1]))  # (B, M, E)
            else:  # one gather-and-sum over the orders: no (B, M, orders, E) tensor is formed
                ngrams = F.embedding_bag(buckets.flatten(0, 1), table, mode="sum").unflatten(0, buckets.shape[:2])
            if self.ngram_projection is not None:
                ngrams = self.ngram_projection(ngrams)
            embeds = embeds + ngrams.to(embeds.dtype)
        return embeds

    def position_encoding(self, position_ids, dtype, whole_length=None):
        # position_ids (B or 1, L) -> (B or 1, L, C), or None. whole_length: M when every id is below it (the window
        # spans the whole input), so that a batch's Fourier features are computed once for 0..M-1 and looked up
        kind, config = self.config.position_encoding_type, self.config
        if kind == "fourier" and whole_length is not None and position_ids.shape[0] > 1:
            table = fourier_position_encoding(torch.arange(whole_length, device=position_ids.device), config.d_model,
                                              config.fourier_max_resolution)  # fmt: skip
            return F.embedding(position_ids, table).to(dtype)
        if kind == "fourier":
            return fourier_position_encoding(position_ids, config.d_model, config.fourier_max_resolution).to(dtype)
        if kind == "learned":
            return self.position_embeddings(position_ids).to(dtype)
        return None

    def forward(self, input_ids, inputs_embeds, attention_mask, position_ids, start=0, end=None, pooled=True):
        # input_ids (B, M) or inputs_embeds (B, M, C); attention_mask (B, M) or None; position_ids (B or 1, M)
        # -> byte array of positions [start, end): (B, ceil((end - start) / s), C), and which of its rows are real
        # (B, ceil((end - start) / s)) bool. pooled=False: before step 4, one row per position (the decoder's queries)
        source = input_ids if inputs_embeds is None else inputs_embeds
        batch, length = source.shape[:2]
        end = length if end is None else end
        lookback, half = self.context
        lookback = lookback if inputs_embeds is None else 0  # the n-grams' context: ids only
        before = lookback + half
        low, high = max(start - before, 0), min(end + half, length)
        pad = (low - (start - before), (end + half) - high)  # context beyond the row: padding
        keep = (torch.ones(batch, high - low, dtype=torch.bool, device=source.device) if attention_mask is None
                else attention_mask[:, low:high].bool())  # fmt: skip
        keep = F.pad(keep, pad, value=False)  # (B, lookback + L) over the window [start - before, end + half)
        if inputs_embeds is None:
            ids = F.pad(input_ids[:, low:high], pad, value=self.config.pad_token_id)
            byte_array = self.embed_ids(ids, keep, lookback)  # (B, L, C) over [start - half, end + half)
        else:
            byte_array = F.pad(inputs_embeds[:, low:high], (0, 0, *pad))
        keep = keep[:, lookback:]  # (B, L)
        whole = length if (start, end) == (0, length) else None
        position_ids = F.pad(position_ids[:, low:high], pad)[:, lookback:]
        positions = self.position_encoding(position_ids, byte_array.dtype, whole)
        if positions is not None:
            byte_array = byte_array + positions
        if self.local_mixing is not None:  # (elsewhere padding is masked out of the attention and needs no zeroing)
            byte_array = byte_array * keep[..., None].to(byte_array.dtype)  # padding is zero for the convolution
            byte_array = self.local_mixing(byte_array)
            inner = slice(half, half + end - start)  # [start, end) inside [start - half, end + half)
            byte_array, keep = byte_array[:, inner], keep[:, inner]
        s = self.config.downsampling_factor
        if s > 1 and pooled:  # rows are left-aligned (see PerceiverByteModel), so blocks of s positions are blocks of s bytes
            blocks = -(-byte_array.shape[1] // s)
            fill = blocks * s - byte_array.shape[1]
            weights = F.pad(keep, (0, fill)).unflatten(1, (blocks, s)).to(byte_array.dtype)  # (B, L/s, s)
            summed = torch.einsum("bls,blsc->blc", weights, F.pad(byte_array, (0, 0, 0, fill)).unflatten(1, (blocks, s)))
            counts = weights.sum(-1)
            byte_array, keep = summed / counts.clamp(min=1)[..., None], counts > 0
        return byte_array, keep


def left_align(attention_mask, *tensors):
    """Each row's real positions moved to its front, in order, padding after them: (B, M, ...) -> the same shapes.
    Blocks of s positions are then blocks of s real bytes whatever the padding side."""
    order = torch.sort((attention_mask == 0).to(torch.int8), dim=1, stable=True).indices  # (B, M)
    out = [attention_mask.gather(1, order)]
    for t in tensors:
        out.append(None if t is None else t.gather(1, order.view(*order.shape, *[1] * (t.dim() - 2)).expand_as(t)))
    return out


class PerceiverByteSource:
    """What the cross-attentions attend to, built once per forward: the byte array (B, M / s, C) in one of three forms.
    - projected: keys and values of every byte, projected once per unique cross-attention (repeats that share one
      reuse them);
    - absorbed: the byte array after a LayerNorm without affine (each cross-attention folds in its own affine and its
      key/value projections, see `PerceiverByteAttention`), with what the values are made of;
    - streamed: the absorbed form chunk by chunk, for inputs longer than `cross_attention_chunk_size`; each chunk is
      built when a cross-attention asks for it, so the whole byte array never exists.
    A cross-attention layer is called as `layer(latents, source, *source.tensors(i))`: its tensors travel as
    positional arguments, the only ones that reentrant gradient checkpointing sees."""

    def __init__(self, model, input_ids, inputs_embeds, attention_mask, output_attentions=False):
        self.model, self.config = model, model.config
        data = input_ids if inputs_embeds is None else inputs_embeds
        self.length = data.shape[1]
        if attention_mask is not None and self.config.downsampling_factor > 1:
            attention_mask, input_ids, inputs_embeds = left_align(attention_mask, input_ids, inputs_embeds)
        self.inputs = input_ids, inputs_embeds, attention_mask
        self.position_ids = model.embeddings.position_ids(attention_mask, self.length, data.device)
        # a row without one real byte attends to all of its positions: masking them all would leave SDPA kernels a
        # softmax over -inf-like scores, whose backward some get wrong (float32 rounds away the log-sum-exp)
        self.empty_rows = None if attention_mask is None else ~attention_mask.bool().any(-1, keepdim=True)  # (B, 1)
        chunk, pool = self.config.cross_attention_chunk_size, self.config.downsampling_factor
        # whole pooled blocks per chunk: the chunk size rounded down to a multiple of s
        self.chunk_size = None if chunk is None else max(pool, chunk // pool * pool)
        # output_attentions needs the (B, h, N, M) weights, which the streamed form never forms: then the whole array
        self.streamed = chunk is not None and self.length > chunk and not output_attentions
        self.absorbed = self.streamed or model.absorbs_projections()
        self.keys_values = {}  # projected form: unique cross-attention -> its keys and values
        if not self.streamed:
            self.byte_array, self.mask = self.build()  # (B, M / s, C), additive (B, 1, 1, M / s) or None
            if self.absorbed:
                self.normalized = self.normalize(self.byte_array)  # one for every cross-attention

    def build(self, start=0, end=None):
        # positions [start, end) -> byte array (B, L, C), additive mask (B, 1, 1, L) or None
        array, keep = self.model.embeddings(*self.inputs, self.position_ids, start, end)
        if self.empty_rows is None:
            return array, None
        return array, (~(keep | self.empty_rows))[:, None, None, :].to(array.dtype) * torch.finfo(array.dtype).min

    def normalize(self, array):  # LayerNorm without affine: each cross-attention folds in its own gamma and beta
        return F.layer_norm(array, array.shape[-1:], eps=self.config.layer_norm_eps)

    def values_of(self, array, normalized):  # what the absorbed form's values are made of
        return normalized if self.config.cross_attention_normalize_values else array

    def tensors(self, index: int) -> tuple:
        """What cross-attention `index` reads. Projected: its key (B, h, M, dk) and value (B, h, M, dv), computed once;
        absorbed: the normalised byte array and what the values are made of, (B, M, C) each; streamed: nothing."""
        if self.streamed:
            return ()
        if self.absorbed:
            return self.normalized, self.values_of(self.byte_array, self.normalized)
        if index not in self.keys_values:
            values = None if self.config.cross_attention_normalize_values else self.byte_array
            self.keys_values[index] = self.model.cross_layers[index].project_kv(self.byte_array, values)
        return self.keys_values[index]

    def chunk_starts(self) -> range:
        """The streamed form's chunks: one per `chunk_size` bytes, starting at these positions."""
        return range(0, self.length, self.chunk_size)

    def chunk(self, start: int):
        """The streamed form's chunk at `start`: normalised (B, c, C), values (B, c, C), additive mask (B, 1, 1, c) or
        None, with c = `chunk_size` / s."""
        array, mask = self.build(start, min(start + self.chunk_size, self.length))
        normalized = self.normalize(array)
        return normalized, self.values_of(array, normalized), mask


def cheap_to_read(tensor) -> bool:
    """Whether checking `tensor`'s values is free: it is on the CPU (on an accelerator the host would wait for the
    device) and torch.compile is not tracing (reading a value would break the graph)."""
    return tensor.device.type == "cpu" and not torch.compiler.is_compiling()


class PerceiverBytePreTrainedModel(PreTrainedModel):
    config: PerceiverByteConfig
    config_class = PerceiverByteConfig
    base_model_prefix = "perceiver"
    main_input_name = "input_ids"
    supports_gradient_checkpointing = True
    _no_split_modules = ["PerceiverByteCrossAttentionLayer", "PerceiverByteSelfAttentionLayer"]
    _supports_sdpa = True
    _supports_attention_backend = True
    _can_compile_fullgraph = True
    # The loss is a mean over the batch. Without this, Trainer sees **kwargs in forward, assumes a sum to be divided by
    # the item count of all processes and accumulation steps, and scales the loss and gradient by their number.
    accepts_loss_kwargs = False
    _can_record_outputs = {
        "hidden_states": [PerceiverByteCrossAttentionLayer, PerceiverByteSelfAttentionLayer],
        "attentions": OutputRecorder(PerceiverByteAttention, index=1, layer_name="self_attn"),
        "cross_attentions": OutputRecorder(PerceiverByteAttention, index=1, layer_name="cross_attn"),
    }

    # Task-head weights: new, or left out, when a checkpoint of another head loads (base <-> classifier). Any other
    # missing, unexpected or mis-shaped weight means the weights do not fit config.json.
    _head_prefixes = ("norm.", "classifier.", "decoder.", "lm_head.", "token_classifier.")

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, *model_args, **kwargs):
        """transformers' `from_pretrained`, stricter: safetensors only unless `use_safetensors=False` is passed; a
        damaged weights file, and weights that do not fit config.json (shapes; body weights missing or unexpected),
        raise an error naming the file instead of a bare SafetensorError or randomly initialised layers.
        `ignore_mismatched_sizes=True` keeps transformers' behaviour (re-initialise what does not fit); with
        `output_loading_info=True` or an explicit `state_dict`, missing/unexpected weights are the caller's to judge."""
        kwargs.setdefault("use_safetensors", True)
        return_info = kwargs.pop("output_loading_info", False)
        lenient = kwargs.pop("ignore_mismatched_sizes", False)
        where = f"{pretrained_model_name_or_path}"
        try:
            model, info = super().from_pretrained(
                pretrained_model_name_or_path, *model_args, output_loading_info=True, ignore_mismatched_sizes=True,
                **kwargs,
            )  # fmt: skip
        except OSError as err:
            if kwargs["use_safetensors"] and "model.safetensors" in str(err):
                raise OSError(
                    f"{err} PerceiverByte loads safetensors weights only, unless asked: to unpickle a "
                    "pytorch_model.bin you trust, pass use_safetensors=False."
                ) from err
            raise
        except Exception as err:
            if type(err).__name__ == "SafetensorError":  # safetensors' own error names no file
                raise OSError(
                    f"Cannot read the weights file model.safetensors in {where}: {err}. The file is truncated or "
                    "corrupted; download or save it again."
                ) from err
            raise
        if not lenient:
            problems = []
            if info["mismatched_keys"]:
                shapes = sorted(
                    f"{k} {tuple(a)} in the file, {tuple(b)} for the config" for k, a, b in info["mismatched_keys"]
                )
                problems.append("shapes differ: " + "; ".join(shapes[:5]))
            if not return_info and kwargs.get("state_dict") is None:
                missing = sorted(k for k in info["missing_keys"] if not k.startswith(cls._head_prefixes))
                unexpected = sorted(k for k in info["unexpected_keys"] if not k.startswith(cls._head_prefixes))
                if missing:
                    problems.append(f"missing from the file: {missing[:5]}")
                if unexpected:
                    problems.append(f"in the file but not in the model: {unexpected[:5]}")
            if problems:  # RuntimeError: the type transformers raises for a shape mismatch
                raise RuntimeError(
                    f"The weights (model.safetensors) in {where} do not fit its config.json: {'; '.join(problems)}. "
                    "Check that config.json belongs to these weights; to replace weights of another size on purpose "
                    "(e.g. a new num_labels), pass ignore_mismatched_sizes=True."
                )
        return (model, info) if return_info else model

    def _init_weights(self, module):
        super()._init_weights(module)
        if isinstance(module, PerceiverByteModel):
            init.trunc_normal_(module.latents, mean=0.0, std=self.config.initializer_range)


class PerceiverByteModel(PerceiverBytePreTrainedModel):
    """The Perceiver: returns the latents (`last_hidden_state`, B x N x D) and their average (`pooler_output`)."""

    def __init__(self, config: PerceiverByteConfig):
        super().__init__(config)
        self.embeddings = PerceiverByteEmbeddings(config)
        self.latents = nn.Parameter(torch.empty(config.num_latents, config.d_latents))  # (N, D)
        self.cross_schedule = config.cross_attention_schedule
        self.self_schedule = config.self_attention_schedule
        num_layers = config.num_self_attends_per_block
        self.cross_layers = nn.ModuleList(
            PerceiverByteCrossAttentionLayer(config) for _ in range(max(self.cross_schedule) + 1)
        )
        self.self_layers = nn.ModuleList(
            PerceiverByteSelfAttentionLayer(config) for _ in range((max(self.self_schedule) + 1) * num_layers)
        )
        self.post_init()

    def get_input_embeddings(self):
        return self.embeddings.byte_embeddings

    def set_input_embeddings(self, value):
        self.embeddings.byte_embeddings = value

    def check_inputs(self, input_ids, attention_mask, inputs_embeds):
        """Clear errors for malformed inputs, before torch raises an obscure one from deep inside. The checks of values
        (ids in range, a 0/1 mask) run on CPU tensors only: on an accelerator, reading a value makes the host wait for
        the device at every step. There the tokenizer and the collator make the values (and nn.Embedding still stops
        at an id out of range)."""
        if (input_ids is None) == (inputs_embeds is None):
            raise ValueError("Pass exactly one of `input_ids` (B, M) or `inputs_embeds` (B, M, d_model).")
        arguments = {"input_ids": input_ids, "attention_mask": attention_mask, "inputs_embeds": inputs_embeds}
        for name, value in arguments.items():
            if value is not None and not isinstance(value, torch.Tensor):
                raise TypeError(
                    f"`{name}` must be a torch.Tensor, got {type(value).__name__}. Use PerceiverByteTokenizer(..., "
                    "return_tensors='pt') or torch.as_tensor(...)."
                )
        if input_ids is not None:
            if input_ids.dim() != 2 or input_ids.dtype not in (torch.int64, torch.int32):
                raise ValueError(
                    f"`input_ids` must be an integer tensor of shape (batch, length), int64 or int32; got "
                    f"{input_ids.dtype} of shape {tuple(input_ids.shape)}. Use PerceiverByteTokenizer(..., "
                    "return_tensors='pt'), or .long()."
                )
            shape = tuple(input_ids.shape)
            if cheap_to_read(input_ids) and input_ids.numel() > 0:
                low, high = int(input_ids.min()), int(input_ids.max())
                if low < 0 or high >= self.config.vocab_size:
                    raise ValueError(
                        f"`input_ids` must lie in [0, {self.config.vocab_size}) (byte b has id b + 6); got values in "
                        f"[{low}, {high}]."
                    )
        else:
            if inputs_embeds.dim() != 3 or inputs_embeds.shape[-1] != self.config.d_model:
                raise ValueError(
                    f"`inputs_embeds` must have shape (batch, length, d_model={self.config.d_model}); got "
                    f"{tuple(inputs_embeds.shape)}."
                )
            dtype = self.embeddings.byte_embeddings.weight.dtype
            if not inputs_embeds.is_floating_point() or (
                inputs_embeds.dtype != dtype and not torch.is_autocast_enabled(inputs_embeds.device.type)
            ):
                raise ValueError(
                    f"`inputs_embeds` must be a floating-point tensor of the model's dtype ({dtype}); got "
                    f"{inputs_embeds.dtype}. Convert it with .to({dtype})."
                )
            shape = tuple(inputs_embeds.shape[:2])
        if shape[0] == 0 or shape[1] == 0:
            name = "input_ids" if input_ids is not None else "inputs_embeds"
            raise ValueError(
                f"The input is empty: `{name}` has shape {shape}; pass at least one row of at least one byte."
            )
        if attention_mask is not None:
            if tuple(attention_mask.shape) != shape or attention_mask.is_complex():
                raise ValueError(
                    f"`attention_mask` must have the shape of the input, (batch, length) = {shape}, and a real dtype; "
                    f"got {attention_mask.dtype} of shape {tuple(attention_mask.shape)}."
                )
            if cheap_to_read(attention_mask) and not bool(((attention_mask == 0) | (attention_mask == 1)).all()):
                raise ValueError("`attention_mask` must hold 1 for real bytes and 0 for padding, nothing else.")
        if self.config.position_encoding_type == "learned" and shape[1] > self.config.max_position_embeddings:
            raise ValueError(
                f"The input has {shape[1]} positions but the learned position table has "
                f"max_position_embeddings={self.config.max_position_embeddings}. Truncate the input "
                f"(tokenizer max_length) or use position_encoding_type='fourier', which has no length limit."
            )

    def absorbs_projections(self) -> bool:
        """Whether the cross-attentions run in the absorbed form (see `PerceiverByteAttention`): as the config says, or
        (None) when that form needs fewer multiply-adds per byte. Streamed (chunked) inputs always use it."""
        if self.config.cross_attention_absorb_projections is not None:
            return self.config.cross_attention_absorb_projections
        config = self.config
        channels = config.attention_qk_channels + config.attention_v_channels  # K + V
        projected = (len(self.cross_layers) * config.d_model + config.num_blocks * config.num_latents) * channels
        absorbed = config.num_blocks * 2 * config.num_cross_attention_heads * config.num_latents * config.d_model
        return absorbed < projected

    @capture_outputs
    def forward(self, input_ids=None, attention_mask=None, inputs_embeds=None, **kwargs: Unpack[TransformersKwargs]):
        self.check_inputs(input_ids, attention_mask, inputs_embeds)
        batch = (input_ids if inputs_embeds is None else inputs_embeds).shape[0]
        source = PerceiverByteSource(self, input_ids, inputs_embeds, attention_mask, kwargs.get("output_attentions"))
        latents = self.latents.expand(batch, -1, -1)  # (B, N, D)
        layers = self.config.num_self_attends_per_block
        for cross_index, self_index in zip(self.cross_schedule, self.self_schedule):  # the R repeats
            latents = self.cross_layers[cross_index](latents, source, *source.tensors(cross_index), **kwargs)
            for layer in self.self_layers[self_index * layers : (self_index + 1) * layers]:  # the latent Transformer
                latents = layer(latents, **kwargs)
        return BaseModelOutputWithPoolingAndCrossAttentions(last_hidden_state=latents, pooler_output=latents.mean(1))


@dataclass
class PerceiverByteClassifierOutput(ModelOutput):
    """Output of the task heads: `loss` (when labels are given), `logits` ((B, num_labels) of a sequence classifier,
    (B, M, vocab_size or num_labels) of the per-byte heads), and on request the encoder's `hidden_states`,
    `attentions` (latent self-attention) and `cross_attentions` (B, h, N, M)."""

    loss: torch.FloatTensor | None = None
    logits: torch.FloatTensor | None = None
    hidden_states: tuple[torch.FloatTensor, ...] | None = None
    attentions: tuple[torch.FloatTensor, ...] | None = None
    cross_attentions: tuple[torch.FloatTensor, ...] | None = None


def check_class_ids(labels, num_classes: int) -> None:
    """Class ids in [0, num_classes) or -100 (not scored), checked where reading them is free: on an accelerator,
    cross_entropy stops at an id out of range itself."""
    if cheap_to_read(labels):
        valid = ((labels >= 0) & (labels < num_classes)) | (labels == -100)
        if not bool(valid.all()):
            raise ValueError(
                f"`labels` must be class ids in [0, {num_classes}) or -100 (not scored); got values in "
                f"[{int(labels.min())}, {int(labels.max())}]."
            )


def sequence_classification_loss(logits, labels, config: PerceiverByteConfig):
    """The loss of each `problem_type`, in one place. With `problem_type=None` it is inferred as transformers does
    (1 label: regression; integer labels: single-label; float labels: multi-label), and the config is left alone."""
    if not isinstance(labels, torch.Tensor):
        raise TypeError(f"`labels` must be a torch.Tensor, got {type(labels).__name__}.")
    if labels.is_complex():
        raise ValueError(f"`labels` must be real, got {labels.dtype}.")
    num_labels = logits.shape[-1]
    problem_type = config.problem_type
    if problem_type is None:
        if num_labels == 1:
            problem_type = "regression"
        elif not labels.is_floating_point():
            problem_type = "single_label_classification"
        else:
            problem_type = "multi_label_classification"
    batch = logits.shape[0]
    if problem_type == "single_label_classification":
        if labels.is_floating_point() or tuple(labels.shape) != (batch,):
            raise ValueError(
                f"`labels`: single_label_classification needs integer class ids of shape ({batch},); got "
                f"{labels.dtype} of shape {tuple(labels.shape)}."
            )
        check_class_ids(labels, num_labels)
        return F.cross_entropy(logits, labels.long())
    if problem_type == "multi_label_classification":
        if tuple(labels.shape) != (batch, num_labels):
            raise ValueError(
                f"`labels`: multi_label_classification needs 0/1 targets of shape ({batch}, {num_labels}); got "
                f"shape {tuple(labels.shape)}."
            )
        return F.binary_cross_entropy_with_logits(logits, labels.to(logits.dtype))
    if problem_type != "regression":
        raise ValueError(f"Unknown problem_type {problem_type!r}; choose one of {PROBLEM_TYPES}.")
    shapes = [(batch, num_labels)] + ([(batch,)] if num_labels == 1 else [])
    if tuple(labels.shape) not in shapes:
        raise ValueError(
            f"`labels`: regression needs {num_labels} target(s) per row, shape "
            f"{' or '.join(map(str, shapes))}; got shape {tuple(labels.shape)}."
        )
    return F.mse_loss(logits.reshape(-1), labels.reshape(-1).to(logits.dtype))


class PerceiverByteForSequenceClassification(PerceiverBytePreTrainedModel):
    """The Perceiver with the paper's head: average of the latents -> LayerNorm -> Linear -> logits."""

    def __init__(self, config: PerceiverByteConfig):
        super().__init__(config)
        self.perceiver = PerceiverByteModel(config)
        self.norm = nn.LayerNorm(config.d_latents, eps=config.layer_norm_eps)
        self.classifier = nn.Linear(config.d_latents, config.num_labels)
        self.post_init()

    @can_return_tuple
    def forward(
        self, input_ids=None, attention_mask=None, inputs_embeds=None, labels=None, **kwargs: Unpack[TransformersKwargs]
    ):
        outputs = self.perceiver(input_ids, attention_mask=attention_mask, inputs_embeds=inputs_embeds, **kwargs)
        logits = self.classifier(self.norm(outputs.pooler_output))  # (B, num_labels)
        loss = None if labels is None else sequence_classification_loss(logits, labels, self.config)
        return PerceiverByteClassifierOutput(
            loss=loss,
            logits=logits,
            hidden_states=outputs.hidden_states,
            attentions=outputs.attentions,
            cross_attentions=outputs.cross_attentions,
        )


class PerceiverByteDecoder(nn.Module):
    """Perceiver IO's decoder: one output query per byte attends to the final latents, then an MLP; pre-norm residual
    blocks whose residual stream starts at the query. The query of a position is the byte array there before pooling
    (its byte, the hashed n-grams that end at it, its position and the local mixing of its neighbours), so that each
    output knows which byte it stands for and the latents tell it about the whole input. Cost O(M * N).
    Inputs longer than `cross_attention_chunk_size` decode chunk by chunk: the queries of one chunk at a time, each
    chunk checkpointed in training, so that nothing of size M x (more than the output's channels) is kept."""

    def __init__(self, config: PerceiverByteConfig):
        super().__init__()
        self.config = config
        self.latents_norm = nn.LayerNorm(config.d_latents, eps=config.layer_norm_eps)
        self.query_norm = nn.LayerNorm(config.d_model, eps=config.layer_norm_eps)
        heads = config.num_cross_attention_heads
        self.attn = PerceiverByteAttention(config, heads, kv_dim=config.d_latents, q_dim=config.d_model)
        self.mlp_norm = nn.LayerNorm(config.d_model, eps=config.layer_norm_eps)
        self.mlp = PerceiverByteMLP(config, config.cross_attention_widening_factor, width=config.d_model)
        self.output_norm = nn.LayerNorm(config.d_model, eps=config.layer_norm_eps)
        self.dropout = nn.Dropout(config.hidden_dropout)

    def decode(self, queries, key, value):
        # queries (B, c, C); the latents' key (B, h, N, dk) and value (B, h, N, dv) -> (B, c, C)
        attended, _ = self.attn(self.query_norm(queries), tensors=(key, value))
        hidden_states = queries + self.dropout(attended)
        hidden_states = hidden_states + self.dropout(self.mlp(self.mlp_norm(hidden_states)))
        return self.output_norm(hidden_states)

    def forward(self, latents, embeddings, input_ids, inputs_embeds, attention_mask, head):
        # latents (B, N, D); the encoder's `PerceiverByteEmbeddings` and inputs -> head(decoded) (B, M, out), in the
        # inputs' order (the encoder's left-alignment is its own)
        key, value = self.attn.project_kv(self.latents_norm(latents))
        length = (input_ids if inputs_embeds is None else inputs_embeds).shape[1]
        position_ids = embeddings.position_ids(attention_mask, length, latents.device)
        inputs = input_ids, inputs_embeds, attention_mask, position_ids

        def decode_span(start, end, key, value):
            queries, _ = embeddings(*inputs, start, end, pooled=False)  # (B, end - start, C)
            return head(self.decode(queries, key, value))

        chunk = self.config.cross_attention_chunk_size
        if chunk is None or length <= chunk:
            return decode_span(0, length, key, value)
        spans = [(start, min(start + chunk, length)) for start in range(0, length, chunk)]
        if torch.is_grad_enabled():
            return torch.cat([checkpoint(decode_span, *span, key, value, use_reentrant=False) for span in spans], 1)
        return torch.cat([decode_span(*span, key, value) for span in spans], 1)


def per_byte_loss(logits, labels):
    """Cross-entropy over the positions whose label is not -100, averaged over them (0 when none is): logits
    (B, M, K), labels (B, M) integer ids in [0, K) or -100."""
    if not isinstance(labels, torch.Tensor):
        raise TypeError(f"`labels` must be a torch.Tensor, got {type(labels).__name__}.")
    num_classes = logits.shape[-1]
    if labels.is_floating_point() or labels.is_complex() or tuple(labels.shape) != tuple(logits.shape[:2]):
        raise ValueError(
            f"`labels` must be integer ids of shape (batch, length) = {tuple(logits.shape[:2])}, one per input "
            f"position, -100 where a position is not scored; got {labels.dtype} of shape {tuple(labels.shape)}."
        )
    check_class_ids(labels, num_classes)
    labels = labels.long().flatten()
    summed = F.cross_entropy(logits.flatten(0, 1).float(), labels, ignore_index=-100, reduction="sum")
    return summed / (labels != -100).sum().clamp(min=1)


class PerceiverBytePerByteModel(PerceiverBytePreTrainedModel):
    """The encoder, the decoder and a linear head over each decoded byte: logits (B, M, out_features)."""

    head_name: str  # the head's attribute, a key prefix of its weights

    def __init__(self, config: PerceiverByteConfig, out_features: int):
        super().__init__(config)
        self.perceiver = PerceiverByteModel(config)
        self.decoder = PerceiverByteDecoder(config)
        setattr(self, self.head_name, nn.Linear(config.d_model, out_features))
        self.post_init()

    @can_return_tuple
    def forward(
        self, input_ids=None, attention_mask=None, inputs_embeds=None, labels=None, **kwargs: Unpack[TransformersKwargs]
    ):
        outputs = self.perceiver(input_ids, attention_mask=attention_mask, inputs_embeds=inputs_embeds, **kwargs)
        head = getattr(self, self.head_name)
        logits = self.decoder(outputs.last_hidden_state, self.perceiver.embeddings, input_ids, inputs_embeds,
                              attention_mask, head)  # fmt: skip
        return PerceiverByteClassifierOutput(
            loss=None if labels is None else per_byte_loss(logits, labels),
            logits=logits,
            hidden_states=outputs.hidden_states,
            attentions=outputs.attentions,
            cross_attentions=outputs.cross_attentions,
        )


class PerceiverByteForMaskedLM(PerceiverBytePerByteModel):
    """Masked-byte language modelling: logits (B, M, vocab_size) over the ids of each byte; the loss counts the
    positions whose label is not -100 (the masked ones). Inputs mark the bytes to fill with [MASK] (id 3)."""

    head_name = "lm_head"

    def __init__(self, config: PerceiverByteConfig):
        super().__init__(config, config.vocab_size)


class PerceiverByteForTokenClassification(PerceiverBytePerByteModel):
    """A label per byte: logits (B, M, num_labels); labels (B, M), -100 where a position is not scored."""

    head_name = "token_classifier"

    def __init__(self, config: PerceiverByteConfig):
        super().__init__(config, config.num_labels)


__all__ = [
    "PerceiverByteForMaskedLM",
    "PerceiverByteForSequenceClassification",
    "PerceiverByteForTokenClassification",
    "PerceiverByteModel",
    "PerceiverBytePreTrainedModel",
]
