"""Two texts as a line diff, with the changed words marked inside changed lines.

The result is data (kinds and plain text), never HTML: the template escapes every piece, so an
output's markup cannot reach the page. difflib is the standard library's diff; what it lacks for a
page (folding unchanged runs, word marks inside a changed line, a bound on the work) is here.

LLM output is untrusted, so the work is bounded: the caller cuts each text (COMPARE_LIMIT_BYTES),
only the first MAX_LINES lines of each are compared, and word marks have a budget (WORD_BUDGET,
in word pairs compared): a changed line past it, or longer than MAX_LINE_WORDS, is marked whole.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from difflib import SequenceMatcher
from itertools import groupby, zip_longest
from typing import Literal

Kind = Literal["same", "del", "ins"]

CONTEXT = 3  # unchanged lines kept around a change, as in `diff -u`
MIN_FOLD = 4
MAX_LINES = 5_000  # per side: about 0.3 s for the line matcher at worst
MAX_LINE_WORDS = 400  # word matching is quadratic in the worst case: 400 x 400 is about 8 ms
WORD_BUDGET = 1_000_000  # word pairs per diff, summed over its changed lines: about 0.3 s at worst
MIN_WORD_SIMILARITY = 0.3  # below this, two lines at the same place are a rewrite: marked whole
WORD = re.compile(r"\w+\s*|[^\w\s]+\s*|\s+")  # a word or a run of punctuation, with the spaces after it


@dataclass(frozen=True)
class Segment:
    kind: Kind  # "same" inside a changed line is a word both sides have
    text: str


@dataclass(frozen=True)
class Line:
    kind: Kind
    old: int | None  # 1-based line numbers; None on the side that does not have the line
    new: int | None
    segments: tuple[Segment, ...]


@dataclass
class Block:
    """Lines shown together: a change with its context, or a fold of unchanged lines."""

    folded: bool
    lines: list[Line] = field(default_factory=list)


@dataclass(frozen=True)
class TextDiff:
    blocks: list[Block]
    removed: int  # lines
    added: int
    lines_cut: bool  # a side had more than MAX_LINES lines; the rest was not compared

    @property
    def identical(self) -> bool:
        return not self.removed and not self.added


def words(line: str) -> list[str]:
    return WORD.findall(line)


class Budget:
    """What is left of a diff's WORD_BUDGET."""

    def __init__(self, pairs: int) -> None:
        self.pairs = pairs

    def spend(self, pairs: int) -> bool:
        if pairs > self.pairs:
            return False
        self.pairs -= pairs
        return True


def word_marks(old: str, new: str, budget: Budget) -> tuple[tuple[Segment, ...], tuple[Segment, ...]] | None:
    """The two lines as segments, the words only one side has marked; None when they are too long
    to match word by word, past the budget, or too different for marks to help."""
    a, b = words(old), words(new)
    if len(a) > MAX_LINE_WORDS or len(b) > MAX_LINE_WORDS:
        return None
    # Every word counts (autojunk off): spaces and short words are most of a line's words.
    matcher = SequenceMatcher(None, a, b, autojunk=False)
    if matcher.quick_ratio() < MIN_WORD_SIMILARITY or not budget.spend(len(a) * len(b)):
        return None
    if matcher.ratio() < MIN_WORD_SIMILARITY:
        return None
    left: list[Segment] = []
    right: list[Segment] = []
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal":
            left.append(Segment("same", "".join(a[i1:i2])))
            right.append(Segment("same", "".join(b[j1:j2])))
            continue
        if i2 > i1:
            left.append(Segment("del", "".join(a[i1:i2])))
        if j2 > j1:
            right.append(Segment("ins", "".join(b[j1:j2])))
    return tuple(left), tuple(right)


def changed_lines(old: list[str], new: list[str], i1: int, j1: int, budget: Budget) -> list[Line]:
    """A replaced stretch: its old lines, then its new ones (as `diff -u` orders them), each pair at
    the same place in the stretch marked word by word when they are alike."""
    removed: list[Line] = []
    added: list[Line] = []
    for offset, (before, after) in enumerate(zip_longest(old, new)):
        marks = word_marks(before, after, budget) if before is not None and after is not None else None
        if before is not None:
            segments = marks[0] if marks else (Segment("del", before),)
            removed.append(Line("del", i1 + offset + 1, None, segments))
        if after is not None:
            segments = marks[1] if marks else (Segment("ins", after),)
            added.append(Line("ins", None, j1 + offset + 1, segments))
    return removed + added


def diff_texts(old_text: str, new_text: str) -> TextDiff:
    """The line diff of two texts, unchanged stretches longer than the context folded away."""
    old, new = old_text.splitlines(), new_text.splitlines()
    lines_cut = len(old) > MAX_LINES or len(new) > MAX_LINES
    old, new = old[:MAX_LINES], new[:MAX_LINES]
    budget = Budget(WORD_BUDGET)  # read at each call, not bound once as a default would be
    lines: list[Line] = []
    for tag, i1, i2, j1, j2 in SequenceMatcher(None, old, new).get_opcodes():
        if tag == "equal":
            lines.extend(Line("same", i1 + k + 1, j1 + k + 1, (Segment("same", old[i1 + k]),)) for k in range(i2 - i1))
        else:
            lines.extend(changed_lines(old[i1:i2], new[j1:j2], i1, j1, budget))
    removed = sum(line.kind == "del" for line in lines)
    added = sum(line.kind == "ins" for line in lines)
    return TextDiff(blocks=fold(lines), removed=removed, added=added, lines_cut=lines_cut)


def fold(lines: list[Line]) -> list[Block]:
    """Keep CONTEXT unchanged lines either side of each change; fold the rest (still there, to
    open) unless it is fewer than MIN_FOLD lines, which would take as much room folded."""
    changed = [index for index, line in enumerate(lines) if line.kind != "same"]
    shown: set[int] = set()
    for index in changed:
        shown.update(range(max(index - CONTEXT, 0), min(index + CONTEXT + 1, len(lines))))
    blocks: list[Block] = []
    for hidden, group in groupby(enumerate(lines), key=lambda item: item[0] not in shown):
        stretch = [line for _, line in group]
        folded = hidden and len(stretch) >= MIN_FOLD
        if blocks and not blocks[-1].folded and not folded:
            blocks[-1].lines.extend(stretch)
        else:
            blocks.append(Block(folded, stretch))
    return blocks
