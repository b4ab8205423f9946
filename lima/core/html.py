"""HTML helpers for every report: all text from dumps and models is untrusted and escaped."""

from __future__ import annotations

import base64
import html
from pathlib import Path
from typing import Any


def esc(value: Any) -> str:
    """HTML-escape any value, quotes included (None shows as empty)."""
    return html.escape("" if value is None else str(value), quote=True)


def png_img(path: Path, alt: str = "") -> str:
    """An <img> with the PNG embedded, so a report is one self-contained file ('' when it is missing)."""
    if not path.is_file():
        return ""
    data = base64.b64encode(path.read_bytes()).decode()
    return f'<img alt="{esc(alt or path.name)}" src="data:image/png;base64,{data}">'
