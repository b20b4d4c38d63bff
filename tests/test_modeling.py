"""Behaviour of the four model classes that users rely on."""

import pytest
import torch
from transformers import (
    AutoConfig,
    AutoModel,
    AutoModelForImageClassification,
    AutoModelForPreTraining,
    AutoModelForSemanticSegmentation,
)
from transformers.utils import logging as transformers_logging

from vis_mae_hf import (
    VisMaeConfig,
    VisMaeForImageClassification,
    VisMaeForPreTraining,
    VisMaeForSemanticSegmentation,
    VisMaeModel,
)
from vis_mae_hf.modeling_vis_mae import random_window_masking, relative_position_index

ALL_CLASSES = [VisMaeModel, VisMaeForPreTraining, VisMaeForImageClassification, VisMaeForSemanticSegmentation]


def make(cls, config):
    return cls(config).eval()


def run(model, pixel_values, **kwargs):
    with torch.no_grad():
        output = model(pixel_values, **kwargs)
    return output


def main_output(model, output):
    return output.last_hidden_state if isinstance(model, VisMaeModel) else output.logits


# ---------------------------------------------------------------------------------------------------------------------
# Auto classes and save/load
# ---------------------------------------------------------------------------------------------------------------------
def test_auto_classes_resolve_after_import(tmp_path, tiny_config):
    config = tiny_config(num_labels=3)
    for auto, cls in [
        (AutoModel, VisMaeModel),
        (AutoModelForPreTraining, VisMaeForPreTraining),
        (AutoModelForImageClassification, VisMaeForImageClassification),
        (AutoModelForSemanticSegmentation, VisMaeForSemanticSegmentation),
    ]:
        assert type(auto.from_config(config)) is cls
    config.save_pretrained(tmp_path)
    assert type(AutoConfig.from_pretrained(tmp_path)) is VisMaeConfig


@pytest.mark.parametrize("cls", ALL_CLASSES)
def test_save_and_reload_reproduce_outputs_exactly(tmp_path, tiny_config, cls):
    torch.manual_seed(0)
    model = make(cls, tiny_config(num_labels=3))
    pixel_values = torch.randn(2, 3, 64, 96)
    kwargs = {"bool_masked_pos": model.random_masking(2, 64, 96)} if cls is VisMaeForPreTraining else {}
    before = main_output(model, run(model, pixel_values, **kwargs))
    model.save_pretrained(tmp_path)
    reloaded, info = cls.from_pretrained(tmp_path, output_loading_info=True)
    assert all(not keys for keys in info.values()), info
    after = main_output(reloaded, run(reloaded.eval(), pixel_values, **kwargs))
    assert torch.equal(before, after)
    # the relative position index is not saved; loading (on the meta device) must rebuild it, not leave garbage
    for module in reloaded.modules():
        if hasattr(module, "relative_position_index"):
            assert torch.equal(module.relative_position_index, relative_position_index(7))


def test_bf16_weights_load_as_bf16_by_default_and_fp32_on_request(tmp_path, tiny_config):
    model = VisMaeForImageClassification(tiny_config(num_labels=2)).to(torch.bfloat16)
    model.save_pretrained(tmp_path)
    assert VisMaeForImageClassification.from_pretrained(tmp_path).dtype == torch.bfloat16
    fp32 = VisMaeForImageClassification.from_pretrained(tmp_path, dtype=torch.float32)
    assert fp32.dtype == torch.float32
    assert torch.equal(fp32.classifier.weight, model.classifier.weight.float())


# ---------------------------------------------------------------------------------------------------------------------
# Attention implementations and activation checkpointing
# ---------------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("cls", ALL_CLASSES)
def test_sdpa_and_eager_agree(tmp_path, tiny_config, cls):
    torch.manual_seed(0)
    make(cls, tiny_config(num_labels=3)).save_pretrained(tmp_path)
    sdpa = cls.from_pretrained(tmp_path, attn_implementation="sdpa").eval()
    eager = cls.from_pretrained(tmp_path, attn_implementation="eager").eval()
    assert sdpa.config._attn_implementation == "sdpa" and eager.config._attn_implementation == "eager"
    pixel_values = torch.randn(2, 3, 96, 64)
    kwargs = {"bool_masked_pos": sdpa.random_masking(2, 96, 64)} if cls is VisMaeForPreTraining else {}
    difference = (main_output(sdpa, run(sdpa, pixel_values, **kwargs)) - main_output(eager, run(eager, pixel_values, **kwargs))).abs().max()
    assert difference < 1e-5


