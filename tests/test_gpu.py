"""Checks that need a CUDA device; run by bench/gpu_check.sh on a GPU machine (skipped without one)."""

import pytest
import torch
from conftest import OFFICIAL_VECTORS
from safetensors.torch import load_file

from vis_mae_hf import VisMaeConfig, VisMaeForPreTraining, VisMaeForSemanticSegmentation
from vis_mae_hf.modeling_vis_mae import random_window_masking
from vis_mae_hf.weights.published import convert_state_dict

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device (bench/gpu_check.sh)"),
]


@pytest.fixture(autouse=True)
def exact_fp32():
    # TF32 convolutions/matmuls would blur fp32 comparisons on Ampere+.
    previous = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
    yield
    torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = previous


def test_published_vectors_on_the_gpu():
    for task, name, key in [("pretraining", "pretrain", "pred"), ("segmentation", "segmentation", "logits")]:
        model, _ = convert_state_dict(load_file(OFFICIAL_VECTORS / f"{name}_weights.safetensors"), task)
        io = {k: v.cuda() for k, v in load_file(OFFICIAL_VECTORS / f"{name}_io.safetensors").items()}
        model = model.cuda().eval()
        with torch.no_grad():
            if task == "pretraining":
                output = model(io["pixel_values"], bool_masked_pos=io["mask"].bool()).logits
            else:
                output = model(io["pixel_values"]).logits
        reference = io[key]
        assert (output.reshape(reference.shape) - reference).abs().max() <= 1e-4 * max(1.0, reference.abs().max().item())


@pytest.mark.parametrize("cls", [VisMaeForPreTraining, VisMaeForSemanticSegmentation])
def test_sdpa_and_eager_agree_on_the_gpu(cls, tmp_path):
    torch.manual_seed(0)
    cls(VisMaeConfig(num_labels=4, drop_path_rate=0.0)).save_pretrained(tmp_path)
    pixel_values = torch.randn(4, 3, 224, 320, device="cuda")
    outputs = []
    for implementation in ("sdpa", "eager"):
        model = cls.from_pretrained(tmp_path, attn_implementation=implementation).cuda().eval()
        kwargs = {"bool_masked_pos": random_window_masking(4, 56, 80, 4, 0.75, device="cuda", generator=torch.Generator("cuda").manual_seed(0))} if cls is VisMaeForPreTraining else {}
        with torch.no_grad():
            outputs.append(model(pixel_values, **kwargs).logits)
    assert (outputs[0] - outputs[1]).abs().max() < 1e-5


def test_masking_and_a_training_step_never_synchronise_with_the_host():
    model = VisMaeForPreTraining(VisMaeConfig()).cuda().train()
    pixel_values = torch.randn(8, 3, 224, 224, device="cuda")
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        mask = random_window_masking(64, 56, 56, 4, 0.75, device="cuda")
        with torch.autocast("cuda", dtype=torch.bfloat16):
            loss = model(pixel_values).loss
        loss.backward()
    finally:
        torch.cuda.set_sync_debug_mode("default")
    assert mask.view(64, 14, 4, 14, 4).all(dim=(2, 4)).sum(dim=(1, 2)).eq(147).all()
    assert torch.isfinite(loss)


def test_activation_checkpointing_gives_the_same_gradients_on_the_gpu():
    torch.manual_seed(0)
    model = VisMaeForPreTraining(VisMaeConfig(drop_path_rate=0.0)).cuda().train()
    pixel_values = torch.randn(4, 3, 224, 224, device="cuda")
    mask = random_window_masking(4, 56, 56, 4, 0.75, device="cuda")

    def gradients():
        model.zero_grad()
        model(pixel_values, bool_masked_pos=mask).loss.backward()
        return {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}

    plain = gradients()
    model.activation_checkpointing_enable()
    checkpointed = gradients()
    for name, grad in plain.items():
        torch.testing.assert_close(checkpointed[name], grad, rtol=1e-4, atol=1e-6, msg=name)
