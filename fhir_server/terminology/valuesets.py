"""CI-SIS value sets and concept maps, loaded once from the JSON files in `mappings/`.

Codes are keyed by (code-system OID, code) exactly as CDA writes them; `coding()` turns a
concept into a FHIR Coding with the canonical system URI from `mappings/systems.json`.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

Key = tuple[str, str]  # (code-system OID, code)

TRE_A07_OID = "1.2.250.1.213.1.1.4.13"
HL7_CONFIDENTIALITY_OID = "2.16.840.1.113883.5.25"


@dataclass(frozen=True, slots=True)
class Concept:
    system: str  # code-system OID as in CDA / SVS (or "ASTM", "URN")
    code: str
    display: str | None = None

    def coding(self) -> dict[str, str]:
        out = {"system": fhir_system(self.system), "code": self.code}
        if self.display:
            out["display"] = self.display
        return out


def _load(name: str) -> dict[str, Any]:
    text = resources.files("fhir_server.mappings").joinpath(f"{name}.json").read_text("utf-8")
    return json.loads(text)


def _concepts(name: str) -> dict[Key, Concept]:
    return {
        (c["system"], c["code"]): Concept(c["system"], c["code"], c.get("display"))
        for c in _load(name)["concepts"]
    }


@cache
def _systems() -> dict[str, str]:
    return _load("systems")["systems"]


@cache
def _valueset(name: str) -> dict[Key, Concept]:
    return _concepts(name)


@cache
def _type_to_class() -> dict[Key, Concept]:
    classes = _valueset("jdv_j06")
    out: dict[Key, Concept] = {}
    for row in _load("ass_x04")["map"]:
        key = (row["class_system"], row["class_code"])
        out[(row["type_system"], row["type_code"])] = classes.get(key, Concept(*key))
    return out


@dataclass(frozen=True)
class _FormatMap:
    by_template: dict[str, Concept]
    by_media_type: dict[str, Concept]
    xds_sd_template: str
    unprofiled: Concept


@cache
def _formats() -> _FormatMap:
    data = _load("ass_a11")
    return _FormatMap(
        by_template={
            r["template"]: Concept(r["format_system"], r["format_code"]) for r in data["templates"]
        },
        by_media_type={
            r["media_type"]: Concept(r["format_system"], r["format_code"])
            for r in data["non_xml_media_types"]
        },
        xds_sd_template=data["xds_sd_template"],
        unprofiled=Concept(data["unprofiled"]["format_system"], data["unprofiled"]["format_code"]),
    )


def fhir_system(oid: str) -> str:
    """FHIR Coding.system for a CDA codeSystem OID (urn:oid: form when not tabled)."""
    return _systems().get(oid) or f"urn:oid:{oid}"


def type_concept(system: str, code: str) -> Concept | None:
    """The J07 typeCode concept (with its official French display), or None if not in J07."""
    return _valueset("jdv_j07").get((system, code))


def is_known_type(system: str, code: str) -> bool:
    return (system, code) in _valueset("jdv_j07")


def type_display(system: str, code: str) -> str | None:
    concept = type_concept(system, code)
    return concept.display if concept else None


def class_for_type(system: str, code: str) -> Concept | None:
    """classCode (J06) derived from a typeCode through ASS_X04."""
    return _type_to_class().get((system, code))


def format_for_templates(template_ids: Iterable[str], nonxml_media_type: str | None) -> Concept:
    """formatCode (J10) through ASS_A11 (structured body) or ASS_A12 (level 1, by media type).

    A level-1 document (nonXMLBody) gets its XDS-SD format from the media type; a structured
    one from the first profiled template; anything else is "hors profils".
    """
    formats = _formats()
    if nonxml_media_type is not None:
        found = formats.by_media_type.get(nonxml_media_type.lower())
        return found or formats.unprofiled
    for template in template_ids:
        found = formats.by_template.get(template)
        if found:
            return found
    return formats.unprofiled


def is_known_format(system: str, code: str) -> bool:
    return (system, code) in _valueset("jdv_j10")


def facility_type(system: str, code: str) -> Concept | None:
    """healthcareFacilityTypeCode (J02)."""
    return _valueset("jdv_j02").get((system, code))


def practice_setting(system: str, code: str) -> Concept | None:
    """practiceSettingCode (J04)."""
    return _valueset("jdv_j04").get((system, code))


def confidentiality(system: str, code: str) -> Concept | None:
    """confidentialityCode (J08): HL7 N/R/V or a TRE_A07 masking code."""
    return _valueset("jdv_j08").get((system, code))


def masking_code(code: str) -> Concept | None:
    """A DMP masking/visibility code (TRE_A07 part of J08), by code alone."""
    return _valueset("jdv_j08").get((TRE_A07_OID, code))


def masking_codes() -> tuple[str, ...]:
    return tuple(c for s, c in _valueset("jdv_j08") if s == TRE_A07_OID)


def class_concept(system: str, code: str) -> Concept | None:
    return _valueset("jdv_j06").get((system, code))
