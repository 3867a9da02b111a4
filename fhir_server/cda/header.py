"""Read the CI-SIS CDA header (the same in every volet) into typed, immutable values.

Reading never fails: what is absent is None or empty, and `validate.py` decides what is
missing. Navigation uses precomputed Clark-notation paths (no XPath compilation per call).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from lxml import etree

from fhir_server.cda.parse import HL7_NS

_NS = f"{{{HL7_NS}}}"


class _Tags:
    """HL7 element names in Clark notation as attributes (`_T.author`), each made once:
    an attribute lookup is the cheapest way to name one of the ~75 tags a header asks for."""

    def __getattr__(self, name: str) -> str:
        clark = _NS + name
        setattr(self, name, clark)
        return clark


_T = _Tags()


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
# Navigation goes through one pass over an element's children (`_kids`, a C-level
# iteration) rather than `find` per tag: `find` runs lxml's path machinery in Python, and a
# header needs some 75 lookups per document.

Kids = dict[str, list[Element]]
_NONE: tuple[None] = (None,)


def child_elements(el: Element | None) -> Kids:
    """An element's child elements by (Clark) tag, in document order, in one pass
    (comments skipped; none for no element): an element asked for many of its children (a
    statement: a dozen) pays one walk of them rather than one `iterchildren(tag)` per
    name."""
    out: Kids = {}
    if el is None:
        return out
    for found in el.iterchildren(etree.Element):
        tag = found.tag
        if tag in out:
            out[tag].append(found)
        else:
            out[tag] = [found]
    return out


def _first(kids: Kids, tag: str) -> Element | None:
    return (kids.get(tag) or _NONE)[0]


def _at(el: Element | None, *tags: str) -> Element | None:
    """The first element down a path of child tags (as `find` would: every branch tried)."""
    if el is None:
        return None
    if len(tags) == 1:
        return next(el.iterchildren(tags[0]), None)
    return _down(el.iterchildren(tags[0]), tags[1:])


def _down(els: Iterable[Element], tags: tuple[str, ...]) -> Element | None:
    """The first element down a path of child tags from any of `els`."""
    for el in els:
        found = _at(el, *tags)
        if found is not None:
            return found
    return None


def _text(el: Element | None) -> str | None:
    if el is None:
        return None
    if len(el):  # mixed content
        text = "".join(el.itertext())
    else:
        text = el.text
        if text is None:
            return None
    return " ".join(text.split()) or None


def _ii(el: Element | None) -> II | None:
    if el is None:
        return None
    root = el.get("root")
    if not root:
        return None
    return II(root.strip(), (el.get("extension") or "").strip() or None)


def _iis(kids: Kids) -> tuple[II, ...]:
    return tuple(ii for el in kids.get(_ID, ()) if (ii := _ii(el)) is not None)


def _code(el: Element | None) -> Code | None:
    if el is None:
        return None
    code = el.get("code")
    if not code:
        return None
    return Code(code.strip(), el.get("codeSystem"), el.get("displayName"))


def _value(el: Element | None) -> str | None:
    return None if el is None else (el.get("value") or None)


def _texts(kids: Kids, tag: str) -> tuple[str, ...]:
    return tuple(t for el in kids.get(tag, ()) if (t := _text(el)))


def _name(el: Element | None) -> PersonName | None:
    if el is None:
        return None
    kids = child_elements(el)
    return PersonName(
        family=_text(_first(kids, _FAMILY)),
        given=_texts(kids, _GIVEN),
        prefix=_texts(kids, _T.prefix),
        suffix=_texts(kids, _T.suffix),
    )


def _organization(el: Element | None) -> Organization | None:
    if el is None:
        return None
    kids = child_elements(el)
    return Organization(
        ids=_iis(kids),
        name=_text(_first(kids, _T.name)),
        industry_code=_code(_first(kids, _T.standardIndustryClassCode)),
    )


def _actor(entity: Element | None, time: str | None = None) -> Actor | None:
    """Read an assignedAuthor or assignedEntity."""
    if entity is None:
        return None
    kids = child_elements(entity)
    return Actor(
        ids=_iis(kids),
        code=_code(_first(kids, _CODE)),
        name=_name(_down(kids.get(_T.assignedPerson, ()), (_T.name,))),
        organization=_organization(_first(kids, _T.representedOrganization)),
        time=time,
        device=_text(_down(kids.get(_T.assignedAuthoringDevice, ()), (_T.softwareName,))),
    )


# --- sections of the header ----------------------------------------------------------------

_ID = _T.id
_CODE = _T.code
_TIME = _T.time
_FAMILY = _T.family
_GIVEN = _T.given
_ASSIGNED_ENTITY = _T.assignedEntity


def _qualified(name: Kids, tag: str, qualifier: str | None) -> str | None:
    for el in name.get(tag, ()):
        if el.get("qualifier") == qualifier:
            return _text(el)
    return None


def _record_target(root: Kids) -> PatientIdentity | None:
    role = _down(root.get(_T.recordTarget, ()), (_T.patientRole,))
    if role is None:
        return None
    role_kids = child_elements(role)
    patient = child_elements(_first(role_kids, _T.patient))
    name = child_elements(_first(patient, _T.name))
    birthplace = child_elements(_down(patient.get(_T.birthplace, ()), (_T.place, _T.addr)))
    gender = _first(patient, _T.administrativeGenderCode)
    return PatientIdentity(
        ids=_iis(role_kids),
        birth_family=_qualified(name, _FAMILY, "BR") or _qualified(name, _FAMILY, None),
        birth_given_names=_qualified(name, _GIVEN, None),
        first_birth_given=_qualified(name, _GIVEN, "BR"),
        used_family=_qualified(name, _FAMILY, "CL"),
        used_given=_qualified(name, _GIVEN, "CL"),
        gender=gender.get("code") if gender is not None else None,
        birth_time=_value(_first(patient, _T.birthTime)),
        birthplace_insee=_text(_first(birthplace, _T.county)),
        birthplace_city=_text(_first(birthplace, _T.city)),
    )


def _authors(root: Kids) -> tuple[Actor, ...]:
    out = []
    for author in root.get(_T.author, ()):
        kids = child_elements(author)
        actor = _actor(_first(kids, _T.assignedAuthor), _value(_first(kids, _TIME)))
        if actor is not None:
            out.append(actor)
    return tuple(out)


def _service_events(root: Kids) -> tuple[ServiceEvent, ...]:
    out = []
    for doc_of in root.get(_T.documentationOf, ()):
        for event in doc_of.iterchildren(_T.serviceEvent):
            kids = child_elements(event)
            performers = tuple(
                actor
                for perf in kids.get(_T.performer, ())
                if (actor := _actor(_at(perf, _ASSIGNED_ENTITY))) is not None
            )
            times = kids.get(_T.effectiveTime, ())
            out.append(
                ServiceEvent(
                    code=_code(_first(kids, _CODE)),
                    low=_value(_down(times, (_T.low,))),
                    high=_value(_down(times, (_T.high,))),
                    performers=performers,
                )
            )
    return tuple(out)


def _related(root: Kids) -> tuple[RelatedDocument, ...]:
    out = []
    for rel in root.get(_T.relatedDocument, ()):
        parent = _at(rel, _T.parentDocument)
        kids = child_elements(parent)
        out.append(
            RelatedDocument(
                type_code=rel.get("typeCode") or "",
                parent_ids=_iis(kids),
                parent_set_id=_ii(_first(kids, _T.setId)) if parent is not None else None,
            )
        )
    return tuple(out)


def _non_xml_body(root: Kids) -> Element | None:
    return _down(root.get(_T.component, ()), (_T.nonXMLBody,))


def read_header(root: Element) -> CdaHeader:
    """Read the header of a parsed ClinicalDocument (see parse.parse_cda)."""
    kids = child_elements(root)
    non_xml_body = _non_xml_body(kids)
    non_xml_text = _down(kids.get(_T.component, ()), (_T.nonXMLBody, _T.text))
    legal = child_elements(_first(kids, _T.legalAuthenticator))
    language = _first(kids, _T.languageCode)
    return CdaHeader(
        template_ids=tuple(t.get("root") or "" for t in kids.get(_T.templateId, ())),
        id=_ii(_first(kids, _ID)),
        code=_code(_first(kids, _CODE)),
        title=_text(_first(kids, _T.title)),
        effective_time=_value(_first(kids, _T.effectiveTime)),
        confidentiality=_code(_first(kids, _T.confidentialityCode)),
        language=language.get("code") if language is not None else None,
        set_id=_ii(_first(kids, _T.setId)),
        version_number=_value(_first(kids, _T.versionNumber)),
        record_target=_record_target(kids),
        authors=_authors(kids),
        custodian=_organization(
            _down(
                kids.get(_T.custodian, ()),
                (_T.assignedCustodian, _T.representedCustodianOrganization),
            )
        ),
        legal_authenticator=(
            _actor(_first(legal, _ASSIGNED_ENTITY), _value(_first(legal, _TIME))) if legal else None
        ),
        service_events=_service_events(kids),
        facility_type=_code(
            _down(
                kids.get(_T.componentOf, ()),
                (
                    _T.encompassingEncounter,
                    _T.location,
                    _T.healthCareFacility,
                    _CODE,
                ),
            )
        ),
        related_documents=_related(kids),
        non_xml_media_type=non_xml_text.get("mediaType") if non_xml_text is not None else None,
        has_non_xml_body=non_xml_body is not None,
    )
