"""HTTP downloads that resume, verify, and appear at their destination whole or not at all.

``download(urls, dest, expected)``:

- writes to ``<dest>.part`` beside ``dest`` (same filesystem), held under an exclusive lock, with a sidecar
  ``<dest>.part.json`` naming the URL it comes from and the server's validators (ETag / Last-Modified, total
  size). A later call resumes it from its own URL with ``Range: bytes=N-`` (and ``If-Range``); a server that
  ignores the range (200) or says the file changed restarts it from zero; ``416`` at the end means complete;
- retries a dropped connection from where it stopped (``retries`` attempts in a row without progress, with
  doubling pauses); a first connection that fails (no network, name lookup, 404, a web page instead of the file)
  moves on to the next URL (mirror), unless a partial download from another URL would be thrown away;
- follows Google Drive's confirmation page for large files (a form or a ``confirm=`` link or a
  ``download_warning`` cookie, whichever the page has);
- checks free space before writing (known size) and turns ENOSPC while writing into one line;
- verifies the size and the sha256 (full or a torch-hub-style prefix) where published, then renames the part
  into place (fsynced); a mismatch deletes the part and installs nothing.
"""

from __future__ import annotations

import contextlib
import errno
import html
import http.client
import json
import os
import re
import shutil
import socket
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from html.parser import HTMLParser
from http.cookiejar import CookieJar
from pathlib import Path
from typing import IO, Any, TextIO
from urllib.parse import urlencode, urljoin, urlsplit

from bench import __version__
from bench.fetch.errors import (
    ChecksumError,
    DiskFullError,
    FetchError,
    HTTPStatusError,
    NetworkError,
    NotTheFileError,
)
from bench.fetch.progress import TransferProgress, human_bytes
from bench.io import sha256_file

__all__ = [
    "BACKOFF_S",
    "RETRIES",
    "Expected",
    "check_free_space",
    "confirm_url",
    "download",
    "part_path",
    "partial_bytes",
]

CHUNK_BYTES = 256 * 1024  # read size; also the progress granularity
TIMEOUT_S = 60.0  # socket timeout for connecting and for each read (s)
RETRIES = 5  # attempts in a row without progress before giving up (the partial file is kept)
BACKOFF_S = 2.0  # first pause before a retry (s), doubled each time up to MAX_BACKOFF_S
MAX_BACKOFF_S = 30.0
HTML_PEEK_BYTES = 1 << 20  # how much of a web page to read when looking for a confirmation form
MAX_RESTARTS = 3  # starts from byte 0 forced by the server (file changed, odd range answers) before giving up
VERIFY_PROGRESS_MIN_BYTES = 256 * 1024 * 1024  # show hashing progress for files at least this large
USER_AGENT = f"drnet-bench/{__version__} (bench fetch)"


@dataclass(frozen=True)
class Expected:
    """What a download should be, where published."""

    size: int | None = None  # exact bytes: verified
    sha256: str | None = None  # full hex digest or a prefix of it: verified
    approx_size: int | None = None  # only for the free-space check before the server states a size


def part_path(dest: Path) -> Path:
    return dest.with_name(dest.name + ".part")


def partial_bytes(dest: Path) -> int:
    """Bytes of an interrupted download of ``dest`` waiting to be resumed (0 if none)."""
    part = part_path(Path(dest))
    return part.stat().st_size if part.is_file() else 0


def download(
    urls: Sequence[str],
    dest: str | Path,
    expected: Expected = Expected(),
    *,
    label: str | None = None,
    stream: TextIO | None = None,
    tty: bool | None = None,
    retries: int = RETRIES,
    backoff_s: float = BACKOFF_S,
    timeout_s: float = TIMEOUT_S,
) -> Path:
    """Download the first of ``urls`` that works to ``dest`` (see the module doc); returns ``dest``."""
    dest = Path(dest)
    if not urls:
        raise ValueError("download needs at least one URL")
    dest.parent.mkdir(parents=True, exist_ok=True)
    transfer = _Transfer(dest, expected, label or dest.name, stream or sys.stderr, tty, retries, backoff_s, timeout_s)
    with transfer.locked_part() as f:
        try:
            transfer.fetch(list(urls), f)
            transfer.verify(f)
        except BaseException:
            if transfer.part.exists() and _size(f) == 0:  # nothing worth resuming: leave no trace
                transfer.discard()
            raise
        transfer.install(f)
    return dest


