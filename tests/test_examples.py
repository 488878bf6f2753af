"""The gallery examples run end to end (reduced size) and write their figure.

Each example runs as its own process, as a user would run it, with
``SKTRANSFER_EXAMPLE_SMALL=1`` (few epochs, seeds and depths) and
``SKTRANSFER_EXAMPLE_OUT`` pointing at a temporary directory. Its working
directory is another, empty one: an example must write only where it is told.
"""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("matplotlib")

EXAMPLES_DIR = Path(__file__).resolve().parent.parent / "examples"

#: examples covered here (plot_quickstart.py and plot_dask_grid_search.py
#: are tested elsewhere)
EXAMPLES = [
    "plot_freeze_depth.py",
    "plot_pipeline_calibration.py",
    "plot_image_transfer.py",
    "plot_learning_curves.py",
]

#: generous: in small mode each example takes under a minute on two cores
TIMEOUT_S = 300

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("name", EXAMPLES)
def test_example_runs_and_writes_its_figure(name, tmp_path, run_example):
    if not (EXAMPLES_DIR / name).exists():
        pytest.skip(f"{name} is not in this checkout")
    out = tmp_path / "out"
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    result = run_example(name, cwd=cwd, out=out, timeout=TIMEOUT_S)
    assert result.returncode == 0, (
        f"{name} exited with {result.returncode}\n--- stdout (tail) ---\n"
        f"{result.stdout[-3000:]}\n--- stderr (tail) ---\n{result.stderr[-3000:]}"
    )
    figures = sorted(out.glob("*.png"))
    assert figures, f"{name} wrote no PNG into SKTRANSFER_EXAMPLE_OUT"
    for figure in figures:
        data = figure.read_bytes()
        assert data.startswith(PNG_SIGNATURE), f"{figure.name} is not a PNG"
        assert len(data) > 10_000, f"{figure.name} is suspiciously small"
    assert not list(cwd.iterdir()), (
        f"{name} wrote into the working directory: {list(cwd.iterdir())}"
    )
