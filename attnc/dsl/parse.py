"""Program text -> Python `ast.Module`, through the Lark grammar only.

The source is checked before parsing (size, encoding, NUL bytes, tabs in
indentation, bracket depth), parsed with an LALR parser built from
`grammar.lark`, checked for tree depth, then turned into `ast` nodes by
`AstBuilder`. The text is never handed to `ast.parse`, `compile` or `exec`.
"""

from __future__ import annotations

import ast
import bisect
import keyword
import threading
import typing
from dataclasses import dataclass, field
from pathlib import Path

from lark import Lark, Token, Transformer, Tree, v_args
from lark.exceptions import LarkError, UnexpectedCharacters, UnexpectedEOF, UnexpectedToken
from lark.indenter import DedentError, PythonIndenter

from attnc.dsl import allowlist, limits
from attnc.dsl.errors import Diagnostic, ProgramError

GRAMMAR_PATH = Path(__file__).with_name("grammar.lark")

#: Python keywords that are not part of the language; a NAME token spelling
#: one of them is reported with a hint instead of a bare syntax error.
FORBIDDEN_KEYWORDS = {
    "class": "programs are functions only",
    "with": "programs have no context managers",
    "finally": "write `try:` / `except <ExceptionName>:` without `finally`",
    "raise": "return a value instead",
    "global": "use a local variable or a module-level constant",
    "nonlocal": "use a local variable, or return the new value from the inner function",
    "del": "assign a new value instead",
    "yield": "return a list instead",
    "await": "programs are synchronous",
    "async": "programs are synchronous",
    "assert": "use `if` and return a value instead",
}

#: Names a declaration makes known, by what a program may do with them:
#: "annotation" (type annotations only), "collections" (callable, with the
#: sandbox's bounds), "module" (`re.<function>`, `typing.<name>` in annotations).
DECLARATION_KINDS = ("annotation", "collections", "module")

#: `from <module> import <names>`: module -> names accepted (what each becomes
#: is given by `_from_import_kind`).
ALLOWED_FROM_IMPORTS = {
    "typing": frozenset(typing.__all__),
    "transformers": allowlist.TRANSFORMERS_NAMES,
    "transformers.tokenization_utils_base": frozenset({"PreTrainedTokenizerBase", "BatchEncoding"}),
    "transformers.tokenization_utils": frozenset({"PreTrainedTokenizer"}),
    "transformers.tokenization_utils_fast": frozenset({"PreTrainedTokenizerFast"}),
    "collections": frozenset({"defaultdict", "Counter"}),
    "__future__": frozenset({"annotations"}),
}
#: `import <module> [as <alias>]`: module -> the only name it may be bound to.
ALLOWED_IMPORTS = {"numpy": "np", "re": "re", "typing": "typing", "spacy": "spacy"}

_TERMINAL_TEXT = {
    "NAME": "a name", "_NEWLINE": "end of line", "_INDENT": "an indented block", "_DEDENT": "end of block",
    "DEC_NUMBER": "a number", "FLOAT_NUMBER": "a number", "STRING": "a string", "LONG_STRING": "a string",
    "AUG_OP": "an augmented assignment (+=, ...)", "$END": "end of file",
}


@dataclass
class ParsedSource:
    """What `parse_source` produces: the module and what was declared."""

    module: ast.Module
    headers: list[str] = field(default_factory=list)
    diagnostics: list[Diagnostic] = field(default_factory=list)
    #: declared name -> "annotation" | "collections" | "module" (DECLARATION_KINDS).
    declared: dict[str, str] = field(default_factory=dict)


class _ForbiddenWord(Exception):
    def __init__(self, token: Token):
        self.token = token


class _Lexer(PythonIndenter):
    """Python indentation handling, plus: forbidden keywords fail with a hint."""

    def process(self, stream):
        self.last_token = None
        return super().process(self._check(stream))

    def _check(self, stream):
        for token in stream:
            self.last_token = token
            if token.type == "NAME" and keyword.iskeyword(token.value):
                raise _ForbiddenWord(token)
            yield token


_PARSER_LOCK = threading.Lock()
_PARSER: Lark | None = None
_LEXER: _Lexer | None = None