def check_free_space(where: Path, need: int, what: str) -> None:
    """Raise DiskFullError if the filesystem of ``where`` (or its nearest existing parent) has < ``need`` bytes."""
    probe = Path(where)
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    free = shutil.disk_usage(probe).free
    if need > free:
        raise DiskFullError(
            f"not enough disk space for {what}: it needs {human_bytes(need)} ({need:,} bytes), "
            f"{human_bytes(free)} are free on the filesystem of {probe}; free some space or choose another place",
            where,
            need,
            free,
        )


def confirm_url(page_url: str, page: bytes, cookies: CookieJar | None = None) -> str | None:
    """The download URL behind a Google Drive "can't scan this file for viruses" page, or None.

    Drive has used three forms over the years: an HTML form (``action=.../download`` with hidden ``id``,
    ``export``, ``confirm``, ``uuid`` fields), a link carrying ``confirm=<token>``, and a ``download_warning``
    cookie whose value is the token to add to the first URL."""
    text = page.decode("utf-8", "replace")
    parser = _PageParser()
    with contextlib.suppress(Exception):
        parser.feed(text)
    for action, fields in parser.forms:
        if "id" in fields and ("confirm" in fields or "uuid" in fields or "export" in fields):
            target = urljoin(page_url, action or page_url)
            return target + ("&" if "?" in target else "?") + urlencode(fields)
    link = re.search(r"""href=["']([^"']*[?&;]confirm=[0-9A-Za-z_-]+[^"']*)["']""", text)
    if link:
        return urljoin(page_url, html.unescape(link.group(1)))
    for cookie in cookies or ():
        if cookie.name.startswith("download_warning"):
            return page_url + ("&" if "?" in page_url else "?") + urlencode({"confirm": cookie.value})
    return None


# --- one download ------------------------------------------------------------------------------------------------


class _Unusable(Exception):
    """This URL failed before a byte was written: the next mirror may be tried."""

    def __init__(self, error: FetchError):
        self.error = error


class _Again(Exception):
    """The partial file was reset to byte 0 (the server's file changed): request again."""


