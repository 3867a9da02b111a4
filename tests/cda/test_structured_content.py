"""Structured content of a CR-BIO body, read without a server (pure extraction): the
project's own fixture, then the ANS examples against the mapping reference's oracles."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from fhir_server.cda.extraction import BodyExtraction, extract_body, summary
from fhir_server.cda.mapping import read_cda
from fhir_server.fhir.derived import restamp, source_document
from fhir_server.policy.facts import derived_facts, document_facts
from tests.cda.documents import ANS_ABSENT, ANS_EXAMPLES

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "cda"
LOINC = "http://loinc.org"
UCUM = "http://unitsofmeasure.org"


def _extract(path: Path) -> BodyExtraction:
    return extract_body(read_cda(path.read_bytes()))


def _by_code(extraction: BodyExtraction, code: str) -> dict[str, Any]:
    return next(
        r
        for r in extraction.resources
        if r["resourceType"] == "Observation"
        and any(c.get("code") == code for c in r["code"].get("coding", []))
    )


@pytest.fixture(scope="module")
def body() -> BodyExtraction:
    return _extract(FIXTURES / "cr-bio-body.xml")


def test_counts_and_reasons(body):
    report = summary(body)
    assert report["extracted"] == {"Observation": 9, "DiagnosticReport": 1}
    assert report["skipped"] == 2
    assert any("'huit' is not a number" in r for r in report["skipped_reasons"])
    assert any("unknown entry template 1.2.250.1.999.99.1" in r for r in report["skipped_reasons"])
    assert len(report["warnings"]) == 1 and "20241314081500+0100" in report["warnings"][0]


def test_prefixed_xsi_type_is_a_quantity(body):
    tsh = _by_code(body, "3016-3")
    assert tsh["valueQuantity"] == {
        "value": 1.95,
        "unit": "m[IU]/L",
        "system": UCUM,
        "code": "m[IU]/L",
    }
    assert tsh["referenceRange"] == [
        {
            "low": {"value": 0.27, "unit": "m[IU]/L", "system": UCUM, "code": "m[IU]/L"},
            "high": {"value": 4.2, "unit": "m[IU]/L", "system": UCUM, "code": "m[IU]/L"},
        }
    ]
    assert tsh["interpretation"][0]["coding"][0]["code"] == "N"
    assert tsh["effectiveDateTime"] == "2024-01-14T09:00:00+01:00"
    assert tsh["status"] == "final"
    categories = [c["coding"][0]["code"] for c in tsh["category"]]
    assert categories == ["laboratory", "18719-5"]


def test_one_analyte_in_two_units_stays_two_results(body):
    moles, mass = _by_code(body, "14749-6"), _by_code(body, "2345-7")
    assert (moles["valueQuantity"]["value"], moles["valueQuantity"]["unit"]) == (5.2, "mmol/L")
    assert (mass["valueQuantity"]["value"], mass["valueQuantity"]["unit"]) == (0.94, "g/L")


def test_code_in_a_translation_and_a_one_bound_interval(body):
    crp = _by_code(body, "CRP-L")
    assert crp["code"] == {
        "coding": [
            {"system": "urn:oid:1.2.250.1.999.7.1", "code": "CRP-L", "display": "CRP (code local)"}
        ],
        "text": "CRP locale",
    }
    assert crp["valueQuantity"]["comparator"] == "<"
    assert crp["valueQuantity"]["value"] == 5
    assert crp["referenceRange"] == [
        {"high": {"value": 5.0, "unit": "mg/L", "system": UCUM, "code": "mg/L"}}
    ]


def test_invalid_timestamp_is_dropped_and_year_only_kept(body):
    sodium = _by_code(body, "2951-2")
    assert "effectiveDateTime" not in sodium and sodium["valueQuantity"]["value"] == 140
    abo = _by_code(body, "883-9")
    assert abo["effectiveDateTime"] == "2024"
    assert abo["valueCodeableConcept"]["coding"][0] == {
        "system": "http://snomed.info/sct",
        "code": "278149003",
        "display": "Groupe A",
    }


def test_battery_members_notes_and_report(body):
    battery = _by_code(body, "24362-6")  # no code of its own: the sub-chapter's
    assert battery["note"] == [{"text": "Prélèvement hémolysé"}]
    member = battery["hasMember"][0]["reference"].split("/")[1]
    colour = next(r for r in body.resources if r["id"] == member)
    assert colour["valueString"] == "Jaune clair"
    entry = _by_code(body, "18719-5")
    assert len(entry["hasMember"]) == 7  # six results kept (one skipped) and the battery
    report = next(r for r in body.resources if r["resourceType"] == "DiagnosticReport")
    assert report["result"] == [{"reference": f"Observation/{entry['id']}"}]
    assert report["code"]["coding"][0]["code"] == "11502-2"
    assert [c["coding"][0]["code"] for c in report["category"]] == ["26436-6", "18719-5"]


def test_ids_are_deterministic_and_unique(body):
    again = _extract(FIXTURES / "cr-bio-body.xml")
    assert [r["id"] for r in again.resources] == [r["id"] for r in body.resources]
    assert len({r["id"] for r in body.resources}) == len(body.resources)
    other = _extract(FIXTURES / "cr-bio-n3.xml")
    assert not {r["id"] for r in other.resources} & {r["id"] for r in body.resources}


def test_a_derived_resource_carries_its_documents_facts(body):
    document = {
        "resourceType": "DocumentReference",
        "id": "doc-1",
        "subject": {"reference": "Patient/p1"},
        "masterIdentifier": {"value": "1.2.3^X"},
        "securityLabel": [
            {
                "coding": [
                    {
                        "system": "https://mos.esante.gouv.fr/NOS/TRE_A07-StatutVisibiliteDocument/FHIR/TRE-A07-StatutVisibiliteDocument",
                        "code": "MASQUE_PS",
                    }
                ]
            }
        ],
        "category": [
            {
                "coding": [
                    {
                        "system": "https://mos.esante.gouv.fr/NOS/TRE_A03-ClasseDocument/FHIR/TRE-A03-ClasseDocument",
                        "code": "10",
                    }
                ]
            }
        ],
        "author": [{"reference": "#a1"}],
        "contained": [
            {
                "resourceType": "Practitioner",
                "id": "a1",
                "identifier": [{"system": "urn:oid:1.2.250.1.71.4.2.1", "value": "8100"}],
            }
        ],
        "extension": [
            {
                "url": "https://dmp-fhir.invalid/StructureDefinition/filed-at",
                "valueInstant": "2024-01-15T10:00:00+01:00",
            }
        ],
    }
    stamped = restamp(body.resources[0], document)
    assert source_document(stamped) == "doc-1"
    assert stamped["subject"] == {"reference": "Patient/p1"}
    assert stamped["meta"]["source"] == "1.2.3^X"
    facts, expected = derived_facts(stamped), document_facts(document)
    assert (facts.labels, facts.author_rpps, facts.class_code, facts.filed_at) == (
        expected.labels,
        expected.author_rpps,
        expected.class_code,
        expected.filed_at,
    )
    unmasked = restamp(stamped, {**document, "securityLabel": []})
    assert derived_facts(unmasked).labels == frozenset()


def test_a_level_1_document_yields_nothing():
    assert _extract(FIXTURES / "cr-bio-n1-pdf.xml") == BodyExtraction()


# -- the ANS examples (third-party; skipped when ../shared is absent) -----------------------

ANS = pytest.mark.skipif(not ANS_EXAMPLES.is_dir(), reason=ANS_ABSENT)


@ANS
def test_ans_tsh_matches_the_oracle():
    tsh = _extract(ANS_EXAMPLES / "BIO-CR-BIO_2024.01_TSH_1.xml")
    assert tsh.counts() == {"Observation": 3, "DiagnosticReport": 1}
    assert not tsh.skipped
    first, second = _by_code(tsh, "3016-3"), _by_code(tsh, "3024-7")
    assert first["valueQuantity"] == {
        "value": 1.95,
        "unit": "m[IU]/L",
        "system": UCUM,
        "code": "m[IU]/L",
    }
    assert first["interpretation"][0]["coding"][0]["code"] == "N"
    assert (
        first["referenceRange"][0]["low"]["value"],
        first["referenceRange"][0]["high"]["value"],
    ) == (0.27, 4.2)
    assert second["valueQuantity"]["value"] == 7.67 and second["valueQuantity"]["unit"] == "pg/mL"
    assert second["interpretation"][0]["coding"][0]["code"] == "L"
    assert (
        second["referenceRange"][0]["low"]["value"],
        second["referenceRange"][0]["high"]["value"],
    ) == (9.3, 17.0)
    report = next(r for r in tsh.resources if r["resourceType"] == "DiagnosticReport")
    assert {"system": LOINC, "code": "18719-5", "display": "Biochimie"} in report["category"][1][
        "coding"
    ]
    leaves = [
        r for r in tsh.resources if r["resourceType"] == "Observation" and "hasMember" not in r
    ]
    assert len(leaves) == 2


@ANS
def test_ans_crp_non_loinc_matches_the_oracle():
    crp = _extract(ANS_EXAMPLES / "BIO-CR-BIO_2024.01_CRP_non_LOINC.xml")
    assert crp.counts() == {"Observation": 2, "DiagnosticReport": 1}
    result = _by_code(crp, "1234")
    assert result["code"]["coding"][0]["system"] == "urn:oid:1.2.250.1.2.3.4"
    assert result["code"]["text"] == "CRP"
    assert result["valueQuantity"]["comparator"] == "<="
    assert (result["valueQuantity"]["value"], result["valueQuantity"]["unit"]) == (1.0, "mg/L")
    assert result["referenceRange"] == [
        {"high": {"value": 5.0, "unit": "mg/L", "system": UCUM, "code": "mg/L"}}
    ]


@ANS
def test_ans_electrophoresis_warns_of_its_invalid_timestamp():
    electro = _extract(ANS_EXAMPLES / "BIO-CR-BIO_2023.01_Electrophorese.xml")
    assert any("20092012081500+0100" in w for w in electro.warnings)
    assert electro.counts()["DiagnosticReport"] >= 1
    # the prior result with that timestamp is kept, without its time, beside the result
    supporting = "http://hl7.org/fhir/StructureDefinition/workflow-supportingInfo"
    prior = [
        e["valueReference"]["reference"]
        for r in electro.resources
        for e in r.get("extension", [])
        if e["url"] == supporting
    ]
    kept = {f"Observation/{r['id']}" for r in electro.resources}
    assert prior and set(prior) <= kept


@ANS
@pytest.mark.parametrize(
    "name",
    [
        "BIO-CR-BIO_2021.01_Auto-Presentable.xml",
        "BIO-CR-BIO_2024.01_Glycemie_deux_unites_principales_mole_masse.xml",
        "BIO-CR-BIO_2024.01_Microbiologie_V1.xml",
    ],
)
def test_ans_lab_examples_extract_every_result(name):
    extraction = _extract(ANS_EXAMPLES / name)
    assert extraction.counts()["DiagnosticReport"] >= 1
    # every kept observation is a member of something, a report's result or a prior result
    referenced = {
        ref["reference"].split("/")[1]
        for r in extraction.resources
        for ref in r.get("hasMember", [])
        + r.get("result", [])
        + [e["valueReference"] for e in r.get("extension", []) if "valueReference" in e]
    }
    observations = {r["id"] for r in extraction.resources if r["resourceType"] == "Observation"}
    assert observations <= referenced
    assert not [s for s in extraction.skipped if "unknown" in s]


# -- patient summaries: problems and allergies ----------------------------------------------


def test_patient_summary_problems_and_allergies():
    vsm = _extract(FIXTURES / "vsm-body.xml")
    assert vsm.counts() == {
        "Condition": 2,
        "AllergyIntolerance": 2,
        "MedicationStatement": 2,
        "Procedure": 1,
        "Immunization": 1,
        "Observation": 3,  # two vital signs and their panel
    }
    # the entry of an unknown template is reported; the intent (moodCode INT) is not an event
    assert [s.split(": ", 1)[1] for s in vsm.skipped] == ["not a problems entry"]
    conditions = {c["code"]["coding"][0]["code"]: c for c in vsm.resources if "onsetDateTime" in c}
    hta, appendicitis = conditions["I10"], conditions["K35.8"]
    assert hta["code"]["text"] == "Hypertension artérielle"
    assert hta["clinicalStatus"]["coding"][0]["code"] == "remission"  # its status observation
    assert hta["onsetDateTime"] == "2020-01-15"
    assert appendicitis["clinicalStatus"]["coding"][0]["code"] == "resolved"  # concern completed
    assert (appendicitis["onsetDateTime"], appendicitis["abatementDateTime"]) == (
        "1998",
        "1998-06-10",
    )
    allergies = [r for r in vsm.resources if r["resourceType"] == "AllergyIntolerance"]
    assert allergies[0]["code"]["coding"][0]["code"] == "J01CE"
    assert allergies[0]["clinicalStatus"]["coding"][0]["code"] == "active"
    assert allergies[0]["onsetPeriod"] == {"start": "2010-03-01"}
    assert allergies[1]["code"]["coding"][0]["system"].endswith("/data-absent-reason")


def _one(extraction: BodyExtraction, rtype: str, code: str) -> dict[str, Any]:
    field = {
        "MedicationStatement": "medicationCodeableConcept",
        "Immunization": "vaccineCode",
    }.get(rtype, "code")
    return next(
        r
        for r in extraction.resources
        if r["resourceType"] == rtype and any(c["code"] == code for c in r[field]["coding"])
    )


def test_certainty_severity_criticality_and_reactions():
    vsm = _extract(FIXTURES / "vsm-body.xml")
    hta = _one(vsm, "Condition", "I10")
    assert hta["verificationStatus"]["coding"] == [
        {
            "system": "http://terminology.hl7.org/CodeSystem/condition-ver-status",
            "code": "confirmed",
        }
    ]
    assert hta["severity"]["coding"][0]["code"] == "6736007"
    allergy = _one(vsm, "AllergyIntolerance", "J01CE")
    assert allergy["criticality"] == "high"
    assert allergy["reaction"] == [
        {
            "manifestation": [
                {
                    "coding": [
                        {
                            "system": "https://smt.esante.gouv.fr/terminologie-cim-10",
                            "code": "L50.0",
                            "display": "Urticaire allergique",
                        }
                    ]
                }
            ],
            "severity": "severe",
            "onset": "2010-03-01",
        }
    ]
    assert "verificationStatus" not in allergy  # no certainty given


def test_a_treatment_with_its_frequency_dose_and_reason():
    vsm = _extract(FIXTURES / "vsm-body.xml")
    amlodipine = _one(vsm, "MedicationStatement", "69999001")
    assert amlodipine["status"] == "completed"
    assert [c["system"] for c in amlodipine["medicationCodeableConcept"]["coding"]] == [
        "https://smt.esante.gouv.fr/terminologie-bdpm",
        "https://smt.esante.gouv.fr/terminologie-atc",
    ]
    assert amlodipine["effectivePeriod"] == {"start": "2020-01-20"}
    dosage = amlodipine["dosage"][0]
    assert dosage["timing"] == {"repeat": {"frequency": 1, "period": 1, "periodUnit": "d"}}
    assert dosage["route"]["coding"][0]["code"] == "20053000"
    assert dosage["doseAndRate"] == [
        {"doseQuantity": {"value": 1, "unit": "{tablet}", "system": UCUM, "code": "{tablet}"}}
    ]
    assert dosage["maxDosePerPeriod"] == {
        "numerator": {"value": 10, "unit": "mg", "system": UCUM, "code": "mg"},
        "denominator": {"value": 1, "unit": "d", "system": UCUM, "code": "d"},
    }
    hta = _one(vsm, "Condition", "I10")
    assert amlodipine["reasonReference"] == [{"reference": f"Condition/{hta['id']}"}]
    # a reason naming no problem of this document stays a code
    amoxicillin = _one(vsm, "MedicationStatement", "J01CA04")
    assert "reasonReference" not in amoxicillin
    assert amoxicillin["reasonCode"][0]["coding"][0]["code"] == "J02.9"
    assert amoxicillin["effectivePeriod"] == {"start": "2023-12-01", "end": "2023-12-10"}


def test_a_procedure_a_vaccination_and_vital_signs():
    vsm = _extract(FIXTURES / "vsm-body.xml")
    surgery = _one(vsm, "Procedure", "HHFA016")
    assert surgery["code"]["coding"][0]["system"] == "https://smt.esante.gouv.fr/terminologie-ccam"
    assert (surgery["status"], surgery["performedDateTime"]) == ("completed", "1998-06-10")
    assert surgery["bodySite"][0]["coding"][0]["code"] == "66754008"
    assert surgery["recorder"] == {
        "identifier": {"system": "urn:oid:1.2.250.1.71.4.2.1", "value": "810000000001"},
        "display": "Jean ESSAI",
    }
    dtp = _one(vsm, "Immunization", "69999002")
    assert (dtp["status"], dtp["occurrenceDateTime"], dtp["lotNumber"]) == (
        "completed",
        "2021-09-15",
        "LOT-ESSAI-7",
    )
    assert dtp["vaccineCode"]["coding"][1]["code"] == "J07CA01"
    assert dtp["route"]["coding"][0]["code"] == "20035000"
    assert dtp["site"]["coding"][0]["code"] == "16217701000119102"
    assert dtp["protocolApplied"] == [{"doseNumberPositiveInt": 3, "series": "Rappel"}]
    assert dtp["performer"][0]["actor"]["identifier"]["value"] == "810000000001"
    assert dtp["performer"][0]["function"]["coding"][0]["code"] == "AP"
    weight, systolic = _one(vsm, "Observation", "29463-7"), _one(vsm, "Observation", "8480-6")
    for sign in (weight, systolic):
        assert sign["status"] == "final"
        assert sign["category"][0]["coding"][0]["code"] == "vital-signs"
    assert weight["valueQuantity"] == {"value": 64, "unit": "kg", "system": UCUM, "code": "kg"}
    assert weight["effectiveDateTime"] == "2024-01-10T09:30:00+01:00"
    assert systolic["effectiveDateTime"] == "2024-01-10"  # the organizer's time


ACTOR = (
    "https://interop.esante.gouv.fr/ig/fhir/document-core/StructureDefinition/fr-actor-extension"
)
RPPS = "urn:oid:1.2.250.1.71.4.2.1"


def _author(resource: dict[str, Any]) -> tuple[str, str] | None:
    """The (RPPS, name) of the entry's FR actor extension of type AUT."""
    found = [e for e in resource.get("extension", []) if e["url"] == ACTOR]
    if not found:
        return None
    (author,) = found
    parts = {p["url"]: p for p in author["extension"]}
    assert parts["type"]["valueCode"] == "AUT" and "typeCode" not in parts
    actor = parts["actor"]["valueReference"]
    assert actor["identifier"]["system"] == RPPS
    return actor["identifier"]["value"], actor["display"]


