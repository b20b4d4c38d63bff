"""One module per published source: its layout, its label encoding, which slices and windows, and why."""
