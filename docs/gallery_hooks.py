"""What the example gallery runs around each example (named in conf.py).

Each example writes its figure and models to its own folder,
``docs/_build/example_out/<example>/``, as ``SKTRANSFER_EXAMPLE_OUT`` tells
it to: never into the source tree, and one folder per example, so the test
suite can read back what each example wrote (``tests/conftest.py``,
``SKTRANSFER_EXAMPLES_FROM_DOCS``).
"""

import os
from pathlib import Path

#: where every example's own output folder goes
EXAMPLE_OUT = Path(__file__).resolve().parent / "_build" / "example_out"


def example_out(gallery_conf, fname):
    """Point ``SKTRANSFER_EXAMPLE_OUT`` at this example's own folder."""
    os.environ["SKTRANSFER_EXAMPLE_OUT"] = str(EXAMPLE_OUT / Path(fname).stem)
