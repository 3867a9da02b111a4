"""Packages of the wheel. `mappings/` and `profiles/` are data a reviewer reads at the top of
the repository; they ship inside the package as `fhir_server.mappings` and
`fhir_server.profiles` (read with importlib.resources, installed or editable alike)."""

from setuptools import find_packages, setup

DATA_PACKAGES = {"fhir_server.mappings": "mappings", "fhir_server.profiles": "profiles"}

setup(
    packages=[*find_packages(include=["fhir_server*"]), *DATA_PACKAGES],
    package_dir=DATA_PACKAGES,
)
