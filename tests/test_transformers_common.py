"""transformers' own common model tests (`ModelTesterMixin`, `ConfigTester`) run on PerceiverByte.

The tests come from `tests/` of the installed transformers release's sdist, fetched (never committed) into
`.transformers_tests/` by `python scripts/fetch_transformers_tests.py`; without them this module is skipped. Every
common test that cannot apply to this model is skipped in one place, `SKIPPED` below, with its reason.

Shapes the mixin checks, and the tester attributes that give them (B batch, M bytes, N latents, D = d_latents):
- `seq_length` = M: the input length (inputs, attention masks);
- `encoder_seq_length` = `key_length` = N: hidden states are (B, N, D) and the latent self-attention maps
  (B, heads, N, N), since every layer works on the latents, not on the bytes;
- `num_hidden_layers` = R * L: the number of self-attention maps (`outputs.attentions`), which is what the mixin
  counts; `expected_num_hidden_layers` = R * (1 + L) + 1: the hidden states (the latents after each of the R
  cross-attention and R * L self-attention layers, plus the initial latents). `config.num_hidden_layers` is the
  R * (1 + L) layers the latents pass through.
"""

import importlib.metadata
import sys
import unittest
from pathlib import Path
from unittest import mock

import pytest


FETCHED = Path(__file__).resolve().parent.parent / ".transformers_tests"
FETCH_COMMAND = "python scripts/fetch_transformers_tests.py"

if not (FETCHED / "hf_tests" / "test_modeling_common.py").is_file():
    pytest.skip(
        f"transformers' common model tests are not fetched into {FETCHED.name}/: run `{FETCH_COMMAND}`",
        allow_module_level=True,
    )
_fetched_version = (FETCHED / "VERSION").read_text().strip() if (FETCHED / "VERSION").is_file() else None
if _fetched_version != importlib.metadata.version("transformers"):
    pytest.skip(
        f"{FETCHED.name}/ holds the common tests of transformers {_fetched_version}, but "
        f"{importlib.metadata.version('transformers')} is installed: run `{FETCH_COMMAND}` again",
        allow_module_level=True,
    )
pytest.importorskip("parameterized", reason="transformers' common model tests need the `parameterized` package")

sys.path.insert(0, str(FETCHED))

import torch  # noqa: E402
from hf_tests.test_configuration_common import ConfigTester  # noqa: E402
from hf_tests.test_modeling_common import ModelTesterMixin, ids_tensor, random_attention_mask  # noqa: E402
from transformers.models.auto import modeling_auto  # noqa: E402
from transformers.testing_utils import torch_device  # noqa: E402

from perceiver_byte import (  # noqa: E402
    PerceiverByteConfig,
    PerceiverByteForMaskedLM,
    PerceiverByteForSequenceClassification,
    PerceiverByteForTokenClassification,
    PerceiverByteModel,
)


