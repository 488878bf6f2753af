"""The documentation site's benchmark page matches README's tables.

README holds the measured numbers; ``scripts/sync_benchmarks.py`` writes
them into ``docs/benchmarks.rst``. A number changed in one place only fails
here, with the command that fixes it.
"""

from __future__ import annotations

import importlib.util
import pathlib

SCRIPT = (
    pathlib.Path(__file__).resolve().parent.parent / "scripts" / "sync_benchmarks.py"
)


def _sync():
    spec = importlib.util.spec_from_file_location("sync_benchmarks", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_benchmark_page_is_readmes_tables():
    sync = _sync()
    assert sync.PAGE.read_text() == sync.expected_page(), (
        "docs/benchmarks.rst differs from README's benchmark section: run "
        "python scripts/sync_benchmarks.py"
    )


def test_conversion_of_a_table_and_inline_code():
    sync = _sync()
    rst = sync.convert(
        "### Speed `x`\n\n| a | b |\n|---|---|\n| `f()` | - |\n\nText `y`.\n"
    )
    assert rst == (
        "Speed ``x``\n-----------\n\n.. list-table::\n   :header-rows: 1\n\n"
        "   * - a\n     - b\n   * - ``f()``\n     - \\-\n\nText ``y``.\n"
    )
