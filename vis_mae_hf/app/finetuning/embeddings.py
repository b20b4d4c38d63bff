"""An encoder's pooled embeddings of a dataset, written as a dataset, for linear probes and kNN:
`vis-mae embed --model DIR --dataset DIR --output DIR`.

- The embedding of an image is `VisMaeModel`'s `pooler_output`: the last stage's tokens, LayerNorm, mean over the
  tokens, which is what the classifier's linear head reads. Evaluation mode: no stochastic depth, no dropout.
- The model is any VIS-MAE checkpoint (pretraining, segmentation or classification, a folder or a cached Hub repo
  id); only its encoder is loaded. A classifier has a trained pooling LayerNorm; pretraining and segmentation
  checkpoints have none, so it stays at weight 1 and bias 0 (plain normalisation), and the summary says so. Any other
  encoder tensor missing from the checkpoint, or of another shape, is refused: embeddings of a partly random encoder
  would look like any others.
- Images go through the model folder's own image processor, the preprocessing the model was trained with.
- The output is a `DatasetDict` with the dataset's splits: every column of the input except `image` and `mask`
  (labels, case ids, folds and label ranks stay, so a probe can use the same folds), plus `embedding` (float32,
  hidden-size long), and `embedding_summary.json`. `datasets.load_from_disk(output)` reads it;
  `split.with_format("numpy")[:]["embedding"]` is the (N, hidden size) matrix. It is written through
  `vis_mae_hf.output_folders` (staged beside the output, the summary installed last; `overwrite` replaces only an
  earlier output of this command).
"""

from __future__ import annotations

import json
import pickle
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ...data.loading import load_labelled_dataset
from ...modeling_vis_mae import VisMaeModel
from ...output_folders import check_apart, open_output_folder
from ...vocabulary import CLASSIFICATION
from ...weights.load_report import LoadReport

TOOL = "vis-mae embed"
EMBEDDING_COLUMN = "embedding"
SUMMARY_FILE = "embedding_summary.json"
DROPPED_COLUMNS = ("image", "mask")
POOLING_NORM = ("layernorm.weight", "layernorm.bias")  # VisMaeModel's pooling LayerNorm, the classifier's only


@dataclass
class EmbeddingResult:
    output_dir: Path
    summary: dict


def load_encoder(model_name: str | Path) -> tuple[VisMaeModel, object, list[str]]:
    """(encoder with its pooling norm, the model's image processor, notes) of a VIS-MAE checkpoint (see above)."""
    from transformers import AutoImageProcessor
    from transformers.utils import logging as transformers_logging

    name = str(model_name)
    verbosity = transformers_logging.get_verbosity()
    bars_were_on = transformers_logging.is_progress_bar_enabled()
    transformers_logging.set_verbosity_error()  # the check below replaces Transformers' load report
    transformers_logging.disable_progress_bar()
    try:
        encoder, info = VisMaeModel.from_pretrained(
            name, output_loading_info=True, ignore_mismatched_sizes=True, dtype=torch.float32
        )
        processor = AutoImageProcessor.from_pretrained(name)
    except OSError as error:
        raise OSError(
            f"--model {name}: cannot load a VIS-MAE model with its image processor (config.json, model.safetensors "
            f"and preprocessor_config.json, as save_pretrained writes them) ({error})"
        ) from error
    except pickle.UnpicklingError as error:  # torch.load(weights_only=True) refused a pickle of more than tensors
        raise ValueError(
            f"--model {name}: its weights are a pickle that holds more than tensors and were refused unread (nothing "
            "in them ran). Use model.safetensors, as save_pretrained writes."
        ) from error
    finally:
        transformers_logging.set_verbosity(verbosity)
        if bars_were_on:
            transformers_logging.enable_progress_bar()
    report = LoadReport.from_loading_info(name, encoder, info)
    gaps = [key for key in report.fresh if key not in POOLING_NORM]
    if gaps or report.problems or any(key in report.unused for key in report.fresh):
        raise ValueError(
            f"--model {name}: its encoder is not whole ({report.gaps()}); embeddings of a partly random encoder "
            "would look like any others. Give a VIS-MAE checkpoint folder as save_pretrained wrote it."
        )
    notes = []
    if set(POOLING_NORM) & set(report.fresh):
        notes.append(
            "the checkpoint has no pooling LayerNorm (pretraining and segmentation checkpoints do not): it is plain "
            "normalisation (weight 1, bias 0)"
        )
    return encoder.eval(), processor, notes


