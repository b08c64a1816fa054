"""bench.speed.gpu with a fake pynvml (and NVML's absence), plus CUDA sweeps that run only where a GPU exists."""

from __future__ import annotations

import os
import sys
import threading
import time
from types import SimpleNamespace

import pytest
import torch
from fake_nvml import MIB, fake_pynvml

from bench import speed
from bench.speed import SpeedConfig, SpeedTarget, measure, run_sweep
from bench.speed.gpu import open_nvml
from bench.speed.memory import PeakSampler


@pytest.fixture
def no_visible_devices(monkeypatch):
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)


def test_open_nvml_reads_static_and_dynamic_state(monkeypatch, no_visible_devices):
    fake = fake_pynvml(used_mib=(1500,), processes=[(os.getpid(), 500), (4242, 1024)])
    monkeypatch.setitem(sys.modules, "pynvml", fake)
    nvml, note = open_nvml(0)
    assert nvml is not None and note == "NVML ok (index 0)"
    assert nvml.used_bytes() == 1500 * MIB
    info = nvml.static_info()
    assert info["name"] == "NVIDIA H100 80GB HBM3" and info["uuid"] == "GPU-1234"
    assert info["driver"] == "550.54.15" and info["cuda_driver"] == "12.4"
    assert info["memory_total_mib"] == 80 * 1024 and info["power_limit_w"] == 700.0
    assert info["pci_bus_id"] == "00000000:3B:00.0" and info["max_sm_clock_mhz"] == 1980
    state = nvml.dynamic_info()
    assert state["temperature_c"] == 41 and state["sm_clock_mhz"] == 1755 and state["power_draw_w"] == 71.234
    assert state["memory_used_mib"] == 1500
    assert nvml.other_processes() == [{"pid": 4242, "used_mib": 1024.0}]  # our own pid is left out
    nvml.close()
    assert ("nvmlShutdown", ()) in fake.calls


def test_unsupported_queries_become_none_not_errors(monkeypatch, no_visible_devices):
    fake = fake_pynvml(
        unsupported={"nvmlDeviceGetPowerUsage", "nvmlDeviceGetTemperature", "nvmlDeviceGetComputeRunningProcesses"}
    )
    monkeypatch.setitem(sys.modules, "pynvml", fake)
    nvml, _ = open_nvml(0)
    state = nvml.dynamic_info()
    assert state["power_draw_w"] is None and state["temperature_c"] is None and state["sm_clock_mhz"] == 1755
    assert nvml.other_processes() == []


@pytest.mark.parametrize(
    "visible, index, expected",
    [
        ("GPU-abcd,GPU-ef01", 1, ("nvmlDeviceGetHandleByUUID", ("GPU-ef01",))),
        ("3,1", 0, ("nvmlDeviceGetHandleByIndex", (3,))),
        ("MIG-9999", 0, ("nvmlDeviceGetHandleByUUID", ("MIG-9999",))),
    ],
)
def test_handle_follows_cuda_visible_devices(monkeypatch, visible, index, expected):
    fake = fake_pynvml()
    monkeypatch.setitem(sys.modules, "pynvml", fake)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", visible)
    nvml, _ = open_nvml(index)
    assert expected in fake.calls
    assert not torch.cuda.is_initialized()  # resolved without touching CUDA


def test_nvml_absent_or_failing_is_a_note_not_an_error(monkeypatch, no_visible_devices):
    monkeypatch.setitem(sys.modules, "pynvml", None)  # import pynvml -> ImportError
    nvml, note = open_nvml(0)
    assert nvml is None and "cannot import pynvml" in note and "nvidia-ml-py" in note
    monkeypatch.setitem(sys.modules, "pynvml", fake_pynvml(fail_init=True))
    nvml, note = open_nvml(0)
    assert nvml is None and "nvmlInit failed" in note and "Shared Library Not Found" in note
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0")
    fake = fake_pynvml()
    monkeypatch.setitem(sys.modules, "pynvml", fake)
    nvml, note = open_nvml(1)
    assert nvml is None and "no NVML device for cuda:1" in note and ("nvmlShutdown", ()) in fake.calls


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the real pynvml on a machine without a GPU")
def test_real_pynvml_without_a_gpu_is_skipped_with_a_note():
    nvml, note = open_nvml(0)
    assert nvml is None and note.startswith("NVML skipped")


