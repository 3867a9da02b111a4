"""The extension URLs this server reads or writes, in one place, and how to read one (pure).

Server-set extensions (`filed-at`, `record-closed-at`) and the audit chain's are local to
this server (`https://dmp-fhir.invalid/...`); `IS_ARCHIVED_URL` is PDSm's.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

LOCAL = "https://dmp-fhir.invalid/StructureDefinition"
# the instant a document was filed (start of the INVISIBLE_PATIENT embargo;
# DocumentReference.date is the document's own date)
FILED_AT_URL = f"{LOCAL}/filed-at"
# a record's closure ($close); its destruction falls due ten years later
CLOSED_AT_URL = f"{LOCAL}/record-closed-at"
# the record's closure in the shape the DMP guide reads (TD0.2): a complex extension with
# dateFermeture (date), motifFermeture (CodeableConcept) and raisonFermeture (string)
DMP_FERMETURE_URL = "https://interop.esante.gouv.fr/ig/fhir/dmp/StructureDefinition/dmp-fermeture"
DMP_MOTIF_FERMETURE_SYSTEM = (
    "https://interop.esante.gouv.fr/ig/fhir/dmp/CodeSystem/dmp-motif-fermeture"
)
# the record linked to Mon espace santé (TD0.2, boolean): set by `$link-mes`
DMP_RATTACHEMENT_MES_URL = (
    "https://interop.esante.gouv.fr/ig/fhir/dmp/StructureDefinition/dmp-rattachement-mes"
)
# the tamper-evident chain of AuditEvents (`audit.chain`)
CHAIN_PREVIOUS_URL = f"{LOCAL}/audit-chain-previous"
CHAIN_HASH_URL = f"{LOCAL}/audit-chain-hash"
# a resource derived from a filed document (its structured content): the document, and
# the document's facts its visibility is decided on (`fhir.derived`)
SOURCE_DOCUMENT_URL = f"{LOCAL}/source-document"
DOCUMENT_CLASS_URL = f"{LOCAL}/document-class"
DOCUMENT_AUTHOR_URL = f"{LOCAL}/document-author"
# the source document's status (current | superseded): a replaced document's data leaves
# the default view of searches (`search.params.DEFAULTS`)
DOCUMENT_STATUS_URL = f"{LOCAL}/document-status"
# a DocumentReference's account of what its structured content yielded
STRUCTURED_CONTENT_URL = f"{LOCAL}/structured-content"
# PDSm: a document archived (TD3.3d), under the URL of the PDSm guide; the URL this
# server used before is still read and accepted on input, and written as this one
IS_ARCHIVED_URL = (
    "https://interop.esante.gouv.fr/ig/fhir/pdsm/StructureDefinition/pdsm-ext-is-archived"
)
LEGACY_IS_ARCHIVED_URL = "http://esante.gouv.fr/cisis/fhir/StructureDefinition/PDSm_isArchived"
IS_ARCHIVED_URLS = (IS_ARCHIVED_URL, LEGACY_IS_ARCHIVED_URL)


def extension_value(resource: Mapping[str, Any], url: str) -> Any:
    """The value[x] of the first extension with this url, or None."""
    for ext in resource.get("extension") or []:
        if isinstance(ext, Mapping) and ext.get("url") == url:
            return next((v for k, v in ext.items() if k.startswith("value")), None)
    return None
