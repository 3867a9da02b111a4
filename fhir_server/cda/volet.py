"""Which CI-SIS volet a CDA document follows, from its templateIds (most specific first)."""

from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum


class Volet(StrEnum):
    LDL_SES = "LDL-SES"
    LDL_EES = "LDL-EES"
    VSM = "VSM"
    CR_BIO = "CR-BIO"
    IPS_FR = "IPS-FR"
    CR_IMG = "CR-IMG"
    VAC = "VAC"
    VAC_NOTE = "VAC-NOTE"
    LEVEL1 = "XDS-SD"  # level 1: nonXMLBody (PDF, text, image) in a CI-SIS header
    CISIS_HEADER = "CI-SIS"  # another volet: only the shared header is understood
    UNKNOWN = "unknown"  # not even the CI-SIS header template


CISIS_HEADER_TEMPLATE = "1.2.250.1.213.1.1.1.1"
XDS_SD_TEMPLATE = "1.3.6.1.4.1.19376.1.2.20"

_BY_TEMPLATE: dict[str, Volet] = {
    "1.2.250.1.213.1.1.1.29": Volet.LDL_SES,
    "1.2.250.1.213.1.1.1.21": Volet.LDL_EES,
    "1.2.250.1.213.1.1.1.13": Volet.VSM,
    "1.2.250.1.213.1.1.1.55": Volet.CR_BIO,
    "1.3.6.1.4.1.19376.1.3.3": Volet.CR_BIO,  # IHE XD-LAB, which CR-BIO specialises
    "1.2.250.1.213.1.1.1.51": Volet.IPS_FR,
    "1.2.250.1.213.1.1.1.45": Volet.CR_IMG,
    "1.2.250.1.213.1.1.1.37": Volet.VAC,
    "1.2.250.1.213.1.1.1.46": Volet.VAC_NOTE,
    XDS_SD_TEMPLATE: Volet.LEVEL1,
}


def detect_volet(template_ids: Iterable[str], *, has_non_xml_body: bool = False) -> Volet:
    """The volet named by the document-level templateIds; a nonXMLBody makes it level 1."""
    templates = tuple(template_ids)
    if has_non_xml_body:
        return Volet.LEVEL1
    for template in templates:
        volet = _BY_TEMPLATE.get(template)
        if volet is not None:
            return volet
    return Volet.CISIS_HEADER if CISIS_HEADER_TEMPLATE in templates else Volet.UNKNOWN
