"""The DMP access policy: pure functions of (actor, access mode, action, patient facts,
Consents, document facts, now). See `decide.py` for the rule order and `tables.py` for
the rules as data."""

from fhir_server.policy.consents import ConsentFacts, parse_consents
from fhir_server.policy.decide import decide, label_actions, visibility_filter
from fhir_server.policy.model import (
    INVISIBLE_PATIENT,
    INVISIBLE_REPRESENTANTS_LEGAUX,
    MASQUE_PS,
    VISIBILITY_SYSTEM,
    Action,
    Decision,
    DocumentFacts,
    PatientFacts,
    RecordStatus,
)
from fhir_server.policy.visibility import (
    LabelRule,
    VisibilityFilter,
    embargo_active,
    embargo_cutoff,
)

__all__ = [
    "INVISIBLE_PATIENT",
    "INVISIBLE_REPRESENTANTS_LEGAUX",
    "MASQUE_PS",
    "VISIBILITY_SYSTEM",
    "Action",
    "ConsentFacts",
    "Decision",
    "DocumentFacts",
    "LabelRule",
    "PatientFacts",
    "RecordStatus",
    "VisibilityFilter",
    "decide",
    "embargo_active",
    "embargo_cutoff",
    "label_actions",
    "parse_consents",
    "visibility_filter",
]
