from __future__ import annotations

import csv
import io
import json
import os
import pickle
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from runner_fixtures import REPO, TinyDepthSet, TinyNet, process_env, tiny_config
from torch import nn
from torch.utils.data import DataLoader

import bench.train as train_module
from architectures.data import build_dataset, make_sample, rside_train_transform
from architectures.data.augment import augment_batch, is_frame_batch
from architectures.data.rside_csv import write_rside_fixture
from architectures.losses import multiscale_loss
from bench.distributed import DistInfo
from bench.rundir import RunDir
from bench.train import (
    EXIT_INTERRUPTED,
    NonFiniteLossError,
    RunInterrupted,
    SeededItems,
    capture_rng_state,
    epoch_order,
    evaluations_due,
    fit,
    item_seed,
    load_checkpoint,
    restore_rng_state,
    seed_everything,
    training_items,
    training_loader,
)


def make(seed=0):
    seed_everything(seed)
    return TinyNet()


def train_set():
    return TinyDepthSet(list(range(1, 7)), hw=(64, 80), depth_size=(32, 40), train=True, split="train")


def config(**changes):
    base = dict(input_size=(32, 40), epochs=2, batch_size=2, checkpoint_every_steps=1, log_every_steps=1)
    base.update(changes)
    return tiny_config(**base)


def run(tmp_path, name, cfg=None, resume=False, model=None, **kwargs):
    rd = RunDir(tmp_path / name)
    rd.root.mkdir(parents=True, exist_ok=True)
    model = model or make()
    state = fit(cfg or config(), model, train_set(), rd, resume=resume, stream=io.StringIO(), **kwargs)
    return rd, model, state


