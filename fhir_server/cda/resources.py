"""FHIR R4 building blocks (plain dicts) from header values: identifiers, names, actors."""

from __future__ import annotations

from typing import Any

from fhir_server.cda.header import II, Actor, Code, Organization, PatientIdentity, PersonName
from fhir_server.cda.timestamps import ts_to_date
from fhir_server.fhir.ins import FR_CORE_V2_0203, INS_KINDS, ins_system
from fhir_server.terminology.valuesets import fhir_system

Json = dict[str, Any]

V2_0203 = "http://terminology.hl7.org/CodeSystem/v2-0203"
BIRTH_LIST_GIVEN_NAME = (
    "https://hl7.fr/ig/fhir/core/StructureDefinition/fr-core-patient-birth-list-given-name"
)
BIRTH_PLACE = "http://hl7.org/fhir/StructureDefinition/patient-birthPlace"
INSEE_CODE = "https://hl7.fr/ig/fhir/core/StructureDefinition/fr-core-address-insee-code"
TRE_R13_COMMUNE = "https://mos.esante.gouv.fr/NOS/TRE_R13-CommuneOM/FHIR/TRE-R13-CommuneOM"
RPPS_OID = "1.2.250.1.71.4.2.1"
_GENDER = {"M": "male", "F": "female", "U": "unknown"}


def identifier(ii: II) -> Json:
    """An HL7 II as a FHIR Identifier: urn:oid:root system, extension value.

    A bare root (no extension) is itself the identifier: RFC 3986 system, urn:oid: value.
    """
    if ii.extension is None:
        return {"system": "urn:ietf:rfc:3986", "value": _uri(ii.root)}
    return {"system": _uri(ii.root), "value": ii.extension}


def _uri(root: str) -> str:
    # CDA roots are OIDs or UUIDs (HL7 II); both have a URN form
    return f"urn:uuid:{root.lower()}" if "-" in root else f"urn:oid:{root}"


def coding(code: Code) -> Json:
    out: Json = {"system": fhir_system(code.system) if code.system else None, "code": code.code}
    if code.display:
        out["display"] = code.display
    return {k: v for k, v in out.items() if v is not None}


def human_name(name: PersonName) -> Json:
    out: Json = {}
    if name.family:
        out["family"] = name.family
    for key in ("given", "prefix", "suffix"):
        if values := getattr(name, key):
            out[key] = list(values)
    return out


def organization(org: Organization, rid: str) -> Json:
    out: Json = {"resourceType": "Organization", "id": rid}
    if org.ids:
        out["identifier"] = [identifier(ii) for ii in org.ids]
    if org.name:
        out["name"] = org.name
    return out


def practitioner(actor: Actor, rid: str) -> Json:
    out: Json = {"resourceType": "Practitioner", "id": rid}
    if actor.ids:
        out["identifier"] = [identifier(ii) for ii in actor.ids]
    if actor.name is not None and (name := human_name(actor.name)):
        out["name"] = [name]
    return out


def actor_resources(actor: Actor, prefix: str) -> tuple[str, list[Json]]:
    """Contained Practitioner + Organization + the PractitionerRole tying them (PDSm author).

    Returns the id of the resource to reference and the resources to contain.
    """
    contained = [practitioner(actor, f"{prefix}-practitioner")]
    role: Json = {
        "resourceType": "PractitionerRole",
        "id": f"{prefix}-role",
        "practitioner": {"reference": f"#{prefix}-practitioner"},
    }
    if actor.organization is not None:
        contained.append(organization(actor.organization, f"{prefix}-organization"))
        role["organization"] = {"reference": f"#{prefix}-organization"}
    if actor.code is not None:
        # CI-SIS author code = XDS authorSpecialty (profession/savoir-faire, TRE_A02)
        role["specialty"] = [{"coding": [coding(actor.code)]}]
    contained.append(role)
    return role["id"], contained


def patient_identifiers(p: PatientIdentity) -> list[Json]:
    out = []
    for ii in p.ids:
        if ii.extension is None:
            continue
        kind = INS_KINDS.get(ii.root)
        if kind is not None:
            out.append(
                {
                    "use": "temp" if kind.type_code == "INS-NIA" else "official",
                    "type": {"coding": [{"system": FR_CORE_V2_0203, "code": kind.type_code}]},
                    "system": ins_system(ii.root),
                    "value": ii.extension,
                }
            )
        else:  # a local id (IPP) under the establishment's OID
            out.append(
                {
                    "use": "usual",
                    "type": {"coding": [{"system": V2_0203, "code": "PI"}]},
                    "system": f"urn:oid:{ii.root}",
                    "value": ii.extension,
                }
            )
    return out


def _names(p: PatientIdentity) -> list[Json]:
    names = []
    birth_list = p.birth_given_names or p.first_birth_given
    first = p.first_birth_given or (birth_list.split()[0] if birth_list else None)
    if p.birth_family or first:
        official: Json = {"use": "official"}
        if birth_list:
            official["extension"] = [{"url": BIRTH_LIST_GIVEN_NAME, "valueString": birth_list}]
        if p.birth_family:
            official["family"] = p.birth_family
        if first:
            official["given"] = [first]
        names.append(official)
    if p.used_family or p.used_given:
        usual: Json = {"use": "usual"}
        if p.used_family:
            usual["family"] = p.used_family
        if p.used_given:
            usual["given"] = [p.used_given]
        names.append(usual)
    return names


def patient(p: PatientIdentity, rid: str | None) -> Json:
    """FR Core (INS) Patient from recordTarget."""
    out: Json = {"resourceType": "Patient"}
    if rid:
        out["id"] = rid
    if p.birthplace_insee:
        address: Json = {
            "extension": [
                {
                    "url": INSEE_CODE,
                    "valueCoding": {"system": TRE_R13_COMMUNE, "code": p.birthplace_insee},
                }
            ]
        }
        if p.birthplace_city:
            address["city"] = p.birthplace_city
        out["extension"] = [{"url": BIRTH_PLACE, "valueAddress": address}]
    out["identifier"] = patient_identifiers(p)
    if names := _names(p):
        out["name"] = names
    out["gender"] = _GENDER.get(p.gender or "", "unknown")
    if birth := ts_to_date(p.birth_time):
        out["birthDate"] = birth
    return out
