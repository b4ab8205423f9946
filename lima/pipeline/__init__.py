"""The end-to-end job (`lima run`) and LIMA's ablations (`lima ablate`)."""
