"""Validation of a parsed program: names, attributes, calls, loops, entry point.

Every problem is collected (not just the first) as a `Diagnostic`. The rules
are listed in docs/dsl.md ("Validation rules"); the tables of allowed names
live in `allowlist.py`.
"""

from __future__ import annotations

import ast
import difflib
import typing
from dataclasses import dataclass

from attnc.dsl import allowlist, limits, spacy_support
from attnc.dsl.errors import Diagnostic
from attnc.dsl.program import ProgramForm

#: The model `spacy.load` accepts (attnc/dsl/spacy_support.py).
SPACY_MODEL = "en_core_web_sm"


@dataclass(frozen=True)
class ValidatedModule:
    """What validation learned about a module that passed."""

    entry: ast.FunctionDef
    form: ProgramForm
    helpers: tuple[str, ...]
    constants: tuple[str, ...]
    docstring: str


_TYPING_NAMES = frozenset(typing.__all__)


def _suggest(name: str, options, fallback: str) -> str:
    close = difflib.get_close_matches(name, sorted(options), n=3, cutoff=0.6)
    return ("did you mean " + " or ".join(f"`{c}`" for c in close) + "? " if close else "") + fallback


def _is_dunder(name: str) -> bool:
    return name.startswith("__")


def _literal(node: ast.AST) -> bool:
    """A literal constant: numbers, strings, None/True/False, and containers of them."""
    if isinstance(node, ast.Constant):
        return True
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        return isinstance(node.operand, ast.Constant) and isinstance(node.operand.value, (int, float))
    if isinstance(node, (ast.Tuple, ast.List, ast.Set)):
        return all(_literal(e) for e in node.elts)
    if isinstance(node, ast.Dict):
        return all(k is not None and _literal(k) for k in node.keys) and all(_literal(v) for v in node.values)
    return False


def _docstring(body: list[ast.stmt]) -> str:
    if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant) \
            and isinstance(body[0].value.value, str):
        return body[0].value.value
    return ""


def _breaks_out(body: list[ast.stmt]) -> bool:
    """A `break` that leaves this loop (not one of an inner loop)."""
    stack = list(body)
    while stack:
        node = stack.pop()
        if isinstance(node, ast.Break):
            return True
        if not isinstance(node, (ast.For, ast.While, ast.FunctionDef, ast.Lambda)):
            stack.extend(ast.iter_child_nodes(node))
    return False


def _always_returns(body: list[ast.stmt]) -> bool:
    for stmt in body:
        if isinstance(stmt, ast.Return):
            return True
        if isinstance(stmt, ast.If) and _always_returns(stmt.body) and _always_returns(stmt.orelse):
            return True
        if isinstance(stmt, ast.While) and isinstance(stmt.test, ast.Constant) and stmt.test.value is True \
                and not _breaks_out(stmt.body):
            return True  # `while True:` without `break` only leaves by `return` (or a guard's stop)
        if isinstance(stmt, ast.Try) and (_always_returns(stmt.body) or _always_returns(stmt.orelse)) \
                and all(_always_returns(h.body) for h in stmt.handlers):
            return True
    return False


def _own_nodes(function: ast.FunctionDef | ast.Lambda):
    """Nodes of a function's body, not entering nested functions."""
    stack = list(function.body) if isinstance(function, ast.FunctionDef) else [function.body]
    while stack:
        node = stack.pop()
        yield node
        if not isinstance(node, (ast.FunctionDef, ast.Lambda)):
            stack.extend(ast.iter_child_nodes(node))


def _bound_names(function: ast.FunctionDef) -> set[str]:
    names = {a.arg for a in function.args.args}
    augmented = {id(n.target) for n in ast.walk(function) if isinstance(n, ast.AugAssign)}
    for node in ast.walk(function):
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store) and id(node) not in augmented:
            names.add(node.id)
        elif isinstance(node, ast.FunctionDef) and node is not function:
            names.add(node.name)
        elif isinstance(node, ast.ExceptHandler) and node.name:
            names.add(node.name)
    return names


