"""GPU vs CPU on JAX and PyTorch: a MobileNetV3Small base, ours vs plain Keras.

For a machine with a GPU, JAX and PyTorch and no TensorFlow. Each
(backend, device) pair runs in its own process (Keras fixes its backend at
import; ``CUDA_VISIBLE_DEVICES=""`` and ``JAX_PLATFORMS=cpu`` pin the CPU
runs), and the parent prints one table. Nothing is downloaded: the base is
``keras.applications.MobileNetV3Small(weights=None)``, calibrated by one
epoch of plain-Keras training on a source task (an untrained network's
BatchNormalization statistics give near-constant features); the data are
digits upsampled to ``--size`` x ``--size`` RGB images with seeded noise
(several thousand rows by default). Sources are classes 0-4, targets 5-9.

Measured per (backend, device), seconds (medians where repeated):

* ``cache``: ``TransferClassifier(freeze="all", memory=...)`` fit twice
  with the same parameters: the first computes and stores the frozen
  base's features, the second reads them (the cache's speed-up), against
  plain Keras training the same linear head on the frozen base with
  ``Model.fit`` over the images for the same epochs;
* ``fine-tune``: ``TransferClassifier(freeze=-k)`` (a probe, then the last
  k weighted layers and the head trained together) against plain Keras
  with the same layers trainable and ``Model.fit`` for the same epochs;
* ``one row``: median ``predict`` latency of one image, ours against
  ``Model.predict_on_batch`` on the same network.

Run: ``python benchmarks/bench_gpu.py`` (about 5 minutes on a recent GPU;
the CPU runs dominate), ``--small`` for a smoke test on any machine (CPU),
``--backends jax`` to skip one, ``--devices cpu`` to skip the GPU.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

from _common import load_line, markdown_table

SOURCE, TARGET = (0, 1, 2, 3, 4), (5, 6, 7, 8, 9)


def images(n, size, seed):
    """Digits as ``size`` x ``size`` x 3 float32 images, rows drawn with noise."""
    import numpy as np
    from sklearn.datasets import load_digits

    X, y = load_digits(return_X_y=True)
    rng = np.random.default_rng(seed)
    rows = rng.integers(0, len(y), n)
    small = (X[rows] / 16.0).reshape(-1, 8, 8)
    idx = np.arange(size) * 8 // size  # nearest-neighbour upsampling
    big = small[:, idx][:, :, idx]
    out = np.repeat(big[..., None], 3, axis=-1)
    out = out + rng.normal(0.0, 0.1, out.shape)
    return out.astype("float32"), y[rows]


def source_model(size, X, y, seed):
    """MobileNetV3Small (no weights) + a 5-way head, one epoch on the source."""
    import keras

    base = keras.applications.MobileNetV3Small(
        input_shape=(size, size, 3),
        include_top=False,
        weights=None,
        pooling="avg",
        include_preprocessing=False,
    )
    # one flat graph (the head on the base's own output tensor)
    outputs = keras.layers.Dense(5, activation="softmax")(base.output)
    model = keras.Model(base.inputs, outputs)
    model.compile("adam", "sparse_categorical_crossentropy")
    model.fit(X, y, epochs=1, batch_size=32, verbose=0)
    return model


def median_latency(function, x, calls):
    import numpy as np

    for _ in range(5):
        function(x)
    samples = []
    for _ in range(calls):
        start = time.perf_counter()
        function(x)
        samples.append(time.perf_counter() - start)
    return float(np.median(samples))


def keras_transfer(source, k, epochs, X, y):
    """Plain Keras: the source's base, its last k weighted layers trainable.

    As ``freeze=-k`` counts them: layers with weights from the input, a
    BatchNormalization going with the layer before it; a new 5-way head.
    """
    import keras

    copy = keras.models.clone_model(source)
    copy.set_weights(source.get_weights())
    groups = []
    for layer in copy.layers[:-1]:  # all but the head
        if not layer.weights:
            continue
        if isinstance(layer, keras.layers.BatchNormalization) and groups:
            groups[-1].append(layer)
        else:
            groups.append([layer])
    for index, group in enumerate(groups):
        for layer in group:
            layer.trainable = index >= len(groups) - k
    outputs = keras.layers.Dense(5, activation="softmax")(copy.layers[-2].output)
    model = keras.Model(copy.inputs, outputs)
    model.compile("adam", "sparse_categorical_crossentropy")
    model.fit(X, y - 5, epochs=epochs, batch_size=32, verbose=0)
    return model


def worker(args):
    """One (backend, device): every measurement, printed as one JSON line."""
    import keras
    import numpy as np

    from sktransfer import TransferClassifier

    X, y = images(args.rows, args.size, seed=0)
    src = np.isin(y, SOURCE)
    Xs, ys, Xt, yt = X[src], y[src], X[~src], y[~src]
    out = {"backend": keras.backend.backend(), "rows": int(len(y))}
    start = time.perf_counter()
    source = source_model(args.size, Xs, ys, seed=0)
    out["pretrain"] = time.perf_counter() - start
    epochs, k = args.epochs, args.unfrozen
    with tempfile.TemporaryDirectory() as memory:
        frozen = dict(freeze="all", epochs=epochs, early_stopping=False)
        timed = []
        for _ in range(2):
            start = time.perf_counter()
            clf = TransferClassifier(
                pretrained=source, memory=memory, random_state=0, **frozen
            ).fit(Xt, yt)
            timed.append(time.perf_counter() - start)
        out["cache cold"], out["cache warm"] = timed
        out["cache accuracy"] = float(clf.score(Xt, yt))
    start = time.perf_counter()
    tuned = TransferClassifier(
        pretrained=source,
        freeze=-k,
        epochs=epochs,
        early_stopping=False,
        random_state=0,
    ).fit(Xt, yt)
    out["fine-tune ours"] = time.perf_counter() - start
    out["fine-tune accuracy"] = float(tuned.score(Xt, yt))
    out["one row ours ms"] = 1e3 * median_latency(tuned.predict, Xt[:1], args.calls)
    # Keras' own clone_model (the plain side) imports TensorFlow if installed
    out["tensorflow loaded"] = "tensorflow" in sys.modules
    start = time.perf_counter()
    keras_transfer(source, 0, epochs, Xt, yt)
    out["keras frozen head"] = time.perf_counter() - start
    start = time.perf_counter()
    plain = keras_transfer(source, k, epochs, Xt, yt)
    out["fine-tune keras"] = time.perf_counter() - start
    out["one row keras ms"] = 1e3 * median_latency(
        plain.predict_on_batch, Xt[:1], args.calls
    )
    print(json.dumps(out), flush=True)


def run(backend, device, args):
    env = {**os.environ, "KERAS_BACKEND": backend, "TF_CPP_MIN_LOG_LEVEL": "3"}
    if device == "cpu":
        env.update(CUDA_VISIBLE_DEVICES="", JAX_PLATFORMS="cpu")
    cmd = [sys.executable, __file__, "--worker", *args.passthrough]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        return {"error": done.stderr.strip().splitlines()[-3:]}
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", action="store_true", help="tiny smoke test")
    parser.add_argument("--rows", type=int, default=4000)
    parser.add_argument("--size", type=int, default=96)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--unfrozen", type=int, default=4, help="k in freeze=-k")
    parser.add_argument("--calls", type=int, default=100)
    parser.add_argument("--backends", default="jax,torch")
    parser.add_argument("--devices", default="gpu,cpu")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.small:
        args.rows, args.size, args.epochs, args.calls = 120, 32, 1, 10
    if args.worker:
        return worker(args)
    args.passthrough = [
        f"--rows={args.rows}",
        f"--size={args.size}",
        f"--epochs={args.epochs}",
        f"--unfrozen={args.unfrozen}",
        f"--calls={args.calls}",
    ]
    print(
        f"MobileNetV3Small (weights=None), {args.rows} rows of {args.size}x"
        f"{args.size}x3, {args.epochs} epochs, freeze=-{args.unfrozen}"
    )
    print(load_line("at start"))
    results = {}
    for backend in args.backends.split(","):
        for device in args.devices.split(","):
            start = time.perf_counter()
            results[backend, device] = out = run(backend, device, args)
            print(
                f"{backend}/{device}: {time.perf_counter() - start:.0f} s", flush=True
            )
            if "error" in out:
                print(f"  failed: {out['error']}")
    rows = []
    for (backend, device), out in results.items():
        if "error" in out:
            continue
        rows.append(
            [
                f"{backend}/{device}",
                f"{out['cache cold']:.1f}",
                f"{out['cache warm']:.1f}",
                f"{out['cache cold'] / out['cache warm']:.1f}x",
                f"{out['keras frozen head']:.1f}",
                f"{out['fine-tune ours']:.1f}",
                f"{out['fine-tune keras']:.1f}",
                f"{out['fine-tune ours'] / out['fine-tune keras']:.2f}x",
                f"{out['one row ours ms']:.2f}",
                f"{out['one row keras ms']:.2f}",
                f"{out['fine-tune accuracy']:.2f}",
                str(out["tensorflow loaded"]),
            ]
        )
    print()
    print(
        markdown_table(
            [
                "backend/device",
                "cache cold s",
                "cache warm s",
                "cache speed-up",
                "keras frozen head s",
                "fine-tune ours s",
                "fine-tune keras s",
                "ours / keras",
                "1 row ours ms",
                "1 row keras ms",
                "fine-tune acc",
                "TF loaded by ours",
            ],
            rows,
        )
    )
    for backend in args.backends.split(","):
        gpu, cpu = results.get((backend, "gpu")), results.get((backend, "cpu"))
        if gpu and cpu and "error" not in gpu and "error" not in cpu:
            print(
                f"{backend}: GPU/CPU time, fine-tune ours "
                f"{gpu['fine-tune ours'] / cpu['fine-tune ours']:.2f}x, cache cold "
                f"{gpu['cache cold'] / cpu['cache cold']:.2f}x, one row "
                f"{gpu['one row ours ms'] / cpu['one row ours ms']:.2f}x"
            )
    print(load_line("at end"))
    return results


if __name__ == "__main__":
    main()
