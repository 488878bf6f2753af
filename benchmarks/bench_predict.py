"""Prediction latency: PretrainedClassifier vs Keras, scikeras and MLPClassifier.

One network (the default MLP, hidden layers (128, 64), trained on digits) is
served four ways, measured side by side in the same process:

* ``PretrainedClassifier.predict`` (a traced inference function);
* plain Keras at its fastest, the like-for-like peer: the very same network
  behind ``tf.function(lambda x: network(x, training=False),
  reduce_retracing=True)``, then ``classes[argmax]`` (what ours does, minus
  the estimator's input validation); ``Model.predict`` would be the slow
  path scikeras takes;
* scikeras' ``KerasClassifier.predict`` wrapping the very same trained
  Keras network (``Model.predict`` per call: scikeras has no other path);
* ``MLPClassifier(hidden_layer_sizes=(128, 64)).predict`` (NumPy; trained
  for 50 iterations only, which does not change its latency).

For one-row calls it prints the median latency over many calls (targets:
ours at least 20x faster than scikeras, within 3x of MLPClassifier) and,
for reference, the same for a 1,000-row batch. A repeat measures each side's
median latency over ``--calls`` calls (after 5 untimed calls); the sides
take turns in an order that alternates from repeat to repeat
(``_common.py``), and the figures are medians over ``--repeats`` repeats
(ratios: medians of per-repeat ratios), printed beside the load average.

On JAX and PyTorch (``KERAS_BACKEND=jax|torch``, or ``--backend``) there is
no ``tf.function`` and scikeras would load TensorFlow: the Keras peer is then
``Model.predict_on_batch`` (Keras' own fast path for one batch) and the
scikeras side is left out.

Run: ``python benchmarks/bench_predict.py [--calls 300] [--repeats 5]
[--backend jax]``.
"""

from __future__ import annotations

import argparse
import os
import time
import warnings

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from _common import backend_from_argv  # noqa: E402

BACKEND = backend_from_argv()  # before Keras is imported

import numpy as np  # noqa: E402
from _common import alternate, load_line, markdown_table  # noqa: E402
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
    parser.add_argument("--backend", default=None, help="Keras backend")
    args = parser.parse_args(argv)
    warnings.filterwarnings("ignore", category=ConvergenceWarning)

    X, y = load_digits(return_X_y=True)
    X = (X / 16.0).astype(np.float32)

    ours = PretrainedClassifier(random_state=0, epochs=20).fit(X, y)

    network = ours.model_
    mlp = MLPClassifier(hidden_layer_sizes=(128, 64), random_state=0, max_iter=50)
    mlp.fit(X, y)
    sides = {"ours": ours.predict, "MLP": mlp.predict}
    if BACKEND == "tensorflow":
        import tensorflow as tf
        from scikeras.wrappers import KerasClassifier

        def same_network():  # scikeras calls this in initialize(): no retraining
            return network

        wrapped = KerasClassifier(
            model=same_network, loss="sparse_categorical_crossentropy", verbose=0
        )
        wrapped.initialize(X, y)
        assert wrapped.model_ is network
        traced = tf.function(
            lambda x: network(x, training=False), reduce_retracing=True
        )
        sides["keras"] = lambda data: ours.classes_[
            np.argmax(traced(data).numpy(), axis=1)
        ]
        sides["scikeras"] = wrapped.predict
        keras_label = "keras traced"
    else:
        sides["keras"] = lambda data: ours.classes_[
            np.argmax(np.asarray(network.predict_on_batch(data)), axis=1)
        ]
        keras_label = "keras predict_on_batch"

    # the same network gives the same answers through every path
    for name, predict in sides.items():
        if name != "MLP":
            np.testing.assert_array_equal(ours.predict(X), predict(X))

    one_row = X[:1]
    batch = X[:1000]
    scikeras_calls = max(20, args.calls // 10)
    print(
        f"backend {BACKEND}; predict latency, median of {args.repeats} "
        f"alternating repeats x median of {args.calls} calls "
        f"(scikeras: {scikeras_calls} calls)"
    )
    print(load_line("at start"))
    rows, summary = [], {}
    for label, data in (("1 row", one_row), ("1000 rows", batch)):
        runs = alternate(
            {
                name: (
                    lambda d=data, f=predict, name=name: latency(
                        f, d, scikeras_calls if name == "scikeras" else args.calls
                    )
                )
                for name, predict in sides.items()
            },
            args.repeats,
            warmup=0,  # latency() warms up itself
            measure=float,
        )
        has_scikeras = "scikeras" in sides
        summary[label] = (
            runs.ratio("scikeras", "ours") if has_scikeras else float("nan"),
            runs.ratio("ours", "MLP"),
            runs.ratio("ours", "keras"),
        )
        rows.append(
            [
                label,
                f"{1e3 * runs.median('ours'):.3f}",
                f"{1e3 * runs.median('keras'):.3f}",
                f"{1e3 * runs.median('scikeras'):.3f}" if has_scikeras else "n/a",
                f"{1e3 * runs.median('MLP'):.3f}",
                f"{summary[label][0]:.1f}x" if has_scikeras else "n/a",
                f"{summary[label][1]:.2f}x",
                f"{summary[label][2]:.2f}x",
                f"{runs.load['timed']:.1f}-{runs.load['end']:.1f}",
            ]
        )
    print()
    print(
        markdown_table(
            [
                "input",
                "ours ms",
                f"{keras_label} ms",
                "scikeras ms",
                "MLP ms",
                "scikeras / ours",
                "ours / MLP",
                f"ours / {keras_label}",
                "load avg",
            ],
            rows,
        )
    )
    speedup, vs_mlp, vs_keras = summary["1 row"]
    print(
        f"\none row on {BACKEND}: {vs_mlp:.2f}x MLPClassifier's time (target <= "
        f"3x: {'ok' if vs_mlp <= 3 else 'MISS'}), {vs_keras:.2f}x the time of the "
        f"same network through {keras_label}"
        + (
            f"; {speedup:.1f}x faster than scikeras (target >= 20x: "
            f"{'ok' if speedup >= 20 else 'MISS'})"
            if "scikeras" in sides
            else ""
        )
    )
    print(load_line("at end"))


if __name__ == "__main__":
    main()