def _is_re_flag(node: ast.AST) -> bool:
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.BitOr):
        return _is_re_flag(node.left) and _is_re_flag(node.right)
    return isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "re" \
        and node.attr in allowlist.RE_FLAGS


def _re_flags_value(node: ast.AST | None) -> int:
    import regex

    if node is None:
        return 0
    if isinstance(node, ast.BinOp):
        return _re_flags_value(node.left) | _re_flags_value(node.right)
    return int(getattr(regex, node.attr))


def _annotation_is(node: ast.AST | None, *names: str) -> bool:
    return isinstance(node, ast.Name) and node.id in names or \
        isinstance(node, ast.Constant) and node.value in names


class _Checker:
    def __init__(self, path: str, declared: dict[str, str] | None = None):
        self.path = path
        self.diagnostics: list[Diagnostic] = []
        self.declared = dict(declared or {})
        self.annotation_names = allowlist.ANNOTATION_NAMES | {
            name for name, kind in self.declared.items() if kind in ("annotation", "collections")}

    def problem(self, node: ast.AST, rule: str, message: str, hint: str = "") -> None:
        self.diagnostics.append(Diagnostic(self.path, getattr(node, "lineno", 1),
                                           getattr(node, "col_offset", 0) + 1, rule, message, hint))

    # -- identifiers --------------------------------------------------------
    def check_identifier(self, node: ast.AST, name: str, what: str, reading: bool = False) -> bool:
        """Dunder names are never allowed; dangerous names never; other unavailable names only when read."""
        if _is_dunder(name):
            self.problem(node, "dunder", f"{what} `{name}` starts with `__`",
                         "double-underscore names reach Python internals and are never allowed")
            return False
        if name in allowlist.DANGEROUS_NAMES or (reading and name in allowlist.FORBIDDEN_NAMES):
            self.problem(node, "forbidden-name", f"`{name}` is not allowed ({allowlist.FORBIDDEN_NAMES[name]})",
                         "programs compute from the window only")
            return False
        return True

    def check_constant(self, node: ast.Constant) -> None:
        value = node.value
        if isinstance(value, bool) or value is None:
            return
        if isinstance(value, int) and abs(value) > limits.MAX_INT_LITERAL:
            self.problem(node, "literal", f"integer literal {value} is too large",
                         f"integer literals are at most {limits.MAX_INT_LITERAL}")
        elif isinstance(value, str) and len(value) > limits.MAX_STRING_LITERAL:
            self.problem(node, "literal", f"string literal of {len(value)} characters is too long",
                         f"string literals are at most {limits.MAX_STRING_LITERAL} characters")

    # -- annotations --------------------------------------------------------
    def check_annotation(self, node: ast.AST | None) -> None:
        if node is None:
            return
        if isinstance(node, ast.Name):
            if node.id not in self.annotation_names:
                self.problem(node, "annotation", f"`{node.id}` is not an accepted type annotation",
                             "use int, float, str, bool, list[...], dict[...], tuple[...], Window, np.ndarray, "
                             "or a name declared by `from typing import ...`")
        elif isinstance(node, ast.Attribute):
            base = node.value.id if isinstance(node.value, ast.Name) else None
            typing_name = base == "typing" and self.declared.get("typing") == "module" and \
                not node.attr.startswith("_") and node.attr in _TYPING_NAMES
            if not (base == "np" and node.attr in allowlist.NUMPY_ANNOTATIONS) and not typing_name:
                self.problem(node, "annotation", f"`.{node.attr}` is not an accepted type annotation",
                             "dotted annotations are np.ndarray and typing.<name> (after `import typing`)")
        elif isinstance(node, ast.Subscript):
            self.check_annotation(node.value)
            for item in node.slice.elts if isinstance(node.slice, ast.Tuple) else [node.slice]:
                self.check_annotation(item)
        elif isinstance(node, (ast.Tuple, ast.List)):
            for item in node.elts:
                self.check_annotation(item)
        elif isinstance(node, ast.BinOp) and isinstance(node.op, ast.BitOr):
            self.check_annotation(node.left)
            self.check_annotation(node.right)
        elif isinstance(node, ast.Constant) and (node.value is None or
                                                 (isinstance(node.value, str) and len(node.value) < 100)):
            return
        else:
            self.problem(node, "annotation", "unsupported type annotation", "use a plain type such as int or np.ndarray")