def test_the_authors_of_summary_entries():
    vsm = _extract(FIXTURES / "vsm-body.xml")
    # the problem observation's own author
    assert _author(_one(vsm, "Condition", "I10")) == ("810000000002", "Jean ESSAI")
    assert _author(_one(vsm, "Condition", "K35.8")) is None  # names none
    # the allergy names none: its concern's author
    assert _author(_one(vsm, "AllergyIntolerance", "J01CE")) == ("810000000003", "Marie ALLERGO")
    assert _author(_one(vsm, "MedicationStatement", "69999001")) == ("810000000002", "Jean ESSAI")
    assert _author(_one(vsm, "MedicationStatement", "J01CA04")) is None
    # the vaccination names none and its profile requires one: the document's author
    assert _author(_one(vsm, "Immunization", "69999002")) == ("810000000001", "Alice EXEMPLE")


def test_comments_of_summary_entries_are_notes():
    vsm = _extract(FIXTURES / "vsm-body.xml")
    # a comment on the concern, its text in the narrative
    assert _one(vsm, "Condition", "I10")["note"] == [{"text": "Contrôle tensionnel trimestriel"}]
    assert _one(vsm, "MedicationStatement", "69999001")["note"] == [{"text": "À prendre le matin"}]
    assert _one(vsm, "Procedure", "HHFA016")["note"] == [{"text": "Suites simples"}]
    assert _one(vsm, "Observation", "29463-7")["note"] == [{"text": "Pesée habillée"}]
    assert "note" not in _one(vsm, "Condition", "K35.8")
    assert "note" not in _one(vsm, "Observation", "8480-6")


