"""TD0.2: the record's existence and state by `GET Patient?identifier=<INS>`, in the
guide's shape (`active`, `dmp-fermeture`, the treating physician), kept true by
`$close` / `$reopen`."""

from __future__ import annotations

import pytest

from tests.conftest import INS_TEST_SYSTEM, VALID_INS, nir_with_key
from tests.security.world import RPPS, TREATING
from tests.security.world import patient as patient_resource

pytestmark = pytest.mark.store_kinds("sqlite", "mongo")
FERMETURE = "https://interop.esante.gouv.fr/ig/fhir/dmp/StructureDefinition/dmp-fermeture"
MOTIFS = "https://interop.esante.gouv.fr/ig/fhir/dmp/CodeSystem/dmp-motif-fermeture"
MES = "https://interop.esante.gouv.fr/ig/fhir/dmp/StructureDefinition/dmp-rattachement-mes"


def _lookup(world, who: str, ins: str = VALID_INS) -> dict:
    r = world.client.get(
        f"/fhir/Patient?identifier={INS_TEST_SYSTEM}|{ins}", headers=world.as_(who)
    )
    assert r.status_code == 200, r.text
    assert r.json()["type"] == "searchset"
    return r.json()


def test_td02_an_open_record(world):
    bundle = _lookup(world, "stranger")
    assert len(bundle["entry"]) == 1
    patient = bundle["entry"][0]["resource"]
    assert patient["active"] is True
    assert all(e["url"] != FERMETURE for e in patient.get("extension", []))
    assert patient["generalPractitioner"] == [{"identifier": {"system": RPPS, "value": TREATING}}]


def test_td02_no_record_is_an_empty_searchset(world):
    assert _lookup(world, "stranger", nir_with_key("2790351215999")).get("entry", []) == []


def test_td02_a_closed_record_then_reopened(world):
    body = {
        "resourceType": "Parameters",
        "parameter": [
            {"name": "motif", "valueCoding": {"system": MOTIFS, "code": "DEMANDE_TITULAIRE"}},
            {"name": "raison", "valueString": "à la demande du titulaire"},
        ],
    }
    r = world.client.post(
        f"/fhir/Patient/{world.victim}/$close", json=body, headers=world.as_("holder")
    )
    assert r.status_code == 200, r.text
    patient = _lookup(world, "stranger")["entry"][0]["resource"]
    assert patient["active"] is False
    (closure,) = [e for e in patient["extension"] if e["url"] == FERMETURE]
    parts = {p["url"]: p for p in closure["extension"]}
    assert parts["dateFermeture"]["valueDate"] == r.json()["meta"]["lastUpdated"][:10]
    assert (
        parts["motifFermeture"]["valueCodeableConcept"]["coding"][0]["code"] == "DEMANDE_TITULAIRE"
    )
    assert parts["raisonFermeture"]["valueString"] == "à la demande du titulaire"
    r = world.client.post(f"/fhir/Patient/{world.victim}/$reopen", headers=world.as_("holder"))
    assert r.status_code == 200, r.text
    patient = _lookup(world, "stranger")["entry"][0]["resource"]
    assert patient["active"] is True
    assert all(e["url"] != FERMETURE for e in patient.get("extension", []))


def test_the_closure_cannot_be_written_by_a_client(world):
    patient = world.client.get(f"/fhir/Patient/{world.victim}", headers=world.as_("holder")).json()
    patient["extension"] = [
        *patient.get("extension", []),
        {"url": FERMETURE, "extension": [{"url": "dateFermeture", "valueDate": "2020-01-01"}]},
    ]
    r = world.client.put(f"/fhir/Patient/{world.victim}", json=patient, headers=world.as_("holder"))
    assert r.status_code == 422, r.text


def _rattachement(patient: dict) -> bool | None:
    flags = [e["valueBoolean"] for e in patient.get("extension", []) if e["url"] == MES]
    assert len(flags) <= 1
    return flags[0] if flags else None


def test_td02_rattachement_mes_is_set_by_the_holders_activation(world):
    assert _rattachement(_lookup(world, "stranger")["entry"][0]["resource"]) is False
    link = f"/fhir/Patient/{world.victim}/$link-mes"
    for who in ("treating", "stranger", "hospital-system", "insurer"):
        assert world.client.post(link, headers=world.as_(who)).status_code == 403, who
    r = world.client.post(link, headers=world.as_("holder"))
    assert r.status_code == 200, r.text
    assert _rattachement(r.json()) is True
    assert _rattachement(_lookup(world, "stranger")["entry"][0]["resource"]) is True
    # once linked, linking again changes nothing
    again = world.client.post(link, headers=world.as_("legal-rep"))
    assert again.status_code == 200
    assert again.json()["meta"]["versionId"] == r.json()["meta"]["versionId"]


def test_rattachement_mes_cannot_be_written_by_a_client(world):
    patient = world.client.get(f"/fhir/Patient/{world.victim}", headers=world.as_("holder")).json()
    others = [e for e in patient.get("extension", []) if e["url"] != MES]
    patient["extension"] = [*others, {"url": MES, "valueBoolean": True}]
    r = world.client.put(f"/fhir/Patient/{world.victim}", json=patient, headers=world.as_("holder"))
    assert r.status_code == 422, r.text
    # a new record opens unlinked, whatever its creator sends
    new = patient_resource(nir_with_key("1790351215300"), None)
    new["extension"] = [{"url": MES, "valueBoolean": True}]
    created = world.client.post("/fhir/Patient", json=new, headers=world.as_("insurer"))
    assert created.status_code == 201, created.text
    assert _rattachement(created.json()) is False
