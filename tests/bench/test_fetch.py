"""bench fetch against an HTTP server on 127.0.0.1 that each test starts: resume after a cut connection, hash
and size mismatches, 404, no network, full disk, Google Drive's confirmation page, unsafe zips, and the
layouts the harness reads afterwards. No test reaches beyond the loopback address (``_loopback_only``)."""

from __future__ import annotations

import dataclasses
import errno
import hashlib
import io
import json
import os
import re
import socket
import stat
import threading
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from click.testing import CliRunner

from bench import io as bench_io
from bench.cli import cli
from bench.fetch import catalog, download, tasks
from bench.fetch.catalog import CATALOG, Source
from bench.fetch.download import Expected, confirm_url
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
from bench.fetch.progress import TransferProgress

PAYLOAD = bytes(range(256)) * 1200  # 307,200 bytes: several reads, well under a second
CUT_AT = 100_000


# --- the loopback server -------------------------------------------------------------------------------------------


class FileServer:
    """Serves ``files`` (path -> bytes) with Range support, and faults on request: ``cut_once[path] = K`` closes
    the connection after K body bytes of the next answer; ``ignore_range`` answers 200 with the whole file;
    ``pages[path]`` is a text/html answer; ``/uc?id=X`` is a Google-Drive-like confirmation page whose form leads
    to ``/download?id=X&confirm=t&uuid=...``, which serves ``files['/drive/X']``."""

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.cut_once: dict[str, int] = {}
        self.ignore_range: set[str] = set()
        self.pages: dict[str, bytes] = {}
        self.requests: list[tuple[str, str | None]] = []
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:  # quiet
                pass

            def do_GET(self) -> None:
                owner.requests.append((self.path, self.headers.get("Range")))
                url = urlsplit(self.path)
                query = {k: v[0] for k, v in parse_qs(url.query).items()}
                if url.path == "/uc":
                    form = (
                        "<html><head><title>Google Drive - Virus scan warning</title></head><body>"
                        '<form id="download-form" action="/download" method="get">'
                        f'<input type="hidden" name="id" value="{query["id"]}">'
                        '<input type="hidden" name="export" value="download">'
                        '<input type="hidden" name="confirm" value="t">'
                        '<input type="hidden" name="uuid" value="1234-abcd"></form></body></html>'
                    )
                    return self._page(form.encode())
                if url.path == "/download":
                    if query.get("confirm") != "t" or "uuid" not in query:
                        return self.send_error(403)
                    return self._file(f"/drive/{query['id']}")
                if url.path in owner.pages:
                    return self._page(owner.pages[url.path])
                return self._file(url.path)

            def _page(self, body: bytes) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def _file(self, path: str) -> None:
                if path not in owner.files:
                    return self.send_error(404)
                data = owner.files[path]
                m = re.match(r"bytes=(\d+)-$", self.headers.get("Range") or "")
                start = int(m.group(1)) if m and path not in owner.ignore_range else 0
                if start >= len(data) and m and path not in owner.ignore_range:
                    self.send_response(416)
                    self.send_header("Content-Range", f"bytes */{len(data)}")
                    self.end_headers()
                    return
                self.send_response(206 if start else 200)
                self.send_header("Content-Type", "application/octet-stream")
                self.send_header("Content-Length", str(len(data) - start))
                if start:
                    self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
                self.end_headers()
                body = data[start:]
                cut = owner.cut_once.pop(path, None)
                if cut is not None:
                    self.wfile.write(body[:cut])
                    self.wfile.flush()
                    self.close_connection = True
                    self.connection.shutdown(socket.SHUT_RDWR)
                    return
                self.wfile.write(body)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}{path}"

    def ranges(self, path: str) -> list[str | None]:
        return [r for p, r in self.requests if urlsplit(p).path == path]


@pytest.fixture
def server():
    s = FileServer()
    s.thread.start()
    yield s
    s.httpd.shutdown()
    s.httpd.server_close()


@pytest.fixture(autouse=True)
def _loopback_only(monkeypatch):
    """Any name lookup other than the loopback address fails, as on a machine without network."""
    real = socket.getaddrinfo

    def getaddrinfo(host, *args, **kwargs):
        if host not in ("127.0.0.1", "localhost"):
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known (tests are offline)")
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)


