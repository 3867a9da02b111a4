"""JSON Patch (RFC 6902) applied to a FHIR resource as plain JSON (pure; the input is
never mutated). Errors are FhirErrors naming the failing operation.

Two readings the DMP guide needs beyond RFC 6902:
- `add` / `replace` of one `/securityLabel/<n>` entry is read by intent (`label_intent`);
- a step `extension[url:'<url>']` (the guide's TD3.3d) selects the extension with that
  url, and `add` / `replace` below it creates that extension when the resource lacks it.
"""

from __future__ import annotations

import copy
import re
from typing import Any

from fhir_server.errors import FhirError, Issue
from fhir_server.fhir import label_intent
from fhir_server.fhir.numbers import whole_number

_SELECTOR = re.compile(r"([A-Za-z][A-Za-z0-9_]*)\[url:'([^']*)'\]")
_STEP = re.compile(r"/((?:[^/']|'[^']*')*)")
_LABEL_ENTRY = re.compile(r"/securityLabel/(\d+|-)")

_MISSING = object()


def _fail(i: int, message: str, status: int = 422) -> FhirError:
    return FhirError(
        status,
        [Issue("processing", f"patch operation {i}: {message}", expression=(f"Parameters[{i}]",))],
    )


def _tokens(path: str, i: int) -> list[str]:
    if not isinstance(path, str):
        raise _fail(i, "path must be a string", 400)
    if path == "":
        return []
    if not path.startswith("/"):
        raise _fail(i, f"path {path!r} must start with '/'", 400)
    # a quoted url in a selector keeps its slashes
    tokens = _STEP.findall(path)
    if "/" + "/".join(tokens) != path:
        raise _fail(i, f"path {path!r} cannot be read", 400)
    return [t.replace("~1", "/").replace("~0", "~") for t in tokens]


def _child(node: Any, token: str, i: int, *, create: bool = False) -> Any:
    selector = _SELECTOR.fullmatch(token) if isinstance(node, dict) else None
    if selector is not None:
        name, url = selector.groups()
        items = node.get(name)
        items = items if isinstance(items, list) else None
        found = [x for x in items or [] if isinstance(x, dict) and x.get("url") == url]
        if len(found) > 1:
            raise _fail(i, f"{token!r} selects {len(found)} elements, not one")
        if found:
            return found[0]
        if not create:
            return _MISSING
        made: dict[str, Any] = {"url": url}
        node.setdefault(name, []).append(made)
        return made
    if isinstance(node, dict):
        return node.get(token, _MISSING)
    if isinstance(node, list):
        index = whole_number(token)
        if index is None or index >= len(node):
            return _MISSING
        return node[index]
    return _MISSING


def _parent(
    doc: Any, tokens: list[str], i: int, path: str, *, create: bool = False
) -> tuple[Any, str]:
    if not tokens:
        raise _fail(i, "the whole resource cannot be replaced by a patch", 400)
    node = doc
    for token in tokens[:-1]:
        node = _child(node, token, i, create=create)
        if node is _MISSING:
            raise _fail(i, f"path {path!r} does not exist")
    return node, tokens[-1]


def _get(doc: Any, path: str, i: int) -> Any:
    node = doc
    for token in _tokens(path, i):
        node = _child(node, token, i)
        if node is _MISSING:
            raise _fail(i, f"path {path!r} does not exist")
    return node


def _remove(doc: Any, path: str, i: int) -> Any:
    parent, last = _parent(doc, _tokens(path, i), i, path)
    if _child(parent, last, i) is _MISSING:
        raise _fail(i, f"path {path!r} does not exist")
    return parent.pop(int(last) if isinstance(parent, list) else last)


def _add(doc: Any, path: str, value: Any, i: int, *, replace: bool = False) -> None:
    tokens = _tokens(path, i)
    parent, last = _parent(doc, tokens, i, path, create=any(_SELECTOR.fullmatch(t) for t in tokens))
    if isinstance(parent, dict):
        # a selected extension was just created: its value is added, whatever the op
        created = parent.keys() == {"url"} and any(_SELECTOR.fullmatch(t) for t in tokens)
        if replace and last not in parent and not created:
            raise _fail(i, f"path {path!r} does not exist")
        parent[last] = value
    elif isinstance(parent, list):
        if last == "-" and not replace:
            parent.append(value)
            return
        index = whole_number(last)
        if index is None or index > len(parent) - (1 if replace else 0):
            raise _fail(i, f"index {last!r} is out of range in {path!r}")
        if replace:
            parent[index] = value
        else:
            parent.insert(index, value)
    else:
        raise _fail(i, f"path {path!r} does not point into an object or array")


def _label(doc: dict[str, Any], kind: str, where: str, value: Any, i: int) -> None:
    labels = doc.get("securityLabel") or []
    index = len(labels) if where == "-" else whole_number(where)
    if index is None or index > len(labels) - (kind == "replace"):
        raise _fail(i, f"index {where!r} is out of range in '/securityLabel/{where}'")
    doc["securityLabel"] = (
        label_intent.replace_at(labels, index, value)
        if kind == "replace"
        else label_intent.add(labels, value, index)
    )


def apply_patch(resource: dict[str, Any], operations: Any) -> dict[str, Any]:
    if not isinstance(operations, list):
        raise FhirError(400, [Issue("invalid", "A JSON Patch document is an array of operations")])
    doc = copy.deepcopy(resource)
    for i, op in enumerate(operations):
        if not isinstance(op, dict) or "op" not in op or "path" not in op:
            raise _fail(i, "each operation needs 'op' and 'path'", 400)
        kind, path = op["op"], op["path"]
        if kind in ("add", "replace", "test") and "value" not in op:
            raise _fail(i, f"{kind} needs a 'value'", 400)
        entry = _LABEL_ENTRY.fullmatch(path) if isinstance(path, str) else None
        if entry is not None and kind in ("add", "replace"):
            _label(doc, kind, entry.group(1), copy.deepcopy(op["value"]), i)
        elif kind == "add":
            _add(doc, path, copy.deepcopy(op["value"]), i)
        elif kind == "replace":
            _add(doc, path, copy.deepcopy(op["value"]), i, replace=True)
        elif kind == "remove":
            _remove(doc, path, i)
        elif kind in ("move", "copy"):
            if "from" not in op:
                raise _fail(i, f"{kind} needs 'from'", 400)
            value = (
                _remove(doc, op["from"], i)
                if kind == "move"
                else copy.deepcopy(_get(doc, op["from"], i))
            )
            _add(doc, path, value, i)
        elif kind == "test":
            if _get(doc, path, i) != op["value"]:
                raise _fail(i, f"test failed at {path!r}", 409)
        else:
            raise _fail(i, f"unknown op {kind!r}", 400)
    return doc
