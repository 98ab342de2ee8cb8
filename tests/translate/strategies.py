"""Hypothesis strategies: requests and answers of either API, within what translates without loss."""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

text = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), min_size=1, max_size=30)
names = st.from_regex(r"[a-z][a-z0-9_]{0,15}", fullmatch=True)
ids = st.from_regex(r"[A-Za-z0-9_-]{1,24}", fullmatch=True)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-10**6, 10**6) | st.floats(allow_nan=False, allow_infinity=False) | text,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(names, inner, max_size=3), max_leaves=8)
tool_input = st.dictionaries(names, json_values, max_size=4)
schema = st.fixed_dictionaries({"type": st.just("object"), "properties": st.dictionaries(
    names, st.sampled_from([{"type": "string"}, {"type": "integer"}, {"type": "boolean"}]), max_size=3)})
media_types = st.sampled_from(["image/png", "image/jpeg", "image/gif", "image/webp"])
base64_data = st.from_regex(r"[A-Za-z0-9+/]{4,40}={0,2}", fullmatch=True)
urls = st.builds(lambda host, path: f"https://{host}.example/{path}.png", names, names)
temperature = st.floats(0, 1, allow_nan=False)


# --- Anthropic requests ---------------------------------------------------------------------------------------

a_text = st.builds(lambda t: {"type": "text", "text": t}, text)
a_image = st.one_of(
    st.builds(lambda m, d: {"type": "image", "source": {"type": "base64", "media_type": m, "data": d}},
              media_types, base64_data),
    st.builds(lambda u: {"type": "image", "source": {"type": "url", "url": u}}, urls))
a_tool_use = st.builds(lambda i, n, v: {"type": "tool_use", "id": i, "name": n, "input": v}, ids, names, tool_input)
a_tool_result = st.builds(
    lambda i, c: {"type": "tool_result", "tool_use_id": i, "content": c}, ids,
    text | st.lists(a_text, min_size=1, max_size=2))


@st.composite
def a_user(draw: st.DrawFn, after_tool_use: bool) -> dict[str, Any]:
    if draw(st.booleans()):
        return {"role": "user", "content": draw(text)}
    results = draw(st.lists(a_tool_result, min_size=1, max_size=2)) if after_tool_use else []
    parts = draw(st.lists(a_text | a_image, min_size=0 if results else 1, max_size=3))
    return {"role": "user", "content": results + parts}


@st.composite
def a_assistant(draw: st.DrawFn) -> dict[str, Any]:
    if draw(st.booleans()):
        return {"role": "assistant", "content": draw(text)}
    lead = draw(st.lists(a_text, max_size=1))
    return {"role": "assistant", "content": lead + draw(st.lists(a_tool_use, min_size=0 if lead else 1, max_size=2))}


@st.composite
def anthropic_requests(draw: st.DrawFn) -> dict[str, Any]:
    messages = [draw(a_user(False))]
    for _ in range(draw(st.integers(0, 3))):
        assistant = draw(a_assistant())
        content = assistant["content"]
        used_tools = isinstance(content, list) and any(b["type"] == "tool_use" for b in content)
        messages += [assistant, draw(a_user(used_tools))]
    body: dict[str, Any] = {"model": draw(names), "max_tokens": draw(st.integers(1, 100_000)), "messages": messages}
    optional = {
        "system": text | st.lists(a_text, min_size=1, max_size=3),
        "temperature": temperature, "top_p": temperature, "stream": st.just(True),
        "stop_sequences": st.lists(text, min_size=1, max_size=4),
        "metadata": st.builds(lambda u: {"user_id": u}, ids),
        "tools": st.lists(st.builds(lambda n, d, s: {"name": n, **({"description": d} if d else {}), "input_schema": s},
                                    names, st.none() | text, schema), min_size=1, max_size=3),
        "tool_choice": st.builds(lambda c, p: {**c, **({"disable_parallel_tool_use": True} if p else {})},
                                 st.sampled_from([{"type": "auto"}, {"type": "any"}, {"type": "none"}])
                                 | st.builds(lambda n: {"type": "tool", "name": n}, names), st.booleans()),
    }
    for key, strategy in optional.items():
        if draw(st.booleans()):
            body[key] = draw(strategy)
    return body


# --- OpenAI requests ------------------------------------------------------------------------------------------

