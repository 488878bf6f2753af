"""Open the built documentation in a headless browser, as a reader would.

Serves ``docs/_build/html`` on localhost, opens the landing page, one API
page and one gallery page in the system's Chromium (driven by Playwright),
checks that their text is there and that their figures loaded (an ``<img>``
with a natural width above zero), and saves a full-page screenshot of each
for review::

    python docs/check_pages.py            # after `make -C docs html`

Screenshots go to ``docs/_build/screenshots/``. Exit status 0 when every
check passes, 1 otherwise (each failure is printed). Nothing is downloaded:
the browser is the system's (``/usr/bin/chromium``, Debian's ``chromium``
package, or ``--browser PATH``), never one fetched by Playwright.
"""

from __future__ import annotations

import argparse
import functools
import http.server
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path

DOCS = Path(__file__).resolve().parent

#: flags without which Chromium waits on network services it cannot reach
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
]

#: (screenshot name, page, texts it must show, an image it must have loaded)
PAGES = [
    (
        "landing",
        "index.html",
        [
            "Transfer learning with Keras as ordinary scikit-learn classifiers",
            'pip install -e ".[plots]"',
            "Quickstart",
            "TransferClassifier(pretrained=",
        ],
        "demo.png",
    ),
    (
        "api_transfer_classifier",
        "generated/sktransfer.TransferClassifier.html",
        [
            "Transfer a pretrained Keras network to a new classification task.",
            "Parameters",
            "freeze",
            "head_solver",
            "Attributes",
            "predict_proba",
            "save",
        ],
        None,
    ),
    (
        "gallery_quickstart",
        "auto_examples/plot_quickstart.html",
        [
            "Quickstart: pretrain, save, transfer, and choose the freeze depth",
            "chosen freeze=",
        ],
        "sphx_glr_plot_quickstart_001.png",
    ),
]


def find_browser(given):
    for candidate in [given, "/usr/bin/chromium", shutil.which("chromium")]:
        if candidate and Path(candidate).exists():
            return candidate
    sys.exit(
        "check_pages: no Chromium found; install Debian's package "
        "(apt-get install -y chromium) or pass --browser PATH"
    )


def serve(root):
    """A quiet HTTP server for ``root`` on a free localhost port."""

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    handler = functools.partial(Quiet, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def check_page(page, url, texts, image, shot):
    """The failures on one page (empty when it passed); saves its screenshot."""
    failures = []
    response = page.goto(url, wait_until="load")
    if response is None or not response.ok:
        status = None if response is None else response.status
        return [f"{url}: HTTP status {status}"]
    page.wait_for_load_state("networkidle")
    body = page.inner_text("body")
    for text in texts:
        if text not in body:
            failures.append(f"{url}: text {text!r} not on the page")
    if image is not None:
        widths = page.eval_on_selector_all(
            "img",
            """(imgs, name) => imgs
                .filter(img => img.currentSrc.split("/").pop() === name)
                .map(img => img.complete ? img.naturalWidth : 0)""",
            image,
        )
        if not widths:
            failures.append(f"{url}: no <img> showing {image}")
        elif not all(width > 0 for width in widths):
            failures.append(f"{url}: {image} did not load (naturalWidth {widths})")
    page.screenshot(path=str(shot), full_page=True)
    return failures


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--html", default=str(DOCS / "_build" / "html"), help="the built site"
    )
    parser.add_argument(
        "--out",
        default=str(DOCS / "_build" / "screenshots"),
        help="folder for the screenshots",
    )
    parser.add_argument("--browser", help="Chromium executable")
    args = parser.parse_args(argv)

    root = Path(args.html)
    if not (root / "index.html").exists():
        sys.exit(f"check_pages: {root}/index.html not found: run `make -C docs html`")
    browser_path = find_browser(args.browser)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    from playwright.sync_api import sync_playwright

    server = serve(root)
    base = f"http://127.0.0.1:{server.server_address[1]}/"
    failures = []
    passed = 0
    start = time.perf_counter()
    try:
        with (
            tempfile.TemporaryDirectory(prefix="sktransfer-check-pages-") as profile,
            sync_playwright() as playwright,
        ):
            context = playwright.chromium.launch_persistent_context(
                profile,
                executable_path=browser_path,
                headless=True,
                args=CHROMIUM_ARGS,
                viewport={"width": 1280, "height": 900},
            )
            try:
                page = context.new_page()
                for name, path, texts, image in PAGES:
                    shot = out / f"{name}.png"
                    found = check_page(page, base + path, texts, image, shot)
                    failures += found
                    passed += not found
                    print(f"{'FAIL' if found else 'ok  '} {path} -> {shot}")
            finally:
                context.close()
    finally:
        server.shutdown()
    for failure in failures:
        print(f"check_pages: {failure}", file=sys.stderr)
    print(
        f"{passed} of {len(PAGES)} pages passed in {time.perf_counter() - start:.1f} s"
    )
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
