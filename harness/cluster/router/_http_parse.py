"""Just enough HTTP/1.1 framing for the router: where a message ends, and nothing more.

The router forwards bytes untouched; it only needs each message's head (up
to CRLFCRLF), how its body is delimited (Content-Length, chunked, none, or
until close) and whether the connection stays open. Pure functions, tested in
``tests/unit/test_router_parsing.py``.

>>> parse_request_head(b"GET /x HTTP/1.1\\r\\nHost: a\\r\\n\\r\\n", want_auth=False)
(b'GET', 0, True, None)
"""

from __future__ import annotations

from typing import Final

CHUNKED: Final = -1
"""Body length marker: ``Transfer-Encoding: chunked``."""
UNTIL_CLOSE: Final = -2
"""Body length marker: a response body delimited by the connection closing."""
MAX_HEAD: Final = 64 * 1024
MAX_BODY: Final = 64 * 1024 * 1024

RequestHead = tuple[bytes, int, bool, bytes | None]
"""``(method, body_length_or_CHUNKED, keep_alive, authorization_value_or_None)``."""
ResponseHead = tuple[int, int, bool]
"""``(status, body_length_or_CHUNKED_or_UNTIL_CLOSE, keep_alive)``."""


class HttpParseError(ValueError):
    """The bytes are not HTTP/1.x this router can frame."""


def _value(head: bytes, lower: bytes, name: bytes) -> bytes | None:
    """The value of header ``name`` (lower case), from ``head``; None if absent."""
    start = lower.find(b"\r\n" + name + b":")
    if start < 0:
        return None
    start += len(name) + 3
    end = lower.find(b"\r\n", start)
    return head[start:end].strip()


def _body_length(head: bytes, lower: bytes) -> int:
    if b"\r\ntransfer-encoding:" in lower:
        coding = _value(lower, lower, b"transfer-encoding") or b""
        if b"\r\ncontent-length:" in lower:
            raise HttpParseError("both Transfer-Encoding and Content-Length")
        if coding.endswith(b"chunked"):
            return CHUNKED
        raise HttpParseError(f"unsupported Transfer-Encoding {coding!r}")
    start = lower.find(b"\r\ncontent-length:")
    if start < 0:
        return 0
    if lower.find(b"\r\ncontent-length:", start + 17) >= 0:
        raise HttpParseError("more than one Content-Length")
    raw = _value(head, lower, b"content-length") or b""
    if not raw.isdigit():
        raise HttpParseError(f"bad Content-Length {raw!r}")
    length = int(raw)
    if length > MAX_BODY:
        raise HttpParseError(f"body of {length} bytes is over the {MAX_BODY} byte limit")
    return length


def _keep_alive(lower: bytes, default: bool) -> bool:
    if b"\r\nconnection:" not in lower:
        return default
    value = _value(lower, lower, b"connection") or b""
    if b"close" in value:
        return False
    if b"keep-alive" in value:
        return True
    return default


def _fast_length(head: bytes, lower: bytes) -> int:
    """Content-Length in the common case (one header, no Transfer-Encoding), else -3."""
    start = lower.find(b"\r\ncontent-length:")
    if start < 0:
        return 0 if b"\r\ntransfer-encoding:" not in lower else -3
    if b"\r\ntransfer-encoding:" in lower or lower.find(b"\r\ncontent-length:", start + 17) >= 0:
        return -3
    raw = head[start + 17 : lower.find(b"\r\n", start + 17)].strip()
    if not raw.isdigit() or len(raw) > 12:
        return -3
    return int(raw)


