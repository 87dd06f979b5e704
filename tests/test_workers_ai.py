"""The Workers AI client against the loopback fake: streaming, errors, retries, timeouts, cancellation."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest

from edgechat_tui.backends.local.workers_ai import Completion, WorkersAIClient
from edgechat_tui.core.errors import (
    AccountNotFound,
    AuthError,
    BadRequest,
    ConfigError,
    ConnectionFailed,
    ContextTooLong,
    ModelNotFound,
    ProtocolError,
    QuotaExceeded,
    RateLimited,
    RequestTimeout,
    ServerError,
)
from edgechat_tui.core.messages import Retrying, TextDelta, Usage
from tests.fakes.workers_ai import (
    DEFAULT_MODEL,
    CutStream,
    ErrorReply,
    FakeWorkersAI,
    Garbage,
    HugeBody,
    NoDone,
    Reply,
    Stall,
    capacity_error,
    html_error_page,
    invalid_utf8,
    quota_error,
    server_error,
)

HELLO = [{"role": "user", "content": "hello"}]


class RecordingSleep:
    """Stands in for asyncio.sleep so retries are instant; remembers each wait."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


@pytest.fixture
def fake():
    with FakeWorkersAI() as server:
        yield server


@pytest.fixture
def sleep():
    return RecordingSleep()


@pytest.fixture
async def client(fake, sleep):
    async with make_client(fake, sleep) as made:
        yield made


def make_client(fake: FakeWorkersAI, sleep: RecordingSleep | None = None, **kw) -> WorkersAIClient:
    kw.setdefault("api_token", fake.token)
    kw.setdefault("account_id", fake.account_id)
    return WorkersAIClient(api_base=fake.api_base, sleep=sleep or RecordingSleep(), **kw)


async def collect(client: WorkersAIClient, messages=HELLO, **kw) -> list:
    kw.setdefault("model", DEFAULT_MODEL)
    kw.setdefault("max_tokens", 256)
    kw.setdefault("temperature", None)
    kw.setdefault("session_id", None)
    async with contextlib.aclosing(client.chat(messages, **kw)) as events:
        return [event async for event in events]


def chat(client: WorkersAIClient):
    return client.chat(HELLO, model=DEFAULT_MODEL, max_tokens=50, temperature=None, session_id=None)


def texts(events: list) -> str:
    return "".join(e.text for e in events if isinstance(e, TextDelta))


# --- successful replies ---------------------------------------------------------------------------


async def test_streamed_reply_arrives_in_pieces_and_ends_with_a_completion(fake, client):
    fake.enqueue(Reply("The quick brown fox", chunk_size=None))
    events = await collect(client, max_tokens=2048, temperature=0.3, session_id="abc123")
    assert [e.text for e in events if isinstance(e, TextDelta)] == ["The", " quick", " brown", " fox"]
    done = events[-1]
    assert isinstance(done, Completion) and done.text == "The quick brown fox"
    assert done.usage is not None and done.usage.completion_tokens == 5
    request = fake.run_requests[0]
    assert request.path.endswith(f"/accounts/{fake.account_id}/ai/run/{DEFAULT_MODEL}")
    assert request.headers["authorization"] == f"Bearer {fake.token}"
    assert request.headers["x-session-affinity"] == "abc123"
    assert request.body == {"messages": HELLO, "max_tokens": 2048, "stream": True, "temperature": 0.3}


async def test_temperature_none_and_no_session_are_left_out(fake, client):
    await collect(client)
    request = fake.run_requests[0]
    assert "temperature" not in request.body and "x-session-affinity" not in request.headers


async def test_whole_reply_without_streaming(fake, client):
    fake.enqueue(Reply("All at once.", usage={"prompt_tokens": 3, "completion_tokens": 4, "total_tokens": 7}))
    events = await collect(client, stream=False)
    assert events == [TextDelta("All at once."), Completion("All at once.", Usage(3, 4, 7))]
    assert fake.run_requests[0].body["stream"] is False


@pytest.mark.parametrize("stream", [True, False])
async def test_openai_style_choices(fake, client, stream):
    fake.enqueue(Reply("chosen words here", chunk_size=5, style="choices"))
    events = await collect(client, stream=stream)
    assert texts(events) == "chosen words here" and events[-1].text == "chosen words here"
    assert events[-1].usage is not None