def _parser() -> tuple[Lark, _Lexer]:
    global _PARSER, _LEXER
    if _PARSER is None:
        _LEXER = _Lexer()
        _PARSER = Lark(
            GRAMMAR_PATH.read_text(encoding="utf-8"),
            parser="lalr",
            postlex=_LEXER,
            maybe_placeholders=True,
            propagate_positions=True,
        )
    return _PARSER, _LEXER


class _Locator:
    """Index -> (line, col), both 1-based."""

    def __init__(self, text: str):
        self.starts = [0] + [i + 1 for i, c in enumerate(text) if c == "\n"]

    def __call__(self, index: int) -> tuple[int, int]:
        line = bisect.bisect_right(self.starts, index)
        return line, index - self.starts[line - 1] + 1


def decode_source(source: str | bytes, path: str) -> str:
    """Size, encoding and character checks; returns text with `\\n` line ends.

    Raises:
        ProgramError: too large, not UTF-8, NUL bytes.
    """
    def fail(rule: str, message: str, hint: str, line: int = 1, col: int = 1):
        raise ProgramError([Diagnostic(path, line, col, rule, message, hint)])

    if not isinstance(source, (str, bytes, bytearray, memoryview)):
        fail("encoding", f"program source must be text or bytes, not {type(source).__name__}", "pass the file's text")
    if isinstance(source, str):
        if len(source) > limits.MAX_SOURCE_BYTES:
            fail("size", f"program is larger than {limits.MAX_SOURCE_BYTES} bytes", "programs are small; split it")
        try:
            raw = source.encode("utf-8")
        except UnicodeEncodeError as exc:
            fail("encoding", f"program text is not valid Unicode ({exc.reason})", "save the file as UTF-8")
    else:
        raw = bytes(source)
    if len(raw) > limits.MAX_SOURCE_BYTES:
        fail("size", f"program is {len(raw)} bytes, more than {limits.MAX_SOURCE_BYTES}", "programs are small; split it")
    if raw.startswith(b"\xef\xbb\xbf"):
        raw = raw[3:]
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        col = exc.start - (raw.rfind(b"\n", 0, exc.start) + 1) + 1
        fail("encoding", f"invalid UTF-8 byte 0x{raw[exc.start]:02x}", "save the file as UTF-8", line, col)
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    if "\x00" in text:
        line, col = _Locator(text)(text.index("\x00"))
        fail("encoding", "NUL byte in program text", "remove the NUL byte", line, col)
    return text


def _prescan(text: str, path: str) -> list[Diagnostic]:
    """Tabs in indentation and bracket depth, skipping strings and comments."""
    locate = _Locator(text)
    problems: list[Diagnostic] = []
    depth = 0
    i = 0
    size = len(text)
    at_line_start = True
    while i < size:
        c = text[i]
        if at_line_start:
            j = i
            while j < size and text[j] in " \t\f":
                j += 1
            if "\t" in text[i:j] and j < size and text[j] not in "\n#":
                line, _ = locate(i)
                problems.append(Diagnostic(path, line, 1, "indent", "tab in indentation", "indent with spaces only"))
                return problems
            at_line_start = False
            i = j
            continue
        if c == "\n":
            at_line_start = depth == 0
            i += 1
        elif c == "#":
            end = text.find("\n", i)
            i = size if end < 0 else end
        elif c in "'\"":
            quote = text[i : i + 3] if text[i : i + 3] in ('"""', "'''") else c
            j = i + len(quote)
            while j < size and not text.startswith(quote, j):
                if text[j] == "\\":
                    j += 1
                elif text[j] == "\n" and len(quote) == 1:
                    break
                j += 1
            i = j + len(quote)
        elif c in "([{":
            depth += 1
            if depth > limits.MAX_BRACKET_DEPTH:
                line, col = locate(i)
                problems.append(Diagnostic(path, line, col, "depth", f"brackets nested more than {limits.MAX_BRACKET_DEPTH} deep", "use intermediate variables"))
                return problems
            i += 1
        elif c in ")]}":
            depth = max(0, depth - 1)
            i += 1
        else:
            i += 1
    return problems


