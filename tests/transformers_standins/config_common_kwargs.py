"""Stand-in for transformers' `tests/utils/test_configuration_utils.py`, which the sdist lacks.

`ConfigTester.check_config_arguments_init` (tests/test_configuration_common.py) imports `config_common_kwargs` from
it: one non-default value for each argument that every `PreTrainedConfig` accepts, passed to the config under test,
which must then hold each one. The keys are the public attributes of a bare `PreTrainedConfig()` in transformers 5
(less `is_encoder_decoder` and the bookkeeping ones, as upstream leaves them out); every value differs from the
default, so a config that drops or overrides one of them is caught.
"""

config_common_kwargs = {
    "return_dict": False,
    "output_hidden_states": True,
    "output_attentions": True,
    "dtype": "float16",
    "chunk_size_feed_forward": 5,
    "architectures": ["BertModel"],
    "id2label": {0: "label"},
    "label2id": {"label": "0"},
    "problem_type": "regression",
}
