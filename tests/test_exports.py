"""The public surface of ``trio_nodehttp``, pinned.

Adding or removing a public name must be a deliberate change to ``EXPECTED`` below.
"""

from __future__ import annotations

import ast
import importlib.metadata
import inspect
import subprocess
import sys
import types
from pathlib import Path

import pytest

import trio_nodehttp
from trio_nodehttp import HTTPError, _errors

EXPECTED = {
    # module-level data (Node: http.METHODS, http.STATUS_CODES, http.maxHeaderSize)
    "METHODS",
    "STATUS_CODES",
    "max_header_size",
    "global_agent",
    # functions
    "create_server",
    "request",
    "get",
    "validate_header_name",
    "validate_header_value",
    # classes
    "Agent",
    "AgentStatistics",
    "ClientRequest",
    "ConnectOptions",
    "PoolStatistics",
    "EventEmitter",
    "IncomingMessage",
    "OutgoingMessage",
    "Server",
    "ServerResponse",
    "ServerStatistics",
    # errors
    "HTTPError",
    "BodyNotAllowedError",
    "ConnectionResetError",
    "ContentLengthMismatchError",
    "HeadersSentError",
    "InvalidArgTypeError",
    "InvalidArgValueError",
    "InvalidCharError",
    "InvalidHTTPTokenError",
    "InvalidHeaderValueError",
    "InvalidProtocolError",
    "InvalidStatusCodeError",
    "InvalidURLError",
    "OutOfRangeError",
    "ParseError",
    "RequestTimeoutError",
    "StreamDestroyedError",
    "TrailerInvalidError",
    "UnescapedCharactersError",
    "WriteAfterEndError",
}

DATA = {"METHODS", "STATUS_CODES", "max_header_size", "global_agent"}
CALLABLES = sorted(EXPECTED - DATA)


#: Public subpackages: imported on purpose (``from trio_nodehttp.cli.static import
#: StaticFiles``), never by ``import trio_nodehttp``, and not re-exported.
PUBLIC_SUBPACKAGES = {"cli"}


def public(name: str) -> bool:
    return not name.startswith("_")


def test_all_is_exactly_the_expected_set() -> None:
    assert set(trio_nodehttp.__all__) == EXPECTED


def test_all_has_no_duplicates_and_no_private_names() -> None:
    assert len(trio_nodehttp.__all__) == len(set(trio_nodehttp.__all__))
    assert all(isinstance(name, str) and public(name) for name in trio_nodehttp.__all__)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_every_name_in_all_exists(name: str) -> None:
    assert hasattr(trio_nodehttp, name)
    assert getattr(trio_nodehttp, name) is not None


def test_no_other_public_names_leak() -> None:
    leaked = {name for name in dir(trio_nodehttp) if public(name)} - EXPECTED
    assert leaked - PUBLIC_SUBPACKAGES == set()


def test_star_import_gives_exactly_all() -> None:
    namespace: dict[str, object] = {}
    exec("from trio_nodehttp import *", namespace)
    namespace.pop("__builtins__")
    assert set(namespace) == EXPECTED


def test_init_imports_match_all_statically() -> None:
    # What static tools (mypy, pyright, IDEs) see must equal the runtime __all__.
    source = Path(inspect.getfile(trio_nodehttp)).read_text(encoding="utf-8")
    tree = ast.parse(source)
    imported: set[str] = set()
    declared: list[str] = []
    for node in tree.body:
        if isinstance(node, ast.ImportFrom) and node.level == 1:
            imported.update(alias.asname or alias.name for alias in node.names)
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            imported.add(node.target.id)  # module data defined in __init__ (global_agent)
        elif isinstance(node, ast.Assign) and any(
            isinstance(target, ast.Name) and target.id == "__all__" for target in node.targets
        ):
            declared = ast.literal_eval(node.value)
    assert set(declared) == EXPECTED
    assert {name for name in imported if public(name)} == EXPECTED


def test_public_objects_come_from_the_package() -> None:
    for name in CALLABLES:
        obj = getattr(trio_nodehttp, name)
        assert obj.__module__.startswith("trio_nodehttp."), name
        assert obj.__name__ == name


