"""The line diff behind comparing two runs: what is marked, what is folded, and where the work stops."""

from __future__ import annotations

import time

import pytest

from artifacts_app import diffing
from artifacts_app.diffing import Budget, Line, Segment, diff_texts, word_marks


def changed(diff: diffing.TextDiff) -> list[Line]:
    return [line for block in diff.blocks for line in block.lines if line.kind != "same"]


def marked(line: Line) -> list[tuple[str, str]]:
    """The words only one side has, with their kind."""
    return [(piece.kind, piece.text.strip()) for piece in line.segments if piece.kind != "same"]


def test_identical_texts_have_no_change() -> None:
    diff = diff_texts("one\ntwo\n", "one\ntwo\n")
    assert diff.identical
    assert (diff.removed, diff.added) == (0, 0)


def test_a_changed_word_is_marked_inside_its_line_and_the_rest_of_the_line_is_not() -> None:
    diff = diff_texts("intro\nThe cell holds 4 volts.\noutro", "intro\nThe cell holds 5 volts.\noutro")
    assert (diff.removed, diff.added) == (1, 1)
    old_line, new_line = changed(diff)
    assert (old_line.kind, old_line.old, old_line.new) == ("del", 2, None)
    assert (new_line.kind, new_line.old, new_line.new) == ("ins", None, 2)
    assert marked(old_line) == [("del", "4")]
    assert marked(new_line) == [("ins", "5")]
    # Put back together, each side's segments are its line exactly.
    assert "".join(piece.text for piece in old_line.segments) == "The cell holds 4 volts."
    assert "".join(piece.text for piece in new_line.segments) == "The cell holds 5 volts."


def test_a_rewritten_line_is_marked_whole_not_word_by_word() -> None:
    diff = diff_texts("Batteries store energy chemically.", "Completely unrelated sentence here!")
    old_line, new_line = changed(diff)
    assert old_line.segments == (Segment("del", "Batteries store energy chemically."),)
    assert new_line.segments == (Segment("ins", "Completely unrelated sentence here!"),)


def test_added_and_removed_lines_carry_the_right_numbers() -> None:
    diff = diff_texts("a\nb\nc", "a\nc\nd")
    lines = [line for block in diff.blocks for line in block.lines]
    assert [(line.kind, line.old, line.new, line.segments[0].text) for line in lines] == [
        ("same", 1, 1, "a"), ("del", 2, None, "b"), ("same", 3, 2, "c"), ("ins", None, 3, "d"),
    ]


def test_a_replaced_stretch_lists_its_removed_lines_before_its_added_ones() -> None:
    diff = diff_texts("keep\nold one\nold two\nkeep", "keep\nnew one\nnew two\nnew three\nkeep")
    assert [line.kind for line in changed(diff)] == ["del", "del", "ins", "ins", "ins"]
    assert (diff.removed, diff.added) == (2, 3)


def test_long_unchanged_stretches_fold_leaving_context_around_each_change() -> None:
    old = [f"line {n}" for n in range(1, 41)]
    new = list(old)
    new[19] = "line twenty"
    diff = diff_texts("\n".join(old), "\n".join(new))
    folds = [block for block in diff.blocks if block.folded]
    assert [len(block.lines) for block in folds] == [19 - diffing.CONTEXT, 20 - diffing.CONTEXT]
    shown = [line for block in diff.blocks if not block.folded for line in block.lines]
    assert [line.old for line in shown if line.kind != "ins"] == list(range(20 - diffing.CONTEXT, 21 + diffing.CONTEXT))
    # Folded lines are still there to open: nothing of either text is lost.
    everything = [line for block in diff.blocks for line in block.lines]
    assert [line.old for line in everything if line.old] == list(range(1, 41))


def test_a_stretch_shorter_than_a_fold_is_shown_not_folded() -> None:
    unchanged = diffing.CONTEXT * 2 + diffing.MIN_FOLD - 1  # between two changes: leaves MIN_FOLD - 1 hidden
    old = ["first"] + [f"same {n}" for n in range(unchanged)] + ["last"]
    new = ["FIRST"] + [f"same {n}" for n in range(unchanged)] + ["LAST"]
    diff = diff_texts("\n".join(old), "\n".join(new))
    assert not any(block.folded for block in diff.blocks)
    old.insert(1, "one more")
    new.insert(1, "one more")
    diff = diff_texts("\n".join(old), "\n".join(new))
    assert [len(block.lines) for block in diff.blocks if block.folded] == [diffing.MIN_FOLD]


