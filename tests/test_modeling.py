"""Behaviour of the Perceiver byte model that users rely on: shapes, padding invariance, eager = SDPA, weight
sharing, save/load, gradient checkpointing, torch.compile, losses and clear errors on bad input."""

import copy

import pytest
import torch
from model_tester import count_params, tiny_config, tiny_inputs
from transformers import AutoConfig, AutoModel, AutoModelForSequenceClassification

from perceiver_byte import PerceiverByteConfig, PerceiverByteForSequenceClassification, PerceiverByteModel

SHARING = ("none", "all_but_first", "all")


def build(cls=PerceiverByteForSequenceClassification, seed=0, **overrides):
    torch.manual_seed(seed)
    return cls(tiny_config(**overrides)).eval()


# ----------------------------------------------------------------------------------------------- shapes and outputs
def test_base_model_output_shapes():
    config = tiny_config()
    model = build(PerceiverByteModel)
    ids, mask = tiny_inputs(batch=3, length=13)
    out = model(ids, attention_mask=mask, output_hidden_states=True, output_attentions=True)
    B, N, D, R, L = 3, config.num_latents, config.d_latents, config.num_blocks, config.num_self_attends_per_block
    assert out.last_hidden_state.shape == (B, N, D)
    assert torch.allclose(out.pooler_output, out.last_hidden_state.mean(1))
    assert len(out.hidden_states) == R * (1 + L) + 1 == config.num_hidden_layers + 1
    assert all(h.shape == (B, N, D) for h in out.hidden_states)
    assert torch.equal(out.hidden_states[-1], out.last_hidden_state)
    assert len(out.attentions) == R * L
    assert all(a.shape == (B, config.num_self_attention_heads, N, N) for a in out.attentions)
    assert len(out.cross_attentions) == R
    assert all(a.shape == (B, config.num_cross_attention_heads, N, 13) for a in out.cross_attentions)
    # attention over padding is zero, and each distribution sums to one
    first = out.cross_attentions[0]
    assert torch.all(first[1, :, :, 10:] == 0)
    torch.testing.assert_close(first.sum(-1), torch.ones_like(first.sum(-1)))


def test_classifier_outputs_and_return_dict_false():
    model = build()
    ids, mask = tiny_inputs()
    labels = torch.tensor([0, 2, 1])
    out = model(ids, attention_mask=mask, labels=labels, output_hidden_states=True, output_attentions=True)
    assert out.logits.shape == (3, 3) and out.loss.ndim == 0
    assert len(out.hidden_states) == 10 and len(out.attentions) == 6 and len(out.cross_attentions) == 3
    as_tuple = model(ids, attention_mask=mask, labels=labels, return_dict=False)
    assert isinstance(as_tuple, tuple) and len(as_tuple) == 2
    torch.testing.assert_close(as_tuple[0], out.loss)
    torch.testing.assert_close(as_tuple[1], out.logits)
    base_tuple = model.perceiver(ids, attention_mask=mask, return_dict=False)
    assert isinstance(base_tuple, tuple) and base_tuple[0].shape == (3, 8, 32) and base_tuple[1].shape == (3, 32)


def test_inputs_embeds_equals_input_ids():
    model = build()
    ids, mask = tiny_inputs()
    embeds = model.perceiver.embeddings.embed_ids(ids, mask)  # (B, M, C): byte + n-gram embeddings; any M x C array can be fed this way
    torch.testing.assert_close(model(inputs_embeds=embeds, attention_mask=mask).logits, model(ids, attention_mask=mask).logits)


# ----------------------------------------------------------------------------------------------- padding invariance
# ways to build the byte array: the default (n-grams 2-6, local mixing over 5), pooled by 3 (so 9 bytes and the padding
# fall across block boundaries), every order with wide mixing, pooling with narrow mixing, and bytes alone
BYTE_ARRAYS = {
    "default": {},
    "pooled": dict(downsampling_factor=3),
    "orders_1_8_kernel_7": dict(ngram_orders=[1, 8], local_kernel_size=7, ngram_embedding_size=None),
    "pooled_kernel_3": dict(downsampling_factor=4, local_kernel_size=3),
    "bytes_only": dict(ngram_orders=[], local_kernel_size=0),
    "normalized_values": dict(cross_attention_normalize_values=True),  # the paper's values
}


