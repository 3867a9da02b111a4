"""IHE MHD / PDSm vocabulary the server recognises (pure data and predicates)."""

from __future__ import annotations

from typing import Any

PDSM = "https://interop.esante.gouv.fr/ig/fhir/pdsm/StructureDefinition/"
PDSM_DOCREF_PROFILE = PDSM + "pdsm-comprehensive-document-reference"
MHD = "https://profiles.ihe.net/ITI/MHD/StructureDefinition/"
SUBMISSION_SET_PROFILES = frozenset(
    {
        PDSM + "pdsm-submissionset-comprehensive",
        PDSM + "pdsm-submissionset-minimal",
        MHD + "IHE.MHD.Comprehensive.SubmissionSet",
        MHD + "IHE.MHD.Minimal.SubmissionSet",
        MHD + "IHE.MHD.UnContained.Comprehensive.SubmissionSet",
    }
)
MHD_LIST_TYPES = "https://profiles.ihe.net/ITI/MHD/CodeSystem/MHDlistTypes"
# media types under which a Binary may hold a CDA document
CDA_MEDIA_TYPES = frozenset({"application/hl7-cda+xml", "application/xml", "text/xml"})


def is_submission_set(resource: Any) -> bool:
    """A List that is an MHD SubmissionSet, by profile or by the MHD list type code."""
    if not isinstance(resource, dict) or resource.get("resourceType") != "List":
        return False
    profiles = set((resource.get("meta") or {}).get("profile") or [])
    if profiles & SUBMISSION_SET_PROFILES:
        return True
    codings = (resource.get("code") or {}).get("coding") or []
    return any(
        c.get("system") == MHD_LIST_TYPES and c.get("code") == "submissionset" for c in codings
    )


def submission_set_unique_ids(resource: dict[str, Any]) -> list[dict[str, Any]]:
    """The SubmissionSet uniqueId: List.identifier with use `usual` (MHD; `official` is
    the entryUUID)."""
    return [
        i
        for i in resource.get("identifier") or []
        if isinstance(i, dict) and i.get("use") == "usual" and i.get("value")
    ]


def xds_unique_id(identifier: dict[str, Any]) -> str:
    """An Identifier back to the XDS uniqueId form (root^extension or root), IHE Appendix Z:
    urn:oid:ROOT + EXT -> ROOT^EXT; urn:ietf:rfc:3986 + urn:oid:ROOT -> ROOT."""
    system = str(identifier.get("system") or "")
    value = str(identifier.get("value") or "")
    if system == "urn:ietf:rfc:3986" or not system:
        return value.removeprefix("urn:oid:").removeprefix("urn:uuid:")
    return f"{system.removeprefix('urn:oid:').removeprefix('urn:uuid:')}^{value}"
