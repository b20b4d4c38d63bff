"""Pretraining-step throughput and peak memory of VisMaeForPreTraining against Transformers' SimMIM, one process.

    python bench/bench_pretrain.py --device cpu --batch-size 8 --dtype fp32
    python bench/bench_pretrain.py --device cuda --batch-size 128 --dtype bf16 --compile sdpa eager --before 342e674

Every workload runs one full training step per call (forward with the loss, backward, AdamW step, zero_grad) on the
same input batch and the same mask, under the same precision: fp32, or bf16 autocast over fp32 weights (what
Trainer's `bf16=True` does). The optimiser is AdamW with `fused=True` where the device has it, as Trainer's default
`adamw_torch_fused` gives every model.

Workloads:
- simmim-sdpa (the baseline): `SwinForMaskedImageModeling` from `SwinConfig(embed_dim=96, depths=[2,2,2,2],
  num_heads=[3,6,12,24], window_size=7, image_size=224)`, SDPA attention: what a user picks in Transformers.
- vis-mae-sdpa: our default model, SDPA attention, not compiled.
- vis-mae-eager: the same weights with the eager (unfused matmul-softmax-matmul) attention.
- vis-mae-sdpa-foreach-adamw: vis-mae-sdpa with the multi-tensor instead of the fused AdamW.
- vis-mae@REV (`--before REV`): the model code of git revision REV, same weights: a change measured before/after.
- vis-mae-compiled-ATTN (`--compile ATTN ...`, ATTN sdpa or eager): `torch.compile(model, fullgraph=True)` with that
  attention; fullgraph makes any graph break an error. With eager attention Inductor fuses bias, mask and softmax
  itself; with SDPA it calls the fused attention kernel.
- simmim-sdpa-compiled (`--compile-baseline`): the baseline compiled too (graph breaks allowed), for reference.
- ...-ckpt (`--checkpoint PATH ...`): vis-mae-sdpa and each compiled workload again with activation checkpointing of
  the blocks under those module paths (`VisMaeForPreTraining.checkpoint_blocks`), e.g. `decoder.stages.2`.

Reported: median ms per step over interleaved rounds after warm-up, images/s, peak GiB on CUDA, ratios against
the baseline, GFLOP per training image (forward + backward, `torch.utils.flop_counter`) and, for the uncompiled
workloads, the activations autograd saves per image (`benchlib.saved_activation_bytes`: a device-independent proxy for
a training step's activation memory, measured on any machine).
"""

from __future__ import annotations

import argparse
import json

import torch
from benchlib import (
    DTYPES,
    Workload,
    flops_per_image,
    machine_description,
    measure,
    modeling_at_revision,
    print_table,
    saved_activation_bytes,
    tensor_bytes,
)
from transformers import SwinConfig, SwinForMaskedImageModeling

from vis_mae_hf import VisMaeConfig, VisMaeForPreTraining
from vis_mae_hf.app.pretraining.optimization import fused_adamw_supported
from vis_mae_hf.modeling_vis_mae import random_window_masking


def simmim_config() -> SwinConfig:
    config = SwinConfig(embed_dim=96, depths=[2, 2, 2, 2], num_heads=[3, 6, 12, 24], window_size=7, image_size=224)
    config._attn_implementation = "sdpa"
    return config


def make_optimizer(model: torch.nn.Module, device: torch.device, fused: bool) -> torch.optim.Optimizer:
    options = {"fused": True} if fused else {"foreach": True}
    return torch.optim.AdamW(model.parameters(), lr=1e-4, betas=(0.9, 0.95), weight_decay=0.05, **options)


def training_step(model, optimizer, pixel_values, bool_masked_pos, dtype):
    def step():
        with torch.autocast(pixel_values.device.type, dtype=dtype, enabled=dtype != torch.float32):
            loss = model(pixel_values=pixel_values, bool_masked_pos=bool_masked_pos).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    return step


def resident(model, optimizer):
    def count() -> int:
        state = [t for s in optimizer.state.values() for t in s.values()]
        return tensor_bytes(model.parameters()) + tensor_bytes(model.buffers()) + tensor_bytes(state)

    return count


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--dtype", choices=sorted(DTYPES), default="bf16")
    parser.add_argument("--repeats", type=int, default=5, help="timed steps per workload per round")
    parser.add_argument("--rounds", type=int, default=4, help="interleaved rounds over all workloads")
    parser.add_argument("--warmup", type=int, default=3, help="untimed steps first (compilation happens here)")
    parser.add_argument(
        "--compile", nargs="*", default=[], choices=["sdpa", "eager"], metavar="ATTN",
        help="add vis-mae-compiled-ATTN (torch.compile, fullgraph) for each attention implementation named",
    )
    parser.add_argument("--compile-mode", default=None, help="torch.compile mode for the vis-mae-compiled workloads")
    parser.add_argument("--compile-baseline", action="store_true", help="add simmim-sdpa-compiled for reference")
    parser.add_argument(
        "--checkpoint", nargs="*", default=[], metavar="PATH",
        help="add -ckpt workloads that recompute the blocks under these module paths, e.g. decoder.stages.2",
    )
    parser.add_argument("--before", default=None, metavar="REV", help="add vis-mae@REV: the model code of a git revision")
    parser.add_argument("--only", nargs="*", default=None, help="workload names to keep (the baseline always runs)")
    parser.add_argument("--json", default=None, help="also write the numbers here")
    return parser