@pytest.mark.parametrize("byte_array", BYTE_ARRAYS)
@pytest.mark.parametrize("position_encoding_type", ["fourier", "learned", "none"])
def test_padding_does_not_change_logits(position_encoding_type, byte_array):
    model = build(position_encoding_type=position_encoding_type, max_position_embeddings=64, **BYTE_ARRAYS[byte_array])
    ids = torch.randint(6, 262, (1, 9))
    alone = model(ids).logits
    for side in ("right", "left"):
        pad = torch.zeros(1, 7, dtype=torch.long)
        padded = torch.cat([ids, pad], 1) if side == "right" else torch.cat([pad, ids], 1)
        mask = (padded != 0).long()
        other = torch.randint(6, 262, (1, 16))  # a longer neighbour in the batch
        batch_ids = torch.cat([padded, other])
        batch_mask = torch.cat([mask, torch.ones(1, 16, dtype=torch.long)])
        logits = model(batch_ids, attention_mask=batch_mask).logits[:1]
        assert (logits - alone).abs().max() <= 1e-5, side


def test_fully_masked_row_is_finite():
    model = build()
    ids, mask = tiny_inputs()
    mask[2] = 0
    for implementation in ("eager", "sdpa"):
        model.set_attn_implementation(implementation)
        out = model(ids, attention_mask=mask, labels=torch.tensor([0, 1, 2]))
        assert torch.isfinite(out.logits).all() and torch.isfinite(out.loss)
        out.loss.backward()
        assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)


# ----------------------------------------------------------------------------------------------- eager vs SDPA
@pytest.mark.parametrize("heads", [(1, 4), (2, 8)])
def test_eager_and_sdpa_agree(heads):
    cross_heads, self_heads = heads
    model = build(num_cross_attention_heads=cross_heads, num_self_attention_heads=self_heads)
    ids, mask = tiny_inputs(length=40)
    model.set_attn_implementation("eager")
    eager = model(ids, attention_mask=mask).logits
    model.set_attn_implementation("sdpa")
    assert model.config._attn_implementation == "sdpa"
    sdpa = model(ids, attention_mask=mask).logits
    assert (eager - sdpa).abs().max() <= 1e-5
    # with sdpa the self-attention is NOT causal: reversing the latents' order would otherwise matter
    assert model.perceiver.self_layers[0].self_attn.is_causal is False


def test_output_attentions_works_under_sdpa():
    model = build()
    assert model.config._attn_implementation == "sdpa"
    ids, mask = tiny_inputs()
    out = model(ids, attention_mask=mask, output_attentions=True)
    assert len(out.attentions) == 6 and len(out.cross_attentions) == 3


# ----------------------------------------------------------------------------------------------- weight sharing
def expected_parameter_count(config: PerceiverByteConfig) -> int:
    """Counted by hand from the architecture, independently of the model code."""
    C, D, N, R, L = config.d_model, config.d_latents, config.num_latents, config.num_blocks, config.num_self_attends_per_block
    qk, v = config.attention_qk_channels, config.attention_v_channels

    def linear(i, o):
        return i * o + o

    def norm(d):
        return 2 * d

    wc, ws = config.cross_attention_widening_factor, config.self_attention_widening_factor
    cross = norm(C) + norm(D) + linear(D, qk) + linear(C, qk + v) + linear(v, D) + norm(D) + linear(D, D * wc) + linear(D * wc, D)
    self_ = norm(D) + linear(D, 2 * qk + v) + linear(v, D) + norm(D) + linear(D, D * ws) + linear(D * ws, D)
    unique = {"none": R, "all_but_first": min(R, 2), "all": 1}
    embeddings = config.vocab_size * C + (config.max_position_embeddings * C if config.position_encoding_type == "learned" else 0)
    if config.ngram_orders:  # one hash table for all orders, projected to C when narrower
        width = config.ngram_embedding_size or C
        embeddings += config.ngram_buckets * width + (width * C if width != C else 0)
    if config.local_kernel_size:  # depthwise convolution (C filters of k taps + bias), then a C x C linear
        embeddings += C * config.local_kernel_size + C + linear(C, C)
    base = embeddings + N * D + cross * unique[config.cross_attention_weight_sharing]
    base += self_ * L * unique[config.self_attention_weight_sharing]
    return base + norm(D) + linear(D, config.num_labels)


@pytest.mark.parametrize("cross", SHARING)
@pytest.mark.parametrize("latent", SHARING)
def test_parameter_count_of_each_sharing_choice(cross, latent, tmp_path):
    model = build(num_blocks=4, cross_attention_weight_sharing=cross, self_attention_weight_sharing=latent)
    assert count_params(model) == expected_parameter_count(model.config)
    # no module object appears twice: sharing is a schedule over unique modules
    ids = [id(m) for m in model.modules()]
    assert len(ids) == len(set(ids))
    model.save_pretrained(tmp_path)
    loaded = PerceiverByteForSequenceClassification.from_pretrained(tmp_path).eval()
    assert count_params(loaded) == count_params(model)
    x, mask = tiny_inputs()
    torch.testing.assert_close(loaded(x, attention_mask=mask).logits, model(x, attention_mask=mask).logits, rtol=0, atol=0)


