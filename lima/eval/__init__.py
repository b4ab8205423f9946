"""Evaluation: checkpoints -> generations -> pairwise judgments / Likert grades -> summaries."""
