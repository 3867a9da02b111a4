"""Audit trail (AuditEvent builder, tamper-evident chain) and patient notifications."""

from fhir_server.audit.chain import (
    GENESIS,
    HASH_URL,
    PREVIOUS_URL,
    ChainBreak,
    event_hash,
    link,
    verify_chain,
)
from fhir_server.audit.events import ServerIdentity, build_audit_event, outcome_of

__all__ = [
    "GENESIS",
    "HASH_URL",
    "PREVIOUS_URL",
    "ChainBreak",
    "ServerIdentity",
    "build_audit_event",
    "event_hash",
    "link",
    "outcome_of",
    "verify_chain",
]