@pytest.mark.parametrize("stream", [True, False])
async def test_numeric_responses_become_text(fake, client, stream):
    fake.enqueue(Reply("1234", chunk_size=2, style="number"))
    events = await collect(client, stream=stream)
    assert events[-1].text == "1234"


async def test_usage_is_optional(fake, client):
    fake.enqueue(Reply("no counts", usage=None, padding=False))
    events = await collect(client)
    assert events[-1] == Completion("no counts", None)


async def test_a_slow_stream_is_not_a_timeout(fake, sleep):
    fake.enqueue(Reply("one two three four five six", delay=0.05))
    async with make_client(fake, sleep, read_timeout=2.0) as slow_client:
        events = await collect(slow_client)
    assert sum(isinstance(e, TextDelta) for e in events) == 6
    assert events[-1].text == "one two three four five six"


async def test_conversation_memory_reaches_the_model(fake, client):
    history = [{"role": "system", "content": "be brief"}, {"role": "user", "content": "I am Ada"},
               {"role": "assistant", "content": "Hello Ada"}, {"role": "user", "content": "Who am I?"}]
    events = await collect(client, history)
    assert "I am Ada" in events[-1].text and "Who am I?" in events[-1].text


async def test_the_connection_is_reused_between_requests(fake, client):
    await collect(client)
    await collect(client)
    assert len(fake.run_requests) == 2


# --- errors that are not retried ------------------------------------------------------------------


async def test_wrong_token_says_which_permissions_are_needed(fake, sleep):
    async with make_client(fake, sleep, api_token="wrong-token") as bad:
        with pytest.raises(AuthError) as caught:
            await collect(bad)
    assert caught.value.status == 401 and caught.value.code == 10000
    assert "Workers AI Read" in str(caught.value) and "Workers AI Edit" in str(caught.value)
    assert len(fake.run_requests) == 1 and sleep.waits == []


async def test_token_without_permission(fake, client):
    fake.token_has_permission = False
    with pytest.raises(AuthError) as caught:
        await collect(client)
    assert caught.value.status == 403 and "Workers AI Edit" in caught.value.hint


async def test_wrong_account_id(fake, sleep):
    async with make_client(fake, sleep, account_id="f" * 32) as bad:
        with pytest.raises(AccountNotFound) as caught:
            await collect(bad)
    assert "f" * 32 in caught.value.message and "account_id" in caught.value.hint


@pytest.mark.parametrize(("model", "code"), [("@cf/meta/no-such-model", 5007), ("llama", 3042)])
async def test_unknown_model_names_the_setting(fake, client, model, code):
    with pytest.raises(ModelNotFound) as caught:
        await collect(client, model=model)
    assert caught.value.code == code and model in caught.value.message
    assert "edgechat config set model" in caught.value.hint


async def test_context_window_overflow(fake, client):
    fake.context_window = 2000
    with pytest.raises(ContextTooLong) as caught:
        await collect(client, max_tokens=1999)
    assert caught.value.status == 413 and caught.value.code == 5021
    assert "(2000)" in caught.value.message  # the service's limit, quoted
    assert len(fake.run_requests) == 1


async def test_context_overflow_in_the_newer_wording(fake, client):
    wording = ("AiError: Bad input: Requested token count exceeds the model's maximum context length "
               "of 8192 tokens")
    fake.enqueue(ErrorReply(400, 5006, wording))
    with pytest.raises(ContextTooLong):
        await collect(client)


@pytest.mark.parametrize("reply", [quota_error(), ErrorReply(429, 3036, "daily limit reached")])
async def test_quota_used_up_is_not_retried(fake, client, sleep, reply):
    fake.enqueue(reply, Reply("should not be asked for"))
    with pytest.raises(QuotaExceeded) as caught:
        await collect(client)
    assert "00:00 UTC" in caught.value.hint
    assert len(fake.run_requests) == 1 and sleep.waits == []


async def test_bad_input_is_a_bad_request(fake, client):
    with pytest.raises(BadRequest) as caught:
        await collect(client, [{"role": "wizard", "content": "hi"}])
    assert caught.value.code == 5006 and "Bad input" in caught.value.message
    assert len(fake.run_requests) == 1


async def test_model_id_that_would_leave_the_run_path_is_refused_unsent(fake, client):
    with pytest.raises(ConfigError):
        await collect(client, model="@cf/../../../user/tokens/verify")
    with pytest.raises(ConfigError):
        await collect(client, model="@cf/meta/x?y=1")
    assert fake.requests == []