class _FunctionChecker(ast.NodeVisitor):
    """Checks one function body; records calls of helpers and nested functions with their loop depth.

    A nested `def` gets its own checker (its names: its own, the enclosing
    functions', the module's); `registry` collects every checker by qualified
    name (`outer.inner`) so the call graph covers nested functions too.
    """

    def __init__(self, checker: _Checker, function: ast.FunctionDef, module_names: dict[str, str],
                 registry: dict[str, "_FunctionChecker"] | None = None, qualname: str | None = None,
                 outer: "_FunctionChecker | None" = None):
        self.c = checker
        self.function = function
        self.module_names = module_names  # name -> "helper" | "constant"
        self.qualname = qualname or function.name
        self.registry = registry if registry is not None else {}
        self.registry[self.qualname] = self
        self.locals = _bound_names(function) | (outer.locals if outer else set())
        #: visible nested functions: name -> qualified name
        self.nested: dict[str, str] = dict(outer.nested) if outer else {}
        for stmt in _own_nodes(function):
            if isinstance(stmt, ast.FunctionDef):
                self.nested[stmt.name] = f"{self.qualname}.{stmt.name}"
        self.depth = 0
        self.max_depth = 0
        self.calls: list[tuple[str, int, ast.AST]] = []  # (callee's qualified name, loop depth at call, node)
        self.allowed_lambdas: set[int] = set()
        self.called_attributes: set[int] = set()

    def run(self) -> None:
        for stmt in self.function.body:
            self.visit(stmt)

    # -- nested functions, lambdas ---------------------------------------------
    def visit_FunctionDef(self, node: ast.FunctionDef) -> None:
        self.c.check_identifier(node, node.name, "function name")
        if node.name in allowlist.BUILTINS or node.name == "np" or self.module_names.get(node.name) == "helper":
            self.c.problem(node, "name", f"nested function `{node.name}` shadows a builtin or a top-level function",
                           "rename it")
        check_signature(self.c, node)
        inner = _FunctionChecker(self.c, node, self.module_names, self.registry, self.nested[node.name], outer=self)
        inner.run()
        for default in node.args.defaults:
            inner.visit(default)

    def visit_Lambda(self, node: ast.Lambda) -> None:
        if id(node) not in self.allowed_lambdas:
            self.c.problem(node, "lambda", "`lambda` is only allowed as the `key=` of sorted/max/min/.sort",
                           "define a nested function with `def` for other uses")
        for arg in node.args.args:
            self.c.check_identifier(arg, arg.arg, "parameter")
        saved = self.locals
        self.locals = self.locals | {arg.arg for arg in node.args.args}
        if any(isinstance(n, ast.Lambda) for n in ast.walk(node.body)):
            self.c.problem(node, "lambda", "nested `lambda`", "use a nested `def`")
        self.visit(node.body)
        self.locals = saved

    # -- while, try --------------------------------------------------------------
    def visit_While(self, node: ast.While) -> None:
        self._enter_loop(node)
        self.visit(node.test)
        for stmt in node.body:
            self.visit(stmt)
        self.depth -= 1

    def visit_Try(self, node: ast.Try) -> None:
        for stmt in node.body + node.orelse:
            self.visit(stmt)
        for handler in node.handlers:
            self.check_handler(handler)
            for stmt in handler.body:
                self.visit(stmt)

    def check_handler(self, handler: ast.ExceptHandler) -> None:
        hint = "name built-in exception classes, e.g. `except (IndexError, KeyError):` or `except Exception:`"
        if handler.type is None:
            self.c.problem(handler, "except", "bare `except:` is not allowed", hint)
        kinds = handler.type.elts if isinstance(handler.type, ast.Tuple) else [handler.type] if handler.type else []
        for kind in kinds:
            if not (isinstance(kind, ast.Name) and kind.id in allowlist.EXCEPTION_NAMES):
                spelled = kind.id if isinstance(kind, ast.Name) else type(kind).__name__.lower()
                self.c.problem(kind, "except", f"`except {spelled}` is not allowed", hint)
        if handler.name is not None:
            self.c.check_identifier(handler, handler.name, "name")

    # -- loops ----------------------------------------------------------------
    def _enter_loop(self, node: ast.AST) -> None:
        self.depth += 1
        self.max_depth = max(self.max_depth, self.depth)
        if self.depth == limits.MAX_LOOP_NESTING + 1:
            self.c.problem(node, "loop-nesting", f"loops nested more than {limits.MAX_LOOP_NESTING} deep",
                           "programs do at most O(n^3) work; restructure the loops")

    def visit_For(self, node: ast.For) -> None:
        self.check_target(node.target, allow_subscript=False)
        self.visit(node.iter)
        self._enter_loop(node)
        for stmt in node.body:
            self.visit(stmt)
        self.depth -= 1

    def _comprehension(self, node, elements: list[ast.AST]) -> None:
        entered = 0
        for generator in node.generators:
            self.check_target(generator.target, allow_subscript=False)
            self.visit(generator.iter)
            self._enter_loop(generator)
            entered += 1
            for condition in generator.ifs:
                self.visit(condition)
        for element in elements:
            self.visit(element)
        self.depth -= entered

    def visit_ListComp(self, node):
        self._comprehension(node, [node.elt])

    visit_SetComp = visit_GeneratorExp = visit_ListComp

    def visit_DictComp(self, node):
        self._comprehension(node, [node.key, node.value])

    # -- assignments ------------------------------------------------------------
    def check_target(self, target: ast.AST, allow_subscript: bool) -> None:
        if isinstance(target, ast.Name):
            if self.c.check_identifier(target, target.id, "name"):
                if self.module_names.get(target.id) == "helper" or target.id == "np":
                    self.c.problem(target, "name", f"cannot assign to `{target.id}`",
                                   "it names a function or numpy; pick another variable name")
        elif isinstance(target, (ast.Tuple, ast.List)):
            for elt in target.elts:
                self.check_target(elt, allow_subscript=False)
        elif isinstance(target, ast.Subscript):
            if not allow_subscript:
                self.c.problem(target, "assign-target", "item assignment inside a tuple or loop target",
                               "assign items one at a time: `a[i] = x`")
            self.visit(target.value)
            self.visit(target.slice)

    def visit_Assign(self, node: ast.Assign) -> None:
        for target in node.targets:
            self.check_target(target, allow_subscript=len(node.targets) == 1)
        self.visit(node.value)

    def visit_AugAssign(self, node: ast.AugAssign) -> None:
        self.check_target(node.target, allow_subscript=True)
        if isinstance(node.target, ast.Name) and node.target.id not in self.locals:
            self.c.problem(node.target, "name", f"`{node.target.id}` is not a local variable")
        self.visit(node.value)

    def visit_AnnAssign(self, node: ast.AnnAssign) -> None:
        self.check_target(node.target, allow_subscript=False)
        self.c.check_annotation(node.annotation)
        if node.value is not None:
            self.visit(node.value)

    # -- names, attributes, calls ------------------------------------------------
    def visit_Name(self, node: ast.Name) -> None:
        if isinstance(node.ctx, ast.Store):
            self.c.check_identifier(node, node.id, "name")
            return
        if node.id not in self.locals and node.id not in self.module_names:
            declared = self.c.declared.get(node.id)
            if declared == "annotation" or (declared == "module" and node.id == "typing"):
                self.c.problem(node, "declaration", f"`{node.id}` is declared for type annotations only",
                               "programs load nothing: the tokenizer is the entry point's second parameter")
                return
            if node.id in allowlist.EXCEPTION_NAMES:
                self.c.problem(node, "except", f"`{node.id}` may only be named in an `except` clause",
                               "programs cannot raise; return a value instead")
                return
            if node.id in ("re", "spacy") and declared != "module":
                self.c.problem(node, "name", f"`{node.id}` is used without `import {node.id}`",
                               f"add `import {node.id}` at the top")
                return
        known = (node.id in self.locals or node.id in self.module_names or node.id in allowlist.BUILTINS
                 or node.id == "np" or self.c.declared.get(node.id) == "collections"
                 or (node.id in ("re", "spacy") and self.c.declared.get(node.id) == "module"))
        if not self.c.check_identifier(node, node.id, "name", reading=not known):
            return
        if not known:
            options = set(self.locals) | set(self.module_names) | allowlist.BUILTINS
            self.c.problem(node, "name", f"unknown name `{node.id}`",
                           _suggest(node.id, options, "names are parameters, local variables, functions and "
                                    "constants of this file, np, and the builtins listed in docs/dsl.md"))

    def visit_Attribute(self, node: ast.Attribute) -> None:
        attr = node.attr
        if attr.startswith("_"):
            self.c.problem(node, "dunder" if _is_dunder(attr) else "attribute",
                           f"attribute `.{attr}` starts with `_`",
                           "private and double-underscore attributes are never allowed")
        elif isinstance(node.value, ast.Name) and node.value.id == "spacy" and "spacy" not in self.locals:
            if attr != "load" or id(node) not in self.called_attributes:
                self.c.problem(node, "spacy", f"`spacy.{attr}` is not allowed",
                               f"the only spaCy call is `spacy.load(\"{SPACY_MODEL}\")`")
            self.visit(node.value)
            return
        elif isinstance(node.value, ast.Name) and node.value.id == "re" and "re" not in self.locals:
            if attr in allowlist.RE_FUNCTIONS | allowlist.RE_OTHER_FUNCTIONS:
                if id(node) not in self.called_attributes:
                    self.c.problem(node, "regex", f"`re.{attr}` may only be called", "call it: `re.search(r\"...\", s)`")
            elif attr not in allowlist.RE_FLAGS:
                self.c.problem(node, "regex", f"`re.{attr}` is not allowed",
                               _suggest(attr, allowlist.RE_FUNCTIONS | allowlist.RE_FLAGS,
                                        "allowed: re.compile/search/match/fullmatch/findall/finditer/sub/split/"
                                        "escape and the flags"))
            self.visit(node.value)
            return
        elif isinstance(node.value, ast.Name) and node.value.id == "np" and "np" not in self.locals:
            if attr in allowlist.NUMPY_ANNOTATIONS:
                self.c.problem(node, "numpy", f"`np.{attr}` is only allowed in type annotations")
            elif attr not in allowlist.NUMPY_FUNCTIONS and attr not in allowlist.NUMPY_CONSTANTS:
                self.c.problem(node, "numpy", f"`np.{attr}` is not allowed",
                               _suggest(attr, allowlist.NUMPY_FUNCTIONS | allowlist.NUMPY_CONSTANTS,
                                        "the allowed numpy functions are listed in docs/dsl.md"))
            return
        elif attr in allowlist.SYNTAX_WINDOW_ATTRIBUTES and not spacy_support.installed():
            self.c.problem(node, "spacy", f"the syntax feature `.{attr}` needs the optional spaCy extra",
                           "pip install 'attnc[spacy]' (spaCy and the en_core_web_sm model)")
        elif attr not in allowlist.ALL_ATTRIBUTES:
            self.c.problem(node, "attribute", f"attribute `.{attr}` is not allowed",
                           _suggest(attr, allowlist.ALL_ATTRIBUTES, "see docs/dsl.md for the string, list, dict, "
                                    "array, window and tokenizer attributes"))
        self.visit(node.value)

    def visit_Call(self, node: ast.Call) -> None:
        if not isinstance(node.func, (ast.Name, ast.Attribute)):
            self.c.problem(node, "call", "only named functions and methods can be called",
                           "call a builtin, np.<function>, a helper or a method")
        if isinstance(node.func, ast.Name):
            if node.func.id in self.nested:
                self.calls.append((self.nested[node.func.id], self.depth, node))
            elif self.module_names.get(node.func.id) == "helper" and node.func.id not in self.locals:
                self.calls.append((node.func.id, self.depth, node))
        callee = node.func.id if isinstance(node.func, ast.Name) else \
            node.func.attr if isinstance(node.func, ast.Attribute) else None
        for keyword in node.keywords:
            if keyword.arg == "key" and isinstance(keyword.value, ast.Lambda) \
                    and callee in allowlist.KEY_FUNCTION_CALLS:
                self.allowed_lambdas.add(id(keyword.value))
        if isinstance(node.func, ast.Attribute) and isinstance(node.func.value, ast.Name) \
                and node.func.value.id == "re" and "re" not in self.locals:
            self.called_attributes.add(id(node.func))
            if node.func.attr in allowlist.RE_FUNCTIONS:
                self.check_regex_call(node)
        if isinstance(node.func, ast.Attribute) and isinstance(node.func.value, ast.Name) \
                and node.func.value.id == "spacy" and "spacy" not in self.locals:
            self.called_attributes.add(id(node.func))
            model = node.args[0] if len(node.args) == 1 else None
            if not (isinstance(model, ast.Constant) and model.value == SPACY_MODEL) or node.keywords:
                self.c.problem(node, "spacy", f"spacy.load takes the one configured model, \"{SPACY_MODEL}\"",
                               f"write `nlp = spacy.load(\"{SPACY_MODEL}\")`")
        for keyword in node.keywords:
            if keyword.arg is None or keyword.arg not in allowlist.KEYWORD_ARGUMENTS:
                self.c.problem(keyword, "keyword", f"keyword argument `{keyword.arg}=` is not allowed",
                               _suggest(str(keyword.arg), allowlist.KEYWORD_ARGUMENTS,
                                        "allowed keywords are listed in docs/dsl.md"))
            self.visit(keyword.value)
        self.visit(node.func)
        for arg in node.args:
            self.visit(arg)

    def check_regex_call(self, node: ast.Call) -> None:
        """`re.<function>(<string literal>, ..., flags=re.X)`: the pattern is compiled here, once."""
        pattern = node.args[0] if node.args else None
        if not (isinstance(pattern, ast.Constant) and isinstance(pattern.value, str)):
            self.c.problem(pattern or node, "regex", f"the pattern of `re.{node.func.attr}` must be a string literal",
                           "write the pattern in the call: `re.search(r\"\\d+\", s)`")
            return
        flag_position = {"compile": 1, "search": 2, "match": 2, "fullmatch": 2, "findall": 2, "finditer": 2,
                         "split": 3, "sub": 4, "subn": 4}[node.func.attr]
        flags = [kw.value for kw in node.keywords if kw.arg == "flags"]
        if len(node.args) > flag_position:
            flags.append(node.args[flag_position])
        for flag in flags:
            if not _is_re_flag(flag):
                self.c.problem(flag, "regex", "regex flags must be `re.<FLAG>` names joined by `|`",
                               "e.g. `flags=re.IGNORECASE`")
                return
        problem = regex_problem(pattern.value, _re_flags_value(flags[0] if flags else None))
        if problem:
            self.c.problem(pattern, "regex", f"invalid regular expression: {problem}", "check the pattern")

    # -- literals and operators ---------------------------------------------------
    def visit_Constant(self, node: ast.Constant) -> None:
        self.c.check_constant(node)

    def visit_BinOp(self, node: ast.BinOp) -> None:
        if isinstance(node.op, ast.Pow):
            exponent = node.right
            if isinstance(exponent, ast.UnaryOp) and isinstance(exponent.operand, ast.Constant):
                exponent = exponent.operand
            if isinstance(exponent, ast.Constant) and isinstance(exponent.value, (int, float)) \
                    and abs(exponent.value) > limits.MAX_LITERAL_EXPONENT:
                self.c.problem(node, "literal", f"exponent {exponent.value} is too large",
                               f"literal exponents are at most {limits.MAX_LITERAL_EXPONENT}")
        if isinstance(node.op, ast.Mod) and isinstance(node.left, ast.Constant) and isinstance(node.left.value, str):
            self.c.problem(node, "format", "string formatting with `%` is not allowed",
                           "build strings with + and str()")
        self.generic_visit(node)


