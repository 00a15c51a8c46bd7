"""The router's HTTP framing: where each message ends, and whether the connection stays open.

A framing mistake in a proxy shows up to users as a hung request (body length
too long), a corrupted next response (too short) or a connection reused after
the worker said ``Connection: close``.
"""

from __future__ import annotations

import pytest

from harness.cluster.router._http_parse import (
    CHUNKED,
    UNTIL_CLOSE,
    ChunkedScanner,
    HttpParseError,
    parse_request_head,
    parse_response_head,
)


def _req(*headers: str, line: str = "GET /x HTTP/1.1") -> bytes:
    return ("\r\n".join([line, *headers]) + "\r\n\r\n").encode()


def _resp(*headers: str, line: str = "HTTP/1.1 200 OK") -> bytes:
    return _req(*headers, line=line)


@pytest.mark.parametrize(
    ("head", "expected"),
    [
        (_req("Host: a"), (b"GET", 0, True, None)),
        (_req("Content-Length: 12", line="POST /p HTTP/1.1"), (b"POST", 12, True, None)),
        (_req("content-length:7", line="PUT /p HTTP/1.1"), (b"PUT", 7, True, None)),
        (_req("CONTENT-LENGTH: 3", line="POST /p HTTP/1.1"), (b"POST", 3, True, None)),
        (
            _req("Transfer-Encoding: chunked", line="POST /p HTTP/1.1"),
            (b"POST", CHUNKED, True, None),
        ),
        (_req("Connection: close"), (b"GET", 0, False, None)),
        (_req(line="GET / HTTP/1.0"), (b"GET", 0, False, None)),
        (_req("Connection: Keep-Alive", line="GET / HTTP/1.0"), (b"GET", 0, True, None)),
    ],
)
def test_request_framing(head: bytes, expected: tuple[object, ...]) -> None:
    assert parse_request_head(head, want_auth=False) == expected


def test_authorization_is_extracted_only_when_asked_and_keeps_its_case() -> None:
    head = _req("authorization: Bearer Alice-1")
    assert parse_request_head(head, want_auth=True)[3] == b"Bearer Alice-1"
    assert parse_request_head(head, want_auth=False)[3] is None


@pytest.mark.parametrize(
    "head",
    [
        b"garbage\r\n\r\n",
        _req(line="GET / HTTP/2.0"),
        _req("Content-Length: 5", "Content-Length: 6", line="POST / HTTP/1.1"),
        _req("Content-Length: 5", "Transfer-Encoding: chunked", line="POST / HTTP/1.1"),
        _req("Content-Length: -1", line="POST / HTTP/1.1"),
        _req("Content-Length: 99999999999999", line="POST / HTTP/1.1"),
        _req("Transfer-Encoding: gzip", line="POST / HTTP/1.1"),
    ],
)
def test_requests_that_cannot_be_framed_safely_are_rejected(head: bytes) -> None:
    with pytest.raises(HttpParseError):
        parse_request_head(head, want_auth=False)


@pytest.mark.parametrize(
    ("head", "method", "expected"),
    [
        (_resp("content-length: 29", "content-type: application/json"), b"GET", (200, 29, True)),
        (_resp("Transfer-Encoding: chunked"), b"GET", (200, CHUNKED, True)),
        (_resp("content-length: 0"), b"GET", (200, 0, True)),
        (_resp("content-length: 10"), b"HEAD", (200, 0, True)),
        (_resp(line="HTTP/1.1 204 No Content"), b"DELETE", (204, 0, True)),
        (_resp(line="HTTP/1.1 304 Not Modified"), b"GET", (304, 0, True)),
        (_resp(line="HTTP/1.1 100 Continue"), b"POST", (100, 0, True)),
        (_resp("content-length: 5", "connection: close"), b"GET", (200, 5, False)),
        (_resp("content-type: text/plain"), b"GET", (200, UNTIL_CLOSE, False)),
        (_resp("content-length: 5", line="HTTP/1.0 200 OK"), b"GET", (200, 5, False)),
    ],
)
def test_response_framing(head: bytes, method: bytes, expected: tuple[int, int, bool]) -> None:
    assert parse_response_head(head, method) == expected


def test_bad_status_line_is_rejected() -> None:
    with pytest.raises(HttpParseError):
        parse_response_head(b"HTTP/1.1 abc\r\n\r\n", b"GET")


BODY = b"4\r\nWiki\r\n5;ext=1\r\npedia\r\nE\r\n in\r\n\r\nchunks.\r\n0\r\nTrailer: x\r\n\r\n"


def test_chunked_end_found_in_one_piece_and_points_past_it() -> None:
    assert ChunkedScanner().feed(BODY + b"GET /next") == len(BODY)


@pytest.mark.parametrize("size", [1, 2, 3, 7])
def test_chunked_end_found_whatever_the_split(size: int) -> None:
    scanner = ChunkedScanner()
    pieces = [BODY[i : i + size] for i in range(0, len(BODY), size)]
    results = [scanner.feed(piece) for piece in pieces]
    assert results[:-1] == [-1] * (len(pieces) - 1)
    assert results[-1] == len(pieces[-1])


def test_chunked_scan_can_start_after_the_head() -> None:
    message = b"HEAD-BYTES" + BODY
    assert ChunkedScanner().feed(message, 10) == len(message)


@pytest.mark.parametrize("bad", [b"zz\r\n", b"-5\r\n", b"\r\n"])
def test_bad_chunk_size_is_rejected(bad: bytes) -> None:
    with pytest.raises(HttpParseError):
        ChunkedScanner().feed(bad)
