"""Plan, describe and carry out fetches: targets -> tasks (an item with its destination) -> downloads and unpacks.

``fetch(FetchConfig)`` is what ``bench fetch`` calls; ``fetch_for_configs(configs)`` fetches what planned runs
read and is missing (their data and their ImageNet weights), for an explicit opt-in such as ``bench run
--fetch``; nothing here runs unless asked.
"""

from __future__ import annotations

import shutil
import sys
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from bench.fetch import catalog
from bench.fetch.catalog import CATALOG, GROUPS, TARGETS, Item, weights_item
from bench.fetch.download import BACKOFF_S, RETRIES, Expected, download, partial_bytes
from bench.fetch.errors import FetchError
from bench.fetch.install import (
    find_checkpoints,
    install_rside_checkpoints,
    install_rside_data,
    rside_data_folder,
    rside_data_ok,
)
from bench.fetch.progress import human_bytes

if TYPE_CHECKING:
    from bench.config import RunConfig

__all__ = [
    "DEFAULT_DATA_DIR",
    "FetchConfig",
    "FetchReport",
    "Task",
    "describe",
    "fetch",
    "fetch_for_configs",
    "paper_backbones",
    "plan",
    "plan_for_configs",
    "status",
]

DEFAULT_DATA_DIR = Path("data")  # the paper suite's data_path; the labeled .mat's default folder
CHECKPOINTS_FOLDER = "rside_pretrained"  # under the data directory


@dataclass(frozen=True)
class FetchConfig:
    """What ``bench fetch`` was asked for."""

    targets: tuple[str, ...] = ()  # catalog.TARGETS names; empty = "paper"
    data_dir: Path = DEFAULT_DATA_DIR  # data sets and the checkpoint archive go here
    backbones: tuple[str, ...] | None = None  # encoders for weights/paper/all; None = the paper suite's
    dry_run: bool = False  # list URLs, sizes, destinations and status; download nothing
    keep_archives: bool = False  # keep the downloaded zips after unpacking them
    retries: int = RETRIES  # connection drops in a row without progress before giving up


@dataclass(frozen=True)
class Task:
    """One item and where it goes."""

    item: Item
    download: Path  # the downloaded file (its .part sits beside it while in flight)
    target: Path  # what runs read: the file itself, or the folder the archive is unpacked into
    spec: str | None = None  # the data spec that reads it, e.g. "rside-csv:data"
    accepted: tuple[Path, ...] = ()  # other files that count as present (weights: every name backbones accepts)


@dataclass(frozen=True)
class Status:
    state: str  # "present", "missing", "partial", "downloaded" (archive not unpacked yet), "blocked"
    detail: str = ""


