from __future__ import annotations

import json
import os
import stat

import pytest

from bench.io import atomic_path, write_csv_atomic, write_json_atomic


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
