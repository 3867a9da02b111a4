"""Internal references of a patient summary (IHE PCC 1.3.6.1.4.1.19376.1.5.3.1.4.4.1): a
treatment's or a procedure's reason (RSON) names a problem of the same document by its id.

**decision**: ids are reused in real documents (the ANS VSM gives one id to a concern and
to the observations of two others), so a reference resolves only when the Conditions
extracted under that id (concern's or observation's), narrowed to those whose code holds
the reference's own code, are exactly one: then `reasonReference`; otherwise the
reference's code is kept as `reasonCode`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from lxml import etree

from fhir_server.cda.datatypes import child, codeable
from fhir_server.cda.entries import ii_key

Json = dict[str, Any]


@dataclass
class References:
    # indexed by id and by (id, code), so a document of many reasons resolves in linear time
    _by_id: dict[str, set[str]] = field(default_factory=dict)
    _by_id_and_code: dict[tuple[str, str], set[str]] = field(default_factory=dict)
    _wanted: list[tuple[Json, etree._Element]] = field(default_factory=list)

    def condition(self, statements: list[etree._Element], resource: Json) -> None:
        """A Condition kept, known by the ids of the statements it comes from."""
        cid = str(resource["id"])
        codes = {c.get("code") for c in resource["code"].get("coding", []) if c.get("code")}
        for key in {k for s in statements if (k := ii_key(s))}:
            self._by_id.setdefault(key, set()).add(cid)
            for code in codes:
                self._by_id_and_code.setdefault((key, code), set()).add(cid)

    def reason(self, resource: Json, act: etree._Element) -> None:
        self._wanted.append((resource, act))

    def _target(self, act: etree._Element) -> str | None:
        key = ii_key(act)
        if key is None:
            return None
        code = child(act, "code")
        if code is not None and code.get("code"):
            found = self._by_id_and_code.get((key, str(code.get("code"))), set())
        else:
            found = self._by_id.get(key, set())
        return next(iter(found)) if len(found) == 1 else None

    def resolve(self, narrative: dict[str, str]) -> None:
        """Every reason asked for, as a reference where it resolves, else as a code."""
        for resource, act in self._wanted:
            target = self._target(act)
            if target is not None:
                resource.setdefault("reasonReference", []).append(
                    {"reference": f"Condition/{target}"}
                )
            elif (concept := codeable(child(act, "code"), narrative)) is not None:
                resource.setdefault("reasonCode", []).append(concept)
