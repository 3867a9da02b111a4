"""A record destroyed at the end of its retention keeps nothing: documents deleted before
the closure (their history still holds the data) and their content go with the rest; the
other records stay."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest

from fhir_server.operations.housekeeping import housekeeping
from tests.security.world import World

pytestmark = pytest.mark.store_kinds("sqlite", "mongo")


def _store_call(world: World, method: str, *args):
    store = world.client.app.state.ctx.store
    return world.client.portal.call(getattr(store, method), *args)


def test_destruction_takes_deleted_documents_and_their_history(world):
    c = world.client
    deleted = c.delete(f"/fhir/DocumentReference/{world.plain.id}", headers=world.as_("author"))
    assert deleted.status_code == 204, deleted.text
    closed = c.post(f"/fhir/Patient/{world.victim}/$close", headers=world.as_("holder"))
    assert closed.status_code == 200, closed.text
    # before its time, housekeeping keeps the record
    ctx = c.app.state.ctx
    report = c.portal.call(housekeeping, ctx)
    assert report.destroyed == []
    assert _store_call(world, "vread", "DocumentReference", world.plain.id, 1) is not None

    later = ctx.clock() + timedelta(days=3653 + 2)
    report = c.portal.call(housekeeping, replace(ctx, clock=lambda: later))
    assert report.destroyed == [world.victim]
    assert _store_call(world, "read", "Patient", world.victim) is None
    for doc in (world.plain, world.masked, world.embargoed):
        assert _store_call(world, "read", "DocumentReference", doc.id) is None
        assert _store_call(world, "vread", "DocumentReference", doc.id, 1) is None
        assert _store_call(world, "read", "Binary", doc.binary) is None
        assert _store_call(world, "vread", "Binary", doc.binary, 1) is None
    for consent in (world.block, world.opposition):
        assert _store_call(world, "read", "Consent", consent) is None
    # another record is untouched
    assert _store_call(world, "read", "Patient", world.attacker_record) is not None
    assert _store_call(world, "read", "DocumentReference", world.attacker_doc.id) is not None
