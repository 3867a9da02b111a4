"""The reading of an `xsi:type`: a QName whose prefix resolves against the namespaces in
scope, whichever prefix the element itself is written with (pure)."""

from __future__ import annotations

import pytest
from lxml import etree

from fhir_server.cda.datatypes import first_child, xsi_type

XSI = 'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"'


@pytest.mark.parametrize(
    ("xml", "expected"),
    [
        ('<value xmlns="urn:hl7-org:v3" {xsi} xsi:type="PQ"/>', "PQ"),
        ('<c:value xmlns:c="urn:hl7-org:v3" {xsi} xsi:type="c:PQ"/>', "PQ"),
        # the type's prefix is not the element's: resolved all the same
        ('<value xmlns="urn:hl7-org:v3" xmlns:c="urn:hl7-org:v3" {xsi} xsi:type="c:PQ"/>', "PQ"),
        ('<c:value xmlns:c="urn:hl7-org:v3" xmlns="urn:hl7-org:v3" {xsi} xsi:type="PQ"/>', "PQ"),
        # a type of another namespace, or an undeclared prefix, is not an HL7 v3 type
        ('<c:value xmlns:c="urn:hl7-org:v3" xmlns:o="urn:other" {xsi} xsi:type="o:PQ"/>', None),
        ('<o:value xmlns:o="urn:other" {xsi} xsi:type="o:PQ"/>', None),
        ('<value xmlns="urn:hl7-org:v3" {xsi} xsi:type="z:PQ"/>', None),
        ('<value xmlns="urn:hl7-org:v3"/>', None),
    ],
)
def test_xsi_type_resolves_its_prefix(xml, expected):
    assert xsi_type(etree.fromstring(xml.format(xsi=XSI))) == expected


def test_first_child_takes_the_statement_in_document_order():
    container = etree.fromstring(
        '<entryRelationship xmlns="urn:hl7-org:v3"><templateId root="1"/>'
        '<act classCode="ACT"/><observation classCode="OBS"/></entryRelationship>'
    )
    found = first_child(container, ("observation", "organizer", "act"))
    assert found is not None and found.get("classCode") == "ACT"
    assert first_child(container, ("procedure",)) is None
