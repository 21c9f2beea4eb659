"""Write static/pygments.css: code-highlight colours for light mode and, via a media query, dark mode.

Every token colour is made to read at WCAG AA (4.5:1) on every background code is shown on in its
scheme: the style's own, its highlighted-line colour, and the page's --code-bg (static/app.css), which
is what `.markdown pre` actually paints behind the code. A colour below that is darkened (light) or
lightened (dark) in small steps, keeping its hue, until it passes; tests/test_pygments_css.py checks
the file is this script's output and measures every colour again.

Run from the project root: .venv/bin/python bench/make_pygments_css.py
"""

from __future__ import annotations

import colorsys
import re
import sys
from pathlib import Path

from pygments.style import StyleMeta
from pygments.styles import get_style_by_name
from pygments.token import STANDARD_TYPES, Token

LIGHT_STYLE = "default"
DARK_STYLE = "github-dark"
SCOPE = ".highlight"  # codehilite's css_class in artifacts_app/rendering.py
ROOT = Path(__file__).resolve().parent.parent
OUTPUT = ROOT / "static" / "pygments.css"
APP_CSS = ROOT / "static" / "app.css"
MINIMUM_CONTRAST = 4.5  # WCAG 2 AA for normal-size text (code is small text)


def page_code_backgrounds() -> tuple[str, str]:
    """--code-bg in app.css: the light value (in :root), then the dark one (in the dark media block)."""
    found = re.findall(r"--code-bg:\s*(#[0-9a-fA-F]{6})", APP_CSS.read_text(encoding="utf-8"))
    if len(found) != 2:
        raise SystemExit(f"expected two --code-bg colours in {APP_CSS}, found {found}")
    return found[0], found[1]


def luminance(colour: str) -> float:
    """WCAG 2 relative luminance of #rrggbb."""
    channels = []
    for index in (1, 3, 5):
        value = int(colour[index:index + 2], 16) / 255
        channels.append(value / 12.92 if value <= 0.04045 else ((value + 0.055) / 1.055) ** 2.4)
    red, green, blue = channels
    return 0.2126 * red + 0.7152 * green + 0.0722 * blue


def contrast(first: str, second: str) -> float:
    """WCAG 2 contrast ratio of two #rrggbb colours (1 to 21)."""
    lighter, darker = sorted((luminance(normalised(first)), luminance(normalised(second))), reverse=True)
    return (lighter + 0.05) / (darker + 0.05)


def normalised(colour: str) -> str:
    """#rrggbb in lower case, from Pygments' "#abc", "abcdef" or "#ABCDEF"."""
    digits = colour.lstrip("#").lower()
    return "#" + ("".join(digit * 2 for digit in digits) if len(digits) == 3 else digits)


def readable(colour: str, backgrounds: list[str], dark: bool) -> str:
    """colour, or the nearest colour of the same hue that reads at MINIMUM_CONTRAST on every background."""
    colour = normalised(colour)
    backgrounds = [normalised(background) for background in backgrounds]
    red, green, blue = (int(colour[index:index + 2], 16) / 255 for index in (1, 3, 5))
    hue, lightness, saturation = colorsys.rgb_to_hls(red, green, blue)
    while min(contrast(colour, background) for background in backgrounds) < MINIMUM_CONTRAST:
        lightness = min(1.0, lightness + 0.005) if dark else max(0.0, lightness - 0.005)
        red, green, blue = colorsys.hls_to_rgb(hue, lightness, saturation)
        colour = "#" + "".join(f"{round(channel * 255):02x}" for channel in (red, green, blue))
        if lightness in (0.0, 1.0):
            break
    return colour


