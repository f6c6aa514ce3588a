"""Pass 2b: syntax label features (`w.pos[p] == "NOUN"`) -> comparisons of integer codes.

Label features (attnc/window_syntax.py: pos, tag, dep, lemma, ent_type) are
strings in programs and int64 codes in kernels (`label_code`: equal strings
<=> equal codes). A comparison `==`, `!=`, `in`, `not in` whose operands are
label features and string literals (or literal sets/lists/tuples of them)
becomes the same comparison of codes, so every backend runs it. Any other use
of a label (a string method, `len`, comparing it with a token or a number) is
unsupported here and the program runs interpreted.
"""

from __future__ import annotations

import ast

from attnc.compiler.ir import Feature, UnsupportedError
from attnc.compiler.normalizing import NormalizedProgram
from attnc.window_syntax import LABEL_FEATURES, label_code

_EQUALITY = (ast.Eq, ast.NotEq, ast.In, ast.NotIn)


def encode_labels(program: NormalizedProgram) -> NormalizedProgram:
    """Rewrite label comparisons in `program` (in place) to code comparisons.

    Raises:
        UnsupportedError: a label feature used other than compared with labels or string literals.
    """
    encoder = _Encoder()
    if program.expr is not None:
        program.expr = encoder.visit(program.expr)
    program.body = [encoder.visit(stmt) for stmt in program.body]
    for root in program.body + ([program.expr] if program.expr is not None else []):
        for node in ast.walk(root):
            if _is_label(node) and id(node) not in encoder.encoded:
                raise UnsupportedError(f"`w.{node.name}` used other than compared (==, !=, in) with string "
                                       "literals or other labels")
    return program


def _is_label(node: ast.AST) -> bool:
    return isinstance(node, Feature) and node.name in LABEL_FEATURES


class _Encoder(ast.NodeTransformer):
    def __init__(self):
        self.encoded: set[int] = set()

    def visit_Compare(self, node: ast.Compare):
        self.generic_visit(node)  # label reads inside the positions first
        operands = [node.left, *node.comparators]
        if not any(_is_label(o) for o in operands):
            return node
        if not all(isinstance(op, _EQUALITY) for op in node.ops):
            raise UnsupportedError("a label feature compared with <, <=, > or >= (string order)")
        new = [self._operand(o, container_ok=i > 0 and isinstance(node.ops[i - 1], (ast.In, ast.NotIn)))
               for i, o in enumerate(operands)]
        return ast.Compare(left=new[0], ops=node.ops, comparators=new[1:])

    def _operand(self, node: ast.expr, container_ok: bool) -> ast.expr:
        if _is_label(node):
            self.encoded.add(id(node))
            return node
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            return ast.Constant(value=label_code(node.value))
        if container_ok and isinstance(node, (ast.Set, ast.List, ast.Tuple)) and all(
                isinstance(e, ast.Constant) and isinstance(e.value, str) for e in node.elts):
            codes = [ast.Constant(value=label_code(e.value)) for e in node.elts]
            return ast.Set(elts=codes) if isinstance(node, ast.Set) else type(node)(elts=codes, ctx=ast.Load())
        raise UnsupportedError("a label feature compared with something other than string literals or labels")
