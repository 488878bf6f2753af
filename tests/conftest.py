"""Shared fixtures: seeded real data and one small pretrained source network.

Everything here is built from ``sklearn.datasets.load_*`` (nothing is
downloaded) and kept small so that the whole suite stays fast on two cores.
The session-scoped ``pretrained_source`` is the network that the
TransferClassifier tests reuse: fit it once, never mutate it in a test.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from sklearn.datasets import load_breast_cancer, load_digits, load_iris

# quiet TensorFlow's C++ logging; set before any test module imports it
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

#: the digits classes the source network is pretrained on (the target task of
#: the transfer tests uses the other five)
SOURCE_CLASSES = (0, 1, 2, 3, 4)
TARGET_CLASSES = (5, 6, 7, 8, 9)


def pytest_collection_modifyitems(config, items):
    """Mark the tests a module lists in ``BACKEND_SUBSET`` with ``backends``.

    A module (``test_common.py``) names the parametrized cases, by a
    substring of their id, that the JAX job of ``.ci/run`` also runs
    (``-m backends``); a module marked as a whole uses ``pytestmark``.
    """
    for item in items:
        # doctest items have no module attribute
        subset = getattr(getattr(item, "module", None), "BACKEND_SUBSET", ())
        if any(name in item.name for name in subset):
            item.add_marker(pytest.mark.backends)


def _shuffled(X, y, seed):
    order = np.random.RandomState(seed).permutation(len(y))
    return X[order], y[order]


@pytest.fixture(scope="session")
def digits():
    """All of digits, pixels scaled to [0, 1], rows shuffled (seeded)."""
    X, y = load_digits(return_X_y=True)
    return _shuffled((X / 16.0).astype(np.float32), y, seed=0)


@pytest.fixture(scope="session")
def digits_source(digits):
    """Digits classes 0-4: the source task (about 900 rows, 64 features)."""
    X, y = digits
    mask = np.isin(y, SOURCE_CLASSES)
    return X[mask], y[mask]


@pytest.fixture(scope="session")
def digits_target(digits):
    """Digits classes 5-9: a target task the source network never saw."""
    X, y = digits
    mask = np.isin(y, TARGET_CLASSES)
    return X[mask], y[mask]


@pytest.fixture(scope="session")
def digits_images(digits):
    """Digits as image arrays of shape (n, 8, 8) (first 600 rows)."""
    X, y = digits
    return X[:600].reshape(-1, 8, 8), y[:600]


@pytest.fixture(scope="session")
def iris():
    """Iris, rows shuffled (seeded), features standardised."""
    X, y = load_iris(return_X_y=True)
    X = (X - X.mean(axis=0)) / X.std(axis=0)
    return _shuffled(X.astype(np.float32), y, seed=0)


@pytest.fixture(scope="session")
def breast_cancer():
    """A binary task: 300 rows of breast_cancer, standardised, seeded."""
    X, y = load_breast_cancer(return_X_y=True)
    X = (X - X.mean(axis=0)) / X.std(axis=0)
    X, y = _shuffled(X.astype(np.float32), y, seed=0)
    return X[:300], y[:300]


@pytest.fixture(scope="session")
def pretrained_source(digits_source):
    """A small PretrainedClassifier fitted on digits 0-4 (session-wide).

    Hidden layers (32, 16), 30 epochs at most with early stopping, seeded.
    Shared by many tests: treat it as read-only.
    """
    from sktransfer import PretrainedClassifier

    X, y = digits_source
    source = PretrainedClassifier(
        hidden_layer_sizes=(32, 16),
        learning_rate=3e-3,
        epochs=30,
        random_state=0,
    )
    return source.fit(X, y)


@pytest.fixture(scope="session")
def pretrained_file(pretrained_source, tmp_path_factory):
    """``pretrained_source.save(...)`` written once: a ``.keras`` file path.

    The file is a regular Keras archive (``keras.saving.load_model`` reads
    the network) that ``sktransfer.load`` also restores as an estimator.
    """
    path = tmp_path_factory.mktemp("pretrained") / "source.keras"
    pretrained_source.save(path)
    return str(path)


@pytest.fixture(scope="session")
def pretrained_model_file(pretrained_source, tmp_path_factory):
    """The bare Keras network of ``pretrained_source`` saved with
    ``Model.save`` (no estimator metadata): what a plain Keras user has."""
    path = tmp_path_factory.mktemp("pretrained_model") / "source_model.keras"
    pretrained_source.model_.save(path)
    return str(path)


#: after `make -C docs html`, the documentation folder (``docs``): the
#: example tests then read what each example printed and wrote from the
#: gallery build, which ran it, instead of running it again (.ci/run)
FROM_DOCS = "SKTRANSFER_EXAMPLES_FROM_DOCS"


def gallery_stdout(rst):
    """What an example printed, from the page sphinx-gallery made of it.

    sphinx-gallery puts each code block's output in a literal block under
    ``.. rst-class:: sphx-glr-script-out``, indented by four spaces.
    """
    lines = rst.splitlines()
    blocks = []
    for i, line in enumerate(lines):
        if line.strip() != ".. rst-class:: sphx-glr-script-out":
            continue
        j = i + 1
        while not lines[j].strip().startswith(".. code-block::"):
            j += 1
        block = []
        for line in lines[j + 1 :]:
            if line.strip() and not line.startswith("    "):
                break
            block.append(line[4:])
        blocks.append("\n".join(block).strip("\n"))
    return "\n".join(blocks) + "\n"


def example_from_docs(docs, script, out):
    """An example's run in the gallery build, as a ``CompletedProcess``.

    Fails unless the build ran this very script (its checksum). The files
    the example wrote are copied to ``out`` and the paths it printed are
    changed to match, as if it had written there.
    """
    built = Path(docs) / "auto_examples"
    checksum = built / f"{script.name}.md5"
    if not checksum.exists():
        pytest.fail(f"{FROM_DOCS}: {checksum} missing: run `make -C docs html`")
    if checksum.read_text().strip() != hashlib.md5(script.read_bytes()).hexdigest():
        pytest.fail(f"{FROM_DOCS}: {script.name} changed since the docs were built")
    stdout = gallery_stdout((built / f"{script.stem}.rst").read_text())
    written = Path(docs).resolve() / "_build" / "example_out" / script.stem
    shutil.copytree(written, out, dirs_exist_ok=True)
    stdout = stdout.replace(str(written), str(out))
    return subprocess.CompletedProcess([sys.executable, str(script)], 0, stdout, "")


@pytest.fixture
def run_example(tmp_path):
    """Run ``examples/<name>`` in small mode as its own process, as a user would.

    Returns a function ``run(name, *, cwd=None, out=None, timeout=300)``
    giving the ``subprocess.CompletedProcess``; figures go to ``out``
    (default ``tmp_path``) through ``SKTRANSFER_EXAMPLE_OUT``. With
    ``SKTRANSFER_EXAMPLES_FROM_DOCS`` set, the run is the gallery build's
    (``example_from_docs``).
    """
    examples = Path(__file__).resolve().parents[1] / "examples"

    def run(name, *, cwd=None, out=None, timeout=300):
        if os.environ.get(FROM_DOCS):
            return example_from_docs(
                os.environ[FROM_DOCS], examples / name, out or tmp_path
            )
        env = {
            **os.environ,
            "TF_CPP_MIN_LOG_LEVEL": "3",
            "SKTRANSFER_EXAMPLE_SMALL": "1",
            "SKTRANSFER_EXAMPLE_OUT": str(out or tmp_path),
            "MPLBACKEND": "Agg",
        }
        return subprocess.run(
            [sys.executable, str(examples / name)],
            cwd=cwd or tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    return run