def regex_problem(pattern: str, flags: int = 0) -> str | None:
    """Why `pattern` cannot be a program's regex (too long, does not compile), or None."""
    from attnc.dsl.regex_support import compile_pattern

    if len(pattern) > limits.MAX_REGEX_LENGTH:
        return f"pattern longer than {limits.MAX_REGEX_LENGTH} characters"
    try:
        compile_pattern(pattern, flags)
    except Exception as exc:  # regex.error, or anything the compiler reports about the literal
        return str(exc)
    return None


def check_signature(c: _Checker, function: ast.FunctionDef) -> None:
    """Parameters (names, annotations, literal defaults) and the return annotation."""
    for arg in function.args.args:
        c.check_identifier(arg, arg.arg, "parameter")
        c.check_annotation(arg.annotation)
    c.check_annotation(function.returns)
    for default in function.args.defaults:
        if not _literal(default):
            c.problem(default, "default", "default values must be literals", "write a number, string or None")


def _is_allowed_module_call(node: ast.AST) -> bool:
    """`re.compile(...)` or `spacy.load(...)`: the calls a module-level constant may hold (checked as calls)."""
    return isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) \
        and isinstance(node.func.value, ast.Name) and (node.func.value.id, node.func.attr) in (
            ("re", "compile"), ("spacy", "load"))


