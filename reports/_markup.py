"""Escaping for every output format, in one place.

Anything that came from a run directory (scan ids, tenants, body words, error
text, evidence) may have come from the service under test, so it is treated as
hostile: quoted as a Markdown code span, HTML-escaped, or stripped of the
characters XML 1.0 cannot carry.
"""

from __future__ import annotations

import html
import math
import re

MAX_VALUE_CHARS = 200
_SPACE = re.compile(r"\s+")
# XML 1.0 allows tab, LF, CR and everything from 0x20 up except surrogates and FFFE/FFFF.
_XML_BAD = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
# Mid-line, only these can start markup (links need "[", images "![", HTML "<").
_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]<>|~&])")


def clip(value: str, limit: int = MAX_VALUE_CHARS) -> str:
    """One line, at most ``limit`` characters (a hostile body must not flood a report)."""
    one_line = _SPACE.sub(" ", value)
    return one_line if len(one_line) <= limit else one_line[: limit - 1] + "\u2026"


def md_code(value: str, *, in_table: bool = False) -> str:
    """A Markdown code span showing ``value`` literally (GFM tables need ``|`` escaped)."""
    text = clip(value).replace("|", "\\|") if in_table else clip(value)
    if not text:
        return '`""`'
    longest = max((len(m) for m in re.findall("`+", text)), default=0)
    fence = "`" * (longest + 1)
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def md_escape(value: str) -> str:
    """Escape markup characters mid-line, keeping ``value``'s spacing (for our own words)."""
    return _MD_SPECIAL.sub(r"\\\1", value).replace("@", "@\u200b")


def md_text(value: str) -> str:
    """``value`` as Markdown prose, mid-line: characters that could start markup are escaped.

    An ``@`` gets a zero-width space after it so a service string cannot
    mention (notify) anyone when the report is posted as a pull-request comment.
    """
    return md_escape(clip(value))


def html_text(value: str) -> str:
    return html.escape(xml_safe(value), quote=True)


def xml_safe(value: str) -> str:
    """Drop the characters an XML 1.0 parser rejects (``ElementTree`` would write them)."""
    return _XML_BAD.sub("\ufffd", value)


def pct(fraction: float) -> str:
    """``0.0125`` -> ``'1.25%'``; tiny non-zero rates keep a significant digit."""
    if math.isnan(fraction):
        return "no data"
    value = fraction * 100
    if value == 0 or value >= 0.01:
        return f"{value:.2f}%"
    return f"{value:.2g}%"


def seconds(value: float) -> str:
    return "unknown" if math.isnan(value) else f"{value:.2f} s"