def same_weights(a: nn.Module, b: nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def test_item_seeds_are_fixed_and_distinct():
    seeds = {item_seed(0, e, i) for e in range(3) for i in range(100)}
    assert len(seeds) == 300 and item_seed(0, 1, 5) == item_seed(0, 1, 5) != item_seed(1, 1, 5)


def test_seeded_items_do_not_depend_on_the_global_rng_and_leave_it_alone():
    items = SeededItems(train_set(), seed=3)
    torch.manual_seed(123)
    a = items[2]["image"]
    before = torch.get_rng_state()
    torch.manual_seed(999)
    b = items[2]["image"]
    assert torch.equal(a, b)
    torch.manual_seed(123)
    items[2]
    assert torch.equal(torch.get_rng_state(), before)
    items.epoch = 1
    flips = [not torch.equal(items[i]["image"], SeededItems(train_set(), 3)[i]["image"]) for i in range(6)]
    assert any(flips)  # another epoch draws other augmentations


class _Frames(torch.utils.data.Dataset):
    """Fixed 120x160 frames through RSIDE's training transform (its draws come from torch's generator)."""

    def __init__(self, n=6):
        rng = np.random.default_rng(0)
        self.frames = [
            make_sample(rng.integers(0, 256, (3, 120, 160), dtype=np.uint8), rng.uniform(0.5, 9, (120, 160)), i)
            for i in range(n)
        ]
        self.transform = rside_train_transform((57, 76))

    def __len__(self):
        return len(self.frames)

    def __getitem__(self, index):
        return self.transform(self.frames[index])


def test_seeded_items_give_the_samples_of_seeding_every_generator():
    """Seeding torch's CPU generator alone (no python/numpy/accelerator seeding, no state saving) gives each
    item the sample it got when SeededItems seeded python, numpy and torch with the item's seed."""
    items = SeededItems(_Frames(), seed=5)
    for epoch in (0, 3):
        items.epoch = epoch
        for i in range(len(items)):
            py, npy, th = random.getstate(), np.random.get_state(), torch.get_rng_state()
            seed_everything(item_seed(5, epoch, i))  # what SeededItems did for every item before
            expected = items.dataset[i]
            random.setstate(py), np.random.set_state(npy), torch.set_rng_state(th)
            got = items[i]
            assert all(torch.equal(got[k], expected[k]) for k in ("image", "depth", "valid")), (epoch, i)


def test_training_transforms_draw_from_torch_alone():
    """Why SeededItems seeds torch's generator only: RSIDE's training transform leaves python's and numpy's
    generators as they were."""
    frames = _Frames(2)
    py, npy = random.getstate(), np.random.get_state()
    for i in range(len(frames)):
        frames[i]
    assert random.getstate() == py
    after = np.random.get_state()
    assert after[0] == npy[0] and np.array_equal(after[1], npy[1]) and after[2:] == npy[2:]


def test_training_loader_batches_are_the_reference_samples(tmp_path):
    """The training path end to end on 640x480 JPEG + PNG frames: two workers read frames and draw their
    augmentation, the batch is augmented where it goes to the device (here the CPU); every batch equals the
    per-sample reference (rside_train_transform in SeededItems, default collate) for the same item seeds:
    depth and valid bit-identical, image within 1e-5."""
    root = write_rside_fixture(tmp_path, train_rows=6, test_names=(0,))
    dataset = build_dataset("rside-csv", root, "train", train=True)
    order = epoch_order(len(dataset), 3, 1, DistInfo())
    reference = SeededItems(dataset, 3)
    reference.epoch = 1
    expected = list(DataLoader(reference, batch_size=4, sampler=order))
    items = training_items(dataset, 3)
    items.epoch = 1
    batches = list(training_loader(items, 4, 2, sampler=order))
    assert len(batches) == len(expected) == 2 and all(is_frame_batch(b) for b in batches)
    for batch, want in zip(batches, expected, strict=True):
        got = augment_batch(batch, "cpu")
        assert torch.equal(got["frame"], want["frame"])
        assert torch.equal(got["depth"], want["depth"]) and torch.equal(got["valid"], want["valid"])
        assert (got["image"] - want["image"]).abs().max() <= 1e-5


def test_epoch_order_is_a_pure_function_and_shards_cover_the_set():
    one = DistInfo()
    assert epoch_order(10, 0, 1, one) == epoch_order(10, 0, 1, one)
    assert epoch_order(10, 0, 1, one) != epoch_order(10, 0, 2, one)
    assert sorted(epoch_order(10, 0, 1, one)) == list(range(10))
    shards = [epoch_order(9, 0, 1, DistInfo(rank=r, world_size=2)) for r in (0, 1)]
    assert len(shards[0]) == len(shards[1]) == 5 and set(shards[0]) | set(shards[1]) == set(range(9))


def test_rng_state_round_trip():
    seed_everything(5)
    state = capture_rng_state()
    a = (random.random(), float(np.random.rand()), float(torch.rand(())))
    restore_rng_state(state)
    assert (random.random(), float(np.random.rand()), float(torch.rand(()))) == a


def test_fit_writes_checkpoints_history_and_follows_the_lr_schedule(tmp_path):
    cfg = config(epochs=3, lr=1e-3, lr_step_epochs=1, lr_gamma=0.5)
    seen = []
    rd, model, state = run(tmp_path, "a", cfg, evaluate_epoch=lambda m, s: seen.append(s.epoch) or {"rmse": 1.0})
    assert state.finished and state.epoch == 3 and state.global_step == 9
    assert seen == [1, 2, 3]
    lrs = [row["lr"] for row in state.history]
    assert lrs == pytest.approx([1e-3, 5e-4, 2.5e-4])
    assert [row["test_rmse"] for row in state.history] == [1.0, 1.0, 1.0]
    payload = load_checkpoint(rd.last_checkpoint)
    assert payload["state"]["global_step"] == 9 and payload["state"]["finished"]
    assert set(payload) >= {"model", "optimizer", "scheduler", "scaler", "rng", "state", "config"}
    assert rd.history_path.read_text().splitlines()[0].startswith("epoch,step,train_loss,lr,test_rmse")
    assert not list(rd.checkpoints.glob(".*.tmp"))  # no temp files left behind


class Interrupt(BaseException):
    pass


def interrupting_loss(at_step: int):
    calls = {"n": 0}

    def loss(preds, target, valid=None):
        calls["n"] += 1
        if calls["n"] == at_step:
            raise Interrupt
        return multiscale_loss(preds, target, valid=valid)

    return loss


def test_resume_mid_epoch_gives_bit_identical_weights(tmp_path):
    _, reference, ref_state = run(tmp_path, "ref")
    rd = RunDir(tmp_path / "cut")
    with pytest.raises(Interrupt):
        run(tmp_path, "cut", loss_fn=interrupting_loss(5))  # dies in step 5 (epoch 2); last.pt is from step 4
    assert load_checkpoint(rd.last_checkpoint)["state"]["step_in_epoch"] == 1
    torch.manual_seed(4321)  # a resumed process starts with other RNG states
    _, resumed, state = run(tmp_path, "cut", resume=True, model=make(seed=77))
    assert state.global_step == ref_state.global_step == 6 and state.sessions == 2
    assert same_weights(resumed, reference)
    strip = lambda h: [{k: v for k, v in r.items() if k != "elapsed_s"} for r in h]  # noqa: E731
    assert strip(state.history) == strip(ref_state.history)


def test_resumed_run_tensorboard_scalars_equal_its_history_csv(tmp_path):
    pytest.importorskip("tensorboard")
    from test_tensorboard_log import read_scalars

    rd = RunDir(tmp_path / "cut")
    with pytest.raises(Interrupt):
        run(tmp_path, "cut", loss_fn=interrupting_loss(5), evaluate_epoch=lambda m, s: {"rmse": 1.0 / s.epoch})
    run(tmp_path, "cut", resume=True, model=make(seed=77), evaluate_epoch=lambda m, s: {"rmse": 1.0 / s.epoch})
    with open(rd.history_path, newline="") as f:
        history = list(csv.DictReader(f))
    scalars = read_scalars(rd.tensorboard_dir)
    for column in ("train_loss", "lr", "test_rmse", "elapsed_s"):
        assert scalars[column] == [(int(r["step"]), pytest.approx(float(r[column]), rel=1e-6)) for r in history]


def test_non_finite_loss_stops_and_keeps_the_last_good_checkpoint(tmp_path):
    calls = {"n": 0}

    def nan_at_4(preds, target, valid=None):
        calls["n"] += 1
        loss = multiscale_loss(preds, target, valid=valid)
        return loss * float("nan") if calls["n"] == 4 else loss

    rd = RunDir(tmp_path / "nan")
    model = make()
    with pytest.raises(NonFiniteLossError, match=r"training loss is nan at epoch 2, step 1 \(global step 4\)"):
        run(tmp_path, "nan", loss_fn=nan_at_4, model=model)
    payload = load_checkpoint(rd.last_checkpoint)
    assert payload["state"]["global_step"] == 3  # the last good step
    assert all(torch.isfinite(v).all() for v in model.state_dict().values() if v.is_floating_point())
    for name, p in model.named_parameters():  # the bad step did not update the weights (its forward did
        assert torch.equal(p, payload["model"][name])  # move BatchNorm's running stats, as any forward does)


def test_max_steps_stops_mid_epoch(tmp_path):
    _, _, state = run(tmp_path, "m", config(max_steps=4, epochs=5))
    assert state.finished and state.global_step == 4 and state.epoch == 1 and state.step_in_epoch == 1
    assert state.history[-1]["epoch"] == pytest.approx(1 + 1 / 3, abs=1e-4)


def test_best_checkpoint_is_kept(tmp_path):
    rmses = iter([3.0, 1.0, 2.0])
    cfg = config(epochs=3, checkpoint_select="best")
    rd, _, state = run(tmp_path, "b", cfg, evaluate_epoch=lambda m, s: {"rmse": next(rmses)})
    assert state.best_rmse == 1.0 and state.best_epoch == 2.0
    assert load_checkpoint(rd.best_checkpoint)["state"]["global_step"] == 6


def test_resume_of_finished_training_does_nothing(tmp_path):
    _, model, _ = run(tmp_path, "f")
    _, again, state = run(tmp_path, "f", resume=True, model=make(seed=5))
    assert state.finished and same_weights(model, again)


def test_fit_writes_its_lines_to_its_stream_and_log(tmp_path, capsys):
    rd = RunDir(tmp_path / "s")
    rd.root.mkdir()
    out = io.StringIO()
    fit(config(epochs=1), make(), train_set(), rd, stream=out)
    assert "training test-tiny-s0: 6 frames, 3 steps/epoch" in out.getvalue()
    assert "training test-tiny-s0: 6 frames" in rd.log_path.read_text()
    assert capsys.readouterr().out == ""


def test_gradient_clipping_is_applied(tmp_path, monkeypatch):
    norms = []
    real = torch.nn.utils.clip_grad_norm_

    def spy(params, max_norm, *args, **kwargs):
        norms.append(max_norm)
        return real(params, max_norm, *args, **kwargs)

    monkeypatch.setattr(torch.nn.utils, "clip_grad_norm_", spy)
    run(tmp_path, "clip", config(grad_clip_norm=0.5, epochs=1))
    assert norms == [0.5] * 3
    norms.clear()
    run(tmp_path, "noclip", config(epochs=1))
    assert norms == []


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("amp", ["bf16", "fp16"])
def test_amp_training_on_cuda(tmp_path, amp):
    _, model, state = run(tmp_path, amp, config(device="cuda", amp=amp, epochs=1))
    assert state.finished and next(model.parameters()).is_cuda
    assert all(torch.isfinite(p).all() for p in model.parameters())


def test_evaluations_due_follows_end_epochs_rule():
    assert evaluations_due(config(epochs=3, eval_every_epochs=1), 0, 12) == 3
    assert evaluations_due(config(epochs=3, eval_every_epochs=1), 1, 12) == 2
    assert evaluations_due(config(epochs=3, eval_every_epochs=1, max_steps=16), 0, 12) == 2  # ends in epoch 2
    assert evaluations_due(config(epochs=5, eval_every_epochs=2), 0, 12) == 3  # epochs 2, 4 and the last
    assert evaluations_due(config(epochs=5, eval_every_epochs=0), 0, 12) == 0


def test_fit_logs_run_eta_and_warming_up(tmp_path):
    out = io.StringIO()
    fit(config(epochs=2, log_every_steps=1), make(), train_set(), None, stream=out)
    lines = [line for line in out.getvalue().splitlines() if line.startswith("test-tiny-s0 | epoch ")]
    assert lines[0].endswith("warming up (no rate yet)")
    assert all("run eta" in line for line in lines[1:]) and "nan" not in out.getvalue()


# --- SIGTERM / SIGINT: finish the step, save last.pt, exit resumable (issue 25, item 2) -----------------------


@pytest.fixture(autouse=True)
def _stop_signals_not_ignored():
    """A shell starts a background job with SIGINT ignored, and ``fit`` leaves an ignored signal ignored (by
    design, tested below): the signal tests get the handlers of a foreground process, and the old ones back."""
    saved = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    for sig, handler in saved.items():
        if handler is signal.SIG_IGN:
            signal.signal(sig, signal.default_int_handler if sig == signal.SIGINT else signal.SIG_DFL)
    yield
    for sig, handler in saved.items():
        signal.signal(sig, handler)


def signalling_loss(at_step: int, *signals: int):
    """The loss of step ``at_step`` sends ``signals`` to this process, each once the previous one was handled."""
    calls = {"n": 0}

    def loss(preds, target, valid=None):
        calls["n"] += 1
        if calls["n"] == at_step:
            for sig in signals:
                os.kill(os.getpid(), sig)
                deadline = time.monotonic() + 10
                while train_module.stop_requested() is None:  # the handler runs at the next bytecode
                    assert time.monotonic() < deadline, f"{signal.Signals(sig).name} was not handled within 10 s"
        return multiscale_loss(preds, target, valid=valid)

    return loss


def strip_time(history):
    return [{k: v for k, v in row.items() if k != "elapsed_s"} for row in history]


@pytest.mark.parametrize(
    ("sig", "at_step", "where"),
    [
        (signal.SIGTERM, 5, "epoch 2/2, step 2/3"),
        (signal.SIGINT, 3, "epoch 1/2, step 3/3"),  # the last step of an epoch: the epoch's end comes on resume
    ],
    ids=["SIGTERM-mid-epoch-2", "SIGINT-at-the-end-of-epoch-1"],
)
def test_a_signal_mid_epoch_saves_every_finished_step_and_the_resumed_run_is_identical(tmp_path, sig, at_step, where):
    cfg = config(checkpoint_every_steps=0)  # without the signal, last.pt is saved at epoch ends only
    _, reference, ref_state = run(tmp_path, "ref", cfg)
    handlers = signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)
    out = io.StringIO()
    rd = RunDir(tmp_path / "cut")
    rd.root.mkdir()
    with pytest.raises(RunInterrupted) as caught:
        fit(cfg, make(), train_set(), rd, stream=out, loss_fn=signalling_loss(at_step, sig))
    name = signal.Signals(sig).name
    assert caught.value.code == EXIT_INTERRUPTED == 75 and isinstance(caught.value, SystemExit)
    assert str(caught.value) == (
        f"test-tiny-s0: interrupted by {name} after global step {at_step} ({where}); {rd.last_checkpoint} holds "
        f"every finished step; continue with `bench run --resume` (exit code 75: interrupted, resumable)"
    )
    assert str(caught.value) in out.getvalue() and str(caught.value) in rd.log_path.read_text()
    again = pickle.loads(pickle.dumps(caught.value))
    assert (str(again), again.code, again.global_step) == (str(caught.value), 75, at_step)
    assert (signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)) == handlers  # put back
    saved = load_checkpoint(rd.last_checkpoint)["state"]
    assert saved["global_step"] == at_step and saved["epoch"] * 3 + saved["step_in_epoch"] == at_step
    torch.manual_seed(4321)  # a resumed process starts with other RNG states
    _, resumed, state = run(tmp_path, "cut", cfg, resume=True, model=make(seed=77))
    assert state.global_step == ref_state.global_step == 6 and state.sessions == 2
    assert same_weights(resumed, reference) and strip_time(state.history) == strip_time(ref_state.history)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_a_signal_while_training_on_cuda_saves_and_resumes(tmp_path):
    """The same stop on a GPU: the step's kernels finish before last.pt is saved (its CUDA RNG state too)."""
    cfg = config(device="cuda", checkpoint_every_steps=0)
    _, reference, _ = run(tmp_path, "ref", cfg)
    rd = RunDir(tmp_path / "cut")
    rd.root.mkdir()
    with pytest.raises(RunInterrupted, match=r"after global step 5 \(epoch 2/2, step 2/3\)"):
        fit(cfg, make(), train_set(), rd, stream=io.StringIO(), loss_fn=signalling_loss(5, signal.SIGTERM))
    payload = load_checkpoint(rd.last_checkpoint)
    assert payload["state"]["global_step"] == 5 and "cuda" in payload["rng"]
    _, resumed, state = run(tmp_path, "cut", cfg, resume=True, model=make(seed=77))
    assert state.global_step == 6 and next(resumed.parameters()).is_cuda
    for (name, a), b in zip(reference.state_dict().items(), resumed.state_dict().values(), strict=True):
        assert torch.allclose(a.float(), b.float(), rtol=1e-4, atol=1e-5), name  # cuDNN may pick other kernels


