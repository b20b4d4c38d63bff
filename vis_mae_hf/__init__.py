"""vis-mae-hf: VIS-MAE as Hugging Face Transformers models for medical images.

Importing the package registers the model family with the Transformers Auto classes, so
`AutoModelForSemanticSegmentation.from_pretrained(<a vis_mae checkpoint>)` and
`AutoBackbone.from_pretrained(<a vis_mae checkpoint>)` work without `trust_remote_code`.
"""

import json
import os
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from huggingface_hub import try_to_load_from_cache
from transformers import (
    AutoBackbone,
    AutoConfig,
    AutoImageProcessor,
    AutoModel,
    AutoModelForImageClassification,
    AutoModelForPreTraining,
    AutoModelForSemanticSegmentation,
)
from transformers.models.auto import modeling_auto
from transformers.models.auto.auto_factory import _BaseAutoModelClass

from .configuration_vis_mae import VisMaeConfig
from .image_processing_vis_mae import VisMaeImageProcessor, VisMaeImageProcessorPil
from .inference import VisMaePredictor
from .medical import (
    MedicalImage,
    MedicalVolume,
    load_medical_image,
    load_medical_volume,
)
from .modeling_vis_mae import (
    VisMaeBackbone,
    VisMaeForImageClassification,
    VisMaeForPreTraining,
    VisMaeForSemanticSegmentation,
    VisMaeModel,
    VisMaePreTrainedModel,
)

try:
    __version__ = version("vis-mae-hf")  # one source of truth: pyproject.toml, through the installed metadata
except PackageNotFoundError:  # a source tree on sys.path that was never installed
    __version__ = "0+unknown"

AutoConfig.register(VisMaeConfig.model_type, VisMaeConfig, exist_ok=True)
AutoModel.register(VisMaeConfig, VisMaeModel, exist_ok=True)
AutoModelForPreTraining.register(VisMaeConfig, VisMaeForPreTraining, exist_ok=True)
AutoModelForImageClassification.register(VisMaeConfig, VisMaeForImageClassification, exist_ok=True)
AutoModelForSemanticSegmentation.register(VisMaeConfig, VisMaeForSemanticSegmentation, exist_ok=True)
AutoBackbone.register(VisMaeConfig, VisMaeBackbone, exist_ok=True)
AutoImageProcessor.register(
    VisMaeConfig,
    image_processor_classes={"pil": VisMaeImageProcessorPil, "torchvision": VisMaeImageProcessor},
    exist_ok=True,
)


def _declare_semantic_segmentation_for_pipelines() -> None:
    """Let `pipeline("image-segmentation")` recognise VisMaeForSemanticSegmentation without logging an error.

    `check_model_type` finds registered (non-built-in) models through the `_model_mapping` attribute that the Auto
    mappings attach to their `*_MAPPING_NAMES` dicts; the image-segmentation pipeline checks a `.copy()` of those
    dicts, which drops that attribute, so registering with any Auto class cannot reach it (the image-classification
    pipeline checks the dict itself, which is why it needs nothing more). Naming the class in the semantic
    segmentation names dict is what the check reads. It is inert elsewhere: the lazy Auto mapping only uses names
    whose model type is a built-in config, and finds our class through the registration above.
    """

    modeling_auto.MODEL_FOR_SEMANTIC_SEGMENTATION_MAPPING_NAMES.setdefault(
        VisMaeConfig.model_type, VisMaeForSemanticSegmentation.__name__
    )


_declare_semantic_segmentation_for_pipelines()


def _local_model_type(pretrained_model_name_or_path, kwargs: dict) -> str | None:
    """The `model_type` in the config.json of a folder, or of a repository in the local Hub cache; None when there is
    no such file on this machine or it does not read as a JSON object."""
    if not isinstance(pretrained_model_name_or_path, (str, os.PathLike)):
        return None
    name = os.fspath(pretrained_model_name_or_path)
    subfolder = kwargs.get("subfolder") or ""
    if os.path.isdir(name):
        config_path = Path(name, subfolder, "config.json")
    else:
        try:
            cached = try_to_load_from_cache(
                name, f"{subfolder}/config.json" if subfolder else "config.json",
                cache_dir=kwargs.get("cache_dir"), revision=kwargs.get("revision"),
            )
        except ValueError:  # not a repository id either: Transformers says what is wrong with the name
            return None
        if not isinstance(cached, str):
            return None
        config_path = Path(cached)
    try:
        config = json.loads(config_path.read_text(encoding="utf-8"))
    except (OSError, ValueError):  # unreadable: Transformers reports it
        return None
    return config.get("model_type") if isinstance(config, dict) else None


def _load_vis_mae_backbones_without_asking_the_hub() -> None:
    """Let `AutoBackbone.from_pretrained` open a VIS-MAE folder, or a VIS-MAE repository in the Hub cache offline.

    Transformers 5.x's `AutoBackbone.from_pretrained` first asks the Hub whether the name is a repository (to tell a
    timm model name from a Transformers checkpoint), so a local folder fails as an invalid repository id and, offline,
    every name fails. A name whose config.json is on this machine and says `vis_mae` skips that question and loads as
    every other Auto class loads (registered class, `auto_map`, `trust_remote_code`); any other name goes to
    Transformers unchanged.
    """
    if getattr(AutoBackbone.from_pretrained, "skips_the_hub_for_vis_mae", False):
        return
    asks_the_hub = AutoBackbone.from_pretrained

    def from_pretrained(cls, pretrained_model_name_or_path, *model_args, **kwargs):
        if _local_model_type(pretrained_model_name_or_path, kwargs) != VisMaeConfig.model_type:
            return asks_the_hub(pretrained_model_name_or_path, *model_args, **kwargs)
        kwargs.pop("use_timm_backbone", None)
        return _BaseAutoModelClass.from_pretrained.__func__(cls, pretrained_model_name_or_path, *model_args, **kwargs)

    from_pretrained.skips_the_hub_for_vis_mae = True
    from_pretrained.__doc__ = asks_the_hub.__doc__
    AutoBackbone.from_pretrained = classmethod(from_pretrained)


_load_vis_mae_backbones_without_asking_the_hub()

__all__ = [
    "VisMaeConfig",
    "VisMaePreTrainedModel",
    "VisMaeModel",
    "VisMaeForPreTraining",
    "VisMaeForImageClassification",
    "VisMaeForSemanticSegmentation",
    "VisMaeBackbone",
    "VisMaeImageProcessor",
    "VisMaeImageProcessorPil",
    "MedicalImage",
    "MedicalVolume",
    "load_medical_image",
    "load_medical_volume",
    "VisMaePredictor",
]
