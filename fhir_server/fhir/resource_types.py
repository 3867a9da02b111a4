"""The resource types this server serves and what may be done with each (data, not code)."""

from __future__ import annotations

from dataclasses import dataclass

from fhir.resources.R4B.allergyintolerance import AllergyIntolerance
from fhir.resources.R4B.auditevent import AuditEvent
from fhir.resources.R4B.binary import Binary
from fhir.resources.R4B.communication import Communication
from fhir.resources.R4B.condition import Condition
from fhir.resources.R4B.consent import Consent
from fhir.resources.R4B.diagnosticreport import DiagnosticReport
from fhir.resources.R4B.documentreference import DocumentReference
from fhir.resources.R4B.immunization import Immunization
from fhir.resources.R4B.list import List
from fhir.resources.R4B.medicationstatement import MedicationStatement
from fhir.resources.R4B.observation import Observation
from fhir.resources.R4B.patient import Patient
from fhir.resources.R4B.procedure import Procedure
from fhir.resources.R4B.specimen import Specimen

from fhir_server.fhir.mhd import PDSM_DOCREF_PROFILE

ALL_INTERACTIONS = (
    "read",
    "vread",
    "update",
    "delete",
    "history-instance",
    "history-type",
    "create",
    "search-type",
)
READ_ONLY = ("read", "vread", "history-instance", "history-type", "search-type")
# DMP: records are closed (then destroyed by housekeeping), Consents withdrawn by a new
# version, document content follows its document: only a DocumentReference is deleted
NO_DELETE = tuple(i for i in ALL_INTERACTIONS if i != "delete")


@dataclass(frozen=True)
class ResourceType:
    name: str
    model: type
    interactions: tuple[str, ...]
    conditional_create: bool = True
    profile: str | None = None

    def allows(self, interaction: str) -> bool:
        return interaction in self.interactions


RESOURCE_TYPES: dict[str, ResourceType] = {
    rt.name: rt
    for rt in (
        ResourceType("Patient", Patient, NO_DELETE),
        ResourceType(
            "DocumentReference",
            DocumentReference,
            (*ALL_INTERACTIONS, "patch"),
            profile=PDSM_DOCREF_PROFILE,
        ),
        ResourceType("Consent", Consent, NO_DELETE),
        ResourceType("Binary", Binary, NO_DELETE),
        ResourceType("List", List, NO_DELETE),
        # written by the server only: never created, changed or deleted through the API
        ResourceType("AuditEvent", AuditEvent, READ_ONLY, conditional_create=False),
        ResourceType("Communication", Communication, READ_ONLY, conditional_create=False),
        # structured content of a filed document: written with it, never through the API
        ResourceType("Observation", Observation, READ_ONLY, conditional_create=False),
        ResourceType("DiagnosticReport", DiagnosticReport, READ_ONLY, conditional_create=False),
        ResourceType("Condition", Condition, READ_ONLY, conditional_create=False),
        ResourceType("AllergyIntolerance", AllergyIntolerance, READ_ONLY, conditional_create=False),
        ResourceType(
            "MedicationStatement", MedicationStatement, READ_ONLY, conditional_create=False
        ),
        ResourceType("Procedure", Procedure, READ_ONLY, conditional_create=False),
        ResourceType("Immunization", Immunization, READ_ONLY, conditional_create=False),
        # laboratory samples and isolates (CR-BIO)
        ResourceType("Specimen", Specimen, READ_ONLY, conditional_create=False),
    )
}
