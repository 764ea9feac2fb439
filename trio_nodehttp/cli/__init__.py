"""The ``trio-nodehttp`` command line (also ``python -m trio_nodehttp``).

Subcommands
-----------
``serve [DIR] [--dotfiles]``
    A static file server for ``DIR`` (default ``.``): ``GET`` and ``HEAD``, directory
    index pages or listings, ``Last-Modified``/``If-Modified-Since`` (304), single byte
    ranges (206/416), an access log on stderr, and a graceful shutdown on SIGINT or
    SIGTERM (a second signal forces it). Dot-files are hidden and refused (404) unless
    ``--dotfiles``. See :mod:`.serve`; the handler itself is
    :class:`.static.StaticFiles`.
``get URL [-o FILE] [-H 'Name: value']... [-X METHOD] [-d DATA] [-i]``
    A small curl on the global agent: sends one request and streams the response body
    to standard output or ``FILE``. See :mod:`.get`.

The parser and :func:`main` are in :mod:`.main`.
"""

from __future__ import annotations

from .main import build_parser, main

__all__ = ["build_parser", "main"]
