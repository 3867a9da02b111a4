"""Which policy actions a change of a document's metadata amounts to, besides its
security labels (see `label_actions`): status and the archive flag (pure)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fhir_server.fhir.metadata_rules import IS_ARCHIVED_URL
from fhir_server.policy.facts import extension_value
from fhir_server.policy.model import Action


def metadata_actions(before: Mapping[str, Any], after: Mapping[str, Any]) -> list[Action]:
    changed = before.get("status") != after.get("status") or extension_value(
        before, IS_ARCHIVED_URL
    ) != extension_value(after, IS_ARCHIVED_URL)
    return [Action.PATCH_METADATA] if changed else []
