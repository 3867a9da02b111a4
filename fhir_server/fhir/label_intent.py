"""What a patch of one `securityLabel` entry means (pure), so that the labels a document
ends with are the ones the client meant, wherever its visibility code sits in the array.

The guide's TD3.3a/b patches treat `securityLabel[0]` as *the* visibility status:
`replace /securityLabel/0` with MASQUE_PS (or INVISIBLE_*) hides, with the confidentiality
code N shows again. A DMP document carries its confidentiality code (J08, e.g. N) *and*
its visibility codes (TRE_A07), in any order, so applied literally such a patch could
overwrite the confidentiality code, or change nothing. Read by intent:

| the entry written | the entry it replaces | result |
|---|---|---|
| a visibility code C | a confidentiality code | C added, every other label kept |
| a visibility code C | another visibility code | that code replaced by C |
| N | a visibility code | that code removed (shown again) |
| N | the confidentiality code N | the one visibility code removed; 422 if several (ambiguous) |
| anything else | any | written as sent |

Adding a label the document carries already changes nothing (it is what was meant).
Whatever the patch, a document keeps a confidentiality code (`check_kept`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fhir_server.errors import FhirError, Issue
from fhir_server.policy.model import VISIBILITY_CODES, VISIBILITY_SYSTEM

CONFIDENTIALITY_SYSTEM = "http://terminology.hl7.org/CodeSystem/v3-Confidentiality"
NORMAL = "N"


def _codings(label: Any) -> list[Mapping[str, Any]]:
    if not isinstance(label, Mapping):
        return []
    return [c for c in label.get("coding") or [] if isinstance(c, Mapping)]


def visibility_code(label: Any) -> str | None:
    """The TRE_A07 code a label carries, if any."""
    for c in _codings(label):
        if c.get("system") == VISIBILITY_SYSTEM and c.get("code") in VISIBILITY_CODES:
            return str(c["code"])
    return None


def is_normal(label: Any) -> bool:
    return any(
        c.get("code") == NORMAL and c.get("system") in (CONFIDENTIALITY_SYSTEM, None)
        for c in _codings(label)
    )


def _same(a: Any, b: Any) -> bool:
    return {(c.get("system"), c.get("code")) for c in _codings(a)} == {
        (c.get("system"), c.get("code")) for c in _codings(b)
    }


def _fail(message: str, where: str) -> FhirError:
    return FhirError(422, [Issue("business-rule", message, expression=(where,))])


def replace_at(labels: list[Any], index: int, value: Any) -> list[Any]:
    """The labels after the entry at `index` is replaced by `value`, read by intent."""
    if not 0 <= index < len(labels):
        raise _fail(f"securityLabel[{index}] does not exist", "DocumentReference.securityLabel")
    target = labels[index]
    others = labels[:index] + labels[index + 1 :]
    written = visibility_code(value)
    if written is not None:
        kept = others if visibility_code(target) is not None else labels
        return add(kept, value)
    if is_normal(value) and visibility_code(target) is not None:
        return others
    if is_normal(value) and is_normal(target):
        shown = [i for i, label in enumerate(labels) if visibility_code(label) is not None]
        if len(shown) > 1:
            codes = ", ".join(str(visibility_code(labels[i])) for i in shown)
            raise _fail(
                f"securityLabel[{index}] is the confidentiality code and the document "
                f"carries several visibility codes ({codes}): name the one to remove "
                "(FHIRPath Patch delete DocumentReference.securityLabel.where(coding.code="
                "'<code>'), or JSON Patch remove of its own index)",
                f"DocumentReference.securityLabel[{index}]",
            )
        return [label for i, label in enumerate(labels) if i not in shown]
    return [*labels[:index], value, *labels[index + 1 :]]


def add(labels: list[Any], value: Any, index: int | None = None) -> list[Any]:
    """The labels after `value` is added (at `index`, else at the end); a label already
    carried is not added twice (nor a second N)."""
    if any(_same(label, value) for label in labels):
        return list(labels)
    if is_normal(value) and any(is_normal(label) for label in labels):
        return list(labels)
    out = list(labels)
    out.insert(len(out) if index is None else index, value)
    return out


# the codes each known label system holds (v3 Confidentiality; TRE_A07)
KNOWN_CODES: Mapping[str, frozenset[str]] = {
    CONFIDENTIALITY_SYSTEM: frozenset({"U", "L", "M", "N", "R", "V"}),
    VISIBILITY_SYSTEM: VISIBILITY_CODES,
}


def check_kept(before: Mapping[str, Any], after: Mapping[str, Any]) -> None:
    """A patch may change the confidentiality code, never leave the document without one,
    nor write a code its system does not hold (a patch of `coding[0].code` that turns the
    confidentiality code into MASQUE_PS would hide nothing)."""
    for i, label in enumerate(after.get("securityLabel") or []):
        for c in _codings(label):
            allowed = KNOWN_CODES.get(str(c.get("system")))
            if allowed is not None and c.get("code") not in allowed:
                raise _fail(
                    f"{c.get('code')!r} is not a code of {c.get('system')}",
                    f"DocumentReference.securityLabel[{i}]",
                )

    def confidential(doc: Mapping[str, Any]) -> bool:
        return any(visibility_code(label) is None for label in doc.get("securityLabel") or [])

    if confidential(before) and not confidential(after):
        raise _fail(
            "A document keeps its confidentiality code (J08): the patch would remove it; to "
            "show the document again, remove its visibility code (MASQUE_PS, INVISIBLE_*)",
            "DocumentReference.securityLabel",
        )
