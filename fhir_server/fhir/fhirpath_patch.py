"""FHIRPath Patch (FHIR R4 "fhirpatch": a `Parameters` of `operation` parts) applied to a
resource as plain JSON (pure; the input is never mutated).

Only the simple paths the DMP guide uses are understood: `Type`, `.element` steps,
`[n]`, `first()`, `last()`, and `where(<element>[.<element>...] = '<text>' [and ...])`,
e.g. `DocumentReference.status`, `DocumentReference.securityLabel[0]`,
`DocumentReference.extension.where(url='...')`,
`DocumentReference.securityLabel.where(coding.code='MASQUE_PS')`. Any other FHIRPath is
refused (400) rather than guessed. Operations: add, insert, delete, replace, move.
`securityLabel` entries are written by intent (`label_intent`)."""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass
from typing import Any

from fhir_server.errors import FhirError, Issue
from fhir_server.fhir import label_intent

Json = dict[str, Any]
TYPES = ("add", "insert", "delete", "replace", "move")
# elements that repeat (0..*), for `add` of an element the resource does not carry yet
REPEATING = frozenset(
    {
        "extension",
        "modifierExtension",
        "securityLabel",
        "category",
        "coding",
        "identifier",
        "author",
        "relatesTo",
        "content",
        "event",
        "related",
        "contained",
        "tag",
        "security",
        "profile",
        "given",
        "name",
        "telecom",
        "address",
        "generalPractitioner",
    }
)
_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]*")
_INDEX = re.compile(r"([A-Za-z][A-Za-z0-9_]*)\[(\d+)\]")
_COND = re.compile(r"\s*([A-Za-z][A-Za-z0-9_.]*)\s*=\s*'((?:[^'\\]|\\.)*)'\s*")


@dataclass(frozen=True)
class Operation:
    number: int
    type: str
    path: str
    name: str | None = None
    value: Any = None
    has_value: bool = False
    index: int | None = None
    source: int | None = None
    destination: int | None = None


def _fail(i: int, message: str, status: int = 422) -> FhirError:
    return FhirError(
        status,
        [
            Issue(
                "invalid" if status == 400 else "processing",
                f"FHIRPath Patch operation {i}: {message}",
                expression=(f"Parameters.parameter[{i}]",),
            )
        ],
    )


# -- reading the Parameters --------------------------------------------------------------


def _value_of(part: Json) -> Any:
    """A part's value: its value[x], or an object built from its own parts."""
    for key, value in part.items():
        if key.startswith("value"):
            return copy.deepcopy(value)
    out: Json = {}
    for sub in part.get("part") or []:
        name = sub.get("name")
        value = _value_of(sub)
        if name in out:
            out[name] = [*out[name], value] if isinstance(out[name], list) else [out[name], value]
        else:
            out[name] = [value] if name in REPEATING else value
    return out


def parse_operations(body: Any) -> list[Operation]:
    if not isinstance(body, dict) or body.get("resourceType") != "Parameters":
        raise FhirError(400, [Issue("invalid", "A FHIRPath Patch is a Parameters resource")])
    ops: list[Operation] = []
    for i, param in enumerate(body.get("parameter") or []):
        if not isinstance(param, dict) or param.get("name") != "operation":
            raise _fail(i, "each parameter must be named 'operation'", 400)
        parts: dict[str, Json] = {}
        for part in param.get("part") or []:
            if isinstance(part, dict) and isinstance(part.get("name"), str):
                parts[part["name"]] = part
        kind = _value_of(parts.get("type", {})) if "type" in parts else None
        path = _value_of(parts.get("path", {})) if "path" in parts else None
        if kind not in TYPES:
            raise _fail(i, f"type must be one of {', '.join(TYPES)}, not {kind!r}", 400)
        if not isinstance(path, str) or not path:
            raise _fail(i, "path is required", 400)
        ints = {}
        for key in ("index", "source", "destination"):
            value = _value_of(parts[key]) if key in parts else None
            if value is not None and (not isinstance(value, int) or isinstance(value, bool)):
                raise _fail(i, f"{key} must be an integer", 400)
            ints[key] = value
        name = _value_of(parts["name"]) if "name" in parts else None
        op = Operation(
            i,
            kind,
            path,
            name if isinstance(name, str) else None,
            _value_of(parts["value"]) if "value" in parts else None,
            "value" in parts,
            **ints,
        )
        _check_arguments(op)
        ops.append(op)
    if not ops:
        raise FhirError(400, [Issue("invalid", "A FHIRPath Patch needs at least one operation")])
    return ops