def _tree_too_deep(tree: Tree) -> tuple[int, int] | None:
    """(line, col) of the first node deeper than MAX_TREE_DEPTH, iteratively."""
    stack = [(tree, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > limits.MAX_TREE_DEPTH:
            meta = node.meta
            return (getattr(meta, "line", 1), getattr(meta, "column", 1))
        for child in node.children:
            if isinstance(child, Tree):
                stack.append((child, depth + 1))
    return None


def _expected_text(expected) -> str:
    parser, _ = _parser()
    patterns = {t.name: t.pattern.value for t in parser.terminals}
    words = set()
    for name in expected:
        if name in _TERMINAL_TEXT:
            words.add(_TERMINAL_TEXT[name])
        elif name in patterns and not name.startswith("__ANON"):
            value = patterns[name]
            words.add(f"'{value}'" if isinstance(value, str) and len(value) < 12 else name.lower())
        else:
            words.add(name.lower())
    return ", ".join(sorted(words)[:12])


def _syntax_diagnostic(exc: Exception, text: str, path: str, lexer: _Lexer) -> Diagnostic:
    if isinstance(exc, _ForbiddenWord):
        tok = exc.token
        if tok.value in FORBIDDEN_KEYWORDS:
            return Diagnostic(path, tok.line, tok.column, "forbidden-syntax",
                              f"`{tok.value}` is not part of the program language", FORBIDDEN_KEYWORDS[tok.value])
        return Diagnostic(path, tok.line, tok.column, "syntax", f"unexpected keyword `{tok.value}`",
                          "a keyword cannot appear here (nor be used as a name or attribute); "
                          "check the brackets and the line before")
    if isinstance(exc, UnexpectedToken):
        tok = exc.token
        line, col = (tok.line, tok.column) if tok.line is not None else (exc.line, exc.column)
        if tok.type == "$END":
            line, col = text.count("\n") + 1, 1
        shown = "end of file" if tok.type == "$END" else ("end of line" if tok.type == "_NEWLINE" else repr(str(tok)))
        hint = f"expected {_expected_text(exc.expected)}"
        pos = getattr(tok, "start_pos", None)
        if tok.type in ("STRING", "LONG_STRING") and pos and text[pos - 1] in "fFbB":
            hint = "f-strings and byte strings are not part of the language; use plain strings and +"
        elif pos is not None and text[pos: pos + 2] == ":=":
            hint = "the walrus operator `:=` is not part of the language"
        elif tok.type == "NAME" and tok.value in ("import", "from"):
            hint = "imports may only appear as header lines at the top level"
        return Diagnostic(path, max(line, 1), max(col, 1), "syntax", f"unexpected {shown}", hint)
    if isinstance(exc, UnexpectedCharacters):
        char = text[exc.pos_in_stream] if 0 <= exc.pos_in_stream < len(text) else "?"
        hints = {"@": "decorators and `@` are not part of the language", "$": "", "`": "",
                 "!": "use `not` / `!=`"}
        hint = hints.get(char) or f"expected {_expected_text(exc.allowed)}"
        if char == ":" and text[exc.pos_in_stream: exc.pos_in_stream + 2] == ":=":
            hint = "the walrus operator `:=` is not part of the language"
        return Diagnostic(path, exc.line, exc.column, "syntax", f"unexpected character {char!r}", hint)
    if isinstance(exc, UnexpectedEOF):
        return Diagnostic(path, text.count("\n") + 1, 1, "syntax", "unexpected end of file",
                          f"expected {_expected_text(exc.expected)}")
    token = lexer.last_token
    line, col = (token.line, token.column) if token is not None and token.line else (1, 1)
    if isinstance(exc, DedentError):
        return Diagnostic(path, line + 1, 1, "indent", "unindent does not match any outer indentation level",
                          "indent blocks consistently with spaces")
    return Diagnostic(path, line, col, "syntax", f"cannot parse program: {exc}", "")


def parse_source(source: str | bytes, path: str = "<string>") -> tuple[str, ParsedSource]:
    """Parse program text into an `ast.Module`.

    Returns:
        (text, parsed): the decoded text and the module with header lines
        removed; `parsed.diagnostics` holds problems found while building the
        tree (bad header imports, bad assignment targets, oversized literals).

    Raises:
        ProgramError: the text is too large, not UTF-8, too deeply nested or
            outside the grammar (the first syntax error, with expected tokens).
    """
    text = decode_source(source, path)
    problems = _prescan(text, path)
    if problems:
        raise ProgramError(problems)
    if not text.strip():
        raise ProgramError([Diagnostic(path, 1, 1, "entry", "program is empty",
                                       "define `def name(q: int, k: int, w: Window) -> float:`")])
    with _PARSER_LOCK:
        parser, lexer = _parser()
        try:
            tree = parser.parse(text if text.endswith("\n") else text + "\n")
        except (LarkError, _ForbiddenWord) as exc:
            raise ProgramError([_syntax_diagnostic(exc, text, path, lexer)]) from None
    too_deep = _tree_too_deep(tree)
    if too_deep:
        raise ProgramError([Diagnostic(path, too_deep[0], too_deep[1], "depth",
                                       f"expression nested more than {limits.MAX_TREE_DEPTH} levels deep",
                                       "split it into intermediate variables")])
    builder = AstBuilder(path)
    module = builder.transform(tree)
    return text, ParsedSource(module=module, headers=builder.headers, diagnostics=builder.diagnostics,
                              declared=builder.declared)


# ---------------------------------------------------------------------------
# Lark tree -> Python ast

_BINOPS = {"+": ast.Add, "-": ast.Sub, "*": ast.Mult, "/": ast.Div, "//": ast.FloorDiv, "%": ast.Mod}
_AUGOPS = {"+=": ast.Add, "-=": ast.Sub, "*=": ast.Mult, "/=": ast.Div, "//=": ast.FloorDiv,
           "%=": ast.Mod, "**=": ast.Pow, "|=": ast.BitOr, "&=": ast.BitAnd}
_UNARY = {"-": ast.USub, "+": ast.UAdd, "~": ast.Invert}
_COMPARE = {"<": ast.Lt, ">": ast.Gt, "==": ast.Eq, ">=": ast.GtE, "<=": ast.LtE, "!=": ast.NotEq,
            "in": ast.In, "notin": ast.NotIn, "is": ast.Is, "isnot": ast.IsNot}


def _decode_string(token: Token) -> str:
    raw = str(token)
    is_raw = raw[0] in "rR"
    if raw[0] in "rRuU":
        raw = raw[1:]
    quote = raw[:3] if raw[:3] in ('"""', "'''") else raw[0]
    body = raw[len(quote): -len(quote)]
    if is_raw:
        return body
    return body.encode("latin-1", "backslashreplace").decode("unicode_escape")


@v_args(meta=True)
class AstBuilder(Transformer):
    """Builds `ast` nodes from the parse tree; one method per grammar rule/alias."""

    def __init__(self, path: str):
        super().__init__(visit_tokens=False)
        self.path = path
        self.headers: list[str] = []
        self.declared: dict[str, str] = {}
        self.diagnostics: list[Diagnostic] = []

    # -- helpers ---------------------------------------------------------
    def _problem(self, where, rule: str, message: str, hint: str = "") -> None:
        line = getattr(where, "line", None) or getattr(where, "lineno", 1)
        col = getattr(where, "column", None) or (getattr(where, "col_offset", 0) + 1)
        self.diagnostics.append(Diagnostic(self.path, line, col, rule, message, hint))

    @staticmethod
    def _at(node, where):
        if isinstance(where, Token):
            node.lineno, node.col_offset = where.line, where.column - 1
            node.end_lineno, node.end_col_offset = where.end_line, where.end_column - 1
        elif where is not None and not getattr(where, "empty", True):
            node.lineno, node.col_offset = where.line, where.column - 1
            node.end_lineno, node.end_col_offset = where.end_line, where.end_column - 1
        return node

    def _store(self, node):
        """Turn a parsed expression into an assignment target, or report it."""
        if isinstance(node, ast.Name):
            node.ctx = ast.Store()
        elif isinstance(node, ast.Subscript):
            node.ctx = ast.Store()
        elif isinstance(node, (ast.Tuple, ast.List)):
            node.ctx = ast.Store()
            for elt in node.elts:
                self._store(elt)
        elif isinstance(node, ast.Attribute):
            self._problem(node, "assign-target", "cannot assign to an attribute",
                          "assign to a local variable or an item (`out[i, j] = ...`)")
        else:
            self._problem(node, "assign-target", f"cannot assign to {type(node).__name__.lower()} expression",
                          "assign to a name, an item (`a[i] = ...`) or a tuple of names")
        return node

    # -- top level -------------------------------------------------------
    def start(self, meta, children):
        body = [c for c in children if isinstance(c, ast.stmt)]
        return ast.Module(body=body, type_ignores=[])

    def dotted_name(self, meta, children):
        return ".".join(str(c) for c in children)

    def import_line(self, meta, children):
        module, alias = children
        alias = str(alias) if alias is not None else None
        bound = ALLOWED_IMPORTS.get(module)
        if bound is not None and alias in (None, bound):
            self.headers.append(f"import {module}" + (f" as {alias}" if alias else ""))
            self.declared[bound] = "module"
        else:
            spelled = f"import {module}" + (f" as {alias}" if alias else "")
            self._problem(meta, "import", f"`{spelled}` is not allowed",
                          "programs import nothing; accepted declarations: `import numpy as np`, `import re`, "
                          "`import typing`, `import spacy`")

    def from_import_line(self, meta, children):
        module, *names = [c for c in children if c is not None]
        allowed = ALLOWED_FROM_IMPORTS.get(str(module))
        bad = [str(n) for n in names if allowed is None or str(n) not in allowed]
        if bad:
            self._problem(meta, "import", f"`from {module} import {', '.join(bad)}` is not allowed",
                          "accepted declarations: `from typing import ...`, `from collections import "
                          "defaultdict, Counter`, `from transformers import AutoTokenizer, "
                          "PreTrainedTokenizerBase, ...`, `from __future__ import annotations`")
            return
        self.headers.append(f"from {module} import {', '.join(map(str, names))}")
        kind = "collections" if module == "collections" else "annotation"
        for name in names:
            if module != "__future__":
                self.declared[str(name)] = kind

    def module_docstring(self, meta, children):
        return self._at(ast.Expr(value=children[0]), meta)

    def const_assign(self, meta, children):
        name, value = children
        target = self._at(ast.Name(id=str(name), ctx=ast.Store()), name)
        return self._at(ast.Assign(targets=[target], value=value), meta)

    def funcdef(self, meta, children):
        name, params, returns, body = children
        args, defaults = params if params is not None else ([], [])
        arguments = ast.arguments(posonlyargs=[], args=args, vararg=None, kwonlyargs=[], kw_defaults=[],
                                  kwarg=None, defaults=defaults)
        node = ast.FunctionDef(name=str(name), args=arguments, body=body, decorator_list=[], returns=returns,
                               type_comment=None)
        node = self._at(node, meta)
        node.name_col = name.column
        return node

    def params(self, meta, children):
        args, defaults = [], []
        for arg, default in [c for c in children if c is not None]:
            if default is None and defaults:
                self._problem(arg, "syntax", "parameter without a default follows one with a default")
            args.append(arg)
            if default is not None:
                defaults.append(default)
        return args, defaults

    def param(self, meta, children):
        name, annotation, default = children
        return self._at(ast.arg(arg=str(name), annotation=annotation), name), default

    # -- statements ------------------------------------------------------
    def suite(self, meta, children):
        body = []
        for child in children:
            body.extend(child if isinstance(child, list) else [child])
        return body

    def simple_stmt(self, meta, children):
        return [c for c in children if c is not None]

    def expr_stmt(self, meta, children):
        return self._at(ast.Expr(value=children[0]), meta)

    def assign(self, meta, children):
        *targets, value = children
        return self._at(ast.Assign(targets=[self._store(t) for t in targets], value=value), meta)

    def augassign(self, meta, children):
        target, op, value = children
        target = self._store(target)
        if isinstance(target, (ast.Tuple, ast.List)):
            self._problem(target, "assign-target", "augmented assignment to a tuple")
        return self._at(ast.AugAssign(target=target, op=_AUGOPS[str(op)](), value=value), meta)

    def annassign(self, meta, children):
        target, annotation, value = children
        target = self._store(target)
        if not isinstance(target, ast.Name):
            self._problem(target, "assign-target", "annotated assignment must assign a name")
        return self._at(ast.AnnAssign(target=target, annotation=annotation, value=value,
                                      simple=int(isinstance(target, ast.Name))), meta)

    def pass_stmt(self, meta, children):
        return self._at(ast.Pass(), meta)

    def break_stmt(self, meta, children):
        return self._at(ast.Break(), meta)

    def continue_stmt(self, meta, children):
        return self._at(ast.Continue(), meta)

    def return_stmt(self, meta, children):
        return self._at(ast.Return(value=children[0]), meta)

    def if_stmt(self, meta, children):
        test, body, *rest = children
        orelse = rest.pop() if rest else None
        orelse = orelse or []
        for elif_meta, elif_test, elif_body in reversed(rest):
            orelse = [self._at(ast.If(test=elif_test, body=elif_body, orelse=orelse), elif_meta)]
        return self._at(ast.If(test=test, body=body, orelse=orelse), meta)

    def elif_clause(self, meta, children):
        return (meta, children[0], children[1])

    def while_stmt(self, meta, children):
        test, body = children
        return self._at(ast.While(test=test, body=body, orelse=[]), meta)

    def try_stmt(self, meta, children):
        body, *handlers = children
        orelse = handlers.pop() if handlers and not isinstance(handlers[-1], ast.ExceptHandler) else None
        return self._at(ast.Try(body=body, handlers=handlers, orelse=orelse or [], finalbody=[]), meta)

    def except_clause(self, meta, children):
        kind, name, body = children
        return self._at(ast.ExceptHandler(type=kind, name=str(name) if name is not None else None, body=body), meta)

    def for_stmt(self, meta, children):
        target, iterable, body = children
        return self._at(ast.For(target=self._store(target), iter=iterable, body=body, orelse=[]), meta)

    # -- expressions -----------------------------------------------------
    def tuple(self, meta, children):
        return self._at(ast.Tuple(elts=[c for c in children if c is not None], ctx=ast.Load()), meta)

    def list(self, meta, children):
        return self._at(ast.List(elts=[c for c in children if c is not None], ctx=ast.Load()), meta)

    def set(self, meta, children):
        return self._at(ast.Set(elts=[c for c in children if c is not None]), meta)

    def dict(self, meta, children):
        pairs = [c for c in children if c is not None]
        return self._at(ast.Dict(keys=[k for k, _ in pairs], values=[v for _, v in pairs]), meta)

    def key_value(self, meta, children):
        return (children[0], children[1])

    def comp_for(self, meta, children):
        target, iterable, *ifs = children
        return ast.comprehension(target=self._store(target), iter=iterable,
                                 ifs=[i for i in ifs if i is not None], is_async=0)

    def comp_if(self, meta, children):
        return children[0]

    def listcomp(self, meta, children):
        return self._at(ast.ListComp(elt=children[0], generators=children[1:]), meta)

    def setcomp(self, meta, children):
        return self._at(ast.SetComp(elt=children[0], generators=children[1:]), meta)

    def genexp(self, meta, children):
        return self._at(ast.GeneratorExp(elt=children[0], generators=children[1:]), meta)

    def dictcomp(self, meta, children):
        (key, value), *generators = children
        return self._at(ast.DictComp(key=key, value=value, generators=generators), meta)

    def lambda_expr(self, meta, children):
        params, body = children
        args = ast.arguments(posonlyargs=[], args=params or [], vararg=None, kwonlyargs=[], kw_defaults=[],
                             kwarg=None, defaults=[])
        return self._at(ast.Lambda(args=args, body=body), meta)

    def lambda_params(self, meta, children):
        return [self._at(ast.arg(arg=str(name), annotation=None), name) for name in children if name is not None]

    def ifexp(self, meta, children):
        body, test, orelse = children
        return self._at(ast.IfExp(test=test, body=body, orelse=orelse), meta)

    def _boolop(self, meta, op, children):
        values = []
        for child in children:
            if isinstance(child, ast.BoolOp) and isinstance(child.op, op) and not getattr(child, "parenthesized", False):
                values.extend(child.values)
            else:
                values.append(child)
        return self._at(ast.BoolOp(op=op(), values=values), meta)

    def or_op(self, meta, children):
        return self._boolop(meta, ast.Or, children)

    def and_op(self, meta, children):
        return self._boolop(meta, ast.And, children)

    def not_op(self, meta, children):
        return self._at(ast.UnaryOp(op=ast.Not(), operand=children[0]), meta)

    def compare(self, meta, children):
        left, rest = children[0], children[1:]
        ops = [rest[i] for i in range(0, len(rest), 2)]
        comparators = [rest[i] for i in range(1, len(rest), 2)]
        return self._at(ast.Compare(left=left, ops=ops, comparators=comparators), meta)

    def comp_op(self, meta, children):
        return _COMPARE["".join(str(c) for c in children)]()

    def _bin(self, meta, left, op, right):
        return self._at(ast.BinOp(left=left, op=op, right=right), meta)

    def binop(self, meta, children):
        left, op, right = children
        return self._bin(meta, left, _BINOPS[str(op)](), right)

    def bitor(self, meta, children):
        return self._bin(meta, children[0], ast.BitOr(), children[1])

    def bitxor(self, meta, children):
        return self._bin(meta, children[0], ast.BitXor(), children[1])

    def bitand(self, meta, children):
        return self._bin(meta, children[0], ast.BitAnd(), children[1])

    def pow(self, meta, children):
        return self._bin(meta, children[0], ast.Pow(), children[1])

    def unary(self, meta, children):
        op, operand = children
        return self._at(ast.UnaryOp(op=_UNARY[str(op)](), operand=operand), meta)

    def call(self, meta, children):
        func, arguments = children
        args, keywords = arguments if arguments is not None else ([], [])
        return self._at(ast.Call(func=func, args=args, keywords=keywords), meta)

    def call_genexp(self, meta, children):
        func, elt, *generators = children
        gen = self._at(ast.GeneratorExp(elt=elt, generators=generators), meta)
        return self._at(ast.Call(func=func, args=[gen], keywords=[]), meta)

    def arguments(self, meta, children):
        args, keywords = [], []
        for child in children:
            if child is None:
                continue
            if isinstance(child, ast.keyword):
                keywords.append(child)
            else:
                if keywords:
                    self._problem(child, "syntax", "positional argument follows keyword argument")
                args.append(child)
        return args, keywords

    def kwarg(self, meta, children):
        name, value = children
        if not isinstance(name, ast.Name):
            self._problem(meta, "syntax", "keyword argument must be a name", "write `name=value`")
            return self._at(ast.keyword(arg="invalid", value=value), meta)
        return self._at(ast.keyword(arg=name.id, value=value), meta)

    def getitem(self, meta, children):
        value, items = children
        index = items[0] if len(items) == 1 and not getattr(items, "trailing", False) else \
            ast.Tuple(elts=list(items), ctx=ast.Load())
        return self._at(ast.Subscript(value=value, slice=self._at(index, meta) if isinstance(index, ast.Tuple) else index,
                                      ctx=ast.Load()), meta)

    def subscripts(self, meta, children):
        return [c for c in children if c is not None]

    def slice(self, meta, children):
        lower, upper, step = children
        node = ast.Slice(lower=lower, upper=upper, step=step)
        return self._at(node, meta) if not getattr(meta, "empty", True) else node

    def sliceop(self, meta, children):
        return children[0]

    def getattr(self, meta, children):
        value, name = children
        return self._at(ast.Attribute(value=value, attr=str(name), ctx=ast.Load()), meta)

    def name(self, meta, children):
        return self._at(ast.Name(id=str(children[0]), ctx=ast.Load()), children[0])

    def int_lit(self, meta, children):
        digits = str(children[0]).replace("_", "")
        if len(digits) > 18:
            self._problem(children[0], "literal", f"integer literal with {len(digits)} digits is too large",
                          f"integer literals are at most {limits.MAX_INT_LITERAL}")
            return self._at(ast.Constant(value=0), children[0])
        return self._at(ast.Constant(value=int(digits)), children[0])

    def float_lit(self, meta, children):
        return self._at(ast.Constant(value=float(str(children[0]).replace("_", ""))), children[0])

    def strings(self, meta, children):
        parts = []
        for token in children:
            try:
                parts.append(_decode_string(token))
            except UnicodeDecodeError as exc:
                self._problem(token, "literal", f"invalid escape in string literal ({exc.reason})",
                              "write a backslash as \\\\")
        return self._at(ast.Constant(value="".join(parts)), meta)

    def const_none(self, meta, children):
        return self._at(ast.Constant(value=None), meta)

    def const_true(self, meta, children):
        return self._at(ast.Constant(value=True), meta)

    def const_false(self, meta, children):
        return self._at(ast.Constant(value=False), meta)
