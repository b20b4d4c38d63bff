"""vis-mae-hf: VIS-MAE as Hugging Face Transformers models for medical images.

Importing the package registers the model family with the Transformers Auto classes, so
`AutoModelForSemanticSegmentation.from_pretrained(<a vis_mae checkpoint>)` works without `trust_remote_code`.
"""

from importlib.metadata import PackageNotFoundError, version

from transformers import (
    AutoConfig,
    AutoImageProcessor,
    AutoModel,
    AutoModelForImageClassification,
    AutoModelForPreTraining,
    AutoModelForSemanticSegmentation,
)
from transformers.models.auto import modeling_auto

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

__all__ = [
    "VisMaeConfig",
    "VisMaePreTrainedModel",
    "VisMaeModel",
    "VisMaeForPreTraining",
    "VisMaeForImageClassification",
    "VisMaeForSemanticSegmentation",
    "VisMaeImageProcessor",
    "VisMaeImageProcessorPil",
    "MedicalImage",
    "MedicalVolume",
    "load_medical_image",
    "load_medical_volume",
    "VisMaePredictor",
]