_NEEDS = {
    "add": ("name", "value"),
    "insert": ("value", "index"),
    "delete": (),
    "replace": ("value",),
    "move": ("source", "destination"),
}


def _check_arguments(op: Operation) -> None:
    for arg in _NEEDS[op.type]:
        missing = not op.has_value if arg == "value" else getattr(op, arg) is None
        if missing:
            raise _fail(op.number, f"{op.type} needs {arg}", 400)


# -- paths -------------------------------------------------------------------------------


def _steps(path: str, i: int) -> list[str]:
    """Split at the dots outside quotes and parentheses."""
    steps, depth, quoted, current = [], 0, False, ""
    for ch in path:
        if ch == "'" and not current.endswith("\\"):
            quoted = not quoted
        elif not quoted and ch == "(":
            depth += 1
        elif not quoted and ch == ")":
            depth -= 1
        if ch == "." and depth == 0 and not quoted:
            steps.append(current)
            current = ""
        else:
            current += ch
    steps.append(current)
    if quoted or depth or any(not s for s in steps):
        raise _fail(i, f"path {path!r} cannot be read", 400)
    return steps


# a location: (container, key) with container[key] the node; the resource itself is (None, None)
Loc = tuple[Any, Any]


def _node(doc: Json, loc: Loc) -> Any:
    container, key = loc
    return doc if container is None else container[key]


def _children(node: Any, name: str) -> list[Loc]:
    if not isinstance(node, dict) or name not in node:
        return []
    child = node[name]
    if isinstance(child, list):
        return [(child, k) for k in range(len(child))]
    return [(node, name)]


def _matches(node: Any, conds: list[tuple[str, str]]) -> bool:
    for element, text in conds:
        values = [node]
        for name in element.split("."):
            nxt = []
            for v in values:
                if isinstance(v, dict) and name in v:
                    child = v[name]
                    nxt += child if isinstance(child, list) else [child]
            values = nxt
        if text not in [v for v in values if isinstance(v, str)]:
            return False
    return True


def _where(step: str, i: int) -> list[tuple[str, str]]:
    inner = step[len("where(") : -1]
    conds = []
    for clause in re.split(r"\s+and\s+", inner):
        m = _COND.fullmatch(clause)
        if m is None:
            raise _fail(i, f"where({inner}) is not supported: only element = 'text' [and ...]", 400)
        conds.append((m.group(1), m.group(2).replace("\\'", "'")))
    return conds


def evaluate(doc: Json, path: str, i: int) -> list[Loc]:
    """The locations a path selects in `doc`."""
    steps = _steps(path, i)
    if steps[0] != doc.get("resourceType"):
        raise _fail(i, f"path {path!r} must start with {doc.get('resourceType')}", 400)
    locs: list[Loc] = [(None, None)]
    for step in steps[1:]:
        if step.startswith("where(") and step.endswith(")"):
            conds = _where(step, i)
            locs = [loc for loc in locs if _matches(_node(doc, loc), conds)]
        elif step == "first()":
            locs = locs[:1]
        elif step == "last()":
            locs = locs[-1:]
        elif (m := _INDEX.fullmatch(step)) is not None:
            found = [c for loc in locs for c in _children(_node(doc, loc), m.group(1))]
            n = int(m.group(2))
            locs = found[n : n + 1]
        elif _NAME.fullmatch(step):
            locs = [c for loc in locs for c in _children(_node(doc, loc), step)]
        else:
            raise _fail(i, f"{step!r} in {path!r} is not supported by this server", 400)
    return locs


