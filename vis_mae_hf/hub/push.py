"""Publish a validated repository folder to the Hugging Face Hub in one commit.

The token comes from where `huggingface_hub` always looks (`HF_TOKEN`, `huggingface-cli login`'s stored token), never
from a command-line argument. The folder is validated first and nothing is uploaded unless it passes; the commit then
makes the Hub revision hold exactly the folder's files: files of an earlier publication that the export no longer
has (old shards, pickle weights) are deleted in the same commit, so no stale file can be loaded instead.
"""

from __future__ import annotations

from pathlib import Path

from huggingface_hub import CommitInfo, CommitOperationAdd, CommitOperationDelete, HfApi
from huggingface_hub.errors import (
    HTTPError,
    RepositoryNotFoundError,
    RevisionNotFoundError,
)

from .. import __version__
from .validation import RepositoryValidationError, validate_repository

KEPT_REMOTE_FILES = frozenset({".gitattributes"})  # created by the Hub itself; it routes large files to LFS/Xet
# What the Hub client raises when the Hub cannot be reached or refuses the request: any HTTP error (a refused token is
# an HfHubHTTPError), a connection error (HF_HUB_OFFLINE set: OfflineModeIsEnabled) or a timeout.
HUB_ERRORS = (HTTPError, ConnectionError, TimeoutError)


class HubPushError(OSError):
    """The Hub could not be reached or refused the upload; the message names the repository and what to check."""


def repository_files(repo_dir: str | Path) -> list[str]:
    """Every file under `repo_dir`, as sorted POSIX paths relative to it (hidden files and folders excluded)."""
    repo_dir = Path(repo_dir)
    return sorted(
        path.relative_to(repo_dir).as_posix()
        for path in repo_dir.rglob("*")
        if path.is_file() and not any(part.startswith(".") for part in path.relative_to(repo_dir).parts)
    )


def push_repository(
    repo_dir: str | Path,
    repo_id: str,
    *,
    private: bool = False,
    revision: str | None = None,
    commit_message: str | None = None,
    check_remote_code: bool = True,
    token: str | None = None,
    api: HfApi | None = None,
) -> CommitInfo:
    """Validate `repo_dir` and upload it to the model repository `repo_id` (created if needed) in one commit.

    Args:
        repo_dir: a folder written by `export_repository`.
        repo_id: "namespace/name"; the model card must already name it (export with `repo_id=`).
        private: create the repository private (an existing repository keeps its visibility).
        revision: a branch to commit to (created from main if missing); default main.
        commit_message: default "Publish <variant title> with vis-mae-hf <version>".
        check_remote_code: also load the folder with `trust_remote_code=True` without vis_mae_hf before uploading.
        token: a Hub token; default the usual places (HF_TOKEN, the stored login).
        api: an `HfApi` to use (tests pass one whose network calls are replaced).

    Raises:
        RepositoryValidationError: listing every validation failure; nothing is uploaded.
        HubPushError: the Hub could not be reached (no network, HF_HUB_OFFLINE set) or refused a request (the token);
            one line naming the repository. No file is uploaded unless the one commit went through (the
            repository itself may have been created by then).
    """
    repo_dir = Path(repo_dir)
    failures = validate_repository(repo_dir, repo_id, check_remote_code=check_remote_code)
    if failures:
        raise RepositoryValidationError(repo_dir, failures)
    api = api if api is not None else HfApi(token=token)
    try:
        return _commit_folder(api, repo_dir, repo_id, private, revision, commit_message)
    except HUB_ERRORS as error:
        reason = " ".join(str(error).split()) or type(error).__name__
        raise HubPushError(
            f"Could not push {repo_dir} to the Hub repository {repo_id}: {reason}. Check the network connection "
            "(and that HF_HUB_OFFLINE is not set) and that the token (HF_TOKEN, or `hf auth login`) may write to "
            f"{repo_id}."
        ) from error


def _commit_folder(
    api: HfApi, repo_dir: Path, repo_id: str, private: bool, revision: str | None, commit_message: str | None
) -> CommitInfo:
    """Create the repository (and branch) if needed and commit the folder's files, deleting stale ones."""
    api.create_repo(repo_id, repo_type="model", private=private, exist_ok=True)
    if revision is not None and revision != "main":
        api.create_branch(repo_id, branch=revision, repo_type="model", exist_ok=True)
    files = repository_files(repo_dir)
    try:
        remote_files = api.list_repo_files(repo_id, revision=revision, repo_type="model")
    except (RepositoryNotFoundError, RevisionNotFoundError):
        remote_files = []
    stale = sorted(set(remote_files) - set(files) - KEPT_REMOTE_FILES)
    operations = [CommitOperationAdd(path_in_repo=name, path_or_fileobj=str(repo_dir / name)) for name in files]
    operations += [CommitOperationDelete(path_in_repo=name) for name in stale]
    if commit_message is None:
        commit_message = f"Publish {_card_title(repo_dir)} with vis-mae-hf {__version__}"
    return api.create_commit(
        repo_id, operations=operations, commit_message=commit_message, revision=revision, repo_type="model"
    )


def _card_title(repo_dir: Path) -> str:
    for line in (repo_dir / "README.md").read_text(encoding="utf-8").splitlines():
        if line.startswith("# "):
            return line[2:].strip()
    return repo_dir.name


__all__ = ["HubPushError", "push_repository", "repository_files"]
