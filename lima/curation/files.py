"""The names of the files a curation run writes into its output folder (one module, so that the run and the
report both import them without importing each other)."""

from __future__ import annotations

TRAIN, DEV, REJECTED, SUMMARY = "train.jsonl", "dev.jsonl", "rejected.jsonl.gz", "curation.json"
REPORT_HTML, REPORT_MD, WORK = "report.html", "report.md", "shards"
OUTPUTS = (TRAIN, DEV, REJECTED, SUMMARY, REPORT_HTML, REPORT_MD)