def _one(doc: Json, op: Operation) -> Loc:
    locs = evaluate(doc, op.path, op.number)
    if len(locs) != 1:
        found = "nothing" if not locs else f"{len(locs)} elements"
        raise _fail(op.number, f"path {op.path!r} must select one element, not {found}")
    return locs[0]


def _list_at(doc: Json, op: Operation, create: bool) -> list[Any]:
    """The list a path names (insert, move): the path's last step is the element."""
    steps = _steps(op.path, op.number)
    parent_path, name = ".".join(steps[:-1]), steps[-1]
    if len(steps) < 2 or not _NAME.fullmatch(name):
        raise _fail(op.number, f"{op.type} needs a path ending with a repeating element", 400)
    container, key = _one(doc, Operation(op.number, op.type, parent_path))
    parent = doc if container is None else container[key]
    if not isinstance(parent, dict):
        raise _fail(op.number, f"{parent_path!r} is not an element with children")
    if name not in parent and create:
        parent[name] = []
    found = parent.get(name)
    if not isinstance(found, list):
        raise _fail(op.number, f"{op.path!r} is not a list")
    return found


# -- operations --------------------------------------------------------------------------


def _is_labels(doc: Json, container: Any) -> bool:
    return container is not None and container is doc.get("securityLabel")


def _apply(doc: Json, op: Operation) -> None:
    if op.type == "replace":
        container, key = _one(doc, op)
        if container is None:
            raise _fail(op.number, "the whole resource cannot be replaced by a patch", 400)
        if _is_labels(doc, container):
            doc["securityLabel"] = label_intent.replace_at(container, key, op.value)
        else:
            container[key] = op.value
    elif op.type == "add":
        container, key = _one(doc, op)
        node = doc if container is None else container[key]
        if not isinstance(node, dict):
            raise _fail(op.number, f"{op.path!r} is not an element with children")
        assert op.name is not None
        if node is doc and op.name == "securityLabel":
            doc["securityLabel"] = label_intent.add(doc.get("securityLabel") or [], op.value)
        elif isinstance(node.get(op.name), list) or (op.name not in node and op.name in REPEATING):
            node.setdefault(op.name, []).append(op.value)
        elif op.name in node:
            raise _fail(op.number, f"{op.path}.{op.name} is present already: replace it")
        else:
            node[op.name] = op.value
    elif op.type == "insert":
        target = _list_at(doc, op, create=True)
        assert op.index is not None
        if not 0 <= op.index <= len(target):
            raise _fail(op.number, f"index {op.index} is out of range")
        if target is doc.get("securityLabel"):
            doc["securityLabel"] = label_intent.add(target, op.value, op.index)
        else:
            target.insert(op.index, op.value)
    elif op.type == "delete":
        locs = evaluate(doc, op.path, op.number)
        if len(locs) > 1:
            raise _fail(op.number, f"path {op.path!r} selects {len(locs)} elements, not one")
        for container, key in locs:
            if container is None:
                raise _fail(op.number, "the whole resource cannot be deleted by a patch", 400)
            container.pop(key)
        _drop_empty(doc)
    else:  # move
        target = _list_at(doc, op, create=False)
        assert op.source is not None and op.destination is not None
        if not (0 <= op.source < len(target) and 0 <= op.destination < len(target)):
            raise _fail(op.number, "source or destination is out of range")
        target.insert(op.destination, target.pop(op.source))


def _drop_empty(node: Any) -> None:
    """FHIR has no empty arrays or objects: a delete that empties one removes it."""
    if isinstance(node, dict):
        for key in list(node):
            _drop_empty(node[key])
            if node[key] in ([], {}):
                del node[key]
    elif isinstance(node, list):
        for v in node:
            _drop_empty(v)


def apply_fhirpath_patch(resource: Json, body: Any) -> Json:
    operations = parse_operations(body)
    doc = copy.deepcopy(resource)
    for op in operations:
        _apply(doc, op)
    return doc