def test_a_procedures_approach_site_is_a_contained_body_structure():
    vsm = _extract(FIXTURES / "vsm-body.xml")
    surgery = _one(vsm, "Procedure", "HHFA016")
    assert surgery["extension"] == [
        {
            "url": "http://hl7.org/fhir/StructureDefinition/procedure-approachBodyStructure",
            "valueReference": {"reference": "#approach-1"},
        }
    ]
    assert surgery["contained"] == [
        {
            "resourceType": "BodyStructure",
            "id": "approach-1",
            "location": {
                "coding": [
                    {
                        "system": "http://snomed.info/sct",
                        "code": "4147007",
                        "display": "fosse iliaque droite",
                    }
                ]
            },
        }
    ]
    # filed, the body structure names the procedure's patient
    stamped = restamp(surgery, {"id": "d", "subject": {"reference": "Patient/p1"}})
    assert stamped["contained"][0]["patient"] == {"reference": "Patient/p1"}
    assert stamped["subject"] == {"reference": "Patient/p1"}


def test_a_reaction_to_a_vaccination():
    vsm = _extract(FIXTURES / "vsm-body.xml")
    dtp = _one(vsm, "Immunization", "69999002")
    assert dtp["reaction"] == [
        {
            "detail": {
                "reference": "#reaction-1",
                "display": "Autres complications consécutives à la vaccination",
            },
            "date": "2021-09-16",
        }
    ]
    (detail,) = dtp["contained"]
    assert (detail["resourceType"], detail["id"], detail["status"]) == (
        "Observation",
        "reaction-1",
        "final",
    )
    assert detail["valueCodeableConcept"]["coding"][0]["code"] == "T88.1"
    assert detail["effectiveDateTime"] == "2021-09-16"
    assert "reasonReference" not in dtp  # a reaction is not why the vaccine was given


