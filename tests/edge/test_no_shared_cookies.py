"""The upstream's cookies stay out of the pool. The CDN in front of the real APIs sets a cookie on every answer; an
HTTP client that kept it would send one account's cookie with every account's later requests, and so link the
accounts for the provider. The pool's upstream is named by host name (``localhost``), for which an HTTP client's
cookie jar keeps cookies; what reaches the fake upstream is counted there."""

from __future__ import annotations

from fake_upstream import FakeUpstream
from tests.edge.conftest import CHAT, StackFactory


async def test_no_upstream_request_carries_a_cookie_an_answer_set(make_stack: StackFactory,
                                                                  fake_upstream: FakeUpstream) -> None:
    by_name = fake_upstream.url.replace("127.0.0.1", "localhost")
    stack = await make_stack(pools=f"""
        named:
          base_url: {by_name}/v1
          strategy: round_robin
          accounts:
            - {{name: one, key: sk-cookie-one-0001}}
            - {{name: two, key: sk-cookie-two-0002}}
        """, models="cookie-*: named")
    client = stack.openai()
    for _ in range(3):
        answer = await client.chat.completions.create(model="cookie-model", messages=CHAT)  # type: ignore[arg-type]
        assert answer.choices[0].message.content
    async with client.chat.completions.with_streaming_response.create(
            model="cookie-model", messages=CHAT, stream=True) as streamed:  # type: ignore[arg-type]
        assert "set-cookie" not in streamed.headers  # the client is not handed the upstream's cookie either
        async for _line in streamed.iter_lines():
            pass
    assert await client.chat.completions.create(model="cookie-model", messages=CHAT)  # type: ignore[arg-type]
    requests = fake_upstream.stats.requests
    assert requests["sk-cookie-one-0001"] >= 2 and requests["sk-cookie-two-0002"] >= 2  # both accounts served
    assert fake_upstream.stats.with_cookie == 0
