"""LLM synthesis with several requests in flight (`--concurrency`), against the loopback fake server.

The server here is deterministic: a head's k-th request gets the k-th reply of
that head's script, whatever order requests of different heads arrive in (a
head's own requests are sent one after another at any concurrency). Replies
wait a little, so requests overlap when the client sends them together.
"""

from __future__ import annotations

import json
import re
import threading
from collections import defaultdict
from pathlib import Path

import pytest

from attnc.synth.config import LLMSynthConfig, SynthConfigError
from attnc.synth.llm import HeadTask, run_llm_synthesis
from attnc.synth.prompting import build_messages
from attnc.synth.tokens import token_counter
from attnc.synth.transport import prompt_token_estimate
from fake_openai_server import FakeOpenAIServer, Reply
from test_synth_llm import (HOSTILE, NATIVE, NOT_BETTER, PAPER, PROSE, SYNTAX, TWO_BLOCKS, ExecutingScorer,
                            fake_validate, make_config)

_HEAD = re.compile(r"HEAD\[([0-9]+\.[0-9]+)\]")


class ByHead:
    """Responder: head h's k-th request gets script[h][k]; after its script, `then`."""

    def __init__(self, script: dict[str, list[Reply]], then: Reply):
        self.script, self.then = script, then
        self.counts: dict[str, int] = defaultdict(int)
        self.lock = threading.Lock()

    def __call__(self, index: int, body: dict) -> Reply:
        head = _HEAD.search(body["messages"][-1]["content"]).group(1)
        with self.lock:
            k = self.counts[head]
            self.counts[head] += 1
        replies = self.script.get(head, [])
        return replies[k] if k < len(replies) else self.then


def tasks(layer: int, count: int) -> list[HeadTask]:
    return [HeadTask(head=f"{layer}.{i}", summary=f"HEAD[{layer}.{i}] attends somewhere.", best_iou=0.2)
            for i in range(count)]


def synth(server, tmp_path, heads, **overrides):
    config = make_config(server, tmp_path, **{"request_timeout_s": 2.0, **overrides})
    return run_llm_synthesis(config, heads, ExecutingScorer(tmp_path / "marker"), validate=fake_validate,
                             sleep=lambda s: None)


def slow_ok(contents: str, delay_s: float = 0.05) -> Reply:
    return Reply(contents=[contents], delay_s=delay_s)


# ---------------------------------------------------------------- (a) requests in flight at once

def test_concurrency_3_keeps_more_than_one_and_at_most_3_requests_in_flight(tmp_path):
    heads = tasks(1, 8)
    with FakeOpenAIServer(ByHead({}, then=slow_ok(NOT_BETTER, delay_s=0.3))) as server:
        report = synth(server, tmp_path / "n3", heads, concurrency=3)
        assert len(server.requests) == 8
        assert 1 < server.peak_active <= 3, server.peak_active
    assert report.stopped_by is None and report.spend["requests"] == 8
    assert [h.head for h in report.heads] == [h.head for h in heads]
    with FakeOpenAIServer(ByHead({}, then=slow_ok(NOT_BETTER))) as server:
        synth(server, tmp_path / "n1", heads)  # the default: one at a time
        assert server.peak_active == 1


# ---------------------------------------------------------------- (b) results do not depend on N

#: Two requests per head and round (n_candidates=2, use_n=False): round 0, then round 1.
#: 5.0 answers later than 5.1, whose candidates have the same names: the files are named in head order.
SCRIPT = {
    "5.0": [slow_ok(TWO_BLOCKS, delay_s=0.35), slow_ok(PAPER), slow_ok(NATIVE), slow_ok(NOT_BETTER)],
    "5.1": [slow_ok(TWO_BLOCKS), slow_ok(SYNTAX), slow_ok(HOSTILE["open"]), slow_ok(NATIVE)],  # names clash with 5.0
    "5.2": [Reply(contents=[NATIVE], delay_s=3.0)] * 2 + [slow_ok(NATIVE), slow_ok(PAPER)],  # times out in round 0
    "5.3": [Reply(status=500)] * 2 + [slow_ok(NATIVE), Reply(body=b'{"choices": [ {not json')],
    "5.4": [slow_ok(PROSE), slow_ok(NATIVE), Reply(body=b"null"), slow_ok(TWO_BLOCKS)],
    "5.5": [slow_ok(PAPER), slow_ok(NATIVE), slow_ok(TWO_BLOCKS), slow_ok(NOT_BETTER)],
}


def _normalised(report, out_dir: Path) -> dict:
    data = report.to_json()
    data.pop("started")
    data.pop("base_url")  # each run has its own server
    data["spend"].pop("seconds")
    text = json.dumps(data, sort_keys=True).replace(str(out_dir), "<out>")
    return json.loads(text)


def _programs(out_dir: Path) -> dict[str, str]:
    return {p.name: p.read_text() for p in sorted(out_dir.iterdir())}


