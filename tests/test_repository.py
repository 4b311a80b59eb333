"""The repository's weight: kept checkpoints are committed when work on a run stops and finished models once, so no commit adds more than ``ZIP_LIMIT_MB`` of zip files."""

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
ZIP_LIMIT_MB = 25


def zip_megabytes_per_commit(repository: Path) -> dict[str, float]:
    """:return: For every commit that adds or changes zip files, the megabytes of those files' new versions."""
    log = subprocess.run(
        ["git", "log", "--format=commit %H", "--raw", "--no-abbrev", "--no-renames", "--diff-filter=AM", "--", "*.zip"],
        cwd=repository,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    blobs: dict[str, list[str]] = {}
    commit = ""
    for line in log.splitlines():
        if line.startswith("commit "):
            commit = line.split()[1]
        elif line.startswith(":"):
            blobs.setdefault(commit, []).append(line.split()[3])
    objects = "\n".join(blob for commit_blobs in blobs.values() for blob in commit_blobs)
    sizes = subprocess.run(
        ["git", "cat-file", "--batch-check=%(objectname) %(objectsize)"],
        cwd=repository,
        input=objects + "\n",
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    size_of = {name: int(size) for name, size in (line.split() for line in sizes.splitlines() if line.strip())}
    return {commit: sum(size_of.get(blob, 0) for blob in commit_blobs) / 1e6 for commit, commit_blobs in blobs.items()}


def test_no_commit_adds_more_than_25_mb_of_zips():
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("not a git checkout (no history to weigh)")
    shallow = subprocess.run(["git", "rev-parse", "--is-shallow-repository"], cwd=ROOT, capture_output=True, text=True)
    if shallow.stdout.strip() == "true":
        pytest.skip("a shallow clone: its first commit holds every file at once")
    heavy = {commit[:10]: round(mb, 1) for commit, mb in zip_megabytes_per_commit(ROOT).items() if mb > ZIP_LIMIT_MB}
    assert not heavy, (
        f"These commits add more than {ZIP_LIMIT_MB} MB of zip files each: {heavy}. Commit a run's kept checkpoint when work "
        "on the run stops (not at every evaluation) and a finished model once; split or drop the rest (see "
        "benchmarks/results/README.md)."
    )


def test_the_weight_check_weighs_a_heavy_commit(tmp_path):
    if shutil.which("git") is None:
        pytest.skip("git is not installed")

    def git(*args: str) -> None:
        subprocess.run(
            ["git", "-c", "user.name=t", "-c", "user.email=t@t", *args], cwd=tmp_path, check=True, capture_output=True
        )

    git("init", "-q")
    (tmp_path / "small.zip").write_bytes(b"\0" * 1_000_000)
    git("add", ".")
    git("commit", "-qm", "small")
    (tmp_path / "small.zip").write_bytes(b"\1" * 2_000_000)
    (tmp_path / "big.zip").write_bytes(b"\0" * 26_000_000)
    (tmp_path / "notes.txt").write_bytes(b"\0" * 30_000_000)
    git("add", ".")
    git("commit", "-qm", "heavy")
    weights = sorted(zip_megabytes_per_commit(tmp_path).values())
    assert weights == [1.0, 28.0]