class _Transfer:
    def __init__(
        self,
        dest: Path,
        expected: Expected,
        label: str,
        stream: TextIO,
        tty: bool | None,
        retries: int,
        backoff_s: float,
        timeout_s: float,
    ):
        self.dest, self.expected, self.label = dest, expected, label
        self.part = part_path(dest)
        self.sidecar = dest.with_name(dest.name + ".part.json")
        self.stream, self.tty = stream, tty
        self.retries, self.backoff_s, self.timeout_s = retries, backoff_s, timeout_s
        self.cookies = CookieJar()
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.cookies))
        self.state: dict[str, Any] = {}

    def say(self, msg: str) -> None:
        self.stream.write(f"{self.label}: {msg}\n")
        self.stream.flush()

    @contextlib.contextmanager
    def locked_part(self) -> Iterator[IO[bytes]]:
        with open(self.part, "ab") as f:
            _lock(f, f"another process is downloading {self.dest} (it holds {self.part}); wait for it to finish")
            yield f

    # -- choosing and reading a source --

    def fetch(self, urls: list[str], f: IO[bytes]) -> None:
        self.state = _read_json(self.sidecar) if _size(f) else {}
        own = self.state.get("url")
        if _size(f) and own not in urls:
            self.say(f"discarding {human_bytes(_size(f))} downloaded from {own or 'an unknown source'}")
            self._restart(f)
        urls = sorted(urls, key=lambda u: u != own)  # a partial download continues from its own source first
        errors: list[FetchError] = []
        for i, url in enumerate(urls):
            if _size(f) and self.state.get("url") != url:
                raise FetchError(
                    f"{errors[-1]}; the partial download of {self.dest.name} ({human_bytes(_size(f))}, in "
                    f"{self.part}) came from there and is kept: run the same command later to resume it, or delete "
                    f"{self.part} to start over from another source"
                )
            try:
                self._fetch_from(url, f)
                return
            except _Unusable as e:
                errors.append(e.error)
                if i + 1 < len(urls):
                    self.say(f"{e.error}; trying the next source")
        if len(errors) == 1:
            raise errors[0]
        kinds = {type(e) for e in errors}
        cls = kinds.pop() if len(kinds) == 1 else FetchError
        raise cls(f"no source of {self.dest.name} could be used: " + "; ".join(str(e) for e in errors))

    def _fetch_from(self, url: str, f: IO[bytes]) -> None:
        """Download ``url`` into ``f`` from its current size on: resume after a cut connection (HTTP Range) with
        backoff, start over when the server's file changed, give up after ``retries`` failures in a row. One
        retry loop whose states (complete, 416, cut, restart, network error) read better side by side than
        split across helpers."""
        if self.state.get("url") != url:
            self.state = {"url": url}
        if _size(f):
            self.say(f"resuming at {human_bytes(_size(f))} ({url})")
        progress: TransferProgress | None = None
        failures, delivered = 0, False  # failures in a row without progress; whether this URL ever answered
        restarts = 0
        while True:
            offset = _size(f)
            total = self.state.get("total")
            if offset and offset == (self.expected.size or total):
                break  # complete (an earlier session stopped before verifying)
            try:
                response = self._open(url, offset)
                status = response.status
                if status == 416:  # nothing left to send: complete if the server's size is ours
                    size = _content_range_total(response.headers.get("Content-Range", ""))
                    response.close()
                    if size is not None and size == offset:
                        self.state["total"] = size
                        break
                    self.say("the server's file no longer matches the partial download: starting over")
                    self._restart(f)
                    raise _Again
                total = self._accept(response, f, offset)
                offset = _size(f)
                delivered = True
                if progress is None:
                    progress = TransferProgress(self.label, total, offset, stream=self.stream, tty=self.tty)
                else:
                    progress.reset(offset, total)
                before = offset
                cut = self._stream(response, f, progress)
                if total is not None and _size(f) > total:
                    self.say(f"the server sent more than the {total:,} bytes it announced: starting over")
                    self._restart(f)
                    raise _Again
                if not cut and (total is None or _size(f) == total):
                    break
                if _size(f) > before:
                    failures = 0
                failures += 1
                reason = cut or f"connection lost at {human_bytes(_size(f))} (closed by the server before the end)"
            except _Again:
                restarts += 1
                if restarts > MAX_RESTARTS:
                    raise FetchError(
                        f"{url}: the download of {self.dest.name} had to start over {restarts} times (the file keeps "
                        f"changing on the server, or it answers range requests wrongly); try again later"
                    ) from None
                continue
            except NetworkError as e:
                if not delivered:
                    raise _Unusable(e) from None
                failures += 1
                reason = str(e)
            except (HTTPStatusError, NotTheFileError) as e:
                if not delivered:
                    raise _Unusable(e) from None
                raise
            if failures > self.retries:
                raise NetworkError(
                    f"connection to {_host(url)} lost {failures} time(s) in a row while downloading {self.dest.name} "
                    f"({human_bytes(_size(f))} of {human_bytes(self.state.get('total'))} kept in {self.part}): "
                    f"run the same command again to resume ({reason})"
                )
            pause = min(self.backoff_s * 2 ** (failures - 1), MAX_BACKOFF_S)
            self.say(f"{reason}; resuming from {human_bytes(_size(f))} (attempt {failures}/{self.retries})")
            time.sleep(pause)
        if progress is not None:
            progress.close()

    def _accept(self, response: Any, f: IO[bytes], offset: int) -> int | None:
        """Check a 200/206 answer against the partial file; returns the total size (None if unknown)."""
        headers = response.headers
        if response.status == 206:
            start, total = _content_range(headers.get("Content-Range", ""))
            if start != offset:
                response.close()
                self.say(f"the server answered the range request from byte {start}, not {offset}: starting over")
                self._restart(f)
                raise _Again
        else:
            if offset:
                self.say("the server ignored the range request: starting over from byte 0")
                self._restart(f)
            length = headers.get("Content-Length")
            total = int(length) if length and length.isdigit() else None
        if total is not None and self.state.get("total") not in (None, total):
            self.say(f"the file changed on the server ({self.state['total']:,} -> {total:,} bytes): starting over")
            response.close()
            self._restart(f)
            raise _Again
        if total is not None and self.expected.size is not None and total != self.expected.size:
            response.close()
            raise NotTheFileError(
                f"{response.url} offers {total:,} bytes but {self.dest.name} has {self.expected.size:,} (published)"
            )
        need = (total if total is not None else (self.expected.size or self.expected.approx_size or 0)) - _size(f)
        check_free_space(self.part.parent, need, f"{self.dest}")
        self.state.update(
            total=total, etag=headers.get("ETag"), last_modified=headers.get("Last-Modified"), url=self.state["url"]
        )
        _write_json(self.sidecar, self.state)
        return total

    def _stream(self, response: Any, f: IO[bytes], progress: TransferProgress) -> str | None:
        """Copy the body to the part file; the reason if the connection broke, else None."""
        try:
            with response:
                while True:
                    chunk = response.read(CHUNK_BYTES)
                    if not chunk:
                        return None
                    _write(f, chunk, self.part, self.state.get("total"))
                    progress.advance(len(chunk))
        except DiskFullError:  # an OSError too (bench.io's), but no connection problem: no retry
            raise
        except (http.client.HTTPException, OSError) as e:
            return f"connection lost at {human_bytes(_size(f))} ({type(e).__name__}: {e})"
        finally:
            f.flush()

    def _open(self, url: str, offset: int) -> Any:
        headers = {"User-Agent": USER_AGENT, "Accept-Encoding": "identity"}
        if offset:
            headers["Range"] = f"bytes={offset}-"
            validator = self.state.get("etag") or self.state.get("last_modified")
            if validator and not str(validator).startswith("W/"):
                headers["If-Range"] = validator
        response = self._request(url, headers)
        if response.status in (200, 206) and response.headers.get_content_type() == "text/html":
            page = response.read(HTML_PEEK_BYTES)
            response.close()
            target = confirm_url(response.url, page, self.cookies)
            if target is not None:
                response = self._request(target, headers)
                if response.status in (200, 206) and response.headers.get_content_type() == "text/html":
                    page = response.read(HTML_PEEK_BYTES)  # e.g. "quota exceeded" behind the confirmation
                    target = None
            if target is None:
                response.close()
                raise NotTheFileError(self._web_page_message(url, page))
        return response

    def _request(self, url: str, headers: dict[str, str]) -> Any:
        try:
            return self.opener.open(urllib.request.Request(url, headers=headers), timeout=self.timeout_s)
        except urllib.error.HTTPError as e:
            if e.code == 416:
                return e
            where = f" (redirected to {e.url})" if e.url and e.url != url else ""
            raise HTTPStatusError(url, e.code, f"{e.reason}{where}") from None
        except urllib.error.URLError as e:
            raise NetworkError(_unreachable(url, e.reason)) from None
        except (http.client.HTTPException, OSError) as e:
            raise NetworkError(_unreachable(url, e)) from None

    def _web_page_message(self, url: str, page: bytes) -> str:
        parser = _PageParser()
        with contextlib.suppress(Exception):
            parser.feed(page.decode("utf-8", "replace"))
        title = f" ('{parser.title.strip()[:80]}')" if parser.title.strip() else ""
        msg = f"{url} answered with a web page{title} instead of {self.dest.name}"
        if "google" in _host(url):
            msg += (
                " (Google Drive: the file's download quota may be used up, or it needs a signed-in browser; try again "
                f"later, or download it in a browser and put it at {self.dest})"
            )
        return msg

    def _restart(self, f: IO[bytes]) -> None:
        f.truncate(0)
        f.seek(0)
        url = self.state.get("url")
        self.state = {"url": url} if url else {}
        self.sidecar.unlink(missing_ok=True)

    # -- after the transfer --

    def verify(self, f: IO[bytes]) -> None:
        f.flush()
        os.fsync(f.fileno())
        size = _size(f)
        expected = self.expected
        if expected.size is not None and size != expected.size:
            self.discard()
            raise ChecksumError(
                f"{self.dest.name}: size mismatch: expected {expected.size:,} bytes, got {size:,}; the download was "
                f"deleted and nothing was written to {self.dest}: run the same command again to download it afresh"
            )
        if expected.sha256:
            want = expected.sha256.lower()
            progress = None
            if size >= VERIFY_PROGRESS_MIN_BYTES:
                progress = TransferProgress(f"{self.label} (sha256)", size, stream=self.stream, tty=self.tty)
            got = sha256_file(self.part, progress.advance if progress is not None else None)
            if progress is not None:
                progress.close()
            if not got.startswith(want):
                self.discard()
                kind = "sha256 prefix" if len(want) < 64 else "sha256"
                raise ChecksumError(
                    f"{self.dest.name}: checksum mismatch: expected {kind} {want}, got {got}; the download was "
                    f"deleted and nothing was written to {self.dest}: run the same command again to download it afresh"
                )

    def install(self, f: IO[bytes]) -> None:
        os.replace(self.part, self.dest)
        self.sidecar.unlink(missing_ok=True)
        _fsync_dir(self.dest.parent)

    def discard(self) -> None:
        self.part.unlink(missing_ok=True)
        self.sidecar.unlink(missing_ok=True)


