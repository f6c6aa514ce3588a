"""LLM synthesis loop against a real local HTTP server speaking the OpenAI chat API.

The validator here is a small AST allow-list standing in for the DSL (the
DSL-backed test at the end uses the real one when it is available); the scorer
reads the IoU a candidate claims in its docstring ("iou=0.42"), and actually
executes what it is given, so a hostile program reaching it would leave a marker
file behind.
"""

from __future__ import annotations

import ast
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from attnc.dsl.program import CheckedProgram, source_sha256
from attnc.synth.config import LLMSynthConfig, SynthConfigError
from attnc.synth.llm import HeadTask, run_llm_synthesis
from attnc.synth.scoring import CandidateScore
from attnc.synth.validation import ValidationFailure
from fake_openai_server import FakeOpenAIServer, Reply, scripted

# ---------------------------------------------------------------- candidates

NATIVE = '''```python
def previous_token(q: int, k: int, w: Window) -> float:
    """Previous token. iou=0.60"""
    return 1.0 if k == q - 1 else 0.0
```'''

PAPER = '''Here is my program:
```python
import numpy as np

def same_token(sentence: str, tokenizer) -> tuple[str, np.ndarray]:
    """Same token earlier. iou=0.55"""
    toks = tokenizer([sentence], return_tensors="pt")
    n = len(toks.input_ids[0])
    tokens = tokenizer.convert_ids_to_tokens(toks.input_ids[0])
    out = np.zeros((n, n))
    for i in range(n):
        for j in range(i):
            if tokens[i] == tokens[j]:
                out[i, j] = 1.0
    out += 1e-4
    out = out / out.sum(axis=1, keepdims=True)
    return "same token earlier", out
```
It should work.'''

TWO_BLOCKS = '''First idea:
```python
def first_token(q: int, k: int, w: Window) -> float:
    """iou=0.30"""
    return 1.0 if k == 0 else 0.0
```
Better:
```python
def first_or_previous(q: int, k: int, w: Window) -> float:
    """iou=0.70"""
    return 1.0 if k == 0 or k == q - 1 else 0.0
```'''

BARE = '''def self_token(q: int, k: int, w: Window) -> float:
    """iou=0.40"""
    return 1.0 if k == q else 0.0

This attends to itself.'''

SYNTAX = '''```python
def broken(q: int, k: int, w: Window) -> float
    return 1.0 if k == q else 0.0
```'''

TRUNCATED = '''```python
def cut(q: int, k: int, w: Window) -> float:
    """iou=0.9"""
    return 1.0 if k == q - 1 and w.tok[k].'''

MARKER_NAME = "EXECUTED_MARKER"

HOSTILE = {
    "dunder": '''```python
def escape(q: int, k: int, w: Window) -> float:
    """iou=0.99"""
    ().__class__.__base__.__subclasses__()
    open(MARKER, "w").write("x")
    return 1.0
open(MARKER, "w").write("x")
```''',
    "import": '''```python
import os
os.system("touch " + MARKER)
def escape(q: int, k: int, w: Window) -> float:
    """iou=0.99"""
    return 1.0
```''',
    "open": '''```python
def escape(q: int, k: int, w: Window) -> float:
    """iou=0.99"""
    open(MARKER, "w").write("x")
    return 1.0
open(MARKER, "w").write("x")
```''',
    "exec": '''```python
exec("open(MARKER, 'w').write('x')")
def escape(q: int, k: int, w: Window) -> float:
    """iou=0.99"""
    return 1.0
```''',
}

PROSE = "I think this head attends to the previous token, mostly. Hope this helps!"
NOT_BETTER = NATIVE.replace("iou=0.60", "iou=0.10")
RUNTIME = NATIVE.replace("iou=0.60", "iou=0.60 boom")
HUGE = "```python\ndef huge(q: int, k: int, w: Window) -> float:\n" + "    x = 1\n" * 400_000 + "    return 1.0\n```"


# ---------------------------------------------------------------- fakes

_FORBIDDEN_NAMES = {"open", "exec", "eval", "compile", "getattr", "globals", "__import__", "MARKER"}


