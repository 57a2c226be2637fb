"""Faults during training: SIGKILL at random moments and while a checkpoint is written, 2 processes vs 1 (and
gradient accumulation), mixed precision on long inputs with large attention logits.

A checkpoint is complete when `scripts/train.py`'s `checkpoint_problem` finds nothing wrong: a parseable
trainer_state.json for its step (Trainer writes it last), the weights, optimizer.pt and scheduler.pt present and whole.
Resuming takes the newest complete checkpoint and moves any newer, incomplete one aside to incomplete-checkpoint-N.
Because a resumed run is bit-identical to an uninterrupted one here (same seed, one thread, no dropout), every fault
test ends by comparing the final weights with those of an uninterrupted reference run, exactly.

    python -m pytest tests/test_faults.py                # default: 2 real kills, 13 simulated kill points, ~40 s
    python -m pytest tests/test_faults.py -m slow        # a chain of 12 real kills at seeded random moments
"""

import json
import math
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from test_train import LANGS, SCRIPT, TINY, run_main, tiny_args, train_script, udhr_rows, write_csv


MAX_STEPS = 200  # long enough (1-3 s of training) for kills to land between and inside checkpoint writes
SAVE_STEPS = 10
#: The files of a checkpoint in the order Trainer._save_checkpoint (transformers 5.24) writes them: `save_model`
#: (code files, config, weights, tokenizer, training_args.bin), then optimizer, scheduler, RNG state, trainer state.
WRITE_ORDER = ("modeling_perceiver_byte.py", "configuration_perceiver_byte.py", "config.json", "model.safetensors",
               "tokenization_perceiver_byte.py", "tokenizer_config.json", "training_args.bin", "optimizer.pt",
               "scheduler.pt", "rng_state.pth", "trainer_state.json")  # fmt: skip


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    d = tmp_path_factory.mktemp("faults_data")
    return {split: write_csv(d / f"{split}.csv", udhr_rows(split)) for split in ("train", "validation")}


def fault_args(output_dir, data, *extra):
    return tiny_args(output_dir, "--train_file", data["train"], "--validation_file", data["validation"],
                     "--do_predict", "false", "--save_strategy", "steps", "--save_steps", str(SAVE_STEPS), *extra,
                     steps=MAX_STEPS)  # fmt: skip


@pytest.fixture(scope="module")
def reference(data, tmp_path_factory):
    """An uninterrupted run: its final weights, and its last two checkpoints to cut up."""
    out = tmp_path_factory.mktemp("reference") / "out"
    run_main(fault_args(out, data))
    return out


def weights(output_dir):
    return load_file(Path(output_dir) / "model.safetensors")


def assert_same_weights(output_dir, reference):
    got, want = weights(output_dir), weights(reference)
    assert got.keys() == want.keys()
    for key in want:
        assert torch.equal(got[key], want[key]), f"{key}: the resumed run ended with other weights than the reference"


def assert_finished(output_dir):
    state = json.loads((Path(output_dir) / "trainer_state.json").read_text())
    assert state["global_step"] == MAX_STEPS == state["max_steps"]
    assert (Path(output_dir) / "all_results.json").is_file()


def complete_by_reference(checkpoint: Path, reference: Path) -> bool:
    """The test's own idea of a complete checkpoint, independent of train.py's: every file the reference's checkpoints
    hold, binary ones at the reference's size (they do not change size between steps), and a trainer_state.json for
    this step."""
    model = next(reference.glob("checkpoint-*"))
    for file in model.iterdir():
        mine = checkpoint / file.name
        if not mine.is_file():
            return False
        if file.suffix != ".json" and mine.stat().st_size != file.stat().st_size:
            return False
    try:
        state = json.loads((checkpoint / "trainer_state.json").read_text())
    except ValueError:
        return False
    return state["global_step"] == int(checkpoint.name.split("-")[1])


def newest_complete(output_dir: Path, reference: Path) -> int | None:
    steps = [int(p.name.split("-")[1]) for p in output_dir.glob("checkpoint-*") if complete_by_reference(p, reference)]
    return max(steps, default=None)


