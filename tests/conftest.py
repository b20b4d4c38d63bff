"""Test-wide settings: never touch the network (weights, datasets or metric scripts)."""

import os

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["HF_DATASETS_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from pathlib import Path

import pytest
import torch

OFFICIAL_VECTORS = Path(__file__).parent / "fixtures" / "official_vectors"


def tiny_config_kwargs(**overrides):
    """A narrow VIS-MAE (embed 16) with the published layout: fast enough for unit tests on 2 cores."""
    kwargs = dict(embed_dim=16, num_heads=[1, 2, 4, 8], depths=[2, 2, 2, 2], drop_path_rate=0.0)
    kwargs.update(overrides)
    return kwargs


def save_tiny_model(folder, model_class, recipe: str, **config_overrides) -> str:
    """A seeded tiny model at 64 px and the image processor of its recipe, saved as a model folder."""
    from vis_mae_hf import VisMaeConfig
    from vis_mae_hf.recipes import get_recipe

    torch.manual_seed(0)
    config = VisMaeConfig(**tiny_config_kwargs(image_size=64, **config_overrides))
    model_class(config).save_pretrained(folder)
    get_recipe(recipe).image_processor(64, num_channels=config.num_channels).save_pretrained(folder)
    return str(folder)


@pytest.fixture
def tiny_config():
    from vis_mae_hf import VisMaeConfig

    def make(**overrides):
        return VisMaeConfig(**tiny_config_kwargs(**overrides))

    return make


@pytest.fixture(scope="module")
def one_torch_thread():
    """One intra-op thread for a test module (`pytestmark = pytest.mark.usefixtures("one_torch_thread")`): tiny models
    gain nothing from more, and on a busy 2-core machine OpenMP threads spin-wait."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
