"""vis-mae-hf: VIS-MAE as Hugging Face Transformers models for medical images.

Importing the package registers the model family with the Transformers Auto classes, so
`AutoModelForSemanticSegmentation.from_pretrained(<a vis_mae checkpoint>)` works without `trust_remote_code`.
"""

from transformers import (
    AutoConfig,
    AutoImageProcessor,
    AutoModel,
    AutoModelForImageClassification,
    AutoModelForPreTraining,
    AutoModelForSemanticSegmentation,
)

from .configuration_vis_mae import VisMaeConfig
from .modeling_vis_mae import (
    VisMaeForImageClassification,
    VisMaeForPreTraining,
    VisMaeForSemanticSegmentation,
    VisMaeModel,
    VisMaePreTrainedModel,
)
from .image_processing_vis_mae import VisMaeImageProcessor, VisMaeImageProcessorPil
from .medical_io import load_medical_image, load_medical_volume

__version__ = "0.1.0"

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

__all__ = [
    "VisMaeConfig",
    "VisMaePreTrainedModel",
    "VisMaeModel",
    "VisMaeForPreTraining",
    "VisMaeForImageClassification",
    "VisMaeForSemanticSegmentation",
    "VisMaeImageProcessor",
    "VisMaeImageProcessorPil",
    "load_medical_image",
    "load_medical_volume",
]
