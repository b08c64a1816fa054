"""What a sweep is and what it writes: ``SpeedConfig`` / ``SpeedTarget`` in, ``SpeedPoint`` / ``SpeedSummary`` /
``SpeedPair`` out.

Every column of speed.csv, speed_summary.csv and speed_pairs.csv is a dataclass field whose ``metadata["doc"]``
defines it; ``POINT_COLUMNS``, ``SUMMARY_COLUMNS``, ``PAIR_COLUMNS`` and ``columns_markdown()`` (speed_columns.md)
are generated from them.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import MISSING, asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import torch

from architectures.data.transforms import RSIDE_CROP_HW
from bench.config import ConfigError
from bench.suite import SPEED_KEYS, Suite, load_suite

__all__ = [
    "DEFAULT_BUDGET_S",
    "DEFAULT_MAX_BATCH",
    "DEFAULT_MEMORY_PASSES",
    "DEFAULT_PAIRS",
    "DEFAULT_REPEATS",
    "DEFAULT_WARMUP",
    "DTYPES",
    "IDENTITY_COLUMNS",
    "MODES",
    "PAIR_ARCHS",
    "PAIR_COLUMNS",
    "POINT_COLUMNS",
    "SLOPE_SOURCES",
    "SUMMARY_COLUMNS",
    "SpeedConfig",
    "SpeedPair",
    "SpeedPoint",
    "SpeedResult",
    "SpeedSummary",
    "SpeedTarget",
    "blank_point",
    "columns_markdown",
    "parse_batch_sizes",
    "parse_input_size",
    "parse_modes",
    "peak_above_baseline_mib",
    "speed_targets",
]

MODES = {  # what one timed step of a sweep does (--mode; every row says which)
    "inference": "eval mode, torch.inference_mode(): forward only (what deployment runs)",
    "autograd": "eval mode, gradients enabled: forward only, but the autograd graph and its saved activations"
    " are kept, as code of the paper's era did without volatile=True / torch.no_grad()",
    "train": "train mode: forward + the training loss (multiscale_loss, DRNet's eq. 1) on random targets +"
    " backward + one Adam step (images/s and memory of a training step)",
}
DTYPES = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}
DEFAULT_MAX_BATCH = {"cuda": 1024, "cpu": 32}  # auto sweeps stop doubling here (CPU: minutes per point)
DEFAULT_WARMUP = {"cuda": 10, "cpu": 4}  # iterations; the first absorb cuDNN autotuning, allocator growth
# untimed passes at the end of the warm-up whose memory peaks are measured (each after a reset): the point's peak
# is their median. One on CUDA, where the allocator's peaks are exact and cover the timed passes too; three on
# CPU, where one pass in a few peaks ~1-2 MiB above the others (RSS of DRNet-R18 at 160x208, batch 2: 83.6 vs
# 85.2 MiB), enough to move a 3-point slope by 4%.
DEFAULT_MEMORY_PASSES = {"cuda": 1, "cpu": 3}
# timed iterations per point and session; 3 on CPU (the fewest a median and IQR need): a ratio's interval is over
# sessions, whose spread on a shared CPU exceeds that of one session's repeats, so time goes into sessions
DEFAULT_REPEATS = {"cuda": 30, "cpu": 3}
# Timing sessions per model: DRNet and RSIDE of one backbone and mode are measured in alternating sessions (each
# a fresh process on CPU), one DRNet / RSIDE ratio per pair of sessions, and a verdict judges the t-interval of
# those ratios (at least 2 pairs). PAIRS_JUSTIFICATION
DEFAULT_PAIRS = {"cuda": 5, "cpu": 3}
PAIR_ARCHS = ("drnet", "rside")  # speed_pairs.csv: ratios of the first's fps to the second's (memory: reversed)
DEFAULT_BUDGET_S = {"cuda": 30.0, "cpu": 120.0}  # per point: stop repeating after this, once MIN_REPEATS ran
SLOPE_SOURCES = {  # ram_per_img_<source>_*: the speed.csv column whose slope against batch size they give
    "allocated": "peak_allocated_mib",
    "reserved": "peak_reserved_mib",
    "nvml": "nvml_used_mib",
    "rss": "rss_peak_mib",
}


# --------------------------------------------------------------------------------------------------- config


@dataclass(frozen=True)
class SpeedTarget:
    """One model of a sweep: ``build_model(arch, backbone, **options)`` with random weights."""

    arch: str
    backbone: str
    options: Mapping[str, Any] = field(default_factory=dict)
    name: str = ""  # label in the CSVs (suite entry name); default "<arch>-<backbone>"
    batch_sizes: tuple[int, ...] | None = None  # this model's batch sizes (a suite entry's); None: the config's
    modes: tuple[str, ...] | None = None  # this model's modes (a suite entry's); None: the config's
    pairs: int | None = None  # this model's timing sessions (a suite entry's); None: the config's

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> SpeedTarget:
        d = dict(d)
        for key in ("batch_sizes", "modes"):
            if d.get(key) is not None:
                d[key] = tuple(d[key])
        return cls(**d)

    @property
    def label(self) -> str:
        return self.name or f"{self.arch}-{self.backbone}"


@dataclass(frozen=True)
class SpeedConfig:
    """Everything that defines a sweep; saved in config.json. ``None`` fields take per-device defaults."""

    targets: tuple[SpeedTarget, ...]
    device: str = "auto"  # "cuda", "cuda:N", "cpu", or "auto" (cuda when available)
    input_hw: tuple[int, int] = RSIDE_CROP_HW  # input rows x cols, pixels
    batch_sizes: tuple[int, ...] | None = None  # None: auto (1, 2, 4, ... until OOM, then bisect)
    max_batch: int | None = None  # auto sweeps stop doubling here; None: DEFAULT_MAX_BATCH
    dtype: str = "fp32"  # weights and input cast to it (not autocast): fp32 | fp16 | bf16
    channels_last: bool = False  # NHWC memory format for weights and input
    compile: bool = False  # torch.compile the model (compiled afresh per point, inside the warm-up)
    isolate: bool = False  # every point in a fresh subprocess (clean allocator, context and RSS)
    isolate_models: bool | None = None  # every (model, mode) in a fresh subprocess; None: on CPU only
    modes: tuple[str, ...] = ("inference",)  # MODES measured for every model (a target's own modes win)
    warmup: int | None = None  # untimed iterations (>= 1); the last memory_passes run after a peak reset each
    memory_passes: int | None = None  # untimed passes measured for memory (median), after >= 1 warm-up; None: default
    repeats: int | None = None  # timed iterations per point
    budget_s: float | None = None  # per point: stop timing after this many seconds once MIN_REPEATS ran
    max_memory_mib: float | None = None  # CUDA: allocator cap; CPU: cap on the process's peak RSS (MiB)
    threads: int | None = None  # CPU: torch.set_num_threads; None: torch's default
    cudnn_benchmark: bool = True  # torch.backends.cudnn.benchmark during the sweep (autotuned convolutions)
    seed: int = 0  # random weights and inputs
    suite: str | None = None  # the suite the targets came from, for the run id and the record
    pairs: int | None = None  # timing sessions per model, alternating with its partner (pairs of sessions)

    def resolved(self) -> SpeedConfig:
        """A copy with ``device`` made explicit and the per-device defaults filled in."""
        device = self.device
        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        dev = torch.device(device)
        if dev.type == "cuda" and dev.index is None:
            device = "cuda:0"
        kind = torch.device(device).type
        pick = {
            "max_batch": DEFAULT_MAX_BATCH,
            "warmup": DEFAULT_WARMUP,
            "repeats": DEFAULT_REPEATS,
            "budget_s": DEFAULT_BUDGET_S,
            "memory_passes": DEFAULT_MEMORY_PASSES,
            "pairs": DEFAULT_PAIRS,
        }
        filled = {k: (getattr(self, k) if getattr(self, k) is not None else table[kind]) for k, table in pick.items()}
        isolate_models = self.isolate_models if self.isolate_models is not None else kind == "cpu"
        # at least one pure warm-up pass before the measured ones (the first pass allocates lazily), when there are 2+
        filled["memory_passes"] = max(1, min(filled["memory_passes"], filled["warmup"] - 1))
        return replace(self, device=device, isolate_models=isolate_models, **filled)

    def modes_of(self, target: SpeedTarget) -> tuple[str, ...]:
        """The modes ``target`` is measured in: its own, else the config's."""
        return target.modes if target.modes is not None else self.modes

    def pairs_of(self, target: SpeedTarget) -> int:
        """The timing sessions ``target`` asks for: its own, else the config's (of a resolved config)."""
        return target.pairs if target.pairs is not None else (self.pairs or 1)

    def batch_sizes_of(self, target: SpeedTarget) -> tuple[int, ...] | None:
        """The batch sizes of ``target``: its own, else the config's (None: auto)."""
        return target.batch_sizes if target.batch_sizes is not None else self.batch_sizes

    @property
    def process(self) -> str:
        """Where each point runs: "point" (--isolate), "model" (one fresh process per model and mode), "shared"."""
        return "point" if self.isolate else "model" if self.isolate_models else "shared"

    @property
    def device_kind(self) -> str:
        """ "cuda" or "cpu": the type of ``device`` (of a resolved config; "auto" has none)."""
        return torch.device(self.device).type

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> SpeedConfig:
        d = dict(d)
        d["targets"] = tuple(SpeedTarget.from_dict(t) for t in d["targets"])
        d["input_hw"] = tuple(d["input_hw"])
        if d.get("modes") is not None:
            d["modes"] = tuple(d["modes"])
        if d.get("batch_sizes") is not None:
            d["batch_sizes"] = tuple(d["batch_sizes"])
        return cls(**d)


