"""Errors of ``bench fetch``: each message is one line that names the file or URL and says what to do."""

from __future__ import annotations

from pathlib import Path

from bench.io import DiskFullError as _DiskFull

__all__ = [
    "ChecksumError",
    "DiskFullError",
    "FetchError",
    "HTTPStatusError",
    "NetworkError",
    "NotTheFileError",
    "UnsafeArchiveError",
]


class FetchError(Exception):
    """A download or unpack failed; the message is meant for the user as is (no traceback)."""


class NetworkError(FetchError):
    """The host cannot be reached (no network, name lookup, refused), or the connection kept dropping."""


class HTTPStatusError(FetchError):
    """The server answered with an error status (404, 403, 500, ...)."""

    def __init__(self, url: str, status: int, reason: str = ""):
        self.url, self.status = url, status
        super().__init__(f"{url}: HTTP {status} {reason}".rstrip())


class NotTheFileError(FetchError):
    """The server answered with a web page (an error or confirmation page) instead of the file."""


class DiskFullError(FetchError, _DiskFull):
    """Not enough free space for a download or an unpack, or the disk filled up while writing: ``bench.io``'s
    DiskFullError (the file, the bytes it needs, the bytes free; errno ENOSPC), worded for a fetch, and a
    FetchError, so that a fetch reports it like its other failures."""

    def __init__(self, message: str, path: str | Path, needed_bytes: int, free: int):
        _DiskFull.__init__(self, path, needed_bytes, free, message=message)


class ChecksumError(FetchError):
    """A finished download has the wrong size or sha256; it was deleted, nothing was installed."""


class UnsafeArchiveError(FetchError):
    """An archive has entries that would land outside the target (absolute, ``..``, links); nothing was extracted."""
