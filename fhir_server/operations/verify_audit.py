"""`dmp-fhir verify-audit`: walk the audit chain as the store holds it and report the
first AuditEvent that was altered, removed or reordered outside the server."""

from __future__ import annotations

from dataclasses import dataclass

import orjson

from fhir_server.access.audit import AUDIT_CHAIN
from fhir_server.audit.chain import GENESIS, HASH_URL, ChainBreak, verify_chain
from fhir_server.storage.port import Store


@dataclass(frozen=True)
class AuditReport:
    checked: int
    head: str
    broken: ChainBreak | None
    position: int | None  # chain position of the first bad record
    event_id: str | None


def _hash_of(event: dict) -> str | None:
    return next(
        (e.get("valueString") for e in event.get("extension", []) if e.get("url") == HASH_URL), None
    )


async def verify_audit(store: Store, batch: int = 1000) -> AuditReport:
    head = await store.chain_head(AUDIT_CHAIN)
    last_position, head_hash = head if head else (0, GENESIS)
    previous, after, checked = GENESIS, 0, 0
    while True:
        rows = await store.chain_events(AUDIT_CHAIN, after=after, count=batch)
        if not rows:
            break
        expected = [after + i + 1 for i in range(len(rows))]
        events = [orjson.loads(content) or {} for _, content in rows]
        positions = [p for p, _ in rows]
        if positions != expected:  # a member row was removed from the chain's own index
            i = next(i for i, (p, e) in enumerate(zip(positions, expected, strict=True)) if p != e)
            return AuditReport(
                checked + i,
                head_hash,
                ChainBreak(checked + i, "missing", f"chain position {expected[i]} is missing"),
                expected[i],
                None,
            )
        broken = verify_chain(events, start_hash=previous)
        if broken is not None:
            bad = events[broken.index] if broken.index < len(events) else {}
            return AuditReport(
                checked + broken.index,
                head_hash,
                broken,
                positions[min(broken.index, len(positions) - 1)],
                bad.get("id"),
            )
        previous = _hash_of(events[-1]) or previous
        checked += len(rows)
        after = positions[-1]
    if after != last_position or previous != head_hash:
        return AuditReport(
            checked,
            head_hash,
            ChainBreak(checked, "missing", "the chain ends before its recorded head"),
            after + 1,
            None,
        )
    return AuditReport(checked, head_hash, None, None, None)
