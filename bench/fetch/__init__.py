"""``bench fetch``: verified, resumable downloads of everything the paper regime reads.

Nothing downloads in the middle of a run: a run that lacks its data or ImageNet weights stops with a message
naming the ``bench fetch`` command that fixes it, and ``fetch_for_configs`` (for an explicit opt-in such as
``bench run --fetch``) is the only way a run's plan leads to a download.

Modules: ``catalog`` (what can be fetched: URLs, sizes, hashes, their sources), ``download`` (HTTP with Range
resume, retries, Google Drive's confirmation step, free-space check, verification, atomic rename), ``extract``
(zip extraction that refuses entries outside the target), ``install`` (RSIDE's data folder and released
networks, put in place), ``progress`` (bar with rate and ETA, or log lines), ``tasks`` (plan, dry run, fetch).
"""

from __future__ import annotations

from bench.fetch.catalog import CATALOG, TARGETS, Item, Source, weights_item
from bench.fetch.download import Expected
from bench.fetch.errors import (
    ChecksumError,
    DiskFullError,
    FetchError,
    HTTPStatusError,
    NetworkError,
    NotTheFileError,
    UnsafeArchiveError,
)
from bench.fetch.extract import extract_zip
from bench.fetch.tasks import (
    DEFAULT_DATA_DIR,
    FetchConfig,
    FetchReport,
    Task,
    describe,
    fetch,
    fetch_for_configs,
    plan,
    plan_for_configs,
)

__all__ = [
    "CATALOG",
    "DEFAULT_DATA_DIR",
    "TARGETS",
    "ChecksumError",
    "DiskFullError",
    "Expected",
    "FetchConfig",
    "FetchError",
    "FetchReport",
    "HTTPStatusError",
    "Item",
    "NetworkError",
    "NotTheFileError",
    "Source",
    "Task",
    "UnsafeArchiveError",
    "describe",
    "extract_zip",
    "fetch",
    "fetch_for_configs",
    "plan",
    "plan_for_configs",
    "weights_item",
]