def test_the_vital_signs_panel_names_its_signs():
    vsm = _extract(FIXTURES / "vsm-body.xml")
    panel = _one(vsm, "Observation", "85353-1")
    weight, systolic = _one(vsm, "Observation", "29463-7"), _one(vsm, "Observation", "8480-6")
    assert panel["hasMember"] == [
        {"reference": f"Observation/{weight['id']}"},
        {"reference": f"Observation/{systolic['id']}"},
    ]
    assert (panel["status"], panel["effectiveDateTime"]) == ("final", "2024-01-10")
    assert panel["category"][0]["coding"][0]["code"] == "vital-signs"
    assert panel["code"]["coding"] == [
        {
            "system": "http://loinc.org",
            "code": "85353-1",
            "display": "Vital signs, weight, height, head circumference, oxygen saturation and BMI panel",
        }
    ]
    assert panel["meta"]["profile"] == [
        "https://interop.esante.gouv.fr/ig/fhir/document-core/StructureDefinition/fr-observation-vital-signs-panel-document"
    ]


def test_a_lab_report_names_its_copy_the_filed_document():
    from fhir_server.interactions.structured_content import writes

    document = {
        "resourceType": "DocumentReference",
        "id": "doc-1",
        "subject": {"reference": "Patient/p1"},
        "content": [
            {
                "attachment": {
                    "contentType": "application/hl7-v3+xml",
                    "language": "fr-FR",
                    "url": "Binary/bin-1",
                    "size": 1234,
                    "hash": "c2hhMQ==",
                    "title": "Compte rendu de biologie",
                }
            }
        ],
    }
    body = _extract(FIXTURES / "cr-bio-body.xml")
    written = {w.resource["resourceType"]: w.resource for w in writes(body, document, "now")}
    report = written["DiagnosticReport"]
    assert report["presentedForm"] == [document["content"][0]["attachment"]]
    assert "presentedForm" not in written["Observation"]
    # a document whose content has no URL (never the bytes): no copy named
    inline = {**document, "content": [{"attachment": {"contentType": "text/xml", "data": "PD94"}}]}
    again = {w.resource["resourceType"]: w.resource for w in writes(body, inline, "now")}
    assert "presentedForm" not in again["DiagnosticReport"]


