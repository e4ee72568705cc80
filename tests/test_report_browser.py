"""The HTML report opened in headless Chromium: images load, the table renders, no console errors.

Needs Debian's `chromium` (scripts/test.sh installs it when run as root); skipped otherwise. The screenshot
is kept as a test artifact in tests/artifacts/report.png (git-ignored).
"""

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from typer.testing import CliRunner

from heattrack.cli import app

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
ARTIFACTS = Path(__file__).parent / "artifacts"
pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(CHROMIUM is None, reason="no Chromium on PATH (scripts/test.sh installs it as root)")]

WRAPPER = """<!doctype html><html><body>
<iframe id="f" src="{src}" width="1200" height="3000"></iframe><pre id="result">pending</pre>
<script>
document.getElementById('f').onload = () => {{
  const d = document.getElementById('f').contentDocument;
  const imgs = [...d.images];
  const broken = imgs.filter(i => !(i.complete && i.naturalWidth > 0)).map(i => i.getAttribute('src'));
  document.getElementById('result').textContent = JSON.stringify(
    {{n_images: imgs.length, broken: broken, rows: d.querySelectorAll('tbody tr').length,
      title: d.title}});
}};
</script></body></html>"""


def _chromium(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             "--disable-dev-shm-usage", f"--user-data-dir={tmp_path / 'profile'}", "--enable-logging=stderr",
             "--v=0"]
    return subprocess.run([CHROMIUM, *flags, *args], capture_output=True, text=True, timeout=180)


def test_report_renders_in_headless_chromium(small_scene, tmp_path):
    out = tmp_path / "out"
    res = CliRunner().invoke(app, ["run", "--input", str(small_scene), "--pipes", str(small_scene / "pipes.geojson"),
                                   "--out", str(out), "--tile-km", "1.5", "--n-workers", "2"])
    assert res.exit_code == 0, res.output
    page = out / "report" / "index.html"
    wrapper = tmp_path / "check.html"
    wrapper.write_text(WRAPPER.format(src=page.as_uri()))
    proc = _chromium(tmp_path, "--allow-file-access-from-files", "--virtual-time-budget=15000", "--dump-dom",
                     wrapper.as_uri())
    m = re.search(r'<pre id="result">(.*?)</pre>', proc.stdout, re.S)
    assert m, proc.stdout[-2000:] + proc.stderr[-2000:]
    result = json.loads(m.group(1).replace("&quot;", '"'))
    assert result["title"] == "heattrack report"
    assert result["n_images"] == 4 and result["broken"] == []  # risk map, detectability map, histograms, LST
    assert result["rows"] == 20  # the top-20 segment table
    console_errors = [ln for ln in proc.stderr.splitlines() if "CONSOLE" in ln and ("rror" in ln or "Uncaught" in ln)]
    assert console_errors == []
    ARTIFACTS.mkdir(exist_ok=True)
    shot = ARTIFACTS / "report.png"
    _chromium(tmp_path, "--window-size=1200,2600", "--hide-scrollbars", f"--screenshot={shot}", page.as_uri())
    assert shot.exists() and shot.stat().st_size > 50_000
