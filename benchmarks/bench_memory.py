"""Resident memory across many consecutive fits in one process.

Fits ``TransferClassifier`` ``N_FITS`` times in a row (a small MLP source
pretrained on digits 0-4, the target task digits 5-9, a few epochs each) and
prints the resident set size after every fit, then the growth between fit
``WARMUP`` and the last one. A leak of traced functions or optimizer
variables (an optimizer built lazily inside the first traced step
leaves traced functions behind after every fit) shows as steady growth per fit; the
target is at most ``TARGET_MIB`` MiB between the 10th and the 30th fit.

Run: ``python benchmarks/bench_memory.py [n_fits]``. Uses ``psutil`` when it
is installed, otherwise ``/proc/self/status`` (Linux).
"""

from __future__ import annotations

import gc
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402
from _common import load_line  # noqa: E402
from sklearn.datasets import load_digits  # noqa: E402

from sktransfer import PretrainedClassifier, TransferClassifier  # noqa: E402

N_FITS = 30
WARMUP = 10
TARGET_MIB = 60.0


def rss_mib():
    """Resident set size of this process in MiB."""
    try:
        import psutil
    except ImportError:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024.0  # kB
        raise RuntimeError("no psutil and no VmRSS in /proc/self/status") from None
    return psutil.Process().memory_info().rss / 2**20


def digits_tasks():
    X, y = load_digits(return_X_y=True)
    X = (X / 16.0).astype(np.float32)
    source, target = y < 5, y >= 5
    return (X[source], y[source]), (X[target], y[target])


def run(n_fits=N_FITS, warmup=WARMUP, *, epochs=3, verbose=True):
    """Fit ``n_fits`` times; returns the list of RSS readings (MiB)."""
    (Xs, ys), (Xt, yt) = digits_tasks()
    source = PretrainedClassifier(
        hidden_layer_sizes=(32, 16), epochs=5, random_state=0
    ).fit(Xs, ys)
    readings = []
    if verbose:
        print(load_line("at start"))
    start = time.perf_counter()
    for i in range(n_fits):
        clf = TransferClassifier(
            source,
            freeze=1,
            head_hidden_layer_sizes=(16,),
            epochs=epochs,
            random_state=i,
        ).fit(Xt, yt)
        clf.predict_proba(Xt[:10])
        del clf
        gc.collect()
        readings.append(rss_mib())
        if verbose:
            print(f"fit {i + 1:3d}: rss {readings[-1]:8.1f} MiB", flush=True)
    if verbose:
        elapsed = time.perf_counter() - start
        growth = readings[-1] - readings[warmup - 1]
        per_fit = growth / max(1, n_fits - warmup)
        print(
            f"\n{n_fits} fits in {elapsed:.1f} s; growth fit {warmup} -> {n_fits}: "
            f"{growth:.1f} MiB ({per_fit:.2f} MiB/fit; target <= {TARGET_MIB:.0f} "
            f"MiB) -> {'OK' if growth <= TARGET_MIB else 'OVER TARGET'}"
        )
        print(load_line("at end"))
    return readings


if __name__ == "__main__":
    run(int(sys.argv[1]) if len(sys.argv) > 1 else N_FITS)
