"""Structured content of a CDA body: which volets are read, and what one reading yields
(pure: the parsed document in, FHIR dicts and a report out).

`extract_body` never raises on the body's content: an element it cannot read is skipped
and listed with its reason (`BodyExtraction.skipped`), a doubtful detail that is left out
is a warning, and the document is filed whatever they say.

Ids are UUIDv5 of the document's uniqueId and the element's XPath position: the same
document yields the same ids, two documents never share one.
"""

from __future__ import annotations

import hashlib
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from lxml import etree

from fhir_server.cda.datatypes import narrative_index
from fhir_server.cda.volet import Volet
from fhir_server.fhir.profiles import claim_profile

if TYPE_CHECKING:
    from fhir_server.cda.mapping import CdaDocument

Json = dict[str, Any]

# resources derived from a document: every one of them lives by its document's rules
DERIVED_ID_NAMESPACE = uuid.UUID("6f1e7a52-3c1b-5d0e-9a55-2b8d4c1f0e11")
_NAMESPACE_BYTES = DERIVED_ID_NAMESPACE.bytes
# one step of an lxml element path: {namespace}name[index], the index only where needed
_STEP = re.compile(r"(?:\{[^}]*\})?([^/\[]+)(?:\[(\d+)\])?")
# at most this many reasons are listed (the count is always exact)
LISTED_REASONS = 20


@dataclass
class Walk:
    """What one reading of a body collects, and the helpers every handler shares."""

    unique_id: str
    root: etree._Element
    narrative: dict[str, str]
    resources: list[Json] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    _tree: etree._ElementTree = field(init=False, repr=False)
    _skip: int = field(init=False, repr=False)  # what of lxml's path leads to `root`

    def __post_init__(self) -> None:
        self._tree = self.root.getroottree()
        # the root of its tree, or a CDA inside its own stylesheet
        outer = self.root.getparent() is not None
        self._skip = len(self._tree.getelementpath(self.root)) + 1 if outer else 0

    def path(self, el: etree._Element) -> str:
        """The position of an element under `root` as local names with indexes
        (`entry[2]/act[1]`): stable for the same bytes, readable in a report. lxml finds
        the position in C (`getelementpath`: Clark names, an index only where siblings
        share the tag), which is read into this form."""
        if el is self.root:
            return ""
        found = self._tree.getelementpath(el)[self._skip :]
        return "/".join(f"{m[1]}[{m[2] or '1'}]" for m in _STEP.finditer(found))

    def id_of(self, el: etree._Element) -> str:
        return uuid5(f"{self.unique_id}#{self.path(el)}")

    def keep(self, resource: Json) -> str:
        self.resources.append(resource)
        return str(resource["id"])

    def skip(self, el: etree._Element, reason: str) -> None:
        self.skipped.append(f"{self._where(el)}: {reason}")

    def warn(self, el: etree._Element, message: str) -> None:
        self.warnings.append(f"{self._where(el)}: {message}")

    def _where(self, el: etree._Element) -> str:
        return self.path(el)


def uuid5(name: str) -> str:
    """`str(uuid.uuid5(DERIVED_ID_NAMESPACE, name))`, without building a UUID object
    (which converts through a 128-bit int): a body has an id per resource."""
    digest = bytearray(hashlib.sha1(_NAMESPACE_BYTES + name.encode()).digest()[:16])
    digest[6] = (digest[6] & 0x0F) | 0x50  # version 5
    digest[8] = (digest[8] & 0x3F) | 0x80  # RFC 4122 variant
    h = digest.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


@dataclass(frozen=True)
class BodyExtraction:
    resources: tuple[Json, ...] = ()
    skipped: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for res in self.resources:
            out[res["resourceType"]] = out.get(res["resourceType"], 0) + 1
        return out


def _lab(body: etree._Element, walk: Walk) -> None:
    from fhir_server.cda.lab_report import extract_lab  # the lab walk imports Walk

    extract_lab(body, walk)


def _summary(body: etree._Element, walk: Walk) -> None:
    from fhir_server.cda.patient_summary import extract_summary

    extract_summary(body, walk)


# the volets whose body this server reads; others are filed as they are
READERS: dict[Volet, Callable[[etree._Element, Walk], None]] = {
    Volet.CR_BIO: _lab,
    Volet.VSM: _summary,
    Volet.LDL_SES: _summary,
    Volet.IPS_FR: _summary,
    Volet.VAC: _summary,
    Volet.VAC_NOTE: _summary,
}


def extract_body(doc: CdaDocument) -> BodyExtraction:
    reader = READERS.get(doc.volet)
    body = doc.root.find("{urn:hl7-org:v3}component/{urn:hl7-org:v3}structuredBody")
    if reader is None or body is None:
        return BodyExtraction()
    return read_body(doc.unique_id, doc.root, body, reader)


def read_body(
    unique_id: str,
    root: etree._Element,
    body: etree._Element,
    reader: Callable[[etree._Element, Walk], None],
) -> BodyExtraction:
    walk = Walk(unique_id, root, narrative_index(body))
    reader(body, walk)
    for resource in walk.resources:
        claim_profile(resource)
    return BodyExtraction(tuple(walk.resources), tuple(walk.skipped), tuple(walk.warnings))


def _listed(items: tuple[str, ...]) -> list[str]:
    shown = list(items[:LISTED_REASONS])
    if len(items) > LISTED_REASONS:
        shown.append(f"... and {len(items) - LISTED_REASONS} more")
    return shown


def summary(extraction: BodyExtraction) -> Json:
    """What was extracted and skipped, as plain data (the DocumentReference's extension
    and the filing's answer are built from it)."""
    return {
        "extracted": extraction.counts(),
        "skipped": len(extraction.skipped),
        "skipped_reasons": _listed(extraction.skipped),
        "warnings": _listed(extraction.warnings),
    }
