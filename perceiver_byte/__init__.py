"""perceiver-byte: the Perceiver (Jaegle et al., 2021) for raw byte arrays, as a Hugging Face Transformers model.

Importing this package registers the classes with transformers' Auto classes (`AutoConfig.for_model("perceiver_byte")`,
`AutoModel`, `AutoModelForSequenceClassification`, `AutoModelForMaskedLM`, `AutoModelForTokenClassification`,
`AutoTokenizer`) and marks them for remote code, so that
`save_pretrained` writes the code files beside the weights and `from_pretrained(..., trust_remote_code=True)` works
where this package is not installed.
"""

from transformers import (
    AutoConfig,
    AutoModel,
    AutoModelForMaskedLM,
    AutoModelForSequenceClassification,
    AutoModelForTokenClassification,
    AutoTokenizer,
)

from .configuration_perceiver_byte import PerceiverByteConfig
from .modeling_perceiver_byte import (
    PerceiverByteForMaskedLM,
    PerceiverByteForSequenceClassification,
    PerceiverByteForTokenClassification,
    PerceiverByteModel,
    PerceiverBytePreTrainedModel,
)
from .tokenization_perceiver_byte import PerceiverByteTokenizer


__version__ = "0.1.0"

AutoConfig.register(PerceiverByteConfig.model_type, PerceiverByteConfig, exist_ok=True)
AutoModel.register(PerceiverByteConfig, PerceiverByteModel, exist_ok=True)
AutoModelForSequenceClassification.register(PerceiverByteConfig, PerceiverByteForSequenceClassification, exist_ok=True)
AutoModelForMaskedLM.register(PerceiverByteConfig, PerceiverByteForMaskedLM, exist_ok=True)
AutoModelForTokenClassification.register(PerceiverByteConfig, PerceiverByteForTokenClassification, exist_ok=True)
AutoTokenizer.register(PerceiverByteConfig, slow_tokenizer_class=PerceiverByteTokenizer, exist_ok=True)

PerceiverByteConfig.register_for_auto_class("AutoConfig")
PerceiverByteModel.register_for_auto_class("AutoModel")
PerceiverByteForSequenceClassification.register_for_auto_class("AutoModelForSequenceClassification")
PerceiverByteForMaskedLM.register_for_auto_class("AutoModelForMaskedLM")
PerceiverByteForTokenClassification.register_for_auto_class("AutoModelForTokenClassification")
PerceiverByteTokenizer.register_for_auto_class("AutoTokenizer")

__all__ = [
    "PerceiverByteConfig",
    "PerceiverByteForMaskedLM",
    "PerceiverByteForSequenceClassification",
    "PerceiverByteForTokenClassification",
    "PerceiverByteModel",
    "PerceiverBytePreTrainedModel",
    "PerceiverByteTokenizer",
]
