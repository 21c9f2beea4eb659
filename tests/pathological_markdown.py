"""A generated family of inputs python-markdown is slow on (or might be): every opener it treats
specially, repeated to the render limit, plus deep nesting and long reference chains."""

from __future__ import annotations

RENDER_LIMIT = 64 * 1024

# Every block and inline opener python-markdown (with fenced_code, tables, sane_lists,
# codehilite) or its raw-HTML handling treats specially.
OPENERS = [
    "<a ", "<", "</", "<a", "<!--", "<?", "<![CDATA[", "<!", "<div>", "<div ", "</div>", "<span>", "<p ",
    "<http://", "<https://a", "<mailto:", "<a@b", "&", "&#", "&#x", "&amp", "[", "![", "](", "[a]", "[a]:",
    "[a](", '[a](b "', "[a](b '", "[a](<", "[^", "*", "**", "***", "_", "__", "`", "``", "```\n", "~~~\n",
    "\\", "\\*", "#", "# ", "> ", "- ", "* ", "+ ", "1. ", "1) ", "    ", "\t", "|", "| a |\n|---|\n",
    "a\n=\n", "a\n-\n", "---\n", "***\n", "  \n", "a  \n", "\n\n", "<a href='", '<a href="', " x=", "'", '"',
    "<script>", "<style>", "<textarea>", "<pre>", "<table><tr><td>", "~~", "<!-- -- ", "<b><i>",
]


def repeated(opener: str, limit: int = RENDER_LIMIT) -> str:
    return opener * max(1, limit // len(opener.encode()))


def nested(limit: int = RENDER_LIMIT) -> dict[str, str]:
    """Deep nesting of lists, quotes, emphasis and brackets, and long link reference chains."""
    lists, depth = [], 0
    while sum(len(line) for line in lists) < limit:
        lists.append("  " * depth + "- item\n")
        depth += 1
    chain_count = limit // 48
    references = "\n".join(f"[r{i}]: /u{i} \"t{i}\"" for i in range(chain_count))
    uses = " ".join(f"[x][r{i}]" for i in range(chain_count))
    return {
        "nested lists": "".join(lists)[:limit],
        "nested ordered lists": "".join("   " * d + "1. x\n" for d in range(limit // 40))[:limit],
        "nested quotes": "> " * (limit // 2 - 1) + "x",
        "nested quotes with lists": "> - " * (limit // 4 - 1) + "x",
        "nested emphasis": "*" * (limit // 2) + "a" + "*" * (limit // 2 - 1),
        "nested strong and emphasis": "**_" * (limit // 6) + "a" + "_**" * (limit // 6),
        "nested brackets": "[" * (limit // 2) + "]" * (limit // 2),
        "nested html": "<div>" * (limit // 10) + "</div>" * (limit // 12),
        "reference chain": (references + "\n\n" + uses)[:limit],
        "reference definitions only": "\n".join(f"[a{i}]: <" for i in range(limit // 10))[:limit],
    }


def family() -> dict[str, str]:
    """name → text, each at most RENDER_LIMIT bytes."""
    inputs = {f"repeat {opener!r}": repeated(opener) for opener in OPENERS}
    inputs.update(nested())
    return inputs
