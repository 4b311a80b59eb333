"""The documentation site builds with Sphinx, warnings as errors, and its results page matches the committed results."""

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
pytest.importorskip("sphinx", reason="the docs need the docs extra: pip install 'sb3-iql[docs]'")
pytest.importorskip("myst_parser", reason="the docs need the docs extra: pip install 'sb3-iql[docs]'")


def test_the_docs_build_without_warnings(tmp_path):
    built = subprocess.run(
        [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-q", "-b", "html", str(ROOT / "docs"), str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert built.returncode == 0, built.stderr[-5000:]
    iql_page = (tmp_path / "modules" / "iql.html").read_text()
    for section in ("Notes", "Can I use?", "Example", "Results", "Parameters"):
        assert f">{section}<" in iql_page, section
    assert "learn_offline_seeds" in iql_page
    assert (tmp_path / "results.html").exists() and (tmp_path / "guide" / "zoo.html").exists()


def test_the_results_page_is_generated_from_the_committed_results():
    checked = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "results_page.py"), "--check"], capture_output=True, text=True
    )
    assert checked.returncode == 0, checked.stderr + checked.stdout


def test_the_results_page_opens_with_table2_and_shows_every_results_folder_once():
    page = (ROOT / "docs" / "results.md").read_text()
    sections = [line for line in page.splitlines() if line.startswith("## ")]
    assert sections[0] == "## Table 2" and sections[-1] == "## Index of every run"
    folders = sorted(path.name for path in (ROOT / "benchmarks" / "results").iterdir() if path.is_dir())
    shown = sorted(line[len("### `") : -1] for line in page.splitlines() if line.startswith("### `"))
    assert shown == folders