def test_every_derived_resource_claims_its_fr_document_core_profile():
    base = "https://interop.esante.gouv.fr/ig/fhir/document-core/StructureDefinition/"
    claimed = {
        (r["resourceType"], r["meta"]["profile"][0].removeprefix(base))
        for name in ("vsm-body.xml", "cr-bio-body.xml")
        for r in _extract(FIXTURES / name).resources
    }
    assert claimed == {
        ("Condition", "fr-condition-document"),
        ("AllergyIntolerance", "fr-allergy-intolerance-document"),
        ("MedicationStatement", "fr-medication-statement-document"),
        ("Procedure", "fr-procedure-document"),
        ("Immunization", "fr-immunization-document"),
        ("Observation", "fr-observation-vital-signs-document"),
        ("Observation", "fr-observation-vital-signs-panel-document"),
        ("Observation", "fr-observation-laboratory-report-results-document"),
        ("DiagnosticReport", "fr-diagnostic-report-bio-chapter-document"),
    }


def test_a_vaccination_note_yields_its_immunization():
    note = _extract(FIXTURES / "vac-note.xml")
    assert note.counts() == {"Immunization": 1}
    flu = note.resources[0]
    assert flu["vaccineCode"]["coding"] == [
        {
            "system": "https://smt.esante.gouv.fr/terminologie-atc",
            "code": "J07BB02",
            "display": "Vaccin grippal, inactivé, fragmenté ou antigène de surface",
        }
    ]
    assert (flu["occurrenceDateTime"], flu["lotNumber"]) == (
        "2023-10-24T09:15:00+02:00",
        "ESSAI-23B07",
    )
    assert "protocolApplied" not in flu  # no dose number given


