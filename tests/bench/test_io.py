from __future__ import annotations

import errno
import json
import os
import stat
from pathlib import Path

import pytest

import architectures.files as files
import bench.io as io_module
from bench.io import (
    DiskFullError,
    atomic_path,
    payload_bytes,
    sha256_file,
    torch_save_atomic,
    write_csv_atomic,
    write_json_atomic,
)


def test_json_is_written_whole_with_nan_as_null_and_normal_permissions(tmp_path):
    path = write_json_atomic(tmp_path / "sub" / "m.json", {"b": float("nan"), "a": [1.0, (2, 3)]})
    assert json.loads(path.read_text()) == {"a": [1.0, [2, 3]], "b": None}
    mask = os.umask(0)
    os.umask(mask)
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~mask
    assert [p.name for p in path.parent.iterdir()] == ["m.json"]


def test_failed_write_leaves_the_old_file_and_no_temp(tmp_path):
    target = tmp_path / "x.csv"
    write_csv_atomic(target, [{"a": 1}])
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("killed")
    assert target.read_text() == "a\n1\n"
    assert [p.name for p in tmp_path.iterdir()] == ["x.csv"]


def test_csv_rejects_unknown_columns(tmp_path):
    with pytest.raises(ValueError):
        write_csv_atomic(tmp_path / "y.csv", [{"a": 1, "b": 2}], columns=["a"])


# --- durability: fsync the file before the rename, the directory after it (issue 25, item 5) ---------------


def fsync_spy(monkeypatch):
    """Record every os.fsync and os.replace in order: ("fsync", "dir" | "file", inode) / ("replace", target)."""
    events = []
    real_fsync, real_replace = os.fsync, os.replace

    def spy_fsync(fd):
        st = os.fstat(fd)
        events.append(("fsync", "dir" if stat.S_ISDIR(st.st_mode) else "file", st.st_ino))
        return real_fsync(fd)

    def spy_replace(src, dst):
        events.append(("replace", str(dst)))
        return real_replace(src, dst)

    monkeypatch.setattr(os, "fsync", spy_fsync)
    monkeypatch.setattr(os, "replace", spy_replace)
    return events


def test_atomic_write_fsyncs_the_file_then_renames_then_fsyncs_the_directory(tmp_path, monkeypatch):
    events = fsync_spy(monkeypatch)
    target = write_json_atomic(tmp_path / "m.json", {"a": 1})
    assert [e[:2] for e in events] == [("fsync", "file"), ("replace", str(target)), ("fsync", "dir")]
    assert events[0][2] == target.stat().st_ino  # the file fsynced is the one renamed into place
    assert events[2][2] == tmp_path.stat().st_ino  # and the directory fsynced is the one it was renamed into


def test_directories_created_for_a_file_have_their_entries_fsynced_too(tmp_path, monkeypatch):
    events = fsync_spy(monkeypatch)
    target = write_json_atomic(tmp_path / "run" / "checkpoints" / "x.json", {})
    dirs = [e[2] for e in events if e[1] == "dir"]
    assert dirs == [p.stat().st_ino for p in (target.parent, target.parent.parent, tmp_path)]
    events.clear()
    write_json_atomic(target, {})  # the directories exist now: only the file's own directory
    assert [e[2] for e in events if e[1] == "dir"] == [target.parent.stat().st_ino]


def test_a_directory_that_cannot_be_fsynced_is_no_error(tmp_path, monkeypatch):
    real = os.fsync

    def no_dir_fsync(fd):
        if stat.S_ISDIR(os.fstat(fd).st_mode):
            raise OSError(errno.EINVAL, "Invalid argument")  # some network filesystems
        return real(fd)

    monkeypatch.setattr(os, "fsync", no_dir_fsync)
    assert write_json_atomic(tmp_path / "m.json", [1]).read_text() == "[\n  1\n]\n"


# --- a full disk: one line naming the file, the bytes needed and free (issue 25, item 3) ----------------------


def only_file(directory):
    return [p.name for p in directory.iterdir()]