def token_rule(
    style: StyleMeta, token: object, selector: str, backgrounds: list[str], dark: bool
) -> tuple[str, str | None]:
    """One rule setting every property a token class can set, so a later block overrides it entirely;
    and its colour, when it sets one on the block's own backgrounds."""
    # Pygments' own get_style_defs omits properties a style leaves unset; then a light rule's
    # colour or bold would leak into dark mode. Writing each property explicitly prevents that.
    spec = style.style_for_token(token)
    # A token with a background of its own is read on that; any other on the block's backgrounds.
    behind = [f"#{spec['bgcolor']}"] if spec["bgcolor"] else backgrounds
    colour = readable(spec["color"], behind, dark) if spec["color"] else None
    declarations = [
        f"color: {colour}" if colour else "color: inherit",
        f"background-color: #{spec['bgcolor']}" if spec["bgcolor"] else "background-color: transparent",
        "font-weight: bold" if spec["bold"] else "font-weight: inherit",
        "font-style: italic" if spec["italic"] else "font-style: inherit",
        "text-decoration: underline" if spec["underline"] else "text-decoration: none",
        f"border: 1px solid #{spec['border']}" if spec["border"] else "border: none",
    ]
    return f"{selector} {{ {'; '.join(declarations)} }}", None if spec["bgcolor"] else colour


def blend(base: str, other: str, share: float) -> str:
    """#rrggbb that is `share` of other and the rest base."""
    channels = (
        round(int(base[index:index + 2], 16) * (1 - share) + int(other[index:index + 2], 16) * share)
        for index in (1, 3, 5)
    )
    return "#" + "".join(f"{channel:02x}" for channel in channels)


def line_highlight(style_colour: str, page_background: str, block_background: str, colours: list[str]) -> str:
    """The highlighted-line background: the style's own, or as much of it over the page's code
    background as still lets every token colour read at MINIMUM_CONTRAST; failing that, the style's
    block background, on which every colour reads by construction (github-dark's mid grey #6e7681
    leaves its comments at 1.6:1, and any share of it that keeps them readable is indistinguishable)."""
    for step in range(20, 3, -1):
        candidate = blend(page_background, style_colour, step / 20)
        if all(contrast(colour, candidate) >= MINIMUM_CONTRAST for colour in colours):
            return candidate
    return block_background


def style_rules(name: str, page_background: str, dark: bool) -> list[str]:
    """The container rule, highlighted lines, and one rule per Pygments token class for a style."""
    style = get_style_by_name(name)
    backgrounds = [style.background_color, page_background]
    base = style.style_for_token(Token.Text)["color"] or style.style_for_token(Token)["color"]
    text = readable(base, backgrounds, dark) if base else None
    colours = [text] if text else []
    token_rules = []
    for token, short in sorted(STANDARD_TYPES.items(), key=lambda item: item[1]):
        if short:
            rule, colour = token_rule(style, token, f"{SCOPE} .{short}", backgrounds, dark)
            token_rules.append(rule)
            if colour:
                colours.append(colour)
    highlight = line_highlight(
        normalised(style.highlight_color), page_background, normalised(style.background_color), colours
    )
    return [
        f"{SCOPE} {{ background: {style.background_color}; color: {text or 'inherit'} }}",
        f"{SCOPE} .hll {{ background-color: {highlight} }}",
        *token_rules,
    ]


def stylesheet() -> str:
    """The whole file."""
    header = (
        f"/* Generated by bench/make_pygments_css.py (Pygments styles {LIGHT_STYLE!r} and {DARK_STYLE!r}).\n"
        "   Do not edit by hand: change the script and run  .venv/bin/python bench/make_pygments_css.py\n"
        "   Every rule sets every property, so the dark block below fully replaces the light one.\n"
        f"   Colours below {MINIMUM_CONTRAST}:1 on the code backgrounds were adjusted to reach it (WCAG AA). */\n"
    )
    light_background, dark_background = page_code_backgrounds()
    light = "\n".join(style_rules(LIGHT_STYLE, light_background, dark=False))
    dark = "\n".join("  " + rule for rule in style_rules(DARK_STYLE, dark_background, dark=True))
    return f"{header}\n{light}\n\n@media (prefers-color-scheme: dark) {{\n{dark}\n}}\n"


def main() -> int:
    """Write OUTPUT."""
    OUTPUT.write_text(stylesheet(), encoding="utf-8")
    print(f"wrote {OUTPUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
