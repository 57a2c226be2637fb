"""scripts/language_segmentation.py: the mixed-language builder, the boundary scoring and a tiny end-to-end run."""

import math

import pytest

import language_segmentation as ls
from perceiver_byte import PerceiverByteTokenizer


LANGUAGES = ["cmn", "fin", "fra", "roh"]  # two scripts, multi-byte characters, a language with many paragraphs


@pytest.fixture(scope="module")
def rows():
    return {split: ls.load_rows(split) for split in ("train", "test")}


@pytest.fixture(scope="module")
def examples(rows):
    return {split: ls.build_examples(rows[split], LANGUAGES, 200, 512, f"0-{split}") for split in rows}


def test_the_builder_is_deterministic(rows, examples):
    assert ls.build_examples(rows["test"], LANGUAGES, 200, 512, "0-test") == examples["test"]
    assert ls.build_examples(rows["test"], LANGUAGES, 200, 512, "1-test") != examples["test"]


@pytest.mark.parametrize("split", ["train", "test"])
def test_every_labelled_span_is_text_of_its_language(rows, examples, split):
    for ex in examples[split]:
        data = ex["text"].encode("utf-8")
        assert len(data) <= 510 and 1 <= len(ex["spans"]) <= 3
        assert ex["spans"][0][0] == 0 and ex["spans"][-1][1] == len(data)
        assert all(a[1] == b[0] and a[2] != b[2] for a, b in zip(ex["spans"], ex["spans"][1:]))
        for start, end, language, row in ex["spans"]:
            piece = data[start:end].decode("utf-8").strip()  # raises if a span cuts a character
            assert piece and piece in " ".join(rows[split][language][row:])
        labels = ls.byte_labels(ex, {code: i for i, code in enumerate(LANGUAGES)})
        assert len(labels) == len(data)
    counts = {len(ex["spans"]) for ex in examples[split]}
    assert counts == {1, 2, 3}  # the model cannot assume exactly one boundary


def test_special_tokens_are_not_scored_and_byte_i_is_token_i_plus_1(examples):
    label_ids = {code: i for i, code in enumerate(LANGUAGES)}
    ds = ls.encode(examples["test"][:20], PerceiverByteTokenizer(), label_ids)
    for ex, item in zip(examples["test"], ds):
        ids, labels = item["input_ids"], item["labels"]
        assert labels[0] == labels[-1] == -100 and -100 not in labels[1:-1]
        assert bytes(i - 6 for i in ids[1:-1]) == ex["text"].encode("utf-8")
        assert labels[1:-1] == ls.byte_labels(ex, label_ids)


def test_train_and_test_texts_share_no_source_paragraph(rows, examples):
    def sources(split):
        return {(language, text) for ex in examples[split] for _, _, language, row in ex["spans"]
                for text in rows[split][language][row:row + 4]}  # fmt: skip  (a span may run on past `row`)

    assert not sources("train") & sources("test")
    assert not sources("test") & {(code, text) for code in LANGUAGES for text in rows["train"][code]}


@pytest.mark.parametrize(
    "true, predicted, matched",
    [([50], [50], 1), ([50], [42], 1), ([50], [58], 1), ([50], [59], 0), ([50, 100], [50], 1),
     ([50], [50, 120], 1), ([50], [46, 53], 1), ([], [10], 0)],
    ids=["exact", "off_by_minus_k", "off_by_k", "off_by_k_plus_1", "missed", "spurious", "one_to_one", "no_true"],
)  # fmt: skip
def test_boundary_matching(true, predicted, matched):
    assert ls.match_boundaries(true, predicted, tolerance=8) == matched


def scored(*predicted, gold=None):
    gold = gold or [[0] * 50 + [1] * 50]
    return ls.score(gold, list(predicted), num_labels=3, tolerance=8, min_run=8)


def test_boundary_scores_on_hand_made_predictions():
    exact = scored([0] * 50 + [1] * 50)
    assert (exact["precision"], exact["recall"], exact["f1"], exact["mean_abs_error"]) == (1, 1, 1, 0)
    off_by_k = scored([0] * 58 + [1] * 42)
    assert (off_by_k["f1"], off_by_k["mean_abs_error"], off_by_k["accuracy"]) == (1, 8, 0.92)
    too_far = scored([0] * 59 + [1] * 41)
    assert (too_far["precision"], too_far["recall"], too_far["f1"], too_far["mean_abs_error"]) == (0, 0, 0, 9)
    spurious = scored([0] * 50 + [1] * 20 + [2] * 20 + [1] * 10)  # an island of 20 bytes: 2 changes too many
    assert (spurious["precision"], spurious["recall"], spurious["predicted_changes"]) == (1 / 3, 1, 3)
    whole = scored([0] * 100)  # a sequence label: no change predicted
    assert math.isnan(whole["precision"]) and whole["recall"] == whole["f1"] == 0
    assert math.isnan(whole["mean_abs_error"]) and whole["accuracy"] == 0.5
    # over several texts: totals, and a missed boundary in a text with none predicted leaves the error alone
    two = ls.score([[0] * 50 + [1] * 50, [2] * 30 + [0] * 30], [[0] * 54 + [1] * 46, [2] * 60], 3, 8, 8)
    assert (two["precision"], two["recall"], two["mean_abs_error"]) == (1, 0.5, 4)


def test_smoothing_removes_runs_shorter_than_min_run_only():
    flicker = [0] * 50 + [1] * 3 + [0] * 10 + [1] * 50
    assert ls.changes(ls.smooth(flicker, 8)) == [63]
    assert ls.smooth([0] * 3 + [1] * 20, 8) == [1] * 23  # a short first run joins the next
    assert ls.smooth([0] * 8 + [1] * 8, 8) == [0] * 8 + [1] * 8
    assert ls.smooth([2] * 5, 8) == [2] * 5


def test_a_tiny_run_writes_the_report(tmp_path):
    out = tmp_path / "report.md"
    result = ls.main(["--num_languages", "3", "--train_examples", "32", "--test_examples", "8", "--max_steps", "2",
                      "--batch_size", "8", "--torch_num_threads", "1", "--out", str(out), "--config_overrides",
                      "d_model=16,d_latents=16,num_latents=4,ngram_buckets=64,num_self_attends_per_block=1"])  # fmt: skip
    report = out.read_text(encoding="utf-8")
    assert len(result["results"]) == 4 and result["model"]["steps"] == 2
    for name in result["results"]:
        assert f"| {name} |" in report
        assert 0 <= result["results"][name]["accuracy"] <= 1
    assert "language_segmentation.py --num_languages 3" in report and "| test | " in report
