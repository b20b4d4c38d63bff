"""Publish one pretraining run on the Hugging Face Hub: export its repository, validate it, push it.

    publish_run("runs/mr", "mr", "org/vis-mae-mr", "runs/mr/hub_repository")

What `--push-to-hub` of pretraining runs. The library's steps (`vis_mae_hf.hub`: `export_repository`,
`validate_repository`, `push_repository`) stay separate there; a release of several variants, which validates every
repository before pushing any, is `release.release_variants`. This module imports no training code, so pretraining
can publish through it while a release pretrains.
"""

from __future__ import annotations

from pathlib import Path

from huggingface_hub import CommitInfo

from ..hub.export import export_repository
from ..hub.push import push_repository


def publish_run(
    run_dir: str | Path,
    variant: str,
    repo_id: str,
    repo_dir: str | Path,
    *,
    private: bool = False,
    revision: str | None = None,
    check_remote_code: bool = True,
    export_kwargs: dict | None = None,
) -> CommitInfo:
    """Export `run_dir` as the Hub repository of `variant` into `repo_dir` (replacing a previous export there),
    validate it and push it to `repo_id` in one commit.

    Args:
        run_dir: a pretraining output directory (or a published-format checkpoint file).
        variant: generic, ct, mr, pet, xray or us.
        repo_id: "namespace/name"; the card's examples load from it.
        repo_dir: the repository folder to write.
        private, revision: as `push_repository` takes them.
        check_remote_code: also load the folder with `trust_remote_code=True` without vis_mae_hf before pushing.
        export_kwargs: other `export_repository` arguments (licence, evaluation, base model, ...).

    Raises:
        ExportError, SummaryError, CardTemplateError: the run cannot be exported; nothing is pushed.
        RepositoryValidationError: listing every validation failure; nothing is pushed.
    """
    export_repository(run_dir, variant, repo_dir, repo_id=repo_id, overwrite=True, **(export_kwargs or {}))
    return push_repository(
        repo_dir, repo_id, private=private, revision=revision, check_remote_code=check_remote_code
    )


__all__ = ["publish_run"]
