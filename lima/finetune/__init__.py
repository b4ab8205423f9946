"""Fine-tuning: example records -> tokens -> checkpoints (LoRA, QLoRA, DoRA, full) with LIMA's recipe."""
