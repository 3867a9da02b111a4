"""FHIR R4 server for the French shared medical record (DMP)."""

__version__ = "0.1.0"
FHIR_VERSION = "4.0.1"