def parse_request_head(head: bytes, *, want_auth: bool) -> RequestHead:
    """Frame a request head (through the blank line). ``want_auth`` extracts Authorization."""
    line_end = head.find(b"\r\n")
    space = head.find(b" ", 0, line_end)
    if line_end <= 0 or space <= 0:
        raise HttpParseError("malformed request line")
    version = head[line_end - 8 : line_end]
    if version == b"HTTP/1.1":
        keep_alive = True
    elif version == b"HTTP/1.0":
        keep_alive = False
    else:
        raise HttpParseError(f"unsupported HTTP version {version!r}")
    lower = head.lower()
    if b"\r\nconnection:" in lower:
        keep_alive = _keep_alive(lower, keep_alive)
    if b"\r\ncontent-length:" not in lower and b"\r\ntransfer-encoding:" not in lower:
        body = 0  # the common bodiless request, without a function call
    else:
        body = _fast_length(head, lower)
        if body < 0 or body > MAX_BODY:
            body = _body_length(head, lower)
    auth = _value(head, lower, b"authorization") if want_auth else None
    return head[:space], body, keep_alive, auth


def parse_response_head(head: bytes, request_method: bytes) -> ResponseHead:
    """Frame a response head to a request made with ``request_method``."""
    version = head[:8]
    if version == b"HTTP/1.1":
        keep_alive = True
    elif version == b"HTTP/1.0":
        keep_alive = False
    else:
        raise HttpParseError(f"unsupported HTTP version {version!r}")
    status_raw = head[9:12]
    if not status_raw.isdigit():
        raise HttpParseError(f"bad status {status_raw!r}")
    status = int(status_raw)
    lower = head.lower()
    if b"\r\nconnection:" in lower:
        keep_alive = _keep_alive(lower, keep_alive)
    if request_method == b"HEAD" or status < 200 or status in (204, 304):
        return status, 0, keep_alive
    # Inlined common case: one Content-Length and no Transfer-Encoding.
    start = lower.find(b"\r\ncontent-length:")
    if start >= 0 and b"\r\ntransfer-encoding:" not in lower:
        raw = head[start + 17 : lower.find(b"\r\n", start + 17)].strip()
        if raw.isdigit() and len(raw) <= 12 and lower.find(b"\r\ncontent-length:", start + 17) < 0:
            return status, int(raw), keep_alive
    if b"\r\ntransfer-encoding:" not in lower and b"\r\ncontent-length:" not in lower:
        return status, UNTIL_CLOSE, False
    return status, _body_length(head, lower), keep_alive


class ChunkedScanner:
    """Finds the end of a chunked body fed in arbitrary pieces.

    >>> scanner = ChunkedScanner()
    >>> scanner.feed(b"3\\r\\nabc\\r\\n")
    -1
    >>> scanner.feed(b"0\\r\\n\\r\\nNEXT")
    5
    """

    __slots__ = ("_line", "_remaining", "_state")

    _SIZE, _DATA, _DATA_END, _TRAILER = range(4)

    def __init__(self) -> None:
        self._state = self._SIZE
        self._remaining = 0
        self._line = b""

    def feed(self, data: bytes, pos: int = 0) -> int:
        """Consume ``data[pos:]``; the index just past the body's end, or -1 if not there yet."""
        size = len(data)
        while pos < size:
            if self._state == self._DATA or self._state == self._DATA_END:
                take = min(self._remaining, size - pos)
                pos += take
                self._remaining -= take
                if self._remaining == 0:
                    if self._state == self._DATA:
                        self._state, self._remaining = self._DATA_END, 2
                    else:
                        self._state = self._SIZE
                continue
            eol = data.find(b"\n", pos)
            if eol < 0:
                self._line += data[pos:]
                if len(self._line) > MAX_HEAD:
                    raise HttpParseError("chunk size or trailer line too long")
                return -1
            line = (self._line + data[pos:eol]).rstrip(b"\r")
            self._line = b""
            pos = eol + 1
            if self._state == self._TRAILER:
                if not line:
                    self._state = self._SIZE
                    return pos
                continue
            digits = line.split(b";", 1)[0].strip()
            if not digits or digits.strip(b"0123456789abcdefABCDEF"):
                raise HttpParseError(f"bad chunk size {digits!r}")
            chunk = int(digits, 16)
            if chunk == 0:
                self._state = self._TRAILER
            else:
                self._state, self._remaining = self._DATA, chunk
        return -1
