"""Quality gates and benchmarks: ``nox -s tests lint typecheck docs``; ``coverage`` (the
suite again, under branch coverage; CI runs it too) and ``bench`` on demand."""

import os

import nox

nox.options.sessions = ["tests", "lint", "typecheck", "docs"]
nox.options.reuse_existing_virtualenvs = True


@nox.session
def tests(session: nox.Session) -> None:
    """The whole test suite (needs ``node`` and ``curl`` on PATH for the peer tests, and
    ``nginx``, on PATH or in /usr/sbin, for tests/test_client_nginx.py)."""
    session.install("-e", ".[test]")
    session.run("pytest", *session.posargs)


@nox.session
def coverage(session: nox.Session) -> None:
    """The whole test suite under branch coverage of the package, then the report, which
    fails below ``[tool.coverage.report] fail_under`` (pyproject.toml)."""
    session.install("-e", ".[coverage]")
    # The data file in the session's own directory, not in the checkout.
    session.env["COVERAGE_FILE"] = os.path.join(session.create_tmp(), ".coverage")
    session.run("coverage", "run", "-m", "pytest", *session.posargs)
    session.run("coverage", "report")


@nox.session
def lint(session: nox.Session) -> None:
    """ruff check and ruff format --check over the whole tree."""
    session.install("-e", ".[lint]")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")


@nox.session
def typecheck(session: nox.Session) -> None:
    """mypy --strict on the package and the tests (whose imports need the test extra)."""
    session.install("-e", ".[typecheck,test]")
    session.run("mypy", "--strict", "trio_nodehttp", "tests")


@nox.session
def docs(session: nox.Session) -> None:
    """Sphinx build with warnings as errors."""
    session.install("-e", ".[docs]")
    session.run("sphinx-build", "-W", "--keep-going", "-b", "html", "docs", "docs/_build/html")


@nox.session
def bench(session: nox.Session) -> None:
    """Side-by-side server and client benchmarks (wrk, taskset, node, hypercorn, httpx);
    see benchmarks/README.md. Arguments after ``--`` go to benchmarks/server.py."""
    session.install("-e", ".[bench]")
    session.run("python", "benchmarks/server.py", *session.posargs)
    session.run("python", "benchmarks/client.py")


@nox.session
def fuzz(session: nox.Session) -> None:
    """The long run of the differential fuzzer against Node's server (seeded, bounded);
    ``FUZZ_CASES`` and ``FUZZ_SEED`` set its size and seed. The suite runs a fast slice."""
    session.install("-e", ".[test]")
    session.env["FUZZ_CASES"] = os.environ.get("FUZZ_CASES", "20000")
    session.run("pytest", "-q", "tests/test_fuzz_differential.py", *session.posargs)
