"""``bench doctor``: the preflight of a campaign, before GPU hours are spent or data downloaded.

For the runs a suite plans (as ``bench run`` would plan them, with the same ``--data``, ``--only``, ``--seeds``),
it looks at what would stop or spoil them and says what it found, section by section:

- GPUs: each CUDA device torch sees (name, compute capability, memory, other processes on it), torch's CUDA
  runtime and cuDNN, the driver and the CUDA version it supports (from NVML), whether NVML answers, whether
  this torch build has kernels for the GPU, and TF32 (on by default for cuDNN on compute capability 8.0+);
- host: CPU cores for the DataLoader workers;
- disk: free space on each filesystem against what the runs will write (``bench.rundir.planned_bytes``) and what
  is still to download (``bench.fetch.plan_for_configs``), with both numbers;
- data: every data source opened as the runs open it, its frame counts, the 654 official test frames, the
  training set the suite demands, one frame of each split read through the run's transforms;
- weights: each encoder's ImageNet file in the torch hub cache, its sha256 checked against its name;
- run directories: what would be reused, resumed, or refused;
- GPU time: per run, per paper table and in all, per GPU class (``bench.estimate``), always shown: without the
  data the NYU sources' published sizes stand in.

Each finding is OK, WARN (works, but read it) or FAIL (the campaign would stop or train on the wrong thing).
Exit codes: 0 no FAIL, 1 a FAIL, 2 the request itself is wrong (unknown suite, bad option). The last lines say
what to run next: the ``bench fetch`` command for what is missing, then the GPU self-test and the run.
"""

from __future__ import annotations

import hashlib
import math
import os
import re
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from bench.config import ConfigError, RunConfig
from bench.paths import DEFAULT_RUNS_DIR
from bench.plan import Plan, RunRequest, make_plan

if TYPE_CHECKING:
    from bench.estimate import CostEstimate
    from bench.fetch import Task

__all__ = [
    "EXIT_BAD_REQUEST",
    "EXIT_FAIL",
    "EXIT_OK",
    "DoctorRequest",
    "Finding",
    "data_findings",
    "disk_findings",
    "doctor",
    "fetch_command",
    "gpu_findings",
    "host_findings",
    "nvml_devices",
    "run_dir_findings",
    "weights_findings",
]

OK, WARN, FAIL = "OK", "WARN", "FAIL"
EXIT_OK, EXIT_FAIL, EXIT_BAD_REQUEST = 0, 1, 2
DISK_HEADROOM = 1.25  # less free space than this times the need is a WARN (logs, a second report, other users)
UNPACK_FACTOR = 2  # an archive being unpacked needs itself plus about as much again (its files are stored)
HASH_CHUNK_BYTES = 8 * 2**20
_HUB_HASH = re.compile(r"-([0-9a-f]{8,64})\.pth$")  # torch hub's name-<sha256 prefix>.pth


@dataclass(frozen=True)
class Finding:
    """One thing the doctor looked at: its section, OK / WARN / FAIL, what it found, and the fix."""

    section: str
    status: str
    text: str
    fix: str = ""


@dataclass(frozen=True)
class DoctorRequest:
    """What ``bench doctor`` was asked: the runs as ``bench run`` would plan them."""

    suite: str = "paper"
    data_spec: str | None = None  # SOURCE[:PATH] for every run (None: the suite's)
    runs_dir: Path = DEFAULT_RUNS_DIR
    only: str | None = None
    seeds: str | None = None
    verify_weights: bool = True  # hash each weights file (about a second per GB)
    measure: bool = False  # time training steps of each network on this machine's GPU (a minute or two)


