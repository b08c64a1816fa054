"""architectures/data/rside_csv.py: RSIDE's CSV + PNG layout with its two depth encodings."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from architectures.data import RSIDECSV, DataError, build_dataset, make_sample, rside_csv
from architectures.data import transforms as T
from architectures.data.rside_csv import decode_depth_png, find_csv, read_depth_png, read_rgb, write_rside_fixture


def test_train_rows_decode_8bit_depth_as_v_over_255_times_10(rside_root):
    root, values = rside_root
    ds = RSIDECSV(root / "data" / "nyu2_train.csv")
    assert ds.split == "train" and ds.root == root and len(ds) == 3 and ds.frame_indices == [1, 2, 3]
    for k in range(3):
        s = ds[k]
        expected = values["train"][k].astype(np.float64) / 255.0 * 10.0
        np.testing.assert_allclose(s["depth"][0].numpy(), expected, rtol=1e-6)
        np.testing.assert_array_equal(s["valid"][0].numpy(), values["train"][k] > 0)
        jpg = root / f"data/nyu2_train/living_room_{k:04d}_out/{k}.jpg"
        decoded = np.asarray(Image.open(jpg).convert("RGB"))
        np.testing.assert_array_equal(s["image"].permute(1, 2, 0).numpy(), decoded)
        assert s["frame"] == k + 1
    assert ds[0]["valid"][0, 0, 0].item() is False  # the 0 pixel is a hole, masked


def test_test_rows_decode_16bit_millimetres_and_name_their_frames(rside_root):
    root, values = rside_root
    ds = RSIDECSV(root / "data" / "nyu2_test.csv")
    assert ds.split == "test" and ds.frame_indices == [1, 2, 9]  # 00000, 00001, 00008 -> official 1, 2, 9
    for k in range(3):
        s = ds[k]
        expected = values["test"][k].astype(np.float64) / 1000.0
        np.testing.assert_allclose(s["depth"][0].numpy(), expected, rtol=1e-6)
        assert not s["valid"][0, -1, -1] and s["valid"].sum() == s["valid"].numel() - 1
    assert ds.identity["train_variant"] == "rside-3" and ds.identity["official_test_frames"] is False


@pytest.mark.parametrize("split", ["train", "test"])
def test_samples_are_make_samples_bit_for_bit(rside_root, split):
    """The dataset builds its samples without make_sample's copies; they must be make_sample's samples."""
    root, _ = rside_root
    ds = RSIDECSV(root / "data" / f"nyu2_{split}.csv")
    for k, (image_path, depth_path) in enumerate(ds.rows):
        with Image.open(image_path) as im:
            pil = np.asarray(im.convert("RGB")).transpose(2, 0, 1)
        expected, got = make_sample(pil, decode_depth_png(depth_path, split), ds.frame_indices[k]), ds[k]
        for key in ("image", "depth", "valid"):
            assert got[key].dtype == expected[key].dtype and torch.equal(got[key], expected[key]), key
        assert got["frame"] == expected["frame"]


def test_jpeg_decoding_gives_pils_pixels(tmp_path):
    """Three-channel JPEGs are decoded by torchvision: the same libjpeg-turbo pixels as PIL, at 640x480 with
    sensor-like noise (where a different IDCT or upsampling would show); grey JPEGs go through PIL."""
    root = write_rside_fixture(tmp_path, train_rows=3, test_names=(0,))
    for jpg in sorted((root / "data" / "nyu2_train").rglob("*.jpg")):
        with Image.open(jpg) as im:
            expected = np.asarray(im.convert("RGB"))
        got = read_rgb(jpg)
        assert got.shape == (3, 480, 640) and got.stride() == (1, 640 * 3, 3)  # channels last in memory
        np.testing.assert_array_equal(got.permute(1, 2, 0).numpy(), expected)
    grey = tmp_path / "grey.jpg"
    Image.fromarray(np.arange(48, dtype=np.uint8).reshape(6, 8)).save(grey, quality=95)
    with Image.open(grey) as im:
        np.testing.assert_array_equal(read_rgb(grey).permute(1, 2, 0).numpy(), np.asarray(im.convert("RGB")))


def test_depth_png_decoding_gives_pils_integers(tmp_path, rside_root):
    """Grey PNGs of the split's bit depth are decoded by torchvision: PIL's integers, 8 bit (a 640x480 fixture
    frame and every value 0..255) and 16 bit (every value 0..65535); other PNGs go through PIL."""
    root, _ = rside_root
    fixture = write_rside_fixture(tmp_path / "f", train_rows=1, test_names=(0,))
    ramp8 = tmp_path / "ramp8.png"
    Image.fromarray(np.arange(256 * 3, dtype=np.uint16).reshape(24, 32).astype(np.uint8)).save(ramp8)
    ramp16 = tmp_path / "ramp16.png"
    Image.fromarray(np.arange(2**16, dtype=np.uint16).reshape(256, 256)).save(ramp16)
    cases = [
        (next((fixture / "data/nyu2_train").rglob("*.png")), "train"),
        (ramp8, "train"),
        (fixture / "data/nyu2_test/00000_depth.png", "test"),
        (ramp16, "test"),
    ]
    for path, split in cases:
        assert rside_csv._is_grey_png(path.read_bytes(), 8 if split == "train" else 16), path
        got = read_depth_png(path, split)
        with Image.open(path) as im:
            expected = np.asarray(im)
        assert got.dtype == expected.dtype and got.flags.writeable and np.array_equal(got, expected), path
    palette = tmp_path / "palette.png"
    Image.fromarray(np.zeros((4, 4), np.uint8)).convert("P").save(palette)
    assert not rside_csv._is_grey_png(palette.read_bytes(), 8) and not rside_csv._is_grey_png(b"\x89PNG", 8)
    with pytest.raises(DataError, match="depth PNG has mode 'P'"):
        read_depth_png(palette, "train")


def test_training_samples_are_the_step_chains(tmp_path):
    """End to end on 640x480 JPEG + 8-bit PNG frames: the training set (fast reads, fused transform) against the
    path it replaces (PIL decode, make_sample, the step chain), same seeds: depth (m) and valid bit-identical,
    image within the fused colour map's float32 rounding."""
    root = write_rside_fixture(tmp_path, train_rows=2, test_names=(0,))
    train = build_dataset("rside-csv", root, "train", train=True)
    steps = T.rside_train_steps()
    for k, (image_path, depth_path) in enumerate(train.rows):
        with Image.open(image_path) as im:
            pil = np.asarray(im.convert("RGB")).transpose(2, 0, 1)
        reference = make_sample(pil, decode_depth_png(depth_path, "train"), train.frame_indices[k])
        for seed in range(3):
            torch.manual_seed(seed)
            expected = steps(reference)
            torch.manual_seed(seed)
            got = train[k]
            assert torch.equal(got["depth"], expected["depth"]) and torch.equal(got["valid"], expected["valid"])
            assert (got["image"] - expected["image"]).abs().max() <= 1e-5


