"""Model-level speed and memory of VIS-MAE pretraining steps, each against a baseline run in the same process.

    python bench/model_bench.py --device cuda --batch-size 256 --dtype bf16 --json out.json
    python bench/model_bench.py --device cpu --batch-size 8            # quick sanity run

Comparisons (ratio = baseline / ours for time, ours / baseline for memory):
1. masking: our device-side window masking (argsort of uniform noise, no host round trip) against a re-creation of the
   published approach's cost structure (a per-sample numpy loop drawing the units, then a host-to-device copy that the
   step must wait for). Both feed the same model step; the mask function alone is timed too.
2. attention: SDPA against the eager path (same weights, same inputs).
3. activation checkpointing: peak memory and time against no checkpointing.
"""

from __future__ import annotations

import argparse
import json
import statistics

import numpy as np
import torch
from benchlib import peak_memory, timed

from vis_mae_hf import VisMaeConfig, VisMaeForPreTraining
from vis_mae_hf.modeling_vis_mae import random_window_masking


def published_style_masking(batch_size: int, units_per_side: int, unit_tokens: int, mask_ratio: float, device) -> torch.Tensor:
    """Baseline: a python/numpy loop over samples on the host, then a blocking copy to the device."""
    num_units = units_per_side**2
    keep = int(num_units * (1 - mask_ratio))
    masks = []
    for _ in range(batch_size):
        order = np.random.permutation(num_units)
        unit_mask = np.ones(num_units, dtype=bool)
        unit_mask[order[:keep]] = False
        grid = unit_mask.reshape(units_per_side, units_per_side)
        masks.append(np.repeat(np.repeat(grid, unit_tokens, axis=0), unit_tokens, axis=1).reshape(-1))
    return torch.from_numpy(np.stack(masks)).to(device, non_blocking=False)


def make_step(model, optimizer, pixel_values, dtype, mask_source):
    def step():
        bool_masked_pos = mask_source()
        with torch.autocast(pixel_values.device.type, dtype=dtype, enabled=dtype != torch.float32):
            loss = model(pixel_values, bool_masked_pos=bool_masked_pos).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    return step


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--dtype", choices=["fp32", "bf16"], default="bf16")
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--json", default=None)
    options = parser.parse_args()
    device = torch.device(options.device)
    dtype = {"fp32": torch.float32, "bf16": torch.bfloat16}[options.dtype]
    torch.manual_seed(0)
    batch = options.batch_size
    pixel_values = torch.randn(batch, 3, 224, 224, device=device)
    results: dict[str, dict] = {"setup": {"device": str(device), "name": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
                                           "batch_size": batch, "dtype": options.dtype, "torch": torch.__version__}}

    def model_with(attn_implementation: str):
        config = VisMaeConfig(drop_path_rate=0.0)
        config._attn_implementation = attn_implementation
        torch.manual_seed(0)
        model = VisMaeForPreTraining(config).to(device).train()
        return model, torch.optim.AdamW(model.parameters(), lr=1e-4, betas=(0.9, 0.95), weight_decay=0.05)

    ours_mask = lambda: random_window_masking(batch, 56, 56, 4, 0.75, device=device)  # noqa: E731
    baseline_mask = lambda: published_style_masking(batch, 14, 4, 0.75, device)  # noqa: E731

    # 1. masking
    mask_ours = statistics.median(timed(ours_mask, device, options.repeats * 5, options.warmup))
    mask_base = statistics.median(timed(baseline_mask, device, options.repeats * 5, options.warmup))
    model, optimizer = model_with("sdpa")
    step_ours = statistics.median(timed(make_step(model, optimizer, pixel_values, dtype, ours_mask), device, options.repeats, options.warmup))
    step_base = statistics.median(timed(make_step(model, optimizer, pixel_values, dtype, baseline_mask), device, options.repeats, options.warmup))
    results["masking"] = {
        "mask_ms_ours": 1e3 * mask_ours, "mask_ms_baseline": 1e3 * mask_base, "mask_speedup": mask_base / mask_ours,
        "step_ms_ours": 1e3 * step_ours, "step_ms_baseline": 1e3 * step_base, "step_speedup": step_base / step_ours,
        "images_per_second_ours": batch / step_ours,
    }

    # 2. attention implementations
    eager_model, eager_optimizer = model_with("eager")
    eager_step = make_step(eager_model, eager_optimizer, pixel_values, dtype, ours_mask)
    sdpa_step = make_step(model, optimizer, pixel_values, dtype, ours_mask)
    time_eager = statistics.median(timed(eager_step, device, options.repeats, options.warmup))
    time_sdpa = statistics.median(timed(sdpa_step, device, options.repeats, options.warmup))
    results["attention"] = {
        "step_ms_sdpa": 1e3 * time_sdpa, "step_ms_eager": 1e3 * time_eager, "sdpa_speedup": time_eager / time_sdpa,
        "peak_gib_sdpa": peak_memory(sdpa_step, device), "peak_gib_eager": peak_memory(eager_step, device),
    }
    del eager_model, eager_optimizer

    # 3. activation checkpointing
    plain_peak = peak_memory(sdpa_step, device)
    model.activation_checkpointing_enable()
    checkpointed_time = statistics.median(timed(sdpa_step, device, options.repeats, options.warmup))
    checkpointed_peak = peak_memory(sdpa_step, device)
    results["activation_checkpointing"] = {
        "step_ms_plain": 1e3 * time_sdpa, "step_ms_checkpointed": 1e3 * checkpointed_time,
        "time_ratio": checkpointed_time / time_sdpa,
        "peak_gib_plain": plain_peak, "peak_gib_checkpointed": checkpointed_peak,
        "memory_ratio": (checkpointed_peak / plain_peak) if plain_peak else None,
    }

    print(f"{'measure':44s} {'ours':>10s} {'baseline':>10s} {'ratio':>8s}")
    m, a, c = results["masking"], results["attention"], results["activation_checkpointing"]
    rows = [
        ("mask draw, ms (device vs numpy loop+copy)", m["mask_ms_ours"], m["mask_ms_baseline"], m["mask_speedup"]),
        ("train step, ms (same, full step)", m["step_ms_ours"], m["step_ms_baseline"], m["step_speedup"]),
        ("train step, ms (SDPA vs eager)", a["step_ms_sdpa"], a["step_ms_eager"], a["sdpa_speedup"]),
        ("train step, ms (checkpointed vs plain)", c["step_ms_checkpointed"], c["step_ms_plain"], 1 / c["time_ratio"]),
    ]
    if c["memory_ratio"] is not None:
        rows.append(("peak GiB (checkpointed vs plain)", c["peak_gib_checkpointed"], c["peak_gib_plain"], c["memory_ratio"]))
        rows.append(("peak GiB (SDPA vs eager)", a["peak_gib_sdpa"], a["peak_gib_eager"], a["peak_gib_sdpa"] / a["peak_gib_eager"]))
    for name, ours, base, ratio in rows:
        print(f"{name:44s} {ours:10.2f} {base:10.2f} {ratio:8.2f}")
    print(f"images/s (ours, {options.dtype}, batch {batch}): {m['images_per_second_ours']:.1f}")
    if options.json:
        with open(options.json, "w") as handle:
            json.dump(results, handle, indent=1)


if __name__ == "__main__":
    main()