def test_attention_maps_have_window_shape_and_sdpa_computes_them_on_the_eager_path(tmp_path, tiny_config, caplog):
    VisMaeModel(tiny_config()).save_pretrained(tmp_path)
    pixel_values = torch.randn(1, 3, 64, 64)
    eager = VisMaeModel.from_pretrained(tmp_path, attn_implementation="eager")
    attentions = eager(pixel_values, output_attentions=True).attentions
    assert len(attentions) == 8
    assert attentions[0].shape == (1, 9, 1, 49, 49)  # 16x16 tokens padded to 21x21 -> 3x3 windows, 1 head
    torch.testing.assert_close(attentions[0].sum(-1), torch.ones(1, 9, 1, 49))
    # SDPA cannot return maps: asked for them, the blocks take the eager path for that call and say so once
    sdpa = VisMaeModel.from_pretrained(tmp_path, attn_implementation="sdpa")
    transformers_logging.warning_once.cache_clear()
    with caplog.at_level("WARNING"):
        from_sdpa = sdpa(pixel_values, output_attentions=True).attentions
    assert 'falls back to it while output_attentions=True' in caplog.text
    assert sdpa.config._attn_implementation == "sdpa"
    for expected, actual in zip(attentions, from_sdpa, strict=True):
        torch.testing.assert_close(actual, expected)


@pytest.mark.parametrize("cls", ALL_CLASSES)
def test_no_weight_decay_names_exactly_the_norms_biases_mask_token_and_position_tables(tiny_config, cls):
    model = cls(tiny_config(num_labels=3))
    names = [name for name, _ in model.named_parameters()]
    exempt = model.no_weight_decay()
    # Norm weights and every bias are the 1-D parameters; the mask token and the bias tables are the only others.
    one_dimensional = {name for name, parameter in model.named_parameters() if parameter.ndim == 1}
    assert exempt == one_dimensional | {n for n in names if n.endswith(("mask_token", "relative_position_bias_table"))}
    prefix = "" if cls is VisMaeModel else "vis_mae."
    block = f"{prefix}encoder.stages.0.blocks.0."
    assert {f"{block}layernorm_before.weight", f"{block}attention.qkv.bias", f"{prefix}embeddings.norm.bias",
            f"{block}attention.relative_position_bias_table"} <= exempt
    assert f"{block}attention.qkv.weight" not in exempt and f"{prefix}embeddings.projection.weight" not in exempt
    assert (f"{prefix}embeddings.mask_token" in exempt) == (cls is VisMaeForPreTraining)
    assert len(exempt) < len(names)


@pytest.mark.parametrize("cls", [VisMaeForPreTraining, VisMaeForSemanticSegmentation])
def test_activation_checkpointing_gives_the_same_gradients(tiny_config, cls):
    torch.manual_seed(0)
    model = cls(tiny_config(num_labels=3))
    model.train()  # drop_path is 0 in the tiny config, so training mode is deterministic
    pixel_values = torch.randn(2, 3, 64, 64)
    kwargs = (
        {"bool_masked_pos": model.random_masking(2, 64, 64)}
        if cls is VisMaeForPreTraining
        else {"labels": torch.randint(0, 3, (2, 64, 64))}
    )

    def gradients():
        model.zero_grad()
        model(pixel_values, **kwargs).loss.backward()
        return {name: p.grad.clone() for name, p in model.named_parameters() if p.grad is not None}

    plain = gradients()
    model.activation_checkpointing_enable()
    assert any(getattr(m, "gradient_checkpointing", False) for m in model.modules())
    checkpointed = gradients()
    assert plain.keys() == checkpointed.keys() and len(plain) > 50
    for name in plain:
        torch.testing.assert_close(checkpointed[name], plain[name], rtol=1e-5, atol=1e-7, msg=name)


