from __future__ import annotations

import io
import json
import pickle
import struct
import types
from pathlib import Path

import pytest
import torch

from architectures import build_model
from architectures.rside import (
    CheckpointError,
    from_official_state_dict,
    load_official_checkpoint,
    to_official_state_dict,
)

FIXTURES = Path(__file__).parent / "fixtures"


def official_keys(backbone: str) -> list[tuple[str, tuple[int, ...]]]:
    """Names and shapes dumped once from the official code (see fixtures/README.md)."""
    rows = json.loads((FIXTURES / f"rside_{backbone}_official_keys.json").read_text())
    return [(name, tuple(shape)) for name, shape in rows]


def our_keys(model) -> list[tuple[str, tuple[int, ...]]]:
    return [(k, tuple(v.shape)) for k, v in to_official_state_dict(model, data_parallel=False).items()]


def test_resnet50_state_dict_matches_the_official_names_and_shapes():
    model = build_model("rside", "resnet50")
    assert our_keys(model) == official_keys("resnet50")
    assert [name for name, _ in model.named_children()] == ["E", "D", "MFF", "R"]
    assert len(model.state_dict()) == 488
    assert sum(p.numel() for p in model.parameters()) == 67_569_473


@pytest.mark.slow
@pytest.mark.parametrize("backbone", ["densenet161", "senet154"])
def test_big_backbones_match_the_official_names_and_shapes(backbone):
    with torch.device("meta"):  # names and shapes only: no memory, no initialisation
        assert our_keys(build_model("rside", backbone)) == official_keys(backbone)


def test_densenet_names_map_both_ways():
    official = {
        "module.E.features.denseblock1.denselayer3.norm.2.running_var": torch.ones(1),
        "module.E.features.transition1.norm.weight": torch.ones(1),
        "module.R.conv2.bias": torch.ones(1),
    }
    ours = from_official_state_dict(official)
    assert list(ours) == [
        "E.features.denseblock1.denselayer3.norm2.running_var",
        "E.features.transition1.norm.weight",
        "R.conv2.bias",
    ]


@pytest.mark.parametrize("backbone", ["resnet18", "resnet34", "resnet50"])
def test_output_is_half_the_input_resolution(backbone):
    with torch.device("meta"):  # shapes only (the meta device computes them without the arithmetic)
        model = build_model("rside", backbone).eval()
        out = model(torch.empty(2, 3, 228, 304))
    assert out.shape == (2, 1, 114, 152)
    assert model.output_stride == 2


@pytest.mark.slow
@pytest.mark.parametrize("backbone", ["resnet101", "resnet152", "densenet161", "senet154"])
def test_output_shape_big_backbones(backbone):
    with torch.device("meta"):
        assert build_model("rside", backbone).eval()(torch.empty(1, 3, 228, 304)).shape == (1, 1, 114, 152)


def test_levels_convention_returns_the_single_prediction():
    model = build_model("rside", "resnet18").eval()
    x = torch.randn(1, 3, 64, 96)
    with torch.inference_mode():
        (only,) = model(x, levels=True)
        assert torch.equal(only, model(x))


# --- official checkpoints --------------------------------------------------------------------------------


class _Py2Pickler(pickle._Pickler):
    """Writes str as Python 2 byte strings (SHORT_BINSTRING), as the released 0.3.1-era files have them."""

    dispatch = dict(pickle._Pickler.dispatch)

    def save_str(self, obj):
        data = obj.encode("latin1")
        if len(data) < 256:
            self.write(pickle.SHORT_BINSTRING + bytes([len(data)]) + data)
        else:
            self.write(pickle.BINSTRING + struct.pack("<i", len(data)) + data)
        self.memoize(obj)

    dispatch[str] = save_str


_PY2_PICKLE = types.SimpleNamespace(
    Pickler=_Py2Pickler, __name__="py2pickle", dump=lambda obj, f, protocol=2: _Py2Pickler(f, protocol).dump(obj)
)


def save_like_released(state: dict, path: Path) -> None:
    """Legacy (pre-1.6, non-zip) torch format, protocol 2, Python-2 strings, no num_batches_tracked."""
    state = {k: v for k, v in state.items() if not k.endswith("num_batches_tracked")}
    torch.save(state, path, pickle_module=_PY2_PICKLE, pickle_protocol=2, _use_new_zipfile_serialization=False)


@pytest.fixture(scope="module")
def source_model():
    torch.manual_seed(0)
    model = build_model("rside", "resnet18")
    for m in model.modules():  # non-trivial running stats so eval-mode outputs depend on them
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.normal_(0, 0.1)
            m.running_var.uniform_(0.5, 1.5)
    return model.eval()


def test_released_style_checkpoint_loads_and_reproduces_outputs(tmp_path, source_model):
    path = tmp_path / "model_resnet"
    save_like_released(to_official_state_dict(source_model), path)
    assert b"U\x15module.E.conv1.weight" in path.read_bytes()  # a Python 2 byte string, as in 0.3.1 files
    loaded = load_official_checkpoint(path, "resnet18")
    assert not loaded.training
    x = torch.randn(1, 3, 96, 128)
    with torch.inference_mode():
        assert torch.equal(loaded(x), source_model(x))


def test_wrapped_state_dict_without_prefix_loads(tmp_path, source_model):
    torch.save({"state_dict": to_official_state_dict(source_model, data_parallel=False)}, tmp_path / "ck.pth.tar")
    loaded = load_official_checkpoint(tmp_path / "ck.pth.tar", "resnet18")
    assert torch.equal(loaded.R.conv2.weight, source_model.R.conv2.weight)


def test_missing_and_unexpected_keys_are_named(tmp_path, source_model):
    state = to_official_state_dict(source_model)
    del state["module.R.conv2.bias"]
    state["module.layer0.conv1.weight"] = torch.zeros(1)
    torch.save(state, tmp_path / "bad")
    with pytest.raises(CheckpointError) as err:
        load_official_checkpoint(tmp_path / "bad", "resnet18")
    msg = str(err.value)
    assert "missing key(s): R.conv2.bias" in msg and "unexpected key(s): layer0.conv1.weight" in msg
    assert "rside-resnet18" in msg and str(tmp_path / "bad") in msg


def test_wrong_backbone_reports_shape_or_key_mismatch(tmp_path, source_model):
    torch.save(to_official_state_dict(source_model), tmp_path / "r18")
    with pytest.raises(CheckpointError, match="does not fit rside-resnet34"):
        load_official_checkpoint(tmp_path / "r18", "resnet34")


def test_truncated_checkpoint_is_a_clear_error(tmp_path, source_model):
    buf = io.BytesIO()
    save_like_released(to_official_state_dict(source_model), buf)
    (tmp_path / "cut").write_bytes(buf.getvalue()[: len(buf.getvalue()) // 2])
    with pytest.raises(CheckpointError, match="cannot read checkpoint .*cut.*truncated"):
        load_official_checkpoint(tmp_path / "cut", "resnet18")


def test_missing_or_non_state_dict_file(tmp_path):
    with pytest.raises(CheckpointError, match="checkpoint not found"):
        load_official_checkpoint(tmp_path / "nope", "resnet18")
    torch.save([1, 2, 3], tmp_path / "list")
    with pytest.raises(CheckpointError, match="does not hold a state_dict"):
        load_official_checkpoint(tmp_path / "list", "resnet18")
