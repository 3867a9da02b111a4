"""Properties of the NIR key check: a NIR with its computed key is always accepted; any
single-character change of a digit (in the body or the key) is always refused, since
97 is prime and prime to 10, a one-digit change always moves the remainder."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from fhir_server.fhir.ins import nir_expected_key, nir_key_valid

SETTINGS = settings(max_examples=200, deadline=None)

digits13 = st.text(alphabet="0123456789", min_size=13, max_size=13)
corsican = st.builds(
    lambda a, dep, b: a + dep + b,
    st.text(alphabet="0123456789", min_size=5, max_size=5),
    st.sampled_from(["2A", "2B"]),
    st.text(alphabet="0123456789", min_size=6, max_size=6),
)


def with_key(body: str) -> str:
    key = nir_expected_key(body)
    assert key is not None
    return body + key


@SETTINGS
@given(st.one_of(digits13, corsican))
def test_valid_key_is_accepted(body):
    assert nir_key_valid(with_key(body))


@SETTINGS
@given(st.one_of(digits13, corsican), st.integers(0, 14), st.integers(1, 9))
def test_any_single_digit_change_is_refused(body, position, delta):
    nir = with_key(body)
    if not nir[position].isdigit():
        position = 0  # the 2A/2B letters are not digits: change another place
    changed = str((int(nir[position]) + delta) % 10)
    mutated = nir[:position] + changed + nir[position + 1 :]
    assert mutated != nir
    assert not nir_key_valid(mutated)


@SETTINGS
@given(st.text(max_size=20))
def test_arbitrary_text_never_raises(text):
    assert nir_key_valid(text) in (True, False)
    assert nir_expected_key(text) is None or len(nir_expected_key(text)) == 2


@SETTINGS
@given(digits13, st.sampled_from(["", "0", "123", "1234"]))
def test_wrong_length_refused(body, extra):
    nir = with_key(body)
    assert not nir_key_valid(nir[:-1])
    if extra:
        assert not nir_key_valid(nir + extra)
