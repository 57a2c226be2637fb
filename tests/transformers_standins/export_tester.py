"""Stand-in for transformers' `tests/exporters/test_export.py`, which the sdist lacks.

`ModelTesterMixin` derives from `ExportTesterMixin`, whose real version runs every model class through transformers'
exporters (Dynamo, ONNX, OpenVINO, ExecuTorch) against eager outputs. This stand-in keeps the core of that in one
test: `torch.export` each model class with the tester's common inputs (static shapes, the Dynamo path, no extra
backend packages) and compare the exported program's outputs with eager ones. Like the real mixin it reads
`all_model_classes`, `model_tester`, `test_torch_exportable` and `_prepare_for_class` from the host class.
"""

import torch
from transformers.testing_utils import torch_device


def _leaf_tensors(output, prefix="output"):
    """{dotted name: tensor} for every tensor in a ModelOutput / tuple / dict tree."""
    if torch.is_tensor(output):
        return {prefix: output}
    if isinstance(output, dict):  # ModelOutput is an OrderedDict of its non-None fields
        items = output.items()
    elif isinstance(output, (list, tuple)):
        items = enumerate(output)
    else:
        return {}
    leaves = {}
    for key, value in items:
        leaves.update(_leaf_tensors(value, f"{prefix}.{key}"))
    return leaves


class ExportTesterMixin:
    """Minimal export test: `torch.export.export` then compare with eager (fp32, static shapes)."""

    def test_torch_export(self):
        if not self.test_torch_exportable:
            self.skipTest(reason="Model architecture is not Dynamo exportable/traceable")
        for model_class in self.all_model_classes:
            with self.subTest(model_class.__name__):
                config, inputs_dict = self.model_tester.prepare_config_and_inputs_for_common()
                inputs = self._prepare_for_class(inputs_dict, model_class)
                inputs = {key: value for key, value in inputs.items() if key not in ("labels", "return_loss")}
                model = model_class(config).to(torch_device).eval()
                with torch.no_grad():
                    eager = _leaf_tensors(model(**inputs))
                    program = torch.export.export(model, args=(), kwargs=inputs, strict=False)
                    exported = _leaf_tensors(program.module()(**inputs))
                self.assertTrue(eager, f"{model_class.__name__} returned no tensors")
                self.assertEqual(set(exported), set(eager))
                for name, expected in eager.items():
                    torch.testing.assert_close(exported[name], expected, rtol=1e-4, atol=1e-5, msg=name)
