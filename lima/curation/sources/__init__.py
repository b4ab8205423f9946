"""Streaming readers: each turns one shard into kept records (Example) and dropped ones (Drop)."""
