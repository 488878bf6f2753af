"""Write the documentation site's benchmark tables from README's.

README's "Benchmarks" section (from "### Transfer panel" to the next "## "
heading) is the one place the measured numbers are written;
``docs/benchmarks.rst`` keeps its own introduction and gets everything from
its "Transfer panel" heading on from here, converted to reStructuredText
(headings, pipe tables as list-tables, inline code, paragraphs).
``tests/test_docs_sync.py`` fails when the two differ.

Run: ``python scripts/sync_benchmarks.py`` (``--check``: exit 1 if stale).
"""

from __future__ import annotations

import pathlib
import re
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
PAGE = ROOT / "docs" / "benchmarks.rst"
START = "### Transfer panel"
PAGE_START = "Transfer panel: does transfer pay?\n"


def _inline(text):
    text = re.sub(r"(?<!`)`([^`]+)`(?!`)", r"``\1``", text)
    return text.replace("| - |", "| \\- |")


def _cells(line):
    cells = [c.strip() for c in line.strip().strip("|").split("|")]
    return ["\\-" if c == "-" else _inline(c) for c in cells]


def _table(lines):
    out = [".. list-table::", "   :header-rows: 1", ""]
    rows = [_cells(line) for i, line in enumerate(lines) if i != 1]
    for row in rows:
        out.append(f"   * - {row[0]}")
        out.extend(f"     - {cell}" for cell in row[1:])
    return out


def convert(markdown):
    """reStructuredText of README's benchmark section."""
    lines = markdown.splitlines()
    out, i = [], 0
    while i < len(lines):
        line = lines[i]
        if line.startswith("### "):
            title = _inline(line[4:])
            out += [title, "-" * len(title)]
        elif line.startswith("|"):
            block = []
            while i < len(lines) and lines[i].startswith("|"):
                block.append(lines[i])
                i += 1
            out += _table(block)
            continue
        else:
            out.append(_inline(line))
        i += 1
    return "\n".join(out).rstrip() + "\n"


def section(readme):
    start = readme.index(START)
    end = readme.index("\n## ", start)
    return readme[start:end]


def expected_page():
    page = PAGE.read_text()
    head = page[: page.index(PAGE_START)]
    return head + convert(section(README.read_text()))


def main(argv):
    expected = expected_page()
    if "--check" in argv:
        return 0 if PAGE.read_text() == expected else 1
    PAGE.write_text(expected)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