class PerceiverByteModelTester:
    """Builds a tiny config and random inputs, the way transformers' per-model testers do."""

    def __init__(
        self,
        parent,
        batch_size=3,
        seq_length=13,  # M bytes; deliberately != num_latents, so that a shape mix-up shows
        is_training=True,
        use_attention_mask=True,
        use_labels=True,
        vocab_size=262,
        d_model=16,
        num_latents=8,
        d_latents=32,
        num_blocks=2,
        num_self_attends_per_block=1,
        num_cross_attention_heads=1,
        num_self_attention_heads=4,
        cross_attention_widening_factor=1,
        self_attention_widening_factor=2,
        # Repeat 2 reuses repeat 1's cross-attention (so a shared module runs twice: its output recording, its
        # keys/values computed once); the latent Transformers are not shared (two sets of self-attention weights).
        cross_attention_weight_sharing="all",
        self_attention_weight_sharing="none",
        ngram_buckets=97,  # the default n-gram orders and local mixing, with a small hash table
        num_labels=3,
    ):
        self.parent = parent
        self.ngram_buckets = ngram_buckets
        self.batch_size = batch_size
        self.seq_length = seq_length
        self.is_training = is_training
        self.use_attention_mask = use_attention_mask
        self.use_labels = use_labels
        self.vocab_size = vocab_size
        self.d_model = d_model
        self.num_latents = num_latents
        self.d_latents = d_latents
        self.num_blocks = num_blocks
        self.num_self_attends_per_block = num_self_attends_per_block
        self.num_cross_attention_heads = num_cross_attention_heads
        self.num_self_attention_heads = num_self_attention_heads
        self.cross_attention_widening_factor = cross_attention_widening_factor
        self.self_attention_widening_factor = self_attention_widening_factor
        self.cross_attention_weight_sharing = cross_attention_weight_sharing
        self.self_attention_weight_sharing = self_attention_weight_sharing
        self.num_labels = num_labels

        # What ModelTesterMixin reads (see the module docstring).
        self.hidden_size = d_latents
        self.num_attention_heads = num_self_attention_heads
        self.encoder_seq_length = num_latents
        self.key_length = num_latents
        self.num_hidden_layers = num_blocks * num_self_attends_per_block
        self.expected_num_hidden_layers = num_blocks * (1 + num_self_attends_per_block) + 1

    def get_config(self):
        return PerceiverByteConfig(
            vocab_size=self.vocab_size,
            d_model=self.d_model,
            num_latents=self.num_latents,
            d_latents=self.d_latents,
            num_blocks=self.num_blocks,
            num_self_attends_per_block=self.num_self_attends_per_block,
            num_cross_attention_heads=self.num_cross_attention_heads,
            num_self_attention_heads=self.num_self_attention_heads,
            cross_attention_widening_factor=self.cross_attention_widening_factor,
            self_attention_widening_factor=self.self_attention_widening_factor,
            cross_attention_weight_sharing=self.cross_attention_weight_sharing,
            self_attention_weight_sharing=self.self_attention_weight_sharing,
            ngram_buckets=self.ngram_buckets,
            local_kernel_size=3,  # off by default; on here so that the common tests cover it
            num_labels=self.num_labels,
        )

    def prepare_config_and_inputs(self):
        input_ids = ids_tensor([self.batch_size, self.seq_length], self.vocab_size)
        attention_mask = None
        if self.use_attention_mask:
            attention_mask = random_attention_mask([self.batch_size, self.seq_length])
        labels = None
        if self.use_labels:
            labels = ids_tensor([self.batch_size], self.num_labels)
        return self.get_config(), input_ids, attention_mask, labels

    def prepare_config_and_inputs_for_common(self):
        config, input_ids, attention_mask, _ = self.prepare_config_and_inputs()
        inputs_dict = {"input_ids": input_ids}
        if attention_mask is not None:
            inputs_dict["attention_mask"] = attention_mask
        return config, inputs_dict

    def create_and_check_model(self, config, input_ids, attention_mask, labels):
        model = PerceiverByteModel(config).to(torch_device).eval()
        with torch.no_grad():
            result = model(input_ids, attention_mask=attention_mask)
            result_no_mask = model(input_ids)
        shape = (self.batch_size, self.num_latents, self.d_latents)
        self.parent.assertEqual(tuple(result.last_hidden_state.shape), shape)
        self.parent.assertEqual(tuple(result_no_mask.last_hidden_state.shape), shape)
        self.parent.assertEqual(tuple(result.pooler_output.shape), (self.batch_size, self.d_latents))

    def create_and_check_output_shapes(self, config, input_ids, attention_mask, labels):
        """What the mixin cannot check for a non-encoder-decoder: the R cross-attention maps (B, heads, N, M), next
        to the R * L self-attention maps (B, heads, N, N) and the R * (1 + L) + 1 hidden states (B, N, D)."""
        for model_class in PerceiverByteModelTest.all_model_classes:
            model = model_class(config).to(torch_device).eval()
            with torch.no_grad():
                out = model(input_ids, attention_mask=attention_mask, output_attentions=True, output_hidden_states=True)
            self.parent.assertEqual(len(out.cross_attentions), self.num_blocks)
            for cross in out.cross_attentions:
                self.parent.assertEqual(
                    tuple(cross.shape),
                    (self.batch_size, self.num_cross_attention_heads, self.num_latents, self.seq_length),
                )
            self.parent.assertEqual(len(out.attentions), self.num_hidden_layers)
            for attention in out.attentions:
                self.parent.assertEqual(
                    tuple(attention.shape),
                    (self.batch_size, self.num_self_attention_heads, self.num_latents, self.num_latents),
                )
            self.parent.assertEqual(len(out.hidden_states), self.expected_num_hidden_layers)
            for hidden in out.hidden_states:
                self.parent.assertEqual(tuple(hidden.shape), (self.batch_size, self.num_latents, self.d_latents))
            if attention_mask is not None:  # masked bytes get no cross-attention weight
                for cross in out.cross_attentions:
                    masked = cross.masked_select(attention_mask[:, None, None, :] == 0)
                    self.parent.assertTrue(bool((masked == 0).all()))

    def create_and_check_for_sequence_classification(self, config, input_ids, attention_mask, labels):
        model = PerceiverByteForSequenceClassification(config).to(torch_device).eval()
        with torch.no_grad():
            result = model(input_ids, attention_mask=attention_mask, labels=labels)
        self.parent.assertEqual(tuple(result.logits.shape), (self.batch_size, self.num_labels))
        self.parent.assertEqual(result.loss.dim(), 0)