def parse_input_size(text: str, minimum: int = 1) -> tuple[int, int]:
    """ "228x304" -> (228, 304): rows x cols, as the paper writes its 304x228 crop turned to HxW.

    Both sides must be integers >= ``minimum`` pixels; anything else is a ValueError saying what was expected.
    """
    m = re.fullmatch(r"\s*(\d+)\s*[xX]\s*(\d+)\s*", text)
    if not m or int(m[1]) < 1 or int(m[2]) < 1:
        raise ValueError(f"input size must look like HxW with positive integers (e.g. 228x304), got {text!r}")
    height, width = int(m[1]), int(m[2])
    if height < minimum or width < minimum:
        raise ValueError(f"height and width must be at least {minimum}; got {text}")
    return height, width


def parse_batch_sizes(text: str) -> tuple[int, ...] | None:
    """ "auto" -> None; "1,2,4" -> (1, 2, 4) (positive, distinct)."""
    if text.strip().lower() == "auto":
        return None
    try:
        sizes = tuple(int(s) for s in text.split(",") if s.strip())
    except ValueError:
        raise ValueError(f"batch sizes must be 'auto' or comma-separated integers, got {text!r}") from None
    if not sizes or min(sizes) < 1 or len(set(sizes)) != len(sizes):
        raise ValueError(f"batch sizes must be distinct positive integers, got {text!r}")
    return sizes