def fake_validate(source: str, path: str) -> CheckedProgram | ValidationFailure:
    """An AST allow-list in the spirit of the DSL (imports: numpy/typing only; no dunders, no I/O names)."""
    try:
        module = ast.parse(source)
    except SyntaxError as exc:
        return ValidationFailure("syntax", ("syntax",), (f"{path}:{exc.lineno}: {exc.msg}",))
    problems = []
    for node in ast.walk(module):
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
            if any(n not in ("numpy", "typing") for n in names):
                problems.append(("import", f"import of {names}"))
        elif isinstance(node, ast.Attribute) and node.attr.startswith("_"):
            problems.append(("attribute", f"attribute {node.attr}"))
        elif isinstance(node, ast.Name) and node.id in _FORBIDDEN_NAMES:
            problems.append(("name", f"name {node.id}"))
        elif isinstance(node, (ast.While, ast.ClassDef)):
            problems.append(("statement", type(node).__name__))
    for node in module.body:
        if not isinstance(node, (ast.FunctionDef, ast.Import, ast.ImportFrom)) and not (
            isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant)
        ):
            problems.append(("statement", f"top-level {type(node).__name__}"))
    functions = [n for n in module.body if isinstance(n, ast.FunctionDef)]
    if not functions:
        problems.append(("entry", "no function"))
    if problems:
        return ValidationFailure("validation", tuple(r for r, _ in problems), tuple(m for _, m in problems))
    entry = functions[-1]
    args = [a.arg for a in entry.args.args]
    form = "native" if args == ["q", "k", "w"] else "paper"
    return CheckedProgram(
        name=entry.name, path=path, source=source, sha256=source_sha256(source), form=form, module=module,
        entry=entry, helpers=tuple(f.name for f in functions[:-1]), docstring=ast.get_docstring(entry) or "",
    )


@dataclass
class ExecutingScorer:
    """Claims the IoU written in the docstring; executes the program's module first
    (with MARKER bound to a file path), so a hostile program reaching it leaves a file."""

    marker: Path
    calls: list[tuple[str, str]] = field(default_factory=list)

    def score(self, program: CheckedProgram, head: str) -> CandidateScore:
        assert isinstance(program, CheckedProgram), f"scorer got {type(program).__name__}"
        self.calls.append((program.name, program.source))
        namespace = {"MARKER": str(self.marker), "Window": object, "np": None}
        exec(compile(program.source, program.path, "exec"), namespace)  # only validated sources get here
        if "boom" in program.docstring:
            raise RuntimeError("program failed on window 0")
        match = re.search(r"iou=([0-9.]+)", program.docstring)
        iou = float(match.group(1)) if match else 0.05
        return CandidateScore(iou_fit=iou, iou_heldout=iou - 0.01)


def make_config(server: FakeOpenAIServer, tmp_path: Path, **overrides) -> LLMSynthConfig:
    settings = dict(
        base_url=server.url, model="fake-model", api_key="test-key", n_candidates=1, rounds=1,
        out_dir=tmp_path / "programs", cache_dir=tmp_path / "cache", request_timeout_s=0.3,
        max_attempts=3, backoff_base_s=0.001, backoff_cap_s=0.05, max_requests=50, max_tokens=10**7,
        max_seconds=60, max_reply_bytes=64 * 1024,
    )
    settings.update(overrides)
    return LLMSynthConfig(**settings)


def run(server, tmp_path, heads=None, marker=None, sleeps=None, **overrides):
    marker = marker or tmp_path / MARKER_NAME
    scorer = ExecutingScorer(marker)
    heads = heads or [HeadTask(head="0.1", summary="Head 0.1 attends to the previous token.", best_iou=0.2)]
    waits = sleeps if sleeps is not None else []
    report = run_llm_synthesis(make_config(server, tmp_path, **overrides), heads, scorer,
                               validate=fake_validate, sleep=waits.append)
    json.dumps(report.to_json())  # always serialisable
    return report, scorer


# ---------------------------------------------------------------- the failure matrix

