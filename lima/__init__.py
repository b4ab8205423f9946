"""lima: LIMA-style alignment — curate, fine-tune, evaluate, ablate."""

__version__ = "0.1.0"