o_text = st.builds(lambda t: {"type": "text", "text": t}, text)
o_image = st.one_of(st.builds(lambda m, d: {"type": "image_url", "image_url": {"url": f"data:{m};base64,{d}"}},
                              media_types, base64_data),
                    st.builds(lambda u: {"type": "image_url", "image_url": {"url": u}}, urls))
o_call = st.builds(lambda i, n, v: {"id": i, "type": "function", "function": {"name": n, "arguments": v}},
                   ids, names, tool_input.map(lambda v: __import__("json").dumps(v)))


@st.composite
def openai_requests(draw: st.DrawFn) -> dict[str, Any]:
    messages: list[dict[str, Any]] = [
        {"role": draw(st.sampled_from(["system", "developer"])), "content": draw(text | st.lists(o_text, min_size=1,
                                                                                                  max_size=2))}
        for _ in range(draw(st.integers(0, 2)))]
    messages.append({"role": "user", "content": draw(text | st.lists(o_text | o_image, min_size=1, max_size=3))})
    for _ in range(draw(st.integers(0, 3))):
        calls = draw(st.lists(o_call, max_size=2))
        content = draw(text | st.none()) if calls else draw(text)
        messages.append({"role": "assistant", "content": content, **({"tool_calls": calls} if calls else {})})
        for call in calls:
            messages.append({"role": "tool", "tool_call_id": call["id"],
                             "content": draw(text | st.lists(o_text, min_size=1, max_size=2))})
        if not calls or draw(st.booleans()):
            messages.append({"role": "user", "content": draw(text | st.lists(o_text | o_image, min_size=1,
                                                                               max_size=2))})
    body: dict[str, Any] = {"model": draw(names), "messages": messages,
                            draw(st.sampled_from(["max_tokens", "max_completion_tokens"])): draw(st.integers(1, 10**5))}
    optional = {
        "temperature": temperature, "top_p": temperature, "stream": st.just(True), "user": ids,
        "stop": text | st.lists(text, min_size=1, max_size=4),
        "tools": st.lists(st.builds(lambda n, d, s: {"type": "function", "function": {
            "name": n, **({"description": d} if d else {}), "parameters": s}}, names, st.none() | text, schema),
            min_size=1, max_size=3),
        "tool_choice": st.sampled_from(["auto", "none", "required"])
        | st.builds(lambda n: {"type": "function", "function": {"name": n}}, names),
    }
    for key, strategy in optional.items():
        if draw(st.booleans()):
            body[key] = draw(strategy)
    if "tool_choice" in body and draw(st.booleans()):
        body["parallel_tool_calls"] = False
    return body


# --- Answers ----------------------------------------------------------------------------------------------------

@st.composite
def anthropic_messages(draw: st.DrawFn) -> dict[str, Any]:
    content = draw(st.lists(a_text, max_size=1)) + draw(st.lists(a_tool_use, max_size=3))
    stop = "tool_use" if any(b["type"] == "tool_use" for b in content) else draw(
        st.sampled_from(["end_turn", "max_tokens", "refusal"]))
    return {"id": f"msg_{draw(ids)}", "type": "message", "role": "assistant", "model": draw(names),
            "content": content, "stop_reason": stop, "stop_sequence": None,
            "usage": {"input_tokens": draw(st.integers(0, 10**6)), "output_tokens": draw(st.integers(1, 10**5)),
                      "cache_creation_input_tokens": 0, "cache_read_input_tokens": draw(st.integers(0, 10**5))}}


@st.composite
def openai_completions(draw: st.DrawFn) -> dict[str, Any]:
    calls = draw(st.lists(o_call, max_size=3))
    finish = "tool_calls" if calls else draw(st.sampled_from(["stop", "length", "content_filter"]))
    message: dict[str, Any] = {"role": "assistant", "content": draw(text | st.none()) if calls else draw(text),
                               "refusal": None}
    if calls:
        message["tool_calls"] = calls
    prompt, cached, completion = draw(st.integers(0, 10**6)), draw(st.integers(0, 10**5)), draw(st.integers(0, 10**5))
    return {"id": f"chatcmpl-{draw(ids)}", "object": "chat.completion", "created": 1700000000, "model": draw(names),
            "choices": [{"index": 0, "message": message, "finish_reason": finish, "logprobs": None}],
            "usage": {"prompt_tokens": prompt + cached, "completion_tokens": completion,
                      "total_tokens": prompt + cached + completion, "prompt_tokens_details": {"cached_tokens": cached}}}
