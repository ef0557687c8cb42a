"""C-1: the social security side and the bank side share nothing but the messages.

Issue 4: "No code path lets the social security side read the bank side's data or the
other way round, except the messages." Every module under src/sscard is parsed with
``ast``; its imports (absolute or relative, at the top, inside functions or under
TYPE_CHECKING, and ``importlib.import_module`` with a literal name) are checked
against the boundary below. Raw SQL is the other way round a boundary: the bank
writes none, and nobody else names the bank's tables in a string.
"""

from __future__ import annotations

import ast
from functools import cache
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "src"


def _name_of(path: Path) -> str:
    parts = path.relative_to(SRC).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES: dict[str, Path] = {_name_of(p): p for p in sorted((SRC / "sscard").rglob("*.py"))}

BANK = ("sscard.bank",)
# What the bank side may import from sscard: the shared kernel, the messages, itself.
BANK_MAY_IMPORT = (
    "sscard.core",
    "sscard.db",
    "sscard.messages",
    "sscard.access.model",
    "sscard.runtime",
    "sscard.register.model",
    "sscard.bank",
)
# ... except the module that gathers every feature's tables, the social side's too.
BANK_MAY_NOT_IMPORT = ("sscard.db.models",)
SOCIAL_SIDE = (
    "sscard.cards",
    "sscard.applications",
    "sscard.register",
    "sscard.accounts",
    "sscard.jobs",
)
# The only modules that may import the bank side: entry points, wiring, the metadata.
MAY_IMPORT_BANK = (
    "sscard.bank",
    "sscard.api.routes.bank",
    # An outlet activating both applications at one visit (V-2) composes the two
    # sides in the entry point, each through its own service.
    "sscard.api.activation",
    "sscard.api.app",
    # S-1: the API's shaping names each response model's resource, the bank's too.
    "sscard.api.disclosure",
    "sscard.wiring",
    "sscard.cli",
    "sscard.db.models",
)
BANK_TABLES = ("bank_accounts", "bank_account_events")
RAW_SQL = frozenset({"text", "table", "column", "literal_column"})


def _within(name: str, prefixes: tuple[str, ...]) -> bool:
    return any(name == p or name.startswith(p + ".") for p in prefixes)


def _absolute(module: str, is_package: bool, target: str | None, level: int) -> str:
    """Resolve ``from <level dots><target> import ...`` inside ``module``."""
    if level == 0:
        return target or ""
    parts = module.split(".") if is_package else module.split(".")[:-1]
    parts = parts[: len(parts) - (level - 1)]
    return ".".join([*parts, target] if target else parts)


def _tree(module: str) -> ast.Module:
    path = MODULES[module]
    return ast.parse(path.read_text(encoding="utf-8"), filename=str(path))


@cache
def imports_of(module: str) -> frozenset[str]:
    """Every module ``module`` imports, by absolute name."""
    is_package = MODULES[module].name == "__init__.py"
    found: set[str] = set()
    for node in ast.walk(_tree(module)):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = _absolute(module, is_package, node.module, node.level)
            submodules = {f"{base}.{a.name}" for a in node.names} & MODULES.keys()
            found.update(submodules or {base})
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute | ast.Name)
            and getattr(node.func, "attr", getattr(node.func, "id", "")) == "import_module"
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            found.add(node.args[0].value)
    return frozenset(found)


def _modules(prefixes: tuple[str, ...]) -> list[str]:
    return [m for m in MODULES if _within(m, prefixes)]


def _importers_of(target: tuple[str, ...], among: list[str]) -> list[str]:
    return sorted(f"{m} imports {i}" for m in among for i in imports_of(m) if _within(i, target))


def _code_strings(module: str) -> list[str]:
    """String constants of a module, docstrings left out."""
    tree = _tree(module)
    docstrings: set[int] = set()
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if isinstance(body, list) and body and isinstance(body[0], ast.Expr):
            docstrings.add(id(body[0].value))
    return [
        node.value
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant)
        and isinstance(node.value, str)
        and id(node) not in docstrings
    ]


def test_c_1_the_boundary_check_sees_the_code() -> None:
    assert {"sscard.bank.follow", "sscard.cards.service", "sscard.wiring"} <= MODULES.keys()
    assert "sscard.messages" in imports_of("sscard.bank.service")
    assert "sscard.bank.follow" in imports_of("sscard.wiring")  # an import inside a function
    assert "sscard.access.model" in imports_of("sscard.messages")  # from ... import ...
    assert _absolute("sscard.bank.service", False, "model", 1) == "sscard.bank.model"
    assert _absolute("sscard.bank", True, "model", 1) == "sscard.bank.model"
    assert _absolute("sscard.bank.service", False, "cards", 2) == "sscard.cards"