def test_a_signal_during_the_epochs_evaluation_stops_after_it(tmp_path):
    cfg = config(checkpoint_every_steps=0)
    evaluated = []

    def evaluate_and_get_signal(model, state):
        evaluated.append(state.epoch)
        if state.epoch == 1:
            os.kill(os.getpid(), signal.SIGTERM)
        return {"rmse": 1.0}

    rd = RunDir(tmp_path / "e")
    rd.root.mkdir()
    with pytest.raises(RunInterrupted, match=r"after global step 3 \(end of epoch 1/2\)"):
        fit(cfg, make(), train_set(), rd, evaluate_epoch=evaluate_and_get_signal, stream=io.StringIO())
    assert evaluated == [1]  # the evaluation ran to its end; epoch 2 did not start
    assert load_checkpoint(rd.last_checkpoint)["state"]["global_step"] == 3


def test_a_second_signal_stops_at_once_and_keeps_the_last_checkpoint(tmp_path, monkeypatch):
    monkeypatch.setattr(train_module, "REPEAT_WINDOW_S", 0.0)  # not a repeat of the first: a second request
    rd = RunDir(tmp_path / "twice")
    rd.root.mkdir()
    handler = signal.getsignal(signal.SIGINT)
    with pytest.raises(KeyboardInterrupt, match="second SIGINT: stopped at once"):
        fit(
            config(checkpoint_every_steps=0),
            make(),
            train_set(),
            rd,
            stream=io.StringIO(),
            loss_fn=signalling_loss(5, signal.SIGINT, signal.SIGINT),
        )
    assert load_checkpoint(rd.last_checkpoint)["state"]["global_step"] == 3  # from the end of epoch 1, as it was
    assert not list(rd.checkpoints.glob(".*.tmp")) and signal.getsignal(signal.SIGINT) is handler


