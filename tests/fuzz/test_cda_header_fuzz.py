"""Mutations of a project CDA fixture (byte flips, truncations, deletions, insertions of
markup and text, attribute rewrites) never make the header reader or the mapper raise
anything but a FhirError with a 4xx status and issues that say what is wrong."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fhir_server.cda.mapping import map_cda, read_cda
from fhir_server.errors import FhirError

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "cda"
SOURCES = {name: (FIXTURES / name).read_bytes() for name in ("ldl-ses.xml", "cr-bio-n3.xml")}

SETTINGS = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])

SNIPPETS = [
    b"<",
    b">",
    b"</",
    b"&",
    b"&amp;",
    b"&#0;",
    b"&#x110000;",
    b"<!DOCTYPE x>",
    b'<!ENTITY a "b">',
    b"<![CDATA[",
    b"]]>",
    b'"',
    b"'",
    b"\x00",
    b"\xff",
    b"\xc3",
    b"<id/>",
    b'<id root=""/>',
    b'<id root="1.2.250.1.213.1.4.8" extension=""/>',
    b'<templateId root="1.2.250.1.213.1.1.1.29"/>',
    b'<effectiveTime value="99999999999999"/>',
    b'<effectiveTime value="2024-13-45"/>',
    b'<code code="" codeSystem=""/>',
    b'<confidentialityCode code="V"/>',
    b"<recordTarget/>",
    b"<author/>",
    b"<component/>",
    b"xmlns:x='urn:x'",
    b"\xef\xbb\xbf",
    "é".encode(),
    "𝒳".encode(),
]


@st.composite
def mutated(draw) -> bytes:
    data = bytearray(SOURCES[draw(st.sampled_from(sorted(SOURCES)))])
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["flip", "truncate", "delete", "insert", "attr"]))
        at = draw(st.integers(0, max(len(data) - 1, 0)))
        if kind == "flip" and data:
            data[at] = draw(st.integers(0, 255))
        elif kind == "truncate":
            del data[at:]
        elif kind == "delete":
            del data[at : at + draw(st.integers(1, 400))]
        elif kind == "insert":
            data[at:at] = draw(st.sampled_from(SNIPPETS))
        else:  # empty or rewrite the value of some attribute
            quote = data.find(b'"', at)
            end = data.find(b'"', quote + 1) if quote >= 0 else -1
            if end > quote >= 0:
                data[quote + 1 : end] = draw(st.sampled_from([b"", b"x", b"0", b"1.2.3", b"\xc3"]))
    return bytes(data)


def _only_fhir_errors(fn, data: bytes) -> None:
    try:
        fn(data)
    except FhirError as exc:
        assert 400 <= exc.status < 500, exc
        assert exc.issues and all(i.diagnostics for i in exc.issues)


@SETTINGS
@given(mutated())
def test_header_reader_mutations(data):
    _only_fhir_errors(read_cda, data)


@SETTINGS
@given(
    mutated(), st.lists(st.sampled_from(["MASQUE_PS", "INVISIBLE_PATIENT", "X", ""]), max_size=3)
)
def test_mapper_mutations(data, labels):
    _only_fhir_errors(
        lambda d: map_cda(d, security_labels=labels, binary_id="b1", patient_id=None), data
    )


@pytest.mark.parametrize("name", sorted(SOURCES))
def test_unmutated_fixtures_map(name):
    """Control: the sources the mutations start from are valid documents."""
    assert map_cda(SOURCES[name], binary_id="b1").document_reference["resourceType"] == (
        "DocumentReference"
    )