def _check_module_call(c: _Checker, call: ast.Call) -> None:
    """A module-level `re.compile(...)`/`spacy.load(...)`: the rules of a call in a function with no locals."""
    holder = ast.FunctionDef(name="<module>", args=ast.arguments(posonlyargs=[], args=[], vararg=None, kwonlyargs=[],
                                                                  kw_defaults=[], kwarg=None, defaults=[]),
                             body=[ast.Expr(value=call)], decorator_list=[])
    _FunctionChecker(c, holder, {}).run()


def _find_cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    cycles, state = [], {}

    def visit(name: str, stack: list[str]) -> None:
        state[name] = "active"
        for callee in sorted(edges.get(name, ())):
            if state.get(callee) == "active":
                cycles.append(stack[stack.index(callee):] + [callee])
            elif callee not in state:
                visit(callee, stack + [callee])
        state[name] = "done"

    for name in sorted(edges):
        if name not in state:
            visit(name, [name])
    return cycles


def _entry_form(function: ast.FunctionDef) -> ProgramForm | None:
    args = function.args.args
    if len(args) == 3 and _annotation_is(args[0].annotation, "int") and _annotation_is(args[1].annotation, "int") \
            and _annotation_is(args[2].annotation, "Window"):
        return "native"
    if len(args) == 2 and (args[0].annotation is None or _annotation_is(args[0].annotation, "str")) and \
            (args[1].annotation is None or _annotation_is(args[1].annotation, *allowlist.TRANSFORMERS_NAMES, "Any")) \
            and args[0].arg != "self":
        return "paper"
    return None


