"""Exploration behind the recipe's defaults, on the DEV tasks and seeds.

Every configuration is scored on the test rows of dev tasks (``_tasks.DEV``)
and dev seeds (100+), never on the panel's seeds; the panel
(``bench_transfer.py``) then reports the chosen defaults.

Parts: ``lp`` (cuts x fixed C), ``ft`` (fine-tuning: cut x layers x learning
rate x steps), ``scratch`` (budgets), ``probe`` (C by CV vs fixed, block
weighting), ``gate`` (LP vs LP-FT with a CV-chosen step count, forced step
counts, frozen class scores). ``lp`` and ``ft`` were run with an earlier
probe (C search standardized on all rows, no scale floor, 11 C values).

Run: ``python benchmarks/explore_recipe.py [--tasks gt4,prime,mod3,...]
[--seeds 100,101,102,103,104] [--part probe,gate]``; prints mean ± std per
configuration and task, and writes a JSON of every score with ``--out``.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import _recipe_proto as rp  # noqa: E402
import _tasks as T  # noqa: E402
import numpy as np  # noqa: E402


def encode(d):
    classes = np.array(sorted(set(d.y_target.tolist())), dtype=object)
    return np.searchsorted(classes, d.y_target), np.searchsorted(classes, d.y_test)


def accuracy(model, X, y):
    return float((rp.extract(model, X).argmax(1) == y).mean())


LP_CUTS = [
    ("penultimate", False),
    ("logits", False),
    ("probs", False),
    ("scores", True),
    ("hidden", True),
    ("hidden+logits", True),
    ("multi", False),
    ("multi", True),
    ("multi+input", True),
    ("input+penultimate", True),
]
LP_CS = ["cv", 0.01, 0.1, 1.0, 10.0, 100.0]
FT_CUTS = [
    ("penultimate", False),
    ("multi", True),
    ("multi", False),
    ("multi+input", True),
]
FT_TUNES = ["first", "all"]
FT_LRS = [1e-4, 3e-4, 1e-3]
FT_STEPS = [50, 200, 800]


def run_lp(src, d, y, yt, seed, out):
    for cut, bn in LP_CUTS:
        net = rp.features_model(src, cut, copy=False)
        F, Ft = rp.extract(net, d.X_target), rp.extract(net, d.X_test)
        for C in LP_CS:
            blocks = net.sktransfer_blocks if bn else None
            pr = rp.fit_probe(F, y, C=C, blocks=blocks, random_state=seed)
            acc = float((rp.probe_logits(pr, Ft).argmax(1) == yt).mean())
            out[f"LP {cut}{' bn' if bn else ''} C={C}"] = acc
            if C == "cv":
                out[f"time LP {cut}{' bn' if bn else ''} C=cv"] = pr.seconds
                out[f"chosenC LP {cut}{' bn' if bn else ''}"] = pr.C
    pr = rp.fit_probe(d.X_target, y, random_state=seed)
    out["LR-raw C=cv"] = float((rp.probe_logits(pr, d.X_test).argmax(1) == yt).mean())


def run_ft(src, d, y, yt, seed, out, task):
    for cut, bn in FT_CUTS:
        lp, _ = rp.recipe_fit(src, d.X_target, y, cut=cut, block_norm=bn, seed=seed)
        name = f"{cut}{' bn' if bn else ''}"
        out[f"FT {name} LP-only"] = accuracy(lp, d.X_test, yt)
        for tune, lr, steps in itertools.product(FT_TUNES, FT_LRS, FT_STEPS):
            t0 = time.perf_counter()
            m, _ = rp.recipe_fit(
                src,
                d.X_target,
                y,
                cut=cut,
                tune=tune,
                steps=steps,
                learning_rate=lr,
                seed=seed,
                cache_key=task,
                block_norm=bn,
            )
            key = f"{name} {tune} lr={lr:g} steps={steps}"
            out[f"FT {key}"] = accuracy(m, d.X_test, yt)
            out[f"time FT {key}"] = time.perf_counter() - t0
        for tune, lr in itertools.product(FT_TUNES, [1e-4, 1e-3]):
            m, _ = rp.recipe_fit(
                src,
                d.X_target,
                y,
                cut=cut,
                tune=tune,
                steps=200,
                learning_rate=lr,
                seed=seed,
                cache_key=task,
                head_penalty=False,
                block_norm=bn,
            )
            key = f"{name} {tune} lr={lr:g} steps=200 nopen"
            out[f"FT {key}"] = accuracy(m, d.X_test, yt)


def run_scratch(d, y, yt, seed, out):
    for steps, lr, l2 in itertools.product(
        [200, 500, 2000], [1e-3, 3e-3], [0, 1e-4, 1e-3]
    ):
        t0 = time.perf_counter()
        m = rp.train_scratch(
            d.X_target, y, steps=steps, learning_rate=lr, l2=l2, seed=seed
        )
        out[f"scratch steps={steps} lr={lr:g} l2={l2:g}"] = accuracy(m, d.X_test, yt)
        out[f"time scratch steps={steps} lr={lr:g} l2={l2:g}"] = (
            time.perf_counter() - t0
        )


def run_probe_choice(src, d, y, yt, seed, out):
    """C by inner CV vs fixed C, block weighting, for two cuts (final probe)."""
    for cut in ("penultimate", "multi"):
        net = _net(src, cut)
        F, Ft = rp.extract(net, d.X_target), rp.extract(net, d.X_test)
        confs = [("cv", "auto"), ("cv", False), ("cv", True)] + [
            (C, bn) for C in (0.01, 0.1, 1.0, 10.0, 100.0) for bn in (False, True)
        ]
        for C, bn in confs:
            if cut == "penultimate" and bn is not False:
                continue
            pr = rp.fit_probe(
                F,
                y,
                C=C,
                blocks=net.sktransfer_blocks,
                block_norm=bn,
                random_state=seed,
            )
            acc = float((rp.probe_logits(pr, Ft).argmax(1) == yt).mean())
            out[f"probe {cut} C={C} bn={bn}"] = acc
            out[f"time probe {cut} C={C} bn={bn}"] = pr.seconds


GATE_CONFIGS = {
    "LP multi": dict(cut="multi"),
    "LPFT multi all gate=min": dict(cut="multi", tune="all", rule="min"),
    "LPFT multi all gate=1se": dict(cut="multi", tune="all", rule="1se"),
    "LPFT multi first gate=1se": dict(cut="multi", tune="first", rule="1se"),
    "LP multi+input": dict(cut="multi+input"),
    "LPFT multi+input all gate=1se": dict(cut="multi+input", tune="all"),
    "LPFT multi+input first gate=1se": dict(cut="multi+input", tune="first"),
    # forced fine-tuning, and the frozen class-score branch
    **{
        f"FT multi all {st} steps fs={fs}": dict(
            cut="multi", tune="all", steps=st, freeze_scores=fs
        )
        for fs in (False, True)
        for st in (25, 100, 400)
    },
    "LPFT multi all gate=1se fs=True": dict(
        cut="multi", tune="all", freeze_scores=True
    ),
}


def run_gate(src, d, y, yt, seed, out, task):
    """LP vs LP-FT with the CV-gated step count (and forced step counts)."""
    for name, kw in GATE_CONFIGS.items():
        t0 = time.perf_counter()
        m, info = rp.recipe_fit(src, d.X_target, y, seed=seed, cache_key=task, **kw)
        out[f"{name}"] = accuracy(m, d.X_test, yt)
        out[f"steps {name}"] = info["steps"]
        out[f"time {name}"] = time.perf_counter() - t0


_NETS = {}


def _net(src, cut):
    if (id(src), cut) not in _NETS:
        _NETS[id(src), cut] = rp.features_model(src, cut, copy=False)
    return _NETS[id(src), cut]


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--tasks", default=",".join(T.DEV))
    p.add_argument("--seeds", default="100,101,102")
    p.add_argument("--part", default="lp,ft,scratch")
    p.add_argument("--out", default=None)
    args = p.parse_args()
    parts = args.part.split(",")
    results = {}
    for task in args.tasks.split(","):
        src = T.source_model(task).model_
        for seed in map(int, args.seeds.split(",")):
            d = T.load_task(task, seed)
            y, yt = encode(d)
            out = {}
            if "lp" in parts:
                run_lp(src, d, y, yt, seed, out)
            if "ft" in parts:
                run_ft(src, d, y, yt, seed, out, task)
            if "scratch" in parts:
                run_scratch(d, y, yt, seed, out)
            if "probe" in parts:
                run_probe_choice(src, d, y, yt, seed, out)
            if "gate" in parts:
                run_gate(src, d, y, yt, seed, out, task)
            results.setdefault(task, {})[seed] = out
            print(f"done {task} seed {seed}", flush=True)
        per = results[task]
        keys = list(next(iter(per.values())))
        print(f"== {task} (seeds {list(per)})")
        for k in keys:
            v = np.array([per[s][k] for s in per])
            print(f"  {k:48s} {v.mean():.3f} ± {v.std():.3f}")
        if args.out:
            with open(args.out, "w") as f:
                json.dump(results, f)


if __name__ == "__main__":
    main()