@pytest.mark.parametrize("name", ["cr-bio-body.xml", "vsm-body.xml", "vac-note.xml"])
def test_extracted_resources_are_valid_fhir(name):
    from fhir_server.fhir.validation import validate_resource

    document = {
        "resourceType": "DocumentReference",
        "id": "doc-1",
        "subject": {"reference": "Patient/p1"},
        "masterIdentifier": {"value": "1.2.3"},
    }
    for res in _extract(FIXTURES / name).resources:
        validate_resource(res["resourceType"], restamp(res, document))


@ANS
def test_ans_vsm_matches_the_oracle():
    vsm = _extract(ANS_EXAMPLES / "VSM_1.4_2022.01.xml")
    assert vsm.counts() == {
        "Condition": 4,
        "AllergyIntolerance": 1,
        "MedicationStatement": 2,
        "Procedure": 1,
    }
    assert not vsm.skipped
    by_code = {
        c["code"]["coding"][0]["code"]: c for c in vsm.resources if c["resourceType"] == "Condition"
    }
    assert by_code["G45.9"]["onsetDateTime"] == by_code["I20.0"]["onsetDateTime"] == "2019-08-11"
    assert (by_code["N10"]["onsetDateTime"], by_code["N10"]["abatementDateTime"]) == (
        "2018-04-22",
        "2018-04-30",
    )
    allergy = next(r for r in vsm.resources if r["resourceType"] == "AllergyIntolerance")
    assert allergy["code"]["coding"][0] == {
        "system": "https://smt.esante.gouv.fr/terminologie-bdpm",
        "code": "60234100",
        "display": "PARACETAMOL",
    }
    assert allergy["clinicalStatus"]["coding"][0]["code"] == "inactive"
    plavix = _one(vsm, "MedicationStatement", "63564053")
    dosage = plavix["dosage"][0]
    assert dosage["doseAndRate"][0]["doseQuantity"] == {
        "value": 2,
        "unit": "{tablet}",
        "system": UCUM,
        "code": "{tablet}",
    }
    assert dosage["timing"]["repeat"] == {"frequency": 1, "period": 1, "periodUnit": "d"}
    assert plavix["reasonReference"] == [{"reference": f"Condition/{by_code['I20.0']['id']}"}]
    # COUMADINE's reason names an id three statements share: narrowed by its code, one
    coumadine = _one(vsm, "MedicationStatement", "63245753")
    assert coumadine["reasonReference"] == [{"reference": f"Condition/{by_code['G45.9']['id']}"}]
    procedure = _one(vsm, "Procedure", "DDAF004")
    assert procedure["performedDateTime"] == "2018-01-14"


