"""A mapped document is released as soon as its caller lets go of it: mapping and body
extraction leave no reference cycle, so a parsed tree (megabytes for a large CDA) never
waits for the garbage collector's next pass, and a filing never pays for that pass."""

from __future__ import annotations

import gc

import pytest

from fhir_server.cda.extraction import extract_body
from fhir_server.cda.mapping import map_cda
from tests.cda.documents import FIXTURES, PROJECT


@pytest.mark.parametrize("name", sorted(PROJECT))
def test_mapping_leaves_no_reference_cycle(name):
    data = (FIXTURES / name).read_bytes()
    gc.collect()
    gc.disable()
    try:
        mapping = map_cda(data, binary_id="b", patient_id="p")
        extraction = extract_body(mapping.document)
        assert mapping.document_reference and extraction is not None
        del mapping, extraction
        assert gc.collect() == 0
    finally:
        gc.enable()
