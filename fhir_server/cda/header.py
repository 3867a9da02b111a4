"""Read the CI-SIS CDA header (the same in every volet) into typed, immutable values.

Reading never fails: what is absent is None or empty, and `validate.py` decides what is
missing. Navigation uses precomputed Clark-notation paths (no XPath compilation per call).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

from lxml import etree

from fhir_server.cda.parse import HL7_NS

_NS = f"{{{HL7_NS}}}"


@cache
def _p(path: str) -> str:
    """'a/b' -> '{urn:hl7-org:v3}a/{urn:hl7-org:v3}b' (cached: ~75 lookups per document)."""
    return "/".join(_NS + step for step in path.split("/"))


Element = etree._Element


@dataclass(frozen=True, slots=True)
class II:
    """HL7 instance identifier: root OID (or UUID) and optional extension."""

    root: str
    extension: str | None = None

    @property
    def xds(self) -> str:
        """XDS form: root^extension, or root alone."""
        return f"{self.root}^{self.extension}" if self.extension else self.root


@dataclass(frozen=True, slots=True)
class Code:
    code: str
    system: str | None
    display: str | None = None


@dataclass(frozen=True, slots=True)
class PersonName:
    family: str | None
    given: tuple[str, ...] = ()
    prefix: tuple[str, ...] = ()
    suffix: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Organization:
    ids: tuple[II, ...]
    name: str | None
    industry_code: Code | None = None  # standardIndustryClassCode -> practiceSetting


@dataclass(frozen=True, slots=True)
class Actor:
    """An assignedAuthor / assignedEntity: author, legal authenticator, performer."""

    ids: tuple[II, ...]
    code: Code | None  # profession / specialty (TRE_A02 / G15 / R01)
    name: PersonName | None
    organization: Organization | None
    time: str | None = None
    device: str | None = None  # assignedAuthoringDevice/softwareName


@dataclass(frozen=True, slots=True)
class PatientIdentity:
    ids: tuple[II, ...]
    birth_family: str | None  # family qualifier="BR"
    birth_given_names: str | None  # the unqualified given: all birth first names
    first_birth_given: str | None  # given qualifier="BR"
    used_family: str | None  # family qualifier="CL"
    used_given: str | None  # given qualifier="CL"
    gender: str | None  # administrativeGenderCode @code (M/F/U)
    birth_time: str | None
    birthplace_insee: str | None  # birthplace/place/addr/county
    birthplace_city: str | None


@dataclass(frozen=True, slots=True)
class ServiceEvent:
    code: Code | None
    low: str | None
    high: str | None
    performers: tuple[Actor, ...] = ()


@dataclass(frozen=True, slots=True)
class RelatedDocument:
    type_code: str  # RPLC | APND | XFRM
    parent_ids: tuple[II, ...]
    parent_set_id: II | None = None


@dataclass(frozen=True, slots=True)
class CdaHeader:
    template_ids: tuple[str, ...]
    id: II | None
    code: Code | None
    title: str | None
    effective_time: str | None
    confidentiality: Code | None
    language: str | None
    set_id: II | None
    version_number: str | None
    record_target: PatientIdentity | None
    authors: tuple[Actor, ...]
    custodian: Organization | None
    legal_authenticator: Actor | None
    service_events: tuple[ServiceEvent, ...]
    facility_type: Code | None
    related_documents: tuple[RelatedDocument, ...]
    non_xml_media_type: str | None
    has_non_xml_body: bool


# --- small readers -------------------------------------------------------------------------


def _text(el: Element | None) -> str | None:
    if el is None:
        return None
    text = "".join(el.itertext()).strip()
    return " ".join(text.split()) or None


def _ii(el: Element | None) -> II | None:
    if el is None:
        return None
    root = el.get("root")
    if not root:
        return None
    return II(root.strip(), (el.get("extension") or "").strip() or None)


def _iis(parent: Element | None, tag: str = _p("id")) -> tuple[II, ...]:
    if parent is None:
        return ()
    return tuple(ii for el in parent.iterfind(tag) if (ii := _ii(el)) is not None)


def _code(el: Element | None) -> Code | None:
    if el is None:
        return None
    code = el.get("code")
    if not code:
        return None
    return Code(code.strip(), el.get("codeSystem"), el.get("displayName"))


def _value(el: Element | None) -> str | None:
    return None if el is None else (el.get("value") or None)


def _name(el: Element | None) -> PersonName | None:
    if el is None:
        return None
    return PersonName(
        family=_text(el.find(_p("family"))),
        given=tuple(t for g in el.iterfind(_p("given")) if (t := _text(g))),
        prefix=tuple(t for g in el.iterfind(_p("prefix")) if (t := _text(g))),
        suffix=tuple(t for g in el.iterfind(_p("suffix")) if (t := _text(g))),
    )


def _organization(el: Element | None) -> Organization | None:
    if el is None:
        return None
    return Organization(
        ids=_iis(el),
        name=_text(el.find(_p("name"))),
        industry_code=_code(el.find(_p("standardIndustryClassCode"))),
    )


def _actor(entity: Element | None, time: str | None = None) -> Actor | None:
    """Read an assignedAuthor or assignedEntity."""
    if entity is None:
        return None
    return Actor(
        ids=_iis(entity),
        code=_code(entity.find(_p("code"))),
        name=_name(entity.find(_p("assignedPerson/name"))),
        organization=_organization(entity.find(_p("representedOrganization"))),
        time=time,
        device=_text(entity.find(_p("assignedAuthoringDevice/softwareName"))),
    )


# --- sections of the header ----------------------------------------------------------------

_RECORD_TARGET = _p("recordTarget/patientRole")
_PATIENT = _p("patient")


def _qualified(name: Element, tag: str, qualifier: str | None) -> str | None:
    for el in name.iterfind(_p(tag)):
        if el.get("qualifier") == qualifier:
            return _text(el)
    return None


def _record_target(root: Element) -> PatientIdentity | None:
    role = root.find(_RECORD_TARGET)
    if role is None:
        return None
    patient = role.find(_PATIENT)
    name = patient.find(_p("name")) if patient is not None else None
    qualified = (lambda tag, q: _qualified(name, tag, q)) if name is not None else (lambda *_: None)
    birthplace = patient.find(_p("birthplace/place/addr")) if patient is not None else None
    return PatientIdentity(
        ids=_iis(role),
        birth_family=qualified("family", "BR") or qualified("family", None),
        birth_given_names=qualified("given", None),
        first_birth_given=qualified("given", "BR"),
        used_family=qualified("family", "CL"),
        used_given=qualified("given", "CL"),
        gender=(
            g.get("code")
            if patient is not None
            and (g := patient.find(_p("administrativeGenderCode"))) is not None
            else None
        ),
        birth_time=_value(patient.find(_p("birthTime"))) if patient is not None else None,
        birthplace_insee=_text(birthplace.find(_p("county"))) if birthplace is not None else None,
        birthplace_city=_text(birthplace.find(_p("city"))) if birthplace is not None else None,
    )


def _authors(root: Element) -> tuple[Actor, ...]:
    out = []
    for author in root.iterfind(_p("author")):
        actor = _actor(author.find(_p("assignedAuthor")), _value(author.find(_p("time"))))
        if actor is not None:
            out.append(actor)
    return tuple(out)


def _service_events(root: Element) -> tuple[ServiceEvent, ...]:
    out = []
    for event in root.iterfind(_p("documentationOf/serviceEvent")):
        performers = tuple(
            actor
            for perf in event.iterfind(_p("performer"))
            if (actor := _actor(perf.find(_p("assignedEntity")))) is not None
        )
        out.append(
            ServiceEvent(
                code=_code(event.find(_p("code"))),
                low=_value(event.find(_p("effectiveTime/low"))),
                high=_value(event.find(_p("effectiveTime/high"))),
                performers=performers,
            )
        )
    return tuple(out)


def _related(root: Element) -> tuple[RelatedDocument, ...]:
    out = []
    for rel in root.iterfind(_p("relatedDocument")):
        parent = rel.find(_p("parentDocument"))
        out.append(
            RelatedDocument(
                type_code=rel.get("typeCode") or "",
                parent_ids=_iis(parent),
                parent_set_id=_ii(parent.find(_p("setId"))) if parent is not None else None,
            )
        )
    return tuple(out)


_NON_XML_TEXT = _p("component/nonXMLBody/text")
_NON_XML_BODY = _p("component/nonXMLBody")


def read_header(root: Element) -> CdaHeader:
    """Read the header of a parsed ClinicalDocument (see parse.parse_cda)."""
    non_xml_text = root.find(_NON_XML_TEXT)
    legal = root.find(_p("legalAuthenticator"))
    return CdaHeader(
        template_ids=tuple(t.get("root") or "" for t in root.iterfind(_p("templateId"))),
        id=_ii(root.find(_p("id"))),
        code=_code(root.find(_p("code"))),
        title=_text(root.find(_p("title"))),
        effective_time=_value(root.find(_p("effectiveTime"))),
        confidentiality=_code(root.find(_p("confidentialityCode"))),
        language=(lc.get("code") if (lc := root.find(_p("languageCode"))) is not None else None),
        set_id=_ii(root.find(_p("setId"))),
        version_number=_value(root.find(_p("versionNumber"))),
        record_target=_record_target(root),
        authors=_authors(root),
        custodian=_organization(
            root.find(_p("custodian/assignedCustodian/representedCustodianOrganization"))
        ),
        legal_authenticator=(
            _actor(legal.find(_p("assignedEntity")), _value(legal.find(_p("time"))))
            if legal is not None
            else None
        ),
        service_events=_service_events(root),
        facility_type=_code(
            root.find(_p("componentOf/encompassingEncounter/location/healthCareFacility/code"))
        ),
        related_documents=_related(root),
        non_xml_media_type=non_xml_text.get("mediaType") if non_xml_text is not None else None,
        has_non_xml_body=root.find(_NON_XML_BODY) is not None,
    )