@dataclass
class FetchReport:
    """What a fetch did: tasks present at the end, and those that failed with their error."""

    planned: list[Task] = field(default_factory=list)
    present: list[Task] = field(default_factory=list)
    failed: list[tuple[Task, FetchError]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # per-task facts worth repeating at the end (CSV rows)


# --- planning ------------------------------------------------------------------------------------------------------


def paper_backbones() -> tuple[str, ...]:
    """Encoders the paper suite initialises from ImageNet (its runs with ``weights = "imagenet"``)."""
    from bench.suite import load_suite

    runs = load_suite("paper").runs
    return tuple(sorted({r.backbone for r in runs if r.weights == "imagenet"}, key=_backbone_order))


def plan(
    targets: Sequence[str] = (), data_dir: str | Path = DEFAULT_DATA_DIR, backbones: Sequence[str] | None = None
) -> list[Task]:
    """Tasks for command-line targets (``catalog.TARGETS``); unknown names raise ValueError listing them."""
    data_dir = Path(data_dir)
    unknown = [t for t in targets if t not in TARGETS]
    if unknown:
        raise ValueError(f"unknown target(s) {', '.join(map(repr, unknown))}; available: {', '.join(TARGETS)}")
    names: list[str] = []
    for t in targets or ("paper",):
        if t == "paper":
            names += ["rside-data", "weights", "rside-checkpoints"]
        elif t == "all":
            names += ["rside-data", "nyu-labeled", "weights", "rside-checkpoints"]
        else:
            names.append(t)
    tasks: list[Task] = []
    for name in dict.fromkeys(names):
        if name == "weights":
            tasks += [weights_task(b) for b in (backbones if backbones is not None else paper_backbones())]
        elif name == "nyu-labeled":
            tasks.append(labeled_task(data_dir / CATALOG[name].filename))
        elif name == "rside-data":
            tasks.append(rside_data_task(data_dir))
        elif name == "rside-checkpoints":
            tasks.append(checkpoints_task(data_dir))
    return _unique(tasks)


def labeled_task(path: str | Path) -> Task:
    path = Path(path)
    return Task(CATALOG["nyu-labeled"], download=path, target=path, spec=f"nyu-labeled:{path}")


def rside_data_task(data_dir: str | Path) -> Task:
    data_dir = Path(data_dir)
    item = CATALOG["rside-data"]
    return Task(
        item, download=data_dir / item.filename, target=rside_data_folder(data_dir), spec=f"rside-csv:{data_dir}"
    )


def checkpoints_task(data_dir: str | Path) -> Task:
    data_dir = Path(data_dir)
    item = CATALOG["rside-checkpoints"]
    return Task(item, download=data_dir / item.filename, target=data_dir / CHECKPOINTS_FOLDER)


def weights_task(backbone: str) -> Task:
    from architectures.backbones import BACKBONES, imagenet_cache_dir

    item = weights_item(backbone)
    cache = imagenet_cache_dir()
    accepted = tuple(cache / name for name in BACKBONES[backbone].weight_files) if backbone in BACKBONES else ()
    return Task(item, download=cache / item.filename, target=cache / item.filename, accepted=accepted)


def plan_for_configs(configs: Iterable[RunConfig]) -> list[Task]:
    """What these runs read and is missing: their data (nyu-labeled, rside-csv) and ImageNet weights."""
    tasks: list[Task] = []
    for c in configs:
        if c.weights == "imagenet" and c.backbone in catalog.WEIGHTS and c.source != "imported":
            tasks.append(weights_task(c.backbone))
        if c.data == "nyu-labeled":
            from architectures.data.downloads import NYU_LABELED_DEFAULT

            tasks.append(labeled_task(c.data_path or NYU_LABELED_DEFAULT))
        elif c.data == "rside-csv" and c.data_path and not c.data_path.endswith(".csv"):
            tasks.append(rside_data_task(c.data_path))
    return [t for t in _unique(tasks) if status(t).state != "present"]


def status(task: Task) -> Status:
    """Whether the task's result is already there (cheap checks: existence and published size, no hashing)."""
    item = task.item
    if item.unpack == "rside-data":
        data_dir = Path(task.spec.partition(":")[2]) if task.spec else task.target
        if rside_data_ok(data_dir):
            return Status("present", f"{task.spec} finds nyu2_train.csv and nyu2_test.csv")
    elif item.unpack == "rside-checkpoints":
        found = find_checkpoints(task.target)
        if found:
            return Status("present", ", ".join(f"{b}: {p}" for b, p in found.items()))
        if task.target.exists():
            return Status("blocked", f"{task.target} exists without RSIDE's model_* files: move it away")
    else:
        existing = next((p for p in (task.target, *task.accepted) if p.is_file()), None)
        if existing is not None:
            size = existing.stat().st_size
            if item.exact_bytes is None or size == item.exact_bytes or existing != task.target:
                return Status("present", str(existing))
            return Status(
                "blocked",
                f"{existing} exists with {size:,} bytes, not the published {item.exact_bytes:,}: it is left as it "
                f"is; move it away (or fetch into another --data-dir) and run again",
            )
    if item.unpack and task.download.is_file():
        return Status("downloaded", f"{task.download} is there; it will be unpacked")
    done = partial_bytes(task.download)
    if done:
        of = f" of {human_bytes(item.size_bytes)}" if item.size_bytes else ""
        return Status("partial", f"{human_bytes(done)}{of} downloaded; resumes")
    return Status("missing")


# --- describing ----------------------------------------------------------------------------------------------------


def describe(tasks: Sequence[Task], heading: str) -> str:
    """The dry run: each task's URLs, size, hash, destination and status; totals; what to pass afterwards."""
    lines = [heading, ""]
    to_fetch: list[Task] = []
    for task in tasks:
        item, st = task.item, status(task)
        lines.append(f"{item.name}  {item.title}")
        for i, source in enumerate(item.sources):
            lines.append(f"  {'url' if i == 0 else 'mirror':<11} {source.url}  [{source.origin}]")
        lines.append(f"  {'size':<11} {_size_text(item)}")
        lines.append(f"  {'sha256':<11} {_hash_text(item)}")
        lines.append(f"  {'download':<11} {task.download}" + (" (deleted once unpacked)" if item.unpack else ""))
        if item.unpack == "rside-data":
            lines.append(f"  {'unpack':<11} {task.target}/ (nyu2_train.csv, nyu2_test.csv, their folders)")
        elif item.unpack:
            lines.append(f"  {'unpack':<11} {task.target}/")
        lines.append(f"  {'status':<11} {st.state}" + (f": {st.detail}" if st.detail else ""))
        lines.append("")
        if st.state not in ("present", "downloaded"):
            to_fetch.append(task)
    lines.append(_totals(to_fetch))
    lines += _next_steps(tasks, heading="afterwards")
    return "\n".join(lines)


def _size_text(item: Item) -> str:
    if item.exact_bytes is not None:
        return f"{item.exact_bytes:,} bytes ({human_bytes(item.exact_bytes)}; {item.size_note}), verified"
    if item.approx_bytes is not None:
        return f"~{human_bytes(item.approx_bytes)} ({item.size_note}); not verified"
    return f"{item.size_note or 'not published'}; the server's Content-Length is checked"


def _hash_text(item: Item) -> str:
    if not item.sha256:
        return item.hash_note or "not published"
    kind = "prefix " if len(item.sha256) < 64 else ""
    return f"{kind}{item.sha256} ({item.hash_note}), verified"


def _totals(tasks: Sequence[Task]) -> str:
    if not tasks:
        return "nothing to download: every item is present"
    known = sum(t.item.size_bytes or 0 for t in tasks) - sum(partial_bytes(t.download) for t in tasks)
    unknown = [t.item.name for t in tasks if t.item.size_bytes is None]
    text = f"to download: {len(tasks)} item(s), ~{human_bytes(max(known, 0))}"
    if unknown:
        text += f" + {', '.join(unknown)} (size not published)"
    if any(t.item.unpack == "rside-data" for t in tasks):
        text += "; unpacking rside-data needs about as much space again (the zip is deleted afterwards)"
    wheres = dict.fromkeys(_existing_parent(t.download) for t in tasks)
    return text + "\nfree: " + ", ".join(f"{human_bytes(shutil.disk_usage(w).free)} on {w}" for w in wheres)


def _next_steps(tasks: Sequence[Task], heading: str) -> list[str]:
    lines = []
    for task in tasks:
        if task.spec == f"rside-csv:{DEFAULT_DATA_DIR}":
            lines.append(f"  --data {task.spec}  (the paper suite's data_path: bench run --suite paper reads it as is)")
        elif task.spec:
            lines.append(f"  --data {task.spec}")
    weights = [t for t in tasks if t.item.backbone]
    if weights:
        lines.append(f'  weights = "imagenet" reads {", ".join(t.item.backbone or "" for t in weights)} from '
                     f"{weights[0].download.parent}/")  # fmt: skip
    for task in tasks:
        if task.item.unpack == "rside-checkpoints":
            found = find_checkpoints(task.target)
            if found:
                for backbone, path in found.items():
                    lines.append(f"  bench import rside-checkpoint {path} --backbone {backbone}")
            else:
                lines.append(
                    f"  bench import rside-checkpoint {task.target}/.../model_<resnet|densenet|senet> --backbone "
                    f"<resnet50|densenet161|senet154>  (the released files, once unpacked)"
                )
    return [f"{heading}:", *lines] if lines else []


# --- fetching ------------------------------------------------------------------------------------------------------


def fetch(
    config: FetchConfig,
    echo: Callable[[str], None] = print,
    stream: TextIO | None = None,
    tty: bool | None = None,
    backoff_s: float = BACKOFF_S,
) -> FetchReport:
    """``bench fetch``: plan the targets, then describe them (dry run) or fetch what is missing.

    echo gets the plan and the summary (stdout); stream the progress (stderr by default). Raises FetchError
    when an item failed (after trying the others)."""
    tasks = plan(config.targets, config.data_dir, config.backbones)
    names = ", ".join(config.targets) if config.targets else f"paper ({GROUPS['paper']})"
    if config.dry_run:
        echo(describe(tasks, f"bench fetch {names}: dry run, nothing is downloaded"))
        return FetchReport(planned=tasks)
    report = run_tasks(tasks, echo, stream, tty, config.keep_archives, config.retries, backoff_s)
    _finish(report, echo)
    return report


def fetch_for_configs(
    configs: Iterable[RunConfig],
    echo: Callable[[str], None] = print,
    dry_run: bool = False,
    stream: TextIO | None = None,
    tty: bool | None = None,
    backoff_s: float = BACKOFF_S,
) -> FetchReport:
    """Fetch the missing data and ImageNet weights that these runs read (never called implicitly)."""
    tasks = plan_for_configs(configs)
    if not tasks:
        echo("fetch: every input of these runs is present")
        return FetchReport()
    if dry_run:
        echo(describe(tasks, "fetch: these runs need (dry run, nothing is downloaded)"))
        return FetchReport(planned=tasks)
    report = run_tasks(tasks, echo, stream, tty, keep_archives=False, retries=RETRIES, backoff_s=backoff_s)
    _finish(report, echo)
    return report


def run_tasks(
    tasks: Sequence[Task],
    echo: Callable[[str], None] = print,
    stream: TextIO | None = None,
    tty: bool | None = None,
    keep_archives: bool = False,
    retries: int = RETRIES,
    backoff_s: float = BACKOFF_S,
) -> FetchReport:
    """Fetch every task that is not present; a failure is reported and the others still run."""
    stream = stream or sys.stderr
    report = FetchReport(planned=list(tasks))
    for task in tasks:
        name, st = task.item.name, status(task)
        if st.state == "present":
            echo(f"{name}: present ({st.detail})")
            report.present.append(task)
            continue
        try:
            if st.state == "blocked":
                raise FetchError(st.detail)
            _run_one(task, st, echo, stream, tty, keep_archives, retries, backoff_s, report)
            report.present.append(task)
        except FetchError as e:
            if len(tasks) > 1:
                echo(f"{name}: FAILED: {e}")
            report.failed.append((task, e))
    return report


def _run_one(
    task: Task,
    st: Status,
    echo: Callable[[str], None],
    stream: TextIO,
    tty: bool | None,
    keep_archives: bool,
    retries: int,
    backoff_s: float,
    report: FetchReport,
) -> None:
    item = task.item
    if st.state != "downloaded":
        size = f"{item.exact_bytes:,} bytes" if item.exact_bytes else f"~{human_bytes(item.approx_bytes)}"
        echo(f"{item.name}: downloading ({size if item.size_bytes else 'size not published'}) to {task.download}")
        expected = Expected(size=item.exact_bytes, sha256=item.sha256, approx_size=item.approx_bytes)
        urls = [s.url for s in item.sources]
        download(urls, task.download, expected, label=item.name, stream=stream, tty=tty, retries=retries,
                 backoff_s=backoff_s)  # fmt: skip
        checked = [w for w, on in (("size", item.exact_bytes), ("sha256", item.sha256)) if on]
        got = human_bytes(task.download.stat().st_size)
        echo(f"{item.name}: {task.download}, {got} (" + (" and ".join(checked) + " verified" if checked else
             "as long as the server announced; no size or hash is published") + ")")  # fmt: skip
    if item.unpack == "rside-data":
        echo(f"{item.name}: unpacking {task.download.name} into {task.target}/")
        lines = install_rside_data(task.download, Path(task.spec.partition(":")[2]), stream=stream, tty=tty)
        report.notes += [f"{item.name}: {line}" for line in lines]
    elif item.unpack == "rside-checkpoints":
        echo(f"{item.name}: unpacking {task.download.name} into {task.target}/")
        install_rside_checkpoints(task.download, task.target, stream=stream, tty=tty)
    if item.unpack and not keep_archives:
        size = task.download.stat().st_size
        task.download.unlink()
        echo(f"{item.name}: removed {task.download} ({human_bytes(size)}; --keep-archives keeps it)")


def _finish(report: FetchReport, echo: Callable[[str], None]) -> None:
    for note in report.notes:
        echo(note)
    steps = _next_steps(report.present, heading="next")
    if steps:
        echo("\n".join(steps))
    if len(report.failed) == 1 and len(report.planned) == 1:
        raise report.failed[0][1]
    if report.failed:
        names = ", ".join(t.item.name for t, _ in report.failed)
        raise FetchError(f"{len(report.failed)} of {len(report.planned)} item(s) failed ({names}); see above")


# --- helpers -------------------------------------------------------------------------------------------------------


def _unique(tasks: Iterable[Task]) -> list[Task]:
    return list({(t.item.name, t.target): t for t in tasks}.values())


def _backbone_order(name: str) -> int:
    return list(catalog.WEIGHTS).index(name) if name in catalog.WEIGHTS else len(catalog.WEIGHTS)


def _existing_parent(path: Path) -> Path:
    probe = path.parent
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    return probe
