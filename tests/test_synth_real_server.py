"""`attnc synth --llm` against a real OpenAI-compatible server: `transformers serve` with the embedded SmolLM2.

The README's recipe, end to end: the server loads attnc's dequantised SmolLM2
checkpoint (`attnc.runtime.models.model_directory`) on 127.0.0.1 at a free
port; synthesis asks it for programs for head 16.0; every candidate is
validated before anything runs it; a second run is served from the reply cache.
Slow (a 135M model generating on CPU, minutes), so excluded by default:
`pytest -m slow tests/test_synth_real_server.py -s` (prints what the model wrote).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

import attnc.dsl
import attnc.runtime.models as models
from attnc.cli import main
from attnc.dsl.program import CheckedProgram
from attnc.synth.head_attention import HeadAttentionScorer

CORPUS = Path(__file__).resolve().parents[1] / "attnc" / "data" / "stories.txt"
#: Seconds the server may take to load the model and answer /health.
STARTUP_S = 300
#: Reply-level rejections: they never reach the validator (no source to validate).
NOT_SOURCES = ("no_code", "too_large", "http_error", "timeout")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def transformers_serve(directory: Path, port: int, log: Path):
    """`transformers serve DIR` on 127.0.0.1:port; yields the API root once /health answers."""
    executable = shutil.which("transformers", path=str(Path(sys.executable).parent)) or shutil.which("transformers")
    if executable is None:
        pytest.skip("the `transformers` command is not installed beside this Python")
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    with open(log, "w") as out:
        server = subprocess.Popen([executable, "serve", "--host", "127.0.0.1", "--port", str(port), "--device", "cpu",
                                   str(directory)], stdout=out, stderr=subprocess.STDOUT, env=env,
                                  start_new_session=True)
    try:
        deadline = time.monotonic() + STARTUP_S
        while True:
            if server.poll() is not None:
                raise AssertionError(f"transformers serve exited with {server.returncode}:\n{log.read_text()[-3000:]}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=5) as reply:
                    if reply.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise AssertionError(f"transformers serve not up after {STARTUP_S}s:\n{log.read_text()[-3000:]}")
            time.sleep(1.0)
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(timeout=20)


@pytest.mark.slow
@pytest.mark.realmodel
def test_synth_against_transformers_serve(tmp_path, monkeypatch, capsys):
    pytest.importorskip("fastapi", reason="transformers serve needs FastAPI and uvicorn: pip install -e '.[serve]'")
    pytest.importorskip("uvicorn", reason="transformers serve needs FastAPI and uvicorn: pip install -e '.[serve]'")
    try:
        directory = models.model_directory("smollm2-135m")
    except models.ModelNotFoundError as error:
        pytest.skip(f"SmolLM2 is not installed: {error}")
    assert json.loads((directory / "config.json").read_text())["architectures"] == ["LlamaForCausalLM"]

    validated: set[str] = set()
    parse_calls = []
    parse_program = attnc.dsl.parse_program

    def recording_parse(source, path="<string>", *args, **kwargs):
        parse_calls.append(source)
        program = parse_program(source, path, *args, **kwargs)
        validated.add(program.source)
        return program

    score = HeadAttentionScorer.score
    scored = []

    def checked_score(self, program, head):
        assert isinstance(program, CheckedProgram) and program.source in validated, "scored before validation"
        scored.append(program.name)
        return score(self, program, head)

    monkeypatch.setattr(attnc.dsl, "parse_program", recording_parse)
    monkeypatch.setattr(HeadAttentionScorer, "score", checked_score)
    monkeypatch.chdir(tmp_path)  # the reply cache (.attnc-cache/llm) goes here
    with transformers_serve(directory, free_port(), tmp_path / "serve.log") as base_url:
        argv = ["synth", "--llm", "--base-url", base_url, "--llm-model", str(directory), "--heads", "16.0",
                "--rounds", "1", "--max-requests", "4", "--corpus", str(CORPUS), "--window", "32",
                "--max-windows", "64", "--sample-windows", "16", "--completion-tokens", "384",
                "--request-timeout", "900", "--out", str(tmp_path / "out"), "--json"]
        started = time.monotonic()
        assert main(argv) == 0
        first_seconds = time.monotonic() - started
        first = json.loads(capsys.readouterr().out)
        calls_after_first = len(parse_calls)
        assert main(argv) == 0
        second = json.loads(capsys.readouterr().out)

    totals, spend = first["totals"], first["spend"]
    assert totals["candidates"] >= 1
    assert totals["candidates"] == totals["accepted"] + sum(totals["rejected"].values())
    assert totals["rejected"]["http_error"] == 0 and totals["rejected"]["timeout"] == 0, first["heads"][0]["messages"]
    sources = totals["candidates"] - sum(totals["rejected"][r] for r in NOT_SOURCES)
    assert calls_after_first >= sources, "every extracted source goes through the validator"
    assert 1 <= spend["requests"] <= 4 and spend["prompt_tokens"] > 0 and spend["completion_tokens"] > 0
    assert second["spend"]["requests"] == 0 and second["spend"]["cached_replies"] >= 1
    assert second["totals"]["candidates"] == totals["candidates"]
    for path in totals["files"]:
        assert attnc.dsl.load_program(path).name
    with capsys.disabled():
        print(f"\nreal server: {totals['candidates']} candidates, {totals['accepted']} accepted, rejected "
              f"{ {k: v for k, v in totals['rejected'].items() if v} }; {spend['requests']} requests, "
              f"{spend['prompt_tokens']}+{spend['completion_tokens']} tokens, {first_seconds:.0f}s; "
              f"re-run: {second['spend']['requests']} requests, {second['spend']['cached_replies']} cached replies")
        for message in first["heads"][0]["messages"]:
            print("  ", message[:240])
