"""What the edge spends reading and writing a large request: a coding agent's chat request of about 190 KB (a long
conversation, a system prompt, tools), which the edge parses, and writes anew when it changes it (here: it asks a
stream for its usage, ``stream_options``) or translates it.

Times, in this one run and interleaved: the edge's parse (:func:`proxy_edge.client_input.parse_body`, orjson first)
against the exact path alone (the standard library, which the edge keeps for what orjson cannot read exactly), and
the edge's write (:mod:`proxy_edge.json_codec`, orjson) against ``json.dumps`` with the same output options; medians
of ``--rounds`` rounds. Each pair is checked to give the same result.

    python bench/request_encoding.py [--rounds 15] [--turns 100]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from proxy_edge.client_input import _parse_exactly, parse_body
from proxy_edge.json_codec import encode


def agent_request(turns: int) -> bytes:
    """A chat request as a coding agent sends it late in a session (text with some non-ASCII, tool calls)."""
    messages: list[dict[str, Any]] = [{"role": "system", "content": "You are a coding agent. " * 300}]
    for turn in range(turns):
        messages.append({"role": "user", "content": f"Step {turn}: fix the failing test in módulo_{turn}.py " * 20})
        messages.append({"role": "assistant", "content": None, "tool_calls": [{
            "id": f"call_{turn}", "type": "function",
            "function": {"name": "read_file", "arguments": json.dumps({"path": f"src/mod_{turn}.py"})}}]})
        messages.append({"role": "tool", "tool_call_id": f"call_{turn}", "content": "def f():\n    return 1\n" * 20})
    schema = {"type": "object", "properties": {"x": {"type": "string"}}}
    tools = [{"type": "function", "function": {"name": f"tool_{i}", "description": "Does a thing. " * 20,
                                               "parameters": schema}} for i in range(20)]
    body = {"model": "gpt-4.1", "messages": messages, "tools": tools, "stream": True, "temperature": 0.2}
    return json.dumps(body).encode()


def per_call_us(work: Callable[[], object], calls: int) -> float:
    started = time.perf_counter()
    for _ in range(calls):
        work()
    return (time.perf_counter() - started) / calls * 1e6


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--turns", type=int, default=100, help="conversation turns in the request")
    args = parser.parse_args()
    raw = agent_request(args.turns)
    data = parse_body(raw)
    assert data == _parse_exactly(raw), "the two parses differ"
    data["stream_options"] = {"include_usage": True}
    standard = json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode()
    assert json.loads(encode(data)) == json.loads(standard), "the two writes differ"
    calls = 20
    cases: dict[str, Callable[[], object]] = {
        "parse (edge: orjson)": lambda: parse_body(raw),
        "parse (json alone)": lambda: _parse_exactly(raw),
        "write (edge: orjson)": lambda: encode(data),
        "write (json.dumps)": lambda: json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode(),
    }
    times: dict[str, list[float]] = {name: [] for name in cases}
    for _ in range(args.rounds):
        for name, work in cases.items():
            times[name].append(per_call_us(work, calls))
    medians = {name: statistics.median(values) for name, values in times.items()}
    print(f"request of {len(raw) / 1024:.0f} KiB, medians of {args.rounds} rounds of {calls} calls")
    for name, value in medians.items():
        print(f"  {name:<24}{value:>9.0f} µs")
    print(f"  parse: json alone / edge {medians['parse (json alone)'] / medians['parse (edge: orjson)']:>7.1f}x")
    print(f"  write: json.dumps / edge {medians['write (json.dumps)'] / medians['write (edge: orjson)']:>7.1f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
