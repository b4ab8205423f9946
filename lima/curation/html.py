"""HTML → text for dump bodies with html-to-markdown (a maintained converter with a Rust core, ~5x faster than
markdownify here).

Two markups: ``lima`` (LIMA's rule) keeps code blocks, inline code and lists and removes the rest of the
markup: headings, emphasis, blockquotes and tables become plain text (a table row becomes one line, its cells
joined by ", "). ``markdown`` keeps headings, emphasis, tables and blockquotes as Markdown as well. In both,
links are reduced to their text and images dropped.
"""

from __future__ import annotations

import re

import html_to_markdown as h2m
import lxml.html

# Enum fields are given as the binding's enum members: strings would be re-parsed on every call.
_COMMON = dict(
    heading_style=h2m.HeadingStyle.ATX,
    list_indent_type=h2m.ListIndentType.SPACES,
    bullets="-",
    code_block_style=h2m.CodeBlockStyle.BACKTICKS,
    highlight_style=h2m.HighlightStyle.DOUBLE_EQUAL,
    whitespace_mode=h2m.WhitespaceMode.NORMALIZED,
    newline_style=h2m.NewlineStyle.SPACES,
    inline_data_media=h2m.InlineDataMedia.KEEP,
    hidden_content=h2m.HiddenContent.DROP,
    url_escape_style=h2m.UrlEscapeStyle.ANGLE,
    link_style=h2m.LinkStyle.INLINE,
    output_format=h2m.OutputFormat.MARKDOWN,
    tier_strategy=h2m.TierStrategy.AUTO,
    escape_asterisks=False,
    escape_underscores=False,
    escape_misc=False,
    autolinks=False,
    skip_images=True,
    extract_metadata=False,
)
# markup "lima": the inline tags whose markup goes (their text stays), stripped by the converter itself.
_INLINE_MARKUP = ("strong", "b", "em", "i", "u", "mark", "del", "s", "strike", "ins", "sup", "sub", "small",
                  "big", "span", "font", "abbr", "cite", "q", "dfn", "var", "samp")  # fmt: skip
_OPTIONS = h2m.ConversionOptions(**_COMMON, strip_tags=["a"])  # keep a link's text, drop its target
_LIMA_OPTIONS = h2m.ConversionOptions(**_COMMON, strip_tags=["a", *_INLINE_MARKUP])
_BLANKS = re.compile(r"\n{3,}")
_BARE_URL = re.compile(r"(?<!\S)\S*?(?:https?://|www\.)\S*", re.I)  # the whole token that holds a URL


# markup "lima": block tags rewritten before conversion (headings become paragraphs, …); only bodies that hold
# one pay for the rewrite (an lxml round trip, ~1 ms).
_BLOCK_MARKUP = re.compile(
    r"<(?:h[1-6]|blockquote|table|hr|dl|dt|dd|kbd|details|summary|figure|center)\b", re.I
)
_AS_PARAGRAPH = ("h1", "h2", "h3", "h4", "h5", "h6", "dt", "dd", "caption", "figcaption")
_AS_DIV = ("blockquote", "dl", "details", "summary", "figure", "center", "section", "article", "aside")


def plain_blocks(html: str) -> str:
    """The body with its block markup that LIMA removes turned into paragraphs (inline markup is left to the
    converter's ``strip_tags``)."""
    if not html.strip():
        return html
    root = lxml.html.fragment_fromstring(html, create_parent="div")
    for element in root.iter(*_AS_PARAGRAPH):
        element.tag = "p"
    for element in root.iter(*_AS_DIV):
        element.tag = "div"
    for element in root.iter("kbd"):
        element.tag = "code"  # a key to press is shown like code
    for table in list(root.iter("table")):
        rows = []
        for row in table.iter("tr"):
            cells = [" ".join(cell.text_content().split()) for cell in row if cell.tag in ("td", "th")]
            if any(cells):
                rows.append(", ".join(c for c in cells if c))
        replacement = lxml.html.fragment_fromstring("<div></div>")
        for text in rows:
            paragraph = lxml.html.Element("p")
            paragraph.text = text
            replacement.append(paragraph)
        replacement.tail = table.tail
        table.getparent().replace(table, replacement)
    for element in list(root.iter("hr")):
        element.drop_tree()  # (its tail text stays)
    return lxml.html.tostring(root, encoding="unicode")


def html_to_markdown(html: str, markup: str = "markdown") -> str:
    """Convert a post body to Markdown (``markdown``) or to LIMA's text with only code and lists marked up
    (``lima``); bare URLs left in the text are removed too."""
    if markup == "lima":
        if _BLOCK_MARKUP.search(html):
            html = plain_blocks(html)
        markdown = h2m.convert(html, _LIMA_OPTIONS).content or ""
    else:
        markdown = h2m.convert(html, _OPTIONS).content or ""
    markdown = strip_urls(markdown)
    if "\n\n\n" in markdown:  # rare; the regex alone costs a quarter of the conversion
        markdown = _BLANKS.sub("\n\n", markdown)
    return markdown.strip()


def strip_urls(text: str) -> str:
    """Remove bare URLs outside code (links are reduced to their text; a URL alone carries no text)."""
    if "://" not in text and "www." not in text.lower():
        return text  # the common case, without a regex pass
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
