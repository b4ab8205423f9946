"""Throughput and memory of the Stack Exchange path of ``lima curate``.

    .venv/bin/python bench/curate_throughput.py [--size-mb 100] [--rss-gb 1] [--source DUMP]

1. Builds a ``Posts.xml`` of at least ``--size-mb`` MB by repeating the rows of a real dump (ids shifted so
   every copy is a new set of posts) and times, in one run, bare ``lxml.etree.iterparse`` over it against the
   full Stack Exchange path (two passes, top-answer join, HTML → Markdown and LIMA's filters): MB/s each and
   the ratio (target ≥ 50%).
2. Builds a ``--rss-gb`` GB file the same way and runs the full path in a fresh process, reporting its peak
   RSS (target ≤ 500 MB).

Results go to ``bench/results/curate_throughput.{json,md}``.
"""

from __future__ import annotations

import argparse
import json
import platform
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_SOURCE = ROOT.parent / "shared" / "data" / "stackexchange" / "beer.stackexchange.com-Posts.xml"
_ID_ATTRS = re.compile(rb'\b(Id|ParentId|AcceptedAnswerId)="(\d+)"')


def build_dump(source: Path, target: Path, size_bytes: int) -> int:
    """Repeat the rows of ``source`` into ``target`` until it holds ``size_bytes``; returns copies made."""
    rows = [
        line for line in source.read_bytes().splitlines(keepends=True) if line.lstrip().startswith(b"<row")
    ]
    top = max(int(m.group(2)) for line in rows for m in _ID_ATTRS.finditer(line)) + 1
    copies = 0
    with open(target, "wb") as fh:
        fh.write(b'\xef\xbb\xbf<?xml version="1.0" encoding="utf-8"?>\n<posts>\n')
        written = 0
        while written < size_bytes:
            shift = copies * top
            chunk = b"".join(
                _ID_ATTRS.sub(lambda m, s=shift: b'%s="%d"' % (m.group(1), int(m.group(2)) + s), line)
                for line in rows
            )
            fh.write(chunk)
            written += len(chunk)
            copies += 1
        fh.write(b"</posts>\n")
    return copies


def bare_parse(path: Path) -> int:
    from lxml import etree

    n = 0
    for _, elem in etree.iterparse(str(path), events=("end",), tag="row", huge_tree=True):
        n += 1
        elem.clear()
        while elem.getprevious() is not None:
            del elem.getparent()[0]
    return n


def full_path(path: Path) -> dict[str, int]:
    from lima.core.record import Example
    from lima.curation.config import StackExchangeFilters
    from lima.curation.sources.stackexchange import read_stackexchange
    from lima.curation.types import ShardCounts

    counts = ShardCounts()
    kept = sum(
        isinstance(x, Example) for x in read_stackexchange(path, StackExchangeFilters(), 0, counts, "other")
    )
    return {"questions": counts.rows_in, "kept": kept}


def timed(fn, path: Path) -> tuple[float, object]:
    t0 = time.perf_counter()
    result = fn(path)
    return time.perf_counter() - t0, result


