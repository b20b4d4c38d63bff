"""Shared plumbing for the benchmark scripts: timing with warm-up and medians, peak memory per workload, the machine
description, loading the model code of an earlier git revision (for before/after measurements in one process), and
the printed tables. Every ratio a script reports compares workloads timed here in the same process."""

from __future__ import annotations

import gc
import importlib.util
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch

REPOSITORY = Path(__file__).resolve().parent.parent
DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16}  # --dtype of the scripts; bf16 means autocast


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(function: Callable[[], object], device: torch.device, repeats: int, warmup: int) -> list[float]:
    """Seconds per call of `function`, each call timed alone after `warmup` untimed calls."""
    for _ in range(warmup):
        function()
    synchronize(device)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        synchronize(device)
        times.append(time.perf_counter() - start)
    return times


def peak_memory(function: Callable[[], object], device: torch.device) -> float | None:
    """Peak GiB allocated by one call of `function` on top of what was allocated before it, plus `resident`
    (see `Workload.resident_bytes`) is what the workload needs alone. None off CUDA (no allocator statistics)."""
    if device.type != "cuda":
        return None
    gc.collect()
    torch.cuda.empty_cache()
    synchronize(device)
    before = torch.cuda.memory_allocated(device)
    torch.cuda.reset_peak_memory_stats(device)
    function()
    synchronize(device)
    return (torch.cuda.max_memory_allocated(device) - before) / 2**30


def tensor_bytes(tensors) -> int:
    return sum(t.numel() * t.element_size() for t in tensors if isinstance(t, torch.Tensor))


@dataclass
class Workload:
    """One thing to time: `step` runs it once; `resident_bytes` is what it keeps allocated between calls (weights,
    optimiser state), added to the per-call peak so that workloads sharing the process compare as if run alone."""

    name: str
    step: Callable[[], object]
    images_per_call: int
    resident_bytes: Callable[[], int] = lambda: 0
    note: str = ""
    times: list[float] = field(default_factory=list)
    round_medians: list[float] = field(default_factory=list)
    peak_gib: float | None = None

    @property
    def seconds(self) -> float:
        return statistics.median(self.times)

    @property
    def images_per_second(self) -> float:
        return self.images_per_call / self.seconds


def measure(workloads: list[Workload], device: torch.device, repeats: int, warmup: int, rounds: int) -> None:
    """Warm every workload up, then time them in interleaved rounds with a rotating order (so that drift of the
    machine, e.g. the CPU clock or other tenants, and the order itself hit all of them alike); medians over all timed
    calls. Peak memory last, one workload at a time."""
    for workload in workloads:
        timed(workload.step, device, repeats=0, warmup=warmup)
    for round_index in range(rounds):
        # Each round starts one workload later: on CPU a step runs slower right after a workload that needed less
        # memory (the allocator must fetch fresh pages), so a fixed order would favour some workloads.
        start = round_index % len(workloads)
        for workload in workloads[start:] + workloads[:start]:
            times = timed(workload.step, device, repeats=repeats, warmup=0)
            workload.times += times
            workload.round_medians.append(statistics.median(times))
    for workload in workloads:
        peak = peak_memory(workload.step, device)
        workload.peak_gib = None if peak is None else peak + workload.resident_bytes() / 2**30


def machine_description(device: torch.device) -> str:
    if device.type == "cuda":
        name = torch.cuda.get_device_name(device)
        memory = torch.cuda.get_device_properties(device).total_memory / 2**30
        where = f"{name} ({memory:.0f} GiB)"
    else:
        where = f"{platform.machine()} CPU, {torch.get_num_threads()} threads"
    import transformers

    return f"{where}; torch {torch.__version__}; transformers {transformers.__version__}; Python {platform.python_version()}"


