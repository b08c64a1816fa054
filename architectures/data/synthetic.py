"""Procedural indoor rooms with exact depth: the embedded default data set (no downloads).

Each frame is its own random room: a box (floor, four walls, ceiling) with furniture-like boxes and thin
wall panels (pictures, doors), textured surfaces and a point light, seen by a camera with NYU's RGB
intrinsics (toolbox ``camera_params.m``, scaled to the frame size). Depth is the exact z-depth of the first
surface hit, by vectorised ray casting (NumPy slab tests, each box only over its projected bounding
rectangle). Frames are written in the layout of ``nyu_depth_v2_labeled.mat`` as h5py sees it, plus their
own split, so ``NYUv2Labeled`` reads them unchanged. Like the labeled file they hold two depth maps: ``depths``
(complete) and ``rawDepths`` (the same depth with Kinect-like holes, 0 = missing: ``raw_depth``), so both the
``rside`` and the ``eigen`` protocol (which scores ``rawDepths``) run on them.

Determinism: frame ``i`` of seed ``s`` depends only on (s, i) (``numpy.random.default_rng([s, i])``), and
depth uses only IEEE float32 arithmetic, min/max and selects (no BLAS; the only transcendental functions are
the sin/cos of the three camera angles), so the same seed gives the same depth bytes wherever NumPy's
random streams and libm's sin/cos agree (they do across the usual platforms; NumPy does not promise stream
stability across its versions, hence GENERATOR_VERSION and the settings stored in every file).
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np

from .common import DataError, atomic_path
from .nyu import SPLIT_KEYS, SYNTHETIC_ATTR, read_layout

__all__ = [
    "DEFAULT_FRAMES",
    "DEFAULT_SEED",
    "GENERATOR_VERSION",
    "MAX_DEPTH_M",
    "MIN_DEPTH_M",
    "NYU_INTRINSICS_640",
    "Scene",
    "default_synthetic_path",
    "ensure_synthetic",
    "generator_params",
    "intrinsics",
    "raw_depth",
    "render_frame",
    "render_scene",
    "sample_scene",
    "settings_from_name",
    "synthetic_file",
    "synthetic_split",
    "write_synthetic",
]

GENERATOR_VERSION = 2  # bump when a change alters any written byte; stale default files are regenerated
# 2: rawDepths added (images and depths unchanged from 1)
NYU_INTRINSICS_640 = (518.8579, 519.4696, 325.5824, 253.7362)  # fx, fy, cx, cy (px) at 640x480, RGB camera
MIN_DEPTH_M, MAX_DEPTH_M = 0.5, 10.0  # guaranteed range of every depth pixel
DEFAULT_FRAMES = 128  # 96 train + 32 test: 5-15 s to generate on one core, 138 MB; sized for the smoke suite
DEFAULT_SEED = 0
DEFAULT_HW = (480, 640)
TEST_EVERY = 4  # frames 4, 8, 12, ... form the test split
DATA_DIR_ENV = "DRNET_BENCH_DATA"  # directory of the default file; ./data when unset

RAW_BORDER_480x640 = (44, 471, 40, 601)  # NYU toolbox get_projection_mask: depth exists inside these rows/cols
RAW_SHADOW_JUMP_M = 0.25  # a depth step larger than this leaves a Kinect-like shadow (hole) on its far side
RAW_SHADOW_PX_640 = 6  # shadow width at 640 px frame width
_KEEP_OUT_M = 1.2  # no box comes closer to the camera than this (horizontally)
_CORNER_MIN_Z_M = 0.05  # boxes with a corner nearer than this in z are tested over the whole frame

# material parameter rows (per surface): base colour, texture amplitudes and frequencies
(_R, _G, _B, _CHECK_AMP, _CHECK_FREQ, _STRIPE_AMP, _STRIPE_FU, _STRIPE_FV, _GRAIN_AMP, _GRAIN_F1, _GRAIN_F2) = range(11)
_N_MAT = 11


@dataclass(frozen=True)
class Scene:
    """One room: size (x width, y height, z depth; m), camera pose, boxes, light, materials."""

    room: tuple[float, float, float]
    origin: tuple[float, float, float]
    rotation: np.ndarray  # (3,3) float64, columns = camera right, down, forward in world coordinates
    boxes: np.ndarray  # (B, 2, 3) float64: lo and hi corners
    light: tuple[float, float, float]
    materials: np.ndarray  # (6 + B, _N_MAT) float32: floor, ceiling, walls x-lo, x-hi, z-lo, z-hi, boxes


def intrinsics(height: int, width: int) -> tuple[float, float, float, float]:
    """NYU's RGB intrinsics (fx, fy, cx, cy in pixels) scaled from 640x480 to ``width`` x ``height``."""
    fx, fy, cx, cy = NYU_INTRINSICS_640
    sx, sy = width / 640.0, height / 480.0
    return fx * sx, fy * sy, cx * sx, cy * sy


