"""architectures/data/synthetic.py: procedural rooms with exact depth, in the labeled .mat layout."""

from __future__ import annotations

import math
import os

import h5py
import numpy as np
import pytest

from architectures.data import DataError, NYUv2Labeled, ensure_synthetic, render_frame, write_synthetic
from architectures.data import synthetic as synth


def test_same_seed_same_bytes():
    a, b = render_frame(7, 3, 60, 80), render_frame(7, 3, 60, 80)
    assert a[0].tobytes() == b[0].tobytes() and a[1].tobytes() == b[1].tobytes()
    assert a[0].shape == (3, 60, 80) and a[0].dtype == np.uint8
    assert a[1].shape == (60, 80) and a[1].dtype == np.float32


def test_scenes_differ_visibly():
    frames = [render_frame(0, i, 60, 80) for i in range(6)] + [render_frame(1, 0, 60, 80)]
    for i in range(len(frames)):
        for j in range(i + 1, len(frames)):
            image_diff = np.abs(frames[i][0].astype(float) - frames[j][0].astype(float)).mean()
            depth_diff = np.abs(frames[i][1] - frames[j][1]).mean()
            assert image_diff > 10 and depth_diff > 0.1, (i, j, image_diff, depth_diff)


def test_depth_stays_inside_the_guaranteed_range():
    for index in range(40):
        depth = render_frame(3, index, 24, 32)[1]
        assert synth.MIN_DEPTH_M < depth.min() and depth.max() < synth.MAX_DEPTH_M  # inside, never clipped


@pytest.mark.parametrize("index", range(4))
def test_depth_is_the_exact_z_depth_of_the_first_surface_hit(index):
    """Independent check: intersect sampled rays with every face of the room and of every box, in float64."""
    height, width = 48, 64
    scene = synth.sample_scene(5, index)
    _, depth = synth.render_scene(scene, height, width)
    fx, fy, cx, cy = synth.intrinsics(height, width)
    rng = np.random.default_rng(index)
    for r, c in zip(rng.integers(0, height, 150), rng.integers(0, width, 150), strict=True):
        ray = scene.rotation @ np.array([(c - cx) / fx, (r - cy) / fy, 1.0])
        expected = _first_hit(scene, np.asarray(scene.origin), ray)
        assert math.isclose(depth[r, c], expected, rel_tol=2e-5), (r, c, depth[r, c], expected)


def _first_hit(scene, origin, ray) -> float:
    """Smallest positive t at which origin + t * ray meets a face of the room or of a box."""
    boxes = [(np.zeros(3), np.asarray(scene.room))] + [(lo, hi) for lo, hi in scene.boxes]
    best = math.inf
    for lo, hi in boxes:
        for axis in range(3):
            if ray[axis] == 0:
                continue
            for plane in (lo[axis], hi[axis]):
                t = (plane - origin[axis]) / ray[axis]
                point = origin + t * ray
                others = [a for a in range(3) if a != axis]
                inside = all(lo[a] - 1e-9 <= point[a] <= hi[a] + 1e-9 for a in others)
                if t > 0 and inside:
                    best = min(best, t)
    return best


def test_file_has_the_labeled_layout_and_its_own_split(tmp_path):
    path = write_synthetic(tmp_path / "s.h5", frames=5, seed=2, height=48, width=64)
    with h5py.File(path, "r") as f:
        assert f["images"].shape == (5, 3, 64, 48) and f["images"].dtype == np.uint8
        assert f["depths"].shape == (5, 64, 48) and f["depths"].dtype == np.float32
        assert list(f["trainNdxs"][:]) == [1, 2, 3, 5] and list(f["testNdxs"][:]) == [4]
        assert f.attrs["seed"] == 2 and f.attrs["generator_version"] == synth.GENERATOR_VERSION
    ds = NYUv2Labeled(path, "all")
    for k in range(5):
        image, depth = render_frame(2, k, 48, 64)
        np.testing.assert_array_equal(ds[k]["image"].numpy(), image)
        np.testing.assert_array_equal(ds[k]["depth"][0].numpy(), depth)
    test = NYUv2Labeled(path, "test")
    assert test.frame_indices == [4] and test.identity["train_variant"] == "synthetic-4"
    assert test.identity["source"] == "synthetic" and test.identity["generator"]["seed"] == 2


def test_written_depth_is_byte_identical_for_a_seed(tmp_path):
    a = write_synthetic(tmp_path / "a.h5", frames=3, seed=4, height=24, width=32)
    b = write_synthetic(tmp_path / "b.h5", frames=3, seed=4, height=24, width=32)
    with h5py.File(a, "r") as fa, h5py.File(b, "r") as fb:
        assert fa["depths"][:].tobytes() == fb["depths"][:].tobytes()
        assert fa["images"][:].tobytes() == fb["images"][:].tobytes()


