"""Sphinx configuration for the trio_nodehttp documentation."""

from __future__ import annotations

import logging
import os
import sys
from typing import TYPE_CHECKING

sys.path.insert(0, os.path.abspath(".."))

import trio_nodehttp

if TYPE_CHECKING:
    from sphinx.application import Sphinx

project = "trio_nodehttp"
author = "trio_nodehttp developers"
copyright = "trio_nodehttp developers"
release = trio_nodehttp.__version__
version = release

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.intersphinx",
    "sphinx.ext.napoleon",
    "sphinxcontrib_trio",
]

exclude_patterns = ["_build"]
templates_path: list[str] = []
html_static_path: list[str] = []

html_theme = "furo"
html_title = f"trio_nodehttp {release}"

default_role = "py:obj"
primary_domain = "py"
highlight_language = "python3"

autodoc_member_order = "bysource"
autodoc_typehints = "signature"
autodoc_preserve_defaults = True
autodoc_default_options = {"show-inheritance": True}
autoclass_content = "class"

napoleon_google_docstring = False
napoleon_numpy_docstring = False

intersphinx_mapping = {
    "python": ("https://docs.python.org/3", None),
    "trio": ("https://trio.readthedocs.io/en/stable", None),
}
intersphinx_timeout = 5


class _MissingInventoryIsNotAWarning(logging.Filter):
    """Report an unreachable intersphinx inventory as information, not a warning.

    Offline builds then succeed under ``-W``; references to Python and trio render
    as plain text instead of links.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno == logging.WARNING and str(record.msg).startswith(
            "failed to reach any of the inventories"
        ):
            record.levelno = logging.INFO
            record.levelname = "INFO"
            record.nonl = False
        return True


def _drop_builtin_docstrings(
    app: Sphinx, what: str, name: str, obj: object, options: object, lines: list[str]
) -> None:
    """Module constants (``METHODS``, ``max_header_size``) are plain tuples and ints: keep
    the description written in ``api.rst``, not the docstring of ``tuple`` or ``int``."""
    if what == "data" and type(obj).__module__ == "builtins" and obj.__doc__ == type(obj).__doc__:
        lines.clear()


def setup(app: Sphinx) -> None:
    logging.getLogger("sphinx.sphinx.ext.intersphinx").addFilter(_MissingInventoryIsNotAWarning())
    app.connect("autodoc-process-docstring", _drop_builtin_docstrings)
