"""Prediction latency: PretrainedClassifier vs scikeras and MLPClassifier.

One network (the default MLP, hidden layers (128, 64), trained on digits) is
served three ways, measured side by side in the same process:

* ``PretrainedClassifier.predict`` (a traced inference function);
* scikeras' ``KerasClassifier.predict`` wrapping the very same trained
  Keras network (``Model.predict`` per call);
* ``MLPClassifier(hidden_layer_sizes=(128, 64)).predict`` (NumPy).

For one-row calls it prints the median latency over many calls (targets:
ours at least 20x faster than scikeras, within 3x of MLPClassifier) and,
for reference, the same for a 1,000-row batch.

Run: ``python benchmarks/bench_predict.py [--calls 300] [--repeats 5]``.
"""

from __future__ import annotations

import argparse
import os
import time
import warnings

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402
from sklearn.datasets import load_digits  # noqa: E402
from sklearn.exceptions import ConvergenceWarning  # noqa: E402
from sklearn.neural_network import MLPClassifier  # noqa: E402

from sktransfer import PretrainedClassifier  # noqa: E402


def latency(function, X, calls):
    """Median seconds per call of ``function(X)`` over ``calls`` calls."""
    for _ in range(5):  # warm up (tracing, caches)
        function(X)
    samples = np.empty(calls)
    for i in range(calls):
        start = time.perf_counter()
        function(X)
        samples[i] = time.perf_counter() - start
    return float(np.median(samples))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=300, help="calls per repeat")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)
    warnings.filterwarnings("ignore", category=ConvergenceWarning)

    X, y = load_digits(return_X_y=True)
    X = (X / 16.0).astype(np.float32)

    ours = PretrainedClassifier(random_state=0, epochs=20).fit(X, y)

    from scikeras.wrappers import KerasClassifier

    network = ours.model_

    def same_network():  # scikeras calls this in initialize(): no retraining
        return network

    wrapped = KerasClassifier(
        model=same_network, loss="sparse_categorical_crossentropy", verbose=0
    )
    wrapped.initialize(X, y)
    assert wrapped.model_ is network
    mlp = MLPClassifier(hidden_layer_sizes=(128, 64), random_state=0, max_iter=50)
    mlp.fit(X, y)

    # the same network gives the same answers through both wrappers
    np.testing.assert_array_equal(ours.predict(X), wrapped.predict(X))

    one_row = X[:1]
    batch = X[:1000]
    rows = []
    for label, data in (("1 row", one_row), ("1000 rows", batch)):
        medians = {"ours": [], "scikeras": [], "mlp": []}
        for _ in range(args.repeats):  # interleaved: same machine load
            medians["ours"].append(latency(ours.predict, data, args.calls))
            medians["scikeras"].append(
                latency(wrapped.predict, data, max(20, args.calls // 10))
            )
            medians["mlp"].append(latency(mlp.predict, data, args.calls))
        rows.append((label, {k: float(np.median(v)) for k, v in medians.items()}))

    print(
        f"predict latency, median of {args.repeats} repeats x median of "
        f"{args.calls} calls (scikeras: {max(20, args.calls // 10)} calls)"
    )
    print(
        f"{'input':<11}{'ours ms':>10}{'scikeras ms':>13}{'MLP ms':>10}"
        f"{'scikeras/ours':>15}{'ours/MLP':>10}"
    )
    for label, m in rows:
        print(
            f"{label:<11}{1e3 * m['ours']:>10.3f}{1e3 * m['scikeras']:>13.3f}"
            f"{1e3 * m['mlp']:>10.3f}{m['scikeras'] / m['ours']:>15.1f}"
            f"{m['ours'] / m['mlp']:>10.2f}"
        )
    m = rows[0][1]
    speedup, vs_mlp = m["scikeras"] / m["ours"], m["ours"] / m["mlp"]
    print(
        f"\none row: ours is {speedup:.1f}x faster than scikeras (target >= 20x: "
        f"{'ok' if speedup >= 20 else 'MISS'}), {vs_mlp:.2f}x MLPClassifier's "
        f"time (target <= 3x: {'ok' if vs_mlp <= 3 else 'MISS'})"
    )


if __name__ == "__main__":
    main()
