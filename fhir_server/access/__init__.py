"""The enforcement point of the DMP policy: the only way from an interaction to stored
data. `Gate` (one per request, `ctx.gate`) decides before it reads, compares or echoes
anything, filters every query, judges writes on the stored and the new state, and audits
every decision in the record it concerns."""
