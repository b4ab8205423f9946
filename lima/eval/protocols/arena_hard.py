"""Arena-Hard-Auto's protocol: one turn; its five-level verdicts (parser ``arena_hard``) give the weighted score
that every summary adds when both orders carry one (:func:`lima.eval.metrics.arena_hard_score`). Issue #20
puts arena-hard-auto's own judge prompt and baseline handling here."""

from __future__ import annotations

from lima.eval.protocols import Protocol

PROTOCOL = Protocol("arena_hard")