def test_peak_sampler_keeps_the_maximum_and_resets():
    values = iter([10, 50, 30, 20])
    last = [10]
    lock = threading.Lock()

    def read():
        with lock:
            last[0] = next(values, last[0])
            return last[0]

    sampler = PeakSampler(read, interval_s=0.001).start()
    deadline = time.monotonic() + 5
    while sampler.n_samples < 5 and time.monotonic() < deadline:
        time.sleep(0.002)
    assert sampler.peak == 50
    sampler.reset()
    assert sampler.peak == 20  # restarted from the current value (later values are all 20)
    assert sampler.stop() == 20


def test_sweep_environment_records_gpu_state_and_warns_about_other_processes(monkeypatch, no_visible_devices):
    monkeypatch.setitem(sys.modules, "pynvml", fake_pynvml(processes=[(4242, 1024)]))
    nvml, note = open_nvml(0)
    config = SpeedConfig(targets=(SpeedTarget("rside", "resnet50"),), device="cuda:0").resolved()
    env = speed.sweep_environment(config, nvml, note)
    assert env["gpu"]["name"] == "NVIDIA H100 80GB HBM3" and env["start"]["temperature_c"] == 41
    assert env["other_processes"] == [{"pid": 4242, "used_mib": 1024.0}]
    assert "1 other process(es) on the GPU (pids 4242)" in env["warnings"][0]
    for key in ("cudnn_version", "cudnn_benchmark", "tf32_matmul", "tf32_cudnn", "float32_matmul_precision"):
        assert key in env and env[key] != "N/A (cpu)"
    assert not torch.cuda.is_initialized()


# --- on a real GPU ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("isolate", [False, True])
@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_sweep_reports_three_memory_numbers(tmp_path, isolate):
    config = SpeedConfig(
        targets=(SpeedTarget("rside", "resnet18"),),
        device="cuda",
        input_hw=(64, 96),
        batch_sizes=(1, 2, 4),
        warmup=3,
        repeats=5,
        isolate=isolate,
    )
    result = run_sweep(config, tmp_path)
    assert all(p.status == "ok" and p.device_kind == "cuda" for p in result.points)
    for p in result.points:
        assert 0 < p.peak_allocated_mib <= p.peak_reserved_mib
        if p.nvml_used_mib is not None:  # includes the CUDA context and cache
            assert p.nvml_used_mib >= p.peak_reserved_mib
        assert p.net_ram_allocated_mib == pytest.approx(p.net_ram_mib, abs=1.0)
    (s,) = result.summaries
    assert s.ram_per_img_source in ("nvml", "reserved") and s.ram_per_img_allocated_mib > 0
    assert result.environment["cudnn_benchmark"] is True


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_allocator_cap_turns_into_an_oom_and_bisection(tmp_path):
    config = SpeedConfig(
        targets=(SpeedTarget("rside", "resnet18"),),
        device="cuda",
        input_hw=(228, 304),
        warmup=2,
        repeats=3,
        max_memory_mib=600,
        max_batch=256,
    )
    result = run_sweep(config, tmp_path)
    (s,) = result.summaries
    assert s.sweep_stop == "oom" and s.n_oom >= 1 and s.max_batch_fit >= 1
    fits = {p.batch for p in result.points if p.status == "ok"}
    ooms = {p.batch for p in result.points if p.status == "oom"}
    assert s.max_batch_fit in fits and s.max_batch_fit + 1 in ooms  # bisected to adjacent sizes


def test_same_gpu_compares_uuids_without_prefix(monkeypatch, no_visible_devices):
    monkeypatch.setitem(sys.modules, "pynvml", fake_pynvml())  # its GPU has UUID GPU-1234
    nvml, _ = open_nvml(0)
    monkeypatch.setattr(torch.cuda, "get_device_properties", lambda device: SimpleNamespace(uuid="1234"))
    assert measure._same_gpu(nvml, torch.device("cuda:0"))
    monkeypatch.setattr(torch.cuda, "get_device_properties", lambda device: SimpleNamespace(uuid="9999"))
    assert not measure._same_gpu(nvml, torch.device("cuda:0"))
