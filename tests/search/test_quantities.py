"""Quantities in the range index: their written form keeps the order of the numbers, and a
value with a comparator stands for its range."""

from __future__ import annotations

from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from fhir_server.search.quantities import HIGHEST, LOWEST, encode, index_entries

_NUMBERS = st.decimals(
    min_value=Decimal("-1e15"), max_value=Decimal("1e15"), allow_nan=False, places=6
)


@given(_NUMBERS, _NUMBERS)
def test_the_written_form_sorts_as_the_numbers_do(a, b):
    assert (encode(a) < encode(b)) == (a < b)
    assert (encode(a) == encode(b)) == (a == b)


def test_a_quantity_is_found_by_number_by_code_and_by_system_and_code():
    ucum = "http://unitsofmeasure.org"
    q = {"value": 1.95, "unit": "mUI/L", "system": ucum, "code": "m[IU]/L"}
    point = (encode(Decimal("1.95")),) * 2
    assert index_entries("value-quantity", q) == [
        ("value-quantity", *point),
        ("value-quantity||m[IU]/L", *point),
        ("value-quantity||mUI/L", *point),
        (f"value-quantity|{ucum}|m[IU]/L", *point),
    ]


def test_a_comparator_is_the_range_it_stands_for():
    five = encode(Decimal(5))
    assert index_entries("v", {"value": 5, "comparator": "<"}) == [("v", LOWEST, five)]
    assert index_entries("v", {"value": 5, "comparator": ">="}) == [("v", five, HIGHEST)]
    # what is not a number is not indexed
    assert index_entries("v", {"value": "huit"}) == []
    assert index_entries("v", {"value": True}) == []