def parse_modes(text: str | Sequence[str]) -> tuple[str, ...]:
    """ "inference,train" (or a list) -> ("inference", "train"): known MODES, distinct, at least one."""
    items = text.split(",") if isinstance(text, str) else list(text)
    modes = tuple(str(m).strip() for m in items if str(m).strip())
    unknown = [m for m in modes if m not in MODES]
    if not modes or unknown or len(set(modes)) != len(modes):
        raise ValueError(f"modes must be distinct names from {', '.join(MODES)} (comma-separated), got {text!r}")
    return modes


def speed_targets(suite: Suite | str | Path) -> tuple[SpeedTarget, ...]:
    """The Table 2 models of a suite: its ``[[speed]]`` entries as parsed by ``bench.suite.load_suite``.

    ``suite`` is a loaded ``Suite``, a suite name (``bench/suites/<name>.toml``) or a path to a TOML file.
    Raises ``ConfigError`` (a ValueError naming the file, entry and key) when the suite is missing, malformed
    or has no ``[[speed]]`` entries.
    """
    loaded = suite if isinstance(suite, Suite) else load_suite(suite)
    if not loaded.speed:
        raise ConfigError(
            f"{loaded.path}: no [[speed]] entries (expected an array of tables with keys {', '.join(SPEED_KEYS)})"
        )
    return tuple(
        SpeedTarget(
            arch=e["arch"],
            backbone=e["backbone"],
            options=dict(e.get("options", {})),
            name=e["name"],
            batch_sizes=tuple(e["batch_sizes"]) if "batch_sizes" in e else None,
            modes=tuple(e["modes"]) if "modes" in e else None,
            pairs=e.get("pairs"),
        )
        for e in loaded.speed
    )