def doctor(request: DoctorRequest, out: TextIO | None = None) -> int:
    """``bench doctor``: print every finding, the GPU time and what to run next; the exit code."""
    out = out if out is not None else sys.stdout
    run_request = RunRequest(
        request.suite, request.data_spec, only=request.only, seeds=request.seeds, runs_dir=Path(request.runs_dir)
    )
    try:
        plan = make_plan(run_request)
    except (ConfigError, ValueError, KeyError) as exc:
        print(f"error: {exc}", file=out)
        return EXIT_BAD_REQUEST
    from bench.fetch import plan_for_configs

    configs = plan.configs
    missing = plan_for_configs(configs)  # data and weights the runs read that are not here
    print(_heading(plan), file=out, flush=True)
    findings: list[Finding] = []
    for section, check in (
        ("GPUs", lambda: gpu_findings(configs)),
        ("host", lambda: host_findings(configs)),
        ("disk", lambda: disk_findings(configs, plan.runs_dir, missing)),
        ("data", lambda: data_findings(configs)),
        ("weights", lambda: weights_findings(configs, request.verify_weights)),
        ("run directories", lambda: run_dir_findings(configs, plan.runs_dir)),
    ):
        try:
            found = check()
        except Exception as exc:  # a machine this check did not foresee: say so and go on with the others
            found = [Finding(section, FAIL, f"the check itself failed: {type(exc).__name__}: {exc}")]
        findings += found
        _print_section(found, out)
    try:
        times = time_lines(plan, request.measure)
    except Exception as exc:
        times = [f"GPU time: not estimated ({type(exc).__name__}: {exc})"]
    print("\n".join(["", *times]), file=out)
    print("\n".join(["", *_summary(findings, missing, plan, request)]), file=out)
    return EXIT_FAIL if any(f.status == FAIL for f in findings) else EXIT_OK


def _heading(plan: Plan) -> str:
    configs = plan.configs
    seeds: dict[str, int] = {}
    for c in configs:
        seeds[c.name] = seeds.get(c.name, 0) + 1
    per = set(seeds.values())
    runs = f"{len(seeds)} runs x {per.pop()} seeds" if len(per) == 1 else f"{len(seeds)} runs with their seeds"
    devices = ", ".join(sorted({c.device for c in configs})) or "-"
    data = ", ".join(sorted({f"{c.data}:{c.data_path or '(default)'}" for c in configs})) or "-"
    return (
        f"bench doctor: suite {plan.suite.name}: {len(configs)} training runs ({runs}) on {devices}, data {data}, "
        f"run directories in {plan.runs_dir}/"
    )


def _print_section(findings: Sequence[Finding], out: TextIO) -> None:
    if not findings:
        return
    print(f"\n{findings[0].section}", file=out)
    for f in findings:
        print(f"  {f.status:<5} {f.text}", file=out)
        if f.fix:
            print(f"        -> {f.fix}", file=out)
    out.flush()


# --- GPUs -----------------------------------------------------------------------------------------------------


def nvml_devices() -> tuple[list[dict[str, Any]], dict[str, Any], str]:
    """(one dict per GPU NVML sees: index, name, uuid, memory_total_mib, memory_used_mib, others; the driver and
    the CUDA version it supports; a note on NVML). Never initialises CUDA."""
    from bench.speed.gpu import Nvml
    from bench.speed.memory import MIB

    try:
        import pynvml
    except ImportError as exc:
        return [], {}, f"NVML not importable ({exc}; it comes with nvidia-ml-py)"
    try:
        pynvml.nvmlInit()
    except Exception as exc:
        return [], {}, f"NVML does not answer (nvmlInit: {type(exc).__name__}: {exc}): no NVIDIA driver here"
    try:
        devices = []
        for i in range(pynvml.nvmlDeviceGetCount()):
            gpu = Nvml(pynvml, pynvml.nvmlDeviceGetHandleByIndex(i), f"index {i}")
            info = gpu.static_info()
            devices.append(
                {
                    "index": i,
                    "name": info["name"],
                    "uuid": info["uuid"],
                    "memory_total_mib": info["memory_total_mib"],
                    "memory_used_mib": gpu.used_bytes() / MIB,
                    "others": gpu.other_processes(),
                }
            )
        system = {
            "driver": _text(_nvml_get(pynvml.nvmlSystemGetDriverVersion)),
            "cuda_driver": _cuda_version(_nvml_get(pynvml.nvmlSystemGetCudaDriverVersion)),
        }
    except Exception as exc:
        return [], {}, f"NVML answered, then failed ({type(exc).__name__}: {exc})"
    finally:
        try:
            pynvml.nvmlShutdown()
        except Exception:
            pass
    return devices, system, f"NVML answers: {len(devices)} GPU(s)"


