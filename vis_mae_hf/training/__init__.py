"""Building blocks of the training loops: sampling, schedules, checkpoints, pretraining data, pictures."""
