"""The parameter table is the single source: profiles/ and the CapabilityStatement follow it."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import orjson
from fhir.resources.R4B.searchparameter import SearchParameter

from fhir_server.search.params import SEARCH_PARAMS, describe_params

ROOT = Path(__file__).resolve().parents[2]

# the parameters the server must support (PDSm ITI-67 and the DMP), by type
REQUIRED = {
    "DocumentReference": "patient subject identifier status category type date period event facility setting security-label format author relatesto contenttype",
    "Patient": "identifier family given name birthdate gender active general-practitioner",
    "Consent": "patient status category date actor purpose",
    "AuditEvent": "patient entity agent date type subtype action outcome",
    "List": "patient code identifier date source",
}


def _generator():
    spec = importlib.util.spec_from_file_location(
        "gen", ROOT / "scripts" / "gen_search_parameters.py"
    )
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_every_required_parameter_is_in_the_table():
    for rtype, names in REQUIRED.items():
        assert set(names.split()) <= set(SEARCH_PARAMS[rtype]), rtype


def test_profiles_file_is_in_sync_with_the_table():
    gen = _generator()
    assert gen.TARGET.read_bytes() == gen.render(), "run scripts/gen_search_parameters.py"


def test_published_search_parameters_are_valid_fhir():
    bundle = orjson.loads((ROOT / "profiles" / "search-parameters.json").read_bytes())
    for entry in bundle["entry"]:
        SearchParameter.model_validate(entry["resource"])


def test_describe_params_lists_common_and_typed_params():
    names = {p["name"]: p["type"] for p in describe_params("DocumentReference")}
    assert names["_id"] == "token" and names["_lastUpdated"] == "date"
    assert names["author"] == "reference" and names["period"] == "date"
