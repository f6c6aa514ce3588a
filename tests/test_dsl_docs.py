"""docs/dsl.md lists every allow-listed name, so the spec and the code agree."""

from __future__ import annotations

from pathlib import Path

import pytest

from attnc.dsl import allowlist

DOC = (Path(__file__).resolve().parents[1] / "docs" / "dsl.md").read_text(encoding="utf-8")
TABLES = {
    "BUILTINS": allowlist.BUILTINS, "NUMPY_FUNCTIONS": allowlist.NUMPY_FUNCTIONS,
    "NUMPY_CONSTANTS": allowlist.NUMPY_CONSTANTS, "ALL_ATTRIBUTES": allowlist.ALL_ATTRIBUTES,
    "KEYWORD_ARGUMENTS": allowlist.KEYWORD_ARGUMENTS, "ANNOTATION_NAMES": allowlist.ANNOTATION_NAMES,
}


@pytest.mark.parametrize("table", sorted(TABLES))
def test_every_allowed_name_is_documented(table):
    missing = sorted(name for name in TABLES[table] if f"`{name}`" not in DOC)
    assert not missing, f"{table} names missing from docs/dsl.md: {missing}"


def test_forbidden_and_allowed_names_do_not_overlap():
    allowed = allowlist.BUILTINS | allowlist.ALL_ATTRIBUTES | allowlist.NUMPY_FUNCTIONS
    # `.numpy()` is a tensor method (the identity on the adapter's arrays); the *name* numpy stays forbidden
    assert not (allowed - allowlist.TENSOR_IDENTITY_METHODS) & set(allowlist.FORBIDDEN_NAMES)
    assert not any(name.startswith("_") for name in allowed | allowlist.KEYWORD_ARGUMENTS)
