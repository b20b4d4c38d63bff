"""VIS-MAE pretraining with Accelerate: the loop, its data examples, sampler and resumable checkpoints."""