def test_every_error_class_is_exported() -> None:
    error_classes = {
        name
        for name, obj in vars(_errors).items()
        if inspect.isclass(obj) and issubclass(obj, HTTPError)
    }
    assert error_classes <= EXPECTED
    assert error_classes == set(_errors.__all__)


def test_no_public_submodules_or_helpers_leak() -> None:
    for name in dir(trio_nodehttp):
        obj = getattr(trio_nodehttp, name)
        if isinstance(obj, types.ModuleType):
            assert not public(name) or name in PUBLIC_SUBPACKAGES, f"submodule {name} is public"
    private_modules = [
        module
        for module_name, module in sys.modules.items()
        if module_name.startswith("trio_nodehttp.")
        and module_name.split(".")[1] not in PUBLIC_SUBPACKAGES
    ]
    for module in private_modules:
        assert module.__name__.rsplit(".", 1)[1].startswith("_"), module.__name__


@pytest.mark.parametrize("name", sorted(PUBLIC_SUBPACKAGES))
def test_public_subpackages_are_not_imported_by_the_package(name: str) -> None:
    code = f"import sys, trio_nodehttp; print('trio_nodehttp.{name}' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, check=True)
    assert result.stdout == b"False\n"


def test_version() -> None:
    assert trio_nodehttp.__version__ == importlib.metadata.version("trio_nodehttp")


def test_typed_marker_ships() -> None:
    assert (Path(inspect.getfile(trio_nodehttp)).parent / "py.typed").exists()


# --- docstrings ------------------------------------------------------------------------------


@pytest.mark.parametrize("name", CALLABLES)
def test_public_callables_have_docstrings(name: str) -> None:
    obj = getattr(trio_nodehttp, name)
    assert inspect.isclass(obj) or inspect.isfunction(obj), name
    doc = obj.__doc__
    assert doc is not None
    assert doc.strip()


@pytest.mark.parametrize("name", CALLABLES)
def test_public_docstrings_name_their_node_equivalent(name: str) -> None:
    # A class with no Node counterpart says so ("Node has no equivalent ...").
    doc = inspect.getdoc(getattr(trio_nodehttp, name))
    assert doc is not None
    assert "Node" in doc


def _attribute_comment(module: types.ModuleType, name: str) -> str:
    """The ``#:`` comment block above the module-level assignment of ``name``."""
    source = inspect.getsource(module)
    lines = source.splitlines()
    for node in ast.parse(source).body:
        targets: list[ast.expr] = []
        if isinstance(node, ast.Assign):
            targets = node.targets
        elif isinstance(node, ast.AnnAssign):
            targets = [node.target]
        if any(isinstance(target, ast.Name) and target.id == name for target in targets):
            comment: list[str] = []
            index = node.lineno - 2
            while index >= 0 and lines[index].lstrip().startswith("#:"):
                comment.insert(0, lines[index].lstrip()[2:].strip())
                index -= 1
            return " ".join(comment)
    raise AssertionError(f"no assignment of {name} in {module.__name__}")


@pytest.mark.parametrize(
    ("name", "module"),
    [
        ("METHODS", "trio_nodehttp._status"),
        ("STATUS_CODES", "trio_nodehttp._status"),
        ("max_header_size", "trio_nodehttp._headers"),
    ],
)
def test_public_data_is_documented_with_its_node_name(name: str, module: str) -> None:
    comment = _attribute_comment(sys.modules[module], name)
    assert comment
    assert "Node" in comment
    assert getattr(sys.modules[module], name) is getattr(trio_nodehttp, name)


@pytest.mark.parametrize("name", [name for name in CALLABLES if name[0].isupper()])
def test_public_methods_and_properties_have_docstrings(name: str) -> None:
    cls = getattr(trio_nodehttp, name)
    undocumented = []
    for attr, value in vars(cls).items():
        if not public(attr):
            continue
        func = value.fget if isinstance(value, property) else value
        if isinstance(func, (staticmethod, classmethod)):
            func = func.__func__
        if callable(func) and not (func.__doc__ or "").strip():
            undocumented.append(attr)
    assert undocumented == []


def test_function_and_class_naming() -> None:
    for name in CALLABLES:
        obj = getattr(trio_nodehttp, name)
        if inspect.isclass(obj):
            assert name[0].isupper()
            assert "_" not in name
        else:
            assert name == name.lower()