def _ok(contents):
    return Reply(contents=[contents] if isinstance(contents, str) else contents)


#: name -> (server replies, config overrides, expected accepted, expected rejected {reason: count})
SCENARIOS = {
    "good native": ([_ok(NATIVE)], {}, 1, {}),
    "good paper": ([_ok(PAPER)], {}, 1, {}),
    "bare code + prose": ([_ok(BARE)], {}, 1, {}),
    "two blocks, 2nd better": ([_ok(TWO_BLOCKS)], {}, 2, {}),
    "syntax error": ([_ok(SYNTAX)], {}, 0, {"syntax": 1}),
    "truncated code": ([_ok(TRUNCATED)], {}, 0, {"syntax": 1}),
    "hostile __class__": ([_ok(HOSTILE["dunder"])], {}, 0, {"validation": 1}),
    "hostile import": ([_ok(HOSTILE["import"])], {}, 0, {"validation": 1}),
    "hostile open()": ([_ok(HOSTILE["open"])], {}, 0, {"validation": 1}),
    "hostile exec": ([_ok(HOSTILE["exec"])], {}, 0, {"validation": 1}),
    "prose, no code": ([_ok(PROSE)], {}, 0, {"no_code": 1}),
    "huge reply (3 MB)": ([_ok(HUGE)], {}, 0, {"too_large": 1}),
    "not better": ([_ok(NOT_BETTER)], {}, 0, {"not_better": 1}),
    "scorer raises": ([_ok(RUNTIME)], {}, 0, {"runtime": 1}),
    "slow (> timeout) x2": ([Reply(contents=[NATIVE], delay_s=1.0)] * 2, {"max_attempts": 2}, 0, {"timeout": 1}),
    "slow, then good": ([Reply(contents=[NATIVE], delay_s=1.0), _ok(NATIVE)], {}, 1, {}),
    "429 then good": ([Reply(status=429, headers={"Retry-After": "0"}), _ok(NATIVE)], {}, 1, {}),
    "500 x3": ([Reply(status=500)] * 3, {}, 0, {"http_error": 1}),
    "malformed JSON": ([Reply(body=b'{"choices": [ {not json')], {}, 0, {"http_error": 1}),
    "no choices list": ([Reply(body=b'{"object": "chat.completion"}')], {}, 0, {"http_error": 1}),
    "n ignored (n=3)": ([Reply(contents=[NOT_BETTER], honour_n=False)] * 3, {"n_candidates": 3}, 0, {"not_better": 3}),
}


def _run_scenario(name, tmp_path):
    replies, overrides, _, _ = SCENARIOS[name]
    with FakeOpenAIServer(scripted(replies)) as server:
        report, scorer = run(server, tmp_path, **overrides)
        return report, scorer, len(server.requests)


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_each_failure_type_is_kept_or_rejected_with_its_reason(name, tmp_path):
    report, scorer, requests = _run_scenario(name, tmp_path)
    _, _, accepted, rejected = SCENARIOS[name]
    head = report.heads[0]
    assert head.accepted == accepted, head.messages
    assert {r: c for r, c in head.rejected.items() if c} == rejected, head.messages
    assert head.candidates == head.accepted + sum(head.rejected.values())
    assert not (tmp_path / MARKER_NAME).exists(), "a hostile candidate was executed"
    assert all("escape" not in name_ for name_, _ in scorer.calls)
    assert len(head.files) == (1 if accepted else 0)
    assert head.requests == requests
    if accepted:
        text = Path(head.files[0]).read_text()
        assert "# model: fake-model" in text and "# head: 0.1" in text and "# prompt sha256: " in text
        assert not isinstance(fake_validate(text, head.files[0]), ValidationFailure)
        assert head.best_after > head.best_before


