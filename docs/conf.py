"""Sphinx configuration of sktransfer's documentation site.

Build it with ``make -C docs html`` from the repository root: that runs the
example gallery in its small mode (``SKTRANSFER_EXAMPLE_SMALL=1``) and turns
every warning into an error. Nothing is downloaded at build time: no
intersphinx inventories, no remote images.
"""

import os
import sys
from pathlib import Path

import sktransfer

DOCS = Path(__file__).resolve().parent
ROOT = DOCS.parent

sys.path.insert(0, str(DOCS))  # gallery_hooks, named below by its import path
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("MPLBACKEND", "Agg")

project = "sktransfer"
author = "the sktransfer developers"
copyright = "the sktransfer developers"  # noqa: A001
release = sktransfer.__version__
version = ".".join(release.split(".")[:2])

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "numpydoc",
    "sphinx_gallery.gen_gallery",
]

templates_path = ["_templates"]
exclude_patterns = [
    "_build",
    "Thumbs.db",
    ".DS_Store",
    "auto_examples/*.ipynb",
    "auto_examples/*.py",
    "auto_examples/*.zip",
    "auto_examples/*.md5",
    "auto_examples/*.json",
]
source_suffix = {".rst": "restructuredtext"}
root_doc = "index"
default_role = "literal"
# every cross-reference must resolve (-W makes a broken one fail the build),
# except those to other projects' documentation: without intersphinx (which
# downloads their inventories) those stay plain text
nitpicky = True
nitpick_ignore_regex = [
    (r"py:.*", r"(sklearn|keras|tensorflow|tf|numpy|scikeras|joblib|dask|pandas)\..*"),
]

# -- API reference: autodoc + autosummary + numpydoc -------------------------
autosummary_generate = True
autodoc_typehints = "none"
# the class template lists the public methods itself
numpydoc_show_class_members = False
numpydoc_show_inherited_class_members = False
numpydoc_class_members_toctree = False
numpydoc_attributes_as_param_list = True
numpydoc_xref_param_type = False
# docstring format problems become build warnings (so -W errors): an unknown
# or misplaced section, a documented parameter the signature lacks, a
# parameter without a space before its colon
numpydoc_validation_checks = {"GL06", "GL07", "PR02", "PR10"}

# -- the example gallery -----------------------------------------------------
sphinx_gallery_conf = {
    "examples_dirs": str(ROOT / "examples"),
    "gallery_dirs": "auto_examples",
    "filename_pattern": r"/plot_",
    "ignore_pattern": r"__init__\.py",
    "within_subsection_order": "gallery_hooks.ExampleOrder",
    "doc_module": ("sktransfer",),
    "backreferences_dir": "generated/backreferences",
    "image_scrapers": ("matplotlib",),
    # around each example: matplotlib's defaults back, its own output folder
    # (SKTRANSFER_EXAMPLE_OUT) under _build, and nothing written elsewhere
    "reset_modules": ("matplotlib", "gallery_hooks.example_out"),
    "reset_modules_order": "both",
    "matplotlib_animations": False,
    "remove_config_comments": True,
    "download_all_examples": False,
    "show_signature": False,
    # an example that raises fails the build
    "abort_on_example_error": False,
    "only_warn_on_example_error": False,
}

# -- HTML ----------------------------------------------------------------------
html_theme = "pydata_sphinx_theme"
html_title = f"sktransfer {release}"
html_static_path = []
html_show_sourcelink = False
html_theme_options = {
    "navbar_align": "left",
    "show_toc_level": 2,
    # the benchmark tables get the page's whole width
    "secondary_sidebar_items": {"**": ["page-toc"], "benchmarks": []},
    "footer_start": ["copyright"],
    "footer_end": [],
}
html_sidebars = {"index": [], "benchmarks": []}

# -- which members a class page shows ----------------------------------------
#: scikeras attributes kept for compatibility, not for users: ``build_fn`` is
#: always None, ``partial_fit`` raises (an estimator here is not incremental)
HIDDEN_MEMBERS = {"build_fn", "partial_fit"}


def skip_member(app, what, name, obj, skip, options):
    """Show what sktransfer defines; what a class inherits from scikit-learn
    or scikeras (``get_params``, metadata routing, ``set_output``) is
    documented there."""
    if what != "class":
        return None
    if name in HIDDEN_MEMBERS:
        return True
    defined_in = getattr(getattr(obj, "fget", obj), "__module__", None) or ""
    if defined_in.split(".")[0] in ("sklearn", "scikeras", "keras"):
        return True
    return None


def setup(app):
    app.connect("autodoc-skip-member", skip_member)
