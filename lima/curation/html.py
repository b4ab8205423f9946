"""HTML → Markdown for dump bodies, with markdownify: code blocks, inline code, lists and tables kept;
links reduced to their text; images dropped."""

from __future__ import annotations

import re

from markdownify import MarkdownConverter


class _LimaConverter(MarkdownConverter):
    """markdownify with LIMA's pruning: no link targets, no images, fenced code blocks."""

    def convert_a(self, el, text, parent_tags):
        return text

    def convert_img(self, el, text, parent_tags):
        return ""

    def convert_pre(self, el, text, parent_tags):
        if not text:
            return ""
        code = el.get_text()
        fence = "````" if "```" in code else "```"
        return f"\n\n{fence}\n{code.strip(chr(10))}\n{fence}\n\n"


_CONVERTER = _LimaConverter(
    heading_style="ATX", bullets="-", escape_underscores=False, escape_asterisks=False
)
_BLANKS = re.compile(r"\n{3,}")
_BARE_URL = re.compile(r"\S*(?:https?://|www\.)\S+", re.I)  # the whole token that holds a URL


def html_to_markdown(html: str) -> str:
    """Convert a post body to Markdown; bare URLs left in the text are removed too."""
    markdown = _CONVERTER.convert(html)
    markdown = strip_urls(markdown)
    return _BLANKS.sub("\n\n", markdown).strip()


def strip_urls(text: str) -> str:
    """Remove bare URLs outside code (links are reduced to their text; a URL alone carries no text)."""
    parts = split_code(text)
    return "".join(p if is_code else _BARE_URL.sub("", p) for p, is_code in parts)


_CODE = re.compile(r"(```.*?```|````.*?````|`[^`\n]+`)", re.S)


def split_code(text: str) -> list[tuple[str, bool]]:
    """Split Markdown into (piece, is_code) so that prose rules skip fenced and inline code."""
    pieces: list[tuple[str, bool]] = []
    last = 0
    for match in _CODE.finditer(text):
        if match.start() > last:
            pieces.append((text[last : match.start()], False))
        pieces.append((match.group(0), True))
        last = match.end()
    if last < len(text):
        pieces.append((text[last:], False))
    return pieces


def prose(text: str) -> str:
    """The text with code removed (for first-person and reference checks)."""
    return " ".join(p for p, is_code in split_code(text) if not is_code)
