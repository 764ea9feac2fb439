"""The server over memory streams: framing, headers, events, errors and keep-alive."""

from __future__ import annotations

import logging

import pytest
import trio

import trio_nodehttp as http

from .conftest import get, hello, memory_server


async def test_S_basic_response_headers_in_node_order() -> None:
    async def handler(req: http.IncomingMessage, res: http.ServerResponse) -> None:
        res.set_header("X-Custom", "1")
        await res.end("héllo")

    async with memory_server(handler) as (_, connect):
        client = connect()
        await client.send(get())
        res = await client.read_response()
    assert res.status == 200 and res.reason == "OK"
    assert res.names == ["X-Custom", "Date", "Connection", "Keep-Alive", "Content-Length"]
    assert res.header("Connection") == "keep-alive"
    assert res.header("Keep-Alive") == "timeout=5"
    assert res.header("Content-Length") == str(len("héllo".encode()))
    assert res.body == "héllo".encode()


async def test_keep_alive_two_requests_one_connection() -> None:
    async with memory_server(hello) as (server, connect):
        client = connect()
        for _ in range(2):
            await client.send(get())
            assert (await client.read_response()).body == b"hello"
        assert server.statistics().requests_served == 2
        assert server.statistics().connections_open == 1


async def test_S40_pipelined_requests_answered_in_order() -> None:
    async def handler(req: http.IncomingMessage, res: http.ServerResponse) -> None:
        await res.end(req.url or "")

    async with memory_server(handler) as (_, connect):
        client = connect()
        await client.send(get("/1") + get("/2") + get("/3"))
        bodies = [(await client.read_response()).body for _ in range(3)]
    assert bodies == [b"/1", b"/2", b"/3"]


async def test_R24_http10_end_with_data_is_close_delimited() -> None:
    async with memory_server(hello) as (_, connect):
        client = connect()
        await client.send(get(version="1.0"))
        raw = await client.read_until_closed()
    head, _, body = raw.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 OK\r\n")
    assert b"Connection: close" in head
    assert b"Content-Length" not in head and b"Transfer-Encoding" not in head
    assert body == b"hello"


async def test_http10_keep_alive_with_user_content_length_persists() -> None:
    async def handler(req: http.IncomingMessage, res: http.ServerResponse) -> None:
        res.set_header("Content-Length", 2)
        await res.end(b"ok")

    async with memory_server(handler) as (_, connect):
        client = connect()
        await client.send(get("/", "Connection: keep-alive", version="1.0"))
        first = await client.read_response()
        await client.send(get("/", "Connection: keep-alive", version="1.0"))
        second = await client.read_response()
    assert first.header("Connection") == "keep-alive" and second.body == b"ok"


@pytest.mark.parametrize(
    ("calls", "framing"),
    [
        ("end", ("Content-Length", "0")),
        ("end-data", ("Content-Length", "5")),
        ("write-end", ("Transfer-Encoding", "chunked")),
        ("head-end-data", ("Transfer-Encoding", "chunked")),
    ],
)
async def test_R25_framing_choices(calls: str, framing: tuple[str, str]) -> None:
    async def handler(req: http.IncomingMessage, res: http.ServerResponse) -> None:
        if calls == "end":
            await res.end()
        elif calls == "end-data":
            await res.end(b"hello")
        elif calls == "write-end":
            await res.write(b"hel")
            await res.end(b"lo")
        else:
            res.write_head(200)
            await res.end(b"hello")

    async with memory_server(handler) as (_, connect):
        client = connect()
        await client.send(get())
        res = await client.read_response()
    assert res.header(framing[0]) == framing[1]
    assert res.body == (b"" if calls == "end" else b"hello")


async def test_R27_head_response_has_no_body_and_no_framing() -> None:
    async with memory_server(hello) as (_, connect):
        client = connect()
        await client.send(b"HEAD / HTTP/1.1\r\nHost: t\r\n\r\n" + get())
        head = await client.read_head_bytes()
        assert b"Content-Length" not in head and b"Transfer-Encoding" not in head
        # The connection stays usable: the next response follows at once.
        assert (await client.read_response()).body == b"hello"


