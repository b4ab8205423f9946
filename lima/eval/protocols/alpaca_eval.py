"""AlpacaEval's protocol: one turn, lima's generation and judging as they are (its files are read by
:mod:`lima.eval.formats.alpaca_eval`). Issue #20 puts AlpacaEval's own annotator here."""

from __future__ import annotations

from lima.eval.protocols import Protocol

PROTOCOL = Protocol("alpaca_eval")
