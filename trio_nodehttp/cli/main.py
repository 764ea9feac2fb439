"""The ``trio-nodehttp`` command line (also ``python -m trio_nodehttp``): the parser,
with one subparser per subcommand, and :func:`main`.

Adding a subcommand: write a module with an ``add_parser(subparsers)`` function that
builds its parser and sets ``func`` (a function taking the parsed namespace and
returning the exit status) with ``set_defaults``, and call it from :func:`build_parser`.
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Callable, Sequence

from . import get, serve

__all__ = ["build_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    """The ``trio-nodehttp`` argument parser, with one subparser per command."""
    parser = argparse.ArgumentParser(
        prog="trio-nodehttp",
        description="Node.js's http module on trio and h11: command line tools.",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    serve.add_parser(subparsers)
    get.add_parser(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line with ``argv`` (default: ``sys.argv[1:]``); returns the exit
    status. The ``trio-nodehttp`` console script."""
    logging.basicConfig(format="%(levelname)s %(name)s: %(message)s")
    parser = build_parser()
    args = parser.parse_args(argv)
    func: Callable[[argparse.Namespace], int] = args.func
    return func(args)