# ---------------------------------------------------------------------------------------------------------------------
# Masking
# ---------------------------------------------------------------------------------------------------------------------
def test_masks_cover_exactly_147_of_196_units_independently_per_sample():
    mask = random_window_masking(8, 56, 56, mask_unit_tokens=4, mask_ratio=0.75)
    assert mask.shape == (8, 3136) and mask.dtype == torch.bool
    units = mask.view(8, 14, 4, 14, 4)
    # every 4x4 token unit is either wholly masked or wholly visible
    assert torch.all(units.all(dim=(2, 4)) == units.any(dim=(2, 4)))
    assert units.all(dim=(2, 4)).sum(dim=(1, 2)).tolist() == [147] * 8
    assert len({tuple(m.tolist()) for m in mask}) == 8  # drawn independently per sample


def test_masks_are_reproducible_from_a_seed(tiny_config):
    model = VisMaeForPreTraining(tiny_config()).eval()
    pixel_values = torch.randn(2, 3, 64, 64)
    torch.manual_seed(123)
    first = run(model, pixel_values)
    torch.manual_seed(123)
    second = run(model, pixel_values)
    torch.manual_seed(124)
    third = run(model, pixel_values)
    assert torch.equal(first.mask, second.mask) and torch.equal(first.logits, second.logits)
    assert not torch.equal(first.mask, third.mask)
    generator = torch.Generator().manual_seed(5)
    again = torch.Generator().manual_seed(5)
    assert torch.equal(model.random_masking(3, 64, 64, generator=generator), model.random_masking(3, 64, 64, generator=again))


def test_masking_never_reads_values_back_to_the_host():
    # On the meta device tensors have no data: any .item(), .cpu() or data-dependent branch would raise.
    mask = random_window_masking(4, 56, 56, mask_unit_tokens=4, mask_ratio=0.75, device="meta")
    assert mask.device.type == "meta" and mask.shape == (4, 3136)


def test_explicit_mask_is_used_and_only_masked_tokens_enter_the_loss(tiny_config):
    torch.manual_seed(0)
    model = VisMaeForPreTraining(tiny_config()).eval()
    pixel_values = torch.randn(1, 3, 64, 64)
    mask = torch.zeros(1, 256, dtype=torch.bool)
    mask[0, :16] = True
    output = run(model, pixel_values, bool_masked_pos=mask)
    assert torch.equal(output.mask, mask)
    per_token = (output.logits - model.patchify(pixel_values)).pow(2).mean(-1)
    torch.testing.assert_close(output.loss, per_token[0, :16].mean())
    with pytest.raises(ValueError, match=r"bool_masked_pos must have shape \(batch_size, num_tokens\) = \(1, 256\)"):
        model(pixel_values, bool_masked_pos=torch.zeros(1, 255, dtype=torch.bool))


def test_patchify_layout_is_p_q_c_with_channel_fastest(tiny_config):
    model = VisMaeForPreTraining(tiny_config())
    pixel_values = torch.arange(2 * 3 * 32 * 64, dtype=torch.float32).view(2, 3, 32, 64)
    patches = model.patchify(pixel_values)
    assert patches.shape == (2, 8 * 16, 48)
    token, p, q, c = 17, 2, 3, 1  # token 17 = row 1, column 1 of the 8x16 grid
    assert patches[1, token, (p * 4 + q) * 3 + c] == pixel_values[1, c, 1 * 4 + p, 1 * 4 + q]
    assert torch.equal(model.unpatchify(patches, 32, 64), pixel_values)


# ---------------------------------------------------------------------------------------------------------------------
# Input sizes
# ---------------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("cls", ALL_CLASSES)
def test_non_square_inputs_run_through_every_class(tiny_config, cls):
    model = make(cls, tiny_config(num_labels=3))
    output = run(model, torch.randn(1, 3, 224, 320))
    if cls is VisMaeModel:
        assert output.last_hidden_state.shape == (1, 7 * 10, 128)
        assert output.pooler_output.shape == (1, 128)
    elif cls is VisMaeForPreTraining:
        assert output.logits.shape == (1, 56 * 80, 48)
        # 14x20 = 280 mask units, 70 kept
        assert output.mask.view(1, 14, 4, 20, 4).all(dim=(2, 4)).sum() == 210
    elif cls is VisMaeForImageClassification:
        assert output.logits.shape == (1, 3)
    else:
        assert output.logits.shape == (1, 3, 224, 320)