def print_table(title: str, workloads: list[Workload], baseline: Workload, extra: dict[str, dict[str, str]] | None = None):
    """Markdown table: median ms per call, images/s, peak GiB and the ratios against `baseline` (speed: ours/baseline
    images/s, so > 1 is faster; memory: ours/baseline, so < 1 is leaner), with the lowest and highest speed ratio
    of the single rounds."""
    extra = extra or {}
    extra_columns = sorted({key for values in extra.values() for key in values})
    print(f"\n### {title}\n")
    header = ["workload", "ms / call", "images/s", "speed vs baseline", "per-round speed range", "peak GiB",
              "memory vs baseline", *extra_columns]
    print("| " + " | ".join(header) + " |")
    print("|" + "|".join(["---"] + ["---:"] * (len(header) - 1)) + "|")
    for workload in workloads:
        speed = workload.images_per_second / baseline.images_per_second
        memory = (
            f"{workload.peak_gib / baseline.peak_gib:.2f}x"
            if workload.peak_gib is not None and baseline.peak_gib
            else "n/a"
        )
        peak = f"{workload.peak_gib:.2f}" if workload.peak_gib is not None else "n/a"
        name = workload.name + (" (baseline)" if workload is baseline else "")
        # The speed ratio within each interleaved round: how far machine noise moves it.
        per_round = [b / w for b, w in zip(baseline.round_medians, workload.round_medians)]
        spread = f"{min(per_round):.2f}-{max(per_round):.2f}x" if len(per_round) > 1 else ""
        cells = [name, f"{1e3 * workload.seconds:.1f}", f"{workload.images_per_second:.1f}", f"{speed:.2f}x", spread,
                 peak, memory]
        cells += [extra.get(workload.name, {}).get(key, "") for key in extra_columns]
        print("| " + " | ".join(cells) + " |")
    notes = [f"- {w.name}: {w.note}" for w in workloads if w.note]
    if notes:
        print("\n" + "\n".join(notes))


def modeling_at_revision(revision: str):
    """The `modeling_vis_mae` module as it was at git `revision` (or in the file `revision` names, for machines
    without the git history: `git show REV:vis_mae_hf/modeling_vis_mae.py > file`), imported beside the current one
    (its classes are separate), so a code change can be timed before and after in one process on identical weights."""
    if Path(revision).is_file():
        source = Path(revision).read_text()
    else:
        source = subprocess.run(
            ["git", "-C", str(REPOSITORY), "show", f"{revision}:vis_mae_hf/modeling_vis_mae.py"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
    source = source.replace("from .configuration_vis_mae import", "from vis_mae_hf.configuration_vis_mae import")
    directory = Path(tempfile.mkdtemp(prefix="vis_mae_revision_"))
    path = directory / f"modeling_vis_mae_{Path(revision).stem.replace('.', '_').replace('~', '_')}.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[path.stem] = module
    spec.loader.exec_module(module)
    return module


def flops_per_image(function: Callable[[], object], images: int) -> float:
    """GFLOP per image of one call, counted by `torch.utils.flop_counter` (matrix products and attention)."""
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter:
        function()
    return counter.get_total_flops() / images / 1e9


def saved_activation_bytes(model: torch.nn.Module, forward: Callable[[], torch.Tensor]) -> int:
    """Bytes that autograd keeps for the backward pass of `forward()` (which returns the loss): unique storages
    saved by the recorded operations, parameters excluded. A device-independent proxy for the activation memory of a
    training step, so memory can be compared where no CUDA allocator statistics exist. Blocks under activation
    checkpointing save (almost) nothing; the inputs they keep for recomputation are not counted."""
    parameters = {p.untyped_storage().data_ptr() for p in model.parameters()}
    saved: dict[int, int] = {}

    def pack(tensor: torch.Tensor) -> torch.Tensor:
        storage = tensor.untyped_storage()
        if storage.data_ptr() not in parameters:
            saved[storage.data_ptr()] = storage.nbytes()
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        loss = forward()
    loss.backward()
    model.zero_grad(set_to_none=True)
    return sum(saved.values())