def test_find_csv_accepts_root_data_dir_or_file(rside_root):
    root, _ = rside_root
    csv = root / "data" / "nyu2_test.csv"
    assert find_csv(root, "test") == find_csv(root / "data", "test") == find_csv(csv, "test") == csv
    with pytest.raises(DataError, match="looks like the test CSV, but the train split was asked for"):
        find_csv(csv, "train")
    with pytest.raises(DataError, match="has neither data/nyu2_train.csv nor nyu2_train.csv"):
        find_csv(root / "data" / "nyu2_test", "train")


# --- bad input ---------------------------------------------------------------------------------------------


def test_rows_pointing_at_missing_files_are_named(rside_root):
    root, _ = rside_root
    (root / "data/nyu2_train/living_room_0001_out/1.png").unlink()
    with pytest.raises(
        DataError,
        match=r"nyu2_train\.csv: 1 file\(s\) it lists are missing: row 2: .*/1\.png"
        r"$",
    ):
        RSIDECSV(root / "data" / "nyu2_train.csv")


def test_truncated_png_is_named(rside_root):
    root, _ = rside_root
    png = root / "data/nyu2_test/00008_depth.png"
    png.write_bytes(png.read_bytes()[:-60])
    ds = RSIDECSV(root / "data" / "nyu2_test.csv")
    ds[0]
    with pytest.raises(DataError, match=r"00008_depth\.png: cannot decode image .*truncated"):
        ds[2]


def test_truncated_or_missing_jpeg_is_named(rside_root):
    root, _ = rside_root
    jpg = root / "data/nyu2_train/living_room_0001_out/1.jpg"
    jpg.write_bytes(jpg.read_bytes()[:-60])
    ds = RSIDECSV(root / "data" / "nyu2_train.csv")
    with pytest.raises(DataError, match=r"1\.jpg: cannot decode image .*truncated"):
        ds[1]
    jpg.write_bytes(b"\xff\xd8\xff" + b"\x00" * 40)  # a JPEG signature and nothing decodable
    with pytest.raises(DataError, match=r"1\.jpg: cannot decode image"):
        ds[1]
    jpg.unlink()
    with pytest.raises(DataError, match=r"1\.jpg: no such file"):
        ds[1]


def test_depth_in_the_wrong_encoding_is_refused(rside_root):
    root, _ = rside_root
    Image.fromarray(np.full((12, 16), 100, np.uint8)).save(root / "data/nyu2_test/00001_depth.png")
    with pytest.raises(
        DataError,
        match=r"00001_depth\.png: depth PNG has mode 'L'; the RSIDE test "
        r"encoding is 16-bit PNG, millimetres",
    ):
        RSIDECSV(root / "data" / "nyu2_test.csv")[1]


def test_malformed_rows_and_names(tmp_path, rside_root):
    root, _ = rside_root
    bad = root / "data" / "nyu2_train.csv"
    bad.write_text(bad.read_text() + "data/only_one_column.jpg\n")
    with pytest.raises(DataError, match=r"row 4 has 1 column\(s\).*expected 2"):
        RSIDECSV(bad)
    empty = tmp_path / "nyu2_test.csv"
    empty.write_text("\n")
    with pytest.raises(DataError, match="has no rows"):
        RSIDECSV(empty)
    unnamed = tmp_path / "pairs.csv"
    unnamed.write_text("a.png,b.png\n")
    with pytest.raises(DataError, match="cannot tell train from test"):
        RSIDECSV(unnamed)


def test_test_images_must_carry_their_frame_number(rside_root):
    root, _ = rside_root
    csv = root / "data" / "nyu2_test.csv"
    src = root / "data/nyu2_test/00000_colors.png"
    src.rename(src.with_name("first.png"))
    csv.write_text(csv.read_text().replace("00000_colors.png", "first.png"))
    with pytest.raises(DataError, match="row 1 image .*first.png' is not named NNNNN_colors.png"):
        RSIDECSV(csv)