# --- retries --------------------------------------------------------------------------------------


async def test_capacity_is_retried_after_retry_after(fake, client, sleep):
    fake.enqueue(capacity_error(retry_after=3), Reply("made it"))
    events = await collect(client)
    retry = events[0]
    assert isinstance(retry, Retrying)
    assert (retry.attempt, retry.max_attempts, retry.wait) == (1, 4, 3.0)
    assert "capacity" in retry.reason
    assert sleep.waits == [3.0]
    assert events[-1].text == "made it" and len(fake.run_requests) == 2


async def test_retry_after_as_a_date_and_capped(fake, client, sleep):
    soon = format_datetime(datetime.now(UTC) + timedelta(seconds=20), usegmt=True)
    fake.enqueue(capacity_error(retry_after=soon), capacity_error(retry_after=100_000), Reply("ok"))
    await collect(client)
    assert 15 <= sleep.waits[0] <= 20
    assert sleep.waits[1] == 60.0


@pytest.mark.parametrize("reply", [server_error(500), server_error(503), ErrorReply(429, None, "slow down"),
                                   html_error_page(502), ErrorReply(408, 3007, "timeout")])
async def test_transient_failures_are_retried_with_growing_jittered_waits(fake, client, sleep, reply):
    fake.enqueue(reply, reply, reply, Reply("finally"))
    events = await collect(client)
    retries = [e for e in events if isinstance(e, Retrying)]
    assert [r.attempt for r in retries] == [1, 2, 3]
    assert all(r.max_attempts == 4 for r in retries)
    assert [r.wait for r in retries] == sleep.waits
    for attempt, wait in enumerate(sleep.waits, start=1):
        assert 0 < wait <= 2 ** (attempt - 1)
    assert events[-1].text == "finally"


async def test_retries_stop_after_max_retries(fake, sleep):
    fake.enqueue(*[server_error(500)] * 5)
    async with make_client(fake, sleep, max_retries=2) as few:
        with pytest.raises(ServerError) as caught:
            await collect(few)
    assert caught.value.status == 500
    assert len(fake.run_requests) == 3 and len(sleep.waits) == 2


async def test_no_retries_when_max_retries_is_zero(fake, sleep):
    fake.enqueue(capacity_error())
    async with make_client(fake, sleep, max_retries=0) as once:
        with pytest.raises(RateLimited):
            await collect(once)
    assert sleep.waits == []


async def test_an_error_event_before_any_text_is_retried(fake, client, sleep):
    event = b'data: {"errors":[{"code":3040,"message":"Capacity temporarily exceeded"}]}\n\n'
    fake.enqueue(Garbage(raw=event, after_chunks=0), Reply("second time lucky"))
    events = await collect(client)
    assert isinstance(events[0], Retrying) and events[-1].text == "second time lucky"


async def test_connection_refused_is_retried_then_reported(sleep):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    async with WorkersAIClient(account_id="a" * 32, api_token="t", api_base=f"http://127.0.0.1:{port}/client/v4",
                               max_retries=2, sleep=sleep) as nowhere:
        with pytest.raises(ConnectionFailed) as caught:
            await collect(nowhere)
    assert caught.value.reached_server is False and "127.0.0.1" in caught.value.message
    assert len(sleep.waits) == 2


async def test_a_server_that_closes_without_answering(fake, client, sleep):
    from tests.fakes.workers_ai import Disconnect

    fake.enqueue(Disconnect(), Reply("there you are"))
    events = await collect(client)
    assert isinstance(events[0], Retrying) and events[-1].text == "there you are"


# --- broken streams -------------------------------------------------------------------------------


async def test_a_stream_cut_after_text_fails_and_is_not_retried(fake, client, sleep):
    fake.enqueue(CutStream("one two three four five", after_chunks=2), Reply("must not be fetched"))
    seen: list = []
    with pytest.raises(ConnectionFailed) as caught:
        async with contextlib.aclosing(chat(client)) as events:
            async for event in events:
                seen.append(event)
    assert texts(seen) == "one two" and caught.value.reached_server is True
    assert len(fake.run_requests) == 1 and sleep.waits == []


async def test_a_stream_cut_inside_an_event(fake, client):
    fake.enqueue(CutStream("alpha beta gamma", after_chunks=1, partial=b'data: {"respo'))
    with pytest.raises(ConnectionFailed):
        await collect(client)