# ------------------------------------------------------------------------------------------------- records


def _column(doc: str, default: Any = MISSING) -> Any:
    """A dataclass field that is a CSV column defined by ``doc`` (speed_columns.md, docs/speed-columns.md)."""
    return field(default=default, metadata={"doc": doc})


@dataclass
class _SweepIdentity:
    """The model and setup a row describes: the first columns of both speed.csv and speed_summary.csv."""

    name: str = _column("model label (suite entry name, else <arch>-<backbone>)")
    arch: str = _column("architecture as registered (build_model)")
    backbone: str = _column("encoder backbone")
    options: str = _column("architecture options as JSON (sorted keys; {} for defaults)")
    device_kind: str = _column("cuda or cpu: which device every number in this row was measured on")
    device_name: str | None = _column("GPU name (NVML / torch) or CPU model")
    dtype: str = _column("fp32 | fp16 | bf16: weights and input cast to it (not autocast)")
    input: str = _column("input size HxW in pixels (rows x cols), e.g. 228x304")
    mode: str = _column("what one timed step is: " + "; ".join(f"{k} = {v}" for k, v in MODES.items()))
    channels_last: bool = _column("NHWC memory format for weights and input")
    compile: bool = _column("model wrapped in torch.compile")
    isolated: bool = _column("point measured in a fresh subprocess (--isolate)")
    process: str = _column(
        "where the point ran: point (its own fresh process, --isolate), model (one fresh"
        " process per model and mode: the default on CPU), shared (the sweep's process)"
    )


_NET_RAM_ALLOCATED_DOC = "CUDA: torch.cuda.memory_allocated growth when the model moved to the GPU, MiB"
_NET_RAM_LOADED_DOC = (
    "net RAM the second way: memory from the pre-model baseline to the model loaded (CPU:"
    " rss_loaded_mib - rss_baseline_mib; CUDA: net_ram_allocated_mib), MiB"
)
_PEAK_ABOVE_BASELINE_DOC = (
    "the point's peak memory above the pre-model baseline, MiB: CPU rss_peak_mib -"
    " rss_baseline_mib; CUDA nvml_used_mib (above the device's use before this"
    " process's CUDA context), else peak_reserved_mib. Weights + activations (+ in"
    " train mode gradients and optimiser state)"
)