def test_failure_matrix_summary(tmp_path):
    """Prints the failure type -> outcome table (run with -s to see it)."""
    rows = []
    for index, name in enumerate(SCENARIOS):
        report, _, requests = _run_scenario(name, tmp_path / str(index))
        head = report.heads[0]
        reasons = ", ".join(f"{r}={c}" for r, c in head.rejected.items() if c) or "-"
        rows.append((name, requests, head.candidates, head.accepted, reasons))
        assert not (tmp_path / str(index) / MARKER_NAME).exists()
    widths = [max(len(str(r[i])) for r in rows + [("failure type", "requests", "candidates", "accepted", "rejected")]) for i in range(5)]
    header = ("failure type", "requests", "candidates", "accepted", "rejected")
    print()
    for row in [header] + rows:
        print(" | ".join(str(v).ljust(w) for v, w in zip(row, widths)))
    assert sum(r[3] for r in rows) == sum(s[2] for s in SCENARIOS.values())


# ---------------------------------------------------------------- caps, cache, retries, rounds

def test_max_requests_stops_the_run_after_exactly_that_many(tmp_path):
    heads = [HeadTask(head=f"0.{i}", summary=f"head {i}") for i in range(10)]
    with FakeOpenAIServer(scripted([], then=Reply(contents=[NOT_BETTER]))) as server:
        report, _ = run(server, tmp_path, heads=heads, max_requests=5)
        assert len(server.requests) == 5
    assert report.stopped_by == "max_requests"
    assert report.spend["requests"] == 5
    assert sum(h.requests for h in report.heads) == 5


def test_max_requests_counts_retries(tmp_path):
    with FakeOpenAIServer(scripted([], then=Reply(status=500))) as server:
        report, _ = run(server, tmp_path, heads=[HeadTask("0.0", "h"), HeadTask("0.1", "h")], max_requests=4, max_attempts=3)
        assert len(server.requests) == 4
    assert report.stopped_by == "max_requests"
    assert report.totals()["rejected"]["http_error"] == 1


def test_max_tokens_stops_the_run(tmp_path):
    heads = [HeadTask(head=f"1.{i}", summary=f"head 1.{i}") for i in range(6)]
    with FakeOpenAIServer(scripted([], then=Reply(contents=[NOT_BETTER]))) as server:  # usage: 150 tokens each
        report, _ = run(server, tmp_path, heads=heads, max_tokens=300)
        assert len(server.requests) == 2
    assert report.stopped_by == "max_tokens"
    assert report.spend["prompt_tokens"] + report.spend["completion_tokens"] == 300


def test_max_seconds_stops_the_run_with_an_injected_clock(tmp_path):
    ticks = iter(range(0, 10_000, 10))
    heads = [HeadTask(head=f"2.{i}", summary=f"head 2.{i}") for i in range(20)]
    with FakeOpenAIServer(scripted([], then=Reply(contents=[NOT_BETTER]))) as server:
        config = make_config(server, tmp_path, max_seconds=45)
        report = run_llm_synthesis(config, heads, ExecutingScorer(tmp_path / "m"), validate=fake_validate,
                                   clock=lambda: next(ticks), sleep=lambda s: None)
        assert 0 < len(server.requests) < 20
    assert report.stopped_by == "max_seconds"


def test_second_run_is_served_from_the_cache_with_zero_http_requests(tmp_path):
    with FakeOpenAIServer(scripted([_ok(TWO_BLOCKS), _ok(PAPER)])) as server:
        first, _ = run(server, tmp_path, n_candidates=2, use_n=False)
        assert len(server.requests) == 2
        second, _ = run(server, tmp_path, n_candidates=2, use_n=False)
        assert len(server.requests) == 2, "the second run made HTTP requests"
    assert second.spend["requests"] == 0 and second.spend["cached_replies"] == 2
    assert first.heads[0].accepted == second.heads[0].accepted == 2
    # changing a request parameter asks again
    with FakeOpenAIServer(scripted([_ok(NATIVE)])) as server:
        run(server, tmp_path, n_candidates=2, use_n=False, temperature=0.1)
        assert len(server.requests) >= 1


def test_retry_after_is_honoured_up_to_the_cap(tmp_path):
    sleeps: list[float] = []
    replies = [Reply(status=429, headers={"Retry-After": "0"}), Reply(status=429, headers={"Retry-After": "120"}), _ok(NATIVE)]
    with FakeOpenAIServer(scripted(replies)) as server:
        report, _ = run(server, tmp_path, sleeps=sleeps, backoff_cap_s=0.05)
        assert len(server.requests) == 3
    assert sleeps == [0.0, 0.05]
    assert report.heads[0].accepted == 1 and report.spend["retries"] == 2


