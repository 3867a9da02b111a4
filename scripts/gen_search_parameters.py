"""Writes profiles/search-parameters.json (a Bundle of SearchParameter resources) from the
parameter table in fhir_server/search/params.py. tests/search/test_params.py fails when the
file and the table disagree: run this script after changing the table."""

from __future__ import annotations

import sys
from pathlib import Path

import orjson

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from fhir_server.search.params import search_parameter_resources  # noqa: E402

TARGET = ROOT / "profiles" / "search-parameters.json"


def bundle() -> dict:
    return {
        "resourceType": "Bundle",
        "id": "dmp-fhir-search-parameters",
        "type": "collection",
        "entry": [{"fullUrl": res["url"], "resource": res} for res in search_parameter_resources()],
    }


def render() -> bytes:
    return orjson.dumps(bundle(), option=orjson.OPT_INDENT_2) + b"\n"


if __name__ == "__main__":
    TARGET.parent.mkdir(exist_ok=True)
    TARGET.write_bytes(render())
    print(f"wrote {TARGET.relative_to(ROOT)} ({len(bundle()['entry'])} SearchParameters)")