def test_only_the_first_max_lines_are_compared_and_the_diff_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(diffing, "MAX_LINES", 10)
    old = "\n".join(f"line {n}" for n in range(20))
    new = old.replace("line 15", "line fifteen")
    diff = diff_texts(old, new)
    assert diff.lines_cut
    assert diff.identical  # the change is past the lines compared
    assert not diff_texts("a\nb", "a\nc").lines_cut


def test_word_marks_stop_when_the_budget_is_spent() -> None:
    old, new = "the quick brown fox jumps", "the quick red fox jumps"
    pairs = len(diffing.words(old)) * len(diffing.words(new))
    assert word_marks(old, new, Budget(pairs - 1)) is None
    budget = Budget(pairs)
    assert word_marks(old, new, budget) is not None
    assert budget.pairs == 0
    assert word_marks(old, new, budget) is None


def test_a_diff_past_its_word_budget_still_shows_every_changed_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(diffing, "WORD_BUDGET", 30)
    old = "\n".join(f"alpha beta gamma {n}" for n in range(5))
    new = "\n".join(f"alpha beta delta {n}" for n in range(5))
    diff = diff_texts(old, new)
    lines = changed(diff)
    assert (diff.removed, diff.added) == (5, 5)
    # The first pair fits the budget and is marked word by word; the rest are marked whole.
    assert marked(lines[0]) == [("del", "gamma")]
    assert lines[1].segments == (Segment("del", "alpha beta gamma 1"),)


def test_a_line_with_too_many_words_is_marked_whole() -> None:
    long_old = " ".join(["word"] * (diffing.MAX_LINE_WORDS + 1))
    long_new = long_old + " more"
    old_line, new_line = changed(diff_texts(long_old, long_new))
    assert old_line.segments == (Segment("del", long_old),)
    assert new_line.segments == (Segment("ins", long_new),)


def test_markup_in_a_text_is_kept_as_text_for_the_template_to_escape() -> None:
    diff = diff_texts("<b>safe</b>", "<script>alert(1)</script>")
    # The pieces (words and punctuation, however they are marked) put back together are the texts as written.
    assert ["".join(piece.text for piece in line.segments) for line in changed(diff)] == [
        "<b>safe</b>", "<script>alert(1)</script>",
    ]


def test_texts_the_line_matcher_cannot_match_within_its_budget_get_a_coarse_diff(monkeypatch: pytest.MonkeyPatch) -> None:
    lines = [f"line {n}" for n in range(200)]
    old = "\n".join(["header", *lines, "footer"])
    new = "\n".join(["header", *(x for line in lines for x in (line, f"new {line}")), "footer"])
    assert not diff_texts(old, new).coarse  # within the budget: each added line found
    assert diff_texts(old, new).removed == 0
    monkeypatch.setattr(diffing, "LINE_BUDGET", 1_000)
    diff = diff_texts(old, new)
    assert diff.coarse
    everything = [line for block in diff.blocks for line in block.lines]
    # The common first and last lines are kept; everything between is shown, as replaced.
    assert (everything[0].kind, everything[0].segments[0].text) == ("same", "header")
    assert (everything[-1].kind, everything[-1].segments[0].text) == ("same", "footer")
    assert (diff.removed, diff.added) == (199, 399)  # "line 0" starts both too
    assert [line.old for line in everything if line.old] == list(range(1, 203))
    assert [line.new for line in everything if line.new] == list(range(1, 403))


def test_an_adversarial_pair_of_texts_is_diffed_in_bounded_time() -> None:
    lines = [f"l{n}" for n in range(diffing.MAX_LINES)]
    interleaved = [x for line in lines for x in (line, f"n{line}")]  # difflib alone: seconds
    started = time.perf_counter()
    diff = diff_texts("\n".join(lines), "\n".join(interleaved))
    assert time.perf_counter() - started < 2  # about 0.3 s; generous for a loaded machine
    assert diff.coarse and diff.lines_cut


def test_identical_ends_are_not_counted_twice_in_a_coarse_diff() -> None:
    assert diffing.ends_only(["a", "a"], ["a"]) == [("equal", 0, 1, 0, 1), ("replace", 1, 2, 1, 1)]
    assert diffing.ends_only(["a", "b", "c"], ["a", "x", "c"]) == [
        ("equal", 0, 1, 0, 1), ("replace", 1, 2, 1, 2), ("equal", 2, 3, 2, 3),
    ]
    assert diffing.ends_only(["same"], ["same"]) == [("equal", 0, 1, 0, 1)]


def test_words_stop_at_their_limit() -> None:
    assert diffing.words("a b c d", 2) == ["a ", "b "]
    assert diffing.words("a, b") == ["a", ", ", "b"]