def test_a_repeat_of_the_same_signal_within_the_window_is_the_same_request(tmp_path):
    rd = RunDir(tmp_path / "repeat")
    rd.root.mkdir()
    with pytest.raises(RunInterrupted, match="after global step 2"):  # torchrun forwards what its workers got
        fit(config(), make(), train_set(), rd, stream=io.StringIO(), loss_fn=signalling_loss(2, *[signal.SIGTERM] * 2))


def test_an_ignored_signal_stays_ignored_and_other_handlers_come_back(tmp_path):
    seen = []
    before = signal.signal(signal.SIGINT, signal.SIG_IGN)  # a background job's SIGINT
    previous_term = signal.signal(signal.SIGTERM, lambda s, f: seen.append(s))
    try:
        calls = {"n": 0}

        def loss(preds, target, valid=None):
            calls["n"] += 1
            if calls["n"] == 2:
                os.kill(os.getpid(), signal.SIGINT)
            return multiscale_loss(preds, target, valid=valid)

        _, _, state = run(tmp_path, "ign", config(), loss_fn=loss)
        assert state.finished and state.global_step == 6
        assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
        os.kill(os.getpid(), signal.SIGTERM)
        assert seen == [signal.SIGTERM]  # the caller's own SIGTERM handler is back
    finally:
        signal.signal(signal.SIGINT, before)
        signal.signal(signal.SIGTERM, previous_term)