@dataclass
class SpeedPoint(_SweepIdentity):
    """One (model, batch size) measurement: a row of speed.csv (see POINT_COLUMNS)."""

    session: int = _column(
        "timing session of this model and mode, 0, 1, ...: the models of one backbone and mode are measured in"
        " alternating sessions (pair k: session k of each, the order reversed every other pair), each a fresh"
        " process on CPU; session 0 sweeps the batch sizes as asked, later sessions the batch sizes that"
        " session 0 measured ok"
    )
    batch: int = _column("batch size B (images per forward pass)")
    phase: str = _column("how the batch was chosen: double (1,2,4,...), bisect (after an OOM), list (--batch-sizes)")
    status: str = _column("ok | oom (out of memory: torch.OutOfMemoryError or a memory limit) | error (see note)")
    fps_median: float | None = _column("median over timed repeats of B / forward time, images/s", None)
    fps_iqr: float | None = _column("interquartile range (q75 - q25) of the per-repeat fps, images/s", None)
    n_repeats: int | None = _column("number of timed repeats behind the median", None)
    time_median_ms: float | None = _column("median synchronised wall time of one forward pass of the batch, ms", None)
    time_iqr_ms: float | None = _column("interquartile range of that time, ms", None)
    warmup: int | None = _column(
        "untimed iterations before timing (the last memory_passes of them each after the memory peaks were reset)",
        None,
    )
    memory_passes: int | None = _column(
        "untimed passes whose memory peaks were measured, each after a reset; CPU: rss_peak_mib is their median",
        None,
    )
    peak_allocated_mib: float | None = _column(
        "CUDA: torch.cuda.max_memory_allocated after reset_peak_memory_stats, MiB (tensors)", None
    )
    peak_reserved_mib: float | None = _column(
        "CUDA: torch.cuda.max_memory_reserved, MiB (tensors + PyTorch's cache)", None
    )
    nvml_used_mib: float | None = _column(
        "CUDA: peak device memory used (NVML, sampled every 10 ms) minus the"
        " device's use before this process created its CUDA context, MiB"
        " (adds context and workspaces)",
        None,
    )
    nvml_samples: int | None = _column("CUDA: NVML samples behind nvml_used_mib", None)
    rss_peak_mib: float | None = _column(
        "CPU: the process's peak resident set size during the point, MiB (absolute): the median over the memory passes",
        None,
    )
    rss_peak_spread_mib: float | None = _column(
        "CPU: max - min of the memory passes' peak RSS, MiB: how far one point's peak moved between identical passes",
        None,
    )
    rss_baseline_mib: float | None = _column("CPU: the process's resident set before the model was built, MiB", None)
    rss_loaded_mib: float | None = _column(
        "CPU: the process's resident set once the model was built and on the device, before any pass, MiB", None
    )
    peak_above_baseline_mib: float | None = _column(_PEAK_ABOVE_BASELINE_DOC, None)
    rss_method: str | None = _column(
        "CPU: how the per-point RSS peak was taken: clear_refs (VmHWM reset at"
        " point start), sampled (10 ms thread) or lifetime (ru_maxrss, the"
        " process's whole life)",
        None,
    )
    net_ram_mib: float | None = _column(
        "bytes of the model's parameters and buffers on the device (in dtype), MiB", None
    )
    net_ram_allocated_mib: float | None = _column(_NET_RAM_ALLOCATED_DOC, None)
    net_ram_loaded_mib: float | None = _column(_NET_RAM_LOADED_DOC, None)
    memory_limit_mib: float | None = _column(
        "memory cap in force (CUDA: allocator fraction; CPU: peak RSS), MiB; empty if none", None
    )
    load_1min: float | None = _column(
        "the machine's 1-minute load average when the point ended (os.getloadavg): above 1.5 x the CPU count,"
        " other work shared the cores and the report does not judge CPU speed claims on the sweep",
        None,
    )
    note: str = _column("OOM or error message; other remarks", "")


def _slope_column(source: str, part: str) -> Any:
    doc = (
        f"slope of peak {source} memory against batch size, MiB per image"
        if part == "mib"
        else f"R^2 of the {source} slope"
    )
    return _column(doc, None)


