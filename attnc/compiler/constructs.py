"""Pass 0: constructs that only the reference interpreter runs, and why.

Checked before lowering, like tracr's validating.py: a program using one of
these runs interpreted (attnc.dsl.run_reference), and the manifest says
which construct sent it there. Generated kernels carry none of the
interpreter's run-time guards, so constructs whose cost or termination the
guards bound (`while`, `try/except` around guarded code, closures and
lambdas that may reach each other, regex matching) stay on the interpreter;
the rest (collections, `next`, NumPy `where=`/`out=`, the newer tokenizer
idioms) are not lowered by the passes yet.
"""

from __future__ import annotations

import ast

from attnc.dsl.program import CheckedProgram

#: Tokenizer, encoding and tensor members the lowering passes recognise
#: (normalizing.py); any other one of those tables sends a program to the interpreter.
_LOWERED_MEMBERS = frozenset({"input_ids", "attention_mask", "convert_ids_to_tokens", "decode",
                              "tokenize", "encode", "all_special_ids"})


def interpreter_only_constructs(program: CheckedProgram) -> list[str]:
    """Reasons, one per construct kind, in first-use order; empty when the passes may try it."""
    from attnc.dsl import allowlist

    newer_members = (allowlist.TOKENIZER_ATTRIBUTES | allowlist.ENCODING_ATTRIBUTES
                     | allowlist.TENSOR_IDENTITY_METHODS | allowlist.CHAR_SPAN_ATTRIBUTES
                     | {"squeeze"}) - _LOWERED_MEMBERS
    reasons: dict[str, None] = {}
    top_level = {id(stmt) for stmt in program.module.body}
    for node in ast.walk(program.module):
        if isinstance(node, ast.While):
            reasons["`while` loop (kernels have no loop budget)"] = None
        elif isinstance(node, ast.Try):
            reasons["`try/except`"] = None
        elif isinstance(node, ast.Lambda):
            reasons["`lambda` key function"] = None
        elif isinstance(node, ast.FunctionDef) and id(node) not in top_level:
            reasons[f"nested function `{node.name}`"] = None
        elif isinstance(node, ast.Name) and node.id == "re":
            reasons["regular expressions (`re`)"] = None
        elif isinstance(node, ast.Name) and node.id == "spacy":
            reasons["spaCy"] = None
        elif isinstance(node, ast.Name) and node.id in ("defaultdict", "Counter", "next"):
            reasons[f"`{node.id}`"] = None
        elif isinstance(node, ast.keyword) and node.arg in ("where", "out"):
            reasons[f"NumPy `{node.arg}=`"] = None
        elif isinstance(node, ast.Attribute) and node.attr in newer_members:
            reasons[f"`.{node.attr}`"] = None
    return list(reasons)
