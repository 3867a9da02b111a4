"""Profile data (JSON), shipped inside the wheel as `fhir_server.profiles`: see README.md."""
