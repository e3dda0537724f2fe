"""The HTML report rendered by headless Chromium (Debian's `chromium`): its charts are drawn, in
the colours of the statuses, from the one file alone."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from batchrecall.cli.main import main
from batchrecall.results.report_html import STATUS_COLOURS
from tests.png import colour_counts

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
SAMPLES = Path(__file__).resolve().parent.parent / "samples"
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(CHROMIUM is None, reason="needs chromium (apt-get install chromium)"),
]
# A chart's bars cover thousands of pixels; the legend's and tiles' swatches a few hundred.
_DRAWN = 2_000


def _rgb(colour: str) -> tuple[int, int, int]:
    return (int(colour[1:3], 16), int(colour[3:5], 16), int(colour[5:7], 16))


def _screenshot(page: Path, tmp_path: Path) -> Path:
    assert CHROMIUM is not None
    shot = tmp_path / (page.stem + ".png")
    subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
         "--force-device-scale-factor=1", "--window-size=1000,1500",
         f"--screenshot={shot}", page.as_uri()],
        capture_output=True,
        timeout=120,
        check=True,
    )  # fmt: skip
    return shot


def test_charts_are_drawn_in_the_status_colours(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    for name in ("demo.jsonl", "demo.scenario.json"):
        shutil.copy(SAMPLES / name, tmp_path / name)
    main(["run", "demo.jsonl", "--emulate", "--emulate-scenario", "demo.scenario.json",
          "--yes", "--no-progress"])  # fmt: skip
    page = tmp_path / "report.html"
    main(["report", "demo.results.jsonl", "--html", str(page)])
    # The same page without its charts: what the swatches alone paint.
    bare = tmp_path / "bare.html"
    bare.write_text(re.sub(r'<svg class="chart".*?</svg>', "", page.read_text(), flags=re.S))
    drawn = colour_counts(_screenshot(page, tmp_path))
    swatches = colour_counts(_screenshot(bare, tmp_path))
    for status in ("ok", "not_found", "failed"):  # the demo's items end in these
        colour = _rgb(STATUS_COLOURS[status])
        assert drawn[colour] >= _DRAWN, f"{status} is not charted"
        assert swatches[colour] < _DRAWN, f"{status}: the test cannot tell charts from swatches"
    # Each bar is as long as its count: ok (13 items) paints more than failed (3).
    assert drawn[_rgb(STATUS_COLOURS["ok"])] > drawn[_rgb(STATUS_COLOURS["failed"])]
