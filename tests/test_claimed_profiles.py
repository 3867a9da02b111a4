"""`profiles/claimed-profiles.json` is the one list of the profiles resources claim: the
served DocumentReference's PDSm profile, and the FR Document Core profile of every kind of
structured content."""

from __future__ import annotations

from fhir_server.fhir.profiles import claimed_profile, profile_rows
from fhir_server.fhir.resource_types import RESOURCE_TYPES

FR_DOCUMENT_CORE = "https://interop.esante.gouv.fr/ig/fhir/document-core/StructureDefinition/"


def test_the_capability_statement_profiles_are_the_listed_ones() -> None:
    declared = {rt.name: rt.profile for rt in RESOURCE_TYPES.values() if rt.profile}
    assert declared
    for name, profile in declared.items():
        assert claimed_profile({"resourceType": name}) == profile


def test_rows_are_matched_first_first() -> None:
    lab = {
        "resourceType": "Observation",
        "category": [{"coding": [{"code": "laboratory"}]}],
        "code": {"coding": [{"code": "3016-3"}]},
    }
    vital = {**lab, "category": [{"coding": [{"code": "vital-signs"}]}]}
    assert claimed_profile(lab) == FR_DOCUMENT_CORE + (
        "fr-observation-laboratory-report-results-document"
    )
    assert claimed_profile(vital) == FR_DOCUMENT_CORE + "fr-observation-vital-signs-document"
    assert claimed_profile({"resourceType": "Observation"}) is None


def test_every_derived_type_has_a_profile() -> None:
    from fhir_server.fhir.derived import DERIVED_TYPES

    listed = {row.resource_type for row in profile_rows()}
    assert set(DERIVED_TYPES) <= listed
