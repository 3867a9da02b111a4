"""Whose record each document of an MHD publication files into: a Patient of the Bundle,
a known Patient/id, or the one Patient that holds the INS (the subject's identifier or
the CDA's), opened from the CDA when nobody holds it yet. One Patient per INS, also
within a Bundle; the INS given and the CDA's must agree."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from fhir_server import errors
from fhir_server.access import filing
from fhir_server.cda.mapping import CdaDocument
from fhir_server.cda.publication import contradiction, ins_of
from fhir_server.cda.resources import patient as patient_from_cda
from fhir_server.errors import FhirError
from fhir_server.fhir.transaction_bundle import Entry, as_existing
from fhir_server.fhir.uniqueness import ins_key
from fhir_server.interactions.context import Context
from fhir_server.interactions.import_cda import open_record
from fhir_server.interactions.versioning import new_id
from fhir_server.records import Write

Json = dict[str, Any]


@dataclass
class Subjects:
    now: str = ""
    new_patients: dict[str, Write] = field(default_factory=dict)
    # audit and notifications of the records these new Patients open
    record_audit: list[Write] = field(default_factory=list)

    def writes(self) -> list[Write]:
        """The Patients this publication opens, with their audit and notices."""
        return [*self.new_patients.values(), *self.record_audit]

    async def resolve(
        self,
        ctx: Context,
        doc: Json,
        cda: CdaDocument | None,
        by_url: dict[str, Entry],
    ) -> None:
        subject = doc.get("subject") or {}
        ref = subject.get("reference")
        ins = cda.ins if cda is not None else None
        if isinstance(ref, str) and ref in by_url:
            self._bundle_patient(by_url[ref], ins)
        elif isinstance(ref, str) and ref.startswith("Patient/"):
            try:  # the filer reads the identity it files for (TD0.2), as the policy allows
                stored = await ctx.gate.read("Patient", ref.split("/", 1)[1])
            except FhirError as exc:
                if exc.status not in (404, 410):
                    raise
                raise errors.unprocessable(
                    f"subject {ref} is not known", "DocumentReference.subject"
                ) from None
            held = ins_of(stored.resource or {})
            if ins and held and ins not in held:
                raise contradiction("subject", f"{ref} (INS {sorted(held)[0][1]})", ins[1])
        elif ref:
            raise errors.unprocessable(
                f"subject {ref!r} is neither a Patient of the Bundle nor Patient/id",
                "DocumentReference.subject",
            )
        else:
            doc["subject"] = await self._patient_by_ins(ctx, subject.get("identifier"), cda)

    def _bundle_patient(self, entry: Entry, ins: tuple[str, str] | None) -> None:
        if entry.rtype != "Patient":
            raise errors.unprocessable(
                f"subject {entry.full_url} is a {entry.rtype}, not a Patient",
                "DocumentReference.subject",
            )
        held = ins_of(entry.resource or {})
        if ins and held and ins not in held:
            raise contradiction("subject", f"INS {sorted(held)[0][1]}", ins[1])

    async def known_patient(self, ctx: Context, e: Entry, resolved: dict[str, str]) -> None:
        """One Patient per INS: a Bundle's Patient whose INS we hold is the one we hold."""
        for system, value in sorted(ins_of(e.resource or {})):
            holder = await filing.patient_holding(ctx.gate, system, value)
            if holder is not None:
                as_existing(e, "Patient", holder, resolved)
                return

    async def _patient_by_ins(
        self, ctx: Context, identifier: Json | None, cda: CdaDocument | None
    ) -> Json:
        ins = cda.ins if cda is not None else None
        if identifier:
            given = (str(identifier.get("system")), str(identifier.get("value")))
            if ins and given != ins:
                raise contradiction("subject.identifier", given[1], ins[1])
            ins = given
        if ins is None:
            raise errors.unprocessable(
                "DocumentReference.subject is required (a Patient, or its INS identifier)",
                "DocumentReference.subject",
            )
        key = ins_key(*ins)
        holder = await filing.patient_holding(ctx.gate, *ins)
        if holder is not None:
            return {"reference": f"Patient/{holder}"}
        if key in self.new_patients:
            return {"reference": f"Patient/{self.new_patients[key].id}"}
        if cda is None or cda.header.record_target is None:
            raise errors.unprocessable(
                f"No Patient holds INS {ins[1]}: create it in the Bundle",
                "DocumentReference.subject",
            )
        pid = new_id()
        resource = patient_from_cda(cda.header.record_target, pid)
        patient, *audit = await open_record(ctx, resource, self.now, "ITI-65")
        self.new_patients[key] = patient
        self.record_audit += audit
        return {"reference": f"Patient/{pid}"}