def fetch_file(urls, dest, expected=None, **kw):
    log = io.StringIO()
    kw = {"stream": log, "tty": False, "retries": 2, "backoff_s": 0.0, **kw}
    path = download.download(urls if isinstance(urls, list) else [urls], dest, expected or Expected(), **kw)
    return path, log.getvalue()


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# --- download: resume, verification, errors --------------------------------------------------------------------------


def test_resumes_with_range_after_a_cut_connection(server, tmp_path):
    server.files["/f.bin"] = PAYLOAD
    server.cut_once["/f.bin"] = CUT_AT
    dest = tmp_path / "f.bin"
    _, log = fetch_file(server.url("/f.bin"), dest, Expected(size=len(PAYLOAD), sha256=sha(PAYLOAD)))
    assert dest.read_bytes() == PAYLOAD
    assert server.ranges("/f.bin") == [None, f"bytes={CUT_AT}-"]
    assert "connection lost" in log and "resuming from" in log
    assert not (tmp_path / "f.bin.part").exists() and not (tmp_path / "f.bin.part.json").exists()


def test_a_later_call_resumes_the_partial_file_and_nothing_sits_at_the_destination_meanwhile(server, tmp_path):
    server.files["/f.bin"] = PAYLOAD
    server.cut_once["/f.bin"] = CUT_AT
    dest = tmp_path / "f.bin"
    with pytest.raises(NetworkError, match=r"lost 1 time\(s\) in a row .*kept in .*f\.bin\.part.*run the same command"):
        fetch_file(server.url("/f.bin"), dest, Expected(size=len(PAYLOAD)), retries=0)
    assert not dest.exists() and (tmp_path / "f.bin.part").stat().st_size == CUT_AT
    task = tasks.Task(CATALOG["nyu-labeled"], download=dest, target=dest)
    assert tasks.status(task).state == "partial"

    _, log = fetch_file(server.url("/f.bin"), dest, Expected(size=len(PAYLOAD), sha256=sha(PAYLOAD)))
    assert dest.read_bytes() == PAYLOAD and server.ranges("/f.bin")[-1] == f"bytes={CUT_AT}-"
    assert f"resuming at {CUT_AT / 1e3:.1f} kB" in log


def test_a_server_that_ignores_range_starts_over(server, tmp_path):
    server.files["/f.bin"] = PAYLOAD
    server.cut_once["/f.bin"] = CUT_AT
    server.ignore_range.add("/f.bin")
    dest = tmp_path / "f.bin"
    _, log = fetch_file(server.url("/f.bin"), dest, Expected(sha256=sha(PAYLOAD)))
    assert dest.read_bytes() == PAYLOAD and "ignored the range request: starting over" in log


def test_a_complete_part_is_installed_when_the_server_answers_416(server, tmp_path):
    server.files["/f.bin"] = PAYLOAD
    dest = tmp_path / "f.bin"
    (tmp_path / "f.bin.part").write_bytes(PAYLOAD)  # an earlier session stopped between the last byte and the rename
    (tmp_path / "f.bin.part.json").write_text(json.dumps({"url": server.url("/f.bin")}))
    fetch_file(server.url("/f.bin"), dest, Expected(sha256=sha(PAYLOAD)))
    assert dest.read_bytes() == PAYLOAD and server.ranges("/f.bin") == [f"bytes={len(PAYLOAD)}-"]


def test_hash_mismatch_installs_nothing_and_names_the_file(server, tmp_path):
    server.files["/resnet50-0676ba61.pth"] = PAYLOAD  # not the bytes whose sha256 starts with 0676ba61
    dest = tmp_path / "resnet50-0676ba61.pth"
    with pytest.raises(ChecksumError) as err:
        fetch_file(server.url("/resnet50-0676ba61.pth"), dest, Expected(sha256="0676ba61"))
    msg = str(err.value)
    assert f"resnet50-0676ba61.pth: checksum mismatch: expected sha256 prefix 0676ba61, got {sha(PAYLOAD)}" in msg
    assert "nothing was written" in msg
    assert list(tmp_path.iterdir()) == []

    server.files["/full.bin"] = PAYLOAD[:-1] + b"x"  # wrong bytes against a full sha256
    with pytest.raises(ChecksumError, match=f"expected sha256 {sha(PAYLOAD)}, got "):
        fetch_file(server.url("/full.bin"), tmp_path / "full.bin", Expected(sha256=sha(PAYLOAD)))
    assert list(tmp_path.iterdir()) == []


