"""VIS-MAE pretraining with Accelerate.

Modules, one job each:
    arguments      `PretrainingArguments`: the flags, their recipe defaults, the checks made before any work
    model          the model a run trains (new or continued)
    examples       how one image becomes one training example (flip and mask from seed, epoch and index)
    sampler        which samples each process sees, epoch by epoch
    data           one process's examples, sampler and loader
    bad_images     an image that cannot be read mid-run: stop naming it, or skip it alike on every process
    optimization   AdamW with the one weight-decay rule, the recipe's Transformers scheduler, the step counts
    progress       where a run stands and the data geometry its position is counted in
    checkpoints    atomic, resumable checkpoints in formats that run no code when read
    errors         how a run stops on its user's input (each one line in `vis-mae pretrain`)
    step_log       progress bar, `train_log.jsonl`, trackers and notices
    outputs        the model folder, `training_summary.json` and `reconstruction.png`
    loop           `pretrain` / `run_pretraining`: the pieces above, and the step loop
"""