@pytest.mark.parametrize("cls", ALL_CLASSES)
def test_bad_sizes_and_channels_get_clear_errors(tiny_config, cls):
    model = make(cls, tiny_config(num_labels=3))
    with pytest.raises(ValueError, match=r"multiples of 32 .* got 200x224"):
        model(torch.randn(1, 3, 200, 224))
    with pytest.raises(ValueError, match="has 1 channels but the model expects 3"):
        model(torch.randn(1, 1, 224, 224))
    with pytest.raises(ValueError, match="4-D tensor"):
        model(torch.randn(3, 224, 224))


def test_grey_single_channel_model(tiny_config):
    model = make(VisMaeForPreTraining, tiny_config(num_channels=1))
    output = run(model, torch.randn(2, 1, 64, 64))
    assert output.logits.shape == (2, 256, 16)


def test_hidden_states_are_the_stage_inputs_and_the_output(tiny_config):
    model = make(VisMaeModel, tiny_config())
    output = run(model, torch.randn(1, 3, 224, 224), output_hidden_states=True)
    assert [tuple(h.shape) for h in output.reshaped_hidden_states] == [
        (1, 16, 56, 56), (1, 32, 28, 28), (1, 64, 14, 14), (1, 128, 7, 7), (1, 128, 7, 7)
    ]
    assert output.hidden_states[0].shape == (1, 3136, 16)
    assert torch.equal(output.hidden_states[-1], output.last_hidden_state)
    as_tuple = model(torch.randn(1, 3, 64, 64), return_dict=False)
    assert isinstance(as_tuple, tuple)


def test_the_published_last_stage_shift_is_kept_unless_switched_off(tiny_config):
    torch.manual_seed(0)
    published = make(VisMaeModel, tiny_config())
    reference_swin = make(VisMaeModel, tiny_config(shift_single_window_stages=False))
    reference_swin.load_state_dict(published.state_dict())
    pixel_values = torch.randn(1, 3, 224, 224)
    a, b = run(published, pixel_values, output_hidden_states=True), run(reference_swin, pixel_values, output_hidden_states=True)
    assert torch.equal(a.hidden_states[3], b.hidden_states[3])  # identical up to the 7x7 stage
    assert not torch.allclose(a.last_hidden_state, b.last_hidden_state)  # which then differs


# ---------------------------------------------------------------------------------------------------------------------
# Segmentation loss
# ---------------------------------------------------------------------------------------------------------------------
def test_segmentation_loss_is_point_four_ce_plus_point_six_dice(tiny_config):
    torch.manual_seed(0)
    model = make(VisMaeForSemanticSegmentation, tiny_config(num_labels=3))
    pixel_values, labels = torch.randn(2, 3, 64, 64), torch.randint(0, 3, (2, 64, 64))
    labels[0, :4, :4] = 255  # ignored
    output = run(model, pixel_values, labels=labels)
    logits = output.logits
    valid = labels != 255
    ce = torch.nn.functional.cross_entropy(logits, labels, ignore_index=255)
    probabilities = logits.softmax(1)
    dices = []
    for c in (1, 2):  # foreground classes, averaged (see config.dice_include_background)
        p = probabilities[:, c][valid]
        t = (labels[valid] == c).float()
        dices.append((2 * (p * t).sum() + 1e-5) / (p.pow(2).sum() + t.pow(2).sum() + 1e-5))
    expected = 0.4 * ce + 0.6 * (1 - torch.stack(dices).mean())
    torch.testing.assert_close(output.loss, expected)
    with pytest.raises(ValueError, match="labels must have shape"):
        model(pixel_values, labels=labels[:, :32])


def test_segmentation_needs_at_least_two_labels(tiny_config):
    with pytest.raises(ValueError, match="num_labels >= 2"):
        VisMaeForSemanticSegmentation(tiny_config(num_labels=1))


def test_multi_label_classification_uses_bce(tiny_config):
    model = make(VisMaeForImageClassification, tiny_config(num_labels=4, problem_type="multi_label_classification"))
    labels = torch.tensor([[1.0, 0, 1, 0]])
    output = run(model, torch.randn(1, 3, 64, 64), labels=labels)
    torch.testing.assert_close(output.loss, torch.nn.functional.binary_cross_entropy_with_logits(output.logits, labels))