@pytest.mark.parametrize("status", [204, 304])
async def test_R27_no_body_statuses(status: int) -> None:
    async def handler(req: http.IncomingMessage, res: http.ServerResponse) -> None:
        res.status_code = status
        await res.end(b"ignored")

    async with memory_server(handler) as (_, connect):
        client = connect()
        await client.send(get() + get())
        head = await client.read_head_bytes()
        assert head.startswith(f"HTTP/1.1 {status} ".encode())
        assert b"Content-Length" not in head and b"Transfer-Encoding" not in head
        assert (await client.read_head_bytes()).startswith(f"HTTP/1.1 {status}".encode())


async def test_R26_user_chunked_on_304_sends_no_zero_chunk_and_closes() -> None:
    async def handler(req: http.IncomingMessage, res: http.ServerResponse) -> None:
        res.set_header("Transfer-Encoding", "chunked")
        res.write_head(304)
        await res.end()

    async with memory_server(handler) as (_, connect):
        client = connect()
        await client.send(get())
        raw = await client.read_until_closed()
    assert raw.endswith(b"\r\n\r\n") and b"0\r\n\r\n" not in raw
    assert b"Connection: close" in raw


async def test_reject_non_standard_body_writes() -> None:
    errors: list[BaseException] = []

    async def handler(req: http.IncomingMessage, res: http.ServerResponse) -> None:
        try:
            await res.write(b"x")
        except http.BodyNotAllowedError as exc:
            errors.append(exc)
        await res.end()

    async with memory_server(handler, reject_non_standard_body_writes=True) as (_, connect):
        client = connect()
        await client.send(b"HEAD / HTTP/1.1\r\nHost: t\r\n\r\n")
        await client.read_head_bytes()
    assert [e.code for e in errors] == ["ERR_HTTP_BODY_NOT_ALLOWED"]  # type: ignore[attr-defined]


async def test_R32_trailers_after_chunked_body() -> None:
    async def handler(req: http.IncomingMessage, res: http.ServerResponse) -> None:
        res.set_header("Trailer", "X-Checksum")
        await res.write(b"data")
        res.add_trailers({"X-Checksum": "abc"})
        await res.end()

    async with memory_server(handler) as (_, connect):
        client = connect()
        await client.send(get())
        res = await client.read_response()
    assert res.header("Transfer-Encoding") == "chunked"
    assert res.body == b"data" and res.trailers == [("X-Checksum", "abc")]


async def test_request_trailers_and_chunked_body_reach_the_handler() -> None:
    seen: dict[str, object] = {}

    async def handler(req: http.IncomingMessage, res: http.ServerResponse) -> None:
        seen["body"] = await req.read()
        seen["trailers"] = req.trailers
        seen["raw_trailers"] = req.raw_trailers
        seen["complete"] = req.complete
        await res.end()

    async with memory_server(handler) as (_, connect):
        client = connect()
        await client.send(
            b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
            b"3\r\nabc\r\n2\r\nde\r\n0\r\nX-Sum: 5\r\n\r\n"
        )
        await client.read_response()
    assert seen == {
        "body": b"abcde",
        "trailers": {"x-sum": "5"},
        "raw_trailers": [("X-Sum", "5")],
        "complete": True,
    }


async def test_R28_trailer_header_without_chunking_raises() -> None:
    errors: list[str] = []

    async def handler(req: http.IncomingMessage, res: http.ServerResponse) -> None:
        res.set_header("Trailer", "X-A")
        res.set_header("Content-Length", 1)
        try:
            await res.end(b"x")
        except http.TrailerInvalidError as exc:
            errors.append(exc.code)

    async with memory_server(handler) as (_, connect):
        client = connect()
        await client.send(get())
        await client.read_response()
    assert errors == ["ERR_HTTP_TRAILER_INVALID"]


