"""Cutting a large text to the part a page shows, without leaving a code fence open."""

from __future__ import annotations

import bisect
import re
from dataclasses import dataclass

LINE_BREAK_WINDOW = 2048  # how far back from the limit a line break is preferred to a mid-line cut

# python-markdown's fenced_code pairs an opening line (fence, optional lang/{attrs}/hl_lines) with
# the first later line that is exactly the same fence (plus spaces); an opener without one is text.
_FENCE_OPENER = re.compile(
    r"""(?P<fence>~{3,}|`{3,})[ \t]*
    (?:\{[^\n]*\}|(?:\.?[\w\#.+-]*[ \t]*)?(?:hl_lines=(?P<quote>"|').*?(?P=quote)[ \t]*)?)""",
    re.VERBOSE,
)
_FENCE_LINE = re.compile(r"(`{3,}|~{3,})[ \t]*")  # (python-markdown expands tabs to spaces first)


def _normalize_newlines(text: str) -> str:
    """Line breaks as python-markdown sees them (it normalizes before finding fences)."""
    return text.replace("\r\n", "\n").replace("\r", "\n") if "\r" in text else text


def _unclosed_fence(text: str) -> str | None:
    """The fence of the first code block opened in text and not closed in it, pairing fences as python-markdown does."""
    # Only the shown part is looked at, on purpose: callers may pass a prefix of the stored output
    # (the database query is itself limited), so "closed later" cannot be known; and closing a
    # fence the model never closed costs less than showing a cut code block as mangled markdown.
    # Linear, unlike python-markdown's regex search (quadratic on many unclosed fences).
    lines = text.split("\n")
    closers: dict[str, list[int]] = {}
    for number, line in enumerate(lines):
        if match := _FENCE_LINE.fullmatch(line):
            closers.setdefault(match.group(1), []).append(number)
    number = 0
    while number < len(lines):
        opener = _FENCE_OPENER.fullmatch(lines[number])
        if opener is None:
            number += 1
            continue
        fence = opener.group("fence")
        later = closers.get(fence, [])
        index = bisect.bisect_right(later, number)
        if index == len(later):
            return fence
        number = later[index] + 1  # skip the whole block: fences inside it are code
    return None


def truncate_for_render(text: str, limit_bytes: int) -> tuple[str, int]:
    """Cut text to at most limit_bytes of UTF-8 (at a line break if one is near); return (part, bytes hidden)."""
    encoded = text.encode("utf-8")
    if len(encoded) <= limit_bytes:
        return text, 0
    cut = max(limit_bytes, 0)
    while cut > 0 and encoded[cut] & 0xC0 == 0x80:  # a continuation byte: back up to the character start
        cut -= 1
    line_break = encoded.rfind(b"\n", max(cut - LINE_BREAK_WINDOW, 0), cut)
    if line_break != -1:
        cut = line_break + 1  # keep the line break itself with the shown part
    part = encoded[:cut].decode("utf-8")
    hidden = len(encoded) - cut
    fence = _unclosed_fence(_normalize_newlines(part))
    if fence is not None:
        # Close the cut-off code block, or python-markdown would show the fence as literal text.
        part += ("" if part.endswith("\n") else "\n") + fence + "\n"
    return part, hidden


@dataclass(frozen=True)
class FirstPart:
    """What a page shows of a text that may be long: its first part, and how much is not shown."""

    text: str  # the shown part exactly as stored
    for_render: str  # the same, with a code fence the cut left open closed, for the markdown renderer
    total_bytes: int  # the whole text's UTF-8 size
    hidden_bytes: int

    @property
    def shown_bytes(self) -> int:
        return self.total_bytes - self.hidden_bytes


def first_part(start: str, total_bytes: int, limit_bytes: int) -> FirstPart:
    """The part of a text a page shows, from the text's first limit_bytes + 1 characters (or more)
    and its whole size in UTF-8 bytes: at most limit_bytes, cut as truncate_for_render cuts."""
    for_render, cut_bytes = truncate_for_render(start, limit_bytes)
    encoded = start.encode()
    shown_bytes = len(encoded) - cut_bytes
    shown = start if cut_bytes == 0 else encoded[:shown_bytes].decode()
    return FirstPart(shown, for_render, total_bytes, total_bytes - shown_bytes)
