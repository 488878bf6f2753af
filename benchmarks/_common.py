"""Timing helpers shared by the benchmark scripts.

The benchmarks run on small, shared machines, so every comparison here is
made the same way:

* each side gets untimed warm-up runs first (imports, first traces, parse
  caches), so no side pays a one-off cost the other skips;
* the sides then run in rounds, in an order that changes every round
  (``A B``, ``B A``, ``A B`` ... ; with three or more sides every rotation,
  forwards and backwards), so a burst of load from another job does not
  always land on the same side;
* figures are medians over the rounds, and ratios are medians of the
  per-round ratios (both sides of a ratio measured in the same round, under
  the same load);
* the 1-minute load average is printed beside every table.

Nothing here imports TensorFlow or sktransfer.
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

__all__ = [
    "Runs",
    "alternate",
    "backend_from_argv",
    "load_line",
    "markdown_table",
    "round_order",
]


def backend_from_argv(argv=None):
    """Set ``KERAS_BACKEND`` from ``--backend NAME`` (before Keras is imported).

    Returns the backend Keras will use: the flag, else the environment
    variable, else TensorFlow.
    """
    argv = sys.argv[1:] if argv is None else argv
    for i, arg in enumerate(argv):
        if arg == "--backend" and i + 1 < len(argv):
            os.environ["KERAS_BACKEND"] = argv[i + 1]
        elif arg.startswith("--backend="):
            os.environ["KERAS_BACKEND"] = arg.split("=", 1)[1]
    return os.environ.get("KERAS_BACKEND", "tensorflow")


def load_line(label="load average"):
    """``'load average (1 min): 1.63 on 2 cores'``: printed beside each table."""
    return f"{label} (1 min): {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores"


def round_order(names: Sequence[str], round_index: int) -> list[str]:
    """The order of ``names`` in round ``round_index``.

    Round ``r`` rotates the names by ``r // 2`` and reverses them when ``r``
    is odd: two sides give ``AB, BA, AB, ...``; three give all six orders
    in six rounds.
    """
    names = list(names)
    shift = (round_index // 2) % max(1, len(names))
    order = names[shift:] + names[:shift]
    return order[::-1] if round_index % 2 else order


@dataclass
class Runs:
    """What :func:`alternate` measured.

    ``values[name]`` holds one number per round the side ran (wall seconds,
    or what ``measure`` made of the runner's result); ``results[name]`` the
    runner's return values; ``load`` the 1-minute load average before the
    first warm-up, after the warm-ups and after the last round.
    """

    values: dict[str, list[float]]
    results: dict[str, list] = field(default_factory=dict)
    load: dict[str, float] = field(default_factory=dict)

    def median(self, name: str) -> float:
        return statistics.median(self.values[name])

    def ratio(self, a: str, b: str) -> float:
        """Median of the per-round ratios ``a / b`` (paired by round)."""
        pairs = list(zip(self.values[a], self.values[b]))
        return statistics.median(x / y for x, y in pairs)

    def ratios(self, a: str, b: str) -> list[float]:
        return [x / y for x, y in zip(self.values[a], self.values[b])]

    def load_text(self) -> str:
        return (
            f"load average (1 min): {self.load['start']:.2f} before warm-up, "
            f"{self.load['timed']:.2f} at the first timed round, "
            f"{self.load['end']:.2f} at the end; {os.cpu_count()} cores"
        )


def alternate(
    runners: Mapping[str, Callable[[], object]],
    repeats: int | Mapping[str, int],
    *,
    warmup: int = 1,
    warmups: Mapping[str, Callable[[], object]] | None = None,
    before: Callable[[str], object] | None = None,
    measure: Callable[[object], float] | None = None,
    progress: bool = False,
) -> Runs:
    """Run every side ``repeats`` times in alternating order; see the module.

    Parameters
    ----------
    runners : mapping name -> callable
        One side each; called with no arguments.
    repeats : int or mapping name -> int
        Timed rounds; a mapping lets a slow side run fewer rounds (it then
        takes part in the first rounds only).
    warmup : int
        Untimed runs of each side before the first timed round.
    warmups : mapping name -> callable, optional
        A cheaper warm-up for some sides (default: the runner itself).
    before : callable(name), optional
        Called, untimed, before every run of a side (e.g. clear a cache).
    measure : callable(result) -> float, optional
        Turns a runner's return value into the recorded number (e.g. a
        latency the runner measured itself); default: the wall time of the
        call.
    progress : bool
        Print each round's numbers as it ends.
    """
    names = list(runners)
    counts = (
        {name: int(repeats) for name in names}
        if isinstance(repeats, int)
        else {name: int(repeats.get(name, 0)) for name in names}
    )
    runs = Runs(
        values={name: [] for name in names},
        results={name: [] for name in names},
        load={"start": os.getloadavg()[0]},
    )
    warmups = dict(warmups or {})
    for index in range(warmup):
        for name in round_order(names, index):
            if before is not None:
                before(name)
            warmups.get(name, runners[name])()
    runs.load["timed"] = os.getloadavg()[0]
    for index in range(max(counts.values(), default=0)):
        done = []
        for name in round_order(names, index):
            if len(runs.values[name]) >= counts[name]:
                continue
            if before is not None:
                before(name)
            start = time.perf_counter()
            result = runners[name]()
            seconds = time.perf_counter() - start
            runs.values[name].append(seconds if measure is None else measure(result))
            runs.results[name].append(result)
            done.append(name)
        if progress:
            shown = ", ".join(f"{name} {runs.values[name][-1]:.3g}" for name in done)
            print(f"  round {index + 1} ({' -> '.join(done)}): {shown}", flush=True)
    runs.load["end"] = os.getloadavg()[0]
    return runs


def markdown_table(
    headers: Sequence[str], rows: Sequence[Sequence[object]], *, align: str = ""
) -> str:
    """A markdown table; ``align`` holds one of ``l``/``r`` per column
    (default: first column left, the others right)."""
    align = align or "l" + "r" * (len(headers) - 1)
    cells = [[str(h) for h in headers]] + [[str(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]

    def line(row):
        padded = (
            c.ljust(w) if a == "l" else c.rjust(w)
            for c, w, a in zip(row, widths, align)
        )
        return "| " + " | ".join(padded) + " |"

    rule = "|" + "|".join(
        ("-" * (w + 1) + ":" if a == "r" else ":" + "-" * (w + 1))
        for w, a in zip(widths, align)
    )
    return "\n".join([line(cells[0]), rule + "|"] + [line(r) for r in cells[1:]])