def test_enospc_at_the_write_names_the_file_and_the_space_and_keeps_the_old_file(tmp_path, monkeypatch):
    target = write_json_atomic(tmp_path / "metrics.json", {"old": True})
    real_write = Path.write_bytes

    def full(self, data):
        real_write(self, data[:10])  # part of it reached the disk
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(Path, "write_bytes", full)
    monkeypatch.setattr(files, "free_bytes", lambda path: 3 * 2**10)
    with pytest.raises(DiskFullError) as caught:
        write_json_atomic(target, {"new": "x" * 5000})
    message = str(caught.value)
    assert "\n" not in message and message == (
        f"no space left on device for {target}: it needs about 4.9 KiB (5,016 bytes), 3.0 KiB (3,072 bytes) "
        f"free on its filesystem; the previous metrics.json is unchanged"
    )
    assert isinstance(caught.value, OSError) and caught.value.errno == errno.ENOSPC
    assert caught.value.filename == str(target) and caught.value.needed_bytes == 5016  # the JSON text
    assert json.loads(target.read_text()) == {"old": True} and only_file(tmp_path) == ["metrics.json"]


def test_a_quota_is_named_as_such_and_a_new_file_leaves_nothing(tmp_path, monkeypatch):
    def quota(self, data):
        raise OSError(errno.EDQUOT, "Disk quota exceeded")

    monkeypatch.setattr(Path, "write_bytes", quota)
    with pytest.raises(DiskFullError, match=r"^disk quota exceeded for .*x\.csv: it needs about 4 bytes, .* free "):
        write_csv_atomic(tmp_path / "x.csv", [{"a": 1}])
    assert only_file(tmp_path) == []


TORCH_SHORT_WRITE = "[enforce fail at inline_container.cc:672] . unexpected pos 35369664 vs 35369560"


def failing_torch_save(monkeypatch, message=TORCH_SHORT_WRITE):
    """torch.save that writes 1 KiB and then fails as it does on a full filesystem (a RuntimeError)."""
    import torch

    def save(obj, f, *args, **kwargs):
        f.write(b"\0" * 1024)  # a file object (torch_save_atomic never passes the temporary path)
        raise RuntimeError(message)

    monkeypatch.setattr(torch, "save", save)


def test_torch_save_failing_on_a_full_disk_becomes_a_disk_full_error(tmp_path, monkeypatch):
    import torch

    target = tmp_path / "last.pt"
    torch_save_atomic({"w": torch.ones(1000)}, target)
    before = target.read_bytes()
    failing_torch_save(monkeypatch)
    monkeypatch.setattr(files, "free_bytes", lambda path: 100)  # the filesystem is full
    payload = {"w": torch.zeros(2**20)}  # 4 MiB of tensors
    monkeypatch.setattr(io_module, "check_free_space", lambda path, needed: None)  # free space looked fine first
    with pytest.raises(DiskFullError) as caught:
        torch_save_atomic(payload, target)
    assert str(caught.value).startswith(f"no space left on device for {target}: it needs about 4.1 MiB")
    assert str(caught.value).endswith("100 bytes free on its filesystem; the previous last.pt is unchanged")
    assert isinstance(caught.value.__cause__, RuntimeError)  # torch's own words stay in the traceback
    assert target.read_bytes() == before and only_file(tmp_path) == ["last.pt"]


def test_torch_save_failing_with_room_to_spare_is_not_called_a_full_disk(tmp_path, monkeypatch):
    import torch

    failing_torch_save(monkeypatch)
    monkeypatch.setattr(files, "free_bytes", lambda path: 2**40)
    with pytest.raises(RuntimeError, match="unexpected pos") as caught:
        torch_save_atomic({"w": torch.zeros(10)}, tmp_path / "last.pt")
    assert not isinstance(caught.value, DiskFullError) and only_file(tmp_path) == []


def test_the_same_weights_save_to_the_same_bytes(tmp_path):
    """torch.save given a path names the zip's records after the (random) temporary file; through a file object
    they are always the same, so final.pt's sha256 depends on the weights alone."""
    import torch

    payload = {"model": {"w": torch.arange(1000.0)}, "epoch": 2}
    a, b = torch_save_atomic(payload, tmp_path / "a.pt"), torch_save_atomic(payload, tmp_path / "b.pt")
    assert a.read_bytes() == b.read_bytes() and torch.load(a, weights_only=True)["epoch"] == 2


