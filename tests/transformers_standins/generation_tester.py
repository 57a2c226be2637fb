"""Stand-in for transformers' `tests/generation/test_utils.py`, which the sdist lacks.

`ModelTesterMixin` uses `GenerationTesterMixin` for one thing: `test_generation_tester_mixin_inheritance` checks
that a test class inherits it exactly when one of its model classes can `generate()`. An empty class is all that
check needs; a model that can generate would need the real generation tests, which this stand-in does not provide.
"""


class GenerationTesterMixin:
    """Marker only: the real mixin's `generate()` tests are not part of this stand-in."""
