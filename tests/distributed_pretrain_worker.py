"""Runs the pretraining loop for tests/test_pretraining.py, under `accelerate launch` or alone, and records what
each process saw and ended with. Not a test module itself."""

import argparse
import json
import os
import signal
import sys
from pathlib import Path

from safetensors.torch import save_file

sys.path.insert(0, str(Path(__file__).parent))
from conftest import tiny_config_kwargs  # noqa: E402

from vis_mae_hf import VisMaeConfig  # noqa: E402
from vis_mae_hf.app.pretraining import sampler  # noqa: E402
from vis_mae_hf.app.pretraining.loop import PretrainingArguments, pretrain  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--dataset", required=True)
    parser.add_argument("--output_dir", required=True)
    parser.add_argument("--record_dir", required=True)
    parser.add_argument("--batch", type=int, required=True)
    parser.add_argument("--max_steps", type=int, required=True)
    parser.add_argument("--checkpointing_steps", type=int, default=None)
    parser.add_argument("--resume_from_checkpoint", default=None)
    parser.add_argument("--learning_rate", type=float, default=1e-3)
    parser.add_argument("--activation_checkpointing", default=None)
    parser.add_argument("--gradient_accumulation_steps", type=int, default=1)
    parser.add_argument("--on_bad_image", default="stop")
    parser.add_argument("--mixed_precision", default=None)
    parser.add_argument("--sigkill_after_samples", type=int, default=None, help="SIGKILL itself mid-run, like an OOM killer")
    options = parser.parse_args()

    record_dir = Path(options.record_dir)
    record_dir.mkdir(parents=True, exist_ok=True)
    # Record the (epoch, index) keys the training loader draws (the sampler feeds only that loader).
    seen = []
    original_iter = sampler.EpochShardSampler.__iter__

    def recording_iter(self):
        for key in original_iter(self):
            seen.append(list(key))
            if options.sigkill_after_samples is not None and len(seen) > options.sigkill_after_samples:
                os.kill(os.getpid(), signal.SIGKILL)
            yield key

    sampler.EpochShardSampler.__iter__ = recording_iter
    args = PretrainingArguments(
        output_dir=options.output_dir,
        dataset=options.dataset,
        image_size=64,
        per_device_train_batch_size=options.batch,
        max_steps=options.max_steps,
        warmup_steps=2,
        logging_steps=1,
        checkpointing_steps=options.checkpointing_steps,
        resume_from_checkpoint=options.resume_from_checkpoint,
        reconstruction_images=1,
        seed=7,
        learning_rate=options.learning_rate,
        activation_checkpointing=options.activation_checkpointing,
        gradient_accumulation_steps=options.gradient_accumulation_steps,
        on_bad_image=options.on_bad_image,
        mixed_precision=options.mixed_precision,
    )
    result = pretrain(args, VisMaeConfig(**tiny_config_kwargs(image_size=64)))
    rank = int(os.environ.get("RANK", "0"))  # set by the launcher; the process group may already be gone
    (record_dir / f"seen_rank{rank}.json").write_text(json.dumps(seen))
    save_file({k: v.detach().cpu().contiguous() for k, v in result.model.state_dict().items()}, str(record_dir / f"weights_rank{rank}.safetensors"))


if __name__ == "__main__":
    main()
