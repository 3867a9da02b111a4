from fhir_server.terminology import valuesets as vs

LOINC = "2.16.840.1.113883.6.1"
A05 = "1.2.250.1.213.1.1.4.12"


def test_type_display_is_the_official_french_one():
    assert vs.type_display(LOINC, "11490-0") == (
        "Lettre de liaison à la sortie d'un établissement de soins"
    )
    assert vs.type_display(LOINC, "11502-2") == "CR d'examens biologiques"
    assert vs.is_known_type(A05, "SYNTH")
    assert not vs.is_known_type(LOINC, "99999-9")


def test_class_from_type_through_ass_x04():
    assert vs.class_for_type(LOINC, "11502-2").code == "10"
    assert vs.class_for_type(A05, "SYNTH").display == "Synthèse"
    assert vs.class_for_type(LOINC, "18748-4").code == "31"
    assert vs.class_for_type(A05, "REMB").code == "60"
    signature = vs.class_for_type("ASTM", "E1762")
    assert signature.code == "urn:oid:1.3.6.1.4.1.19376.1.2.1.1.1"


def test_every_j07_type_but_one_has_a_class():
    # ASS_X04 (2024-04) predates J07's 101881-1 "Carte d'implant" (2024-09)
    missing = [key for key in vs._valueset("jdv_j07") if vs.class_for_type(*key) is None]
    assert missing == [(LOINC, "101881-1")]


def test_format_from_templates_and_media_type():
    assert vs.format_for_templates(["1.2.250.1.213.1.1.1.29"], None).code == (
        "urn:asip:ci-sis:ldl-ses:2017"
    )
    assert (
        vs.format_for_templates(["1.3.6.1.4.1.19376.1.3.3"], None).code == "urn:ihe:lab:xd-lab:2008"
    )
    assert vs.format_for_templates(["1.3.6.1.4.1.19376.1.2.20"], "application/pdf").code == (
        "urn:ihe:iti:xds-sd:pdf:2008"
    )
    assert vs.format_for_templates(["1.2.250.1.213.1.1.1.1"], None).code == (
        "urn:asipSante:modelesHorsProfils:2011"
    )


def test_every_mapped_format_is_in_j10():
    for template in vs._formats().by_template.values():
        assert vs.is_known_format(template.system, template.code), template


def test_masking_codes_and_systems():
    assert set(vs.masking_codes()) == {
        "MASQUE_PS",
        "INVISIBLE_PATIENT",
        "INVISIBLE_REPRESENTANTS_LEGAUX",
    }
    assert vs.masking_code("MASQUE_PS").coding()["system"] == (
        "https://mos.esante.gouv.fr/NOS/TRE_A07-StatutVisibiliteDocument/FHIR/TRE-A07-StatutVisibiliteDocument"
    )
    assert vs.masking_code("N") is None
    assert vs.fhir_system("1.2.3.4") == "urn:oid:1.2.3.4"
