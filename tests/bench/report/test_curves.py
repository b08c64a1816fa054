"""Training curves from hand-made history.csv files: reading, convergence check, figure and report section."""

from __future__ import annotations

import csv
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pytest
from matplotlib.colors import to_hex

from bench.report.build import ReportConfig, make_report
from bench.report.curves import RunCurve, convergence_note, read_history, relative_tail_change
from bench.report.plots import curves_axes, curves_figure
from bench.report.runs import RunFormatError, group_runs, load_runs

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def write_history(path: Path, rmse: list[float | None], steps_per_epoch: int = 10) -> None:
    """history.csv as bench.train writes it: one row per epoch, test_rmse empty on epochs not evaluated."""
    path.mkdir(parents=True, exist_ok=True)
    with open(path / "history.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["epoch", "step", "train_loss", "lr", "test_rmse", "test_abs_rel", "elapsed_s"])
        for i, r in enumerate(rmse, start=1):
            w.writerow([i, i * steps_per_epoch, 2.0 / i, 1e-3, "" if r is None else r, "", i * 1.5])


def test_read_history_keeps_unevaluated_epochs_as_nan(tmp_path):
    write_history(tmp_path, [3.0, None, 2.0])
    df = read_history(tmp_path / "history.csv")
    assert df["step"].tolist() == [10, 20, 30]
    assert np.isnan(df["test_rmse"].iloc[1]) and df["test_rmse"].iloc[2] == 2.0


def test_read_history_names_file_and_missing_column(tmp_path):
    (tmp_path / "history.csv").write_text("epoch,train_loss\n1,0.5\n")
    with pytest.raises(RunFormatError, match=r"history\.csv: missing column\(s\) step"):
        read_history(tmp_path / "history.csv")


def test_relative_tail_change_matches_hand_computation():
    rmse = [4.0, 3.0, 2.5, 2.2, 2.1, 2.05, 2.0, 1.9]  # n = 8: last quarter = 2 evals, plus the one before
    rel, k = relative_tail_change(rmse)
    assert k == 3
    assert rel == pytest.approx(1.9 / 2.0 - 1)  # the last against the median of 2.05, 2.0, 1.9
    # one noisy evaluation in the window does not count; a curve still falling does
    assert relative_tail_change([1.0] * 9 + [1.4, 1.0, 1.0, 1.0])[0] == pytest.approx(0.0)
    assert relative_tail_change([1.0 - 0.02 * i for i in range(20)])[0] < -0.05
    assert relative_tail_change([1.0, 2.0, float("nan")]) is None  # too few finite evaluations


def test_convergence_note_says_steps_and_change(tmp_path):
    write_history(tmp_path, [4.0, None, 3.0, 2.0, 1.0])
    curve = RunCurve("drnet", "s-drnet-s0", 0, read_history(tmp_path / "history.csv"))
    note = convergence_note(curve)
    # 4 evaluations (steps 10, 30, 40, 50): k = 2, median of 2.0 and 1.0 = 1.5 m, 1.0 / 1.5 - 1 = -33.3%
    assert note == (
        "s-drnet-s0: test RMSE 1.000 m at the end, -33.3% from 1.500 m, the median of its last 2 of 4 evaluations "
        "(steps 40-50): still moving (> +-5%), not converged"
    )
    short = RunCurve("drnet", "s-drnet-s1", 1, read_history(tmp_path / "history.csv").iloc[:2])
    assert "fewer than 4: no convergence check" in convergence_note(short)


def test_curves_figure_overlays_seeds_one_colour_per_model(tmp_path):
    curves = []
    for model, base in (("rside-resnet18", 2.0), ("drnet-resnet18", 3.0)):
        for seed in (0, 1, 2):
            d = tmp_path / f"{model}-s{seed}"
            write_history(d, [base / (i + 1) + 0.1 * seed for i in range(6)])
            curves.append(RunCurve(model, f"mini-{model}-s{seed}", seed, read_history(d / "history.csv")))
    fig = curves_axes(curves, "test")
    try:
        ax_loss, ax_rmse = fig.axes
        for ax in (ax_loss, ax_rmse):
            lines = {line.get_gid(): line for line in ax.get_lines()}
            assert sorted(lines) == sorted(c.run_id for c in curves)  # one line per seed and model
            colour = {rid: to_hex(line.get_color()) for rid, line in lines.items()}
            for model in ("rside-resnet18", "drnet-resnet18"):
                assert len({colour[f"mini-{model}-s{s}"] for s in (0, 1, 2)}) == 1
            assert colour["mini-rside-resnet18-s0"] != colour["mini-drnet-resnet18-s0"]
        seed2 = {line.get_gid(): line for line in ax_rmse.get_lines()}["mini-drnet-resnet18-s2"]
        np.testing.assert_allclose(seed2.get_ydata(), [3.0 / (i + 1) + 0.2 for i in range(6)])
        np.testing.assert_array_equal(seed2.get_xdata(), [10, 20, 30, 40, 50, 60])
        assert [t.get_text() for t in ax_rmse.get_legend().get_texts()] == ["rside-resnet18", "drnet-resnet18"]
        assert ax_loss.get_yscale() == "symlog"  # a negative train loss (RSIDE's log-depth term) stays visible
    finally:
        plt.close(fig)
    assert curves_figure(curves).startswith(PNG_MAGIC)


def test_report_has_curves_section_with_notes(runs_dir, make_eval_run, tmp_path):
    for arch in ("rside", "drnet"):
        for seed in (0, 1):
            path = make_eval_run(runs_dir, "mini", f"{arch}-resnet18", arch, "resnet18", seed=seed)
            write_history(path, [3.0, 2.5, 2.2, 2.1, 2.05, 2.04, 2.03, 2.03])
    res = make_report(
        ReportConfig(runs_dir=runs_dir, out_dir=tmp_path / "rep", suite="mini", html=True, n_boot=50),
        log=lambda _: None,
    )
    html = (tmp_path / "rep" / "report.html").read_text()
    assert 'id="curves-section"' in html and 'alt="Training curves"' in html
    assert (
        "mini-drnet-resnet18-s1: test RMSE 2.030 m at the end, +0.0% from 2.030 m, the median of its last 3 of 8"
        in html
    )
    assert len(group_runs(load_runs(runs_dir).evals)) == 2 and res.suite == "mini"


def test_report_without_history_says_so(runs_dir, make_eval_run, tmp_path):
    make_eval_run(runs_dir, "smoke", "rside-resnet18", "rside", "resnet18")
    make_report(
        ReportConfig(runs_dir=runs_dir, out_dir=tmp_path / "rep", suite="smoke", html=True, n_boot=50),
        log=lambda _: None,
    )
    html = (tmp_path / "rep" / "report.html").read_text()
    assert "No run of this suite has a history.csv" in html