# --- helpers ------------------------------------------------------------------------------------------------------


class _PageParser(HTMLParser):
    """Forms (action, hidden and named fields) and the title of a web page."""

    def __init__(self) -> None:
        super().__init__()
        self.forms: list[tuple[str, dict[str, str]]] = []
        self.title = ""
        self._in_title = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "form":
            self.forms.append((a.get("action", ""), {}))
        elif tag == "input" and self.forms and a.get("name") and a.get("type", "text") in ("hidden", "text"):
            self.forms[-1][1][a["name"]] = a.get("value", "")
        elif tag == "title":
            self._in_title = True

    def handle_endtag(self, tag: str) -> None:
        if tag == "title":
            self._in_title = False

    def handle_data(self, data: str) -> None:
        if self._in_title:
            self.title += data


def _size(f: IO[bytes]) -> int:
    return os.fstat(f.fileno()).st_size


def _write(f: IO[bytes], chunk: bytes, part: Path, total: int | None) -> None:
    try:
        f.write(chunk)
    except OSError as e:
        if e.errno in (errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)):
            free = shutil.disk_usage(part.parent).free
            need = f" ({human_bytes(total - _size(f))} still to write)" if total else ""
            raise DiskFullError(
                f"disk full while writing {part}{need}, {human_bytes(free)} free on its filesystem: free some space "
                f"and run the same command again to resume (the {human_bytes(_size(f))} written so far are kept)",
                part,
                total - _size(f) if total else len(chunk),
                free,
            ) from None
        raise FetchError(f"cannot write {part}: {e}") from None


