"""Conformance over the ANS CI-SIS example documents: a third-party extra lane, run when the
examples are beside the checkout (../shared, as in CI; or $ANS_EXAMPLES_DIR), skipped
otherwise. Every behaviour checked here is also checked on the project's own documents
(test_project_documents.py), which always run."""

import pytest

from tests.cda.documents import (
    ANS_ABSENT,
    ANS_EXPECTED,
    ANS_FILES,
    ANS_PATIENT,
    check_maps_field_by_field,
)

pytestmark = pytest.mark.skipif(not ANS_FILES, reason=ANS_ABSENT)


@pytest.mark.parametrize("path", ANS_FILES, ids=lambda p: p.name)
def test_ans_example_maps_field_by_field(path):
    check_maps_field_by_field(path.read_bytes(), ANS_EXPECTED[path.name], ANS_PATIENT)


def test_every_example_has_an_expectation():
    assert {p.name for p in ANS_FILES} <= set(ANS_EXPECTED)