def gpu_findings(configs: Sequence[RunConfig]) -> list[Finding]:
    """Torch's CUDA build, the driver, NVML and each GPU torch sees, against what the runs plan."""
    import torch

    section = "GPUs"
    need = any(c.device == "cuda" for c in configs)
    nvml, system, note = nvml_devices()
    build = _torch_build()
    out: list[Finding] = []
    if not torch.cuda.is_available():
        why = _no_cuda_reason(nvml, system, note)
        status = FAIL if need else OK
        text = f"torch {build} sees no CUDA device: {why}" if need else f"no CUDA device, none planned ({build})"
        fix = _no_cuda_fix(nvml) if need else ""
        out.append(Finding(section, status, text, fix))
        if need and nvml:
            out += [Finding(section, WARN, f"NVML: GPU {d['index']} {d['name']} ({_gib(d)})") for d in nvml]
        return out
    out.append(
        Finding(section, OK, f"torch {build}; driver {system.get('driver') or '?'} (CUDA {system.get('cuda_driver')})")
    )
    out += _driver_findings(system, section)
    if note.startswith("NVML answers"):
        out.append(Finding(section, OK, note + " (device memory in Table 2, other processes)"))
    else:
        out.append(
            Finding(
                section,
                WARN,
                f"{note}: speed sweeps leave nvml_used_mib empty (memory per image from PyTorch's reserved bytes)",
                "pip install nvidia-ml-py (a dependency of this project) in the environment that runs bench",
            )
        )
    by_uuid = {_bare_uuid(d["uuid"]): d for d in nvml if d.get("uuid")}
    for i in range(torch.cuda.device_count()):
        out += _device_findings(i, by_uuid, configs, section)
    return out


def _device_findings(
    index: int, by_uuid: dict[str, dict[str, Any]], configs: Sequence[RunConfig], section: str
) -> list[Finding]:
    import torch

    props = torch.cuda.get_device_properties(index)
    cap = f"{props.major}.{props.minor}"
    smi = by_uuid.get(_bare_uuid(getattr(props, "uuid", "")), {})
    used = f", {smi['memory_used_mib'] / 1024:.1f} GiB in use" if smi else ""
    text = f"cuda:{index} {props.name}, compute capability {cap}, {props.total_memory / 2**30:.1f} GiB{used}"
    out = [Finding(section, OK, text)]
    arch = _arch_support(props.major, props.minor, torch.cuda.get_arch_list())
    if arch:
        fix = "install a torch build whose kernels cover this GPU (pytorch.org, 'previous versions')"
        out.append(Finding(section, WARN if "PTX JIT" in arch else FAIL, f"cuda:{index}: {arch}", fix))
    others = smi.get("others") or []
    if others:
        gib = sum(p["used_mib"] or 0 for p in others) / 1024
        pids = ", ".join(str(p["pid"]) for p in others)
        out.append(
            Finding(
                section,
                WARN,
                f"cuda:{index}: {len(others)} other process(es) on it (pids {pids}, {gib:.1f} GiB): they slow the "
                f"runs and take memory the runs and Table 2's sweeps expect",
            )
        )
    strict = [c for c in configs if c.device == "cuda" and c.amp == "none"]
    if strict and props.major >= 8 and torch.backends.cudnn.allow_tf32:
        out.append(
            Finding(
                section,
                WARN,
                f"cuda:{index}: cuDNN convolutions run in TF32 here (torch's default from compute capability 8.0): "
                f'amp = "none" is not strict fp32 on this GPU, and the runs do not record it (the papers\' GPUs had '
                f"no TF32)",
            )
        )
    if any(c.amp == "bf16" and c.device == "cuda" for c in configs) and not torch.cuda.is_bf16_supported():
        out.append(Finding(section, FAIL, f"cuda:{index}: the runs use amp = 'bf16', which this GPU lacks"))
    return out


def _driver_findings(system: dict[str, Any], section: str) -> list[Finding]:
    """The driver's CUDA version against the runtime torch was built with (a driver that is too old is the
    classic 'CUDA driver version is insufficient')."""
    import torch

    runtime, driver = _version_tuple(torch.version.cuda), _version_tuple(system.get("cuda_driver"))
    if runtime is None or driver is None or driver >= runtime:
        return []
    status = FAIL if driver[0] < runtime[0] else WARN
    return [
        Finding(
            section,
            status,
            f"the driver supports CUDA {system.get('cuda_driver')}, torch is built for CUDA {torch.version.cuda}"
            + (
                ""
                if status == FAIL
                else " (minor-version compatibility covers most of it; PTX JIT needs a newer driver)"
            ),
            "update the NVIDIA driver, or install a torch build for the driver's CUDA (pytorch.org)",
        )
    ]