def test_fit_outside_the_main_thread_trains_without_handlers(tmp_path):
    handlers = signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)
    result = {}
    worker = threading.Thread(target=lambda: result.update(state=run(tmp_path, "t", config(epochs=1))[2]))
    worker.start()
    worker.join()
    assert result["state"].finished and (signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)) == handlers


@pytest.mark.slow
def test_sigterm_to_a_real_process_mid_epoch_then_resume_gives_identical_metrics(tmp_path, one_thread):
    """As the kill -9 test, with SIGTERM to the process group (SLURM, a terminal) in step 5 of epoch 2 and
    checkpoint_every_steps = 0: before, the process died (-15) and last.pt held epoch 1 only (5 steps lost)."""
    import interruptible_run

    ref = interruptible_run.main(tmp_path / "ref", stream=io.StringIO())
    cut = RunDir(tmp_path / "cut")
    proc = subprocess.Popen(
        [sys.executable, str(Path(interruptible_run.__file__)), str(cut.root), "--wait-at", "11"],
        cwd=REPO,
        env=process_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its own process group, as a job step or a terminal's foreground job
    )
    try:
        for line in proc.stdout:
            if line.startswith("at step 11"):  # in step 5 of epoch 2 (6 steps per epoch)
                break
        os.killpg(proc.pid, signal.SIGTERM)  # the main process and its DataLoader worker
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == EXIT_INTERRUPTED, out + err
    assert "interrupted by SIGTERM after global step 11 (epoch 2/2, step 5/6)" in out
    assert "SIGTERM: finishing the current step, then saving checkpoints/last.pt" in err
    saved = load_checkpoint(cut.last_checkpoint)["state"]
    assert (saved["epoch"], saved["step_in_epoch"], saved["global_step"]) == (1, 5, 11)  # every finished step
    assert not cut.metrics_path.exists()
    interruptible_run.main(cut.root, resume=True, stream=io.StringIO())
    assert json.loads(cut.metrics_path.read_text()) == json.loads(ref.metrics_path.read_text())
    assert cut.per_image_path.read_bytes() == ref.per_image_path.read_bytes()
    assert cut.metrics_path.read_bytes() == ref.metrics_path.read_bytes()


