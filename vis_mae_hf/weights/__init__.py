"""Weights from elsewhere: checkpoints of the published VIS-MAE code, and Transformers Swin checkpoints."""