def test_c_1_bank_imports_only_the_shared_kernel_and_the_messages() -> None:
    bank = _modules(BANK)
    assert bank
    wrong = sorted(
        f"{m} imports {i}"
        for m in bank
        for i in imports_of(m)
        if _within(i, ("sscard",))
        and (not _within(i, BANK_MAY_IMPORT) or _within(i, BANK_MAY_NOT_IMPORT))
    )
    assert not wrong, "the bank side reaches past the messages (C-1):\n" + "\n".join(wrong)


def test_c_1_social_security_side_never_imports_the_bank() -> None:
    wrong = _importers_of(BANK, _modules(SOCIAL_SIDE))
    assert not wrong, "the social security side reads the bank's code (C-1):\n" + "\n".join(wrong)


def test_c_1_only_entry_points_and_wiring_import_the_bank() -> None:
    others = [m for m in MODULES if not _within(m, MAY_IMPORT_BANK)]
    wrong = _importers_of(BANK, others)
    assert not wrong, "only entry points may import sscard.bank:\n" + "\n".join(wrong)


def test_c_1_medical_accounts_and_bank_accounts_never_import_each_other() -> None:
    medical = _modules(("sscard.accounts",))  # may not exist yet: then nothing to check
    wrong = _importers_of(BANK, medical) + _importers_of(("sscard.accounts",), _modules(BANK))
    assert not wrong, "\n".join(wrong)


def test_c_1_no_raw_sql_across_the_boundary() -> None:
    """The bank writes no raw SQL; nobody outside it names its tables in a string."""
    raw = sorted(
        f"{m} uses sqlalchemy.{node.attr if isinstance(node, ast.Attribute) else node.id}"
        for m in _modules(BANK)
        for node in ast.walk(_tree(m))
        if (isinstance(node, ast.Attribute) and node.attr in RAW_SQL)
        or (isinstance(node, ast.Name) and node.id in RAW_SQL)
    )
    raw += sorted(
        f"{m} imports sqlalchemy.{alias.name}"
        for m in _modules(BANK)
        for node in ast.walk(_tree(m))
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("sqlalchemy")
        for alias in node.names
        if alias.name in RAW_SQL
    )
    assert not raw, "\n".join(raw)
    outside = [m for m in MODULES if not _within(m, (*BANK, "sscard.db.migrations"))]
    named = sorted(
        f"{m}: {s[:60]!r}"
        for m in outside
        for s in _code_strings(m)
        if any(table in s for table in BANK_TABLES)
    )
    assert not named, "the bank's tables are named outside the bank:\n" + "\n".join(named)


def _audit_tables() -> dict[str, str]:
    """The center's audit tables: ORM class name -> table name (from sscard.audit)."""
    found: dict[str, str] = {}
    for module in _modules(("sscard.audit",)):
        for node in ast.walk(_tree(module)):
            if not isinstance(node, ast.ClassDef):
                continue
            for stmt in node.body:
                if (
                    isinstance(stmt, ast.Assign | ast.AnnAssign)
                    and isinstance(stmt.value, ast.Constant)
                    and isinstance(stmt.value.value, str)
                    and any(
                        isinstance(t, ast.Name) and t.id == "__tablename__"
                        for t in (stmt.targets if isinstance(stmt, ast.Assign) else [stmt.target])
                    )
                ):
                    found[node.name] = stmt.value.value
    return found


def test_c_1_the_bank_keeps_its_own_record_and_never_names_the_audit_tables() -> None:
    """The bank records its acts in its own journal; the center's audit trail (its tables,
    their ORM classes and the audit service) is not the bank's to write or read."""
    tables = _audit_tables()
    assert {"AuditRecord": "audit_records"}.items() <= tables.items()
    wrong = sorted(
        f"{m}: {s[:60]!r}"
        for m in _modules(BANK)
        for s in _code_strings(m)
        if any(name in s for name in tables.values())
    )
    wrong += sorted(
        f"{m}: {name}"
        for m in _modules(BANK)
        for node in ast.walk(_tree(m))
        for name in [node.id if isinstance(node, ast.Name) else getattr(node, "attr", None)]
        if name in tables
    )
    wrong += _importers_of(("sscard.audit",), _modules(BANK))
    assert not wrong, "the bank reaches into the center's audit trail:\n" + "\n".join(wrong)