def test_backoff_grows_exponentially_with_jitter_below_the_cap(tmp_path):
    sleeps: list[float] = []
    with FakeOpenAIServer(scripted([], then=Reply(status=503))) as server:
        run(server, tmp_path, sleeps=sleeps, max_attempts=5, backoff_base_s=0.01, backoff_cap_s=0.05)
        assert len(server.requests) == 5
    assert len(sleeps) == 4
    assert all(0 <= s <= min(0.05, 0.01 * 2**i) for i, s in enumerate(sleeps))


def test_second_round_prompt_feeds_back_best_source_iou_and_rejections(tmp_path):
    with FakeOpenAIServer(scripted([_ok(NATIVE + "\n" + HOSTILE["open"]), _ok(TWO_BLOCKS)])) as server:
        report, _ = run(server, tmp_path, rounds=2)
        assert len(server.requests) == 2
        second = server.requests[1]["messages"][-1]["content"]
    assert "reaches IoU 0.600" in second
    assert "return 1.0 if k == q - 1 else 0.0" in second
    assert "validation (name" in second
    head = report.heads[0]
    assert head.best_after == pytest.approx(0.70)
    assert [Path(f).name for f in head.files] == ["first_or_previous.py"], "superseded files are removed"
    assert sorted(p.name for p in (tmp_path / "programs").iterdir()) == ["first_or_previous.py"]
    text = Path(head.files[0]).read_text()
    assert "iou fit: 0.7000" in text and "def first_or_previous(" in text


def test_file_names_are_unique_and_valid(tmp_path):
    out = tmp_path / "programs"
    out.mkdir()
    (out / "previous_token.py").write_text("# someone else's\n")
    heads = [HeadTask("3.1", "head 3.1"), HeadTask("3.2", "head 3.2")]
    with FakeOpenAIServer(scripted([_ok(NATIVE), _ok(NATIVE)])) as server:
        report, _ = run(server, tmp_path, heads=heads)
    names = sorted(Path(f).name for h in report.heads for f in h.files)
    assert names == ["previous_token_l3h1.py", "previous_token_l3h2.py"]
    assert (out / "previous_token.py").read_text() == "# someone else's\n"
    assert not list(out.glob(".*.tmp")), "temporary files left behind"
    for f in names:
        checked = fake_validate((out / f).read_text(), f)
        assert checked.name == f[:-3]


def test_garbage_endpoint_ends_with_zero_accepted_and_reasons(tmp_path):
    garbage = [Reply(body=b"<html>oops</html>"), _ok(PROSE), Reply(body=b"null"), _ok("")]
    heads = [HeadTask(f"4.{i}", f"head 4.{i}") for i in range(4)]
    with FakeOpenAIServer(scripted(garbage, then=Reply(body=b"\x00\xff"))) as server:
        report, scorer = run(server, tmp_path, heads=heads + [HeadTask("4.9", "head 4.9")])
    totals = report.totals()
    assert totals["accepted"] == 0 and not scorer.calls and not totals["files"]
    assert totals["rejected"]["http_error"] == 3 and totals["rejected"]["no_code"] == 2
    assert report.stopped_by is None


def test_no_endpoint_is_a_config_error_naming_flags_and_env(tmp_path, monkeypatch):
    for var in ("OPENAI_BASE_URL", "OPENAI_API_KEY", "ATTNC_LLM_MODEL"):
        monkeypatch.delenv(var, raising=False)
    with pytest.raises(SynthConfigError) as err:
        run_llm_synthesis(LLMSynthConfig(model="m"), [], ExecutingScorer(tmp_path / "m"))
    assert all(s in str(err.value) for s in ("--base-url", "OPENAI_BASE_URL", "OPENAI_API_KEY"))
    with pytest.raises(SynthConfigError, match="--llm-model"):
        run_llm_synthesis(LLMSynthConfig(base_url="http://127.0.0.1:9/v1"), [], ExecutingScorer(tmp_path / "m"))
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:9/v1")
    monkeypatch.setenv("ATTNC_LLM_MODEL", "m")
    resolved = LLMSynthConfig().resolved()
    assert resolved.base_url == "http://127.0.0.1:9/v1" and resolved.model == "m" and resolved.api_key


