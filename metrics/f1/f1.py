"""F1 score, as an `evaluate` metric module shipped with perceiver-byte.

The Hugging Face Hub's `f1` module cannot be fetched where there is no network, so the project ships its own and
loads it by path (no Hub access, no download):

    import evaluate
    f1 = evaluate.load("metrics/f1")                        # or the path of this file
    f1.compute(predictions=[0, 1, 2, 2], references=[0, 1, 1, 2], average="macro")          # {'f1': 0.777...}

    multilabel = evaluate.load("metrics/f1", "multilabel")  # rows of 0/1 indicators
    multilabel.compute(predictions=[[1, 0], [1, 1]], references=[[1, 0], [0, 1]], average="micro")  # {'f1': 0.8}

F1 is the harmonic mean of precision and recall, 2 * P * R / (P + R), computed with scikit-learn's `f1_score` (the
same numbers as the Hub module). `average` picks how per-class scores are combined: "binary" (the default, for two
classes), "macro" (unweighted mean over classes: every class counts the same), "micro" (from the global TP/FP/FN
counts: the usual choice for multi-label), "weighted" (mean weighted by class support), "samples" (multi-label only),
or None (one score per class, returned as a list).
"""

import datasets
import evaluate
from sklearn.metrics import f1_score


_DESCRIPTION = """
The F1 score is the harmonic mean of precision and recall: F1 = 2 * (precision * recall) / (precision + recall).
Per-class scores are combined according to `average`; for multi-label input (config "multilabel", rows of 0/1
indicators) use "micro", "macro", "weighted" or "samples".
"""

_KWARGS_DESCRIPTION = """
Args:
    predictions (`list` of `int`, or of `list` of `int` for "multilabel"): predicted labels.
    references (`list` of `int`, or of `list` of `int` for "multilabel"): ground truth labels.
    labels (`list` of `int`, defaults to `None`): the labels to include (for "macro": the classes averaged over).
        Defaults to every label present in `references` or `predictions`.
    pos_label (`int`, defaults to 1): the positive class when `average="binary"`.
    average (`str` or `None`, defaults to `"binary"`): "binary", "micro", "macro", "weighted", "samples" or None.
    sample_weight (`list` of `float`, defaults to `None`): sample weights.
    zero_division (`0`, `1` or `"warn"`, defaults to `"warn"`): the value of an undefined precision/recall (a class
        that is never predicted or never present); "warn" counts it as 0 and warns.

Returns:
    f1 (`float`, or `list` of `float` when `average=None`): in [0, 1], 1.0 is best.

Examples:
    >>> f1 = evaluate.load("metrics/f1")
    >>> f1.compute(predictions=[0, 2, 1, 0, 0, 1], references=[0, 1, 2, 0, 1, 2], average="macro")
    {'f1': 0.26666666666666666}
    >>> f1.compute(predictions=[0, 2, 1, 0, 0, 1], references=[0, 1, 2, 0, 1, 2], average="micro")
    {'f1': 0.3333333333333333}
"""

_CITATION = """
@article{scikit-learn,
  title={Scikit-learn: Machine Learning in {P}ython},
  author={Pedregosa, F. and Varoquaux, G. and Gramfort, A. and Michel, V. and Thirion, B. and Grisel, O. and
          Blondel, M. and Prettenhofer, P. and Weiss, R. and Dubourg, V. and Vanderplas, J. and Passos, A. and
          Cournapeau, D. and Brucher, M. and Perrot, M. and Duchesnay, E.},
  journal={Journal of Machine Learning Research},
  volume={12},
  pages={2825--2830},
  year={2011}
}
"""


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class F1(evaluate.Metric):
    def _info(self):
        if self.config_name == "multilabel":
            features = {"predictions": datasets.Sequence(datasets.Value("int32")),
                        "references": datasets.Sequence(datasets.Value("int32"))}  # fmt: skip
        else:
            features = {"predictions": datasets.Value("int32"), "references": datasets.Value("int32")}
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features(features),
            reference_urls=["https://scikit-learn.org/stable/modules/generated/sklearn.metrics.f1_score.html"],
        )

    def _compute(self, predictions, references, labels=None, pos_label=1, average="binary", sample_weight=None,
                 zero_division="warn"):  # fmt: skip
        score = f1_score(references, predictions, labels=labels, pos_label=pos_label, average=average,
                         sample_weight=sample_weight, zero_division=zero_division)  # fmt: skip
        return {"f1": score.tolist() if getattr(score, "size", 1) > 1 else float(score)}
