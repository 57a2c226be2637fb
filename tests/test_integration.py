"""The model inside the ecosystem: the user's snippet as written, remote-code loading in a clean process where the
package is not importable, the pipeline, and the real Trainer."""

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import torch
from datasets import Dataset
from model_tester import BLOCK_PACKAGE, tiny_config
from transformers import DataCollatorWithPadding, Trainer, TrainingArguments, pipeline

from perceiver_byte import PerceiverByteForSequenceClassification, PerceiverByteTokenizer



def run_python(code: str, cwd: Path, tmp_path: Path) -> str:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.update(HF_HUB_OFFLINE="1", HF_HOME=str(tmp_path / "hf_home"), TOKENIZERS_PARALLELISM="false")
    done = subprocess.run([sys.executable, "-c", code], cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-4000:]
    return done.stdout


def test_the_users_snippet_as_written(tmp_path):
    code = textwrap.dedent(
        """
        import torch, perceiver_byte                      # importing registers the Auto classes
        from transformers import AutoConfig, AutoModelForSequenceClassification, AutoTokenizer, pipeline
        config = AutoConfig.for_model("perceiver_byte", num_labels=3)
        model = AutoModelForSequenceClassification.from_config(config)
        tok = perceiver_byte.PerceiverByteTokenizer()
        batch = tok(["héllo wörld", b"\\x89PNG\\r\\n\\x1a\\n\\x00\\xff binary"], padding=True, truncation=True,
                    max_length=4096, return_tensors="pt")
        out = model(**batch, labels=torch.tensor([0, 2]))   # out.loss, out.logits (2, 3)
        assert out.logits.shape == (2, 3) and out.loss.ndim == 0
        model.save_pretrained("d"); tok.save_pretrained("d")
        print("saved")
        """
    )
    assert "saved" in run_python(code, tmp_path, tmp_path)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    later = BLOCK_PACKAGE + textwrap.dedent(
        f"""
        from transformers import AutoModelForSequenceClassification, AutoTokenizer, pipeline
        d = {str(tmp_path / "d")!r}
        model = AutoModelForSequenceClassification.from_pretrained(d, trust_remote_code=True)
        tok = AutoTokenizer.from_pretrained(d, trust_remote_code=True)
        result = pipeline("text-classification", model=d, trust_remote_code=True)("some text")
        print(type(model).__name__, type(tok).__name__, result[0]["label"])
        """
    )
    out = run_python(later, elsewhere, tmp_path)
    assert "PerceiverByteForSequenceClassification PerceiverByteTokenizer LABEL_" in out


def test_remote_code_gives_identical_logits(tmp_path):
    torch.manual_seed(0)
    model = PerceiverByteForSequenceClassification(tiny_config(cross_attention_weight_sharing="all")).eval()
    tok = PerceiverByteTokenizer()
    model.save_pretrained(tmp_path / "m")
    tok.save_pretrained(tmp_path / "m")
    texts = ["Alle Menschen sind frei", "\x00\x01 binary \xff", "é"]
    batch = tok(texts, padding=True, return_tensors="pt")
    expected = model(**batch).logits.tolist()
    (tmp_path / "expected.json").write_text(json.dumps({"texts": texts, "logits": expected}))
    code = BLOCK_PACKAGE + textwrap.dedent(
        f"""
        import json, torch
        from transformers import AutoModelForSequenceClassification, AutoTokenizer
        d = {str(tmp_path / "m")!r}
        ref = json.load(open({str(tmp_path / "expected.json")!r}))
        model = AutoModelForSequenceClassification.from_pretrained(d, trust_remote_code=True).eval()
        tok = AutoTokenizer.from_pretrained(d, trust_remote_code=True)
        assert model.config.cross_attention_weight_sharing == "all"
        logits = model(**tok(ref["texts"], padding=True, return_tensors="pt")).logits
        assert torch.equal(logits, torch.tensor(ref["logits"])), (logits, ref["logits"])
        print("identical", type(model).__module__)
        """
    )
    out = run_python(code, tmp_path, tmp_path)
    assert "identical transformers_modules" in out


