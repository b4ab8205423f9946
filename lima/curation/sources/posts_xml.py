"""Reading a Stack Exchange ``Posts.xml``: the file itself (or extracted from a ``.7z``), its rows as one
streaming parse (pass 1 of the reader), and the wanted rows alone, found by a byte scan (pass 2).

Pure I/O over the dump's layout: no filter, no record. ``stackexchange`` decides what is wanted and why.
"""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
from collections.abc import Iterator
from pathlib import Path

from lxml import etree

from lima.core.errors import LimaError

_FREE_EVERY = 128  # rows kept in the parsed tree before they are freed together (fits in cache)


def int_or(value: str | None, default: int = 0) -> int:
    try:
        return int(value) if value is not None else default
    except ValueError:
        return default


def iter_rows(path: Path, dtd: bool = True) -> Iterator[etree._Element]:
    """Stream ``<row>`` elements; finished rows are freed in batches.

    A file with a DTD is read with entity resolution off, as always. Without a DTD no entity can be
    declared, so libxml2's default entity handling reads the same values, ~8% faster.
    """
    try:
        n = 0
        for _, elem in etree.iterparse(
            str(path),
            events=("end",),
            tag="row",
            huge_tree=True,
            resolve_entities=False if dtd else "internal",
            no_network=True,
        ):
            yield elem
            n += 1
            if n == _FREE_EVERY:
                n = 0
                parent = elem.getparent()
                if parent is not None:
                    del parent[:]  # every child is finished: the parser is past this row's end
    except etree.XMLSyntaxError as exc:
        line, col = exc.position if exc.position else (0, 0)
        raise LimaError(
            f"{path}: line {line}, column {col}: malformed or truncated XML ({exc.msg}); "
            "re-download or re-extract the dump"
        ) from None
    except OSError as exc:
        raise LimaError(f"{path}: cannot read ({exc})") from None


@contextlib.contextmanager
def posts_file(path: Path) -> Iterator[Path]:
    """The ``Posts.xml`` to read: the file itself, or extracted from a ``.7z`` into a temp dir."""
    if path.suffix.lower() != ".7z":
        yield path
        return
    import py7zr

    try:
        with py7zr.SevenZipFile(path, "r") as archive:
            names = [n for n in archive.getnames() if Path(n).name.lower() == "posts.xml"]
            if not names:
                raise LimaError(
                    f"{path}: the archive holds no Posts.xml (it has {len(archive.getnames())} files)"
                )
            with tempfile.TemporaryDirectory(prefix="lima-7z-") as tmp:
                archive.extract(path=tmp, targets=names[:1])
                yield Path(tmp) / names[0]
    except (py7zr.Bad7zFile, py7zr.exceptions.ArchiveError, EOFError, OSError) as exc:
        raise LimaError(f"{path}: not a readable 7z archive ({exc}); re-download the site dump") from None


_BLOCK = 4 << 20
_MAX_BLOCK = 64 << 20  # a row longer than this is left to the full parse
_MAX_MISSES = 8  # ids not where Id order puts them, before the byte scan leaves the rest to the full parse
_ROW_START = b'<row Id="'  # the layout of real dumps; any other is read by the full parse
_ROW_ID = re.compile(rb'<row Id="(\d+)"')
_UTF8_NAMES = {b"utf-8", b"utf8", b"us-ascii", b"ascii"}
_XML_DECL = re.compile(rb"""\s*<\?xml[^>]*?\sencoding\s*=\s*["']([^"']*)["']""")
_PROLOG = re.compile(rb"(?:\s+|<\?.*?\?>|<!--.*?-->)*", re.S)
_HEAD = 64 << 10


def wanted_rows(
    posts: Path, wanted: set[int], scan: bool = True, dtd: bool = True
) -> Iterator[tuple[int, etree._Element]]:
    """(id, row) for each wanted id: the first row with that id, as the full parse gives it.

    Pass 1 parsed the whole file, so it is well-formed. With ``scan`` (UTF-8 without a DTD, as real dumps
    are) the rows are found with a byte scan and only the wanted ones are parsed. Rows the scan cannot
    place (another layout or order, a ``/>`` inside a value) are read by a full streaming parse afterwards,
    so the result never depends on the layout.
    """
    given: set[int] = set()
    if scan:
        yield from scan_rows(posts, sorted(wanted), given)
    missing = wanted - given
    if missing:
        for row in iter_rows(posts, dtd):
            post_id = int_or(row.get("Id"), -1)
            if post_id in missing:
                missing.discard(post_id)
                yield post_id, row
                if not missing:
                    break


