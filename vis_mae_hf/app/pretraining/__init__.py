"""VIS-MAE pretraining with Accelerate.

Modules, one job each:
    arguments      `PretrainingArguments`: the flags, their recipe defaults, the checks made before any work
    model          the model a run trains (new or continued)
    examples       how one image becomes one training example (flip and mask from seed, epoch and index)
    sampler        which samples each process sees, epoch by epoch
    data           one process's examples, sampler and loader
    optimization   AdamW with the one weight-decay rule, the recipe's Transformers scheduler, the step counts
    checkpoints    atomic, resumable checkpoints and the run's progress
    step_log       progress bar, `train_log.jsonl` and trackers
    outputs        the model folder, `training_summary.json` and `reconstruction.png`
    loop           `pretrain` / `run_pretraining`: the pieces above, and the step loop
"""