@ANS
def test_ans_ldl_ses_matches_the_oracle():
    ldl = _extract(ANS_EXAMPLES / "LDL-SES_2022.01.xml")
    assert ldl.counts() == {"AllergyIntolerance": 1, "MedicationStatement": 2, "Observation": 1}
    allergy = next(r for r in ldl.resources if r["resourceType"] == "AllergyIntolerance")
    assert (
        allergy["code"]["coding"][0]["system"]
        == "http://terminology.hl7.org/CodeSystem/data-absent-reason"
    )
    solian = _one(ldl, "MedicationStatement", "60019927")
    assert solian["effectivePeriod"] == {"start": "2018-08-01", "end": "2019-10-29"}
    assert solian["dosage"][0]["maxDosePerPeriod"] == {
        "numerator": {"value": 200, "unit": "mg", "system": UCUM, "code": "mg"},
        "denominator": {"value": 1, "unit": "d", "system": UCUM, "code": "d"},
    }
    med309 = _one(ldl, "Observation", "MED-309")
    assert med309["valueBoolean"] is True


@ANS
def test_ans_vaccination_note_and_ips_read_their_vaccinations():
    note = _extract(ANS_EXAMPLES / "VAC-NOTE_2023.01.xml")
    assert note.counts() == {"Immunization": 1}
    tetanus = note.resources[0]
    assert tetanus["vaccineCode"]["coding"][0]["code"] == "68747507"
    assert tetanus["protocolApplied"][0]["doseNumberPositiveInt"] == 2
    assert tetanus["lotNumber"] == "4456672"
    ips = _extract(ANS_EXAMPLES / "IPS-FR_2024.01_DLU.xml")
    assert ips.counts()["Immunization"] == 2
    assert {
        r["category"][0]["coding"][0]["code"]
        for r in ips.resources
        if r["resourceType"] == "Observation"
    } == {"vital-signs"}