async def test_a_stream_cut_before_any_text_is_retried(fake, client):
    fake.enqueue(CutStream("x y", after_chunks=0), Reply("whole"))
    events = await collect(client)
    assert isinstance(events[0], Retrying) and events[-1].text == "whole"


async def test_a_stream_without_done_is_not_a_short_reply(fake, client):
    fake.enqueue(NoDone("looks complete but is not"))
    with pytest.raises(ProtocolError, match="ended before"):
        await collect(client)


@pytest.mark.parametrize("garbage", [
    Garbage(),
    Garbage(raw=b"data: [1, 2, 3]\n\n"),
    Garbage(raw=b'data: {"response": {"nested": true}}\n\n'),
    invalid_utf8(),
])
async def test_malformed_stream_data_is_an_error(fake, client, garbage):
    fake.enqueue(garbage)
    with pytest.raises(ProtocolError) as caught:
        await collect(client)
    assert "\x1b" not in str(caught.value)


async def test_a_stall_past_the_read_timeout(fake, sleep):
    fake.enqueue(Stall(seconds=30, after_chunks=1, text="first then nothing"))
    seen: list = []
    async with make_client(fake, sleep, read_timeout=0.3) as impatient:
        with pytest.raises(RequestTimeout) as caught:
            async with contextlib.aclosing(chat(impatient)) as events:
                async for event in events:
                    seen.append(event)
    assert texts(seen) == "first" and "middle of the reply" in caught.value.message
    assert sleep.waits == []  # text had arrived: no retry
    assert fake.run_requests[0].closed_early.wait(5)


async def test_no_answer_before_the_read_timeout_is_retried(fake, sleep):
    fake.enqueue(Stall(seconds=30, before_headers=True), Reply("on time"))
    async with make_client(fake, sleep, read_timeout=0.3) as impatient:
        events = await collect(impatient)
    assert isinstance(events[0], Retrying) and events[-1].text == "on time"


# --- answers that are not the API -----------------------------------------------------------------


async def test_html_error_page_is_quoted_briefly_and_cleanly(fake, sleep):
    fake.enqueue(html_error_page(502))
    async with make_client(fake, sleep, max_retries=0) as once:
        with pytest.raises(ServerError) as caught:
            await collect(once)
    message = caught.value.message
    assert "502 Bad Gateway" in message and "<" not in message and len(message) < 250


@pytest.mark.parametrize("status", [200, 400])
async def test_non_json_answers_are_protocol_errors(fake, client, status):
    page = "<html><body>Welcome to nginx!</body></html>"
    fake.enqueue(ErrorReply(status, body=page, content_type="text/html"))
    with pytest.raises(ProtocolError) as caught:
        await collect(client, stream=False)
    assert "Welcome to nginx!" in caught.value.message


async def test_a_50_mb_error_body_is_not_read_whole(fake, sleep):
    fake.enqueue(HugeBody(size=50 * 1024 * 1024, status=500))
    async with make_client(fake, sleep, max_retries=0) as once:
        with pytest.raises(ServerError) as caught:
            await collect(once)
    assert "more than 1 MiB" in caught.value.message
    request = fake.run_requests[0]
    assert request.finished.wait(10) and request.closed_early.is_set()  # the fake could not send it all


async def test_server_text_is_sanitised_and_shortened(fake, client):
    hostile = "AiError: Bad input: \x1b]0;owned\x07\x1b[31mred\x1b[0m " + "x" * 5000
    fake.enqueue(ErrorReply(400, 5006, hostile))
    with pytest.raises(BadRequest) as caught:
        await collect(client)
    text = str(caught.value)
    assert "\x1b" not in text and "\x07" not in text and "owned" not in text and len(text) < 600


# --- cancellation ---------------------------------------------------------------------------------


async def test_closing_the_iterator_mid_stream_closes_the_connection(fake, client):
    fake.enqueue(Stall(seconds=30, after_chunks=1, text="first then a long pause"))
    events = chat(client)
    assert await anext(events) == TextDelta("first")
    await events.aclose()
    request = fake.run_requests[0]
    # The fake is stalled for 30 s: it only finishes now because it saw the connection close.
    assert await asyncio.to_thread(request.finished.wait, 10)
    assert request.closed_early.is_set()


