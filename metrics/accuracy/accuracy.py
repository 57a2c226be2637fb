"""Accuracy, as an `evaluate` metric module shipped with perceiver-byte.

The Hugging Face Hub's `accuracy` module cannot be fetched where there is no network, so the project ships its own
and loads it by path (no Hub access, no download):

    import evaluate
    accuracy = evaluate.load("metrics/accuracy")          # or the path of this file
    accuracy.compute(predictions=[0, 1, 1], references=[0, 1, 0])               # {'accuracy': 0.666...}

    multilabel = evaluate.load("metrics/accuracy", "multilabel")                 # 0/1 indicator rows
    multilabel.compute(predictions=[[1, 0], [1, 1]], references=[[1, 0], [0, 1]])  # {'accuracy': 0.5}

Single-label: the share of predictions equal to their reference. Multi-label (`config_name="multilabel"`): subset
accuracy, the share of rows whose whole label set is predicted exactly. Computed with scikit-learn's
`accuracy_score`, so the result is the same as the Hub module's.
"""

import datasets
import evaluate
from sklearn.metrics import accuracy_score


_DESCRIPTION = """
Accuracy is the proportion of correct predictions among the examples:
    Accuracy = (TP + TN) / (TP + TN + FP + FN)
For multi-label input (config "multilabel", rows of 0/1 indicators) it is subset accuracy: a row counts as correct only
when its predicted label set equals its reference set.
"""

_KWARGS_DESCRIPTION = """
Args:
    predictions (`list` of `int`, or of `list` of `int` for "multilabel"): predicted labels.
    references (`list` of `int`, or of `list` of `int` for "multilabel"): ground truth labels.
    normalize (`bool`, defaults to `True`): if `False`, return the number of correct examples instead of the share.
    sample_weight (`list` of `float`, defaults to `None`): sample weights.

Returns:
    accuracy (`float` or `int`): in [0, 1] when `normalize=True` (1.0 is best), else the count of correct examples.

Examples:
    >>> accuracy = evaluate.load("metrics/accuracy")
    >>> accuracy.compute(references=[0, 1, 2, 0, 1, 2], predictions=[0, 1, 1, 2, 1, 0])
    {'accuracy': 0.5}
    >>> accuracy.compute(references=[0, 1, 2, 0, 1, 2], predictions=[0, 1, 1, 2, 1, 0], normalize=False)
    {'accuracy': 3.0}
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
class Accuracy(evaluate.Metric):
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
            reference_urls=["https://scikit-learn.org/stable/modules/generated/sklearn.metrics.accuracy_score.html"],
        )

    def _compute(self, predictions, references, normalize=True, sample_weight=None):
        return {"accuracy": float(accuracy_score(references, predictions, normalize=normalize, sample_weight=sample_weight))}