def peak_rss_mb(path: Path) -> tuple[float, float, dict]:
    """Run the full path on ``path`` in a fresh interpreter; (peak RSS MB, seconds, counts)."""
    code = (
        "import json, resource, sys, time; sys.path.insert(0, sys.argv[2]);"
        "from bench.curate_throughput import full_path; from pathlib import Path;"
        "t = time.perf_counter(); c = full_path(Path(sys.argv[1])); s = time.perf_counter() - t;"
        "print(json.dumps({'rss_kb': resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, 's': s, 'counts': c}))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, str(path), str(ROOT)], capture_output=True, text=True, check=True
    )
    data = json.loads(out.stdout.strip().splitlines()[-1])
    return data["rss_kb"] / 1024, data["s"], data["counts"]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--source", type=Path, default=DEFAULT_SOURCE)
    parser.add_argument("--size-mb", type=float, default=100)
    parser.add_argument("--repeat", type=int, default=3, help="timed runs of each path (best is kept)")
    parser.add_argument("--rss-gb", type=float, default=1.0, help="0 skips the memory run")
    parser.add_argument(
        "--workdir", type=Path, default=None, help="where the synthetic dumps go (default: a temp dir)"
    )
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    args = parser.parse_args()
    if not args.source.exists():
        sys.exit(f"{args.source}: no such dump; pass --source PATH to a Posts.xml")

    with tempfile.TemporaryDirectory(dir=args.workdir) as tmp:
        dump = Path(tmp) / "bench.stackexchange.com-Posts.xml"
        copies = build_dump(args.source, dump, int(args.size_mb * 1e6))
        mb = dump.stat().st_size / 1e6
        print(f"built {dump.name}: {mb:.0f} MB ({copies} copies of {args.source.name})", flush=True)
        bare_parse(dump)  # warm the page cache (and imports) so both timings read from memory
        full_path(dump)
        # Alternate the two and keep each one's best run: the machine is shared, so noise only adds time.
        bare_runs, full_runs = [], []
        for _ in range(args.repeat):
            bare_runs.append(timed(bare_parse, dump))
            full_runs.append(timed(full_path, dump))
        bare_s, rows = min(bare_runs, key=lambda r: r[0])
        full_s, counts = min(full_runs, key=lambda r: r[0])
        print(f"bare iterparse: {mb / bare_s:.1f} MB/s   full path: {mb / full_s:.1f} MB/s", flush=True)
        results = {
            "file_mb": round(mb, 1),
            "rows": rows,
            "bare_iterparse_s": round(bare_s, 2),
            "bare_iterparse_mb_s": round(mb / bare_s, 1),
            "full_path_s": round(full_s, 2),
            "full_path_mb_s": round(mb / full_s, 1),
            "ratio": round(bare_s / full_s, 3),
            "ratio_target": 0.5,
            "repeat": args.repeat,
            "bare_runs_s": [round(r[0], 2) for r in bare_runs],
            "full_runs_s": [round(r[0], 2) for r in full_runs],
            "full_path_counts": counts,
        }
        dump.unlink()
        if args.rss_gb > 0:
            big = Path(tmp) / "big.stackexchange.com-Posts.xml"
            build_dump(args.source, big, int(args.rss_gb * 1e9))
            gb = big.stat().st_size / 1e9
            rss, secs, big_counts = peak_rss_mb(big)
            print(f"{gb:.2f} GB file: peak RSS {rss:.0f} MB, {gb * 1e3 / secs:.1f} MB/s", flush=True)
            results.update(rss_file_gb=round(gb, 2), peak_rss_mb=round(rss), rss_target_mb=500,
                           rss_run_s=round(secs, 1), rss_run_counts=big_counts)  # fmt: skip
    results["machine"] = {"platform": platform.platform(), "python": platform.python_version(),
                          "cpus": __import__("os").cpu_count()}  # fmt: skip
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "curate_throughput.json").write_text(json.dumps(results, indent=2) + "\n")
    lines = [
        "# Stack Exchange curation throughput", "",
        f"Synthetic `Posts.xml` of {results['file_mb']} MB ({rows} rows) built by repeating `{args.source.name}`.", "",
        "| path | seconds | MB/s |", "|---|---|---|",
        f"| bare `lxml.etree.iterparse` | {results['bare_iterparse_s']} | {results['bare_iterparse_mb_s']} |",
        f"| full Stack Exchange path (2 passes, join, HTML→Markdown, filters) | {results['full_path_s']} | {results['full_path_mb_s']} |",
        "", f"Full path at **{results['ratio']:.0%}** of the bare parse speed (target ≥ 50%); best of "
        f"{args.repeat} alternating runs each (bare {results['bare_runs_s']} s, full {results['full_runs_s']} s).",
    ]  # fmt: skip
    if "peak_rss_mb" in results:
        lines += ["", f"Peak RSS of the full path on a {results['rss_file_gb']} GB file: **{results['peak_rss_mb']} MB** "
                  f"(target ≤ 500 MB), {results['rss_run_s']} s."]  # fmt: skip
    lines += ["", f"Machine: {results['machine']['platform']}, {results['machine']['cpus']} CPUs (shared), "
              f"Python {results['machine']['python']}."]  # fmt: skip
    (args.out / "curate_throughput.md").write_text("\n".join(lines) + "\n")
    print(f"wrote {args.out / 'curate_throughput.md'}")


if __name__ == "__main__":
    main()
