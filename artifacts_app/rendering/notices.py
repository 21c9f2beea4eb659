"""What a page says when an output is shown as plain text instead of formatted, and that fallback."""

from __future__ import annotations

from markupsafe import Markup

# Why an output is shown as plain text instead of formatted: said on the page, above the text.
SLOW_NOTICE = ("Formatting this output took longer than the {budget} budget, so it is shown as plain text. "
               "Download it to read it elsewhere.")
LINK_NOTICE = ("This output has more link syntax than the formatter can parse in reasonable time, "
               "so it is shown as plain text.")
FAILED_NOTICE = "This output could not be formatted, so it is shown as plain text."


def plain_fallback(text: str, notice: str) -> Markup:
    """The text, escaped, as preformatted text under a notice that says why it is not formatted."""
    return Markup('<p class="render-notice" role="note">{}</p><pre class="wrap render-fallback">{}</pre>').format(
        notice, text
    )