def test_schedules_follow_the_paper():
    model = build(PerceiverByteModel, num_blocks=4)
    assert model.cross_schedule == [0, 1, 1, 1] and len(model.cross_layers) == 2
    assert model.self_schedule == [0, 1, 1, 1] and len(model.self_layers) == 2 * 2
    model = build(PerceiverByteModel, num_blocks=4, cross_attention_weight_sharing="none", self_attention_weight_sharing="all")
    assert model.cross_schedule == [0, 1, 2, 3] and model.self_schedule == [0, 0, 0, 0]


def test_shared_cross_attention_projects_keys_values_once(monkeypatch):
    model = build(
        PerceiverByteModel, num_blocks=5, cross_attention_weight_sharing="all_but_first",
        cross_attention_absorb_projections=False,
    )  # fmt: skip
    calls = []
    for i, layer in enumerate(model.cross_layers):
        original = layer.project_kv
        monkeypatch.setattr(layer, "project_kv", lambda *a, _o=original, _i=i: calls.append(_i) or _o(*a))
    ids, mask = tiny_inputs()
    model(ids, attention_mask=mask)
    assert calls == [0, 1]  # 5 repeats, 2 unique cross-attentions: keys/values computed twice, not five times


def test_paper_imagenet_preset_on_meta_device():
    config = PerceiverByteConfig.paper_imagenet(num_labels=1000)
    with torch.device("meta"):
        model = PerceiverByteForSequenceClassification(config)
    assert count_params(model) == expected_parameter_count(config)
    assert model.perceiver.cross_schedule == [0] + [1] * 7 and model.perceiver.self_schedule == [0] * 8
    assert count_params(model) == 48_049_768  # the paper reports 44.9M; README explains the 3.1M difference


# ----------------------------------------------------------------------------------------------- save / load / auto
def test_save_load_round_trip_and_auto_classes(tmp_path):
    model = build()
    model.save_pretrained(tmp_path)
    assert (tmp_path / "model.safetensors").exists()
    assert (tmp_path / "modeling_perceiver_byte.py").exists() and (tmp_path / "configuration_perceiver_byte.py").exists()
    auto_map = AutoConfig.from_pretrained(tmp_path).auto_map
    assert set(auto_map) >= {"AutoConfig", "AutoModel", "AutoModelForSequenceClassification"}
    loaded = AutoModelForSequenceClassification.from_pretrained(tmp_path).eval()
    assert type(loaded) is PerceiverByteForSequenceClassification
    ids, mask = tiny_inputs()
    torch.testing.assert_close(loaded(ids, attention_mask=mask).logits, model(ids, attention_mask=mask).logits, rtol=0, atol=0)
    base = AutoModel.from_pretrained(tmp_path).eval()
    torch.testing.assert_close(base(ids, attention_mask=mask).last_hidden_state, model.perceiver(ids, attention_mask=mask).last_hidden_state)


def test_auto_config_for_model():
    config = AutoConfig.for_model("perceiver_byte", num_labels=3)
    assert isinstance(config, PerceiverByteConfig) and config.num_labels == 3
    model = AutoModelForSequenceClassification.from_config(config)
    assert isinstance(model, PerceiverByteForSequenceClassification)


# ----------------------------------------------------------------------------------------------- training paths
@pytest.mark.parametrize("sharing", ["all_but_first", "all"])
def test_gradient_checkpointing_gives_the_same_gradients(sharing):
    model = build(cross_attention_weight_sharing=sharing, self_attention_weight_sharing=sharing).train()
    ids, mask = tiny_inputs()
    labels = torch.tensor([0, 1, 2])

    def grads(m):
        m.zero_grad()
        m(ids, attention_mask=mask, labels=labels).loss.backward()
        return {n: p.grad.clone() for n, p in m.named_parameters() if p.grad is not None}

    plain = grads(model)
    checkpointed = copy.deepcopy(model)
    checkpointed.gradient_checkpointing_enable()
    assert all(layer.gradient_checkpointing for layer in checkpointed.perceiver.cross_layers)
    with_ckpt = grads(checkpointed)
    assert plain.keys() == with_ckpt.keys() and len(plain) == len(list(model.parameters()))
    for name in plain:
        torch.testing.assert_close(with_ckpt[name], plain[name], rtol=1e-5, atol=1e-6, msg=name)