def _arch_support(major: int, minor: int, arch_list: Sequence[str]) -> str:
    """ "" when this torch build has kernels for compute capability major.minor, else what is wrong."""
    if not arch_list:
        return ""
    cap = major * 10 + minor
    sm = {int(m.group(1)) for a in arch_list if a.startswith("sm_") and (m := re.match(r"sm_(\d+)", a))}
    ptx = {int(m.group(1)) for a in arch_list if a.startswith("compute_") and (m := re.match(r"compute_(\d+)", a))}
    if cap in sm or any(s // 10 == major and s <= cap for s in sm):
        return ""
    if any(p <= cap for p in ptx):
        return f"no native kernels for sm_{cap} in this torch build ({' '.join(arch_list)}): it runs through PTX JIT"
    return f"no kernels for sm_{cap} in this torch build (it has {' '.join(arch_list)})"


def _torch_build() -> str:
    import torch

    if torch.version.cuda is None:
        return f"{torch.__version__} (a CPU-only build)"
    cudnn = torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None
    return f"{torch.__version__} (CUDA {torch.version.cuda} runtime, cuDNN {_cudnn_text(cudnn)})"


def _no_cuda_reason(nvml: list[dict[str, Any]], system: dict[str, Any], note: str) -> str:
    import torch

    if torch.version.cuda is None:
        return "this torch is a CPU-only build" + (f"; NVML sees {len(nvml)} GPU(s)" if nvml else "")
    if nvml:
        driver = f"driver {system.get('driver')} supports CUDA {system.get('cuda_driver')}"
        hidden = os.environ.get("CUDA_VISIBLE_DEVICES")
        extra = f"; CUDA_VISIBLE_DEVICES={hidden!r}" if hidden is not None else ""
        return f"NVML sees {len(nvml)} GPU(s) ({driver}; torch needs CUDA {torch.version.cuda}{extra})"
    return note


def _no_cuda_fix(nvml: list[dict[str, Any]]) -> str:
    import torch

    if torch.version.cuda is None:
        return "pip install torch from a CUDA index (pytorch.org, 'Get started'), or run on a GPU machine"
    if nvml:
        return "update the driver to one for torch's CUDA, or check CUDA_VISIBLE_DEVICES (nvidia-smi lists the GPUs)"
    return "run on a machine with an NVIDIA GPU and its driver (nvidia-smi lists the GPUs), or pass --device cpu"


# --- host -----------------------------------------------------------------------------------------------------


def host_findings(configs: Sequence[RunConfig]) -> list[Finding]:
    """CPU cores for the DataLoader workers (RSIDE's transforms run on the CPU: too few starve the GPU)."""
    from bench.runtime import usable_cores

    cores = usable_cores()
    workers = max((c.num_workers for c in configs), default=0)
    if workers > cores:
        return [
            Finding(
                "host",
                WARN,
                f"{cores} CPU core(s) for num_workers = {workers}: the loader is capped at {cores} worker(s) and "
                f"may not keep a GPU busy",
                "rent more cores per GPU (SLURM: --cpus-per-gpu), or accept slower epochs",
            )
        ]
    return [Finding("host", OK, f"{cores} CPU core(s) for num_workers = {workers}")]


# --- disk -----------------------------------------------------------------------------------------------------


def disk_findings(configs: Sequence[RunConfig], runs_dir: Path, missing: Sequence[Task]) -> list[Finding]:
    """Free space on each filesystem against what the runs write and what is still to download there."""
    from bench.fetch.progress import human_bytes
    from bench.io import free_bytes
    from bench.rundir import planned_bytes

    needs: dict[int, tuple[Path, list[tuple[str, int]]]] = {}

    def need(path: Path, what: str, size: int) -> None:
        where = _existing(path)
        needs.setdefault(where.stat().st_dev, (where, []))[1].append((what, size))

    runs_bytes, prints = planned_bytes(configs, runs_dir)
    if prints:
        need(runs_dir, f"{len(prints)} run(s) to train ~{human_bytes(runs_bytes)} in {runs_dir}/", runs_bytes)
    weights = [t for t in missing if t.item.backbone and t.item.size_bytes]
    if weights:
        size = sum(t.item.size_bytes or 0 for t in weights)
        what = f"ImageNet weights of {len(weights)} encoder{'s' * (len(weights) > 1)} ~{human_bytes(size)}"
        need(weights[0].download, what, size)
    for task in missing:
        size = task.item.size_bytes
        if size is None or task.item.backbone:
            continue
        factor = UNPACK_FACTOR if task.item.unpack else 1
        unpack = f" while unpacking (the {human_bytes(size)} archive and its files)" if task.item.unpack else ""
        need(task.download, f"{task.item.name} ~{human_bytes(size * factor)}{unpack}", size * factor)
    out = []
    for where, parts in needs.values():
        total, free = sum(size for _, size in parts), free_bytes(where)
        text = f"{where}: {human_bytes(free)} free, needs ~{human_bytes(total)} ({'; '.join(w for w, _ in parts)})"
        if free < total:
            out.append(Finding("disk", FAIL, text, "free space there, or put the runs (--runs-dir) or data elsewhere"))
        elif free < DISK_HEADROOM * total:
            out.append(Finding("disk", WARN, text + f": less than {DISK_HEADROOM:g}x the need"))
        else:
            out.append(Finding("disk", OK, text))
    return out or [Finding("disk", OK, "nothing to write: every run is complete and every input present")]


# --- data -----------------------------------------------------------------------------------------------------


def data_findings(configs: Sequence[RunConfig]) -> list[Finding]:
    """Each data source opened as the runs open it: frame counts, the official test frames, the training set
    the suite demands, and one frame of each split read through the run's transforms."""
    out: list[Finding] = []
    keys = sorted({(c.data, c.data_path, c.train_split, c.test_split, c.protocol) for c in configs}, key=str)
    for key in keys:
        group = [c for c in configs if (c.data, c.data_path, c.train_split, c.test_split, c.protocol) == key]
        out += _source_findings(group)
    return out


def _source_findings(group: Sequence[RunConfig]) -> list[Finding]:
    from architectures.data import default_synthetic_path
    from architectures.data.common import official_split
    from architectures.data.downloads import RSIDE_TRAIN_PAIRS
    from bench.checks import check_train_variant
    from bench.datasets import DEFAULT_INPUT_SIZE, load_datasets

    c = group[0]
    spec = f"{c.data}:{c.data_path or '(default)'}"
    if c.data == "synthetic" and c.data_path is None and not default_synthetic_path().exists():
        return [Finding("data", OK, f"{spec}: the embedded synthetic rooms, written on first use")]
    try:
        train, test = load_datasets(c.replace(train_frames=None, eval_frames=None), DEFAULT_INPUT_SIZE, train=True)
    except Exception as exc:
        text = f"{spec} cannot be used: {str(exc).splitlines()[0]}"
        return [Finding("data", FAIL, text, _data_fix(c))]
    out = []
    variant = (train.identity or {}).get("train_variant")
    text = f"{spec}: {len(train):,} training frames ({variant}), {len(test):,} test frames"
    out.append(Finding("data", OK, text))
    try:
        for cfg in group:
            check_train_variant(cfg, variant)
    except ConfigError as exc:
        out.append(Finding("data", FAIL, str(exc)))
    if c.data == "rside-csv" and len(train) != RSIDE_TRAIN_PAIRS and not any(x.train_frames for x in group):
        out.append(
            Finding(
                "data",
                WARN,
                f"{spec}: {len(train):,} training pairs, not RSIDE's {RSIDE_TRAIN_PAIRS:,}: another or partial "
                f"nyu2_train.csv (the runs record {variant})",
            )
        )
    if c.data in ("nyu-labeled", "rside-csv") and c.test_split == "test":
        frames = sorted(int(f) for f in test.frame_indices)
        if frames == official_split("test"):
            out.append(Finding("data", OK, f"{spec}: the test split is the 654 official test frames (splits.mat)"))
        else:
            out.append(
                Finding(
                    "data",
                    FAIL,
                    f"{spec}: the test split has {len(frames)} frames, not the 654 official ones: every "
                    f"evaluation would stop (the paper's numbers are over those 654)",
                    "use RSIDE's nyu2_test.csv as published (bench fetch rside-data)",
                )
            )
    for name, dataset in (("training", train), ("test", test)):
        try:
            dataset[0]
        except Exception as exc:
            out.append(Finding("data", FAIL, f"{spec}: the first {name} frame cannot be read: {exc}"))
    return out


def _data_fix(config: RunConfig) -> str:
    if config.data == "rside-csv" and not str(config.data_path or "data").endswith(".csv"):
        return f"bench fetch rside-data --data-dir {config.data_path or 'data'}"
    if config.data == "nyu-labeled" and Path(config.data_path or "").name == "nyu_depth_v2_labeled.mat":
        return f"bench fetch nyu-labeled --data-dir {Path(config.data_path or '').parent}"
    return "see `bench run --dry-run` for where this data comes from and where it goes"


# --- weights --------------------------------------------------------------------------------------------------


def weights_findings(configs: Sequence[RunConfig], verify: bool = True) -> list[Finding]:
    """Each encoder's ImageNet file in the torch hub cache (checked against the sha256 prefix in its name when
    ``verify``), and weights files given by path."""
    from architectures.backbones import backbone_spec, imagenet_cache_dir

    out: list[Finding] = []
    cache = imagenet_cache_dir()
    imagenet = sorted({c.backbone for c in configs if c.weights == "imagenet" and c.source != "imported"})
    missing: list[int] = []  # positions in ``out`` of the encoders without weights
    for backbone in imagenet:
        try:
            names = backbone_spec(backbone).weight_files
        except KeyError:
            continue  # an unknown backbone: make_plan's model check names it
        found = next((cache / n for n in names if (cache / n).is_file()), None)
        if found is None:
            missing.append(len(out))
            out.append(Finding("weights", FAIL, f"{backbone}: no ImageNet weights in {cache}/ ({names[0]} expected)"))
        else:
            out.append(_weights_file_finding(backbone, found, verify))
    if missing:  # one command fetches them all: shown once, under the last
        names = ",".join(out[i].text.split(":")[0] for i in missing)
        out[missing[-1]] = replace(out[missing[-1]], fix=f"bench fetch weights --backbone {names}")
    for path in sorted({c.weights for c in configs if c.weights not in (None, "imagenet")}):
        ok = Path(path).is_file()
        out.append(Finding("weights", OK if ok else FAIL, f"{path}: {'a weights file' if ok else 'not found'}"))
    if not out:
        out.append(Finding("weights", OK, "no run initialises from ImageNet weights"))
    return out


def _weights_file_finding(backbone: str, path: Path, verify: bool) -> Finding:
    from bench.fetch.progress import human_bytes

    size = human_bytes(path.stat().st_size)
    m = _HUB_HASH.search(path.name)
    if not verify or m is None:
        return Finding("weights", OK, f"{backbone}: {path} ({size})")
    digest = _sha256(path)
    if digest.startswith(m.group(1)):
        return Finding("weights", OK, f"{backbone}: {path} ({size}), sha256 {m.group(1)}... as its name says")
    return Finding(
        "weights",
        FAIL,
        f"{backbone}: {path} has sha256 {digest[:12]}..., not {m.group(1)}... as its name says: damaged or partial",
        f"rm {path} && bench fetch weights --backbone {backbone}",
    )


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(HASH_CHUNK_BYTES):
            h.update(chunk)
    return h.hexdigest()


# --- run directories ------------------------------------------------------------------------------------------


def run_dir_findings(configs: Sequence[RunConfig], runs_dir: Path) -> list[Finding]:
    """What ``bench run`` will do with each run's directory: train, reuse, resume (--resume) or refuse."""
    from bench.checks import stored_diff
    from bench.rundir import RunDir, RunState

    counts = {"to train": 0, "complete (reused)": 0, "imported (evaluated)": 0}
    out: list[Finding] = []
    for c in configs:
        rd = RunDir.for_config(c, runs_dir)
        try:
            state = rd.state()
            diff = stored_diff(rd, c) if state in (RunState.COMPLETE, RunState.STARTED) else []
        except Exception as exc:
            out.append(
                Finding("run directories", FAIL, f"{rd.root}: unreadable ({exc})", "bench run --rerun moves it aside")
            )
            continue
        if state == RunState.ABSENT:
            counts["to train"] += 1
        elif state == RunState.IMPORTED:
            counts["imported (evaluated)"] += 1
        elif diff:
            fields = ", ".join(str(d[0]) for d in diff)
            text = f"{rd.root} holds another configuration ({fields}): bench run stops there"
            out.append(Finding("run directories", FAIL, text, "bench run --rerun moves it aside and trains again"))
        elif state == RunState.COMPLETE:
            counts["complete (reused)"] += 1
        else:
            out.append(Finding("run directories", WARN, f"{rd.root} was interrupted: bench run --resume continues it"))
    summary = ", ".join(f"{n} {what}" for what, n in counts.items() if n) or "none"
    return [Finding("run directories", OK, f"{runs_dir}/: {summary}"), *out]


# --- GPU time -------------------------------------------------------------------------------------------------


def time_lines(plan: Plan, measure: bool = False) -> list[str]:
    """The plan's GPU time per run, per paper table and in all, per GPU class; on a GPU also at its matmul rate,
    or (``measure``) from training steps timed on it (``measure_steps``)."""
    import torch

    from bench.estimate import GPU_ASSUMED_FRACTION, campaign_costs, gpu_time_table, matmul_tflops
    from bench.outcomes import format_duration

    costs = campaign_costs(plan.configs)
    here = measured = None
    gpu = torch.cuda.is_available() and any(c.device == "cuda" for c in plan.configs)
    out = []
    if gpu and measure:
        steps = measure_steps([c for c in plan.configs if c.device == "cuda"], "cuda")
        batch = {c.name: c.batch_size for c in plan.configs}
        seconds = {
            r.name: run_seconds(r.cost, steps[r.name], batch[r.name])
            for r in costs
            if isinstance(steps.get(r.name), float)
        }
        measured = (f"measured on {torch.cuda.get_device_name(0)}", seconds)
        out += [f"  {name}: not timed ({why})" for name, why in steps.items() if isinstance(why, str)]
    elif gpu:
        rate = matmul_tflops("cuda")
        here = (torch.cuda.get_device_name(0), rate) if rate else None
    table = gpu_time_table(costs, here, measured)
    notes = {r.cost.note for r in costs if r.cost.note and "assumed" in r.cost.note}
    if table:
        how = (
            " (this GPU: training steps timed now at each run's batch and input size, random data; data loading "
            "not included)"
            if measured
            else " (this GPU: at its fp32 matmul rate measured now, a lower bound)"
            if here
            else ""
        )
        out = [
            f"GPU time, an estimate and not a measurement: forward FLOPs counted on the meta device, x3 for a "
            f"training step, over every training and test image the runs see, at {GPU_ASSUMED_FRACTION:.0%} of "
            f"each GPU class's datasheet peak fp32 rate{how}. cuDNN's TF32 (torch's default on A100 / H100) can "
            "make real runs faster; the progress lines' ETA after the first minutes of a run is the measurement.",
            *table,
            "  one run per GPU: with N GPUs (--launcher local, or SLURM jobs) the wall time is about 1/N of this",
            *out,
        ]
        assumed = sorted({part for note in notes for part in note.split("; ") if "assumed" in part})
        out += [f"  (the data is not here: {part})" for part in assumed]
        if gpu and not measure:
            out.append("  (bench doctor --measure times a few training steps of each network on this GPU)")
    cpu = [r for r in costs if r.device == "cpu" and r.cost.seconds is not None]
    if cpu:
        seconds = sum((r.cost.seconds or 0.0) * r.seeds for r in cpu)
        out.append(f"CPU time here: ~{format_duration(seconds)} (a lower bound: this machine's matmul throughput)")
    return out or ["GPU time: nothing to estimate (no run's size is known)"]


def measure_steps(configs: Sequence[RunConfig], device: str, warmup: int = 3, repeats: int = 10) -> dict[str, Any]:
    """Seconds per training step (median) of each run's network on ``device``, by run name, at the run's batch
    and input size: ``bench speed``'s train mode (forward, the multi-scale loss, backward, Adam), random weights
    and data, fp32. A string instead of seconds says why a network could not be timed (out of memory, ...)."""
    import json

    from bench.datasets import DEFAULT_INPUT_SIZE
    from bench.speed import SpeedConfig, SpeedTarget
    from bench.speed.measure import ModelSession, classify

    models: dict[tuple[Any, ...], list[str]] = {}
    for c in configs:
        key = (c.arch, c.backbone, json.dumps(c.options, sort_keys=True), tuple(c.input_size or DEFAULT_INPUT_SIZE))
        models.setdefault(key + (c.batch_size,), []).append(c.name)
    out: dict[str, Any] = {}
    for (arch, backbone, options, hw, batch), names in models.items():
        target = SpeedTarget(arch, backbone, json.loads(options))
        config = SpeedConfig(
            (target,), device, hw, (batch,), modes=("train",), warmup=warmup, repeats=repeats, isolate_models=False
        ).resolved()
        try:
            session = ModelSession(config, target, mode="train")
            try:
                point = session.measure(batch, "list")
            finally:
                session.close()
            value: Any = point.time_median_ms / 1e3 if point.status == "ok" else f"{point.status}: {point.note}"
        except Exception as exc:  # a network that cannot even be built on the device
            value = ": ".join(classify(exc))
        out.update(dict.fromkeys(names, value))
    return out


def run_seconds(cost: CostEstimate, step_s: float, batch: int) -> float:
    """One seed's time from its measured training step (``step_s`` at ``batch``): every optimiser step, plus the
    evaluations at a third of a training step's time per image (forward only: no backward, no optimiser)."""
    return math.ceil((cost.train_images or 0) / batch) * step_s + (cost.eval_images or 0) / batch * step_s / 3


# --- summary --------------------------------------------------------------------------------------------------


def fetch_command(tasks: Sequence[Task]) -> str:
    """One ``bench fetch`` command for the missing inputs it can fetch (data and weights), or ""."""
    targets, dirs, backbones = [], set(), []
    for t in tasks:
        if t.item.backbone:
            backbones.append(t.item.backbone)
        elif t.item.name == "rside-data" and t.spec:
            targets.append("rside-data")
            dirs.add(t.spec.partition(":")[2])
        elif t.item.name == "nyu-labeled" and t.target.name == t.item.filename:
            targets.append("nyu-labeled")
            dirs.add(str(t.target.parent))
    if len(dirs) > 1:
        return ""  # several data folders: one command each (the data findings name them)
    words = ["bench fetch", *dict.fromkeys(targets)]
    if backbones:
        words.append("weights")
    if dirs:
        words.append(f"--data-dir {dirs.pop()}")
    if backbones:
        words.append(f"--backbone {','.join(dict.fromkeys(backbones))}")
    return " ".join(words) if len(words) > 1 else ""


def _summary(findings: Sequence[Finding], missing: Sequence[Task], plan: Plan, request: DoctorRequest) -> list[str]:
    from bench.fetch.progress import human_bytes

    fails = [f for f in findings if f.status == FAIL]
    warns = [f for f in findings if f.status == WARN]
    out = [f"{len(fails)} FAIL, {len(warns)} WARN, {len(findings) - len(fails) - len(warns)} OK"]
    run_args = f"--suite {request.suite}" + (f" --data {request.data_spec}" if request.data_spec else "")
    run_args += "".join(f" --{k} {v}" for k, v in (("only", request.only), ("seeds", request.seeds)) if v)
    steps = []
    command = fetch_command(missing)
    if command:
        size = sum(t.item.size_bytes or 0 for t in missing)
        steps.append(f"{command}   (~{human_bytes(size)}; `bench fetch --dry-run` lists every URL and destination)")
    covered = (lambda fix: fix.startswith("bench fetch ")) if command else (lambda fix: False)  # by that command
    steps += list(dict.fromkeys(f.fix for f in fails if f.fix and not covered(f.fix)))
    if fails:
        steps.append(f"bench doctor {run_args}   (again, until it exits 0)")
    if any(c.device == "cuda" for c in plan.configs):
        steps.append("python -m pytest -m gpu -q   (the GPU self-test: every CUDA path in minutes)")
    steps.append(
        f"bench run {run_args}" + (f" --runs-dir {plan.runs_dir}" if plan.runs_dir != DEFAULT_RUNS_DIR else "")
    )
    out.append("next:" if not fails else "to fix, then run:")
    out += [f"  {s}" for s in steps]
    return out


# --- helpers --------------------------------------------------------------------------------------------------


def _existing(path: Path) -> Path:
    probe = Path(path).absolute()
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    return probe


def _gib(device: dict[str, Any]) -> str:
    total = device.get("memory_total_mib")
    return f"{total / 1024:.0f} GiB" if total else "memory unknown"


def _bare_uuid(uuid: object) -> str:
    return re.sub(r"^(GPU|MIG)-", "", str(uuid or "")).lower()


def _nvml_get(fn: Callable[[], Any]) -> Any:
    try:
        return fn()
    except Exception:
        return None


def _text(value: Any) -> Any:
    return value.decode() if isinstance(value, bytes) else value


def _cuda_version(value: Any) -> str | None:
    """NVML's 12040 -> "12.4"."""
    return f"{value // 1000}.{value % 1000 // 10}" if isinstance(value, int) and value > 0 else None


def _version_tuple(text: str | None) -> tuple[int, ...] | None:
    if not text:
        return None
    try:
        return tuple(int(p) for p in str(text).split(".")[:2])
    except ValueError:
        return None


def _cudnn_text(version: int | None) -> str:
    """torch's 90100 -> "9.1.0"; older cuDNN (8xxx) -> "8.x.y"."""
    if not version:
        return "none"
    if version >= 10000:
        return f"{version // 10000}.{version % 10000 // 100}.{version % 100}"
    return f"{version // 1000}.{version % 1000 // 100}.{version % 100}"
