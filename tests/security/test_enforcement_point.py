"""One enforcement point: the interactions reach stored data only through the Gate
(`fhir_server.access`), never through the store, so no path can read or compare stored
data before the policy has decided."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "fhir_server"
# the layers that answer clients: they hold a Context and must go through ctx.gate
GUARDED = ("interactions", "api")
STORE_NAMES = {"store", "_store"}
# the one place a request's context is built from the application's (it hands the store on)
ALLOWED = {("api/rest.py", "context")}


def _store_uses(path: Path) -> list[tuple[str, int]]:
    tree = ast.parse(path.read_text(), str(path))
    found: list[tuple[str, int]] = []
    for fn in ast.walk(tree):
        if not isinstance(fn, ast.FunctionDef | ast.AsyncFunctionDef):
            continue
        for node in ast.walk(fn):
            if isinstance(node, ast.Attribute) and node.attr in STORE_NAMES:
                found.append((fn.name, node.lineno))
    return found


def test_interactions_never_touch_the_store():
    offenders = []
    for layer in GUARDED:
        for path in sorted((PACKAGE / layer).glob("*.py")):
            rel = path.relative_to(PACKAGE).as_posix()
            for function, line in _store_uses(path):
                if (rel, function) not in ALLOWED:
                    offenders.append(f"{rel}:{line} in {function}")
    assert not offenders, "store used outside the Gate:\n" + "\n".join(offenders)


def test_the_check_sees_a_store_access(tmp_path):
    # the walk above would pass on anything if it could not see an access
    sample = tmp_path / "sample.py"
    sample.write_text("async def f(ctx):\n    return await ctx.gate._store.read('Patient', 'x')\n")
    assert _store_uses(sample) == [("f", 2)]
