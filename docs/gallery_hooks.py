"""What the example gallery runs around each example (named in conf.py).

sphinx-gallery runs every example in this process, from the ``examples/``
folder. Around each one:

* before: ``SKTRANSFER_EXAMPLE_OUT`` points at the example's own folder,
  ``docs/_build/example_out/<example>/``, so its figure and models land
  there, never in the source tree, and the test suite can read back what
  each example wrote (``tests/conftest.py``, ``SKTRANSFER_EXAMPLES_FROM_DOCS``);
* after: the build fails if the example wrote anything into ``examples/``
  (it must write only where it is told).
"""

import os
from pathlib import Path

DOCS = Path(__file__).resolve().parent
EXAMPLES = DOCS.parent / "examples"
#: where every example's own output folder goes
EXAMPLE_OUT = DOCS / "_build" / "example_out"

_before = set()


def _contents():
    return {path for path in EXAMPLES.rglob("*") if "__pycache__" not in path.parts}


def example_out(gallery_conf, fname, when):
    """Give the example its output folder; check it wrote nothing else."""
    name = Path(fname).stem
    if when == "before":
        os.environ["SKTRANSFER_EXAMPLE_OUT"] = str(EXAMPLE_OUT / name)
        _before.clear()
        _before.update(_contents())
        return
    written = sorted(str(path.relative_to(EXAMPLES)) for path in _contents() - _before)
    if written:
        raise RuntimeError(
            f"{fname} wrote {written} into examples/: an example writes only to "
            "SKTRANSFER_EXAMPLE_OUT"
        )


class ExampleOrder:
    """The gallery's order: the quickstart first, then by file name."""

    FIRST = ("plot_quickstart.py",)

    def __init__(self, src_dir):
        self.src_dir = src_dir

    def __call__(self, filename):
        name = Path(filename).name
        return (name not in self.FIRST, name)
