"""report.html in a real browser: headless Chromium loads it offline, and the tables and images render.

The report's inline script marks, after the load event, each image with data-rendered="yes|no" (decoded:
naturalWidth > 0) and each table with its laid-out height; Chromium's --dump-dom prints the DOM after load, so
the test reads what the browser actually rendered. Skipped only when no Chromium binary is installed (CI
installs Debian's ``chromium``).
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from bench.report.build import ReportConfig, make_report

pytestmark = pytest.mark.browser

CHROMIUM = next((p for p in map(shutil.which, ("chromium", "chromium-browser", "google-chrome", "chrome")) if p), None)
needs_chromium = pytest.mark.skipif(CHROMIUM is None, reason="no chromium binary found (apt-get install chromium)")
FRAMES = range(1, 13)


def chromium(tmp_path: Path, *args: str) -> str:
    profile = tmp_path / f"profile-{len(list(tmp_path.glob('profile-*')))}"
    cmd = [
        CHROMIUM,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--hide-scrollbars",
        f"--user-data-dir={profile}",
        *args,
    ]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    return out.stdout


@pytest.fixture
def report_html(runs_dir, tmp_path, make_eval_run, make_speed_sweep) -> Path:
    make_eval_run(runs_dir, "smoke", "rside-resnet18", "rside", "resnet18", frames=FRAMES, noise=0.1)
    make_eval_run(runs_dir, "smoke", "drnet-resnet18", "drnet", "resnet18", frames=FRAMES, noise=0.12)
    make_speed_sweep(runs_dir, "smoke-speed", {("rside", "resnet18"): (4.0, 90.0), ("drnet", "resnet18"): (30.0, 9.0)})
    make_report(
        ReportConfig(runs_dir=runs_dir, out_dir=tmp_path / "reports", html=True, n_boot=200), log=lambda _: None
    )
    return tmp_path / "reports" / "report.html"


@needs_chromium
def test_tables_and_images_render_in_headless_chromium(report_html, tmp_path):
    dom = chromium(tmp_path, "--dump-dom", report_html.as_uri())
    assert re.search(r'<body[^>]*data-images-rendered="2/2"', dom), "load handler did not run or images failed"
    assert dom.count('data-rendered="yes"') == 2 and 'data-rendered="no"' not in dom
    widths = [int(w) for w in re.findall(r'data-natural-width="(\d+)"', dom)]
    assert len(widths) == 2 and min(widths) > 100
    tags = re.findall(r"<table [^>]*>", dom)
    heights = {
        re.search(r'id="(\w+)"', t).group(1): re.search(r'data-rendered-height="(\d+)"', t).group(1) for t in tags
    }
    for table_id in ("claims", "table1", "paired", "table2", "table3", "provenance"):
        assert int(heights[table_id]) > 40, (table_id, heights)
    t1 = pd.read_csv(report_html.parent / "table1.csv")
    body = re.search(r'<table id="table1".*?<tbody>(.*?)</tbody>', dom, re.S).group(1)
    assert body.count("<tr>") == len(t1)
    assert "DRNet resnet18" in body and "smoke-drnet-resnet18-s0" in body


@needs_chromium
def test_a_broken_image_is_detected(report_html, tmp_path):
    """The check above can fail: an undecodable image is marked data-rendered="no"."""
    html = report_html.read_text()
    broken = re.sub(r'src="data:image/png;base64,[^"]{40}', 'src="data:image/png;base64,AAAAnotapng', html, count=1)
    path = report_html.with_name("broken.html")
    path.write_text(broken)
    dom = chromium(tmp_path, "--dump-dom", path.as_uri())
    assert 'data-images-rendered="1/2"' in dom and dom.count('data-rendered="no"') == 1


@needs_chromium
def test_screenshot_shows_a_rendered_page(report_html, tmp_path):
    shot = tmp_path / "shot.png"
    chromium(tmp_path, "--window-size=1200,1600", f"--screenshot={shot}", report_html.as_uri())
    img = np.asarray(Image.open(shot).convert("RGB"), dtype=float)
    assert img.shape[:2] == (1600, 1200)
    header = img[:40].reshape(-1, 3).mean(axis=0)
    assert header.max() < 100  # the dark page header is painted
    assert img.std() > 30  # text, tables and badges, not a blank page