def half_written(source: Path, target: Path, cut: int, keep: float = 0.5) -> list[str]:
    """What a kill leaves when it lands while file `cut` of WRITE_ORDER is written: the files before it whole, that
    one cut to `keep` of its bytes, none after it. -> the names written."""
    target.mkdir(parents=True)
    for name in WRITE_ORDER[:cut]:
        shutil.copy2(source / name, target / name)
    raw = (source / WRITE_ORDER[cut]).read_bytes()
    (target / WRITE_ORDER[cut]).write_bytes(raw[: int(len(raw) * keep)])
    return list(WRITE_ORDER[: cut + 1])


# --------------------------------------------------------------------------------------------- what "complete" means


def test_write_order_matches_transformers(reference):
    """WRITE_ORDER is what Trainer writes (every file, nothing else) and trainer_state.json comes last. The file system's
    mtimes are coarse (a few ms), so only 'nothing is newer than trainer_state.json' is checked on them."""
    checkpoint = reference / f"checkpoint-{MAX_STEPS}"
    assert sorted(p.name for p in checkpoint.iterdir()) == sorted(WRITE_ORDER)
    last = (checkpoint / "trainer_state.json").stat().st_mtime_ns
    assert all(p.stat().st_mtime_ns <= last for p in checkpoint.iterdir())
    assert train_script.checkpoint_problem(checkpoint) is None


def test_every_kill_point_of_a_checkpoint_write_is_detected(reference, tmp_path):
    """A kill at each of the 11 files of the write order (cut to half), and in trainer_state.json right after it is
    opened (empty) or cut to 90 %: the folder is incomplete, and the previous checkpoint is the one to resume from."""
    source = reference / f"checkpoint-{MAX_STEPS}"
    previous = reference / f"checkpoint-{MAX_STEPS - SAVE_STEPS}"
    cases = [(cut, 0.5) for cut in range(len(WRITE_ORDER))] + [(len(WRITE_ORDER) - 1, 0.0), (len(WRITE_ORDER) - 1, 0.9)]
    for cut, keep in cases:
        out = tmp_path / f"cut{cut}-{keep}"
        shutil.copytree(previous, out / previous.name)
        half_written(source, out / source.name, cut, keep)
        assert not complete_by_reference(out / source.name, reference)
        last, incomplete = train_script.find_checkpoints(out)
        assert last == str(out / previous.name), (cut, keep)
        assert [p.name for p, _ in incomplete] == [source.name]
        why = incomplete[0][1]
        assert "trainer_state.json" in why and ("missing" in why or "damaged" in why), why


@pytest.mark.parametrize("damage", ["model.safetensors:truncate", "model.safetensors:delete", "optimizer.pt:truncate",
                                    "optimizer.pt:delete", "scheduler.pt:delete", "rng_state.pth:truncate",
                                    "trainer_state.json:other_step"])  # fmt: skip
