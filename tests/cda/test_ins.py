import pytest

from fhir_server.fhir.ins import INS_KINDS, nir_expected_key, nir_key_valid


def _with_key(body: str) -> str:
    key = nir_expected_key(body)
    assert key is not None
    return body + key


@pytest.mark.parametrize("nir", ["279035121518989", "185057800608491"])
def test_valid_nir_keys(nir):
    assert nir_key_valid(nir)


def test_wrong_key_is_refused():
    assert not nir_key_valid("279035121518988")
    assert nir_expected_key("279035121518988") == "89"


def test_published_example_with_bad_key_is_refused():
    # FR Core / PDSM4DMP examples carry keys that do not match their body
    assert not nir_key_valid("123456789012345")
    assert not nir_key_valid("123456789012244")


@pytest.mark.parametrize(("dept", "as_digits"), [("2A", "19"), ("2B", "18")])
def test_corsica_departments_count_as_19_and_18(dept, as_digits):
    body = f"18507{dept}123456"
    expected = f"{97 - int(f'18507{as_digits}123456') % 97:02d}"
    assert nir_key_valid(body + expected)
    wrong = f"{(int(expected) % 97) + 1:02d}"
    assert not nir_key_valid(body + wrong)


@pytest.mark.parametrize("nir", ["27903512151898", "2790351215189890", "", "27903512151898X"])
def test_wrong_length_or_characters(nir):
    assert not nir_key_valid(nir)


def test_key_below_ten_keeps_two_digits():
    # find a body whose key is one digit, to check the zero padding
    body = next(
        f"1850578006{n:03d}" for n in range(1000) if 97 - int(f"1850578006{n:03d}") % 97 < 10
    )
    nir = _with_key(body)
    assert nir[13] == "0" and nir_key_valid(nir)


def test_ins_oids():
    assert {k.type_code for k in INS_KINDS.values()} == {
        "INS-NIR",
        "INS-NIA",
        "INS-NIR-TEST",
        "INS-NIR-DEMO",
    }
    assert INS_KINDS["1.2.250.1.213.1.4.8"].type_code == "INS-NIR"
    assert INS_KINDS["1.2.250.1.213.1.4.10"].test