def test_a_published_size_that_the_server_contradicts_is_refused_before_downloading(server, tmp_path):
    server.files["/f.bin"] = PAYLOAD
    with pytest.raises(NotTheFileError, match=f"offers {len(PAYLOAD):,} bytes but f.bin has 123 \\(published\\)"):
        fetch_file(server.url("/f.bin"), tmp_path / "f.bin", Expected(size=123))
    assert list(tmp_path.iterdir()) == []


def test_404_names_url_and_status(server, tmp_path):
    url = server.url("/missing.mat")
    with pytest.raises(HTTPStatusError) as err:
        fetch_file(url, tmp_path / "x.mat")
    assert str(err.value).startswith(f"{url}: HTTP 404") and err.value.status == 404
    assert list(tmp_path.iterdir()) == []


def test_no_network_is_one_line_naming_the_host(tmp_path):
    with pytest.raises(NetworkError) as err:  # name lookup fails (_loopback_only), as without a network
        fetch_file("http://horatio.cs.nyu.edu/mit/x.mat", tmp_path / "x.mat")
    assert str(err.value).startswith("cannot reach horatio.cs.nyu.edu: name lookup failed")
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(NetworkError, match=f"cannot reach 127.0.0.1:{port}: connection refused"):
        fetch_file(f"http://127.0.0.1:{port}/x", tmp_path / "x.mat")
    assert list(tmp_path.iterdir()) == []


def test_falls_back_to_the_next_mirror(server, tmp_path):
    server.files["/mirror.zip"] = PAYLOAD
    dest = tmp_path / "f.zip"
    _, log = fetch_file([server.url("/gone.zip"), server.url("/mirror.zip")], dest)
    assert dest.read_bytes() == PAYLOAD and "HTTP 404" in log and "trying the next source" in log


def test_google_drive_confirmation_page_is_followed_and_resumed(server, tmp_path):
    server.files["/drive/ABC"] = PAYLOAD
    server.cut_once["/drive/ABC"] = CUT_AT
    dest = tmp_path / "nyu_data.zip"
    fetch_file(server.url("/uc?export=download&id=ABC"), dest, Expected(sha256=sha(PAYLOAD)))
    assert dest.read_bytes() == PAYLOAD
    downloads = [r for p, r in server.requests if p.startswith("/download")]
    assert downloads == [None, f"bytes={CUT_AT}-"]


def test_confirm_token_forms_of_older_drive_pages():
    page = b'<a id="uc-download-link" href="/uc?export=download&amp;confirm=Xy_1&amp;id=ABC">Download anyway</a>'
    assert confirm_url("https://drive.google.com/uc?id=ABC", page) == (
        "https://drive.google.com/uc?export=download&confirm=Xy_1&id=ABC"
    )
    assert confirm_url("https://drive.google.com/uc?id=ABC", b"<html>nothing here</html>") is None


def test_a_web_page_instead_of_the_file_is_an_error(server, tmp_path):
    server.pages["/quota"] = b"<html><title>Google Drive - Quota exceeded</title><p>Too many users</p></html>"
    with pytest.raises(NotTheFileError, match=r"answered with a web page \('Google Drive - Quota exceeded'\)"):
        fetch_file(server.url("/quota"), tmp_path / "x.zip")


def test_full_disk_before_starting_names_file_needed_and_free(server, tmp_path, monkeypatch):
    server.files["/big.bin"] = PAYLOAD
    monkeypatch.setattr(download.shutil, "disk_usage", lambda path: _Usage(10**12, 10**12 - 1000, 1000))
    with pytest.raises(DiskFullError) as err:
        fetch_file(server.url("/big.bin"), tmp_path / "big.bin")
    msg = str(err.value)
    assert f"not enough disk space for {tmp_path / 'big.bin'}: it needs 307.2 kB ({len(PAYLOAD):,} bytes)" in msg
    assert "1.0 kB are free" in msg
    assert list(tmp_path.iterdir()) == []
    # one type for a full disk, whoever writes: bench.io's, with the numbers, and a FetchError for bench fetch
    assert isinstance(err.value, bench_io.DiskFullError) and isinstance(err.value, FetchError)
    assert (err.value.needed_bytes, err.value.free_bytes, err.value.errno) == (len(PAYLOAD), 1000, errno.ENOSPC)