def sample_scene(seed: int, index: int) -> Scene:
    """The random room of frame ``index`` (0-based) for ``seed``; depends only on (seed, index)."""
    rng = np.random.default_rng([seed, index])
    room = (rng.uniform(3.0, 6.5), rng.uniform(2.4, 3.2), rng.uniform(3.5, 7.0))
    x, y, z = room
    origin = (rng.uniform(0.8, x - 0.8), rng.uniform(1.1, 1.7), rng.uniform(0.6, 0.35 * z))
    yaw, pitch, roll = (math.radians(rng.uniform(*r)) for r in ((-35, 35), (-22, 3), (-4, 4)))
    rotation = _camera_rotation(yaw, pitch, roll)
    boxes = _sample_boxes(rng, room, origin)
    light = (rng.uniform(0.3, 0.7) * x, y - 0.05, rng.uniform(0.3, 0.8) * z)
    materials = np.concatenate([_room_materials(rng), _box_materials(rng, len(boxes))]).astype(np.float32)
    return Scene(room, origin, rotation, boxes, light, materials)


def render_scene(scene: Scene, height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    """Ray-cast ``scene``: RGB uint8 (3,H,W) and z-depth float32 (H,W) in metres."""
    fx, fy, cx, cy = intrinsics(height, width)
    xn = ((np.arange(width, dtype=np.float32) - np.float32(cx)) / np.float32(fx))[None, :]
    yn = ((np.arange(height, dtype=np.float32) - np.float32(cy)) / np.float32(fy))[:, None]
    rot = scene.rotation.astype(np.float32)
    # ray direction per pixel, camera z-component 1, so the hit parameter t is the z-depth itself
    d = [rot[a, 0] * xn + rot[a, 1] * yn + rot[a, 2] for a in range(3)]
    with np.errstate(divide="ignore"):
        inv = [np.float32(1.0) / da for da in d]
    o = [np.float32(v) for v in scene.origin]
    t, sid, axis = _cast_room(scene.room, o, inv)
    for b, (lo, hi) in enumerate(scene.boxes.astype(np.float32)):
        rect = _screen_rect(scene, b, height, width, (fx, fy, cx, cy))
        if rect is not None:
            _cast_box(lo, hi, o, inv, rect, (t, sid, axis), 6 + b)
    depth = np.clip(t, MIN_DEPTH_M, MAX_DEPTH_M).astype(np.float32)
    image = _shade(scene, o, d, t, sid, axis)
    return image, depth


def render_frame(seed: int, index: int, height: int = 480, width: int = 640) -> tuple[np.ndarray, np.ndarray]:
    """Frame ``index`` (0-based) of ``seed``: RGB uint8 (3,H,W) and depth float32 (H,W) metres."""
    return render_scene(sample_scene(seed, index), height, width)


def raw_depth(depth: np.ndarray) -> np.ndarray:
    """A rawDepths-like copy of a complete depth map (H,W) metres: 0 outside the NYU projection border
    (scaled to the frame) and in a shadow band beside every depth step > RAW_SHADOW_JUMP_M (on the far
    surface, as a Kinect's offset projector leaves), deterministic from ``depth`` alone."""
    height, width = depth.shape
    r0, r1, c0, c1 = RAW_BORDER_480x640
    valid = np.zeros(depth.shape, dtype=bool)
    valid[round(r0 * height / 480) : round(r1 * height / 480), round(c0 * width / 640) : round(c1 * width / 640)] = True
    step = np.zeros(depth.shape, dtype=bool)
    step[:, 1:] = (depth[:, 1:] - depth[:, :-1]) > RAW_SHADOW_JUMP_M  # far surface right of a near one
    band = max(1, round(RAW_SHADOW_PX_640 * width / 640))
    shadow = step.copy()
    for k in range(1, band):
        shadow[:, k:] |= step[:, :-k]
    valid &= ~shadow
    return np.where(valid, depth, np.float32(0)).astype(np.float32)


def synthetic_split(frames: int) -> dict[str, list[int]]:
    """The split stored with synthetic files: every TEST_EVERY-th frame (1-based) is a test frame (the last
    frame when there are fewer than TEST_EVERY; a single frame is train only)."""
    test = list(range(TEST_EVERY, frames + 1, TEST_EVERY)) or ([frames] if frames > 1 else [])
    train = [i for i in range(1, frames + 1) if i not in test]
    return {"train": train, "test": test}


def generator_params(frames: int, seed: int, height: int, width: int) -> dict[str, object]:
    """The generator settings written as file attributes and recorded in a data set's identity."""
    fx, fy, cx, cy = intrinsics(height, width)
    return {
        "generator": "drnet-bench synthetic rooms",
        "generator_version": GENERATOR_VERSION,
        "frames": frames,
        "seed": seed,
        "height": height,
        "width": width,
        "fx": fx,
        "fy": fy,
        "cx": cx,
        "cy": cy,
        "min_depth_m": MIN_DEPTH_M,
        "max_depth_m": MAX_DEPTH_M,
        "test_every": TEST_EVERY,
    }


def write_synthetic(
    path: str | Path,
    frames: int = DEFAULT_FRAMES,
    seed: int = DEFAULT_SEED,
    height: int = DEFAULT_HW[0],
    width: int = DEFAULT_HW[1],
    progress: Callable[[int, int], None] | None = None,
) -> Path:
    """Render ``frames`` rooms into ``path`` in the labeled .mat layout, atomically (temp file + rename).

    images (N,3,W,H) uint8, depths and rawDepths (N,W,H) float32 metres (h5py's view of MATLAB arrays;
    rawDepths from ``raw_depth``, 0 = missing), one chunk per frame, gzip level 1 with shuffle;
    trainNdxs / testNdxs (1-based) hold the split. ``progress(done, total)`` is called after each frame.
    """
    if frames < 1 or height < 8 or width < 8:
        raise ValueError(f"need frames >= 1 and frames of at least 8x8, got {frames} of {height}x{width}")
    path = Path(path)
    with atomic_path(path) as tmp, h5py.File(tmp, "w", track_order=True) as f:
        opts = {"compression": "gzip", "compression_opts": 1, "shuffle": True}
        images = f.create_dataset("images", (frames, 3, width, height), np.uint8, chunks=(1, 3, width, height), **opts)
        depths = f.create_dataset("depths", (frames, width, height), np.float32, chunks=(1, width, height), **opts)
        raw = f.create_dataset("rawDepths", (frames, width, height), np.float32, chunks=(1, width, height), **opts)
        for name, idx in synthetic_split(frames).items():
            f.create_dataset(SPLIT_KEYS[name], data=np.asarray(idx, dtype=np.uint32))
        f.attrs[SYNTHETIC_ATTR] = "synthetic"
        for k, v in generator_params(frames, seed, height, width).items():
            f.attrs[k] = v
        for i in range(frames):
            image, depth = render_frame(seed, i, height, width)
            images[i] = image.transpose(0, 2, 1)
            depths[i] = depth.T
            raw[i] = raw_depth(depth).T
            if progress is not None:
                progress(i + 1, frames)
    return path


def default_synthetic_path(
    seed: int = DEFAULT_SEED, frames: int = DEFAULT_FRAMES, height: int = DEFAULT_HW[0], width: int = DEFAULT_HW[1]
) -> Path:
    """``$DRNET_BENCH_DATA/synthetic-s{seed}-n{frames}.h5`` (./data by default; -HxW added if not 480x640)."""
    size = "" if (height, width) == DEFAULT_HW else f"-{height}x{width}"
    return Path(os.environ.get(DATA_DIR_ENV) or "data") / f"synthetic-s{seed}-n{frames}{size}.h5"


def ensure_synthetic(
    path: str | Path | None = None,
    frames: int | None = None,
    seed: int | None = None,
    height: int = DEFAULT_HW[0],
    width: int = DEFAULT_HW[1],
    progress: Callable[[int, int], None] | None = None,
) -> Path:
    """Return a synthetic file with these settings, writing it first if it is missing.

    path None -> ``default_synthetic_path(...)``. An existing file is reused only if its generator settings
    match; a stale or unreadable default file is written again, a mismatching explicit file is an error
    (nothing the caller named is overwritten).
    """
    frames = DEFAULT_FRAMES if frames is None else frames
    seed = DEFAULT_SEED if seed is None else seed
    is_default = path is None
    path = default_synthetic_path(seed, frames, height, width) if path is None else Path(path)
    if path.exists():
        want = generator_params(frames, seed, height, width)
        try:
            have = read_layout(path).attrs
        except DataError:
            if not is_default:
                raise
            have = {}  # our own default file, unreadable: write it again
        differ = {k: (have.get(k), v) for k, v in want.items() if _differs(have.get(k), v)}
        if not differ:
            return path
        if not is_default:
            raise DataError(f"{path}: exists with other generator settings (have, wanted): {differ}")
    return write_synthetic(path, frames, seed, height, width, progress)


_GENERATED_NAME = re.compile(r"synthetic-s(\d+)-n(\d+)(?:-(\d+)x(\d+))?\.h5")


def settings_from_name(path: str | Path) -> dict[str, int] | None:
    """The generator settings a file name in ``default_synthetic_path``'s pattern spells out, else None.

    ``.../synthetic-s0-n256.h5`` -> {seed: 0, frames: 256, height: 480, width: 640}.
    """
    match = _GENERATED_NAME.fullmatch(Path(path).name)
    if match is None:
        return None
    seed, frames, height, width = match.groups()
    h, w = (int(height), int(width)) if height else DEFAULT_HW
    return {"seed": int(seed), "frames": int(frames), "height": h, "width": w}


def synthetic_file(path: str | Path | None, progress: Callable[[int, int], None] | None = None) -> Path:
    """The synthetic file a data spec names: None -> the embedded default; a file named as
    ``default_synthetic_path`` names files (``synthetic-s{seed}-n{frames}[-HxW].h5``) is generated from its name
    when missing and checked against it when present, so a suite can ask for more frames without a manual step;
    any other path is read as it is."""
    if path is None:
        return ensure_synthetic(progress=progress)
    settings = settings_from_name(path)
    if settings is None:
        return Path(path)
    return ensure_synthetic(path, progress=progress, **settings)


# --- scene sampling ---------------------------------------------------------------------------------------


def _camera_rotation(yaw: float, pitch: float, roll: float) -> np.ndarray:
    """Columns: camera right, down, forward in world coordinates (y up); pitch < 0 looks down."""
    forward = np.array([math.sin(yaw) * math.cos(pitch), math.sin(pitch), math.cos(yaw) * math.cos(pitch)])
    right = np.cross(forward, [0.0, 1.0, 0.0])
    right /= np.linalg.norm(right)
    down = np.cross(forward, right)
    c, s = math.cos(roll), math.sin(roll)
    return np.stack([c * right + s * down, -s * right + c * down, forward], axis=1)


def _sample_boxes(
    rng: np.random.Generator, room: tuple[float, float, float], origin: tuple[float, float, float]
) -> np.ndarray:
    """Furniture (cabinets, tables, beds, shelves) and thin wall panels, none near the camera."""
    x_room, y_room, z_room = room
    boxes = []
    n_furniture, n_panels = int(rng.integers(3, 9)), int(rng.integers(0, 4))
    for kind in ["furniture"] * n_furniture + ["panel"] * n_panels:
        for _ in range(20):
            if kind == "furniture":
                w, dpt = rng.uniform(0.4, 2.0), rng.uniform(0.4, 1.2)
                h = rng.uniform(0.3, 0.9) if rng.random() < 0.6 else rng.uniform(1.2, 2.1)
                y0, thickness = 0.0, dpt
            else:  # picture / window / door panel standing off a wall
                w, thickness = rng.uniform(0.4, 1.4), rng.uniform(0.02, 0.06)
                door = rng.random() < 0.3
                h = rng.uniform(1.9, 2.1) if door else rng.uniform(0.3, 1.0)
                y0 = 0.0 if door else rng.uniform(0.9, y_room - h - 0.2)
            wall = int(rng.integers(0, 5))  # 0..3: against a wall; 4: free-standing (furniture only)
            if kind == "panel":
                wall %= 4
            lo, hi = _place(rng, wall, w, thickness, room)
            box = np.array([[lo[0], y0, lo[1]], [hi[0], y0 + h, hi[1]]])
            if _clear_of_camera(box, origin) and box[1, 1] < y_room - 0.1:
                boxes.append(box)
                break
    return np.array(boxes, dtype=np.float64).reshape(-1, 2, 3)


def _place(
    rng: np.random.Generator, wall: int, w: float, d: float, room: tuple[float, float, float]
) -> tuple[tuple[float, float], tuple[float, float]]:
    """Footprint (x, z) corners of a w x d box at ``wall`` (0: x=0, 1: x=X, 2: z=0, 3: z=Z) or free (4)."""
    x_room, _, z_room = room
    w = min(w, 0.9 * x_room, 0.9 * z_room)
    if wall in (0, 1):
        z0 = rng.uniform(0.0, z_room - w)
        x0 = 0.0 if wall == 0 else x_room - d
        return (x0, z0), (x0 + d, z0 + w)
    if wall in (2, 3):
        x0 = rng.uniform(0.0, x_room - w)
        z0 = 0.0 if wall == 2 else z_room - d
        return (x0, z0), (x0 + w, z0 + d)
    x0, z0 = rng.uniform(0.0, x_room - w), rng.uniform(0.0, z_room - d)
    return (x0, z0), (x0 + w, z0 + d)


def _clear_of_camera(box: np.ndarray, origin: tuple[float, float, float]) -> bool:
    """Horizontal distance from the camera to the box footprint is at least _KEEP_OUT_M."""
    dx = max(box[0, 0] - origin[0], 0.0, origin[0] - box[1, 0])
    dz = max(box[0, 2] - origin[2], 0.0, origin[2] - box[1, 2])
    return math.hypot(dx, dz) >= _KEEP_OUT_M


def _room_materials(rng: np.random.Generator) -> np.ndarray:
    wall = _hsv(rng.uniform(0, 1), rng.uniform(0.05, 0.35), rng.uniform(0.6, 0.95))
    floor = _hsv(rng.uniform(0.03, 0.12), rng.uniform(0.2, 0.6), rng.uniform(0.25, 0.7))
    ceiling = _hsv(0.1, 0.03, rng.uniform(0.8, 0.95))
    rows = [_material(rng, floor, floor=True), _material(rng, ceiling, plain=True)]
    rows += [_material(rng, wall * rng.uniform(0.9, 1.05)) for _ in range(4)]  # same paint, shade varies
    return np.stack(rows)


def _box_materials(rng: np.random.Generator, n: int) -> np.ndarray:
    colours = [_hsv(rng.uniform(0, 1), rng.uniform(0.2, 0.8), rng.uniform(0.2, 0.9)) for _ in range(n)]
    rows = [_material(rng, c) for c in colours]
    return np.stack(rows) if rows else np.zeros((0, _N_MAT))


def _material(rng: np.random.Generator, rgb: np.ndarray, floor: bool = False, plain: bool = False) -> np.ndarray:
    m = np.zeros(_N_MAT)
    m[_R : _B + 1] = np.clip(rgb, 0.0, 1.0)
    if plain:
        return m
    # 0 checker / tiles, 1 stripes, 2 wood grain
    style = rng.integers(0, 3) if not floor else rng.choice([0, 2])
    if style == 0:
        m[_CHECK_AMP], m[_CHECK_FREQ] = rng.uniform(0.05, 0.2), rng.uniform(1.0, 4.0)
    elif style == 1:
        m[_STRIPE_AMP] = rng.uniform(0.05, 0.15)
        m[_STRIPE_FU], m[_STRIPE_FV] = rng.uniform(0, 6), rng.uniform(0, 6)
    else:
        m[_GRAIN_AMP] = rng.uniform(0.05, 0.15)
        m[_GRAIN_F1], m[_GRAIN_F2] = rng.uniform(2, 8), rng.uniform(0.3, 2)
    return m


def _hsv(h: float, s: float, v: float) -> np.ndarray:
    k = (np.array([5.0, 3.0, 1.0]) + h * 6.0) % 6.0
    return v - v * s * np.clip(np.minimum(k, 4.0 - k), 0.0, 1.0)


# --- ray casting -------------------------------------------------------------------------------------------


def _cast_room(room: tuple[float, float, float], o: list, inv: list) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Exit distance from inside the room box, surface id (0 floor, 1 ceiling, 2..5 walls), face axis."""
    t = sid = face = None
    for axis, ids in ((0, (2, 3)), (1, (0, 1)), (2, (4, 5))):
        t_lo = (np.float32(0.0) - o[axis]) * inv[axis]
        t_hi = (np.float32(room[axis]) - o[axis]) * inv[axis]
        t_axis = np.maximum(t_lo, t_hi)  # one is negative (camera inside); +inf for a ray parallel to it
        surface = np.where(t_hi > t_lo, ids[1], ids[0]).astype(np.int16)
        if t is None:
            t, sid, face = t_axis, surface, np.zeros(t_axis.shape, np.int8)
        else:
            closer = t_axis < t
            t, sid = np.where(closer, t_axis, t), np.where(closer, surface, sid)
            face = np.where(closer, np.int8(axis), face)
    return t, sid, face


def _cast_box(
    lo: np.ndarray,
    hi: np.ndarray,
    o: list,
    inv: list,
    rect: tuple[int, int, int, int],
    hits: tuple[np.ndarray, np.ndarray, np.ndarray],
    surface: int,
) -> None:
    """Slab test of one axis-aligned box over ``rect`` of the frame; where it is nearer, updates the hit
    distance, surface id and face axis in ``hits`` = (t, sid, axis) in place."""
    t, sid, face = hits
    window = (slice(rect[0], rect[1]), slice(rect[2], rect[3]))
    nears, t_far = [], None
    for axis in range(3):
        inv_a = inv[axis][window]
        t1 = (lo[axis] - o[axis]) * inv_a
        t2 = (hi[axis] - o[axis]) * inv_a
        nears.append(np.minimum(t1, t2))
        far = np.maximum(t1, t2)
        t_far = far if t_far is None else np.minimum(t_far, far)
    t_near = np.maximum(np.maximum(nears[0], nears[1]), nears[2])
    t_win = t[window]
    hit = (t_near <= t_far) & (t_near > 0) & (t_near < t_win)
    t[window] = np.where(hit, t_near, t_win)
    sid[window] = np.where(hit, surface, sid[window])
    # the entry face is the slab whose near distance is t_near (max returns one of its inputs exactly)
    entry = np.where(nears[0] == t_near, 0, np.where(nears[1] == t_near, 1, 2)).astype(np.int8)
    face[window] = np.where(hit, entry, face[window])


def _screen_rect(
    scene: Scene, b: int, height: int, width: int, k: tuple[float, float, float, float]
) -> tuple[int, int, int, int] | None:
    """Pixel rectangle (row0, row1, col0, col1) containing box ``b``'s image; None if behind the camera."""
    fx, fy, cx, cy = k
    lo, hi = scene.boxes[b]
    corners = np.array([[x, y, z] for x in (lo[0], hi[0]) for y in (lo[1], hi[1]) for z in (lo[2], hi[2])])
    cam = (corners - np.asarray(scene.origin)) @ scene.rotation  # world -> camera (rotation is orthonormal)
    if np.all(cam[:, 2] <= 0):
        return None
    if np.any(cam[:, 2] <= _CORNER_MIN_Z_M):
        return 0, height, 0, width
    u = fx * cam[:, 0] / cam[:, 2] + cx
    v = fy * cam[:, 1] / cam[:, 2] + cy
    c0, c1 = max(int(math.floor(u.min())) - 2, 0), min(int(math.ceil(u.max())) + 3, width)
    r0, r1 = max(int(math.floor(v.min())) - 2, 0), min(int(math.ceil(v.max())) + 3, height)
    return (r0, r1, c0, c1) if r0 < r1 and c0 < c1 else None


# --- shading -----------------------------------------------------------------------------------------------


def _shade(scene: Scene, o: list, d: list, t: np.ndarray, sid: np.ndarray, axis: np.ndarray) -> np.ndarray:
    """Textured Lambertian shading with one point light; RGB uint8 (3,H,W)."""
    p = [o[a] + t * d[a] for a in range(3)]
    u = np.where(axis == 0, p[2], p[0])
    v = np.where(axis == 1, p[2], p[1])
    d_axis = np.where(axis == 0, d[0], np.where(axis == 1, d[1], d[2]))
    light = [np.float32(c) - p[a] for a, c in enumerate(scene.light)]
    dist2 = light[0] ** 2 + light[1] ** 2 + light[2] ** 2
    l_axis = np.where(axis == 0, light[0], np.where(axis == 1, light[1], light[2]))
    n_dot_l = -np.sign(d_axis) * l_axis / np.sqrt(dist2)  # the visible face's normal points against the ray
    shade = 0.35 + 0.9 * np.maximum(n_dot_l, 0.0) * (8.0 / (8.0 + dist2))

    rows = np.ascontiguousarray(scene.materials.T)  # (_N_MAT, surfaces)
    index = sid.astype(np.intp)

    def m(row: int) -> np.ndarray:  # one material parameter per pixel
        return rows[row][index]

    two_pi = np.float32(2 * math.pi)
    freq = m(_CHECK_FREQ)
    parity = (np.floor(u * freq) + np.floor(v * freq)).astype(np.int32) & 1
    checker = parity.astype(np.float32) * 2.0 - 1.0
    stripes = np.sin(two_pi * (u * m(_STRIPE_FU) + v * m(_STRIPE_FV)))
    grain = np.sin(two_pi * (u * m(_GRAIN_F1) + 0.3 * np.sin(two_pi * v * m(_GRAIN_F2))))
    value = (1.0 + m(_CHECK_AMP) * checker + m(_STRIPE_AMP) * stripes + m(_GRAIN_AMP) * grain) * shade * 255.0
    rgb = np.stack([m(c) * value for c in (_R, _G, _B)])
    return np.clip(rgb + 0.5, 0, 255).astype(np.uint8)


def _differs(have: object, want: object) -> bool:
    if isinstance(want, float) and isinstance(have, int | float):
        return not math.isclose(have, want, rel_tol=1e-9)
    return have != want