def test_damage_after_the_write_is_named(reference, tmp_path, damage):
    """Not what a kill leaves (trainer_state.json is whole) but what a cut copy or a full disk does: the check names
    the file, and an explicit --resume_from_checkpoint refuses the folder with that name in the message."""
    name, how = damage.split(":")
    checkpoint = tmp_path / f"checkpoint-{MAX_STEPS}"
    shutil.copytree(reference / checkpoint.name, checkpoint)
    target = checkpoint / name
    if how == "truncate":
        target.write_bytes(target.read_bytes()[: target.stat().st_size // 2])
    elif how == "delete":
        target.unlink()
    else:
        state = json.loads(target.read_text())
        target.write_text(json.dumps(dict(state, global_step=MAX_STEPS - 1)))
    why = train_script.checkpoint_problem(checkpoint)
    assert why is not None and why.startswith(name), why
    with pytest.raises(train_script.UserError, match=re.escape(f"{checkpoint}: not a complete checkpoint: {name}")):
        train_script.check_output_dir(*explicit_resume_args(tmp_path / "new", checkpoint))


def explicit_resume_args(output_dir, checkpoint):
    _, _, run_args, training_args = train_script.parse_args(
        ["--output_dir", str(output_dir), "--resume_from_checkpoint", str(checkpoint)])
    return training_args, run_args


# --------------------------------------------------------------------------------------------- resume end to end


def test_resume_skips_a_half_written_checkpoint(data, reference, tmp_path, caplog):
    """Killed while trainer_state.json was being written (opened, empty): the rerun resumes from the previous
    checkpoint, keeps the half-written one as incomplete-checkpoint-N, and ends with the reference's weights. With
    save_total_limit 1, Trainer's rotation would otherwise have kept only the half-written folder (the newest by step)."""
    out = tmp_path / "out"
    previous = f"checkpoint-{MAX_STEPS - SAVE_STEPS}"
    shutil.copytree(reference / previous, out / previous)
    written = half_written(reference / f"checkpoint-{MAX_STEPS}", out / f"checkpoint-{MAX_STEPS}", len(WRITE_ORDER) - 1, 0.0)
    kept = {name: (out / f"checkpoint-{MAX_STEPS}" / name).read_bytes() for name in written}
    with caplog.at_level("WARNING", logger="perceiver_byte.train"):
        run_main(fault_args(out, data, "--save_total_limit", "1"))
    log = caplog.text
    assert re.search(rf"Skipping \S*checkpoint-{MAX_STEPS}: incomplete checkpoint \(trainer_state.json is damaged", log), log
    assert re.search(rf"Resuming from \S*{previous} ", log), log
    assert_finished(out)
    assert_same_weights(out, reference)
    aside = out / f"incomplete-checkpoint-{MAX_STEPS}"
    assert {p.name: p.read_bytes() for p in aside.iterdir()} == kept
    assert sorted(p.name for p in out.glob("checkpoint-*")) == [f"checkpoint-{MAX_STEPS}"]
    assert complete_by_reference(out / f"checkpoint-{MAX_STEPS}", reference)


def test_kill_before_the_first_complete_checkpoint_starts_afresh(data, reference, tmp_path, caplog):
    """Killed while the first checkpoint was written: the folder holds TensorBoard's runs/ and a half-written
    checkpoint-10. The same command trains from the start instead of refusing a non-empty --output_dir."""
    out = tmp_path / "out"
    (out / "runs" / "killed").mkdir(parents=True)
    half_written(reference / f"checkpoint-{MAX_STEPS}", out / f"checkpoint-{SAVE_STEPS}", WRITE_ORDER.index("optimizer.pt"))
    with caplog.at_level("WARNING", logger="perceiver_byte.train"):
        run_main(fault_args(out, data))
    assert "holds only what an interrupted run leaves" in caplog.text and "training from the start" in caplog.text
    assert_finished(out)
    assert_same_weights(out, reference)
    assert (out / f"incomplete-checkpoint-{SAVE_STEPS}" / "model.safetensors").is_file()


def test_another_runs_files_are_still_refused(data, tmp_path):
    out = tmp_path / "out"
    (out / f"checkpoint-{SAVE_STEPS}").mkdir(parents=True)
    (out / "notes.txt").write_text("keep me")
    with pytest.raises(train_script.UserError, match="holds no checkpoint to resume from .*checkpoint-10 is incomplete"):
        run_main(fault_args(out, data))
    assert sorted(p.name for p in out.iterdir()) == [f"checkpoint-{SAVE_STEPS}", "notes.txt"]  # nothing was moved


# --------------------------------------------------------------------------------------------- real SIGKILLs


def start(argv, log_path):
    log = open(log_path, "w")
    proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env=dict(os.environ, PYTHONUNBUFFERED="1"))
    log.close()
    return proc


def checkpoint_dirs(out):
    return {p.name for p in out.glob("checkpoint-*")} if out.is_dir() else set()


def kill_while_saving(proc, out, deadline):
    """Freeze the process (SIGSTOP) as soon as a new checkpoint folder appears; when its trainer_state.json is not
    there yet, the freeze landed inside the write: SIGKILL it there. Otherwise let it go on to the next checkpoint.
    -> (the folder being written, the files it held) or None when the run ended first."""
    seen = checkpoint_dirs(out)
    while time.time() < deadline and proc.poll() is None:
        new = checkpoint_dirs(out) - seen
        if not new:
            time.sleep(0.0005)
            continue
        proc.send_signal(signal.SIGSTOP)
        folder = out / max(new, key=lambda n: int(n.split("-")[1]))
        files = sorted(p.name for p in folder.iterdir())
        if "trainer_state.json" not in files:
            proc.send_signal(signal.SIGKILL)
            proc.wait(30)
            return folder.name, files
        seen |= new
        proc.send_signal(signal.SIGCONT)
    return None


def kill_at(proc, out, delay, deadline):
    """SIGKILL `delay` seconds after training started (TensorBoard opens a new runs/<time>_<host> folder then).
    -> whether the kill landed before the run ended."""
    runs = out / "runs"
    before = set(runs.iterdir()) if runs.is_dir() else set()
    while time.time() < deadline and proc.poll() is None and not (runs.is_dir() and set(runs.iterdir()) - before):
        time.sleep(0.005)
    time.sleep(delay)
    proc.send_signal(signal.SIGKILL)  # a no-op when the run has ended (Popen checks first): then it did not land
    proc.wait(30)
    return proc.returncode == -signal.SIGKILL


def kill_chain(data, reference, out, tmp_path, plan):
    """Run the same command again and again, killing it as `plan` says ("saving", or a delay in seconds), then once to
    the end. After each kill: the next run resumes from the newest complete checkpoint (the test's own check), and a
    folder the kill left half-written is kept as incomplete-checkpoint-N. -> a record of the kills."""
    argv = [sys.executable, str(SCRIPT), *fault_args(out, data)]
    kills = []
    for i, what in enumerate([*plan, None]):
        expected = newest_complete(out, reference)
        before = checkpoint_dirs(out)
        if what == "saving" and expected == MAX_STEPS:  # a kill after the last checkpoint: no write left to catch
            what = 0.0
        proc = start(argv, tmp_path / f"run{i}.log")
        deadline = time.time() + 240
        try:
            if what == "saving":
                hit = kill_while_saving(proc, out, deadline)
                assert hit is not None, "no checkpoint write was caught: " + (tmp_path / f"run{i}.log").read_text()[-2000:]
                kills.append(("saving", *hit))
            elif what is not None:
                landed = kill_at(proc, out, what, deadline)
                kills.append(("at", what, landed))
            else:
                proc.wait(max(1, deadline - time.time()))
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        log = (tmp_path / f"run{i}.log").read_text()
        if expected is not None:  # this run resumed: from the newest complete checkpoint, not a half-written one
            assert re.search(rf"Resuming from \S*checkpoint-{expected} ", log), log[-3000:]
        for name in before - {f"checkpoint-{expected}"}:
            if expected is None or int(name.split("-")[1]) > expected:
                assert f"Skipping {out / name}: incomplete checkpoint" in log, log[-3000:]
        if what is None:
            assert proc.returncode == 0, log[-3000:]
        elif kills[-1][0] == "saving" or kills[-1][2]:
            assert proc.returncode == -signal.SIGKILL
    assert_finished(out)
    assert_same_weights(out, reference)
    for kind, name, files in (k for k in kills if k[0] == "saving"):
        # the half-written folder was moved aside whole (or, when a later run reached the step again before
        # being killed, that run's own half-written copy is kept under a numbered name)
        kept = sorted(out.glob(f"incomplete-{name}*"))
        assert kept, f"{name} was not kept: {sorted(p.name for p in out.iterdir())}"
        assert any(set(files) <= {p.name for p in folder.iterdir()} for folder in kept)
    return kills


def test_sigkill_while_saving_and_at_a_random_moment(data, reference, tmp_path):
    """Two real kills: one frozen and killed inside a checkpoint write (proved by the folder lacking
    trainer_state.json at that instant), one at a seeded random moment of training; the third run finishes."""
    delay = random.Random(0).uniform(0.0, 0.8)  # 0.67 s: training takes 1-3 s here, so the kill lands mid-run
    kills = kill_chain(data, reference, tmp_path / "out", tmp_path, ["saving", delay])
    assert kills[0][0] == "saving" and kills[1][2], kills


@pytest.mark.slow
def test_a_chain_of_twelve_sigkills(data, reference, tmp_path):
    """Twelve kills in a row: every third inside a checkpoint write, the rest at seeded random moments of training
    (0-1.5 s after it starts: some land before the first checkpoint, some after the last, while evaluating)."""
    rng = random.Random(1)
    plan = ["saving" if i % 3 == 0 else rng.uniform(0.0, 1.5) for i in range(12)]
    kills = kill_chain(data, reference, tmp_path / "out", tmp_path, plan)
    print("kills:", kills)


# --------------------------------------------------------------------------------------------- distributed


def losses(output_dir):
    history = json.loads((Path(output_dir) / "trainer_state.json").read_text())["log_history"]
    return [(h["loss"], h["grad_norm"]) for h in history if "loss" in h]


def test_two_processes_compute_what_one_process_with_twice_the_batch_does(data, tmp_path):
    """2 processes x batch 4 (DDP over gloo, launched by `accelerate launch`) = 1 process x batch 8 = 1 process x
    batch 4 x 2 accumulation steps: the same loss and gradient norm at each of 5 steps, and the same final weights.
    Plain SGD without clipping, so that a gradient of the wrong scale shows in the later losses and the weights (Adam
    and clipping would hide it). Tolerance 1e-5: the three differ only in the order of float32 sums (one batch of 8 or
    two of 4, padded to different lengths), measured at <= 1.2e-7."""
    common = ("--do_eval", "false", "--logging_steps", "1", "--report_to", "none", "--optim", "sgd",
              "--max_grad_norm", "0", "--learning_rate", "0.5", "--save_strategy", "no")  # fmt: skip

    def args(out, batch, *extra):
        return tiny_args(out, "--train_file", data["train"], "--do_predict", "false", *common,
                         "--per_device_train_batch_size", str(batch), *extra, steps=5)  # fmt: skip

    run_main(args(tmp_path / "one", 8))
    run_main(args(tmp_path / "accumulated", 4, "--gradient_accumulation_steps", "2"))
    accelerate = Path(sys.executable).with_name("accelerate")
    argv = [str(accelerate) if accelerate.exists() else "accelerate", "launch", "--multi_gpu", "--num_processes", "2",
            "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no", str(SCRIPT),
            *args(tmp_path / "two", 4)]  # fmt: skip
    proc = subprocess.run(argv, capture_output=True, text=True, env=dict(os.environ, OMP_NUM_THREADS="1"), timeout=420)
    assert proc.returncode == 0, proc.stderr[-4000:]
    want = losses(tmp_path / "one")
    assert len(want) == 5
    for other in ("two", "accumulated"):
        got = losses(tmp_path / other)
        assert len(got) == len(want)
        worst = max(abs(x - y) for g, w in zip(got, want) for x, y in zip(g, w))
        a, b = weights(tmp_path / "one"), weights(tmp_path / other)
        worst_weight = max((a[k] - b[k]).abs().max().item() for k in a)
        print(f"{other}: max |loss or grad norm difference| {worst:.3g}, max |weight difference| {worst_weight:.3g}")
        assert worst <= 1e-5, (other, got, want)
        assert worst_weight <= 1e-5, other


# --------------------------------------------------------------------------------------------- mixed precision


class AttentionDtypes(torch.utils._python_dispatch.TorchDispatchMode):
    """Records the dtypes that reach the attention kernels below autocast: softmax (eager), exp (the chunked online
    softmax) and the fused SDPA kernel."""

    def __init__(self):
        super().__init__()
        self.seen = {}

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        name = func.overloadpacket.__name__
        if name in ("_softmax", "exp") or "scaled_dot_product" in name:
            self.seen.setdefault(name, set()).update(str(a.dtype) for a in args if torch.is_tensor(a))
        return func(*args, **(kwargs or {}))


def large_logit_model(chunk, implementation):
    """A tiny model whose first cross-attention logits reach ~265 (q/k/v projections x100) and whose latents and byte
    embeddings are 100x their initial scale."""
    from model_tester import tiny_config
    from perceiver_byte import PerceiverByteForSequenceClassification

    torch.manual_seed(0)
    config = tiny_config(cross_attention_chunk_size=chunk, position_encoding_type="fourier",
                         attn_implementation=implementation)  # fmt: skip
    model = PerceiverByteForSequenceClassification(config).train()
    with torch.no_grad():
        for name, param in model.named_parameters():
            if name.endswith(("q_proj.weight", "kv_proj.weight", "qkv_proj.weight")):
                param.mul_(100)
        model.perceiver.latents.mul_(100)
        model.perceiver.embeddings.byte_embeddings.weight.mul_(100)
    return model


def largest_cross_attention_logit(model, input_ids):
    perceiver = model.perceiver
    layer = perceiver.cross_layers[0]
    with torch.no_grad():
        positions = perceiver.embeddings.position_ids(None, input_ids.shape[1], input_ids.device)
        key, _ = layer.project_kv(perceiver.embeddings(input_ids, None, None, positions)[0])
        query = layer.cross_attn.split_heads(layer.cross_attn.q_proj(layer.latents_norm(perceiver.latents[None])))
        return (query @ key.transpose(2, 3) * layer.cross_attn.scaling).abs().max().item()


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16], ids=["bf16", "fp16"])
@pytest.mark.parametrize("chunk", [None, 512], ids=["whole", "chunked"])
@pytest.mark.parametrize("implementation", ["eager", "sdpa"])
def test_autocast_keeps_softmax_in_float32_on_long_inputs(implementation, chunk, dtype):
    """4096 bytes, attention logits in the hundreds, one row padded, one all padding: under CPU autocast the eager
    softmax and the chunked path's exp run in float32 (SDPA's fused kernel takes the low-precision tensors and
    accumulates in float32 inside, which Python cannot observe), and the loss, logits and every gradient are finite."""
    model = large_logit_model(chunk, implementation)
    length = 4096
    input_ids = torch.randint(6, 262, (3, length), generator=torch.Generator().manual_seed(0))
    assert largest_cross_attention_logit(model, input_ids[:1]) > 100
    attention_mask = torch.ones(3, length, dtype=torch.long)
    attention_mask[1, 3000:] = 0
    attention_mask[2] = 0
    recorder = AttentionDtypes()
    with torch.autocast("cpu", dtype=dtype), recorder:
        out = model(input_ids=input_ids, attention_mask=attention_mask, labels=torch.tensor([0, 1, 2]))
    out.loss.backward()
    assert torch.isfinite(out.loss) and torch.isfinite(out.logits).all()
    bad = [n for n, p in model.named_parameters() if p.grad is None or not torch.isfinite(p.grad).all()]
    assert not bad, bad
    seen = recorder.seen
    if implementation == "eager":
        assert seen["_softmax"] == {"torch.float32"}, seen
    else:
        assert "_softmax" not in seen and any("scaled_dot_product" in k for k in seen), seen
    if chunk is not None:
        assert seen["exp"] == {"torch.float32"}, seen