def _content_range(value: str) -> tuple[int | None, int | None]:
    """'bytes 100-199/1000' -> (100, 1000); '*' total -> None."""
    m = re.match(r"\s*bytes\s+(\d+)-(\d+)/(\d+|\*)", value)
    if not m:
        return None, None
    return int(m.group(1)), (int(m.group(3)) if m.group(3) != "*" else None)


def _content_range_total(value: str) -> int | None:
    m = re.match(r"\s*bytes\s+\*/(\d+)", value)
    return int(m.group(1)) if m else None


def _host(url: str) -> str:
    return urlsplit(url).netloc or url


def _unreachable(url: str, reason: object) -> str:
    if isinstance(reason, socket.gaierror):
        why = f"name lookup failed ({reason.strerror or reason})"
    elif isinstance(reason, ConnectionRefusedError):
        why = "connection refused"
    elif isinstance(reason, TimeoutError | socket.timeout):
        why = "timed out"
    else:
        why = str(reason)
    return f"cannot reach {_host(url)}: {why} (is this machine online? a proxy is taken from HTTPS_PROXY / HTTP_PROXY)"


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _write_json(path: Path, data: dict[str, Any]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n")
    os.replace(tmp, path)


def _lock(f: IO[bytes], busy: str) -> None:
    try:
        import fcntl
    except ImportError:  # not POSIX: no lock
        return
    try:
        fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        raise FetchError(busy) from None


def _fsync_dir(directory: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