def test_progress_is_reported(tmp_path):
    seen = []
    write_synthetic(
        tmp_path / "s.h5", frames=3, height=16, width=16, progress=lambda done, total: seen.append((done, total))
    )
    assert seen == [(1, 3), (2, 3), (3, 3)]


def test_an_interrupted_write_leaves_no_file(tmp_path, monkeypatch):
    real = synth.render_frame

    def fail_on_third(seed, index, height, width):
        if index == 2:
            raise KeyboardInterrupt
        return real(seed, index, height, width)

    monkeypatch.setattr(synth, "render_frame", fail_on_third)
    with pytest.raises(KeyboardInterrupt):
        write_synthetic(tmp_path / "s.h5", frames=4, height=16, width=16)
    assert list(tmp_path.iterdir()) == []


def test_ensure_synthetic_writes_the_default_once(tmp_path, monkeypatch):
    monkeypatch.setenv(synth.DATA_DIR_ENV, str(tmp_path))
    path = ensure_synthetic(frames=3, seed=1, height=24, width=32)
    assert path == tmp_path / "synthetic-s1-n3-24x32.h5" and path.is_file()
    stamp = path.stat().st_mtime_ns
    assert ensure_synthetic(frames=3, seed=1, height=24, width=32) == path
    assert path.stat().st_mtime_ns == stamp  # reused, not rewritten
    assert [p.name for p in tmp_path.iterdir()] == [path.name]  # no temp files left


def test_ensure_synthetic_regenerates_a_stale_default(tmp_path, monkeypatch):
    monkeypatch.setenv(synth.DATA_DIR_ENV, str(tmp_path))
    path = ensure_synthetic(frames=2, seed=0, height=16, width=16)
    with h5py.File(path, "r+") as f:
        f.attrs["generator_version"] = 0
    ensure_synthetic(frames=2, seed=0, height=16, width=16)
    with h5py.File(path, "r") as f:
        assert f.attrs["generator_version"] == synth.GENERATOR_VERSION


def test_ensure_synthetic_replaces_an_unreadable_default(tmp_path, monkeypatch):
    monkeypatch.setenv(synth.DATA_DIR_ENV, str(tmp_path))
    path = synth.default_synthetic_path(0, 2, 16, 16)
    path.write_bytes(b"garbage")
    assert ensure_synthetic(frames=2, seed=0, height=16, width=16) == path
    assert NYUv2Labeled(path, "all").identity["generator"]["frames"] == 2


def test_ensure_synthetic_never_overwrites_a_named_file_with_other_settings(tmp_path):
    path = write_synthetic(tmp_path / "mine.h5", frames=2, seed=1, height=16, width=16)
    with pytest.raises(DataError, match=r"mine\.h5: exists with other generator settings.*'seed': \(1, 2\)"):
        ensure_synthetic(path, frames=2, seed=2, height=16, width=16)


def test_a_file_named_as_the_generator_names_files_is_generated_from_its_name(tmp_path):
    from architectures.data import build_dataset, synthetic_file

    named = tmp_path / "sub" / "synthetic-s3-n8-16x24.h5"
    test_set = build_dataset("synthetic", named, "test")  # missing: written from the name, then read
    assert named.is_file() and len(test_set) == 2  # frames 4 and 8 of 8 form the test split
    assert test_set.identity["generator"] == synth.generator_params(8, 3, 16, 24)
    stamp = named.stat().st_mtime_ns
    assert synthetic_file(named) == named and named.stat().st_mtime_ns == stamp  # present and matching: reused
    assert synth.settings_from_name("synthetic-s0-n256.h5") == {"seed": 0, "frames": 256, "height": 480, "width": 640}
    assert synth.settings_from_name("rooms.h5") is None


def test_a_named_file_whose_content_contradicts_its_name_is_an_error(tmp_path):
    from architectures.data import synthetic_file

    named = tmp_path / "synthetic-s0-n4-16x16.h5"
    write_synthetic(named, frames=3, seed=0, height=16, width=16)  # 3 frames under a name that says 4
    stamp = named.stat().st_mtime_ns
    with pytest.raises(DataError, match=r"synthetic-s0-n4-16x16\.h5: exists with other generator settings.*frames"):
        synthetic_file(named)
    assert named.stat().st_mtime_ns == stamp  # nothing the user named is overwritten


def test_another_missing_synthetic_file_is_not_invented(tmp_path):
    from architectures.data import build_dataset

    with pytest.raises((DataError, FileNotFoundError), match="rooms.h5"):
        build_dataset("synthetic", tmp_path / "rooms.h5", "test")
    assert not (tmp_path / "rooms.h5").exists()


def test_written_file_is_readable_by_others_as_open_would_make_it(tmp_path):
    umask = os.umask(0o022)
    try:
        path = write_synthetic(tmp_path / "s.h5", frames=1, height=8, width=8)
    finally:
        os.umask(umask)
    assert path.stat().st_mode & 0o777 == 0o644