async def test_cancelling_the_task_mid_stream_closes_the_connection(fake, client):
    fake.enqueue(Stall(seconds=30, after_chunks=1, text="first then a long pause"))
    first = asyncio.Event()

    async def consume() -> None:
        async with contextlib.aclosing(chat(client)) as events:
            async for _ in events:
                first.set()

    task = asyncio.create_task(consume())
    await asyncio.wait_for(first.wait(), 10)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    request = fake.run_requests[0]
    assert await asyncio.to_thread(request.finished.wait, 10)
    assert request.closed_early.is_set()


# --- the token never leaks ------------------------------------------------------------------------


async def test_the_token_appears_in_no_error_or_repr(fake, sleep):
    echoed = ErrorReply(400, 5006, f"AiError: Bad input: header was Bearer {fake.token}")
    replies = [ErrorReply(401, 10000, "Authentication error"), quota_error(), capacity_error(),
               server_error(), html_error_page(), echoed, NoDone(), Garbage(), CutStream(after_chunks=0),
               invalid_utf8(), HugeBody(size=3 * 1024 * 1024), ErrorReply(200, body=f"<p>{fake.token}</p>")]
    outputs: list[str] = []
    async with make_client(fake, sleep, max_retries=1) as leaky:
        outputs.append(repr(leaky))
        for reply in replies:
            fake.clear_queue()
            fake.enqueue(reply, reply)
            try:
                stream = not isinstance(reply, ErrorReply) or reply.status != 200
                for event in await collect(leaky, stream=stream):
                    outputs.append(repr(event))
            except Exception as error:  # every failure is examined, whatever its type
                outputs += [str(error), repr(error), str(getattr(error, "hint", "")), repr(error.__cause__),
                            repr(error.__context__)]
        fake.clear_queue()
        with pytest.raises(AccountNotFound) as caught:
            fake.enqueue(ErrorReply(400, 7003, f"Could not route to {fake.token}"))
            await collect(leaky)
        outputs.append(str(caught.value))
    assert len(outputs) > 20
    for output in outputs:
        assert fake.token not in output
    assert any("[redacted]" in output for output in outputs)


# --- token verification ---------------------------------------------------------------------------


async def test_verify_token(fake, client):
    await client.verify_token()
    assert fake.requests[-1].path == "/client/v4/user/tokens/verify"


async def test_verify_an_account_owned_token(fake, client):
    fake.token_is_account_owned = True
    await client.verify_token()
    assert fake.requests[-1].path == f"/client/v4/accounts/{fake.account_id}/tokens/verify"


async def test_verify_rejects_a_wrong_token(fake, sleep):
    async with make_client(fake, sleep, api_token="not-the-token") as bad:
        with pytest.raises(AuthError) as caught:
            await bad.verify_token()
    assert "Workers AI Read" in caught.value.hint and "not-the-token" not in str(caught.value)


async def test_verify_reports_a_disabled_token(fake, client):
    fake.token_status = "disabled"
    with pytest.raises(AuthError, match="disabled"):
        await client.verify_token()


def test_gateway_base_takes_the_model_directly():
    base = "https://gateway.ai.cloudflare.com/v1/acc/my-gw/workers-ai"
    gateway = WorkersAIClient(account_id="acc", api_token="t", api_base=base + "/")
    assert gateway.run_url(DEFAULT_MODEL) == f"{base}/{DEFAULT_MODEL}"


def test_tls_settings_are_built_once_and_plain_http_loads_no_ca_bundle():
    from edgechat_tui.http.client import tls_context as _tls_context

    assert _tls_context("https://api.cloudflare.com/client/v4") is _tls_context("https://example.test/x")
    assert _tls_context("http://127.0.0.1:1/client/v4").cert_store_stats()["x509_ca"] == 0


async def test_a_stream_request_answered_with_whole_json(fake, client):
    """Some models cannot stream on /ai/run and answer a stream request with the JSON envelope."""
    envelope = '{"result": {"response": "whole answer", "usage": {"total_tokens": 9}}, "success": true}'
    fake.enqueue(ErrorReply(200, body=envelope, content_type="application/json"))
    events = await collect(client, stream=True)
    assert events == [TextDelta("whole answer"), Completion("whole answer", Usage(total_tokens=9))]


async def test_an_error_envelope_with_status_200_is_still_an_error(fake, client):
    envelope = '{"result": null, "success": false, "errors": [{"code": 5007, "message": "No such model"}]}'
    fake.enqueue(ErrorReply(200, body=envelope, content_type="application/json"))
    with pytest.raises(ModelNotFound):
        await collect(client, stream=False)