@torch.no_grad()
def embed_images(encoder: VisMaeModel, processor, images: list, device: torch.device) -> np.ndarray:
    """(N, hidden size) float32 pooled embeddings of a batch of images (PIL or arrays)."""
    pixel_values = processor(images, return_tensors="pt")["pixel_values"].to(device)
    return encoder(pixel_values=pixel_values).pooler_output.float().cpu().numpy()


def embed_split(encoder, processor, split, batch_size: int, device: torch.device, progress=None):
    """`split` without its image and mask columns, with an `embedding` column."""
    from datasets import List, Value

    if "image" not in split.column_names:
        raise ValueError(f"--dataset: no `image` column to embed; it has {split.column_names}.")
    rows = []
    for start in range(0, len(split), batch_size):
        rows.append(embed_images(encoder, processor, split[start : start + batch_size]["image"], device))
        if progress is not None:
            progress.update(min(batch_size, len(split) - start))
    matrix = np.concatenate(rows) if rows else np.zeros((0, encoder.config.hidden_size), dtype=np.float32)
    kept = split.remove_columns([column for column in DROPPED_COLUMNS if column in split.column_names])
    feature = List(Value("float32"), length=encoder.config.hidden_size)
    return kept.add_column(EMBEDDING_COLUMN, list(matrix), feature=feature)


def write_embeddings(
    model: str | Path,
    dataset: str,
    output: str | Path,
    *,
    batch_size: int = 32,
    device: str | None = None,
    overwrite: bool = False,
    progress: bool = True,
) -> EmbeddingResult:
    """Embed every split of `dataset` with `model`'s encoder and write them to `output` (see the module docstring).

    Args:
        model: a VIS-MAE model folder or cached Hub repo id, with its image processor.
        dataset: what `vis-mae finetune` reads: a converted folder, a save_to_disk folder, a cached Hub dataset id,
            or "demo" (the classification demo).
        output: the folder to write (`vis_mae_hf.output_folders` rules).
        batch_size: images per forward pass.
        device: "cpu", "cuda", ...; default the first GPU if there is one.
        overwrite: replace an earlier output of this command in `output`.
    """
    output = Path(output).expanduser().resolve()
    inputs = [path for path in (Path(str(model)), Path(str(dataset))) if path.exists()]
    check_apart(output, inputs)
    folder = open_output_folder(output, TOOL, inputs=inputs, overwrite=overwrite, previous_output="earlier embeddings")
    device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    encoder, processor, notes = load_encoder(model)
    encoder.to(device)
    splits, _, description = load_labelled_dataset(dataset, CLASSIFICATION)
    embedded = _embed_splits(encoder, processor, splits, batch_size, device, progress)
    summary = {
        "model": str(model),
        "dataset": description,
        "embedding_column": EMBEDDING_COLUMN,
        "hidden_size": encoder.config.hidden_size,
        "pooling": "LayerNorm of the last stage's tokens, then their mean (VisMaeModel.pooler_output)",
        "image_processor": processor.to_dict(),
        "rows": {name: len(split) for name, split in embedded.items()},
        "notes": notes,
    }
    output.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{output.name}.partial-", dir=output.parent))
    try:
        _save_quietly(embedded, staging / "out")
        (staging / "out" / SUMMARY_FILE).write_text(json.dumps(summary, indent=1, default=str))
        folder.install(staging / "out", last=[SUMMARY_FILE])
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    if progress:
        rows = ", ".join(f"{name} {count}" for name, count in summary["rows"].items())
        print(f"Wrote {EMBEDDING_COLUMN} ({summary['hidden_size']} floats per image; {rows} rows) to {output}.")
        for note in notes:
            print(f"Note: {note}.")
    return EmbeddingResult(output, summary)


def _save_quietly(dataset_dict, path: Path) -> None:
    """`save_to_disk` without datasets' own progress bar (the embedding bar is the command's progress report)."""
    from datasets.utils.tqdm import (
        are_progress_bars_disabled,
        disable_progress_bars,
        enable_progress_bars,
    )

    were_disabled = are_progress_bars_disabled()
    disable_progress_bars()
    try:
        dataset_dict.save_to_disk(str(path))
    finally:
        if not were_disabled:
            enable_progress_bars()


def _embed_splits(encoder, processor, splits, batch_size: int, device, progress: bool):
    from datasets import DatasetDict
    from tqdm.auto import tqdm

    total = sum(len(split) for split in splits.values())
    with tqdm(total=total, desc="embedding", unit="image", disable=not progress) as bar:
        return DatasetDict(
            {name: embed_split(encoder, processor, split, batch_size, device, bar) for name, split in splits.items()}
        )


__all__ = ["EMBEDDING_COLUMN", "EmbeddingResult", "embed_images", "load_encoder", "write_embeddings"]