def test_torch_compile_forward_and_backward():
    model = build().train()
    ids, mask = tiny_inputs()
    labels = torch.tensor([0, 1, 2])
    eager_loss = model(ids, attention_mask=mask, labels=labels).loss
    compiled = torch.compile(model, fullgraph=True)  # fullgraph: any graph break is an error
    loss = compiled(ids, attention_mask=mask, labels=labels).loss
    loss.backward()
    torch.testing.assert_close(loss, eager_loss, rtol=1e-4, atol=1e-5)
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters() if p.requires_grad)


@pytest.mark.parametrize("chunk", [None, 8])
@pytest.mark.parametrize("implementation", ["eager", "sdpa"])
def test_bf16_autocast_runs_and_stays_close_to_float32(chunk, implementation):
    model = build(cross_attention_chunk_size=chunk)
    model.set_attn_implementation(implementation)
    ids, mask = tiny_inputs(length=29)
    reference = model(ids, attention_mask=mask).logits
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = model(ids, attention_mask=mask, labels=torch.tensor([0, 1, 2]))
    assert out.logits.dtype == torch.bfloat16
    assert (out.logits.float() - reference).abs().max() <= 0.02
    out.loss.backward()
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)


def test_losses_of_each_problem_type_and_config_untouched():
    ids, mask = tiny_inputs()
    model = build()
    before = model.config.to_dict()
    single = model(ids, attention_mask=mask, labels=torch.tensor([0, 2, 1])).loss
    torch.testing.assert_close(single, torch.nn.functional.cross_entropy(model(ids, attention_mask=mask).logits, torch.tensor([0, 2, 1])))
    multi_targets = torch.tensor([[1.0, 0.0, 1.0], [0.0, 0.0, 1.0], [1.0, 1.0, 0.0]])
    multi = model(ids, attention_mask=mask, labels=multi_targets).loss
    torch.testing.assert_close(
        multi, torch.nn.functional.binary_cross_entropy_with_logits(model(ids, attention_mask=mask).logits, multi_targets)
    )
    assert model.config.to_dict() == before and model.config.problem_type is None  # forward never mutates the config
    regression = build(num_labels=1)
    target = torch.tensor([0.5, -1.0, 2.0])
    loss = regression(ids, attention_mask=mask, labels=target).loss
    torch.testing.assert_close(loss, torch.nn.functional.mse_loss(regression(ids, attention_mask=mask).logits.squeeze(-1), target))
    explicit = build(problem_type="multi_label_classification")
    with pytest.raises(ValueError, match="multi_label_classification needs 0/1 targets of shape"):
        explicit(ids, attention_mask=mask, labels=torch.tensor([0, 1, 2]))


# ----------------------------------------------------------------------------------------------- bad input
@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(input_ids=torch.tensor([[6, 300]])), r"must lie in \[0, 262\)"),
        (dict(input_ids=torch.tensor([[6, -1]])), r"must lie in \[0, 262\)"),
        (dict(input_ids=torch.tensor([[6.0, 7.0]])), "integer tensor of shape"),
        (dict(input_ids=torch.tensor([6, 7])), "integer tensor of shape"),
        (dict(input_ids=torch.tensor([[6, 7]]), attention_mask=torch.ones(1, 3)), "attention_mask` must have the shape"),
        (dict(input_ids=torch.tensor([[6, 7]]), attention_mask=torch.tensor([[0.5, 1.0]])), "1 for real bytes and 0"),
        (dict(input_ids=torch.tensor([[6, 7]]), inputs_embeds=torch.zeros(1, 2, 16)), "exactly one of"),
        (dict(), "exactly one of"),
        (dict(input_ids=torch.zeros(0, 5, dtype=torch.long)), "The input is empty"),
        (dict(input_ids=torch.zeros(2, 0, dtype=torch.long)), "The input is empty"),
        (dict(inputs_embeds=torch.zeros(1, 4, 7)), "d_model=16"),
        (dict(input_ids=torch.tensor([[6, 7]]), labels=torch.tensor([[0.5, 0.5]])), "needs 0/1 targets|integer class ids"),
        (dict(input_ids=torch.tensor([[6, 7]]), labels=torch.tensor([0, 1])), r"integer class ids of shape \(1,\)"),
    ],
)
def test_bad_inputs_raise_clear_errors(kwargs, message):
    model = build()
    with pytest.raises(ValueError, match=message):
        model(**kwargs)


def test_learned_positions_reject_over_long_input():
    model = build(position_encoding_type="learned", max_position_embeddings=16)
    model(torch.randint(6, 262, (1, 16)))
    with pytest.raises(ValueError, match="max_position_embeddings=16.*position_encoding_type='fourier'"):
        model(torch.randint(6, 262, (1, 17)))


def test_fourier_positions_have_no_length_limit():
    model = build(fourier_max_resolution=64)
    assert torch.isfinite(model(torch.randint(6, 262, (1, 5000))).logits).all()


