"""Dependencies point one way, and no package reaches into another's private names.

Read from the source, not from what happens to be imported at run time: every ``import`` and ``from … import``
in ``src/liveloop`` (inside functions and ``TYPE_CHECKING`` blocks too) is an arrow from its package to another.
An arrow may only point to a package of a lower layer (CONVENTIONS.md gives the order).
"""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parent.parent / "src" / "liveloop"

# Lowest first. A package may import packages of the layers before its own, never its own layer's or later ones.
LAYERS: list[set[str]] = [
    {"kit", "config"},
    {"models"},
    {"markets"},
    {"shops"},
    {"events"},
    {"members"},
    {"ledger", "coupons"},
    {"referral"},
    {"orders"},
    {"live"},
    {"jobs", "migrate", "data", "database"},
    {"web"},
    {"app"},
    {"client"},
    {"demo"},
    {"cli"},
]
RANK = {name: i for i, layer in enumerate(LAYERS) for name in layer}


def _package(path: Path) -> str:
    rel = path.relative_to(SRC)
    return rel.parts[0].removesuffix(".py")


def _imports(path: Path) -> list[tuple[int, str, list[str]]]:
    """(line, module, names) of every import of a liveloop module in the file."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module == "liveloop" or node.module.startswith("liveloop."):
                found.append((node.lineno, node.module, [a.name for a in node.names]))
        elif isinstance(node, ast.Import):
            found += [(node.lineno, a.name, []) for a in node.names if a.name.startswith("liveloop.")]
    return found


def _arrows() -> list[tuple[str, int, str, str, list[str]]]:
    out = []
    for path in sorted(SRC.rglob("*.py")):
        if path.parent == SRC and path.name == "__init__.py":
            continue
        source = _package(path)
        for line, module, names in _imports(path):
            parts = module.split(".")
            if len(parts) < 2:
                continue
            target = parts[1]
            if target != source:
                out.append((str(path.relative_to(SRC)), line, source, module, names))
    return out


def test_every_package_has_a_layer() -> None:
    packages = {_package(p) for p in SRC.rglob("*.py") if not (p.parent == SRC and p.name == "__init__.py")}
    missing = packages - RANK.keys()
    assert missing == set(), f"add {sorted(missing)} to LAYERS (and to CONVENTIONS.md)"


def test_dependencies_point_down() -> None:
    upward = [
        f"{file}:{line}: {source} imports {module}"
        for file, line, source, module, _ in _arrows()
        if RANK[module.split(".")[1]] >= RANK[source]
    ]
    assert upward == [], "\n".join(upward)


def test_no_private_name_is_imported_across_packages() -> None:
    private = [
        f"{file}:{line}: {', '.join(n for n in names if n.startswith('_'))} from {module}"
        for file, line, _, module, names in _arrows()
        if any(n.startswith("_") for n in names) or any(p.startswith("_") for p in module.split(".")[2:])
    ]
    assert private == [], "\n".join(private)


def test_the_check_sees_an_upward_arrow(tmp_path: Path) -> None:
    """The reader finds imports wherever they are, so the tests above can fail."""
    file = tmp_path / "mod.py"
    file.write_text(
        "from liveloop.kit import db\n\ndef f():\n"
        "    from liveloop.live.room import _seq_of\n"
        "    import liveloop.web\n",
        encoding="utf-8",
    )
    assert [(m, n) for _, m, n in _imports(file)] == [
        ("liveloop.kit", ["db"]),
        ("liveloop.live.room", ["_seq_of"]),
        ("liveloop.web", []),
    ]


# Where SQL may be written: each domain's repository.py, and the generic pieces under kit/ (the repository base,
# pagination, batch writers, portable upsert helpers). Tables are defined in models/, migrations are elsewhere.
SQL_BUILDERS = {"select", "insert", "update", "delete", "text", "union_all", "exists"}
# A session queried directly (``session.get(Model, id)``, ``session.execute(…)``) is a statement too.
SESSION_READS = {"get", "execute", "scalar", "scalars", "stream"}
SESSION_NAMES = {"session", "s", "conn", "connection"}


def _sql_calls(path: Path) -> list[tuple[int, str]]:
    """(line, name) of every call of a SQLAlchemy statement builder imported into the file."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    imported: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "sqlalchemy":
            imported |= {a.asname or a.name for a in node.names if a.name in SQL_BUILDERS}
    calls = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in imported:
            calls.append((node.lineno, node.func.id))
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            owner = node.func.value
            if node.func.attr in SESSION_READS and isinstance(owner, ast.Name) and owner.id in SESSION_NAMES:
                calls.append((node.lineno, f"{owner.id}.{node.func.attr}"))
            if node.func.attr in {"insert", "update", "delete", "select"} and (
                isinstance(owner, ast.Call) and isinstance(owner.func, ast.Name) and owner.func.id == "table"
            ):
                calls.append((node.lineno, f"table(…).{node.func.attr}"))
    return calls


def test_every_statement_of_a_domain_is_in_its_repository() -> None:
    misplaced = []
    for path in sorted(SRC.rglob("*.py")):
        rel = path.relative_to(SRC)
        if rel.parts[0] in {"kit", "models"} or path.name == "repository.py":
            continue
        misplaced += [f"{rel}:{line} {name}(…)" for line, name in _sql_calls(path)]
    assert not misplaced, "SQL outside a repository.py (move it into the domain's repository):\n" + "\n".join(misplaced)
