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
    ],
)
def test_invalid_configs_name_the_field(kwargs, message):
    with pytest.raises(Exception) as error:
        VisMaeConfig(**kwargs)
    assert message in str(error.value)


def test_wrong_field_type_is_rejected():
    with pytest.raises(Exception, match="depths"):
        VisMaeConfig(depths="2,2,2,2")
