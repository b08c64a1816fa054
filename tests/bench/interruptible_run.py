"""A tiny run as a process of its own, for the signal tests (the CLI's way through runner and launcher aside):

    python tests/bench/interruptible_run.py RUN_DIR [--resume] [--wait-at STEP]

Trains TinyNet on 12 TinyDepthSet frames (batch 2: 6 steps per epoch, 2 epochs, ``checkpoint_every_steps =
0``: only epoch ends save last.pt) with one DataLoader worker, then evaluates it and writes metrics.json and
per_image.csv as ``bench run`` does. ``--wait-at N`` prints ``at step N`` once step N's loss is computed and
waits there (at most 30 s) until a SIGTERM/SIGINT has asked the run to stop, so that the signal lands in the
middle of that step. The exit code is the process's own: 75 (RunInterrupted) after a signal.
"""

from __future__ import annotations

import argparse
import time

from runner_fixtures import RSIDE_LIKE_PROTOCOL, TinyDepthSet, TinyNet, tiny_config

from architectures.losses import multiscale_loss
from bench.evaluate import evaluate, write_evaluation
from bench.rundir import RunDir
from bench.train import fit, seed_everything, stop_requested

TRAIN_FRAMES = list(range(1, 13))
TEST_FRAMES = [2, 5, 9, 11]


def config():
    return tiny_config(
        input_size=(32, 40), epochs=2, batch_size=2, checkpoint_every_steps=0, log_every_steps=1, num_workers=1
    )


def waiting_loss(at_step: int | None):
    calls = {"n": 0}

    def loss(preds, target, valid=None):
        calls["n"] += 1
        if calls["n"] == at_step:
            print(f"at step {at_step}", flush=True)
            deadline = time.monotonic() + 30
            while stop_requested() is None and time.monotonic() < deadline:
                time.sleep(0.005)
        return multiscale_loss(preds, target, valid=valid)

    return loss


def main(run_dir: str, resume: bool = False, wait_at: int | None = None, stream=None) -> RunDir:
    rd = RunDir(run_dir)
    rd.root.mkdir(parents=True, exist_ok=True)
    seed_everything(0)
    model = TinyNet()
    train_set = TinyDepthSet(TRAIN_FRAMES, hw=(64, 80), depth_size=(32, 40), train=True, split="train")
    cfg = config()
    state = fit(cfg, model, train_set, rd, resume=resume, stream=stream, loss_fn=waiting_loss(wait_at))
    result = evaluate(model, TinyDepthSet(TEST_FRAMES), RSIDE_LIKE_PROTOCOL, batch_size=4, input_size=cfg.input_size)
    write_evaluation(rd, result, {"run_id": cfg.run_id, "steps": state.global_step, "epoch": state.epoch})
    return rd


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("run_dir")
    parser.add_argument("--resume", action="store_true")
    parser.add_argument("--wait-at", type=int)
    args = parser.parse_args()
    main(args.run_dir, args.resume, args.wait_at)