def test_full_disk_while_writing_keeps_the_part_and_says_so(server, tmp_path, monkeypatch):
    server.files["/big.bin"] = PAYLOAD
    real_write = download._write
    monkeypatch.setattr(download, "_write", lambda f, chunk, part, total: real_write(_FillsUp(f), chunk, part, total))
    with pytest.raises(DiskFullError) as err:
        fetch_file(server.url("/big.bin"), tmp_path / "big.bin")
    assert re.match(r"disk full while writing .*big\.bin\.part \(.* still to write\), .* free on its filesystem: "
                    r"free some space and run the same command again to resume", str(err.value))  # fmt: skip
    assert not (tmp_path / "big.bin").exists() and (tmp_path / "big.bin.part").stat().st_size > 0


class _Usage(tuple):
    def __new__(cls, total: int, used: int, free: int):
        self = super().__new__(cls, (total, used, free))
        self.total, self.used, self.free = total, used, free
        return self


class _FillsUp:
    """A file whose disk is full once it holds CUT_AT bytes."""

    def __init__(self, f):
        self._f = f

    def write(self, chunk: bytes) -> int:
        if os.fstat(self._f.fileno()).st_size >= CUT_AT:
            raise OSError(errno.ENOSPC, "No space left on device")
        return self._f.write(chunk)

    def __getattr__(self, name):
        return getattr(self._f, name)


def test_a_second_process_cannot_write_the_same_part(server, tmp_path):
    fcntl = pytest.importorskip("fcntl")
    server.files["/f.bin"] = PAYLOAD
    dest = tmp_path / "f.bin"
    with open(tmp_path / "f.bin.part", "ab") as held:
        fcntl.flock(held.fileno(), fcntl.LOCK_EX)
        with pytest.raises(FetchError, match="another process is downloading"):
            fetch_file(server.url("/f.bin"), dest)
    assert server.requests == []


# --- zips ---------------------------------------------------------------------------------------------------------


def _zip(path: Path, entries: dict[str, bytes], links: dict[str, str] | None = None) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in entries.items():
            zf.writestr(name, data)
        for name, target in (links or {}).items():
            info = zipfile.ZipInfo(name)
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
            zf.writestr(info, target)
    return path


def test_zip_with_dotdot_absolute_or_link_entries_is_refused_before_extracting_anything(tmp_path):
    archive = _zip(
        tmp_path / "evil.zip",
        {"data/ok.txt": b"fine", "data/../../evil.txt": b"x", "/etc/evil": b"x", "..\\win.txt": b"x"},
        links={"data/link": "/etc/passwd"},
    )
    into = tmp_path / "out" / "inner"
    with pytest.raises(UnsafeArchiveError) as err:
        extract_zip(archive, into, stream=io.StringIO(), tty=False)
    msg = str(err.value)
    for part in ("4 unsafe entries", "'data/../../evil.txt' ('..' component)", "'/etc/evil' (absolute path)",
                 "('..' component)", "'data/link' (symbolic link)", "nothing was extracted"):  # fmt: skip
        assert part in msg
    assert not into.exists() and not (tmp_path / "evil.txt").exists() and archive.exists()


