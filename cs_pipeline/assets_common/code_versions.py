"""Code versions of the assets: each asset's names the Python modules and SQL files it runs,
so that editing one domain's SQL, or the demo generator, changes no other asset's version."""

from __future__ import annotations

import ast
import hashlib
import importlib.util
import re
from collections.abc import Iterable
from functools import cache
from pathlib import Path

from cs_pipeline.warehouse import PACKAGE_DIR, sql_file

# a string literal naming a domain's SQL file, as read_sql takes it ("usage/apply_limits.sql")
_SQL_NAME = re.compile(r"\w+/\w+\.sql")


def code_version(*sources: str) -> str:
    """The cs_pipeline version and a digest of `sources`: modules (dotted names, followed through
    their cs_pipeline imports and the SQL files their string literals name) and SQL files
    (named as read_sql takes them)."""
    from cs_pipeline import __version__

    return f"{__version__}+{digest(source_files(sources))}"


def digest(files: Iterable[Path], root: Path = PACKAGE_DIR.parent) -> str:
    """A short digest of the files' names (relative to `root`, the repository's folder) and contents."""
    found = hashlib.sha256()
    for path in sorted(set(files)):
        found.update(path.relative_to(root).as_posix().encode())
        found.update(path.read_bytes())
    return found.hexdigest()[:12]


def source_files(sources: Iterable[str]) -> set[Path]:
    """The files `sources` stand for (see code_version)."""
    files: set[Path] = set()
    for source in sources:
        files |= {sql_file(source)} if source.endswith(".sql") else _module_files(source)
    return files


@cache
def _module_files(module: str) -> frozenset[Path]:
    """A module's file, the files of the cs_pipeline modules it imports (transitively) and the SQL files it names."""
    files: set[Path] = set()
    pending, seen = [module], set()
    while pending:
        name = pending.pop()
        if name in seen:
            continue
        seen.add(name)
        path, imported, sql_files = _module_references(name)
        files |= {path, *sql_files}
        pending += imported
    return frozenset(path for path in files if path.exists())


@cache
def _module_references(module: str) -> tuple[Path, tuple[str, ...], frozenset[Path]]:
    """A module's file, the cs_pipeline modules it imports and the SQL files its string literals
    name: parsed once per process, however many assets' closures hold the module."""
    path = Path(importlib.util.find_spec(module).origin)
    imported: list[str] = []
    sql_files: set[Path] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            imported += [alias.name for alias in node.names if alias.name.startswith("cs_pipeline")]
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("cs_pipeline"):
            imported.append(node.module)
            submodules = (f"{node.module}.{alias.name}" for alias in node.names)
            imported += [name for name in submodules if _is_module(name)]
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and _SQL_NAME.fullmatch(node.value):
            sql_files.add(sql_file(node.value))
    return path, tuple(imported), frozenset(sql_files)


def _is_module(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except ModuleNotFoundError:  # the parent is a module, not a package: `name` is one of its attributes
        return False
