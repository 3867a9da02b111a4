"""Index extraction (pure): what each parameter writes for a resource."""

from __future__ import annotations

from fhir_server.search.dates import MAX_INSTANT, MIN_INSTANT
from fhir_server.search.index import extract_terms, fold, reference_key
from fhir_server.search.tokens import token_value as tv
from tests.conftest import INS_TEST_SYSTEM, VALID_INS, patient
from tests.search.fixtures import CLASS_SYSTEM, LOINC, RPPS, document


def test_document_tokens_refs_dates_and_sort():
    res = {**document("p1", unique_id="urn:uuid:9", period=("2024-05", None)), "id": "d1"}
    t = extract_terms("DocumentReference", res)
    tokens = set(t.tokens)
    assert ("status", tv(None, "current")) in tokens
    # one term per coded value (its code, then its system)
    assert [v for p, v in tokens if p == "category"] == [tv(CLASS_SYSTEM, "10")]
    assert ("type", tv(LOINC, "11490-0")) in tokens
    assert ("identifier", tv("urn:ietf:rfc:3986", "urn:uuid:9")) in tokens
    # via the contained author
    assert ("author:identifier", tv(RPPS, "810000000001")) in tokens
    assert ("contenttype", tv(None, "text/xml")) in tokens
    assert set(t.refs) == {("patient", "Patient/p1"), ("subject", "Patient/p1")}
    assert t.patient == "p1"
    dates = {p: (lo, hi) for p, lo, hi in t.dates}
    assert dates["date"] == ("2024-05-03T08:00:00.000000+00:00", "2024-05-03T08:00:00.999999+00:00")
    assert dates["period"] == ("2024-05-01T00:00:00.000000+00:00", MAX_INSTANT)
    assert dict(t.sort) == {"date": dates["date"][0], "period": dates["period"][0]}


def test_open_start_period_and_no_system_code():
    res = document("p1", period=(None, "2024-05-19"))
    res["category"] = [{"coding": [{"code": "X"}]}]
    t = extract_terms("DocumentReference", res)
    assert ("period", MIN_INSTANT, "2024-05-19T23:59:59.999999+00:00") in t.dates
    assert [v for p, v in t.tokens if p == "category"] == [tv(None, "X")]


def test_a_value_holding_the_token_separator_is_not_indexed():
    res = document("p1")
    res["category"] = [
        {"coding": [{"system": "S", "code": "A\x1fB"}, {"system": "S\x1f", "code": "C"}]}
    ]
    t = extract_terms("DocumentReference", res)
    assert [v for p, v in t.tokens if p == "category"] == []


def test_patient_strings_are_folded_and_kept_exact():
    res = {**patient(family="Éléonore-Dupré", active=True), "id": "p9"}
    res["generalPractitioner"] = [{"identifier": {"system": RPPS, "value": "81"}}]
    t = extract_terms("Patient", res)
    assert ("family", "eleonore-dupre") in t.strings
    assert ("family:exact", "Éléonore-Dupré") in t.strings
    assert ("given", "dominique") in t.strings and ("name", "dominique") in t.strings
    assert ("identifier", tv(INS_TEST_SYSTEM, VALID_INS)) in t.tokens
    assert ("active", tv(None, "true")) in t.tokens and ("gender", tv(None, "female")) in t.tokens
    assert ("general-practitioner:identifier", tv(RPPS, "81")) in t.tokens
    assert t.patient == "p9"
    assert (
        "birthdate",
        "1979-03-28T00:00:00.000000+00:00",
        "1979-03-28T23:59:59.999999+00:00",
    ) in t.dates


def test_audit_event_patient_only_from_patient_references():
    res = {
        "resourceType": "AuditEvent",
        "agent": [{"who": {"reference": "Practitioner/pr1"}}],
        "entity": [
            {"what": {"reference": "Patient/p3"}},
            {"what": {"reference": "DocumentReference/d1"}},
        ],
    }
    t = extract_terms("AuditEvent", res)
    assert ("patient", "Patient/p3") in t.refs
    assert ("patient", "Practitioner/pr1") not in t.refs
    assert ("agent", "Practitioner/pr1") in t.refs
    assert t.patient == "p3"


def test_reference_key_forms():
    assert reference_key("Patient/1") == "Patient/1"
    assert reference_key("https://x.org/fhir/Patient/1/_history/3") == "Patient/1"
    assert reference_key("#c1") is None
    assert reference_key("urn:uuid:1") is None
    assert reference_key("xPatient/1") is None


def test_fold():
    assert fold("ÉLÉONORE") == fold("eleonore") == "eleonore"
    assert fold("Straße") == "strasse"


def test_empty_resource_has_no_terms():
    assert extract_terms("DocumentReference", {}).tokens == ()
