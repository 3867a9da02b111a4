"""Operator tasks (`dmp-fhir housekeeping | reindex | verify-audit`): run by the operator
on the raw store, outside any request and so outside the DMP policy, each one audited or
read-only as its module says."""
