"""Pretraining checkpoint -> downstream heads, as the published fine-tuning did it."""

import torch

from vis_mae_hf import (
    VisMaeForImageClassification,
    VisMaeForPreTraining,
    VisMaeForSemanticSegmentation,
)
from vis_mae_hf.modeling_vis_mae import relative_position_index
from vis_mae_hf.weights.load_report import LoadReport


def pretrained_dir(tmp_path, tiny_config):
    torch.manual_seed(0)
    model = VisMaeForPreTraining(tiny_config())
    model.save_pretrained(tmp_path / "pretrained")
    return tmp_path / "pretrained", model.state_dict()


def test_segmentation_loads_encoder_and_mae_decoder_and_lists_what_starts_fresh(tmp_path, tiny_config):
    directory, pretrained = pretrained_dir(tmp_path, tiny_config)
    model, info = VisMaeForSemanticSegmentation.from_pretrained(
        directory, num_labels=4, depths=[2, 2, 6, 2], output_loading_info=True
    )
    assert model.config.resolved_decoder_depths == [6, 2, 2]
    missing = set(info["missing_keys"])
    fresh_prefixes = {
        "vis_mae.encoder.stages.2.blocks.2.", "vis_mae.encoder.stages.2.blocks.5.",
        "decoder.stages.0.blocks.2.", "decoder.stages.0.blocks.5.",
        "decoder.skip_projections.", "final_patch_expanding.", "segmentation_head.",
    }
    for prefix in fresh_prefixes:
        assert any(k.startswith(prefix) for k in missing), prefix
    # nothing else starts fresh: every missing key belongs to one of the published fresh modules
    published_fresh = ("vis_mae.encoder.stages.2.blocks.", "decoder.stages.0.blocks.", "decoder.skip_projections.",
                       "final_patch_expanding.", "segmentation_head.")
    assert all(k.startswith(published_fresh) for k in missing), missing
    assert not any(k.startswith(("vis_mae.encoder.stages.2.blocks.0.", "vis_mae.encoder.stages.2.blocks.1.",
                                 "decoder.stages.0.blocks.0.", "decoder.stages.0.blocks.1.")) for k in missing)
    # mask token and pixel head are dropped quietly (declared), not reported as surprises
    assert not info["unexpected_keys"] and not info["mismatched_keys"]
    state = model.state_dict()
    for key in ["vis_mae.embeddings.projection.weight", "vis_mae.encoder.stages.3.blocks.1.attention.qkv.weight",
                "decoder.patch_expanding.expand.weight", "decoder.stages.0.blocks.1.mlp.fc2.weight",
                "decoder.stages.1.resample.expand.weight", "decoder.layernorm.weight"]:
        assert torch.equal(state[key], pretrained[key]), key
    for module in model.modules():
        if hasattr(module, "relative_position_index"):
            assert torch.equal(module.relative_position_index, relative_position_index(7))


def test_classification_loads_only_the_encoder(tmp_path, tiny_config):
    directory, pretrained = pretrained_dir(tmp_path, tiny_config)
    model, info = VisMaeForImageClassification.from_pretrained(directory, num_labels=3, output_loading_info=True)
    assert sorted(info["missing_keys"]) == ["classifier.bias", "classifier.weight", "vis_mae.layernorm.bias", "vis_mae.layernorm.weight"]
    assert not info["unexpected_keys"] and not info["mismatched_keys"]
    encoder = {k: v for k, v in model.state_dict().items() if k.startswith("vis_mae.encoder.")}
    assert encoder and all(torch.equal(v, pretrained[k]) for k, v in encoder.items())
    # the one load report reads Transformers' loading info the same way
    report = LoadReport.from_loading_info(str(directory), model, info)
    assert report.fresh == sorted(info["missing_keys"]) and report.unused == {} and report.ok
    assert set(report.loaded) == set(model.state_dict()) - set(info["missing_keys"])
    assert report.loaded["vis_mae.encoder.stages.3.blocks.1.attention.qkv.weight"] == [
        "vis_mae.encoder.stages.3.blocks.1.attention.qkv.weight"
    ]


def train_a_few_steps(model, batch, steps=8):
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3, betas=(0.9, 0.95), weight_decay=0.05)
    model.train()
    losses = []
    for _ in range(steps):
        loss = model(**batch).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return losses


def test_fine_tuning_from_a_pretraining_checkpoint_reduces_the_loss(tmp_path, tiny_config):
    directory, _ = pretrained_dir(tmp_path, tiny_config)
    torch.manual_seed(1)
    pixel_values = torch.rand(4, 3, 64, 64)
    masks = (pixel_values.mean(1) > 0.5).long()  # a learnable target: bright pixels are foreground
    segmenter = VisMaeForSemanticSegmentation.from_pretrained(directory, num_labels=2, depths=[2, 2, 6, 2])
    losses = train_a_few_steps(segmenter, {"pixel_values": pixel_values, "labels": masks}, steps=12)
    assert losses[-1] < 0.93 * losses[0] and losses[-1] == min(losses), losses
    classifier = VisMaeForImageClassification.from_pretrained(directory, num_labels=2)
    losses = train_a_few_steps(classifier, {"pixel_values": pixel_values, "labels": torch.tensor([0, 1, 0, 1])})
    assert losses[-1] < 0.5 * losses[0], losses
