"""``bench`` as a process of its own on the runner tests' tiny network and frames, for the tests whose subject is
processes (two runners on one runs directory, a SIGTERM to ``bench run``):

    python tests/bench/tiny_bench.py run --suite FILE --runs-dir DIR [--resume ...]   (any bench command line)

The tiny-test network is registered and every run reads TinyDepthSet frames under a RSIDE-like protocol, as the
``tiny_data`` fixture routes them in-process, so a run takes a second. ``TINY_BENCH_HOLD=STEP[:FILE]``: once the
loss of this process's training step STEP (counted over all its runs) is computed, print ``at step STEP`` and
wait there, at most ``HOLD_S`` seconds, until FILE exists or a SIGTERM/SIGINT has asked the run to stop: the
run is then in the middle of that step, holding its lock.
"""

from __future__ import annotations

import functools
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # runner_fixtures

from runner_fixtures import RSIDE_LIKE_PROTOCOL, TinyDepthSet, register_tiny_model  # noqa: E402

HOLD_S = 60.0


def load_tiny(config, depth_size, train: bool = True):
    """(training set, test set) as the ``tiny_data`` fixture gives them."""
    train_set = (
        TinyDepthSet(list(range(1, 7)), depth_size=tuple(depth_size), train=True, split="train") if train else None
    )
    return train_set, TinyDepthSet([2, 5, 9, 11])


def holding_loss(spec: str | None):
    """The training loss, waiting in step ``STEP`` as ``TINY_BENCH_HOLD=STEP[:FILE]`` says (None: never)."""
    from architectures.losses import multiscale_loss
    from bench.train import stop_requested

    step_text, _, release = (spec or "").partition(":")
    at_step = int(step_text) if step_text else None
    calls = {"n": 0}

    def loss(preds, target, valid=None):
        calls["n"] += 1
        if calls["n"] == at_step:
            print(f"at step {at_step}", flush=True)
            deadline = time.monotonic() + HOLD_S
            while stop_requested() is None and not (release and os.path.exists(release)):
                if time.monotonic() > deadline:
                    break
                time.sleep(0.01)
        return multiscale_loss(preds, target, valid=valid)

    return loss


def main() -> None:
    import bench.datasets
    import bench.lifecycle
    import bench.runmodel
    from bench.cli import cli

    register_tiny_model()
    bench.datasets.load_datasets = load_tiny
    bench.runmodel.resolve_protocol = lambda name: RSIDE_LIKE_PROTOCOL
    bench.lifecycle.fit = functools.partial(
        bench.lifecycle.fit, loss_fn=holding_loss(os.environ.get("TINY_BENCH_HOLD"))
    )
    cli(prog_name="bench")


if __name__ == "__main__":
    main()