def ddp_rank(rank: int, root: str, at_step: int) -> None:
    """One of two gloo processes training the tiny run; only rank 1 gets a SIGTERM, in step ``at_step``."""
    import datetime

    import torch.distributed as dist

    torch.set_num_threads(1)
    rendezvous, timeout = f"file://{root}/rendezvous", datetime.timedelta(seconds=60)  # a hang fails in a minute
    dist.init_process_group("gloo", init_method=rendezvous, rank=rank, world_size=2, timeout=timeout)
    rd = RunDir(Path(root) / "ddp")
    loss = signalling_loss(at_step, signal.SIGTERM) if rank == 1 else multiscale_loss
    try:
        fit(config(), make(), train_set(), rd, info=DistInfo(rank, 2, rank), stream=io.StringIO(), loss_fn=loss)
        outcome = "finished"
    except RunInterrupted as exc:
        outcome = f"{exc.global_step} {exc.signal_name}"
    finally:
        dist.destroy_process_group()
    (Path(root) / f"rank{rank}.txt").write_text(outcome)


@pytest.mark.slow
def test_across_ddp_processes_every_rank_stops_after_the_same_step(tmp_path):
    import torch.multiprocessing as mp

    (tmp_path / "ddp").mkdir()
    mp.spawn(ddp_rank, args=(str(tmp_path), 2), nprocs=2, join=True)  # 3 steps per epoch of 1 frame per rank
    outcomes = [(tmp_path / f"rank{r}.txt").read_text() for r in (0, 1)]
    assert outcomes == ["2 a signal to another process", "2 SIGTERM"]
    assert load_checkpoint(RunDir(tmp_path / "ddp").last_checkpoint)["state"]["global_step"] == 2  # by rank 0