def test_usage_missing_is_estimated_with_the_token_counter(tmp_path):
    with FakeOpenAIServer(scripted([Reply(contents=[NATIVE], usage=None)])) as server:
        report, _ = run(server, tmp_path)
    assert report.spend["prompt_tokens"] > 500  # the system prompt alone is several hundred tokens
    assert report.spend["completion_tokens"] > 20


# ---------------------------------------------------------------- with the real DSL and reference interpreter

HOSTILE_IN_BODY = '''```python
def sneaky(q: int, k: int, w: Window) -> float:
    """Looks fine."""
    x = w.__class__
    open(MARKER, "w")
    return 1.0
```'''


def _iou(attn, prog):
    """The paper's window IoU: rows of clip(min)/clip(max), averaged over queries."""
    import numpy as np

    a, p = np.clip(attn, 1e-12, 1), np.clip(prog, 1e-12, 1)
    return float((np.minimum(a, p).sum(axis=1) / np.maximum(a, p).sum(axis=1)).mean())


@dataclass
class ReferenceScorer:
    """Runs validated programs with attnc.dsl.run_reference on windows of a synthetic
    previous-token head and scores them with the reference IoU."""

    calls: list[str] = field(default_factory=list)

    def __post_init__(self):
        import numpy as np

        from attnc.window import Vocab

        rng = np.random.default_rng(0)
        self.vocab = Vocab(tokens=tuple(["<s>", ".", ","] + [f"Ġw{i}" for i in range(20)]))
        self.windows = []
        for _ in range(4):
            ids = np.concatenate([[0], rng.integers(1, self.vocab.size, 11)])
            attn = np.zeros((12, 12))
            attn[0, 0] = 1.0
            attn[np.arange(1, 12), np.arange(0, 11)] = 1.0
            self.windows.append((ids, attn))

    def score(self, program, head):
        from attnc.dsl import run_reference

        self.calls.append(program.name)
        ious = [_iou(attn, run_reference(program, ids, self.vocab)) for ids, attn in self.windows]
        return CandidateScore(iou_fit=sum(ious[:3]) / 3, iou_heldout=ious[3])


def test_real_dsl_keeps_the_right_program_and_never_runs_hostile_ones(tmp_path):
    dsl = pytest.importorskip("attnc.dsl", reason="the DSL package is not importable")
    if not hasattr(dsl, "parse_program") or not hasattr(dsl, "run_reference"):
        pytest.skip("attnc.dsl has no parse_program/run_reference yet")
    from attnc.synth.validation import dsl_validate

    replies = [_ok([TWO_BLOCKS, HOSTILE_IN_BODY, NATIVE, *HOSTILE.values(), SYNTAX, PAPER])]
    scorer = ReferenceScorer()
    with FakeOpenAIServer(scripted(replies)) as server:
        config = make_config(server, tmp_path, n_candidates=9)
        report = run_llm_synthesis(config, [HeadTask("0.3", "previous-token head")], scorer,
                                   validate=dsl_validate, sleep=lambda s: None)
    head = report.heads[0]
    assert not (tmp_path / MARKER_NAME).exists() and not Path(MARKER_NAME).exists()
    assert "sneaky" not in scorer.calls and "escape" not in scorer.calls
    assert set(scorer.calls) == {"first_token", "first_or_previous", "previous_token", "same_token"}
    assert head.rejected["syntax"] + head.rejected["validation"] == 6
    assert head.best_after == pytest.approx(1.0)
    written = Path(head.files[0])
    checked = dsl.parse_program(written.read_text(), str(written))  # the provenance header passes the DSL
    assert checked.name == written.stem == "previous_token"