_SHARED_ID_SUMMARY = """<ClinicalDocument xmlns="urn:hl7-org:v3"
    xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"><component><structuredBody>
  <component><section><templateId root="1.2.250.1.213.1.1.2.132"/>{problems}</section></component>
  <component><section><templateId root="1.2.250.1.213.1.1.2.143"/>
    <entry><substanceAdministration moodCode="EVN"><templateId root="1.2.250.1.213.1.1.3.42"/>
      <consumable><manufacturedProduct><manufacturedMaterial>
        <code code="60000001" codeSystem="1.2.250.1.213.2.3.1"/>
      </manufacturedMaterial></manufacturedProduct></consumable>
      <entryRelationship typeCode="RSON"><act><templateId root="1.2.250.1.213.1.1.3.36"/>
        <id root="1.2.3.4.5"/><code code="I10" codeSystem="2.16.840.1.113883.6.3"/>
      </act></entryRelationship>
    </substanceAdministration></entry>
  </section></component>
</structuredBody></component></ClinicalDocument>"""
_PROBLEM = """<entry><act moodCode="EVN"><templateId root="1.2.250.1.213.1.1.3.39"/>
  <id root="1.2.3.4.5"/><statusCode code="active"/>
  <entryRelationship typeCode="SUBJ"><observation moodCode="EVN">
    <value xsi:type="CD" code="I10" codeSystem="2.16.840.1.113883.6.3"/>
  </observation></entryRelationship></act></entry>"""


@pytest.mark.parametrize("problems, resolves", [(1, True), (2, False)])
def test_a_reason_names_a_condition_only_when_its_id_and_code_name_one(problems, resolves):
    from lxml import etree

    from fhir_server.cda.extraction import read_body
    from fhir_server.cda.patient_summary import extract_summary

    root = etree.fromstring(_SHARED_ID_SUMMARY.format(problems=_PROBLEM * problems))
    body = root.find("{urn:hl7-org:v3}component/{urn:hl7-org:v3}structuredBody")
    extraction = read_body("1.2.3", root, body, extract_summary)
    treatment = next(r for r in extraction.resources if r["resourceType"] == "MedicationStatement")
    conditions = [r["id"] for r in extraction.resources if r["resourceType"] == "Condition"]
    assert len(conditions) == problems
    if resolves:
        assert treatment["reasonReference"] == [{"reference": f"Condition/{conditions[0]}"}]
        assert "reasonCode" not in treatment
    else:  # two problems under one id and one code: which one is not said
        assert "reasonReference" not in treatment
        assert treatment["reasonCode"][0]["coding"][0]["code"] == "I10"