async def test_R30_strict_content_length() -> None:
    errors: list[str] = []

    async def handler(req: http.IncomingMessage, res: http.ServerResponse) -> None:
        res.strict_content_length = True
        res.set_header("Content-Length", 3)
        await res.write(b"ab")
        try:
            await res.write(b"cd")
        except http.ContentLengthMismatchError as exc:
            errors.append(str(exc))
        try:
            await res.end()
        except http.ContentLengthMismatchError as exc:
            errors.append(exc.code)
        await res.end(b"c")

    async with memory_server(handler) as (_, connect):
        client = connect()
        await client.send(get())
        res = await client.read_response()
    assert res.body == b"abc"
    assert "content-length of 4 byte(s) does not match the content-length of 3" in errors[0]
    assert errors[1] == "ERR_HTTP_CONTENT_LENGTH_MISMATCH"


async def test_R04_write_head_merges_dict_and_array() -> None:
    async def handler(req: http.IncomingMessage, res: http.ServerResponse) -> None:
        res.set_header("X-Keep", "k")
        res.set_header("X-Over", "old")
        if req.url == "/dict":
            res.write_head(201, {"X-Over": "new"})
        else:
            res.write_head(201, "Made", ["X-Over", "a", "X-Over", "b"])
        await res.end()

    async with memory_server(handler) as (_, connect):
        client = connect()
        await client.send(get("/dict") + get("/array"))
        first = await client.read_response()
        second = await client.read_response()
    assert first.status == 201 and first.reason == "Created"
    assert ("X-Keep", "k") in first.headers and ("X-Over", "new") in first.headers
    assert second.reason == "Made"
    assert [v for k, v in second.headers if k == "X-Over"] == ["a", "b"]


@pytest.mark.parametrize("bad", [-1, 99, 1000, "1000", "404 text", None, True, 1.5])
async def test_R01_invalid_status_codes(bad: object) -> None:
    res = _detached_response()
    with pytest.raises(http.InvalidStatusCodeError) as info:
        res.write_head(bad)  # type: ignore[arg-type]
    assert info.value.code == "ERR_HTTP_INVALID_STATUS_CODE"
    assert str(bad) in str(info.value)


async def test_R01_string_status_accepted_and_R03_reason_phrases() -> None:
    res = _detached_response()
    res.write_head("200")
    assert res.status_code == 200 and res.status_message == "OK"
    res = _detached_response()
    res.status_message = "Fine"
    res.write_head(299)
    assert res.status_message == "Fine"
    res = _detached_response()
    res.write_head(299)
    assert res.status_message == "unknown"
    with pytest.raises(http.InvalidCharError):
        _detached_response().write_head(200, "bad\r\nline")


async def test_R02_headers_sent_errors() -> None:
    res = _detached_response()
    res.write_head(200)
    assert res.headers_sent
    with pytest.raises(http.HeadersSentError) as info:
        res.write_head(200)
    assert info.value.code == "ERR_HTTP_HEADERS_SENT"
    for call in (
        lambda: res.set_header("a", "b"),
        lambda: res.remove_header("a"),
        lambda: res.append_header("a", "b"),
    ):
        with pytest.raises(http.HeadersSentError):
            call()


async def test_R08_set_header_validation() -> None:
    res = _detached_response()
    with pytest.raises(http.InvalidHTTPTokenError):
        res.set_header("bad name", "x")
    with pytest.raises(http.InvalidHeaderValueError):
        res.set_header("x", None)  # type: ignore[arg-type]
    with pytest.raises(http.InvalidCharError):
        res.set_header("x", "a\nb")
    assert res.set_header("X-Num", 5) is res
    assert res.get_header("x-num") == 5
    assert res.get_raw_header_names() == ["X-Num"]


