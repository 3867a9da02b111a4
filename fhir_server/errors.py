"""Errors as types. Every failure a client can see is a FhirError carrying its HTTP
status and the OperationOutcome issues that explain it; the API layer only serialises."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Issue:
    """One OperationOutcome.issue: severity, FHIR issue-type code, text, FHIRPath location."""

    code: str
    diagnostics: str
    severity: str = "error"
    expression: tuple[str, ...] = ()

    def to_fhir(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "severity": self.severity,
            "code": self.code,
            "diagnostics": self.diagnostics or self.code,
        }
        # FHIR strings cannot be empty: an empty location (e.g. a query parameter with no
        # name) made the OperationOutcome unserialisable in XML
        expression = [e for e in self.expression if e]
        if expression:
            out["expression"] = expression
        return out


@dataclass
class FhirError(Exception):
    status: int
    issues: list[Issue] = field(default_factory=list)
    headers: dict[str, str] = field(default_factory=dict)

    def __str__(self) -> str:
        return "; ".join(i.diagnostics for i in self.issues) or f"HTTP {self.status}"


def operation_outcome(issues: list[Issue]) -> dict[str, Any]:
    return {"resourceType": "OperationOutcome", "issue": [i.to_fhir() for i in issues]}


def _error(status: int, code: str, message: str, expression: tuple[str, ...] = ()) -> FhirError:
    return FhirError(status, [Issue(code, message, expression=expression)])


def bad_request(message: str, *expression: str, code: str = "invalid") -> FhirError:
    return _error(400, code, message, expression)


def unprocessable(message: str, *expression: str, code: str = "processing") -> FhirError:
    return _error(422, code, message, expression)


def not_found(message: str) -> FhirError:
    return _error(404, "not-found", message)


def gone(message: str) -> FhirError:
    return _error(410, "deleted", message)


def conflict(message: str, code: str = "conflict") -> FhirError:
    return _error(409, code, message)


def precondition_failed(message: str) -> FhirError:
    return _error(412, "conflict", message)


def method_not_allowed(message: str) -> FhirError:
    return _error(405, "not-supported", message)


def forbidden(message: str) -> FhirError:
    return _error(403, "forbidden", message)


def unauthorized(message: str) -> FhirError:
    return FhirError(
        401, [Issue("login", message)], headers={"WWW-Authenticate": 'Bearer realm="dmp-fhir"'}
    )


def unavailable(message: str) -> FhirError:
    return _error(503, "transient", message)