ENTRY_HINT = ("define `def name(q: int, k: int, w: Window) -> float:` (native) or "
              "`def name(sentence: str, tokenizer) -> tuple[str, np.ndarray]:` (paper)")


def validate_module(module: ast.Module, path: str, declared: dict[str, str] | None = None
                    ) -> tuple[ValidatedModule | None, list[Diagnostic]]:
    """Check a parsed module.

    Args:
        module: from attnc.dsl.parse.parse_source.
        path: shown in diagnostics.
        declared: names the header lines declared (ParsedSource.declared).

    Returns:
        (result, diagnostics): `result` is None when any diagnostic was found.
    """
    c = _Checker(path, declared)
    functions: dict[str, ast.FunctionDef] = {}
    constants: list[str] = []
    module_names: dict[str, str] = {}
    for stmt in module.body:
        if isinstance(stmt, ast.FunctionDef):
            c.check_identifier(stmt, stmt.name, "function name")
            if stmt.name in module_names:
                c.problem(stmt, "duplicate", f"`{stmt.name}` is defined twice", "give each function its own name")
            if stmt.name in allowlist.BUILTINS or stmt.name == "np":
                c.problem(stmt, "name", f"function `{stmt.name}` shadows a builtin", "rename it")
            functions[stmt.name] = stmt
            module_names[stmt.name] = "helper"
        elif isinstance(stmt, ast.Assign):
            target = stmt.targets[0]
            c.check_identifier(target, target.id, "constant")
            if target.id in module_names or target.id == "np" or target.id in allowlist.BUILTINS:
                c.problem(target, "duplicate", f"`{target.id}` is already defined", "use another name")
            if _is_allowed_module_call(stmt.value) and c.declared.get(stmt.value.func.value.id) == "module":
                _check_module_call(c, stmt.value)
            elif not _literal(stmt.value):
                c.problem(stmt.value, "constant", "module-level values must be literals",
                          "compute values inside a function; `re.compile(...)` and `spacy.load(...)` are the "
                          "calls allowed here, after `import re` / `import spacy`")
            constants.append(target.id)
            module_names[target.id] = "constant"
            for node in ast.walk(stmt.value):
                if isinstance(node, ast.Constant):
                    c.check_constant(node)

    if len(functions) > limits.MAX_FUNCTIONS:
        c.problem(module, "size", f"{len(functions)} functions defined, more than {limits.MAX_FUNCTIONS}",
                  "programs are small")
        return None, c.diagnostics

    registry: dict[str, _FunctionChecker] = {}
    for name, function in functions.items():
        check_signature(c, function)
        checker = _FunctionChecker(c, function, module_names, registry)
        checker.run()
        for default in function.args.defaults:
            checker.visit(default)
    edges = {name: {callee for callee, _, _ in checker.calls} for name, checker in registry.items()}
    own_depth = {name: checker.max_depth for name, checker in registry.items()}
    call_sites = {name: checker.calls for name, checker in registry.items()}

    cycles = _find_cycles(edges)
    for cycle in cycles:
        c.problem(registry[cycle[0]].function, "recursion", "recursive call: " + " -> ".join(cycle),
                  "programs may not recurse; use a loop")
    if not cycles:
        effective: dict[str, int] = {}

        def nesting(name: str) -> int:
            if name not in effective:
                effective[name] = max([own_depth[name]] + [d + nesting(callee) for callee, d, _ in call_sites[name]])
            return effective[name]

        for name in registry:
            for callee, depth, node in call_sites[name]:
                if depth + nesting(callee) > limits.MAX_LOOP_NESTING and depth <= limits.MAX_LOOP_NESTING \
                        and own_depth[name] <= limits.MAX_LOOP_NESTING:
                    c.problem(node, "loop-nesting",
                              f"calling `{callee}` here nests loops {depth + nesting(callee)} deep "
                              f"(more than {limits.MAX_LOOP_NESTING})", "programs do at most O(n^3) work")

    called = {callee for callees in edges.values() for callee in callees}
    candidates = [f for f in functions.values() if _entry_form(f) is not None and f.name not in called]
    entry = None
    if not functions:
        c.problem(module.body[0] if module.body else module, "entry", "no function defined", ENTRY_HINT)
    elif not candidates:
        c.problem(next(iter(functions.values())), "entry", "no entry point with an accepted signature", ENTRY_HINT)
    elif len(candidates) > 1:
        for f in candidates[1:]:
            c.problem(f, "entry", f"several entry points: `{candidates[0].name}` and `{f.name}`",
                      "a file holds one program; call one function from the other or split the file")
    else:
        entry = candidates[0]
        if not _always_returns(entry.body):
            c.problem(entry, "return", f"`{entry.name}` does not return a value on every path",
                      "end the function with a `return`")
        for node in _own_nodes(entry):
            if isinstance(node, ast.Return) and node.value is None:
                c.problem(node, "return", "entry point returns without a value", "return a number or a matrix")

    if c.diagnostics or entry is None:
        c.diagnostics.sort(key=lambda d: (d.line, d.col))
        return None, c.diagnostics
    helpers = tuple(name for name in functions if name != entry.name)
    return ValidatedModule(entry=entry, form=_entry_form(entry), helpers=helpers, constants=tuple(constants),
                           docstring=_docstring(entry.body)), []