def test_programs_and_report_equal_the_one_at_a_time_run(tmp_path, monkeypatch):
    # the provenance date is in each file and, through the best source, in feedback prompts
    monkeypatch.setattr("attnc.synth.llm._utc_now", lambda: "2026-01-01T00:00:00+00:00")
    settings = dict(rounds=2, n_candidates=2, use_n=False, max_attempts=2, request_timeout_s=1.0)
    runs = {}
    for n in (1, 3):
        with FakeOpenAIServer(ByHead(SCRIPT, then=slow_ok(NOT_BETTER))) as server:
            report = synth(server, tmp_path / f"n{n}", tasks(5, 6), concurrency=n, **settings)
            bodies = sorted(json.dumps(b, sort_keys=True) for b in server.requests)
            peak = server.peak_active
            assert server.abandoned == 2  # head 5.2's two attempts in round 0, hung up on
        out = tmp_path / f"n{n}" / "programs"
        runs[n] = (_normalised(report, out), _programs(out), bodies, peak)
    (report1, files1, bodies1, peak1), (report3, files3, bodies3, peak3) = runs[1], runs[3]
    assert peak1 == 1 and peak3 > 1, (peak1, peak3)
    assert report3 == report1
    assert files3 == files1
    assert bodies3 == bodies1, "the servers were asked different things"
    # one head's failures are reported as usual and cost nobody else their results
    heads = {h["head"]: h for h in report3["heads"]}
    assert heads["5.2"]["rejected"]["timeout"] == 1 and heads["5.2"]["accepted"] >= 1
    assert heads["5.3"]["rejected"]["http_error"] == 2
    assert heads["5.4"]["rejected"]["http_error"] == 1 and heads["5.4"]["rejected"]["no_code"] == 1
    assert all(heads[h]["accepted"] >= 1 for h in heads)
    assert {"first_or_previous.py", "first_or_previous_l5h1.py"} <= set(files3)  # the clash, resolved in head order
    for n in (1, 3):  # atomic writes: no temporary files, every cache entry whole
        assert not list((tmp_path / f"n{n}").rglob("*.tmp"))
        entries = list((tmp_path / f"n{n}" / "cache").rglob("*.json"))
        assert entries and all(isinstance(json.loads(e.read_text())["texts"], list) for e in entries)


# ---------------------------------------------------------------- (c) the budget still bounds the run

def test_token_cap_with_concurrency_stops_where_one_at_a_time_stops(tmp_path):
    with FakeOpenAIServer(ByHead({}, then=slow_ok(NOT_BETTER, delay_s=0.1))) as server:  # usage: 150 tokens each
        report = synth(server, tmp_path, tasks(2, 10), concurrency=3, max_tokens=300)
        assert len(server.requests) == 2
    assert report.stopped_by == "max_tokens"
    assert report.spend["prompt_tokens"] + report.spend["completion_tokens"] == 300


def test_token_cap_counts_the_reservations_of_requests_in_flight(tmp_path):
    """Replies that cost exactly what was reserved (the prompt counted locally + max_tokens per
    choice): with a cap of 1.5 reservations, two may be in flight at once, never three, and
    the spend ends under the cap plus one reservation."""
    counter = token_counter()

    def reservation(messages, n, max_tokens):
        return prompt_token_estimate(counter, messages) + n * max_tokens

    def respond(index, body):
        prompt = prompt_token_estimate(counter, body["messages"])
        return Reply(contents=[NOT_BETTER], delay_s=0.2,
                     usage={"prompt_tokens": prompt, "completion_tokens": body["n"] * body["max_tokens"]})

    heads = tasks(3, 10)
    largest = max(reservation(build_messages(h.summary, None), 1, 64) for h in heads)
    cap = largest * 3 // 2
    with FakeOpenAIServer(respond) as server:
        report = synth(server, tmp_path, heads, concurrency=3, max_tokens=cap, max_completion_tokens=64)
        assert len(server.requests) == 2
        assert server.peak_active <= 2
    spent = report.spend["prompt_tokens"] + report.spend["completion_tokens"]
    assert report.stopped_by == "max_tokens"
    assert cap <= spent < cap + largest


def test_request_cap_with_concurrency_is_never_exceeded(tmp_path):
    with FakeOpenAIServer(ByHead({}, then=slow_ok(NOT_BETTER, delay_s=0.1))) as server:
        report = synth(server, tmp_path, tasks(4, 10), concurrency=3, max_requests=5)
        assert len(server.requests) == 5
    assert report.stopped_by == "max_requests"
    assert report.spend["requests"] == sum(h.requests for h in report.heads) == 5


# ---------------------------------------------------------------- (d) bad values are refused

def test_concurrency_below_1_is_refused(tmp_path, capsys):
    with pytest.raises(SynthConfigError, match="concurrency must be an integer >= 1, got 0"):
        LLMSynthConfig(base_url="http://127.0.0.1:9/v1", model="m", concurrency=0).resolved()
    from attnc.cli import main

    code = main(["synth", "--llm", "--base-url", "http://127.0.0.1:9/v1", "--llm-model", "m",
                 "--model", str(tmp_path / "no-model"), "--corpus", str(tmp_path / "no-corpus.txt"),
                 "--out", str(tmp_path / "out"), "--concurrency", "0"])
    err = capsys.readouterr().err
    assert code == 2
    assert err == "attnc synth: error: --concurrency must be >= 1, got 0\n"
    assert not (tmp_path / "out").exists(), "work started before the option was checked"


def test_cli_passes_concurrency_to_the_run():
    from attnc.cli import build_parser
    from attnc.cli.synth_cmd import _llm_config

    argv = ["synth", "--llm", "--corpus", "c.txt", "--out", "out"]
    assert _llm_config(build_parser().parse_args(argv)).concurrency == 1
    assert _llm_config(build_parser().parse_args(argv + ["--concurrency", "3"])).concurrency == 3
