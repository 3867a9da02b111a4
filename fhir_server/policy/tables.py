"""The DMP rules as data. `decide.py` only walks these tables.

Each row cites `shared/reference/dmp-rules.md` (and the CSP article it quotes) or says
**decision** when the rules are silent; a decision takes the side that protects the patient.

## Qualities

An actor's *qualities* towards one record are computed once per request (`decide.py`):

| quality | who | source |
|---|---|---|
| HOLDER | role `patient`, `patient` claim = this record, adult | Actors table |
| LEGAL_REP | role `legal-representative`, `patient` claim = this record | Actors table; **decision**: age is not checked (a guardian of an adult under tutelle is a legal representative too) |
| TREATING | professional whose RPPS is `Patient.generalPractitioner` | R.1111-43, L.1111-16 |
| AUTHORISED | professional named (RPPS) or whose establishment is named (FINESS, care team) by an active permit Consent | R.1111-41, R.1111-46 |
| EMERGENCY | `practitioner` in `bris_de_glace` (with justification), `samu-regulator` in `centre_15`, patient has not opted out | L.1111-17 |
| PROFESSIONAL | role `practitioner` or `samu-regulator` (holds an RPPS) | feeding is not gated by authorisation (L.1111-15) |
| ESTABLISHMENT | role `admin-staff` or `system` | Actors table |
| CARE_ESTABLISHMENT | `admin-staff`/`system` of an establishment named (FINESS) by an active permit Consent | R.1111-46 (care team); **decision**: what links an establishment to a record it may keep identity for |
| ASSURANCE_MALADIE / AUDITOR | those roles | Actors table, Traceability |
| AUTHOR | professional whose RPPS is among the document's authors | per document |
| SAME_ORGANIZATION | `admin-staff`/`system` of the document's custodian establishment | per document, **decision** |
| OWN_DEPOSIT | HOLDER / LEGAL_REP on a document the patient deposited | per document |

A consent block (deny naming the actor) is checked before any quality and beats them all,
the treating physician included (**decision**: "a block beats every permit").
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

from fhir_server.auth.actor import (
    ESTABLISHMENT_ROLES,
    FINESS_SYSTEM,
    PATIENT_BOUND_ROLES,
    PROFESSIONAL_ROLES,
    RPPS_SYSTEM,
)
from fhir_server.policy.model import (
    CLASS_PATIENT,
    CLASS_REIMBURSEMENT,
    DMP_CLASSES,
    INVISIBLE_PATIENT,
    INVISIBLE_REPRESENTANTS_LEGAUX,
    MASQUE_PS,
    Action,
    DocumentFacts,
)


class Quality(StrEnum):
    HOLDER = "holder"
    LEGAL_REP = "legal-representative"
    TREATING = "treating-physician"
    AUTHOR = "author"
    AUTHORISED = "authorised-professional"
    EMERGENCY = "emergency-access"
    OWN_DEPOSIT = "own-deposit"
    SAME_ORGANIZATION = "same-organization"
    PROFESSIONAL = "health-professional"
    ESTABLISHMENT = "establishment"
    CARE_ESTABLISHMENT = "care-team-establishment"
    ASSURANCE_MALADIE = "assurance-maladie"
    AUDITOR = "auditor"


Q = Quality
# Qualities that open the clinical content (reads); the others never do.
READ_STANDINGS = frozenset({Q.HOLDER, Q.LEGAL_REP, Q.TREATING, Q.AUTHORISED, Q.EMERGENCY})
# Order in which a granting quality is named in Decision.rule (most specific first).
QUALITY_PRIORITY: tuple[Quality, ...] = tuple(Quality)

# Per-document qualities, and the roles that could hold them (checked before the document
# is loaded, so that a refusal that does not depend on the document comes first).
DOCUMENT_QUALITY_ROLES: Mapping[Quality, frozenset[str]] = {
    Q.AUTHOR: PROFESSIONAL_ROLES,
    Q.SAME_ORGANIZATION: ESTABLISHMENT_ROLES,
    Q.OWN_DEPOSIT: PATIENT_BOUND_ROLES,
}
# Every quality a role can ever hold, on some record or document. An action none of them
# grants is refused from the request alone, before anything stored is looked at, so the
# answer is the same whatever exists.
_PRO = frozenset({Q.TREATING, Q.AUTHORISED, Q.EMERGENCY, Q.PROFESSIONAL, Q.AUTHOR})
_ESTABLISHMENT = frozenset({Q.ESTABLISHMENT, Q.SAME_ORGANIZATION, Q.CARE_ESTABLISHMENT})
ROLE_QUALITIES: Mapping[str, frozenset[Quality]] = {
    "patient": frozenset({Q.HOLDER, Q.OWN_DEPOSIT}),
    "legal-representative": frozenset({Q.LEGAL_REP, Q.OWN_DEPOSIT}),
    "practitioner": _PRO,
    "samu-regulator": _PRO,
    "admin-staff": _ESTABLISHMENT,
    "system": _ESTABLISHMENT,
    "assurance-maladie": frozenset({Q.ASSURANCE_MALADIE}),
    "auditor": frozenset({Q.AUDITOR}),
}

# Who may do what. | action | qualities | source |
# | read, search | HOLDER LEGAL_REP TREATING AUTHORISED EMERGENCY | Actors, Emergency |
# | file | HOLDER LEGAL_REP PROFESSIONAL ESTABLISHMENT ASSURANCE_MALADIE | Actors "may write" (class limits in FILING_SCOPES) |
# | find-own (find by uniqueId or id the documents one filed: author, filing establishment) | PROFESSIONAL ESTABLISHMENT | feeding is not gated by authorisation (L.1111-15); PDSm4DMP TD3.1b / DMPi RG_3110: the feeding profile finds a document's id by its uniqueId without an authorisation; **decision**: only the actor's own documents (`OWN_DOCUMENTS`), and not Assurance Maladie (it reads no DMP) |
# | update (file a replacing version) | AUTHOR SAME_ORGANIZATION OWN_DEPOSIT | **decision**: only who filed the document may supersede it |
# | patch-metadata (status, archive) | HOLDER LEGAL_REP TREATING AUTHOR SAME_ORGANIZATION | **decision** (PDSm Flux 03 names no actor); the filing establishment archives and supersedes what it filed (feeding profile, PDSm4DMP TD2.1 / TD3.3d) |
# | mask / unmask MASQUE_PS | HOLDER LEGAL_REP TREATING | Visibility: R.1111-38 |
# | set INVISIBLE_PATIENT | AUTHOR | R.1111-42 / R.1111-53 |
# | lift INVISIBLE_PATIENT | AUTHOR TREATING | Visibility |
# | set / lift INVISIBLE_REPRESENTANTS_LEGAUX | AUTHOR TREATING | **decision** (L.1111-5: the professional acts at the minor's request) |
# | delete | AUTHOR | Changing documents: author only; the patient cannot delete (L.1111-15) |
# | read-audit | HOLDER LEGAL_REP TREATING AUDITOR | Traceability, L.1111-19 |
# | read-consent, write-consent | HOLDER LEGAL_REP TREATING | Consent; treating physician "on the patient's request"; **decision**: a professional cannot record their own authorisation |
# | read-patient, search-patient | HOLDER LEGAL_REP PROFESSIONAL ESTABLISHMENT ASSURANCE_MALADIE | identity lookup (TD0.2); **decision**: Assurance Maladie too, it must find the record it feeds |
# | create-record | HOLDER LEGAL_REP PROFESSIONAL ESTABLISHMENT ASSURANCE_MALADIE | Consent rule 1: since Mon espace santé a record is created unless opposed; establishments and Assurance Maladie open it (TD1.1) |
# | write-patient (identity, contact) | HOLDER LEGAL_REP TREATING CARE_ESTABLISHMENT | **decision**: the holder and the establishments the patient authorised (their identity services qualify the INS); an unrelated establishment writes nothing of a record; other professionals file, they do not edit identity |
# | designate-treating (generalPractitioner) | HOLDER LEGAL_REP ASSURANCE_MALADIE | the médecin traitant is the insured person's choice, declared to their Assurance Maladie fund (CSS L.162-5-3), which therefore may record it too; no professional designates themselves |
# | close-record | HOLDER LEGAL_REP TREATING | Closing: "the holder (or a professional at the holder's request)" |
# | reopen-record | HOLDER LEGAL_REP | Closing: closed = read-only for everyone but the holder |
_READERS = READ_STANDINGS
_LABEL_KEEPERS = frozenset({Q.HOLDER, Q.LEGAL_REP, Q.TREATING})
CAPABILITIES: Mapping[Action, frozenset[Quality]] = {
    Action.READ: _READERS,
    Action.SEARCH: _READERS,
    Action.FIND_OWN: frozenset({Q.PROFESSIONAL, Q.ESTABLISHMENT}),
    Action.FILE: frozenset(
        {Q.HOLDER, Q.LEGAL_REP, Q.PROFESSIONAL, Q.ESTABLISHMENT, Q.ASSURANCE_MALADIE}
    ),
    Action.UPDATE: frozenset({Q.AUTHOR, Q.SAME_ORGANIZATION, Q.OWN_DEPOSIT}),
    Action.PATCH_METADATA: _LABEL_KEEPERS | {Q.AUTHOR, Q.SAME_ORGANIZATION},
    Action.MASK: _LABEL_KEEPERS,
    Action.UNMASK: _LABEL_KEEPERS,
    Action.SET_INVISIBLE_PATIENT: frozenset({Q.AUTHOR}),
    Action.LIFT_INVISIBLE_PATIENT: frozenset({Q.AUTHOR, Q.TREATING}),
    Action.SET_INVISIBLE_LEGAL_REP: frozenset({Q.AUTHOR, Q.TREATING}),
    Action.LIFT_INVISIBLE_LEGAL_REP: frozenset({Q.AUTHOR, Q.TREATING}),
    Action.DELETE: frozenset({Q.AUTHOR}),
    Action.READ_AUDIT: frozenset({Q.HOLDER, Q.LEGAL_REP, Q.TREATING, Q.AUDITOR}),
    Action.READ_CONSENT: _LABEL_KEEPERS,
    Action.WRITE_CONSENT: _LABEL_KEEPERS,
    Action.READ_PATIENT: frozenset(
        {Q.HOLDER, Q.LEGAL_REP, Q.PROFESSIONAL, Q.ESTABLISHMENT, Q.ASSURANCE_MALADIE}
    ),
    Action.SEARCH_PATIENT: frozenset(
        {Q.HOLDER, Q.LEGAL_REP, Q.PROFESSIONAL, Q.ESTABLISHMENT, Q.ASSURANCE_MALADIE}
    ),
    Action.CREATE_RECORD: frozenset(
        {Q.HOLDER, Q.LEGAL_REP, Q.PROFESSIONAL, Q.ESTABLISHMENT, Q.ASSURANCE_MALADIE}
    ),
    Action.WRITE_PATIENT: frozenset({Q.HOLDER, Q.LEGAL_REP, Q.TREATING, Q.CARE_ESTABLISHMENT}),
    Action.DESIGNATE_TREATING: frozenset({Q.HOLDER, Q.LEGAL_REP, Q.ASSURANCE_MALADIE}),
    Action.CLOSE_RECORD: _LABEL_KEEPERS,
    Action.REOPEN_RECORD: frozenset({Q.HOLDER, Q.LEGAL_REP}),
    Action.LINK_MES: frozenset({Q.HOLDER, Q.LEGAL_REP}),
    Action.READ_AUTHORISATION: frozenset({Q.PROFESSIONAL}),
}
assert set(CAPABILITIES) == set(Action), "every action needs a row"

# What "own documents" means for `find-own`, per kind of filer: the search parameter
# (searched by identifier) that names the filer, the identifier system, and the token
# claim that holds the value; the same facts make the AUTHOR / SAME_ORGANIZATION qualities.
OWN_DOCUMENTS: Mapping[str, tuple[str, str, str]] = {
    **{role: ("author", RPPS_SYSTEM, "rpps") for role in PROFESSIONAL_ROLES},
    **{role: ("custodian", FINESS_SYSTEM, "organization") for role in ESTABLISHMENT_ROLES},
}

# Habilitation matrix: document classes (TRE_A03) a professional may READ, by G15
# profession code. Source: arrêté du 26 octobre 2023 (JO 29/10/2023) "matrice
# d'habilitations", which works per document *type* (87 types, 19 professions): physicians
# see everything, pharmacists and nurses slightly less, certificates are for physicians.
# **decision**: simplified here to whole classes and five professions; a profession not
# listed has no habilitation (403), rather than defaulting to a physician's rights.
_ALL = DMP_CLASSES
HABILITATIONS: Mapping[str, frozenset[str]] = {
    "10": _ALL,  # médecin
    "21": frozenset({"10", "11", "42", "43", "44", "45", "60", "90", "95"}),  # pharmacien
    "40": _ALL - {"52"},  # chirurgien-dentiste
    "50": _ALL,  # sage-femme
    "60": frozenset({"10", "11", "31", "42", "43", "44", "45", "90", "95"}),  # infirmier
}

PATIENT_TYPE_PREFIXES = ("DOCPAT", "EXPPAT")


@dataclass(frozen=True)
class FilingScope:
    """What a role may file: class in `classes` or type starting with `type_prefixes`,
    and never a type starting with `excluded_type_prefixes`."""

    classes: frozenset[str]
    type_prefixes: tuple[str, ...] = ()
    excluded_type_prefixes: tuple[str, ...] = ()

    def admits(self, doc: DocumentFacts) -> bool:
        type_code = doc.type_code or ""
        if self.excluded_type_prefixes and type_code.startswith(self.excluded_type_prefixes):
            return False
        in_types = bool(self.type_prefixes) and type_code.startswith(self.type_prefixes)
        return doc.class_code in self.classes or in_types


_PATIENT_SCOPE = FilingScope(frozenset({CLASS_PATIENT}), PATIENT_TYPE_PREFIXES)
# **decision**: professionals and establishments file neither reimbursement data (class 60,
# Assurance Maladie's alone) nor patient deposits (class 90, DOCPAT*/EXPPAT*): a document
# must not claim a provenance it does not have.
_PROFESSIONAL_SCOPE = FilingScope(
    DMP_CLASSES - {CLASS_REIMBURSEMENT, CLASS_PATIENT}, (), PATIENT_TYPE_PREFIXES + ("REMB",)
)
FILING_SCOPES: Mapping[str, FilingScope] = {
    "patient": _PATIENT_SCOPE,  # class 90, DOCPAT*/EXPPAT* (rules: Actors)
    "legal-representative": _PATIENT_SCOPE,
    "practitioner": _PROFESSIONAL_SCOPE,
    "samu-regulator": _PROFESSIONAL_SCOPE,
    "admin-staff": _PROFESSIONAL_SCOPE,
    "system": _PROFESSIONAL_SCOPE,
    # reimbursement history only (rules: Actors)
    "assurance-maladie": FilingScope(frozenset({CLASS_REIMBURSEMENT}), (), PATIENT_TYPE_PREFIXES),
}

# Labels a filer may put on a document it files. MASQUE_PS: anyone who may file (the ANS
# DRIM-M example files N + MASQUE_PS + INVISIBLE_PATIENT in one submission). The two
# INVISIBLE_* labels are set by the authoring professional (R.1111-42), so only by
# professional channels (**decision**: an establishment's system files for its authors).
LABELS_AT_FILING: Mapping[str, frozenset[str]] = {
    MASQUE_PS: frozenset(FILING_SCOPES),
    INVISIBLE_PATIENT: PROFESSIONAL_ROLES | ESTABLISHMENT_ROLES,
    INVISIBLE_REPRESENTANTS_LEGAUX: PROFESSIONAL_ROLES | ESTABLISHMENT_ROLES,
}

# Roles that put content into a record (dmp-rules.md, "may write").
FILING_ROLES: frozenset[str] = frozenset(FILING_SCOPES)

# Which policy action each FHIR interaction on each type amounts to. A type's reads are
# all governed by one action (`READ_ACTION`); writes by the element tables of `elements.py`
# on top of the row here.
_READS = ("read", "vread", "history-instance")
READ_ACTION: Mapping[str, Action] = {
    "DocumentReference": Action.READ,
    "Binary": Action.READ,  # the content follows its document
    "Patient": Action.READ_PATIENT,
    "Consent": Action.READ_CONSENT,
    "AuditEvent": Action.READ_AUDIT,
    "Communication": Action.READ_AUDIT,  # the patient's notices are part of the trail
    "List": Action.SEARCH,  # a submission set lists the record's documents
    # structured content follows its document
    "Observation": Action.READ,
    "DiagnosticReport": Action.READ,
    "Condition": Action.READ,
    "AllergyIntolerance": Action.READ,
    "MedicationStatement": Action.READ,
    "Procedure": Action.READ,
    "Immunization": Action.READ,
    # laboratory samples and isolates (CR-BIO)
    "Specimen": Action.READ,
}
SEARCH_ACTION: Mapping[str, Action] = {
    **READ_ACTION,
    "DocumentReference": Action.SEARCH,
    "Patient": Action.SEARCH_PATIENT,
    "Observation": Action.SEARCH,
    "DiagnosticReport": Action.SEARCH,
    "Condition": Action.SEARCH,
    "AllergyIntolerance": Action.SEARCH,
    "MedicationStatement": Action.SEARCH,
    "Procedure": Action.SEARCH,
    "Immunization": Action.SEARCH,
    # laboratory samples and isolates (CR-BIO)
    "Specimen": Action.SEARCH,
}
WRITE_ACTION: Mapping[tuple[str, str], Action] = {
    ("DocumentReference", "create"): Action.FILE,
    ("DocumentReference", "update"): Action.PATCH_METADATA,
    ("DocumentReference", "patch"): Action.PATCH_METADATA,
    ("DocumentReference", "delete"): Action.DELETE,
    ("Binary", "create"): Action.FILE,
    ("Binary", "update"): Action.FILE,
    ("List", "create"): Action.FILE,
    ("List", "update"): Action.FILE,
    ("Patient", "create"): Action.CREATE_RECORD,
    ("Patient", "update"): Action.WRITE_PATIENT,
    ("Consent", "create"): Action.WRITE_CONSENT,
    ("Consent", "update"): Action.WRITE_CONSENT,
}


def interaction_action(rtype: str, interaction: str) -> Action | None:
    """The action an interaction amounts to before its elements are looked at."""
    if interaction in _READS:
        return READ_ACTION.get(rtype)
    if interaction == "search-type":
        return SEARCH_ACTION.get(rtype)
    return WRITE_ACTION.get((rtype, interaction))


# Refiling (the same uniqueId sent again). The answer discloses the filed document, so it
# needs a proof that the sender holds it already: the same bytes, whose SHA-1 the server
# computes itself (a hash a client merely claims proves nothing).
# | what was sent | answer |
# | the same bytes | the filed DocumentReference (200, audited `refiling`) to a filing role, even without read rights (a laboratory's retry after a lost answer must succeed), or to whoever may read it |
# | other bytes | 409 "already filed", naming nothing: a uniqueId identifies one content (XDS) |
# | no bytes (a DocumentReference alone) | the filed one to whoever may read it, else the 409 |
def refiling_disclosed(role: str, same_bytes: bool | None, may_read: bool) -> bool:
    if same_bytes is None:
        return may_read
    return same_bytes and (may_read or role in FILING_ROLES)