# ----------------------------------------------------------------------------------------------- config validation
@pytest.mark.parametrize(
    "field, value, error",
    [
        ("num_latents", 0, ValueError), ("num_latents", 2.5, TypeError), ("num_latents", True, TypeError),
        ("d_latents", -4, ValueError), ("d_model", 0, ValueError), ("d_model", "16", TypeError),
        ("num_blocks", 0, ValueError), ("num_self_attends_per_block", -1, ValueError),
        ("num_cross_attention_heads", 3, ValueError), ("num_self_attention_heads", 5, ValueError),
        ("qk_channels", 0, ValueError), ("v_channels", 1.0, TypeError),
        ("cross_attention_widening_factor", 0, ValueError), ("self_attention_widening_factor", None, TypeError),
        ("hidden_act", "no_such_act", ValueError), ("hidden_act", 3, TypeError),
        ("attention_dropout", 1.0, ValueError), ("hidden_dropout", -0.1, ValueError), ("hidden_dropout", "0.1", TypeError),
        ("layer_norm_eps", 0.0, ValueError), ("initializer_range", -1.0, ValueError),
        ("position_encoding_type", "rotary", ValueError), ("fourier_max_resolution", 0, ValueError),
        ("ngram_orders", [2, 9], ValueError), ("ngram_orders", [3, 3], ValueError), ("ngram_orders", 3, TypeError),
        ("ngram_buckets", 0, ValueError), ("local_kernel_size", 4, ValueError), ("downsampling_factor", 0, ValueError),
        ("ngram_embedding_size", 0, ValueError),
        ("max_position_embeddings", 0, ValueError),
        ("cross_attention_weight_sharing", "some", ValueError), ("self_attention_weight_sharing", "every", ValueError),
        ("vocab_size", 100, ValueError), ("pad_token_id", 262, ValueError), ("bos_token_id", -1, ValueError),
        ("eos_token_id", "2", TypeError),
    ],
)  # fmt: skip
def test_config_validation_names_the_field(field, value, error):
    with pytest.raises(error, match=field):
        tiny_config(**{field: value})


def test_config_round_trip(tmp_path):
    config = tiny_config(cross_attention_weight_sharing="all", position_encoding_type="learned", qk_channels=64)
    config.save_pretrained(tmp_path)
    loaded = PerceiverByteConfig.from_pretrained(tmp_path)
    assert loaded.to_dict() == config.to_dict()
    assert loaded.qk_channels == 64 and loaded.cross_attention_weight_sharing == "all"


def test_every_config_field_is_read_by_the_model():
    """No field that nothing reads: each declared field appears in the model or tokenizer code."""
    import dataclasses
    import inspect

    import perceiver_byte.configuration_perceiver_byte as configuration
    import perceiver_byte.modeling_perceiver_byte as modeling

    config_class = configuration.PerceiverByteConfig
    derived = [getattr(config_class, name).fget for name in ("attention_qk_channels", "attention_v_channels",
                                                             "cross_attention_schedule", "self_attention_schedule")]
    source = inspect.getsource(modeling) + inspect.getsource(config_class.validate_architecture)
    source += "".join(inspect.getsource(f) for f in derived).replace("self.", "config.")  # read through a property
    own = [f.name for f in dataclasses.fields(PerceiverByteConfig) if f.name in PerceiverByteConfig.__annotations__]
    assert len(own) >= 20
    unread = [name for name in own if f"config.{name}" not in source and name not in ("vocab_size", "bos_token_id", "eos_token_id")]
    assert unread == []


# ----------------------------------------------------------------------------------------- absorbed cross-attention
def with_perturbed_norms(model):
    """LayerNorm affines away from their (1, 0) initialisation, so that folding them into the queries is exercised."""
    torch.manual_seed(1)
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            if "norm" in name:
                parameter.add_(torch.randn_like(parameter) * 0.5)
    return model


def logits_and_grads(model, ids, mask, labels, seed=0):
    model.zero_grad()
    torch.manual_seed(seed)
    out = model(ids, attention_mask=mask, labels=labels)
    out.loss.backward()
    return out.logits.detach(), {name: p.grad.clone() for name, p in model.named_parameters()}


def assert_same_logits_and_grads(reference, model, ids, mask, labels, seed=0):
    expected, expected_grads = logits_and_grads(reference, ids, mask, labels, seed)
    got, grads = logits_and_grads(model, ids, mask, labels, seed)
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)
    for name, grad in expected_grads.items():
        torch.testing.assert_close(grads[name], grad, rtol=1e-4, atol=1e-5, msg=name)


