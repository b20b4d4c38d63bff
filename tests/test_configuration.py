import json

import pytest

from vis_mae_hf import VisMaeConfig


def test_defaults_are_the_published_pretraining_model():
    config = VisMaeConfig()
    assert config.model_type == "vis_mae"
    assert (config.image_size, config.patch_size, config.num_channels, config.embed_dim) == (224, 4, 3, 96)
    assert config.depths == [2, 2, 2, 2] and config.num_heads == [3, 6, 12, 24]
    assert config.window_size == 7 and config.mlp_ratio == 4.0 and config.layer_norm_eps == 1e-6
    assert config.drop_path_rate == 0.1 and config.mask_ratio == 0.75 and config.mask_unit_size == 16
    assert config.shift_single_window_stages is True and config.norm_pix_loss is False
    assert config.resolved_decoder_depths == [2, 2, 2] and config.resolved_decoder_num_heads == [12, 6, 3]
    assert config.hidden_size == 768 and config.num_attention_heads == [3, 6, 12, 24]


def test_decoder_mirrors_a_deeper_encoder_after_a_save_load_round_trip(tmp_path):
    VisMaeConfig().save_pretrained(tmp_path)
    config = VisMaeConfig.from_pretrained(tmp_path, depths=[2, 2, 6, 2], num_labels=4)
    assert config.resolved_decoder_depths == [6, 2, 2]
    assert config.num_labels == 4


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(num_heads=[3, 6, 12]), "num_heads has 3 entries but depths has 4"),
        (dict(num_heads=[3, 6, 12, 25]), "num_heads[3]=25 must divide the stage width 768"),
        (dict(image_size=100), "image_size height 100 must be a positive multiple of 32"),
        (dict(image_size=[224, 300]), "image_size width 300 must be a positive multiple of 32"),
        (dict(mask_unit_size=6), "mask_unit_size 6 must be a multiple of patch_size 4"),
        (dict(mask_ratio=1.0), "mask_ratio must be in [0, 1)"),
        (dict(decoder_depths=[2, 2]), "decoder_depths needs 3 entries"),
        (dict(hidden_act="swishy"), "hidden_act 'swishy' is unknown"),
        (dict(depths=[2]), "depths needs at least 2 stages"),
        (dict(window_size=0), "window_size must be a positive integer"),
        # sane bounds: a typo or a hostile config.json fails here, not by allocating gigabytes
        (dict(image_size=3200000), "image_size is 3200000; at most 4096 px per side (tile larger images)"),
        (dict(image_size=[224, 4128]), "image_size[1] is 4128; at most 4096 px per side"),
        (dict(depths=[2] * 9, num_heads=[1] * 9), "depths has 9 stages; at most 8"),
        (dict(depths=[2, 2, 65, 2]), "depths[2] is 65; at most 64"),
        (dict(decoder_depths=[2, 2, 100]), "decoder_depths[2] is 100; at most 64"),
        (dict(embed_dim=4096), "embed_dim 4096 makes the widest of 4 stages 32768 channels wide"),
        (dict(num_heads=[3, 6, 12, 384]), "num_heads[3] is 384; at most 256"),
        (dict(window_size=65), "window_size is 65; at most 64"),
        (dict(num_channels=100), "num_channels is 100; at most 64"),
        (dict(mlp_ratio=32.0), "mlp_ratio is 32.0; at most 16.0"),
        # whole numbers: what JSON gives; a float or a string would fail deep inside the model
        (dict(window_size=7.5), "window_size is 7.5; expected a whole number"),
        (dict(image_size="224"), "image_size is '224'; expected a whole number"),
        (dict(num_heads=["3", 6, 12, 24]), "num_heads[0] is '3'; expected a whole number"),
    ],
)
def test_invalid_configs_name_the_field(kwargs, message):
    with pytest.raises(Exception) as error:
        VisMaeConfig(**kwargs)
    assert message in str(error.value)


def test_wrong_field_type_is_rejected():
    with pytest.raises(Exception, match="depths"):
        VisMaeConfig(depths="2,2,2,2")


def test_the_largest_sane_sizes_are_accepted():
    """The bounds refuse absurd sizes only: the published models and the largest sizes allowed build as configs."""
    config = VisMaeConfig(image_size=[4096, 2048], depths=[2, 2, 18, 2], num_heads=[4, 8, 16, 32], embed_dim=128)
    assert config.image_height_width == (4096, 2048) and config.hidden_size == 1024
    wide = VisMaeConfig(window_size=64, num_channels=64, mlp_ratio=16.0, depths=[64, 64], num_heads=[3, 6])
    assert (wide.window_size, wide.num_channels, wide.resolved_decoder_depths) == (64, 64, [64])


def test_a_config_json_beyond_the_bounds_is_refused_on_loading(tmp_path):
    VisMaeConfig().save_pretrained(tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    (tmp_path / "config.json").write_text(json.dumps({**config, "image_size": 3200000}))
    with pytest.raises(Exception, match="image_size is 3200000; at most 4096"):
        VisMaeConfig.from_pretrained(tmp_path)
