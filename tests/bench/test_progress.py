from __future__ import annotations

import io

from runner_fixtures import tiny_config

from bench.progress import Progress, SuiteProgress, format_hms, planned_steps


class Clock:
    """A settable clock (s) for Progress."""

    def __init__(self):
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def progress(clock, out, **changes):
    base = dict(label="run-x", epochs=2, steps_per_epoch=4, run_steps=8, every=2, stream=out, clock=clock)
    base.update(changes)
    return Progress(**base)


def steps(p, clock, n, seconds_each, epoch=0, start=0):
    for k in range(1, n + 1):
        clock.t += seconds_each
        p.update(epoch, (start + k - 1) % p.steps_per_epoch + 1, start + k, loss=0.5, lr=1e-4, images=8)


def test_first_step_says_warming_up_not_nan():
    clock, out = Clock(), io.StringIO()
    p = progress(clock, out, every=1)
    steps(p, clock, 1, 10.0)
    line = out.getvalue().splitlines()[0]
    assert line == "run-x | epoch 1/2 | step 1/4 | loss 0.5000 | lr 1.0e-04 | warming up (no rate yet)"
    assert "nan" not in line and "?" not in line


def test_run_eta_covers_the_remaining_epochs_not_only_this_one():
    clock, out = Clock(), io.StringIO()
    p = progress(clock, out)
    steps(p, clock, 4, 2.0)  # the first epoch: 2 s per step after the first
    last = out.getvalue().splitlines()[-1]
    assert "step 4/4" in last and "4.00 img/s" in last
    assert "epoch eta 0:00 | run eta 0:08" in last  # 4 more steps at 2 s


def test_epoch_eta_stops_where_max_steps_ends_the_run():
    clock, out = Clock(), io.StringIO()
    p = progress(clock, out, steps_per_epoch=12, run_steps=4)
    steps(p, clock, 2, 2.0)
    assert "epoch eta 0:04 | run eta 0:04" in out.getvalue().splitlines()[-1]


def test_run_eta_adds_the_evaluations_due():
    clock, out = Clock(), io.StringIO()
    p = progress(clock, out)
    p.evals_left = 2
    steps(p, clock, 2, 2.0)
    assert out.getvalue().splitlines()[-1].endswith("run eta 0:12 + eval")  # not timed yet: said so
    p.eval_s = 5.0
    steps(p, clock, 2, 2.0, start=2)
    assert out.getvalue().splitlines()[-1].endswith("run eta 0:18")  # 4 steps x 2 s + 2 evaluations x 5 s


def test_suite_eta_is_labelled_an_estimate_and_counts_later_runs():
    clock, out = Clock(), io.StringIO()
    later = [tiny_config(epochs=1, batch_size=2), tiny_config(epochs=1, batch_size=2, max_steps=1)]
    p = progress(clock, out, suite=SuiteProgress(later=later), train_frames=6)
    steps(p, clock, 2, 2.0)
    last = out.getvalue().splitlines()[-1]
    # pooled pace: 4 s for 2 steps = 2 s/step; later runs: 3 + 1 planned steps -> 8 s; this run: 12 s left
    assert last.endswith("run eta 0:12 | suite eta ~0:20 (est., 2 more run(s) at this suite's s/step)")


def test_suite_pace_pools_earlier_runs():
    suite = SuiteProgress(later=[tiny_config(epochs=2, batch_size=3)])
    suite.record(10, 100.0)
    assert suite.later_seconds(train_frames=6, run_steps=10, run_seconds=20.0) == 6.0 * 4  # 120 s / 20 steps


def test_a_line_at_least_every_interval_when_log_every_exceeds_the_epoch():
    clock, out = Clock(), io.StringIO()
    p = progress(clock, out, every=20, steps_per_epoch=12, run_steps=24, interval_s=30.0)
    steps(p, clock, 11, 10.0)  # 110 s inside one epoch, never a multiple of 20 steps
    lines = out.getvalue().splitlines()
    assert [line.split(" | ")[2] for line in lines] == ["step 3/12", "step 6/12", "step 9/12"]
    steps(p, clock, 1, 1.0, start=11)
    assert out.getvalue().splitlines()[-1].split(" | ")[2] == "step 12/12"  # the epoch's end always logs


def test_log_receives_the_due_lines():
    clock, out, logged = Clock(), io.StringIO(), []
    p = progress(clock, out, log=logged.append)
    steps(p, clock, 4, 1.0)
    assert logged == out.getvalue().splitlines() and len(logged) == 2


def test_planned_steps():
    assert planned_steps(tiny_config(epochs=3, batch_size=4), 10) == 9
    assert planned_steps(tiny_config(epochs=3, batch_size=4, max_steps=5), 10) == 5
    assert planned_steps(tiny_config(epochs=1, batch_size=4, train_frames=4), 10) == 1
    assert planned_steps(tiny_config(epochs=1, batch_size=4), 10, world_size=2) == 3  # 5 per rank, 2 per batch


def test_format_hms():
    assert format_hms(float("nan")) == "?" and format_hms(65) == "1:05" and format_hms(3725) == "1:02:05"
