"""The pure patch evaluation: FHIRPath Patch paths and operations, labels by intent, the
archive flag (no server)."""

from __future__ import annotations

import pytest

from fhir_server.errors import FhirError
from fhir_server.fhir.extensions import IS_ARCHIVED_URL, LEGACY_IS_ARCHIVED_URL
from fhir_server.fhir.fhirpath_patch import apply_fhirpath_patch
from fhir_server.fhir.jsonpatch import apply_patch
from fhir_server.fhir.patches import deletion_requested, patched
from tests.pdsm4dmp.guide import fhirpath_patch, label

N, MASK, HIDE = label("N"), label("MASQUE_PS"), label("INVISIBLE_PATIENT")
DOC = {"resourceType": "DocumentReference", "status": "current", "securityLabel": [N]}


def codes(doc: dict) -> list[str]:
    return [c["code"] for lab in doc.get("securityLabel", []) for c in lab["coding"]]


def fp(doc: dict, **op) -> dict:
    return apply_fhirpath_patch(doc, fhirpath_patch(op))


def test_replace_status():
    out = fp(
        DOC, type="replace", path="DocumentReference.status", value={"valueCode": "superseded"}
    )
    assert out["status"] == "superseded" and DOC["status"] == "current"


def test_add_insert_move_delete_labels():
    masked = fp(
        DOC,
        type="add",
        path="DocumentReference",
        name="securityLabel",
        value={"valueCodeableConcept": MASK},
    )
    assert codes(masked) == ["N", "MASQUE_PS"]
    hidden = fp(
        masked,
        type="insert",
        path="DocumentReference.securityLabel",
        index=0,
        value={"valueCodeableConcept": HIDE},
    )
    assert codes(hidden) == ["INVISIBLE_PATIENT", "N", "MASQUE_PS"]
    moved = fp(hidden, type="move", path="DocumentReference.securityLabel", source=0, destination=2)
    assert codes(moved) == ["N", "MASQUE_PS", "INVISIBLE_PATIENT"]
    shown = fp(
        moved,
        type="delete",
        path="DocumentReference.securityLabel.where(coding.code='INVISIBLE_PATIENT')",
    )
    assert codes(shown) == ["N", "MASQUE_PS"]
    # deleting what is not there leaves the labels as meant
    assert (
        fp(
            DOC,
            type="delete",
            path="DocumentReference.securityLabel.where(coding.code='MASQUE_PS')",
        )
        == DOC
    )


def test_extension_where_url():
    doc = {**DOC, "extension": [{"url": IS_ARCHIVED_URL, "valueBoolean": False}]}
    out = fp(
        doc,
        type="replace",
        path=f"DocumentReference.extension.where(url='{IS_ARCHIVED_URL}').valueBoolean",
        value={"valueBoolean": True},
    )
    assert out["extension"] == [{"url": IS_ARCHIVED_URL, "valueBoolean": True}]


@pytest.mark.parametrize(
    "path",
    [
        "DocumentReference.securityLabel.where(coding.code.startsWith('M'))",
        "DocumentReference.securityLabel.exists()",
        "DocumentReference.status | DocumentReference.docStatus",
        "Patient.status",
        "DocumentReference.securityLabel.where(code='A' or code='B')",
    ],
)
def test_other_fhirpath_is_refused_with_400(path):
    with pytest.raises(FhirError) as exc:
        fp(DOC, type="delete", path=path)
    assert exc.value.status == 400


def test_replace_needs_exactly_one_target():
    doc = {**DOC, "securityLabel": [N, MASK]}
    with pytest.raises(FhirError) as exc:
        fp(
            doc,
            type="replace",
            path="DocumentReference.securityLabel",
            value={"valueCodeableConcept": HIDE},
        )
    assert exc.value.status == 422


@pytest.mark.parametrize(
    ("labels", "index", "written", "expected"),
    [
        ([N], 0, MASK, ["N", "MASQUE_PS"]),  # TD3.3a mask: N is kept
        ([N, MASK], 0, N, ["N"]),  # unmask, the mask at index 1
        ([MASK, N], 0, N, ["N"]),  # unmask, the mask at index 0
        ([N, MASK], 0, MASK, ["N", "MASQUE_PS"]),  # masked already: as meant
        ([N, MASK], 1, HIDE, ["N", "INVISIBLE_PATIENT"]),  # one status for another
        ([N], 0, N, ["N"]),  # shown already: as meant
    ],
)
def test_json_patch_labels_by_intent(labels, index, written, expected):
    doc = {**DOC, "securityLabel": labels}
    out = apply_patch(doc, [{"op": "replace", "path": f"/securityLabel/{index}", "value": written}])
    assert codes(out) == expected


def test_an_ambiguous_show_is_refused():
    doc = {**DOC, "securityLabel": [N, MASK, HIDE]}
    with pytest.raises(FhirError) as exc:
        apply_patch(doc, [{"op": "replace", "path": "/securityLabel/0", "value": N}])
    assert exc.value.status == 422


def test_the_confidentiality_code_is_kept():
    with pytest.raises(FhirError):
        patched("DocumentReference", DOC, [{"op": "remove", "path": "/securityLabel/0"}])


def test_a_code_its_system_does_not_hold_is_refused():
    ops = [{"op": "replace", "path": "/securityLabel/0/coding/0/code", "value": "MASQUE_PS"}]
    with pytest.raises(FhirError) as exc:
        patched("DocumentReference", DOC, ops)
    assert exc.value.status == 422


def test_archive_flag_under_either_url_is_stored_under_the_guides():
    old = {**DOC, "extension": [{"url": LEGACY_IS_ARCHIVED_URL, "valueBoolean": False}]}
    path = f"/extension[url:'{LEGACY_IS_ARCHIVED_URL}']/valueBoolean"
    out = patched("DocumentReference", old, [{"op": "replace", "path": path, "value": True}])
    assert out["extension"] == [{"url": IS_ARCHIVED_URL, "valueBoolean": True}]
    path = f"/extension[url:'{IS_ARCHIVED_URL}']/valueBoolean"
    out = patched("DocumentReference", DOC, [{"op": "add", "path": path, "value": True}])
    assert out["extension"] == [{"url": IS_ARCHIVED_URL, "valueBoolean": True}]
    with pytest.raises(FhirError):
        patched("DocumentReference", DOC, [{"op": "add", "path": path, "value": "yes"}])


def test_entered_in_error_is_a_deletion_and_nothing_else():
    eie = {**DOC, "status": "entered-in-error"}
    assert deletion_requested("DocumentReference", DOC, eie)
    with pytest.raises(FhirError):
        deletion_requested("DocumentReference", DOC, {**eie, "description": "x"})
    assert not deletion_requested("DocumentReference", DOC, {**DOC, "status": "superseded"})
