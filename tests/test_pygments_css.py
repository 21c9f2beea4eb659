"""static/pygments.css: the generator's output, and every code colour at WCAG AA (4.5:1) on every
background code is shown on, in the light and the dark scheme."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parent.parent
PYGMENTS_CSS = ROOT / "static" / "pygments.css"
APP_CSS = ROOT / "static" / "app.css"
DARK_BLOCK = "@media (prefers-color-scheme: dark) {"
AA = 4.5


def generator() -> ModuleType:
    """bench/make_pygments_css.py, loaded as a module (bench/ is not a package)."""
    spec = importlib.util.spec_from_file_location("make_pygments_css", ROOT / "bench" / "make_pygments_css.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def relative_luminance(colour: str) -> float:
    """WCAG 2.x relative luminance of "#rrggbb" (computed here, not borrowed from the generator)."""
    def linear(channel: int) -> float:
        value = channel / 255
        return value / 12.92 if value <= 0.04045 else ((value + 0.055) / 1.055) ** 2.4

    red, green, blue = (int(colour[i:i + 2], 16) for i in (1, 3, 5))  # hex digits in either case
    return 0.2126 * linear(red) + 0.7152 * linear(green) + 0.0722 * linear(blue)


def contrast_ratio(foreground: str, background: str) -> float:
    lighter, darker = sorted((relative_luminance(foreground), relative_luminance(background)), reverse=True)
    return (lighter + 0.05) / (darker + 0.05)


def app_colours(name: str) -> tuple[str, str]:
    """A custom property of app.css: its light value (in :root), then its dark one."""
    found = re.findall(rf"--{name}:\s*(#[0-9a-fA-F]{{6}})", APP_CSS.read_text(encoding="utf-8"))
    assert len(found) == 2, found
    return found[0].lower(), found[1].lower()


def schemes() -> dict[str, str]:
    """The light and the dark rules of pygments.css."""
    text = PYGMENTS_CSS.read_text(encoding="utf-8")
    light, dark = text.split(DARK_BLOCK)
    return {"light": light, "dark": dark}


def test_the_stylesheet_is_the_generators_output() -> None:
    # Edited by hand, a colour would escape the contrast rules the script applies.
    assert PYGMENTS_CSS.read_text(encoding="utf-8") == generator().stylesheet(), (
        "static/pygments.css is out of date: run .venv/bin/python bench/make_pygments_css.py"
    )


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_every_code_colour_reads_at_aa_on_every_code_background(scheme: str) -> None:
    rules = schemes()[scheme].lower()
    index = 0 if scheme == "light" else 1
    block = re.search(r"\.highlight \{ background: (#[0-9a-f]{6}); color: (#[0-9a-f]{6}|inherit) \}", rules)
    line = re.search(r"\.highlight \.hll \{ background-color: (#[0-9a-f]{6}) \}", rules)
    assert block and line, f"no .highlight or .hll rule in the {scheme} block"
    # What the browser paints behind code: the block's background, a highlighted line, and the page's
    # --code-bg, which `.markdown pre` in app.css sets on the <pre> itself.
    backgrounds = {"the .highlight block": block[1], ".hll lines": line[1], "--code-bg": app_colours("code-bg")[index]}
    colours = {".highlight": app_colours("text")[index] if block[2] == "inherit" else block[2]}
    tokens = re.findall(r"\.highlight (\.[a-z0-9]+) \{ color: (#[0-9a-f]{6}); background-color: (transparent|#[0-9a-f]{6})",
                        rules)
    assert len(tokens) > 50, "the token rules were not found"
    failures = []
    for selector, colour, own_background in tokens:
        behind = {"its own background": own_background} if own_background != "transparent" else backgrounds
        for where, background in behind.items():
            ratio = contrast_ratio(colour, background)
            if ratio < AA:
                failures.append(f"{selector} {colour} on {where} {background}: {ratio:.2f}:1")
    for selector, colour in colours.items():
        for where, background in backgrounds.items():
            ratio = contrast_ratio(colour, background)
            if ratio < AA:
                failures.append(f"{selector} text {colour} on {where} {background}: {ratio:.2f}:1")
    assert not failures, f"{scheme}: below {AA}:1\n" + "\n".join(failures)


def test_the_contrast_formula_matches_wcag() -> None:
    assert contrast_ratio("#000000", "#ffffff") == pytest.approx(21)
    assert contrast_ratio("#777777", "#ffffff") == pytest.approx(4.48, abs=0.01)
    # The colour this test was written for: Pygments' default `.ow` on the light code background.
    assert contrast_ratio("#aa22ff", "#f1f1ee") == pytest.approx(4.23, abs=0.01)
