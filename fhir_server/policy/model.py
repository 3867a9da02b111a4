"""Plain typed inputs and output of the DMP access decision (no I/O anywhere in policy/)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

# TRE_A07-StatutVisibiliteDocument (OID 1.2.250.1.213.1.1.4.13): DocumentReference.securityLabel
VISIBILITY_SYSTEM = (
    "https://mos.esante.gouv.fr/NOS/TRE_A07-StatutVisibiliteDocument/FHIR/"
    "TRE-A07-StatutVisibiliteDocument"
)
MASQUE_PS = "MASQUE_PS"
INVISIBLE_PATIENT = "INVISIBLE_PATIENT"
INVISIBLE_REPRESENTANTS_LEGAUX = "INVISIBLE_REPRESENTANTS_LEGAUX"
VISIBILITY_CODES = frozenset({MASQUE_PS, INVISIBLE_PATIENT, INVISIBLE_REPRESENTANTS_LEGAUX})

# TRE_A03-ClasseDocument (DocumentReference.category), DMP subset JDV_J57
CLASS_SYSTEM = "https://mos.esante.gouv.fr/NOS/TRE_A03-ClasseDocument/FHIR/TRE-A03-ClasseDocument"
DMP_CLASSES = frozenset({"10", "11", "31", "42", "43", "44", "45", "52", "60", "90", "95"})
CLASS_REIMBURSEMENT = "60"
CLASS_PATIENT = "90"


class Action(StrEnum):
    READ = "read"  # read / vread a DocumentReference or its Binary
    SEARCH = "search"  # DocumentReference search in the patient's record
    # find the documents one filed, without the right to read the record (feeding profile)
    FIND_OWN = "find-own"
    FILE = "file"  # create: file a new document (ITI-65 / ITI-105 / CDA)
    UPDATE = "update"  # file a replacing version (RPLC / relatesTo.replaces)
    PATCH_METADATA = "patch-metadata"  # status / archive flag (PDSm Flux 03)
    MASK = "mask"  # add MASQUE_PS
    UNMASK = "unmask"  # remove MASQUE_PS
    SET_INVISIBLE_PATIENT = "set-invisible-patient"
    LIFT_INVISIBLE_PATIENT = "lift-invisible-patient"
    SET_INVISIBLE_LEGAL_REP = "set-invisible-legal-rep"
    LIFT_INVISIBLE_LEGAL_REP = "lift-invisible-legal-rep"
    DELETE = "delete"
    READ_AUDIT = "read-audit"
    READ_CONSENT = "read-consent"
    WRITE_CONSENT = "write-consent"
    READ_PATIENT = "read-patient"  # identity (Patient), not clinical content
    SEARCH_PATIENT = "search-patient"  # identity lookup by INS
    CREATE_RECORD = "create-record"  # create the Patient, i.e. open the record
    WRITE_PATIENT = "write-patient"  # identity traits and contact details of a record
    DESIGNATE_TREATING = "designate-treating"  # Patient.generalPractitioner
    CLOSE_RECORD = "close-record"
    REOPEN_RECORD = "reopen-record"
    LINK_MES = "link-mes"  # the holder activates Mon espace santé: dmp-rattachement-mes
    # a professional asks their own authorisation status for the record (TD0.2)
    READ_AUTHORISATION = "read-authorisation"


# Actions that target one existing document (the DocumentFacts of that document).
DOCUMENT_ACTIONS = frozenset(
    {
        Action.READ,
        Action.UPDATE,
        Action.PATCH_METADATA,
        Action.MASK,
        Action.UNMASK,
        Action.SET_INVISIBLE_PATIENT,
        Action.LIFT_INVISIBLE_PATIENT,
        Action.SET_INVISIBLE_LEGAL_REP,
        Action.LIFT_INVISIBLE_LEGAL_REP,
        Action.DELETE,
    }
)
READ_ACTIONS = frozenset(
    {
        Action.READ,
        Action.SEARCH,
        Action.FIND_OWN,
        Action.READ_AUDIT,
        Action.READ_CONSENT,
        Action.READ_PATIENT,
        Action.SEARCH_PATIENT,
        Action.READ_AUTHORISATION,
    }
)
WRITE_ACTIONS = frozenset(Action) - READ_ACTIONS
# Actions that put a document into the record.
FILING_ACTIONS = frozenset({Action.FILE, Action.UPDATE})


class RecordStatus(StrEnum):
    OPEN = "open"
    CLOSED = "closed"  # read-only for everyone but the holder; reopenable
    OPPOSED = "opposed"  # the holder opposed the creation: no record
    ABSENT = "absent"  # never created, or destroyed


@dataclass(frozen=True)
class PatientFacts:
    """What the policy needs to know of the record holder.

    treating_rpps: RPPS of the treating physician, from `Patient.generalPractitioner`
    (identifier system urn:oid:1.2.250.1.71.4.2.1); minor: under 18 at the decision's
    instant (from `Patient.birthDate`, see `facts.patient_facts`).
    """

    id: str
    treating_rpps: str | None = None
    record: RecordStatus = RecordStatus.OPEN
    deceased: bool = False
    minor: bool = False


@dataclass(frozen=True)
class DocumentFacts:
    """What the policy needs to know of one document (DocumentReference).

    labels: TRE_A07 codes of `securityLabel` (other systems' codes such as N are ignored);
    author_rpps: RPPS of the contained author Practitioners;
    class_code: `category` code (TRE_A03 / JDV_J06), type_code: `type` code (JDV_J07);
    filed_at: filing instant (the server's `filed-at` extension, set at filing), the
    start of the INVISIBLE_PATIENT embargo; must be timezone-aware;
    custodian_finess: FINESS of the filing establishment (`custodian` identifier);
    filed_by_patient: deposited by the patient / legal representative (class 90 space).
    """

    labels: frozenset[str] = frozenset()
    author_rpps: frozenset[str] = frozenset()
    class_code: str = "10"
    type_code: str | None = None
    filed_at: datetime | None = None
    status: str = "current"
    custodian_finess: str | None = None
    filed_by_patient: bool = False


class Answer(StrEnum):
    """What the client is told of a decision. The rule and its reason always go to the
    AuditEvent; the answer says how much of them the response may carry.

    - granted: 200.
    - refused: 403 with the reason. Only for refusals that depend on what the actor is
      and sent (role, access mode, justification, the document being filed) or on a
      resource the actor may see: they disclose nothing stored.
    - no-access: 403 with one fixed text, the same for a record that does not exist, for
      a block, for a missing authorisation, for an emergency opposition: which of them
      applies is stored data the actor may not have.
    - hidden: 404, word for word the answer to an unknown id.
    - no-record: 404 "no DMP" to a writer (a filer may look the record up by INS anyway).
    """

    GRANTED = "granted"
    REFUSED = "refused"
    NO_ACCESS = "no-access"
    HIDDEN = "hidden"
    NO_RECORD = "no-record"


STATUS_OF_ANSWER = {
    Answer.GRANTED: 200,
    Answer.REFUSED: 403,
    Answer.NO_ACCESS: 403,
    Answer.HIDDEN: 404,
    Answer.NO_RECORD: 404,
}


@dataclass(frozen=True)
class Decision:
    """permit, the rule that decided (stable id, goes to AuditEvent.outcomeDesc), a reason
    for the audit (and for the client when the answer is `refused`), and the answer."""

    permit: bool
    rule: str
    reason: str
    answer: Answer = Answer.GRANTED

    @property
    def status(self) -> int:
        return STATUS_OF_ANSWER[self.answer]

    @property
    def hidden(self) -> bool:
        """The resource exists but is not disclosed: the same answer as an unknown id."""
        return self.answer is Answer.HIDDEN

    @classmethod
    def allow(cls, rule: str, reason: str) -> Decision:
        return cls(True, rule, reason, Answer.GRANTED)

    @classmethod
    def deny(cls, rule: str, reason: str) -> Decision:
        return cls(False, rule, reason, Answer.REFUSED)

    @classmethod
    def no_access(cls, rule: str, reason: str) -> Decision:
        return cls(False, rule, reason, Answer.NO_ACCESS)

    @classmethod
    def hide(cls, rule: str, reason: str) -> Decision:
        return cls(False, rule, reason, Answer.HIDDEN)

    @classmethod
    def not_found(cls, rule: str, reason: str) -> Decision:
        return cls(False, rule, reason, Answer.NO_RECORD)
