"""How a refusal is told (pure). Hidden and absent are one answer, word for word; a
refusal that depends on stored data the actor may not have is told in one fixed text; only
refusals about the request itself, or about a resource the actor may see, give reasons.
No message names another resource's id, a Consent, or a stored value."""

from __future__ import annotations

from fhir_server import errors
from fhir_server.errors import FhirError, Issue
from fhir_server.policy import Decision
from fhir_server.policy.decide import NO_ACCESS_REASON
from fhir_server.policy.model import Answer


def unknown(ref: str) -> FhirError:
    """The answer to an id the server does not hold, and to one the actor may not see."""
    return errors.not_found(f"{ref} is not known")


def refusal(decision: Decision, ref: str | None) -> FhirError:
    if decision.answer is Answer.HIDDEN:
        return unknown(ref or "resource")
    if decision.answer is Answer.NO_ACCESS:
        return FhirError(403, [Issue("forbidden", f"{NO_ACCESS_REASON} [no-access]")])
    if decision.answer is Answer.NO_RECORD:
        return FhirError(404, [Issue("not-found", f"{decision.reason} [{decision.rule}]")])
    return FhirError(403, [Issue("forbidden", f"{decision.reason} [{decision.rule}]")])


def hidden_as(decision: Decision) -> Decision:
    """The same decision (rule and reason stay for the audit), answered as an unknown id."""
    return Decision(False, decision.rule, decision.reason, Answer.HIDDEN)