@pytest.mark.parametrize("heads", [1, 2])
@pytest.mark.parametrize("implementation", ["sdpa", "eager"])
@pytest.mark.parametrize("chunk", [None, 7])
@pytest.mark.parametrize("sharing", SHARING)
@pytest.mark.parametrize("normalize_values", [False, True])
def test_absorbed_cross_attention_equals_projected(heads, implementation, chunk, sharing, normalize_values):
    """The absorbed form (key/value projections folded into the latents' queries and outputs) computes the same logits
    and the same gradients for every parameter as the projected form, including a fully padded row."""
    common = dict(num_blocks=3, num_cross_attention_heads=heads, cross_attention_weight_sharing=sharing,
                  cross_attention_normalize_values=normalize_values)  # fmt: skip
    projected = with_perturbed_norms(build(cross_attention_absorb_projections=False, **common)).train()
    absorbed = build(cross_attention_absorb_projections=True, cross_attention_chunk_size=chunk, **common).train()
    absorbed.load_state_dict(projected.state_dict())
    for model in (projected, absorbed):
        model.set_attn_implementation(implementation)
    ids, mask = tiny_inputs(length=23)
    mask[2] = 0
    assert_same_logits_and_grads(projected, absorbed, ids, mask, torch.tensor([0, 1, 2]))


@pytest.mark.parametrize("heads", [1, 2])
def test_absorbed_cross_attention_with_attention_dropout(heads):
    """With dropout the kept probabilities no longer sum to one, and the absorbed form counts them (a channel of ones
    among the values): under eager attention both forms draw the same dropout mask and must agree exactly."""
    common = dict(num_blocks=2, num_cross_attention_heads=heads, attention_dropout=0.3)
    projected = with_perturbed_norms(build(cross_attention_absorb_projections=False, **common)).train()
    absorbed = build(cross_attention_absorb_projections=True, **common).train()
    absorbed.load_state_dict(projected.state_dict())
    for model in (projected, absorbed):
        model.set_attn_implementation("eager")
    ids, mask = tiny_inputs(length=23)
    labels = torch.tensor([0, 1, 2])
    dropped = [logits_and_grads(projected, ids, mask, labels, seed)[0] for seed in (3, 4)]
    assert not torch.allclose(*dropped)  # dropout is on: another seed, other logits
    assert_same_logits_and_grads(projected, absorbed, ids, mask, labels, seed=3)


def test_absorbed_cross_attention_forms_no_keys_or_values(monkeypatch):
    model = build(PerceiverByteModel, num_blocks=4, cross_attention_absorb_projections=True)
    for layer in model.cross_layers:
        monkeypatch.setattr(layer.cross_attn.kv_proj, "forward", lambda x: pytest.fail("keys/values were projected"))
    ids, mask = tiny_inputs()
    model(ids, attention_mask=mask).last_hidden_state.sum().backward()
    assert all(layer.cross_attn.kv_proj.weight.grad is not None for layer in model.cross_layers)


def test_cross_attention_form_chosen_by_cost():
    """None chooses the form with fewer multiply-adds per byte: absorbed for the default (1 cross-attention head),
    projected when many heads over few latents make folding dearer; an explicit choice wins."""
    assert PerceiverByteModel(PerceiverByteConfig()).absorbs_projections()
    many_heads = dict(num_cross_attention_heads=16, num_blocks=1, d_model=256, qk_channels=64)
    assert not PerceiverByteModel(PerceiverByteConfig(**many_heads)).absorbs_projections()
    assert PerceiverByteModel(PerceiverByteConfig(**many_heads, cross_attention_absorb_projections=True)).absorbs_projections()
    assert not PerceiverByteModel(PerceiverByteConfig(cross_attention_absorb_projections=False)).absorbs_projections()


@pytest.mark.parametrize("absorb", [False, True])
def test_fully_padded_row_gradients_agree_between_attention_kernels(absorb):
    """A row without one real byte: SDPA's backward and eager's give the same gradients (with every position masked,
    float32 rounding made SDPA's recomputed probabilities M times too large)."""
    sdpa = build(cross_attention_absorb_projections=absorb).train()
    eager = build(cross_attention_absorb_projections=absorb).train()
    eager.set_attn_implementation("eager")
    ids, mask = tiny_inputs(length=23)
    mask[1] = 0
    assert_same_logits_and_grads(eager, sdpa, ids, mask, torch.tensor([0, 1, 2]))


# ----------------------------------------------------------------------------------------------- chunked cross-attention
@pytest.mark.parametrize(("chunk", "byte_array"), [(1, "default"), (5, "default"), (12, "default"), (64, "default"),
                                                   (3, "pooled"), (9, "pooled"), (4, "pooled_kernel_3"),
                                                   (5, "orders_1_8_kernel_7"), (6, "bytes_only")])  # fmt: skip
