"""The details of a CR-BIO read without a server: specimens, the performing laboratory,
the actors of the results, and an antibiogram's values (the project's microbiology
fixture)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from fhir_server.cda.extraction import BodyExtraction, extract_body
from fhir_server.cda.mapping import read_cda

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "cda"
ACTOR = (
    "https://interop.esante.gouv.fr/ig/fhir/document-core/StructureDefinition/fr-actor-extension"
)
RPPS = "urn:oid:1.2.250.1.71.4.2.1"
FINESS = "urn:oid:1.2.250.1.71.4.2.2"


@pytest.fixture(scope="module")
def micro() -> BodyExtraction:
    return extract_body(read_cda((FIXTURES / "cr-bio-microbiologie.xml").read_bytes()))


def _of(extraction: BodyExtraction, rtype: str) -> list[dict[str, Any]]:
    return [r for r in extraction.resources if r["resourceType"] == rtype]


def _observation(extraction: BodyExtraction, code: str) -> dict[str, Any]:
    return next(
        r
        for r in _of(extraction, "Observation")
        if any(c.get("code") == code for c in r["code"].get("coding", []))
    )


def _isolate(extraction: BodyExtraction) -> dict[str, Any]:
    return next(r for r in _of(extraction, "Observation") if r["code"] == {"text": "Isolat"})


def _actors(obs: dict[str, Any]) -> list[tuple[str, str]]:
    out = []
    for e in obs.get("extension", []):
        if e["url"] == ACTOR:
            parts = {p["url"]: p for p in e["extension"]}
            if parts["type"]["valueCode"] == "AUT":  # the author: no participation code
                assert "typeCode" not in parts
                code = "AUT"
            else:
                assert parts["type"]["valueCode"] == "PART"
                code = parts["typeCode"]["valueCodeableConcept"]["coding"][0]["code"]
            out.append((code, parts["actor"]["valueReference"]["display"]))
    return sorted(out)


def test_the_sample_is_a_specimen(micro):
    sample = next(s for s in _of(micro, "Specimen") if "parent" not in s)
    assert sample["identifier"] == [{"system": "urn:oid:1.2.250.1.999.7.1", "value": "ECH-0042"}]
    assert sample["type"]["coding"][0]["code"] == "UR"
    assert sample["receivedTime"] == "2024-02-20T07:10:00+01:00"
    collection = sample["collection"]
    assert collection["collectedPeriod"] == {"end": "2024-02-20T06:45:00+01:00"}
    assert collection["collector"] == {
        "identifier": {"system": RPPS, "value": "810000000088"},
        "display": "Lea PRELEVEUSE",
    }
    assert collection["method"]["coding"][0]["code"] == "5201"  # the NABM act (a guess)
    assert sample["meta"]["profile"] == [
        "https://interop.esante.gouv.fr/ig/fhir/document-core/StructureDefinition/fr-specimen-document"
    ]
    # the report and every result of the entry name it
    report = _of(micro, "DiagnosticReport")[0]
    assert report["specimen"] == [{"reference": f"Specimen/{sample['id']}"}]
    culture = _observation(micro, "630-4")
    assert culture["specimen"] == {"reference": f"Specimen/{sample['id']}"}


def test_the_isolate_is_a_specimen_taken_from_the_sample(micro):
    sample, isolate = sorted(_of(micro, "Specimen"), key=lambda s: "parent" in s)
    assert isolate["identifier"] == [{"system": "urn:oid:1.2.250.1.999.7.2", "value": "ISO-0042-1"}]
    assert isolate["parent"] == [{"reference": f"Specimen/{sample['id']}"}]
    organizer = _isolate(micro)
    assert organizer["valueCodeableConcept"]["coding"][0]["code"] == "112283007"
    # the susceptibilities are results on the isolate
    for code in ("18864-9", "18906-8", "18955-5", "18998-5"):
        assert _observation(micro, code)["specimen"] == {"reference": f"Specimen/{isolate['id']}"}


def test_the_performing_laboratory_is_the_nearest_one(micro):
    header_lab = [{"display": "Laboratoire d'essai des Tilleuls"}]
    assert _of(micro, "DiagnosticReport")[0]["performer"] == header_lab
    assert _observation(micro, "630-4")["performer"] == header_lab
    isolate_lab = [
        {
            "identifier": {"system": FINESS, "value": "990000000042"},
            "display": "Laboratoire de microbiologie d'exemple",
        }
    ]
    assert _isolate(micro)["performer"] == isolate_lab
    assert _observation(micro, "18906-8")["performer"] == isolate_lab


def test_the_actors_of_the_results(micro):
    validator = ("AUTHEN", "Paul VALIDEUR")
    author = ("AUT", "Sophie BIOLOGISTE")  # named on the isolate: its results' author
    assert _actors(_observation(micro, "630-4")) == [validator]
    assert _actors(_observation(micro, "18906-8")) == [author, validator]
    assert _actors(_isolate(micro)) == [author, validator]
    # a role named on a result joins those its parents name
    assert _actors(_observation(micro, "18864-9")) == [
        author,
        ("AUTHEN", "Paul VALIDEUR"),
        ("DEV", "Automate d'antibiogramme"),
    ]
    antibiogram = next(e for e in _observation(micro, "18864-9")["extension"] if e["url"] == ACTOR)
    assert antibiogram["extension"][-1]["valueReference"] == {
        "identifier": {"system": RPPS, "value": "810000000077"},
        "display": "Sophie BIOLOGISTE",
    }


@pytest.mark.parametrize(
    ("code", "comparator", "value", "interpretation"),
    [
        ("18864-9", ">", 8, "R"),
        ("18906-8", "<=", 0.25, "S"),
        ("18955-5", "<=", 16, "S"),
        ("18998-5", "<=", 20, "S"),
    ],
)
def test_an_antibiogram_keeps_its_bounds_and_interpretation(
    micro, code, comparator, value, interpretation
):
    obs = _observation(micro, code)
    assert obs["valueQuantity"] == {
        "value": value,
        "comparator": comparator,
        "unit": "mg/L",
        "system": "http://unitsofmeasure.org",
        "code": "mg/L",
    }
    assert obs["interpretation"][0]["coding"][0]["code"] == interpretation
