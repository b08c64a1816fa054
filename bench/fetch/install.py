"""Put an unpacked archive where the harness reads it: RSIDE's data folder, RSIDE's released networks.

Both unpack into a temporary directory beside the destination (same filesystem), check what they got, and
only then move it into place, so an interrupted unpack never leaves a half-filled folder where a run reads.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import TextIO

from bench.fetch.catalog import CHECKPOINT_BACKBONES
from bench.fetch.errors import FetchError
from bench.fetch.extract import extract_zip

__all__ = ["find_checkpoints", "install_rside_checkpoints", "install_rside_data", "rside_data_folder", "rside_data_ok"]

RSIDE_CSVS = ("nyu2_train.csv", "nyu2_test.csv")


def rside_data_folder(data_dir: Path) -> Path:
    """Where RSIDE's ``data/`` folder goes for ``--data rside-csv:<data_dir>``: ``data_dir`` itself when it is
    named ``data`` (the CSV rows, ``data/nyu2_train/...``, then resolve against its parent), else
    ``data_dir/data`` (rows resolve against ``data_dir``). ``find_csv`` looks in both places."""
    data_dir = Path(data_dir)
    return data_dir if data_dir.name == "data" else data_dir / "data"


def rside_data_ok(data_dir: Path) -> bool:
    """Whether ``rside-csv:<data_dir>`` finds both CSVs (a cheap check; the runner opens them fully)."""
    from architectures.data.rside_csv import find_csv

    try:
        return all(find_csv(data_dir, split).is_file() for split in ("train", "test"))
    except Exception:
        return False


def install_rside_data(
    archive: Path, data_dir: Path, *, stream: TextIO | None = None, tty: bool | None = None
) -> list[str]:
    """Unpack RSIDE's data archive so that ``--data rside-csv:<data_dir>`` reads it; returns one line per CSV
    (rows, and whether the test rows are the 654 official frames)."""
    data_dir = Path(data_dir)
    folder = rside_data_folder(data_dir)
    data_dir.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".unpack-rside-data.", dir=data_dir))
    try:
        extract_zip(archive, tmp, stream=stream, tty=tty)
        source = _csv_folder(tmp, archive)
        entries = sorted(source.iterdir(), key=lambda p: (p.name in RSIDE_CSVS, p.name))  # the CSVs last
        taken = [folder / e.name for e in entries if (folder / e.name).exists() or (folder / e.name).is_symlink()]
        if taken:
            names = ", ".join(str(p) for p in taken[:4]) + (" ..." if len(taken) > 4 else "")
            raise FetchError(
                f"cannot unpack {archive.name} into {folder}: {names} already exist(s) (an earlier unpack that was "
                f"interrupted?); move them away and run the same command again"
            )
        folder.mkdir(parents=True, exist_ok=True)
        for entry in entries:
            shutil.move(str(entry), str(folder / entry.name))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return _open_csvs(data_dir)


def find_checkpoints(root: Path) -> dict[str, Path]:
    """backbone -> released RSIDE file under ``root`` (``model_resnet``, ``model_densenet``, ``model_senet``)."""
    found: dict[str, Path] = {}
    if not Path(root).is_dir():
        return found
    for path in sorted(Path(root).rglob("*")):
        stem = path.name.split(".")[0]
        if path.is_file() and stem in CHECKPOINT_BACKBONES and not path.name.startswith("."):
            found.setdefault(CHECKPOINT_BACKBONES[stem], path)
    order = list(CHECKPOINT_BACKBONES.values())  # ResNet-50, DenseNet-161, SENet-154 as the paper lists them
    return dict(sorted(found.items(), key=lambda kv: order.index(kv[0])))


def install_rside_checkpoints(
    archive: Path, target: Path, *, stream: TextIO | None = None, tty: bool | None = None
) -> dict[str, Path]:
    """Unpack RSIDE's released networks into ``target`` (which must not exist yet); returns backbone -> file."""
    target = Path(target)
    if target.exists():
        raise FetchError(f"{target} already exists without RSIDE's model_* files: move it away and run again")
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".unpack-rside-checkpoints.", dir=target.parent))
    try:
        extract_zip(archive, tmp, stream=stream, tty=tty)
        if not find_checkpoints(tmp):
            names = ", ".join(sorted(CHECKPOINT_BACKBONES))
            raise FetchError(f"{archive} holds none of RSIDE's released files ({names}); it is kept for inspection")
        tmp.rename(target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return find_checkpoints(target)


def _csv_folder(root: Path, archive: Path) -> Path:
    """The one folder of the unpacked archive that holds both CSVs, with their first rows resolving in it."""
    candidates = sorted({p.parent for p in root.rglob(RSIDE_CSVS[0]) if (p.parent / RSIDE_CSVS[1]).is_file()})
    if len(candidates) != 1:
        what = "no folder" if not candidates else f"{len(candidates)} folders"
        raise FetchError(
            f"{archive} is not RSIDE's data layout: {what} with both {' and '.join(RSIDE_CSVS)} "
            f"(expected data/nyu2_train.csv and data/nyu2_test.csv)"
        )
    folder = candidates[0]
    for name in RSIDE_CSVS:
        first = (folder / name).read_text(errors="replace").lstrip().split("\n", 1)[0]
        image = first.split(",")[0].strip()
        relative = image[len("data/") :] if image.startswith("data/") else image
        if not image or not (folder / relative).is_file():
            raise FetchError(
                f"{archive}: the first row of {name} names {image!r}, which the archive does not hold at "
                f"{(folder / relative).relative_to(root)}; this is not RSIDE's data layout"
            )
    return folder


def _open_csvs(data_dir: Path) -> list[str]:
    """Open both CSVs as the runner will (every listed file must exist); one summary line each."""
    from architectures.data.common import DataError
    from architectures.data.rside_csv import RSIDECSV, find_csv

    lines = []
    for split in ("train", "test"):
        try:
            ds = RSIDECSV(find_csv(data_dir, split), split=split)
        except DataError as e:
            raise FetchError(f"unpacked, but rside-csv:{data_dir} cannot be read: {e}") from None
        line = f"{ds.csv_path}: {len(ds):,} pairs"
        if split == "test":
            official = ds.identity.get("official_test_frames")
            line += " (the 654 official test frames)" if official else " (NOT the 654 official test frames)"
        lines.append(line)
    return lines