def _detached_response() -> http.ServerResponse:
    from trio_nodehttp._connection import HTTPConnection

    req = http.IncomingMessage(None, [], b"1.1", method="GET", url="/")
    stream = trio.testing.memory_stream_pair()[0]
    return http.ServerResponse(req, HTTPConnection(stream))


async def test_handler_returning_without_end_gets_response_ended() -> None:
    async def handler(req: http.IncomingMessage, res: http.ServerResponse) -> None:
        res.status_code = 202

    async with memory_server(handler) as (_, connect):
        client = connect()
        await client.send(get())
        res = await client.read_response()
    assert res.status == 202 and res.header("Content-Length") == "0"


async def test_handler_error_gives_500_logs_and_keeps_serving(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def handler(req: http.IncomingMessage, res: http.ServerResponse) -> None:
        if req.url == "/boom":
            res.set_header("X-Leak", "no")
            raise RuntimeError("boom")
        await res.end(b"fine")

    with caplog.at_level(logging.ERROR, logger="trio_nodehttp"):
        async with memory_server(handler) as (_, connect):
            client = connect()
            await client.send(get("/boom"))
            failed = await client.read_response()
            await client.send(get("/ok"))
            ok = await client.read_response()
    assert failed.status == 500 and failed.body == b"Internal Server Error"
    assert failed.header("X-Leak") is None
    assert ok.body == b"fine"
    assert any("boom" in r.getMessage() or r.exc_info for r in caplog.records)


async def test_handler_error_after_headers_closes_connection(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def handler(req: http.IncomingMessage, res: http.ServerResponse) -> None:
        await res.write(b"partial")
        raise RuntimeError("late")

    with caplog.at_level(logging.CRITICAL, logger="trio_nodehttp"):
        async with memory_server(handler) as (_, connect):
            client = connect()
            await client.send(get())
            raw = await client.read_until_closed()
    assert raw.startswith(b"HTTP/1.1 200 OK") and b"partial" in raw
    assert not raw.endswith(b"0\r\n\r\n")


async def test_unread_body_is_drained_before_next_request() -> None:
    async def handler(req: http.IncomingMessage, res: http.ServerResponse) -> None:
        await res.end(req.method or "")

    async with memory_server(handler) as (_, connect):
        client = connect()
        await client.send(b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\nabcde" + get())
        assert (await client.read_response()).body == b"POST"
        assert (await client.read_response()).body == b"GET"


async def test_incoming_headers_views() -> None:
    seen: list[http.IncomingMessage] = []

    async def handler(req: http.IncomingMessage, res: http.ServerResponse) -> None:
        seen.append(req)
        await res.end()

    async with memory_server(handler, max_headers_count=5) as (_, connect):
        client = connect()
        await client.send(
            b"GET /p?q=1 HTTP/1.1\r\nHost: t\r\nX-A: 1\r\nx-a: 2\r\nSet-Cookie: c\r\n"
            b"User-Agent: one\r\nUser-Agent: dropped-by-count\r\n\r\n"
        )
        await client.read_response()
    req = seen[0]
    assert req.method == "GET" and req.url == "/p?q=1" and req.http_version == "1.1"
    assert req.raw_headers == [
        ("Host", "t"),
        ("X-A", "1"),
        ("x-a", "2"),
        ("Set-Cookie", "c"),
        ("User-Agent", "one"),
    ]
    assert req.headers == {"host": "t", "x-a": "1, 2", "set-cookie": ["c"], "user-agent": "one"}
    assert req.headers_distinct["x-a"] == ["1", "2"]
    assert req.complete


# --- 100-continue and other expectations ------------------------------------------------


async def test_S29_continue_sent_at_once_without_listener() -> None:
    heads: list[bool] = []

    async def handler(req: http.IncomingMessage, res: http.ServerResponse) -> None:
        heads.append(res.headers_sent)
        await res.end(await req.read())

    async with memory_server(handler) as (_, connect):
        client = connect()
        await client.send(
            b"POST / HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\n"
        )
        interim = await client.read_response()
        assert interim.status == 100
        await client.send(b"body")
        final = await client.read_response()
    assert final.body == b"body"
    assert heads == [False]  # the 100 is not the response's head


async def test_fuzz_repeated_expect_lines_are_joined_as_node_joins_them() -> None:
    # Found by tests/test_fuzz_differential.py (seed 1, index 172): Node reads
    # "Expect: foo" then "Expect: 100-Continue" as "foo, 100-Continue", which asks for
    # a 100; we looked at the first line only and answered 417.
    async def handler(req: http.IncomingMessage, res: http.ServerResponse) -> None:
        await res.end(await req.read())

    async with memory_server(handler) as (_, connect):
        client = connect()
        await client.send(
            b"POST / HTTP/1.1\r\nHost: t\r\nExpect: foo\r\nContent-Length: 2\r\n"
            b"Expect: 100-Continue\r\n\r\n"
        )
        with trio.fail_after(5):
            assert (await client.read_response()).status == 100
            await client.send(b"ok")
            final = await client.read_response()
    assert (final.status, final.body) == (200, b"ok")


async def test_S29_head_written_before_reading_the_body_still_gets_the_body() -> None:
    # Regression: a handler that wrote its head first never got the body (no 100 was
    # sent, and the head waited for the end), a deadlock.
    async def handler(req: http.IncomingMessage, res: http.ServerResponse) -> None:
        res.write_head(200, {"content-type": "text/plain"})
        await res.end(b"got " + await req.read())

    async with memory_server(handler) as (_, connect):
        client = connect()
        await client.send(
            b"POST / HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\n"
        )
        with trio.fail_after(5):
            assert (await client.read_response()).status == 100
            await client.send(b"body")
            final = await client.read_response()
    assert (final.status, final.body) == (200, b"got body")


async def test_S30_final_status_without_100_closes() -> None:
    # With a checkContinue listener that refuses, no 100 goes out: the body may still
    # be on its way, so the connection is not kept alive.
    async def refuse(req: http.IncomingMessage, res: http.ServerResponse) -> None:
        res.status_code = 401
        await res.end()

    server = http.create_server(hello)
    server.on("checkContinue", refuse)
    async with memory_server(server=server) as (_, connect):
        client = connect()
        await client.send(
            b"POST / HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\n"
        )
        raw = await client.read_until_closed()
    assert raw.startswith(b"HTTP/1.1 401 Unauthorized") and b"Connection: close" in raw
    assert b"100 Continue" not in raw


async def test_S29_check_continue_listener_replaces_request() -> None:
    events: list[str] = []

    async def on_check(req: http.IncomingMessage, res: http.ServerResponse) -> None:
        events.append("checkContinue")
        await res.write_continue()
        await res.end(await req.read())

    server = http.create_server(lambda req, res: events.append("request"))
    server.on("checkContinue", on_check)
    async with memory_server(server=server) as (_, connect):
        client = connect()
        await client.send(
            b"PUT / HTTP/1.1\r\nHost: t\r\nExpect: 100-Continue\r\nContent-Length: 2\r\n\r\n"
        )
        assert (await client.read_response()).status == 100
        await client.send(b"ok")
        assert (await client.read_response()).body == b"ok"
    assert events == ["checkContinue"]


async def test_S31_unknown_expectation_gets_417_or_listener() -> None:
    async with memory_server(hello) as (_, connect):
        client = connect()
        await client.send(get("/", "Expect: meoww"))
        res = await client.read_response()
    assert (res.status, res.reason) == (417, "Expectation Failed")

    server = http.create_server(hello)

    async def on_expectation(req: http.IncomingMessage, res: http.ServerResponse) -> None:
        res.status_code = 299
        await res.end()

    server.on("checkExpectation", on_expectation)
    async with memory_server(server=server) as (_, connect):
        client = connect()
        await client.send(get("/", "Expect: meoww"))
        assert (await client.read_response()).status == 299


async def test_informational_responses() -> None:
    async def handler(req: http.IncomingMessage, res: http.ServerResponse) -> None:
        await res.write_processing()
        await res.write_early_hints({"link": ["</a.css>; rel=preload", "</b.js>"], "x-e": "1"})
        await res.end()

    async with memory_server(handler) as (_, connect):
        client = connect()
        await client.send(get())
        processing = await client.read_response()
        hints = await client.read_response()
        final = await client.read_response()
    assert processing.status == 102
    assert hints.status == 103
    assert hints.headers == [("Link", "</a.css>; rel=preload, </b.js>"), ("x-e", "1")]
    assert final.status == 200


async def test_R34_bad_early_hints() -> None:
    res = _detached_response()
    with pytest.raises(http.InvalidArgValueError):
        await res.write_early_hints({"link": "no-angle-brackets"})


# --- upgrade, CONNECT, max requests -----------------------------------------------------


async def test_S33_upgrade_listener_gets_stream_and_head() -> None:
    server = http.create_server(hello)

    async def on_upgrade(req: http.IncomingMessage, stream: trio.abc.Stream, head: bytes) -> None:
        await stream.send_all(
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: echo\r\nConnection: Upgrade\r\n\r\n"
        )
        await stream.send_all(b"head=" + head)
        data = await stream.receive_some(100)
        await stream.send_all(b"echo=" + data)

    server.on("upgrade", on_upgrade)
    async with memory_server(server=server) as (_, connect):
        client = connect()
        await client.send(get("/", "Connection: Upgrade", "Upgrade: echo") + b"early")
        with trio.fail_after(5):
            assert (await client.read_head_bytes()).startswith(b"HTTP/1.1 101 ")
            while b"head=early" not in client.buffer:
                assert await client._fill()
            await client.send(b"ping")
            # The listener returns after echoing; then the server closes the stream.
            assert (await client.read_until_closed()).endswith(b"echo=ping")


async def test_S33_upgrade_header_without_connection_token_is_a_normal_request() -> None:
    # Regression: an Upgrade header alone was answered as an upgrade. llhttp (and so
    # Node) upgrade only when Connection holds the "upgrade" token.
    seen: list[tuple[bool, object]] = []
    upgrades: list[bytes] = []

    async def handler(req: http.IncomingMessage, res: http.ServerResponse) -> None:
        seen.append((req.upgrade, req.headers.get("upgrade")))
        await res.end("plain")

    async def on_upgrade(req: http.IncomingMessage, stream: trio.abc.Stream, head: bytes) -> None:
        upgrades.append(head)

    server = http.create_server(handler)
    server.on("upgrade", on_upgrade)
    async with memory_server(server=server) as (_, connect):
        client = connect()
        await client.send(get("/", "Upgrade: echo") + get("/", "Connection: keep-alive, Upgrade-X"))
        assert (await client.read_response()).body == b"plain"
        assert (await client.read_response()).body == b"plain"
    assert seen == [(False, "echo"), (False, None)]
    assert upgrades == []


async def test_upgrade_header_without_listener_is_a_normal_request() -> None:
    async with memory_server(hello) as (_, connect):
        client = connect()
        await client.send(get("/", "Connection: Upgrade", "Upgrade: x") + get())
        assert (await client.read_response()).body == b"hello"
        assert (await client.read_response()).body == b"hello"


async def test_S32_connect_without_listener_closes_and_with_listener_tunnels() -> None:
    async with memory_server(hello) as (_, connect):
        client = connect()
        await client.send(b"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n")
        assert await client.read_until_closed() == b""

    server = http.create_server(hello)
    seen: list[str | None] = []

    async def on_connect(req: http.IncomingMessage, stream: trio.abc.Stream, head: bytes) -> None:
        seen.append(req.url)
        await stream.send_all(b"HTTP/1.1 200 Connection Established\r\n\r\n" + head)

    server.on("connect", on_connect)
    async with memory_server(server=server) as (_, connect):
        client = connect()
        await client.send(b"CONNECT a:1 HTTP/1.1\r\nHost: a:1\r\n\r\ntunnel")
        raw = await client.read_until_closed()
    assert raw == b"HTTP/1.1 200 Connection Established\r\n\r\ntunnel" and seen == ["a:1"]


async def test_S36_max_requests_per_socket_and_drop_request() -> None:
    dropped: list[str | None] = []
    server = http.create_server(hello, max_requests_per_socket=2)
    server.on("dropRequest", lambda req, stream: dropped.append(req.url))
    async with memory_server(server=server) as (_, connect):
        client = connect()
        await client.send(get("/1") + get("/2") + get("/3"))
        first = await client.read_response()
        second = await client.read_response()
        third = await client.read_response()
    assert first.header("Keep-Alive") == "timeout=5, max=2"
    assert second.header("Connection") == "close" and second.header("Keep-Alive") is None
    assert third.status == 503 and third.header("Connection") == "close"
    assert dropped == ["/3"]


# --- events and statistics ---------------------------------------------------------------


async def test_connection_event_and_statistics() -> None:
    streams: list[trio.abc.Stream] = []
    release = trio.Event()

    async def handler(req: http.IncomingMessage, res: http.ServerResponse) -> None:
        await release.wait()
        await res.end()

    server = http.create_server(handler)
    server.on("connection", streams.append)
    async with memory_server(server=server) as (_, connect):
        idle = connect()
        busy = connect()
        await busy.send(get())
        await trio.testing.wait_all_tasks_blocked()
        stats = server.statistics()
        assert (stats.connections_open, stats.connections_idle, stats.connections_active) == (
            2,
            1,
            1,
        )
        release.set()
        await busy.read_response()
        del idle
    assert len(streams) == 2


async def test_finish_event_and_writable_flags() -> None:
    seen: list[tuple[bool, bool]] = []

    async def handler(req: http.IncomingMessage, res: http.ServerResponse) -> None:
        res.on("finish", lambda: seen.append((res.writable_ended, res.writable_finished)))
        await res.end(b"x")
        with pytest.raises(http.WriteAfterEndError):
            await res.write(b"y")
        with pytest.raises(http.WriteAfterEndError):
            await res.end(b"y")
        await res.end()

    async with memory_server(handler) as (_, connect):
        client = connect()
        await client.send(get())
        await client.read_response()
    assert seen == [(True, True)]


async def test_P11_missing_host_refused_unless_require_host_header_false() -> None:
    seen: list[list[tuple[str, str]]] = []

    async def handler(req: http.IncomingMessage, res: http.ServerResponse) -> None:
        seen.append(req.raw_headers)
        await res.end()

    no_host = b"GET / HTTP/1.1\r\nX: 1\r\n\r\n"
    async with memory_server(handler) as (_, connect):
        client = connect()
        await client.send(no_host)
        refused = await client.read_response()
    assert (refused.status, refused.header("Connection")) == (400, "close")
    assert refused.header("Transfer-Encoding") == "chunked" and seen == []

    async with memory_server(handler, require_host_header=False) as (_, connect):
        client = connect()
        await client.send(no_host)
        assert (await client.read_response()).status == 200
    assert seen == [[("X", "1")]]


async def test_R32_trailer_validation_and_list_values() -> None:
    res = _detached_response()
    with pytest.raises(http.InvalidHTTPTokenError) as name_error:
        res.add_trailers({"bad name": "x"})
    assert "Trailer name must be a valid HTTP token" in str(name_error.value)
    with pytest.raises(http.InvalidCharError) as value_error:
        res.add_trailers([("X-A", "a\r\nb")])
    assert "Invalid character in trailer content" in str(value_error.value)
    with pytest.raises(http.InvalidArgValueError):
        res.add_trailers(["X-A"])
    res.add_trailers({"X-T": ["a", "b"]})
    assert res._last_chunk() == b"0\r\nX-T: a\r\nX-T: b\r\n\r\n"


async def test_R15_set_headers_gathers_set_cookie() -> None:
    res = _detached_response()
    res.set_headers([("Set-Cookie", "a=1"), ("X-A", "1"), ("set-cookie", "b=2")])
    assert res.get_header("set-cookie") == ["a=1", "b=2"]
    assert res.get_header("x-a") == "1"
    with pytest.raises(http.InvalidArgTypeError):
        res.set_headers(5)  # type: ignore[arg-type]
    with pytest.raises(http.InvalidHeaderValueError):
        res.set_headers({"Set-Cookie": None})  # type: ignore[arg-type]


async def test_R13_header_getters() -> None:
    res = _detached_response()
    res.set_header("X-B", "2")
    res.set_header("x-a", ["1", "3"])
    res.set_header("X-B", "4")  # keeps its first position, takes the new casing and value
    assert res.get_header_names() == ["x-b", "x-a"]
    assert res.get_raw_header_names() == ["X-B", "x-a"]
    assert res.get_headers() == {"x-b": "4", "x-a": ["1", "3"]}
    assert res.has_header("X-A") and not res.has_header("x-c")
    with pytest.raises(http.InvalidArgTypeError):
        res.get_header(5)  # type: ignore[arg-type]


async def test_R35_write_information() -> None:
    async def handler(req: http.IncomingMessage, res: http.ServerResponse) -> None:
        await res.write_information(104, {"X-Progress": "50%"})
        with pytest.raises(http.InvalidStatusCodeError):
            await res.write_information(101)
        with pytest.raises(http.OutOfRangeError):
            await res.write_information(200)
        await res.end(b"done")

    async with memory_server(handler) as (_, connect):
        client = connect()
        await client.send(get())
        info = await client.read_response()
        final = await client.read_response()
    assert (info.status, info.headers) == (104, [("X-Progress", "50%")])
    assert final.body == b"done"


async def test_M07_trailers_distinct() -> None:
    seen: list[dict[str, list[str]]] = []

    async def handler(req: http.IncomingMessage, res: http.ServerResponse) -> None:
        await req.read()
        seen.append(req.trailers_distinct)
        await res.end()

    async with memory_server(handler) as (_, connect):
        client = connect()
        await client.send(
            b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
            b"1\r\na\r\n0\r\nX-T: 1\r\nx-t: 2\r\n\r\n"
        )
        await client.read_response()
    assert seen == [{"x-t": ["1", "2"]}]


async def test_upgrade_request_with_a_bad_or_huge_body_gets_an_answer() -> None:
    server = http.create_server(hello)
    server.on("upgrade", lambda req, stream, head: None)
    head = b"POST / HTTP/1.1\r\nHost: t\r\nConnection: Upgrade\r\nUpgrade: x\r\n"
    async with memory_server(server=server) as (_, connect):
        client = connect()
        await client.send(head + b"Transfer-Encoding: chunked\r\n\r\nzz\r\n")
        assert (await client.read_until_closed()).startswith(b"HTTP/1.1 400 Bad Request")
        client = connect()
        await client.send(head + b"Content-Length: 2000000\r\n\r\n" + b"x" * 1_100_000)
        assert (await client.read_until_closed()).startswith(b"HTTP/1.1 413 Payload Too Large")


async def test_handler_error_500_starts_from_a_fresh_response(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def handler(req: http.IncomingMessage, res: http.ServerResponse) -> None:
        res.remove_header("content-length")
        res.remove_header("date")
        raise RuntimeError("after removing headers")

    with caplog.at_level(logging.CRITICAL, logger="trio_nodehttp"):
        async with memory_server(handler) as (_, connect):
            client = connect()
            await client.send(get())
            res = await client.read_response()
    assert res.status == 500
    assert res.header("Content-Length") == str(len(b"Internal Server Error"))
    assert res.header("Date") is not None
