"""Required code bindings of FHIR R4 that the fhir.resources models leave unchecked
(they type `code` as a plain string). Data: (type, top-level element) -> allowed codes."""

from __future__ import annotations

from typing import Any

from fhir_server.errors import Issue

REQUIRED_CODES: dict[tuple[str, str], frozenset[str]] = {
    ("Patient", "gender"): frozenset({"male", "female", "other", "unknown"}),
    ("DocumentReference", "status"): frozenset({"current", "superseded", "entered-in-error"}),
    ("DocumentReference", "docStatus"): frozenset(
        {
            "registered",
            "partial",
            "preliminary",
            "final",
            "amended",
            "corrected",
            "appended",
            "cancelled",
            "entered-in-error",
            "deprecated",
            "unknown",
        }
    ),
    ("Consent", "status"): frozenset(
        {"draft", "proposed", "active", "rejected", "inactive", "entered-in-error"}
    ),
    ("List", "status"): frozenset({"current", "retired", "entered-in-error"}),
    ("List", "mode"): frozenset({"working", "snapshot", "changes"}),
    ("Communication", "status"): frozenset(
        {
            "preparation",
            "in-progress",
            "not-done",
            "on-hold",
            "stopped",
            "completed",
            "entered-in-error",
            "unknown",
        }
    ),
}


def binding_issues(rtype: str, resource: dict[str, Any]) -> list[Issue]:
    issues = []
    for (t, element), allowed in REQUIRED_CODES.items():
        if t != rtype or element not in resource:
            continue
        value = resource[element]
        if not isinstance(value, str) or value not in allowed:
            shown = repr(value) if isinstance(value, str) else f"a {type(value).__name__}"
            issues.append(
                Issue(
                    "code-invalid",
                    f"{shown} is not a valid {rtype}.{element}: expected one of {sorted(allowed)}",
                    expression=(f"{rtype}.{element}",),
                )
            )
    return issues
