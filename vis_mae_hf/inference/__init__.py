"""Inference with fine-tuned VIS-MAE models: whole images and whole studies, and the `vis-mae predict` command.

- `predictor.VisMaePredictor`: model + image processor + device; `segment_images`, `segment_volume` (slice by slice
  along the RAS axial axis, back to the volume's voxel layout), `classify_images`.
- `inputs`: which inputs are volumes, and which intensity window turns them into [0, 1].
- `overlay`: a picture to check a segmentation by eye.
- `outputs`: mask PNG / overlay PNG / NIfTI on the input's grid / classification CSV and JSON.
- `cli`: `vis-mae predict`.
"""

from .predictor import (
    TASK_CLASSIFICATION,
    TASK_SEGMENTATION,
    PredictorLoadError,
    SegmentationPrediction,
    VisMaePredictor,
    ras_plane_from_display,
)

__all__ = [
    "TASK_CLASSIFICATION",
    "TASK_SEGMENTATION",
    "PredictorLoadError",
    "SegmentationPrediction",
    "VisMaePredictor",
    "ras_plane_from_display",
]
