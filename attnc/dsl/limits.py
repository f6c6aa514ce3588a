"""Static and run-time limits on programs (documented in docs/dsl.md, "Bounds")."""

from __future__ import annotations

#: Source files larger than this are rejected before parsing.
MAX_SOURCE_BYTES = 200_000
#: Bracket nesting depth allowed in the text (checked before parsing).
MAX_BRACKET_DEPTH = 50
#: Depth of the parse tree / AST (checked before the tree is transformed).
MAX_TREE_DEPTH = 100
#: Functions defined in one file (keeps call chains short).
MAX_FUNCTIONS = 100
#: Loops (for, comprehensions) nested inside one another, per function.
MAX_LOOP_NESTING = 3
#: Largest integer literal (absolute value).
MAX_INT_LITERAL = 10**9
#: Longest string literal (characters).
MAX_STRING_LITERAL = 10_000
#: Largest literal exponent in `x ** <literal>`.
MAX_LITERAL_EXPONENT = 64
#: Integers computed at run time may not exceed this many bits.
MAX_INT_BITS = 4096
#: Longest regular-expression literal (characters).
MAX_REGEX_LENGTH = 1000
#: Total time all regular-expression matching of one window may take (seconds).
REGEX_SECONDS_PER_WINDOW = 0.5
#: Nested calls (helpers and nested functions) active at once; recursion is
#: rejected statically and refused at run time, this bounds the rest.
MAX_CALL_DEPTH = 64


def loop_budget(n: int) -> int:
    """Total loop iterations (all loops and comprehensions) allowed on a window of n tokens."""
    return max(1_000_000, 8 * n**3)


def max_elements(n: int) -> int:
    """Largest array / list / string / dict a program may create on a window of n tokens."""
    return max(262_144, 4 * (n + 1) ** 2)


#: Name kept for the brief's spelling; the same function.
LOOP_BUDGET = loop_budget


def work_budget(n: int) -> int:
    """Element operations (array elements, container and string lengths) charged per window."""
    return max(50_000_000, 64 * n**3)
