"""Inference with fine-tuned VIS-MAE models: whole images and whole studies.

- `predictor.VisMaePredictor`: model + image processor + device; `segment_images`, `segment_volume` (slice by slice
  along the RAS axial axis, back to the volume's voxel layout), `classify_images`.
- `inputs`: which inputs are volumes, and which intensity window turns them into [0, 1].
- `overlay`: a picture to check a segmentation by eye.
- `outputs`: mask PNG / overlay PNG / NIfTI on the input's grid / classification CSV and JSON.
- `reconstruction`: a picture of what a pretraining checkpoint reconstructs.

The `vis-mae predict` command is in the application (`vis_mae_hf.app.cli.predict`).
"""

from .predictor import (
    TASK_CLASSIFICATION,
    TASK_SEGMENTATION,
    PredictorLoadError,
    SegmentationPrediction,
    VisMaePredictor,
)

__all__ = [
    "TASK_CLASSIFICATION",
    "TASK_SEGMENTATION",
    "PredictorLoadError",
    "SegmentationPrediction",
    "VisMaePredictor",
]
