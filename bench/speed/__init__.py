"""Speed and memory sweeps over batch sizes (the DRNet paper's Table 2), on CUDA or CPU.

For every model and mode: batch sizes 1, 2, 4, ... until out of memory, then bisection to the largest batch
that fits (or an explicit list). At each point the model (built once per model and mode, or once per point
with --isolate; on CPU in a fresh process per model and mode by default) sits on the device, a random input
of shape (B, 3, H, W) is created once, and the mode's step (``MODES``: ``inference`` = eval-mode forward
under ``torch.inference_mode()``; ``autograd`` = eval-mode forward with gradients on; ``train`` = train-mode
forward + loss + backward + Adam step) runs ``warmup`` times (the last one after the memory peaks are reset,
so peaks are steady-state and exclude cuDNN autotuning) and then ``repeats`` timed times with synchronised
wall-clock time. fps = B / time, images/s.

Memory is never a bare "RAM"; per point, in MiB (2^20 bytes):

- CUDA: ``peak_allocated_mib`` (tensors, ``torch.cuda.max_memory_allocated``), ``peak_reserved_mib``
  (PyTorch's cache, ``max_memory_reserved``) and ``nvml_used_mib`` (device memory used as nvidia-smi shows
  it, sampled every 10 ms, minus the device's use before this process created its CUDA context: adds the
  context and library workspaces).
- CPU: ``rss_peak_mib``, the process's peak resident set during the point. Linux's VmHWM is reset at the
  point's start through ``/proc/self/clear_refs`` (``ru_maxrss`` would be the process lifetime's peak);
  ``--isolate`` gives every point a fresh process anyway.

Per model and mode: net RAM two ways (bytes of the weights and buffers; the memory increase from the pre-model
baseline to the model loaded) and memory per image three ways, since the paper never defines its "RAM / img":
peak at batch 1 above the baseline (``mem_b1_mib``), the marginal least-squares slope of peak memory against
batch size with its R^2 (``ram_per_img_mib``; NVML on CUDA, RSS on CPU, the other measures as extra
columns), and the peak at the largest batch over that batch (``mem_max_b_per_img_mib``).
Column definitions: ``POINT_COLUMNS``, ``SUMMARY_COLUMNS``, ``PAIR_COLUMNS`` (also written as
``speed_columns.md``).

Timing sessions: every model and mode is measured in ``pairs`` sessions (3 on CPU, 5 on CUDA), alternating
with the other models of its backbone and mode, the order reversed every other round (R D, D R, R D); session
k of DRNet and of RSIDE form pair k and give one ratio per quantity (speed_pairs.csv, ``PAIR_COLUMNS``), whose
interval ``bench report`` judges. speed_summary.csv gives the median over sessions.

Modules: ``records`` (config, targets, rows and their column docs), ``memory`` (/proc readers, CPU and CUDA
probes), ``gpu`` (NVML), ``measure`` (timing core, model session, slope fit), ``sweep`` (batch sweep, OOM
bisection, per-model summary over sessions, ``--isolate`` subprocess), ``sessions`` (the alternating schedule,
one ratio per pair of sessions), ``run`` (``run_sweep``: a whole sweep, its preflight), ``output`` (run id,
environment record, files, progress lines, results table), ``options`` (``bench speed``'s command line as a
SpeedConfig), ``data`` (data loader throughput, ``bench data bench``).
"""

from __future__ import annotations

from bench.speed.measure import MIN_REPEATS, SlopeFit, Timing, fit_slope, median_iqr, time_repeats, time_steps
from bench.speed.memory import rss_bytes
from bench.speed.output import default_run_id, pairs_table, results_table, reusable_sweep, sweep_environment
from bench.speed.records import (
    MODES,
    PAIR_COLUMNS,
    POINT_COLUMNS,
    SUMMARY_COLUMNS,
    SpeedConfig,
    SpeedPair,
    SpeedPoint,
    SpeedResult,
    SpeedSummary,
    SpeedTarget,
    columns_markdown,
    parse_batch_sizes,
    parse_input_size,
    parse_modes,
    speed_targets,
)
from bench.speed.run import preflight, run_sweep
from bench.speed.sessions import session_schedule
from bench.speed.sweep import summarize, sweep_batches

__all__ = [
    "MIN_REPEATS",
    "MODES",
    "PAIR_COLUMNS",
    "POINT_COLUMNS",
    "SUMMARY_COLUMNS",
    "SlopeFit",
    "SpeedConfig",
    "SpeedPair",
    "SpeedPoint",
    "SpeedResult",
    "SpeedSummary",
    "SpeedTarget",
    "Timing",
    "columns_markdown",
    "default_run_id",
    "preflight",
    "fit_slope",
    "median_iqr",
    "parse_batch_sizes",
    "parse_input_size",
    "pairs_table",
    "parse_modes",
    "results_table",
    "rss_bytes",
    "reusable_sweep",
    "run_sweep",
    "session_schedule",
    "speed_targets",
    "summarize",
    "sweep_batches",
    "sweep_environment",
    "time_repeats",
    "time_steps",
]