def test_safe_zip_extracts_and_a_damaged_one_names_the_entry(tmp_path):
    archive = _zip(tmp_path / "ok.zip", {"a/b.txt": b"hello", "c.txt": b"world"})
    assert extract_zip(archive, tmp_path / "out", stream=io.StringIO(), tty=False) == 2
    assert (tmp_path / "out" / "a" / "b.txt").read_bytes() == b"hello"

    raw = bytearray(archive.read_bytes())
    raw[raw.index(b"hello")] ^= 0xFF  # flip a byte of the stored data: the CRC check fails
    (tmp_path / "bad.zip").write_bytes(bytes(raw))
    with pytest.raises(FetchError, match="bad.zip is damaged: entry 'a/b.txt'"):
        extract_zip(tmp_path / "bad.zip", tmp_path / "out2", stream=io.StringIO(), tty=False)
    (tmp_path / "x.zip").write_text("not a zip")
    with pytest.raises(FetchError, match="x.zip is not a readable zip archive"):
        extract_zip(tmp_path / "x.zip", tmp_path / "out3")


# --- targets end to end: the layouts the harness reads afterwards ---------------------------------------------------


@pytest.fixture
def rside_zip(tmp_path):
    """A tiny nyu_data.zip: data/nyu2_train.csv, data/nyu2_test.csv and their files (DenseDepth's layout)."""
    from architectures.data.rside_csv import write_rside_fixture

    root = write_rside_fixture(tmp_path / "src", train_rows=2, test_names=(0, 1), height=16, width=16)
    entries = {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}
    return _zip(tmp_path / "nyu_data.zip", entries)


def _serve_item(monkeypatch, server, name: str, path: str, data: bytes) -> None:
    server.files[path] = data
    item = dataclasses.replace(CATALOG[name], sources=(Source(server.url(path), "test server"),))
    monkeypatch.setitem(CATALOG, name, item)


@pytest.mark.parametrize("folder", ["data", "nyu"])
def test_rside_data_unpacks_where_rside_csv_reads_it(server, tmp_path, monkeypatch, rside_zip, folder):
    from architectures.data.rside_csv import RSIDECSV, find_csv

    _serve_item(monkeypatch, server, "rside-data", "/nyu_data.zip", rside_zip.read_bytes())
    data_dir = tmp_path / "work" / folder
    (data_dir).mkdir(parents=True)
    (data_dir / "nyu_depth_v2_labeled.mat").write_bytes(b"other things in the folder stay")
    result = CliRunner().invoke(cli, ["fetch", "rside-data", "--data-dir", str(data_dir)])
    assert result.exit_code == 0, result.output
    assert f"--data rside-csv:{data_dir}" in result.output
    assert "nyu2_test.csv: 2 pairs (NOT the 654 official test frames)" in result.output
    csv_home = data_dir if folder == "data" else data_dir / "data"
    assert (csv_home / "nyu2_train.csv").is_file() and (csv_home / "nyu2_test" / "00000_colors.png").is_file()
    assert len(RSIDECSV(find_csv(data_dir, "train"))) == 2
    assert not (data_dir / "nyu_data.zip").exists() and not list(data_dir.glob(".unpack-*"))

    again = CliRunner().invoke(cli, ["fetch", "rside-data", "--data-dir", str(data_dir)])
    assert again.exit_code == 0 and "rside-data: present" in again.output and len(server.requests) == 1


def test_rside_checkpoints_unpack_and_print_the_import_commands(server, tmp_path, monkeypatch):
    archive = _zip(tmp_path / "m.zip", {f"pretrained_model/model_{k}": b"w" for k in ("resnet", "densenet", "senet")})
    _serve_item(monkeypatch, server, "rside-checkpoints", "/uc-models", archive.read_bytes())
    result = CliRunner().invoke(cli, ["fetch", "rside-checkpoints", "--data-dir", str(tmp_path / "d")])
    assert result.exit_code == 0, result.output
    folder = tmp_path / "d" / "rside_pretrained" / "pretrained_model"
    for name, backbone in (("resnet", "resnet50"), ("densenet", "densenet161"), ("senet", "senet154")):
        assert f"bench import rside-checkpoint {folder / ('model_' + name)} --backbone {backbone}" in result.output


