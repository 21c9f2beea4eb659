"""Two texts as a line diff, with the changed words marked inside changed lines.

The result is data (kinds and plain text), never HTML: the template escapes every piece, so an
output's markup cannot reach the page. difflib is the standard library's diff; what it lacks for a
page (folding unchanged runs, word marks inside a changed line, a bound on the work) is here.

LLM output is untrusted, so the work is bounded: the caller cuts each text (COMPARE_LIMIT_CHARS),
only the first MAX_LINES lines of each are compared, and the line matcher has a budget (LINE_BUDGET,
in lines scanned): two texts it cannot match within it (thousands of short lines shuffled, say)
get a coarse diff instead, their common start and end kept and the middle shown as replaced. Word
marks have a budget too (WORD_BUDGET, in word pairs compared): a changed line past it, or longer
than MAX_LINE_WORDS, is marked whole.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from difflib import Match, SequenceMatcher
from itertools import groupby, islice, zip_longest
from typing import Literal

Kind = Literal["same", "del", "ins"]

CONTEXT = 3  # unchanged lines kept around a change, as in `diff -u`
MIN_FOLD = 4
MAX_LINES = 5_000  # per side
# difflib's matcher scans a stretch of lines for each block it matches: about ten thousand lines
# for ordinary texts, millions for adversarial ones (seconds); 500,000 take about 0.2 s on one core.
LINE_BUDGET = 500_000
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
    coarse: bool = False  # past LINE_BUDGET: only the common start and end were matched

    @property
    def identical(self) -> bool:
        return not self.removed and not self.added


def words(line: str, limit: int | None = None) -> list[str]:
    """The line's words (with their spaces), at most `limit` of them."""
    return [match.group() for match in islice(WORD.finditer(line), limit)]


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
    a, b = words(old, MAX_LINE_WORDS + 1), words(new, MAX_LINE_WORDS + 1)
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


class OverBudget(Exception):
    """The line matcher has scanned LINE_BUDGET lines."""


class BoundedMatcher(SequenceMatcher[str]):
    """difflib's matcher, stopped (OverBudget) once it has scanned `budget` lines of the old text.

    Each search for a longest match scans its stretch of the old text once, looking each line up
    among the new text's (at most 1% of them, past 200 lines: difflib's autojunk drops lines more
    common than that), so the lines scanned measure the work.
    """

    def __init__(self, old: list[str], new: list[str], budget: int) -> None:
        self.budget = budget
        self.old_lines = len(old)
        super().__init__(None, old, new)

    def find_longest_match(self, alo: int = 0, ahi: int | None = None, blo: int = 0, bhi: int | None = None) -> Match:
        ahi = self.old_lines if ahi is None else ahi
        self.budget -= ahi - alo
        if self.budget < 0:
            raise OverBudget
        return super().find_longest_match(alo, ahi, blo, bhi)


Opcode = tuple[Literal["replace", "delete", "insert", "equal"], int, int, int, int]


def ends_only(old: list[str], new: list[str]) -> list[Opcode]:
    """The coarse diff: the lines both texts start and end with kept, what lies between replaced."""
    start = 0
    while start < min(len(old), len(new)) and old[start] == new[start]:
        start += 1
    end = 0
    while end < min(len(old), len(new)) - start and old[-1 - end] == new[-1 - end]:
        end += 1
    opcodes: list[Opcode] = [("equal", 0, start, 0, start)] if start else []
    if start < len(old) - end or start < len(new) - end:
        opcodes.append(("replace", start, len(old) - end, start, len(new) - end))
    if end:
        opcodes.append(("equal", len(old) - end, len(old), len(new) - end, len(new)))
    return opcodes


def diff_texts(old_text: str, new_text: str) -> TextDiff:
    """The line diff of two texts, unchanged stretches longer than the context folded away."""
    old, new = old_text.splitlines(), new_text.splitlines()
    lines_cut = len(old) > MAX_LINES or len(new) > MAX_LINES
    old, new = old[:MAX_LINES], new[:MAX_LINES]
    try:
        opcodes: list[Opcode] = BoundedMatcher(old, new, LINE_BUDGET).get_opcodes()
        coarse = False
    except OverBudget:
        opcodes, coarse = ends_only(old, new), True
    budget = Budget(WORD_BUDGET)  # read at each call, not bound once as a default would be
    lines: list[Line] = []
    for tag, i1, i2, j1, j2 in opcodes:
        if tag == "equal":
            lines.extend(Line("same", i1 + k + 1, j1 + k + 1, (Segment("same", old[i1 + k]),)) for k in range(i2 - i1))
        else:
            lines.extend(changed_lines(old[i1:i2], new[j1:j2], i1, j1, budget))
    removed = sum(line.kind == "del" for line in lines)
    added = sum(line.kind == "ins" for line in lines)
    return TextDiff(blocks=fold(lines), removed=removed, added=added, lines_cut=lines_cut, coarse=coarse)


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
