"""`attnc.dsl.ast_copy.clone`: the compiler's AST copies are as deep as `copy.deepcopy`'s."""

import ast
import copy

from attnc.compiler.ir import Feature, Lookup, Pos, TableSpec
from attnc.dsl.ast_copy import clone

SOURCE = '''
def head(q, k, w):
    """A docstring."""
    x = w.tok[k].lower() in {"the", "a"}
    if x and q - k < 3:
        return 1.5 * (q - k) ** -0.5
    return [0, (1, 2.0), None, ...][1]
'''


def test_clone_matches_deepcopy_and_shares_no_node():
    tree = ast.parse(SOURCE)
    copied = clone(tree)
    assert ast.dump(copied, include_attributes=True) == ast.dump(copy.deepcopy(tree), include_attributes=True)
    originals = {id(node) for node in ast.walk(tree) if not isinstance(node, ast.expr_context)}
    assert not originals & {id(node) for node in ast.walk(copied)}


def test_clone_is_independent_of_the_original():
    tree = ast.parse(SOURCE)
    copied = clone(tree)
    copied.body[0].name = "other"
    copied.body[0].body[1].value.comparators[0].elts.append(ast.Constant("an"))
    assert tree.body[0].name == "head"
    assert len(tree.body[0].body[1].value.comparators[0].elts) == 2


def test_clone_copies_ir_nodes_and_their_fields():
    spec = TableSpec(source="t.lower()", kind="str")
    node = ast.BinOp(left=Feature("ids", Pos("k")), op=ast.Add(), right=Lookup(spec, Pos("q")))
    node.extra = [1, 2]  # attributes a pass attached are copied too
    copied = clone(node)
    assert type(copied.left) is Feature and copied.left.name == "ids" and copied.left is not node.left
    assert copied.right.table == spec and copied.right.index is not node.right.index
    assert copied.extra == [1, 2] and copied.extra is not node.extra