def test_enospc_inside_torch_save_keeps_its_errno(tmp_path, monkeypatch):
    """torch's zip writer reports a failed write as "unexpected pos"; the write's own ENOSPC is what counts."""
    import builtins

    import torch

    target = torch_save_atomic({"w": torch.ones(10)}, tmp_path / "last.pt")
    before = target.read_bytes()
    real_open = builtins.open

    class Full:
        def __init__(self, f):
            self.f, self.n = f, 0

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.f.close()

        def write(self, data):
            self.n += len(data)
            if self.n > 4096:
                raise OSError(errno.ENOSPC, "No space left on device")
            return self.f.write(data)

        def flush(self):
            self.f.flush()

    monkeypatch.setattr(io_module, "open", lambda p, mode="r": Full(real_open(p, mode)), raising=False)
    with pytest.raises(DiskFullError) as caught:
        torch_save_atomic({"w": torch.zeros(2**16)}, target)
    assert caught.value.errno == errno.ENOSPC and str(caught.value).startswith(f"no space left on device for {target}")
    assert str(caught.value).endswith("the previous last.pt is unchanged")
    assert target.read_bytes() == before and only_file(tmp_path) == ["last.pt"]


def test_a_checkpoint_that_cannot_fit_is_refused_before_writing(tmp_path, monkeypatch):
    import torch

    target = tmp_path / "last.pt"
    torch_save_atomic({"w": torch.ones(10)}, target)
    before = target.read_bytes()
    monkeypatch.setattr(files, "free_bytes", lambda path: 2**20)
    with pytest.raises(
        DiskFullError, match=r"^not enough free space for .*last\.pt: it needs about 4\.1 MiB .*1\.0 MiB"
    ):
        torch_save_atomic({"w": torch.zeros(2**20)}, target)
    assert target.read_bytes() == before and only_file(tmp_path) == ["last.pt"]


def test_payload_bytes_counts_each_storage_once(tmp_path):
    import torch

    w = torch.zeros(1000)
    payload = {"model": {"a": w, "b": w[:10]}, "opt": [torch.zeros(10, dtype=torch.float64)], "n": 3}
    estimate = payload_bytes(payload)
    assert estimate == io_module.TORCH_SAVE_OVERHEAD_BYTES + 4000 + 80 + 2 * io_module.TORCH_SAVE_RECORD_BYTES
    torch.save(payload, tmp_path / "p.pt")
    assert (tmp_path / "p.pt").stat().st_size <= estimate


def test_sha256_of_a_file(tmp_path):
    import hashlib

    data = os.urandom(3 * 2**20 + 5)
    (tmp_path / "f").write_bytes(data)
    assert sha256_file(tmp_path / "f") == hashlib.sha256(data).hexdigest()


def test_the_free_space_is_measured_once_the_failed_writer_has_let_go_of_the_temp_file(tmp_path, monkeypatch):
    """A writer given the path (torch.save, h5py) stays referenced from the traceback; a removed but open file
    frees no space."""
    import weakref

    writers, seen = [], []

    def save(path):
        writer = open(path, "wb")  # noqa: SIM115 - left open, as torch's C++ writer is when it fails
        writer.write(b"\0" * 1024)
        writers.append(weakref.ref(writer))
        raise RuntimeError(TORCH_SHORT_WRITE)

    def free(path):
        seen.append(writers[0]() is None)
        return 0

    monkeypatch.setattr(files, "free_bytes", free)
    with pytest.raises(DiskFullError, match=", 0 bytes free on its filesystem; nothing was written"):
        with atomic_path(tmp_path / "last.pt", expected_bytes=4096) as tmp:
            save(tmp)
    assert seen == [False, True]  # still open while judging the error, closed before the free space is reported
    assert only_file(tmp_path) == []


def test_an_error_while_judging_a_failed_write_still_removes_the_temp_file(tmp_path, monkeypatch):
    def broken(path):
        raise PermissionError("statvfs refused")

    monkeypatch.setattr(files, "free_bytes", broken)
    with pytest.raises(RuntimeError, match="unexpected pos"):  # the writer's own error, unchanged
        with atomic_path(tmp_path / "x.pt") as tmp:
            tmp.write_bytes(b"half")
            raise RuntimeError(TORCH_SHORT_WRITE)
    assert only_file(tmp_path) == []