def main(argv: list[str] | None = None) -> None:
    options = build_parser().parse_args(argv)
    device, dtype, batch = torch.device(options.device), DTYPES[options.dtype], options.batch_size
    fused = fused_adamw_supported(device)
    torch.manual_seed(0)
    pixel_values = torch.randn(batch, 3, 224, 224, device=device)
    bool_masked_pos = random_window_masking(batch, 56, 56, 4, 0.75, device=device)

    def ours(attn_implementation="sdpa", model_class=VisMaeForPreTraining, checkpoint=False):
        config = VisMaeConfig()
        config._attn_implementation = attn_implementation
        torch.manual_seed(0)
        model = model_class(config).to(device).train()
        if checkpoint:
            model.checkpoint_blocks(options.checkpoint)
        return model

    def workload(name, model, fused_optimizer=fused, note=""):
        optimizer = make_optimizer(model, device, fused_optimizer)
        step = training_step(model, optimizer, pixel_values, bool_masked_pos, dtype)
        return Workload(name, step, batch, resident(model, optimizer), note)

    baseline_model = SwinForMaskedImageModeling(simmim_config()).to(device).train()
    baseline = workload("simmim-sdpa", baseline_model)
    reference = ours()
    workloads = [baseline, workload("vis-mae-sdpa", reference)]
    workloads.append(workload("vis-mae-eager", ours("eager")))
    workloads.append(workload("vis-mae-sdpa-foreach-adamw", ours(), fused_optimizer=False, note="multi-tensor AdamW"))
    if options.before:
        old = modeling_at_revision(options.before)
        before = ours(model_class=old.VisMaeForPreTraining)
        before.load_state_dict(reference.state_dict())
        workloads.append(workload(f"vis-mae@{options.before}", before, note=f"model code of {options.before}"))
    uncompiled = {"simmim-sdpa": baseline_model, "vis-mae-sdpa": reference}
    if options.checkpoint:
        uncompiled["vis-mae-sdpa-ckpt"] = ours(checkpoint=True)
        workloads.append(workload("vis-mae-sdpa-ckpt", uncompiled["vis-mae-sdpa-ckpt"], note=f"checkpointing {options.checkpoint}"))
    for attention in options.compile:
        for checkpoint in (False, True) if options.checkpoint else (False,):
            compiled = torch.compile(ours(attention, checkpoint=checkpoint), fullgraph=True, mode=options.compile_mode)
            note = f"torch.compile fullgraph, mode={options.compile_mode}"
            name = f"vis-mae-compiled-{attention}" + ("-ckpt" if checkpoint else "")
            workloads.append(workload(name, compiled, note=note))
    if options.compile_baseline:
        twin = SwinForMaskedImageModeling(simmim_config()).to(device).train()
        workloads.append(workload("simmim-sdpa-compiled", torch.compile(twin), note="torch.compile, breaks allowed"))
    if options.only is not None:
        workloads = [w for w in workloads if w is baseline or w.name in options.only]

    flops, saved = {}, {}
    small_pixels, small_mask = pixel_values[:2], bool_masked_pos[:2]
    small = small_pixels.shape[0]
    for name, model in (("simmim-sdpa", baseline_model), ("vis-mae-sdpa", reference)):
        def forward_backward(model=model):
            model(pixel_values=small_pixels, bool_masked_pos=small_mask).loss.backward()
            model.zero_grad(set_to_none=True)

        flops[name] = flops_per_image(forward_backward, small)
    for name, model in uncompiled.items():
        def loss(model=model):
            with torch.autocast(device.type, dtype=dtype, enabled=dtype != torch.float32):
                return model(pixel_values=small_pixels, bool_masked_pos=small_mask).loss

        saved[name] = saved_activation_bytes(model, loss) / small / 2**20

    measure(workloads, device, options.repeats, options.warmup, options.rounds)
    print(f"Machine: {machine_description(device)}")
    print(f"Batch {batch}, 224x224, {options.dtype}, AdamW fused={fused}; medians of {options.rounds} x {options.repeats} steps")
    extra = {name: {"GFLOP / training image": f"{value:.1f}"} for name, value in flops.items()}
    for name, value in saved.items():
        extra.setdefault(name, {})["saved activations MiB / image"] = f"{value:.1f}"
    print_table("Pretraining step", workloads, baseline, extra)
    if options.json:
        rows = {
            w.name: {"ms": 1e3 * w.seconds, "images_per_second": w.images_per_second, "peak_gib": w.peak_gib}
            for w in workloads
        }
        with open(options.json, "w") as handle:
            json.dump({"machine": machine_description(device), "batch_size": batch, "dtype": options.dtype,
                       "gflop_per_training_image": flops, "saved_activation_mib_per_image": saved,
                       "workloads": rows}, handle, indent=1)


if __name__ == "__main__":
    main()
