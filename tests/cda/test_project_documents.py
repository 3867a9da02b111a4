"""The field-by-field checks of the ANS lane (test_ansforge_examples.py), on the project's own
synthetic documents: one per volet the server handles, with the variants the ANS kit
exercises (a CDA inside its own stylesheet, level 1, TROD, VAC-NOTE, IPS-FR with UUIDs and a
replacement, CR-BIO chapters and bodies). Always run: a clone needs nothing else."""

import pytest

from fhir_server.cda.mapping import map_cda
from tests.cda.documents import FIXTURES, PROJECT, check_maps_field_by_field


@pytest.mark.parametrize("name", sorted(PROJECT))
def test_project_document_maps_field_by_field(name):
    document = PROJECT[name]
    check_maps_field_by_field((FIXTURES / name).read_bytes(), document.expected, document.patient)


@pytest.mark.parametrize("name", sorted(PROJECT))
def test_volet_is_recognised(name):
    m = map_cda((FIXTURES / name).read_bytes(), binary_id="b")
    assert m.document.volet is PROJECT[name].volet


def test_every_project_document_has_an_expectation():
    documents = {p.name for p in FIXTURES.glob("*.xml") if not p.name.startswith("broken-")}
    assert documents == set(PROJECT)
