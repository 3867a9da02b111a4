"""The caller as the policy sees it: an `Actor` (from the verified token) and an
`AccessContext` (the TRE_R248 access mode and its justification, from request headers).

Claims and headers are those of `shared/reference/dmp-rules.md`, "FHIR encoding".
"""

from __future__ import annotations

import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

from fhir_server.errors import bad_request, forbidden

RPPS_SYSTEM = "urn:oid:1.2.250.1.71.4.2.1"
FINESS_SYSTEM = "urn:oid:1.2.250.1.71.4.2.2"

# The justification is copied into every AuditEvent: bound it so a client cannot bloat
# the audit trail with one header.
MAX_JUSTIFICATION_CHARS = 1000


class Role(StrEnum):
    PATIENT = "patient"
    LEGAL_REPRESENTATIVE = "legal-representative"
    PRACTITIONER = "practitioner"
    SAMU_REGULATOR = "samu-regulator"
    ADMIN_STAFF = "admin-staff"
    SYSTEM = "system"
    ASSURANCE_MALADIE = "assurance-maladie"
    AUDITOR = "auditor"


# Any other role (insurer, employer, occupational physician...) is refused with 403,
# even with the patient's consent (L.1111-18).
ROLES: frozenset[str] = frozenset(r.value for r in Role)

# Roles acting with an RPPS: health professionals.
PROFESSIONAL_ROLES: frozenset[str] = frozenset({Role.PRACTITIONER, Role.SAMU_REGULATOR})
# Roles bound to one Patient by the `patient` claim.
PATIENT_BOUND_ROLES: frozenset[str] = frozenset({Role.PATIENT, Role.LEGAL_REPRESENTATIVE})
# Roles acting for an establishment: the `organization` claim is required.
ESTABLISHMENT_ROLES: frozenset[str] = frozenset({Role.ADMIN_STAFF, Role.SYSTEM})


@dataclass(frozen=True)
class Actor:
    """A verified caller. `rpps` and `organization` are identifier values (systems above);
    `patient` is the logical Patient id a patient or legal representative acts for."""

    role: str
    sub: str
    rpps: str | None = None
    profession: str = "10"
    organization: str | None = None
    patient: str | None = None

    @property
    def role_allowed(self) -> bool:
        return self.role in ROLES


class AccessMode(StrEnum):
    """TRE_R248-ModeAcces codes (OID 1.2.250.1.213.1.1.4.248)."""

    NORMAL = "normal"
    BRIS_DE_GLACE = "bris_de_glace"
    CENTRE_15 = "centre_15"


# **decision**: break-glass is for health professionals (`practitioner`), centre 15 for the
# SAMU regulating physician only. Patients, staff, systems, Assurance Maladie and auditors
# have no emergency mode: declaring one is refused rather than silently ignored.
ACCESS_MODE_ROLES: Mapping[AccessMode, frozenset[str]] = {
    AccessMode.NORMAL: ROLES,
    AccessMode.BRIS_DE_GLACE: frozenset({Role.PRACTITIONER}),
    AccessMode.CENTRE_15: frozenset({Role.SAMU_REGULATOR}),
}

MODE_HEADER = "x-access-mode"
JUSTIFICATION_HEADER = "x-access-justification"


@dataclass(frozen=True)
class AccessContext:
    mode: AccessMode = AccessMode.NORMAL
    justification: str | None = None

    @property
    def emergency(self) -> bool:
        return self.mode is not AccessMode.NORMAL


def _as_sent(value: str) -> str:
    """A header value as its sender wrote it: HTTP hands bytes over as latin-1, and a
    client writing anything beyond ASCII sends UTF-8."""
    try:
        return value.encode("latin-1").decode("utf-8")
    except (UnicodeEncodeError, UnicodeDecodeError):
        return value


def _header(headers: Mapping[str, str], name: str) -> str | None:
    # Starlette headers are case-insensitive, a plain dict is not: look both ways.
    value = headers.get(name)
    if value is None:
        value = next((v for k, v in headers.items() if k.lower() == name), None)
    if value is None:
        return None
    value = _as_sent(value).strip()
    return value or None


# spaces, line breaks, controls and invisible format characters (zero-width space, BOM,
# joiners...) say nothing
_BLANK_CATEGORIES = frozenset({"Zs", "Zl", "Zp", "Cc", "Cf"})


def says_something(text: str) -> bool:
    """At least one visible character (Unicode-aware: U+00A0 or U+200B alone are blank)."""
    return any(unicodedata.category(ch) not in _BLANK_CATEGORIES for ch in text)


def access_context_from_headers(
    headers: Mapping[str, str], actor: Actor | None = None, *, strict: bool = True
) -> AccessContext:
    """Parse `X-Access-Mode` / `X-Access-Justification`.

    - unknown mode: 400 (a malformed request, not an access decision);
    - `bris_de_glace` without a (non-blank) justification: **403**. **decision**: the
      justification is a condition of the emergency permission itself (L.1111-17), not a
      syntax rule, and a refused emergency attempt must be audited as a refused access
      (R.1111-31) like any other 403; a 400 would read as a client bug;
    - a mode the actor's role may not use (`centre_15` without `samu-regulator`,
      `bris_de_glace` by a non-practitioner): 403. Checked only when `actor` is given; the
      policy checks it again (defence in depth).

    With `strict=False` the two refusals are left to the policy (rules 2 and 3), which
    sees the record and so audits the refused attempt in the patient's own trail.
    """
    raw_mode = _header(headers, MODE_HEADER)
    try:
        mode = AccessMode(raw_mode) if raw_mode is not None else AccessMode.NORMAL
    except ValueError:
        allowed = ", ".join(m.value for m in AccessMode)
        raise bad_request(
            f"X-Access-Mode {raw_mode!r} is not a TRE_R248 access mode ({allowed})",
            code="value",
        ) from None
    justification = _header(headers, JUSTIFICATION_HEADER)
    if justification is not None and not says_something(justification):
        justification = None
    if justification is not None and len(justification) > MAX_JUSTIFICATION_CHARS:
        raise bad_request(
            f"X-Access-Justification is longer than {MAX_JUSTIFICATION_CHARS} characters",
            code="too-long",
        )
    if not strict:
        return AccessContext(mode=mode, justification=justification)
    if mode is AccessMode.BRIS_DE_GLACE and justification is None:
        raise forbidden("bris_de_glace access requires an X-Access-Justification")
    if actor is not None and actor.role not in ACCESS_MODE_ROLES[mode]:
        raise forbidden(f"access mode {mode.value} is not available to role {actor.role}")
    return AccessContext(mode=mode, justification=justification)