_NOT_COMPOSITE = "PerceiverByteConfig has no sub-configs: the model is not composite (no vision/text towers)"
_NO_ROPE = "no rotary position embeddings: bytes get Fourier (or learned/no) absolute encodings, added once"
_NO_MOE = "no mixture-of-experts layers: every MLP is dense"
_NO_FP32_MODULES = "no module is kept in float32 (`_keep_in_fp32_modules` is not needed: no such numerics)"
_NO_CONVERSION = "no checkpoint key conversion mapping: weights are saved and loaded under their own names"

# Every common test that cannot apply to PerceiverByte, with its reason: the one place such tests are skipped.
# (Tests that need hardware or packages a CPU machine lacks -- accelerators, DeepSpeed, flash-attention, kernels --
# skip themselves through transformers' `require_*` decorators and run where those exist; `@slow` ones are also
# deselected by the project's `-m 'not slow'`.) A name here that the mixin no longer has fails
# `test_skip_list_is_current`, so stale entries cannot pile up.
SKIPPED = {
    # composite (multi-tower) models only
    "test_attn_implementation_composite_models": _NOT_COMPOSITE,
    "test_can_set_attention_dynamically_composite_model": _NOT_COMPOSITE,
    "test_sdpa_can_dispatch_composite_models": _NOT_COMPOSITE,
    "test_flash_attn_2_can_dispatch_composite_models": _NOT_COMPOSITE,
    "test_flash_attn_3_can_dispatch_composite_models": _NOT_COMPOSITE,
    "test_flash_attn_4_can_dispatch_composite_models": _NOT_COMPOSITE,
    "test_internal_model_config_and_subconfig_are_same": _NOT_COMPOSITE,
    # language-modeling heads only
    "test_causal_lm_loss_honors_shift_labels": "no causal language-modeling head (masked-byte LM only): no shifted labels",
    "test_encoder_decoder_loss_no_double_shift": "not an encoder-decoder: no decoder, no shifted labels",
    "test_bc_cache_name_forward": "no key/value cache: forward takes no `past_key_values` (nothing is generated)",
    # rotary position embeddings only
    "test_model_rope_scaling_frequencies": _NO_ROPE,
    "test_model_rope_scaling_from_config_0_linear": _NO_ROPE,
    "test_model_rope_scaling_from_config_1_dynamic": _NO_ROPE,
    "test_model_rope_scaling_from_config_2_yarn": _NO_ROPE,
    "test_model_rope_with_partial_rotation": _NO_ROPE,
    "test_vision_axial_rope": _NO_ROPE,
    # mixture-of-experts only
    "test_eager_matches_batched_and_grouped_inference_0_fp16": _NO_MOE,
    "test_eager_matches_batched_and_grouped_inference_1_fp32": _NO_MOE,
    "test_eager_matches_batched_and_grouped_inference_2_bf16": _NO_MOE,
    "test_moe_models_record_router_logits": _NO_MOE,
    "test_output_router_logits_from_config": _NO_MOE,
    # other features the model does not have
    "test_sliding_window_mask": "no sliding-window attention: every latent attends to all bytes and all latents",
    "test_resize_position_vector_embeddings": (
        "the default Fourier encoding has no table to resize (it covers any length), and the optional learned "
        "table is sized by max_position_embeddings at construction; the model has no resize_position_embeddings"
    ),
    "test_tp_plan_matches_params": "no tensor-parallel plan (`base_model_tp_plan`): a small CPU classifier",
    "test_keep_in_fp32_modules_exist": _NO_FP32_MODULES,
    "test_keep_in_fp32_modules": _NO_FP32_MODULES,
    "test_keep_in_fp32_modules_strict_also_hardcode_fp32": _NO_FP32_MODULES,
    "test_reverse_loading_mapping": _NO_CONVERSION,
    "test_can_load_from_already_mapped_keys": _NO_CONVERSION,
    "test_can_capture_specific_layers_hidden_states": (
        "hidden states are recorded from two layer classes (cross- and self-attention layers, interleaved), so "
        "transformers cannot select layers by index (`output_hidden_states=[...]`); all hidden states are returned"
    ),
}