@dataclass
class SpeedSummary(_SweepIdentity):
    """One model's Table 2 row: a row of speed_summary.csv (see SUMMARY_COLUMNS). Over several timing sessions,
    each number is the median of the sessions' own (fps_max: the highest of the per-batch medians)."""

    sessions: int = _column("timing sessions of this model and mode behind the row (speed.csv session)")
    fps_b1: float | None = _column(
        "Table 2 'fps (b 1)': fps_median at batch 1 (the median over sessions of each session's), images/s"
    )
    fps_b1_iqr: float | None = _column(
        "fps_iqr at batch 1: the spread of the timed repeats within a session (median over sessions), images/s"
    )
    fps_b1_min: float | None = _column("lowest session's fps_median at batch 1, images/s")
    fps_b1_max: float | None = _column("highest session's fps_median at batch 1, images/s")
    fps_max: float | None = _column(
        "Table 2 'fps (max b)': highest fps_median over the measured batch sizes (per batch size the median over"
        " sessions), images/s"
    )
    fps_max_batch: int | None = _column("the batch size that gave fps_max")
    max_batch_fit: int | None = _column(
        "largest batch that ran without OOM in session 0, which searched for it (exact after bisection when"
        " sweep_stop is oom in auto mode; a lower bound when sweep_stop is"
        " max_batch or list_end)"
    )
    sweep_stop: str = _column("why session 0's sweep ended: oom | max_batch (auto cap reached) | list_end | error")
    net_ram_mib: float | None = _column("Table 2 'net RAM': weights and buffers on the device, MiB")
    net_ram_allocated_mib: float | None = _column(_NET_RAM_ALLOCATED_DOC)
    net_ram_loaded_mib: float | None = _column(_NET_RAM_LOADED_DOC)
    mem_b1_mib: float | None = _column(
        "memory per image, definition 1 (peak at batch 1): peak_above_baseline_mib"
        " at batch 1, MiB (weights included: a total for one image)"
    )
    ram_per_img_mib: float | None = _column(
        "memory per image, definition 2 (marginal): least-squares slope of"
        " peak memory (ram_per_img_source) against batch size over the ok"
        " points, MiB per image (weights excluded: what one more image"
        " costs)"
    )
    ram_per_img_r2: float | None = _column("R^2 of that fit")
    mem_max_b_per_img_mib: float | None = _column(
        "memory per image, definition 3 (peak at the largest batch /"
        " that batch): peak_above_baseline_mib at mem_max_b_batch"
        " divided by it, MiB per image (weights shared out)"
    )
    mem_max_b_batch: int | None = _column("the largest ok batch size (of session 0), behind mem_max_b_per_img_mib")
    ram_per_img_source: str = _column(
        "memory measure behind ram_per_img_mib: nvml on CUDA (reserved when NVML is unavailable), rss on CPU"
    )
    ram_per_img_n: int = _column("number of points (ok, distinct batch sizes >= 2) in that fit (in session 0)")
    rss_peak_spread_max_mib: float | None = _column(
        "CPU: the largest rss_peak_spread_mib over the ok points, MiB: the measured spread of one point's peak"
        " between identical passes, against which the memory columns can be read",
        None,
    )
    ram_per_img_allocated_mib: float | None = _slope_column("allocated", "mib")
    ram_per_img_allocated_r2: float | None = _slope_column("allocated", "r2")
    ram_per_img_reserved_mib: float | None = _slope_column("reserved", "mib")
    ram_per_img_reserved_r2: float | None = _slope_column("reserved", "r2")
    ram_per_img_nvml_mib: float | None = _slope_column("nvml", "mib")
    ram_per_img_nvml_r2: float | None = _slope_column("nvml", "r2")
    ram_per_img_rss_mib: float | None = _slope_column("rss", "mib")
    ram_per_img_rss_r2: float | None = _slope_column("rss", "r2")
    n_points: int = _column("points measured for this model (all sessions)", 0)
    n_ok: int = _column("points with status ok", 0)
    n_oom: int = _column("points with status oom", 0)
    n_error: int = _column("points with status error", 0)


_PAIR_SLOPE = "marginal slope (ram_per_img_mib)"
_PAIR_B1 = "peak at batch 1 (mem_b1_mib)"
_PAIR_MAX_B = "peak at the largest batch / batch (mem_max_b_per_img_mib)"


def _pair_value(model: str, definition: str) -> Any:
    """A speed_pairs.csv column: one model's memory per image under ``definition`` in its session of the pair."""
    return _column(f"{model}'s {definition} in its session of this pair, MiB", None)


def _pair_ratio(definition: str) -> Any:
    return _column(f"RSIDE / DRNet of that {definition}, x", None)


@dataclass
class SpeedPair:
    """One pair of timing sessions, session k of a DRNet model and of an RSIDE model of the same backbone in the
    same mode (one sweep, one device): a row of speed_pairs.csv (see PAIR_COLUMNS). A row exists where both
    sessions measured batch 1."""

    drnet: str = _column("the DRNet model's label (speed.csv name)")
    rside: str = _column("the RSIDE model's label (speed.csv name)")
    backbone: str = _column("encoder backbone of both")
    mode: str = _column("sweep mode of both sessions (see speed.csv mode)")
    device_kind: str = _column("cuda or cpu")
    device_name: str | None = _column("GPU name or CPU model")
    dtype: str = _column("fp32 | fp16 | bf16")
    input: str = _column("input size HxW in pixels")
    pair: int = _column("k: this row pairs session k of each model (speed.csv session)")
    first: str = _column(
        "the model whose session ran first in this pair (drnet or rside): the order is reversed every other"
        " pair, so that a steady drift of the machine does not favour the same model in every pair"
    )
    fps_b1_drnet: float = _column("DRNet's fps_median at batch 1 in its session of this pair, images/s")
    fps_b1_rside: float = _column("RSIDE's fps_median at batch 1 in its session of this pair, images/s")
    speedup_b1: float = _column("fps_b1_drnet / fps_b1_rside: this pair's DRNet / RSIDE fps ratio at batch 1, x")
    mem_b1_drnet_mib: float | None = _pair_value("DRNet", _PAIR_B1)
    mem_b1_rside_mib: float | None = _pair_value("RSIDE", _PAIR_B1)
    mem_ratio_b1: float | None = _pair_ratio(_PAIR_B1)
    ram_per_img_drnet_mib: float | None = _pair_value("DRNet", _PAIR_SLOPE)
    ram_per_img_rside_mib: float | None = _pair_value("RSIDE", _PAIR_SLOPE)
    mem_ratio_slope: float | None = _pair_ratio(_PAIR_SLOPE)
    mem_max_b_per_img_drnet_mib: float | None = _pair_value("DRNet", _PAIR_MAX_B)
    mem_max_b_per_img_rside_mib: float | None = _pair_value("RSIDE", _PAIR_MAX_B)
    mem_ratio_max_b: float | None = _pair_ratio(_PAIR_MAX_B)


