"""Resources for the search tests: a PDSm-shaped DocumentReference factory."""

from __future__ import annotations

from typing import Any

LOINC = "http://loinc.org"
CLASS_SYSTEM = "urn:oid:1.2.250.1.213.1.1.4.1"  # XDS classCode (J06)
RPPS = "urn:oid:1.2.250.1.71.4.2.1"
MASK_SYSTEM = "https://mos.esante.gouv.fr/NOS/TRE_A07-StatutVisibiliteDocument/FHIR/TRE-A07-StatutVisibiliteDocument"


def document(
    patient_id: str,
    *,
    status: str = "current",
    category: str = "10",
    type_code: str = "11490-0",
    date: str = "2024-05-03T10:00:00+02:00",
    period: tuple[str | None, str | None] = ("2024-05-01", "2024-05-02"),
    unique_id: str | None = None,
    author_rpps: str = "810000000001",
    labels: tuple[str, ...] = ("N",),
    **extra: Any,
) -> dict[str, Any]:
    start, end = period
    ctx_period = {k: v for k, v in (("start", start), ("end", end)) if v}
    res: dict[str, Any] = {
        "resourceType": "DocumentReference",
        "contained": [
            {
                "resourceType": "Practitioner",
                "id": "author1",
                "identifier": [{"system": RPPS, "value": author_rpps}],
            }
        ],
        "status": status,
        "type": {"coding": [{"system": LOINC, "code": type_code}]},
        "category": [{"coding": [{"system": CLASS_SYSTEM, "code": category}]}],
        "subject": {"reference": f"Patient/{patient_id}"},
        "date": date,
        "author": [{"reference": "#author1"}],
        "securityLabel": [
            {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/v3-Confidentiality"
                        if c == "N"
                        else MASK_SYSTEM,
                        "code": c,
                    }
                ]
            }
            for c in labels
        ],
        "content": [
            {
                "attachment": {"contentType": "text/xml", "url": "Binary/b1", "creation": date},
                "format": {
                    "system": "urn:oid:1.3.6.1.4.1.19376.1.2.3",
                    "code": "urn:ihe:iti:xds-sd:pdf:2008",
                },
            }
        ],
        "context": {
            "period": ctx_period,
            "facilityType": {"coding": [{"system": "urn:oid:1.2.250.1.71.4.2.4", "code": "SA01"}]},
            "practiceSetting": {
                "coding": [{"system": "urn:oid:1.2.250.1.213.1.1.4.9", "code": "ETABLISSEMENT"}]
            },
        },
    }
    if unique_id:
        res["masterIdentifier"] = {"system": "urn:ietf:rfc:3986", "value": unique_id}
    res.update(extra)
    return res
