"""The fonts a PDF export is set in: Noto, under the SIL Open Font License 1.1.

No system font is used, so every machine set up by `make install` draws the same glyphs:
- `font_files/` beside this module (vendored, with `OFL.txt`): static Noto Sans Bold
  (headings) and Noto Sans Mono (system prompts, settings, code), so bold and monospace
  cost a file read, not the seconds of making an instance of a variable font;
- `manimgx-fonts`: Noto Sans (Latin, Cyrillic, Greek; upright and italic), Noto Sans
  Arabic, Hebrew and the other scripts Latin faces lack, Noto Sans Symbols, and the
  monochrome Noto Emoji;
- `pylopdf-fonts-zh-cn`: Noto Sans SC (Chinese, and Japanese kana);
- `pylopdf-fonts-ko`: Noto Sans KR (Korean).
The variable fonts are used at their default instance (regular weight): making another
instance costs seconds per font. A document loads only the fallbacks its text needs
(`fallbacks_for`): parsing all of them, the CJK ones above all, costs a second a document.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import pylopdf_fonts_ko
import pylopdf_fonts_zh_cn
from fontTools.ttLib import TTFont  # type: ignore[import-untyped]


@dataclass(frozen=True, slots=True)
class FontFile:
    family: str
    style: str  # "", "I" or "B"
    path: Path


MAIN_FAMILY = "noto-sans"
MONO_FAMILY = "noto-mono"
_VENDORED = Path(__file__).resolve().parent / "font_files"
_NOTO = "manimgx_fonts"
# Noto Sans for scripts, in the order a missing glyph is looked for.
_SCRIPTS = (
    "Arabic",
    "Hebrew",
    "Devanagari",
    "Bengali",
    "Thai",
    "Tamil",
    "Georgian",
    "Armenian",
    "Ethiopic",
)


def _noto(name: str) -> Path:
    return Path(str(resources.files(_NOTO).joinpath(name)))


def main_fonts() -> list[FontFile]:
    return [
        FontFile(MAIN_FAMILY, "", _noto("NotoSans[wght].ttf")),
        FontFile(MAIN_FAMILY, "I", _noto("NotoSans-Italic[wght].ttf")),
        FontFile(MAIN_FAMILY, "B", _VENDORED / "NotoSans-Bold.ttf"),
        FontFile(MONO_FAMILY, "", _VENDORED / "NotoSansMono-Regular.ttf"),
    ]


def fallback_fonts() -> list[FontFile]:
    """The fonts fpdf2 looks in for a glyph the main font lacks, in this order."""
    scripts = [
        FontFile(f"noto-{script.lower()}", "", _noto(f"NotoSans{script}[wght].ttf"))
        for script in _SCRIPTS
    ]
    return [
        *scripts,
        FontFile("noto-sc", "", pylopdf_fonts_zh_cn.sans_path()),
        FontFile("noto-kr", "", pylopdf_fonts_ko.sans_path()),
        FontFile("noto-symbols", "", _noto("NotoSansSymbols[wght].ttf")),
        FontFile("noto-emoji", "", _noto("NotoEmoji[wght].ttf")),
    ]


@functools.cache
def coverage(path: Path) -> frozenset[int]:
    """The code points the font has a glyph for (its cmap), read once per process."""
    with TTFont(path, lazy=True) as font:
        return frozenset(font.getBestCmap())


def fallbacks_for(text: Iterable[str]) -> list[FontFile]:
    """The fallback fonts, in order, that hold a glyph for some character of `text` the
    main font lacks."""
    missing = {ord(char) for part in text for char in part}
    missing -= coverage(main_fonts()[0].path)
    needed = []
    for font in fallback_fonts():
        if not missing:
            break
        found = missing & coverage(font.path)
        if found:
            needed.append(font)
            missing -= found
    return needed
