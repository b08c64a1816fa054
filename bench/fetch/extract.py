"""Safe zip extraction: every entry is checked before anything is written.

Refused (the whole archive, before extracting a byte): absolute paths (``/x``, ``C:x``, ``\\\\x``), any ``..``
component, symbolic links and other special files, NUL bytes in names. Backslashes count as separators, as
Windows tools write them. The free space is checked against the uncompressed size first; zipfile checks each
entry's CRC-32 as it is read, so a damaged archive stops with the entry named.
"""

from __future__ import annotations

import errno
import re
import shutil
import stat
import sys
import zipfile
from pathlib import Path
from typing import TextIO

from bench.fetch.download import check_free_space
from bench.fetch.errors import DiskFullError, FetchError, UnsafeArchiveError
from bench.fetch.progress import TransferProgress

__all__ = ["extract_zip", "unsafe_entries"]

COPY_BYTES = 1 << 20  # copy buffer (bytes)
_SHOWN = 5  # unsafe entries named in the error
_DRIVE = re.compile(r"^[A-Za-z]:")


def unsafe_entries(infos: list[zipfile.ZipInfo]) -> list[tuple[str, str]]:
    """(entry name, why) for every entry that could land outside the extraction directory or is not a plain
    file or directory."""
    bad = []
    for info in infos:
        name = info.filename
        parts = name.replace("\\", "/").split("/")
        mode = info.external_attr >> 16
        if "\x00" in name:
            bad.append((name, "NUL byte in the name"))
        elif name.replace("\\", "/").startswith("/") or _DRIVE.match(name):
            bad.append((name, "absolute path"))
        elif ".." in parts:
            bad.append((name, "'..' component"))
        elif stat.S_ISLNK(mode):
            bad.append((name, "symbolic link"))
        elif mode and stat.S_IFMT(mode) not in (0, stat.S_IFREG, stat.S_IFDIR):
            bad.append((name, "special file"))
    return bad


def extract_zip(
    archive: Path, into: Path, *, label: str | None = None, stream: TextIO | None = None, tty: bool | None = None
) -> int:
    """Extract ``archive`` into the directory ``into`` (created if needed) after checking every entry; returns
    the number of files written. Raises UnsafeArchiveError (nothing written), FetchError (not a zip, damaged),
    DiskFullError."""
    archive, into = Path(archive), Path(into)
    try:
        zf = zipfile.ZipFile(archive)
    except (zipfile.BadZipFile, OSError) as e:
        raise FetchError(f"{archive} is not a readable zip archive ({e})") from None
    with zf:
        infos = zf.infolist()
        bad = unsafe_entries(infos)
        if bad:
            shown = ", ".join(f"{name!r} ({why})" for name, why in bad[:_SHOWN])
            more = f" and {len(bad) - _SHOWN} more" if len(bad) > _SHOWN else ""
            raise UnsafeArchiveError(
                f"refusing to unpack {archive}: {len(bad)} unsafe entr{'y' if len(bad) == 1 else 'ies'} (a path "
                f"outside the target, or not a plain file or folder): {shown}{more}; nothing was extracted (the "
                f"archive is kept for inspection)"
            )
        total = sum(i.file_size for i in infos if not i.is_dir())
        into.mkdir(parents=True, exist_ok=True)
        check_free_space(into, total, f"unpacking {archive.name}")
        root = into.resolve()
        progress = TransferProgress(label or f"unpacking {archive.name}", total, stream=stream or sys.stderr, tty=tty)
        files = 0
        for info in infos:
            target = into.joinpath(*[p for p in info.filename.replace("\\", "/").split("/") if p not in ("", ".")])
            if not target.resolve().is_relative_to(root):  # belt and braces: the checks above exclude this
                raise UnsafeArchiveError(f"refusing to unpack {archive}: {info.filename!r} resolves outside {into}")
            if info.is_dir():
                target.mkdir(parents=True, exist_ok=True)
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            _copy(zf, info, target, archive, progress)
            files += 1
        progress.close()
    return files


def _copy(zf: zipfile.ZipFile, info: zipfile.ZipInfo, target: Path, archive: Path, progress: TransferProgress) -> None:
    try:
        with zf.open(info) as src, open(target, "wb") as dst:
            while chunk := src.read(COPY_BYTES):
                dst.write(chunk)
                progress.advance(len(chunk))
    except zipfile.BadZipFile as e:
        raise FetchError(f"{archive} is damaged: entry {info.filename!r}: {e}; delete it and fetch again") from None
    except OSError as e:
        if e.errno in (errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)):
            free = shutil.disk_usage(target.parent).free
            raise DiskFullError(
                f"disk full while unpacking {archive.name} ({info.filename}): {free:,} bytes free on the filesystem "
                f"of {target.parent}; free some space and run the same command again",
                target,
                info.file_size,
                free,
            ) from None
        raise FetchError(f"cannot write {target} while unpacking {archive.name}: {e}") from None
