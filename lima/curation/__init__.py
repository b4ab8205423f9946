"""Curation: raw dumps -> filtered, deduplicated, diversity-sampled example records + a report."""