POINT_COLUMNS: dict[str, str] = {f.name: f.metadata["doc"] for f in fields(SpeedPoint)}
SUMMARY_COLUMNS: dict[str, str] = {f.name: f.metadata["doc"] for f in fields(SpeedSummary)}
PAIR_COLUMNS: dict[str, str] = {f.name: f.metadata["doc"] for f in fields(SpeedPair)}
IDENTITY_COLUMNS = tuple(f.name for f in fields(_SweepIdentity))


@dataclass
class SpeedResult:
    """What ``run_sweep`` produced: the rows of both CSVs, the environment record and where they are."""

    out_dir: Path
    points: list[SpeedPoint]
    summaries: list[SpeedSummary]
    environment: dict[str, Any]
    pairs: list[SpeedPair] = field(default_factory=list)


def blank_point(
    config: SpeedConfig,
    target: SpeedTarget,
    batch: int,
    phase: str,
    device_name: str | None,
    status: str = "ok",
    note: str = "",
    mode: str = "inference",
    session: int = 0,
) -> SpeedPoint:
    """A speed.csv row with the identity columns of ``target`` in ``mode`` under ``config``, no measurements."""
    return SpeedPoint(
        session=session,
        name=target.label,
        arch=target.arch,
        backbone=target.backbone,
        options=json.dumps(dict(target.options), sort_keys=True),
        device_kind=config.device_kind,
        device_name=device_name,
        dtype=config.dtype,
        input=f"{config.input_hw[0]}x{config.input_hw[1]}",
        mode=mode,
        channels_last=config.channels_last,
        compile=config.compile,
        isolated=config.isolate,
        process=config.process,
        batch=batch,
        phase=phase,
        status=status,
        warmup=config.warmup,
        memory_passes=config.memory_passes,
        memory_limit_mib=config.max_memory_mib,
        note=note,
    )


def columns_markdown() -> str:
    """speed_columns.md: the definitions of every column of speed.csv, speed_summary.csv and speed_pairs.csv."""
    lines = [
        "# Columns of speed.csv, speed_summary.csv and speed_pairs.csv (bench speed)",
        "",
        "Memory in MiB (2^20 bytes), speed in images/s, times in ms, ratios in x. Empty cells: not applicable.",
        "",
    ]
    for title, columns in (
        ("speed.csv (one row per model, mode, session and batch size)", POINT_COLUMNS),
        ("speed_summary.csv (Table 2: one row per model and mode, over its sessions)", SUMMARY_COLUMNS),
        ("speed_pairs.csv (one row per DRNet / RSIDE pair of timing sessions)", PAIR_COLUMNS),
    ):
        lines += [f"## {title}", "", "| column | meaning |", "|---|---|"]
        lines += [f"| `{k}` | {v} |" for k, v in columns.items()]
        lines.append("")
    return "\n".join(lines)


def peak_above_baseline_mib(point: SpeedPoint) -> float | None:
    """A point's peak memory above the pre-model baseline (MiB; see ``peak_above_baseline_mib``'s doc)."""
    if point.device_kind == "cpu":
        if point.rss_peak_mib is None or point.rss_baseline_mib is None:
            return None
        return point.rss_peak_mib - point.rss_baseline_mib
    return point.nvml_used_mib if point.nvml_used_mib is not None else point.peak_reserved_mib