def long_rows(per_label=2):
    """Rows of 2-5 KB: all the UDHR paragraphs of a language joined."""
    rows = udhr_rows("train")
    return [{"text": " ".join(r["text"] for r in rows if r["label"] == label), "label": label}
            for label in LANGS] * per_label  # fmt: skip


def test_train_py_mixed_precision_on_long_inputs(tmp_path, monkeypatch):
    """train.py with --bf16 on 2-5 KB inputs, chunked cross-attention: finite losses, and autocast on inside the
    attention function."""
    import perceiver_byte.modeling_perceiver_byte as modeling

    seen = set()
    eager = modeling.eager_attention_forward

    def spy(module, query, *args, **kwargs):
        seen.add((torch.is_autocast_enabled("cpu"), query.dtype))
        return eager(module, query, *args, **kwargs)

    monkeypatch.setattr(modeling, "eager_attention_forward", spy)
    train = write_csv(tmp_path / "long.csv", long_rows())
    assert min(len(r["text"].encode()) for r in long_rows()) > 2000
    out = tmp_path / "out"
    run_main(tiny_args(out, "--train_file", train, "--do_eval", "false", "--do_predict", "false", "--report_to", "none",
                       "--max_length", "8192", "--logging_steps", "1", "--per_device_train_batch_size", "4",
                       "--attn_implementation", "eager", "--config_overrides", TINY + ",cross_attention_chunk_size=1024",
                       "--bf16", steps=3))  # fmt: skip
    got = losses(out)
    assert len(got) == 3 and all(math.isfinite(v) for step in got for v in step), got
    assert seen == {(True, torch.bfloat16)}, seen


def test_train_py_refuses_fp16_on_a_cpu(tmp_path):
    """L6: accelerate 1.15 enables fp16 autocast only on accelerators, so --fp16 on a CPU used to train in float32
    while the outputs said fp16; train.py now refuses it and names --bf16."""
    train = write_csv(tmp_path / "long.csv", long_rows(per_label=1))
    with pytest.raises(ValueError, match="--fp16 does not apply on a CPU.*--bf16"):
        run_main(tiny_args(tmp_path / "out", "--train_file", train, "--fp16", steps=1))
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_rerun_after_the_last_checkpoint_trains_no_extra_step(data, reference, tmp_path):
    """Killed after the last checkpoint (while evaluating or writing the final model): the rerun resumes from
    checkpoint-200 of a 200-step run, trains nothing and ends with the reference's weights (Trainer alone trained a
    201st step, since 200 steps are not a whole number of 6-step epochs)."""
    out = tmp_path / "out"
    shutil.copytree(reference / f"checkpoint-{MAX_STEPS}", out / f"checkpoint-{MAX_STEPS}")
    run_main(fault_args(out, data))
    assert_finished(out)
    assert_same_weights(out, reference)