def test_weights_go_to_the_hub_cache_under_the_torch_hub_name(server, tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    name = f"resnet18-{sha(PAYLOAD)[:8]}.pth"
    server.files[f"/{name}"] = PAYLOAD
    monkeypatch.setitem(catalog.WEIGHTS, "resnet18", (server.url(f"/{name}"), "test server", len(PAYLOAD), ""))
    result = CliRunner().invoke(cli, ["fetch", "weights", "--backbone", "resnet18"])
    assert result.exit_code == 0, result.output
    cache = tmp_path / "torch" / "hub" / "checkpoints"
    assert (cache / name).read_bytes() == PAYLOAD and "sha256 verified" in result.output
    assert f'weights = "imagenet" reads resnet18 from {cache}/' in result.output


def test_one_failure_does_not_stop_the_others_and_the_exit_status_says_so(server, tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    name = f"resnet18-{sha(PAYLOAD)[:8]}.pth"
    server.files[f"/{name}"] = PAYLOAD
    monkeypatch.setitem(catalog.WEIGHTS, "resnet18", (server.url(f"/{name}"), "test server", len(PAYLOAD), ""))
    monkeypatch.setitem(catalog.WEIGHTS, "resnet34", (server.url("/resnet34-00000000.pth"), "test", 1, ""))
    result = CliRunner().invoke(cli, ["fetch", "weights", "--backbone", "resnet34,resnet18"])
    assert result.exit_code == 1
    assert "weights:resnet34: FAILED: http://127.0.0.1" in result.output and "HTTP 404" in result.output
    assert "1 of 2 item(s) failed (weights:resnet34)" in result.output
    assert (tmp_path / "torch" / "hub" / "checkpoints" / name).is_file()


def test_an_existing_damaged_labeled_file_is_left_alone(tmp_path):
    (tmp_path / "nyu_depth_v2_labeled.mat").write_bytes(b"truncated")
    result = CliRunner().invoke(cli, ["fetch", "nyu-labeled", "--data-dir", str(tmp_path)])
    assert result.exit_code == 1 and "exists with 9 bytes, not the published 2,972,037,809" in result.output
    assert (tmp_path / "nyu_depth_v2_labeled.mat").read_bytes() == b"truncated"


# --- dry run, planning, catalog ---------------------------------------------------------------------------------------


def test_dry_run_without_target_lists_the_paper_regime(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    result = CliRunner().invoke(cli, ["fetch", "--dry-run"])
    assert result.exit_code == 0, result.output
    out = result.output
    for item in ("rside-data", "weights:resnet50", "weights:resnet152", "weights:densenet161", "weights:senet154",
                 "rside-checkpoints"):  # fmt: skip
        assert f"\n{item}  " in out
    assert "nyu-labeled" not in out.split("afterwards:")[0]  # the paper regime trains on RSIDE's data
    assert "https://s3-eu-west-1.amazonaws.com/densedepth/nyu_data.zip" in out
    assert "https://download.pytorch.org/models/resnet50-0676ba61.pth" in out
    assert f"{tmp_path / 'torch' / 'hub' / 'checkpoints' / 'legacy_senet154-e9eb9fe6.pth'}" in out
    assert "sha256      not published" in out and "size        not published" in out
    assert "--data rside-csv:data" in out and not (tmp_path / "data").exists()


def test_unknown_target_or_backbone_lists_the_valid_ones():
    result = CliRunner().invoke(cli, ["fetch", "--dry-run", "imagenet"])
    assert result.exit_code == 2 and "unknown target(s) 'imagenet'; available: paper, all" in result.output
    result = CliRunner().invoke(cli, ["fetch", "--dry-run", "weights", "--backbone", "vgg16"])
    assert result.exit_code == 2 and "no ImageNet weights known for 'vgg16'" in result.output


def test_plan_for_configs_lists_only_what_the_runs_read_and_is_missing(tmp_path, monkeypatch):
    from bench.config import RunConfig

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    config = RunConfig(name="r", arch="rside", backbone="resnet50", weights="imagenet", data="rside-csv",
                       data_path=str(tmp_path / "d"))  # fmt: skip
    planned = tasks.plan_for_configs([config, config.replace(name="s", seed=1)])
    assert [t.item.name for t in planned] == ["weights:resnet50", "rside-data"]
    assert planned[1].spec == f"rside-csv:{tmp_path / 'd'}"
    cache = tmp_path / "torch" / "hub" / "checkpoints"
    cache.mkdir(parents=True)
    (cache / "resnet50-19c8e357.pth").write_bytes(b"an older accepted name counts")
    assert [t.item.name for t in tasks.plan_for_configs([config])] == ["rside-data"]
    labeled = config.replace(data="nyu-labeled", data_path=str(tmp_path / "x.mat"), weights=None)
    assert [t.target for t in tasks.plan_for_configs([labeled])] == [tmp_path / "x.mat"]


def test_fetch_for_configs_fetches_what_is_missing_once(server, tmp_path, monkeypatch):
    from bench.config import RunConfig

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    name = f"resnet18-{sha(PAYLOAD)[:8]}.pth"
    server.files[f"/{name}"] = PAYLOAD
    monkeypatch.setitem(catalog.WEIGHTS, "resnet18", (server.url(f"/{name}"), "test server", len(PAYLOAD), ""))
    configs = [RunConfig(name=f"r{s}", arch="drnet", backbone="resnet18", weights="imagenet", seed=s) for s in (0, 1)]
    out: list[str] = []
    report = tasks.fetch_for_configs(configs, echo=out.append, stream=io.StringIO(), tty=False, backoff_s=0.0)
    assert [t.item.name for t in report.present] == ["weights:resnet18"] and len(server.requests) == 1
    out.clear()
    tasks.fetch_for_configs(configs, echo=out.append)
    assert out == ["fetch: every input of these runs is present"]


def test_catalog_matches_torchvision_timm_and_the_names_backbones_accept():
    import importlib.util

    import torchvision

    from architectures.backbones import BACKBONES

    timm_models = Path(importlib.util.find_spec("timm").origin).parent / "models"  # read, not imported: faster
    senet_cfgs = (timm_models / "senet.py").read_text()

    assert set(catalog.WEIGHTS) == set(BACKBONES)
    for backbone, (url, *_rest) in catalog.WEIGHTS.items():
        assert url.rsplit("/", 1)[1] == BACKBONES[backbone].weight_files[0]
        if backbone == "senet154":
            assert re.search(rf"'legacy_senet154\.in1k': _cfg\(\s*url='{re.escape(url)}'", senet_cfgs)
        else:
            enum = {"densenet161": "DenseNet161"}.get(backbone, backbone.replace("resnet", "ResNet"))
            assert torchvision.models.get_weight(f"{enum}_Weights.IMAGENET1K_V1").url == url
    assert tasks.paper_backbones() == ("resnet50", "resnet152", "densenet161", "senet154")


# --- messages and progress --------------------------------------------------------------------------------------------


def test_missing_weights_and_data_messages_give_the_fetch_command(tmp_path, monkeypatch):
    from architectures.backbones import missing_weights_message
    from architectures.data.downloads import missing_data_message

    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    msg = missing_weights_message("senet154")
    assert "`bench fetch weights --backbone senet154`" in msg and str(tmp_path / "hub" / "checkpoints") in msg
    msg = missing_data_message("rside-csv", "data", FileNotFoundError("no such file"))
    assert "bench fetch rside-data --data-dir data\n" in msg
    monkeypatch.chdir(tmp_path)
    msg = missing_data_message("nyu-labeled", None, FileNotFoundError("no such file"))
    assert "bench fetch nyu-labeled --data-dir data " in msg


def test_progress_lines_every_tenth_with_rate_and_eta_off_a_terminal():
    now = [0.0]
    out = io.StringIO()
    p = TransferProgress("x", 1000, stream=out, tty=False, clock=lambda: now[0])
    for _ in range(10):
        now[0] += 1.0
        p.advance(100)
    lines = out.getvalue().splitlines()
    assert len(lines) == 10 and lines[0] == "x: 100 B / 1.0 kB (10%), 100 B/s, ETA 9s"
    assert lines[-1].startswith("x: 1.0 kB / 1.0 kB (100%)")

    bar = io.StringIO()
    p = TransferProgress("x", 1000, stream=bar, tty=True, clock=lambda: now[0])
    now[0] += 1.0
    p.advance(500)
    p.close()
    assert bar.getvalue().startswith("\rx [############............] 500 B / 1.0 kB (50%), 500 B/s, ETA 1s")


def test_fetch_help_does_not_import_torch():
    from test_cli_startup import probe

    result, out = probe("fetch", "--help")
    assert result == {"code": 0, "heavy": []} and "TARGET" in out
