"""Publishing VIS-MAE on the Hugging Face Hub: export a repository folder, validate it, push it.

    from vis_mae_hf.hub import export_repository, push_repository
    export_repository("runs/mr", "mr", "repos/vis-mae-mr", repo_id="org/vis-mae-mr")
    push_repository("repos/vis-mae-mr", "org/vis-mae-mr")

Command line: `vis-mae hub export`, `vis-mae hub validate`, `vis-mae hub push`.
"""

from .card import CardInputs, CardTemplateError, render_model_card
from .export import ExportError, export_repository
from .push import export_and_push, push_repository, repository_files
from .remote_code import CONFIG_AUTO_MAP, IMAGE_PROCESSOR_AUTO_MAP, REMOTE_CODE_FILES
from .summaries import SummaryError, load_evaluation_summary, load_training_summary
from .validation import (
    RepositoryValidationError,
    require_valid_repository,
    validate_repository,
)
from .variants import VARIANTS, HubVariant, get_variant

__all__ = [
    "CONFIG_AUTO_MAP",
    "IMAGE_PROCESSOR_AUTO_MAP",
    "REMOTE_CODE_FILES",
    "VARIANTS",
    "CardInputs",
    "CardTemplateError",
    "ExportError",
    "HubVariant",
    "RepositoryValidationError",
    "SummaryError",
    "export_and_push",
    "export_repository",
    "get_variant",
    "load_evaluation_summary",
    "load_training_summary",
    "push_repository",
    "render_model_card",
    "repository_files",
    "require_valid_repository",
    "validate_repository",
]
