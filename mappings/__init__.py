"""Mapping tables (JSON), shipped inside the wheel as `fhir_server.mappings`: see README.md."""
