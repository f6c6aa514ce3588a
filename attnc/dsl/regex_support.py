"""`import re` for programs: literal patterns, compiled once, time-bounded matching.

Matching runs on the `regex` package (a maintained, `re`-compatible engine;
`regex.VERSION0` keeps `re`'s semantics, including Unicode `\\w` on token
strings such as "Ġcat") with its `timeout=` argument: every call gets what
is left of the window's `REGEX_SECONDS_PER_WINDOW`, so catastrophic
backtracking stops with a guard error instead of running away. Patterns are
literals (validate.py), compiled once per (pattern, flags) and cached for
the process. Programs see `RestrictedRe`, `Pattern` and regex match objects,
and only the members allow-listed in allowlist.py.
"""

from __future__ import annotations

import functools
import time

import regex

from attnc.dsl import allowlist, limits
from attnc.dsl.errors import GuardError


@functools.lru_cache(maxsize=4096)
def compile_pattern(pattern: str, flags: int = 0):
    """The compiled pattern, once per (pattern, flags). Raises regex.error for a bad pattern."""
    if not isinstance(pattern, str) or len(pattern) > limits.MAX_REGEX_LENGTH:
        raise GuardError("regular expressions are string literals of at most "
                         f"{limits.MAX_REGEX_LENGTH} characters")
    return regex.compile(pattern, flags | regex.VERSION0)


class RegexClock:
    """The regex time left to one window's run."""

    def __init__(self, seconds: float = limits.REGEX_SECONDS_PER_WINDOW):
        self.left = seconds

    def run(self, method, *args, **kwargs):
        if self.left <= 0:
            raise GuardError("stopped by regex time bound: matching used the window's "
                             f"{limits.REGEX_SECONDS_PER_WINDOW} s")
        start = time.perf_counter()
        try:
            return method(*args, timeout=self.left, **kwargs)
        except TimeoutError:
            raise GuardError("stopped by regex time bound: a match took longer than the window's "
                             f"{limits.REGEX_SECONDS_PER_WINDOW} s (catastrophic backtracking?)") from None
        finally:
            self.left -= time.perf_counter() - start


class Pattern:
    """A compiled program pattern: the allow-listed methods, time-bounded, results bounded."""

    __slots__ = ("_compiled", "_sandbox")

    def __init__(self, compiled, sandbox):
        self._compiled = compiled
        self._sandbox = sandbox

    def _text(self, text) -> str:
        if not isinstance(text, str):
            raise GuardError(f"regex matching needs a string, got {type(text).__name__}")
        self._sandbox.charge(len(text) + 1, "regex")
        return text

    def _run(self, name: str, *args, **kwargs):
        return self._sandbox.regex_clock.run(getattr(self._compiled, name), *args, **kwargs)

    def search(self, text, pos=0, endpos=None):
        return self._run("search", self._text(text), pos, endpos)

    def match(self, text, pos=0, endpos=None):
        return self._run("match", self._text(text), pos, endpos)

    def fullmatch(self, text, pos=0, endpos=None):
        return self._run("fullmatch", self._text(text), pos, endpos)

    def findall(self, text, pos=0, endpos=None):
        return self._run("findall", self._text(text), pos, endpos)

    def finditer(self, text, pos=0, endpos=None):
        matches = self._sandbox.regex_clock.run(lambda *a, **k: list(self._compiled.finditer(*a, **k)),
                                                self._text(text), pos, endpos)
        return iter(matches)

    def split(self, text, maxsplit=0):
        return self._run("split", self._text(text), maxsplit)

    def _replacement(self, repl, text: str) -> str:
        if not isinstance(repl, str):
            raise GuardError("the replacement of re.sub must be a string")
        self._sandbox.charge((len(text) + 1) * (len(repl) + 1), "re.sub")
        return repl

    def sub(self, repl, text, count=0):
        text = self._text(text)
        return self._run("sub", self._replacement(repl, text), text, count)

    def subn(self, repl, text, count=0):
        text = self._text(text)
        return self._run("subn", self._replacement(repl, text), text, count)


class RestrictedRe:
    """`re` as programs see it: module functions that compile (cached) and delegate to `Pattern`."""

    def __init__(self, sandbox):
        self._sandbox = sandbox
        self._flags = {name: int(getattr(regex, name)) for name in allowlist.RE_FLAGS}

    def member(self, name: str):
        if name in self._flags:
            return self._flags[name]
        if name == "escape":
            return lambda text: regex.escape(text) if isinstance(text, str) else _refuse("re.escape needs a string")
        if name == "compile":
            return lambda pattern, flags=0: Pattern(self._compile(pattern, flags), self._sandbox)
        flag_position = {"sub": 3, "subn": 3, "split": 2}.get(name, 1)

        def call(pattern, *args, flags=0, **kwargs):
            if len(args) > flag_position:
                flags = args[flag_position]
                args = args[:flag_position]
            return getattr(Pattern(self._compile(pattern, flags), self._sandbox), name)(*args, **kwargs)
        return call

    @staticmethod
    def _compile(pattern, flags):
        if not isinstance(flags, int):
            raise GuardError("regex flags must be re.<FLAG> values")
        try:
            return compile_pattern(pattern, flags)
        except regex.error as exc:
            raise GuardError(f"invalid regular expression: {exc}") from None


def _refuse(message: str):
    raise GuardError(message)