class PerceiverByteModelTest(ModelTesterMixin, unittest.TestCase):
    all_model_classes = (
        PerceiverByteModel,
        PerceiverByteForSequenceClassification,
        PerceiverByteForMaskedLM,
        PerceiverByteForTokenClassification,
    )
    # The mixin dates a model by a "# Copyright YYYY" line in its config file and skips this test for models from
    # before 2023 ("not a prioritized model"); our files carry no such line but the model is new, and its
    # `_init_weights` must handle every weight, so run it.
    test_can_init_all_missing_weights_before_2023 = True

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        # transformers' common tests tell base models from task heads by class name, through the `*_MAPPING_NAMES`
        # tables of in-library models (e.g. base models are not trained, sequence classifiers get integer labels).
        # PerceiverByte is registered with the Auto classes at run time (`perceiver_byte/__init__.py`), which those
        # name tables don't see, so enter it for the duration of these tests, as an in-library model would be.
        model_type = PerceiverByteConfig.model_type
        cls._mapping_patches = [
            mock.patch.dict(modeling_auto.MODEL_MAPPING_NAMES, {model_type: PerceiverByteModel.__name__}),
            mock.patch.dict(
                modeling_auto.MODEL_FOR_SEQUENCE_CLASSIFICATION_MAPPING_NAMES,
                {model_type: PerceiverByteForSequenceClassification.__name__},
            ),
            mock.patch.dict(
                modeling_auto.MODEL_FOR_MASKED_LM_MAPPING_NAMES, {model_type: PerceiverByteForMaskedLM.__name__}
            ),
            mock.patch.dict(
                modeling_auto.MODEL_FOR_TOKEN_CLASSIFICATION_MAPPING_NAMES,
                {model_type: PerceiverByteForTokenClassification.__name__},
            ),
        ]
        for patch in cls._mapping_patches:
            patch.start()

    @classmethod
    def tearDownClass(cls):
        for patch in reversed(cls._mapping_patches):
            patch.stop()
        super().tearDownClass()

    def setUp(self):
        self.model_tester = PerceiverByteModelTester(self)
        self.config_tester = ConfigTester(
            self,
            config_class=PerceiverByteConfig,
            has_text_modality=True,  # checks `vocab_size`
            # The config's names for hidden_size / num_attention_heads (it has no aliases for them).
            common_properties=["d_latents", "num_self_attention_heads", "num_hidden_layers"],
            d_model=16,
            num_latents=8,
            d_latents=32,
            num_blocks=2,
            num_self_attends_per_block=1,
            num_self_attention_heads=4,
        )

    def test_config(self):
        self.config_tester.run_common_tests()

    def test_model(self):
        self.model_tester.create_and_check_model(*self.model_tester.prepare_config_and_inputs())

    def test_output_shapes(self):
        self.model_tester.create_and_check_output_shapes(*self.model_tester.prepare_config_and_inputs())

    def test_for_sequence_classification(self):
        self.model_tester.create_and_check_for_sequence_classification(*self.model_tester.prepare_config_and_inputs())

    def test_inputs_embeds_matches_input_ids(self):
        """The mixin's test feeds `get_input_embeddings()(input_ids)`, the byte embeddings alone; here the byte array
        of ids also holds hashed n-gram embeddings, which read the attention mask (padding counts as [PAD]). So the
        same check with what `inputs_embeds` must hold to reproduce `input_ids`: `embeddings.embed_ids(ids, mask)`."""
        config, inputs = self.model_tester.prepare_config_and_inputs_for_common()
        self.assertTrue(config.ngram_orders, "the tester's config must use n-grams for this test to mean anything")
        for model_class in self.all_model_classes:
            model = model_class(config).to(torch_device).eval()
            embeds = model.base_model.embeddings.embed_ids(inputs["input_ids"], inputs["attention_mask"])
            with torch.no_grad():
                out_ids = model(**inputs)[0]
                out_embeds = model(inputs_embeds=embeds, attention_mask=inputs["attention_mask"])[0]
            torch.testing.assert_close(out_embeds, out_ids)

    def test_skip_list_is_current(self):
        stale = sorted(name for name in SKIPPED if not hasattr(ModelTesterMixin, name))
        self.assertEqual(stale, [], "SKIPPED names tests that transformers' ModelTesterMixin no longer has")


for _name, _reason in SKIPPED.items():
    if hasattr(PerceiverByteModelTest, _name):
        setattr(PerceiverByteModelTest, _name, unittest.skip(_reason)(getattr(PerceiverByteModelTest, _name)))