def test_pipeline_in_process(tmp_path):
    torch.manual_seed(0)
    config = tiny_config(num_labels=2, id2label={0: "neg", 1: "pos"}, label2id={"neg": 0, "pos": 1})
    PerceiverByteForSequenceClassification(config).save_pretrained(tmp_path)
    PerceiverByteTokenizer().save_pretrained(tmp_path)
    classify = pipeline("text-classification", model=str(tmp_path), top_k=None)
    scores = classify(["great", "awful"])
    assert [sorted(s["label"] for s in row) for row in scores] == [["neg", "pos"], ["neg", "pos"]]
    assert all(abs(sum(s["score"] for s in row) - 1) < 1e-5 for row in scores)


def test_three_trainer_steps_lower_the_loss(tmp_path):
    torch.manual_seed(0)
    tok = PerceiverByteTokenizer()
    texts = ["aaaa aaa aa", "zzzz zz zzz", "aaa aaaa", "zz zzzz z"] * 4
    labels = [0, 1, 0, 1] * 4
    data = Dataset.from_dict({"text": texts, "label": labels}).map(lambda b: tok(b["text"]), batched=True)
    data = data.remove_columns("text")
    model = PerceiverByteForSequenceClassification(tiny_config(num_labels=2))
    collator = DataCollatorWithPadding(tok)
    batch = collator([data[i] for i in range(len(data))])

    def loss_now():
        model.eval()
        with torch.no_grad():
            return model(**batch).loss.item()

    before = loss_now()
    args = TrainingArguments(
        output_dir=str(tmp_path), max_steps=3, per_device_train_batch_size=16, learning_rate=3e-3,
        warmup_steps=0, report_to=[], use_cpu=True, save_strategy="no", logging_steps=1, seed=0,
    )  # fmt: skip
    trainer = Trainer(model=model, args=args, train_dataset=data, data_collator=collator)
    result = trainer.train()
    after = loss_now()
    assert result.global_step == 3
    assert np.isfinite(result.training_loss)
    assert after < before, (before, after)


def test_trainer_gradient_accumulation_keeps_the_loss_a_mean(tmp_path):
    """A plain Trainer (not scripts/train.py) with 2 accumulation steps of 4 logs the loss of one step of 8: the
    model's loss is a batch mean, and `accepts_loss_kwargs = False` tells Trainer so (it would otherwise read the
    **kwargs of forward as a loss it must rescale, doubling the logged loss and the gradient)."""
    tok = PerceiverByteTokenizer()
    texts = ["aaaa aaa aa", "zzzz zz zzz", "aaa aaaa", "zz zzzz z"] * 2
    data = Dataset.from_dict({"text": texts, "label": [0, 1, 0, 1] * 2}).map(lambda b: tok(b["text"]), batched=True)
    data = data.remove_columns("text")
    losses = {}
    for accumulation, batch_size in ((1, 8), (2, 4)):
        torch.manual_seed(0)
        model = PerceiverByteForSequenceClassification(tiny_config(num_labels=2))
        args = TrainingArguments(
            output_dir=str(tmp_path / str(accumulation)), max_steps=2, per_device_train_batch_size=batch_size,
            gradient_accumulation_steps=accumulation, learning_rate=1e-2, optim="sgd", max_grad_norm=0.0,
            report_to=[], use_cpu=True, save_strategy="no", logging_steps=1, seed=0, data_seed=0,
        )  # fmt: skip
        trainer = Trainer(model=model, args=args, train_dataset=data, data_collator=DataCollatorWithPadding(tok))
        assert trainer.model_accepts_loss_kwargs is False
        trainer.train()
        losses[accumulation] = [h["loss"] for h in trainer.state.log_history if "loss" in h]
    assert len(losses[1]) == len(losses[2]) == 2
    np.testing.assert_allclose(losses[2], losses[1], rtol=1e-4)