def prolog(posts: Path) -> tuple[bool, bool]:
    """(UTF-8 or ASCII, may have a DTD), read from the file's prolog.

    A row's bytes parse the same on their own only in UTF-8 and without a DTD (no declared entities).
    A prolog longer than the bytes read counts as having a DTD.
    """
    with open(posts, "rb") as fh:
        head = fh.read(_HEAD)
    if head.startswith(b"\xef\xbb\xbf"):
        head = head[3:]
    elif b"\0" in head[:4]:  # UTF-16 or UTF-32, with or without a byte-order mark
        return False, True
    decl = _XML_DECL.match(head)
    end = _PROLOG.match(head).end()  # past the declaration, comments, processing instructions
    dtd = end == len(head) or head.startswith(b"<!DOCTYPE", end)
    return decl is None or decl.group(1).lower() in _UTF8_NAMES, dtd


def scan_rows(posts: Path, wanted: list[int], given: set[int]) -> Iterator[tuple[int, etree._Element]]:
    """The byte scan of :func:`wanted_rows` for ``wanted`` in ascending order; adds what it yields to
    ``given``.

    Dumps list their rows by ascending ``Id`` as ``<row Id="N" …/>``, so each block is searched once: for
    the wanted ids up to the block's last, each search going on from the previous hit. An id that is not
    where that order puts it is not found here; after a few such misses (each searched a whole block) the
    scan stops. Blocks end before their last ``<row`` (a raw ``<`` cannot occur inside a value, so every
    row before it is whole). A block's wanted rows are parsed together, as one document.
    """
    parser = etree.XMLParser(huge_tree=True, no_network=True)  # a lone row has no DTD: no entity to keep
    i, n, size, misses = 0, len(wanted), _BLOCK, 0
    with open(posts, "rb", buffering=0) as fh:
        total = os.fstat(fh.fileno()).st_size
        while i < n:
            data = fh.read(size)
            eof = fh.tell() >= total
            cut = len(data) if eof else data.rfind(b"<row")
            if cut <= 0 and not eof:  # one row fills the block: read a bigger one from the same place
                size *= 2
                if size > _MAX_BLOCK:
                    return
                fh.seek(-len(data), 1)
                continue
            fh.seek(cut - len(data), 1)  # the next block starts at the cut
            size = _BLOCK
            last = _ROW_ID.match(data, max(data.rfind(_ROW_START, 0, cut), 0), cut)
            top = int(last.group(1)) if last else -1
            ids, rows, at = [], [], 0
            while i < n and wanted[i] <= top:
                post_id = wanted[i]
                i += 1
                start = data.find(b'<row Id="%d"' % post_id, at, cut)
                if start < 0:
                    misses += 1
                    if misses > _MAX_MISSES:
                        i = n
                    continue
                end = data.find(b"/>", start, cut)
                if end >= 0:
                    ids.append(post_id)
                    rows.append(data[start : end + 2])
                    at = end
            for post_id, row in parse_rows(ids, rows, parser):
                given.add(post_id)
                yield post_id, row
            if eof:
                return


def parse_rows(
    ids: list[int], rows: list[bytes], parser: etree.XMLParser
) -> list[tuple[int, etree._Element]]:
    """Parse the row texts in one document (one parser call instead of one per row); row by row when that
    fails. Only rows whose parsed ``Id`` is the one searched for are returned."""
    try:
        parsed = list(etree.fromstring(b"<rows>" + b"".join(rows) + b"</rows>", parser))
    except etree.XMLSyntaxError:
        parsed = []
    if len(parsed) != len(rows):
        parsed = []
        for text in rows:
            try:
                parsed.append(etree.fromstring(text, parser))
            except etree.XMLSyntaxError:  # e.g. a raw "/>" inside a value: the full parse reads this row
                parsed.append(None)
    return [
        (i, row)
        for i, row in zip(ids, parsed, strict=True)
        if row is not None and row.tag == "row" and int_or(row.get("Id"), -1) == i
    ]
