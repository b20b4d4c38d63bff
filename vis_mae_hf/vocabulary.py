"""The words VIS-MAE code uses for tasks and imaging modalities, spelled once and read by every caller.

Tasks:
- a labelled dataset holds one of `DATASET_TASKS`: a mask per image (`SEGMENTATION`), one class per image
  (`CLASSIFICATION`) or several (`MULTILABEL`);
- a fine-tuning run is asked for one of `FINETUNING_TASKS` (a multi-label set runs as classification, recognised
  by its `labels` column);
- a checkpoint has one of `CHECKPOINT_TASKS` heads (the published-checkpoint converter's `--task`).

Modalities: images are grouped as `IMAGING_MODALITIES` (upper case, the corpus's `modality` column and the keys of
its counts). A pretraining run or a Hub variant selects the images of one group by its lower-case name, or all of
them (`GENERIC`): `CORPUS_SELECTIONS`.
"""

from __future__ import annotations

SEGMENTATION = "segmentation"
CLASSIFICATION = "classification"
MULTILABEL = "multilabel"
PRETRAINING = "pretraining"

DATASET_TASKS = (SEGMENTATION, CLASSIFICATION, MULTILABEL)
FINETUNING_TASKS = (SEGMENTATION, CLASSIFICATION)
CHECKPOINT_TASKS = (PRETRAINING, SEGMENTATION, CLASSIFICATION)

# What a task is called on the Hub and in Transformers (model-index task types, `VisMaePredictor.task`).
HUB_TASK_TYPES = {SEGMENTATION: "semantic-segmentation", CLASSIFICATION: "image-classification"}

CT, MR, PET, XRAY, US = "CT", "MR", "PET", "XRAY", "US"
IMAGING_MODALITIES = (CT, MR, PET, XRAY, US)
GENERIC = "generic"
CORPUS_SELECTIONS = (GENERIC, *(modality.lower() for modality in IMAGING_MODALITIES))

# DICOM Modality (0008,0060) -> group. NM (gamma camera / SPECT) is not PET, and secondary captures (OT/SC), SEG and
# RT objects say nothing about the imaging modality, so they have no group.
DICOM_MODALITY_GROUPS = {
    "CT": CT,
    "MR": MR,
    "PT": PET,
    **dict.fromkeys(("CR", "DX", "DR", "MG", "RF", "XA", "PX", "IO", "RG"), XRAY),
    **dict.fromkeys(("US", "IVUS"), US),
}

# Other ways people write a group (command-line hints, folder names are matched separately).
_ALIASES = {"MRI": MR, "PT": PET, "CR": XRAY, "DX": XRAY, "XR": XRAY, "X-RAY": XRAY, "ULTRASOUND": US}


def imaging_modality(name: str) -> str:
    """The group called `name` ("mr", "MRI", "x-ray", "PT", ...): one of `IMAGING_MODALITIES`.

    Raises:
        ValueError: naming the value and the accepted groups.
    """
    key = str(name).strip().upper()
    key = _ALIASES.get(key, key)
    if key not in IMAGING_MODALITIES:
        raise ValueError(f"Unknown modality {name!r}: expected one of {', '.join(IMAGING_MODALITIES)}.")
    return key


def corpus_selection(name: str) -> str:
    """A pretraining or Hub-variant selection ("generic", "ct", ..., "us"), case-insensitive.

    Raises:
        ValueError: naming the value and the accepted selections.
    """
    key = str(name).strip().lower()
    if key not in CORPUS_SELECTIONS:
        raise ValueError(f"Unknown modality {name!r}: expected one of {', '.join(CORPUS_SELECTIONS)}.")
    return key


def selected_modalities(selection: str) -> tuple[str, ...] | None:
    """The groups a selection keeps: None (every image) for `GENERIC`, else its one group."""
    selection = corpus_selection(selection)
    return None if selection == GENERIC else (selection.upper(),)