def test_chunked_cross_attention_equals_whole(chunk, byte_array):
    """Streaming equals the whole input, n-grams and convolutions across chunk boundaries and pooled blocks included."""
    whole = build(num_blocks=4, num_cross_attention_heads=2, **BYTE_ARRAYS[byte_array])
    chunked = build(num_blocks=4, num_cross_attention_heads=2, cross_attention_chunk_size=chunk, **BYTE_ARRAYS[byte_array])
    chunked.load_state_dict(whole.state_dict())
    ids, mask = tiny_inputs(length=37)  # 37 is divisible by no chunk size used here
    mask[1] = mask[1].flip(0)  # one row padded on the left
    mask[2] = 0  # and one fully padded row
    expected = whole(ids, attention_mask=mask).logits
    got = chunked(ids, attention_mask=mask).logits
    assert torch.isfinite(got).all()
    assert (got - expected).abs().max() <= 1e-5
    # gradients agree too (on the rows with real bytes: a fully padded row has no meaningful gradient, only a finite one)
    labels = torch.tensor([0, 1])
    for m in (whole, chunked):
        m.train().zero_grad()
        m(ids[:2], attention_mask=mask[:2], labels=labels).loss.backward()
    for (name, a), (_, b) in zip(whole.named_parameters(), chunked.named_parameters()):
        torch.testing.assert_close(b.grad, a.grad, rtol=1e-4, atol=1e-6, msg=name)


def test_chunked_with_gradient_checkpointing_and_inputs_embeds():
    model = build(cross_attention_chunk_size=8).train()
    model.gradient_checkpointing_enable()
    ids, mask = tiny_inputs(length=30)
    embeds = model.perceiver.embeddings.embed_ids(ids, mask).detach().requires_grad_(True)
    loss = model(inputs_embeds=embeds, attention_mask=mask, labels=torch.tensor([0, 1, 2])).loss
    loss.backward()
    assert model.perceiver.cross_layers[0].cross_attn.kv_proj.weight.grad is not None
    assert torch.isfinite(loss)


def test_the_default_configuration_streams_long_inputs_with_the_whole_result():
    """Bounded memory needs no flag: the default streams inputs longer than its chunk size, with the whole path's
    logits and gradients (a padded row included)."""
    config = PerceiverByteConfig(num_labels=3, ngram_buckets=4096)
    assert config.cross_attention_chunk_size == 4096
    torch.manual_seed(0)
    default = PerceiverByteForSequenceClassification(config)
    whole = copy.deepcopy(default)
    whole.config.cross_attention_chunk_size = None
    ids = torch.randint(6, 262, (2, 10000))  # three chunks, the last one partial
    mask = torch.ones_like(ids)
    mask[1, 7000:] = 0
    from perceiver_byte.modeling_perceiver_byte import PerceiverByteSource

    assert PerceiverByteSource(default.perceiver, ids, None, mask).streamed
    assert not PerceiverByteSource(whole.perceiver, ids, None, mask).streamed
    labels = torch.tensor([0, 2])
    outputs = [m.train()(ids, attention_mask=mask, labels=labels) for m in (default, whole)]
    assert (outputs[0].logits - outputs[1].logits).abs().max() <= 1e-5
    for out in outputs:
        out.loss.backward()
    for (name, a), (_, b) in zip(whole.named_parameters(), default.named_parameters()):
        torch.testing.assert_close(b.grad, a.grad, rtol=1e-4, atol=1e-6, msg=name)


@pytest.mark.parametrize("head", ["sequence", "token"])
def test_one_mebibyte_input_with_the_default_configuration_stays_under_one_gibibyte(head):
    """The issue's bound, in a fresh process (scripts/long_input_memory.py's worker): one 1 MiB input through the
    default model, peak RSS above the model and the input; with the per-byte head (4 labels), its 1 Mi decoded
    queries too."""
    import json
    import subprocess
    import sys
    from pathlib import Path

    script = Path(__file__).resolve().parents[1] / "scripts" / "long_input_memory.py"
    chunk = str(PerceiverByteConfig().cross_attention_chunk_size)  # the default's
    done = subprocess.run([sys.executable, str(script), "--worker", str(2**20), chunk, "inference", head],
                          capture_output=True, text=True, timeout=300)  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    peak = json.loads(done.stdout.strip().splitlines()[-1])["peak_above_mib"]
    assert peak < 1024, f"{peak:.0f} MiB"


