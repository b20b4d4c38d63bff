"""Publishing VIS-MAE on the Hugging Face Hub: export a repository folder, validate it, push it.

    from vis_mae_hf.hub import export_repository, push_repository
    export_repository("runs/mr", "mr", "repos/vis-mae-mr", repo_id="org/vis-mae-mr")
    push_repository("repos/vis-mae-mr", "org/vis-mae-mr")  # validates first; uploads nothing unless it passes
    export_repository("outputs/liver", None, "repos/liver", repo_id="org/liver-seg", evaluation="test-scores.json")

A pretraining checkpoint is published as one of the six variants; a fine-tuned segmenter or classifier with the
records of its fine-tuning (`finetuning_summary.json`, `eval_results.json`) and, optionally, an evaluation summary
(`vis-mae evaluate --output` writes one). The model card is the `MODEL_CARD.md` template (Jinja2) rendered by `card`. Command line: `vis-mae hub export`,
`vis-mae hub validate`, `vis-mae hub push`; publishing a pretraining run or a release of all six variants in one go
belongs to the application (`vis_mae_hf.app.publishing`, `vis_mae_hf.app.release`).
"""

from .card import CardTemplateError
from .export import ExportError, export_repository
from .push import HubPushError, push_repository
from .summaries import (
    SummaryError,
    load_evaluation_summary,
    load_finetuning_summary,
    load_training_summary,
    load_validation_results,
)
from .validation import (
    RepositoryValidationError,
    require_valid_repository,
    validate_repository,
)
from .variants import VARIANTS, HubVariant, get_variant

__all__ = [
    "VARIANTS",
    "CardTemplateError",
    "ExportError",
    "HubPushError",
    "HubVariant",
    "RepositoryValidationError",
    "SummaryError",
    "export_repository",
    "get_variant",
    "load_evaluation_summary",
    "load_finetuning_summary",
    "load_training_summary",
    "load_validation_results",
    "push_repository",
    "require_valid_repository",
    "validate_repository",
]