# ----------------------------------------------------------------------------------------------- the byte array
def test_hashed_ngrams_depend_on_their_bytes_only():
    """The bucket of an n-gram is a function of its n bytes and its order: the same n-gram gets the same bucket at any
    position and in any row, bytes before the row start count as [PAD], and a byte outside the n-gram changes nothing."""
    from perceiver_byte.modeling_perceiver_byte import hash_ngrams

    orders, buckets = [1, 2, 3, 5], 1009
    ids = torch.randint(6, 12, (4, 40))  # few distinct bytes: many repeated n-grams
    got = hash_ngrams(ids, orders, buckets, pad_token_id=0)
    assert got.shape == (4, 40, len(orders)) and got.dtype == torch.int64
    assert int(got.min()) >= 0 and int(got.max()) < buckets
    seen = {}
    for row in range(4):
        for i in range(40):
            for k, n in enumerate(orders):
                gram = (n, tuple(int(ids[row, j]) if j >= 0 else 0 for j in range(i - n + 1, i + 1)))
                assert seen.setdefault(gram, int(got[row, i, k])) == int(got[row, i, k]), gram
    # different orders of the same bytes, and different n-grams, spread over the buckets
    assert len(set(seen.values())) > 0.8 * min(len(seen), buckets)
    changed = ids.clone()
    changed[:, 20] = 15  # outside every n-gram ending at 25 or later (longest order 5)
    assert torch.equal(hash_ngrams(changed, orders, buckets, 0)[:, 25:], got[:, 25:])


def test_ngram_embeddings_are_summed_and_projected():
    model = build(ngram_orders=[2, 4], ngram_embedding_size=8, ngram_buckets=50)
    embeddings = model.perceiver.embeddings
    ids, mask = tiny_inputs()
    from perceiver_byte.modeling_perceiver_byte import hash_ngrams

    padded = ids.masked_fill(mask == 0, 0)
    buckets = hash_ngrams(padded, [2, 4], 50, 0)  # (B, M, 2)
    expected = embeddings.byte_embeddings(padded) + embeddings.ngram_projection(
        embeddings.ngram_embeddings(buckets).sum(2)
    )
    torch.testing.assert_close(embeddings.embed_ids(ids, mask), expected)


def test_pooled_byte_array_has_one_row_per_block_of_real_bytes():
    model = build(PerceiverByteModel, downsampling_factor=4)
    ids, mask = tiny_inputs(batch=3, length=13)  # rows of 13, 10 and 7 real bytes
    mask[1] = mask[1].flip(0)  # left padding
    out = model(ids, attention_mask=mask, output_attentions=True)
    cross = out.cross_attentions[0]  # (B, h, N, ceil(13 / 4))
    assert cross.shape[-1] == 4
    blocks = [4, 3, 2]  # ceil(real / 4): the rest of each row is padding and gets no weight
    for row, real in enumerate(blocks):
        assert torch.all(cross[row, ..., real:] == 0) and torch.all(cross[row, ..., :real].sum(-1) > 0.999)


def test_config_of_an_older_version_keeps_its_byte_array(tmp_path):
    """A config.json saved before the n-gram and mixing fields existed describes a model without them: it loads as such
    (no new weights initialised at random), not with the newer defaults."""
    import json

    model = build(ngram_orders=[], local_kernel_size=0)
    model.save_pretrained(tmp_path)
    config_file = tmp_path / "config.json"
    fields = json.loads(config_file.read_text())
    for name in ("ngram_orders", "ngram_buckets", "ngram_embedding_size", "local_kernel_size", "downsampling_factor"):
        fields.pop(name)
    config_file.write_text(json.dumps(fields))
    loaded = PerceiverByteForSequenceClassification.from_pretrained(tmp_path).eval()
    assert loaded.config.ngram_orders == [] and loaded.config.local_kernel_size == 0
    ids, mask = tiny_inputs()
    torch.testing.assert_close(loaded(ids, attention_mask=mask).logits, model(ids, attention_mask=mask).logits)


@pytest.mark.parametrize(
    "form", [dict(), dict(cross_attention_absorb_projections=False), dict(cross_attention_chunk_size=8)]
)
def test_forward_and_loss_read_no_values_off_the_host(form):
    """On an accelerator, reading a tensor's value (`.item()`, `int()`, `bool()`) makes the host wait for the device.
    Meta tensors stand in for an accelerator's: they have no values, so any such read in the forward, the loss or the
    backward would raise here."""
    with torch.device("meta"):
        model = PerceiverByteForSequenceClassification(tiny_config(**form)).train()
    ids, mask = tiny_inputs(length=23)
    out = model(ids.to("meta"), attention_mask=mask.to("meta"), labels=torch.tensor([0, 1, 2], device="meta"))
    out.loss.backward()
    assert out.logits.shape == (3, 3)
