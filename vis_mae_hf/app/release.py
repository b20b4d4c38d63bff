"""Release the six variants together: pretrain (or take finished runs), export, validate all, then push all.

VIS-MAE-Generic is pretrained on every image of the corpus, each other variant on its own modality's images only.
A variant whose modality the corpus lacks cannot be produced honestly: asked for by name, it is an error before any
training; left to the default ("every variant"), it is skipped and the reason reported. Nothing is pushed unless every
exported repository validates, so a release never stops half published because of a bad repository. One run alone
(pretraining's `--push-to-hub`) is published by `publishing.publish_run`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from ..data.loading import load_pretraining_images, modality_counts
from ..hub.export import TRAINING_SUMMARY_NAME, export_repository
from ..hub.push import push_repository
from ..hub.validation import validate_repository
from ..hub.variants import VARIANTS, HubVariant, get_variant
from ..vocabulary import GENERIC
from .pretraining.loop import PretrainingArguments, run_pretraining


class ReleaseError(ValueError):
    """The release cannot start or finish as asked; the message names the variants and why."""


@dataclass
class ReleasedVariant:
    variant: HubVariant
    run_dir: Path
    repo_dir: Path
    repo_id: str | None
    commit_url: str | None = None


def corpus_modality_counts(corpus: str | Path | None) -> dict[str, int]:
    """Images per modality of a pretraining corpus (None: the built-in demo corpus), read as pretraining reads it."""

    return modality_counts(load_pretraining_images(corpus, GENERIC))


def plan_release(
    modality_counts: Mapping[str, int], requested: Sequence[str] | None = None
) -> tuple[list[HubVariant], dict[str, str]]:
    """Which variants a corpus with these counts can produce.

    Args:
        modality_counts: images per corpus modality ({"CT": 6, "MR": 20, ...}).
        requested: variant names asked for explicitly; None means every variant the corpus supports.

    Returns:
        (variants to release in the published order, {variant name: why it is skipped}).

    Raises:
        ReleaseError: a requested variant has no images in the corpus.
    """
    total = sum(modality_counts.values())
    reasons = {}
    for variant in VARIANTS.values():
        if variant.corpus_modalities is None:
            if total == 0:
                reasons[variant.name] = "the corpus has no images"
        elif not any(modality_counts.get(modality, 0) for modality in variant.corpus_modalities):
            reasons[variant.name] = f"the corpus has no {'/'.join(variant.corpus_modalities)} images"
    if requested is not None:
        names = [get_variant(name).name for name in requested]
        impossible = {name: reasons[name] for name in names if name in reasons}
        if impossible:
            raise ReleaseError(
                "Cannot pretrain " + "; ".join(f"{VARIANTS[n].title}: {why}" for n, why in impossible.items())
                + f" (corpus counts: {dict(modality_counts)})."
            )
        return [VARIANTS[name] for name in VARIANTS if name in names], {}
    return [variant for name, variant in VARIANTS.items() if name not in reasons], reasons


def plan_release_from_runs(
    runs_dir: str | Path, requested: Sequence[str] | None = None
) -> tuple[list[HubVariant], dict[str, str]]:
    """Like `plan_release`, for finished runs in `runs_dir/<variant>/`: a variant without one is skipped (or, when
    requested by name, an error)."""
    runs_dir = Path(runs_dir)
    reasons = {
        name: f"{runs_dir / name} holds no finished run ({TRAINING_SUMMARY_NAME})"
        for name in VARIANTS
        if not (runs_dir / name / TRAINING_SUMMARY_NAME).is_file()
    }
    if requested is not None:
        names = [get_variant(name).name for name in requested]
        impossible = [reasons[name] for name in names if name in reasons]
        if impossible:
            raise ReleaseError("Cannot export: " + "; ".join(impossible) + ".")
        return [VARIANTS[name] for name in VARIANTS if name in names], {}
    if len(reasons) == len(VARIANTS):
        raise ReleaseError(f"{runs_dir} holds no finished run: expected folders named {', '.join(VARIANTS)}.")
    return [variant for name, variant in VARIANTS.items() if name not in reasons], reasons


def release_variants(
    variants: Sequence[HubVariant],
    output_dir: str | Path,
    *,
    pretrain: Callable[[HubVariant, Path], Path] | None = None,
    runs_dir: str | Path | None = None,
    namespace: str | None = None,
    evaluation_dir: str | Path | None = None,
    push: bool = False,
    private: bool = False,
    revision: str | None = None,
    check_remote_code: bool | None = None,
    export_kwargs: dict | None = None,
    log: Callable[[str], None] = print,
) -> list[ReleasedVariant]:
    """Pretrain (with `pretrain(variant, run_dir)`) or take `runs_dir/<variant>`, export each variant to
    `output_dir/repos/vis-mae-<variant>`, validate every repository, and push them all if `push`.

    Args:
        namespace: Hub user or organisation; repositories are `<namespace>/vis-mae-<variant>`. Needed to push.
        evaluation_dir: optional folder of evaluation summaries named `<variant>.json`.
        check_remote_code: validate `trust_remote_code=True` loading too (default: when pushing).
        export_kwargs: passed to `export_repository` (licence, base model, ...).
    """
    output_dir = Path(output_dir)
    if push and not namespace:
        raise ReleaseError("Pushing needs a Hub namespace (--namespace ORG) for the repository ids.")
    if (pretrain is None) == (runs_dir is None):
        raise ReleaseError("Give exactly one of pretrain (train each variant) or runs_dir (finished runs).")
    if runs_dir is not None:
        missing = [v.name for v in variants if not (Path(runs_dir) / v.name / TRAINING_SUMMARY_NAME).is_file()]
        if missing:
            raise ReleaseError(
                f"{runs_dir} has no finished run for {', '.join(missing)}: each variant needs "
                f"{runs_dir}/<variant>/ with the model and {TRAINING_SUMMARY_NAME}."
            )
    released = []
    for variant in variants:
        if runs_dir is not None:
            run_dir = Path(runs_dir) / variant.name
        else:
            log(f"[{variant.title}] pretraining")
            run_dir = Path(pretrain(variant, output_dir / "runs" / variant.name))
        repo_id = f"{namespace}/{variant.default_repo_name}" if namespace else None
        evaluation = None
        if evaluation_dir is not None and (Path(evaluation_dir) / f"{variant.name}.json").is_file():
            evaluation = Path(evaluation_dir) / f"{variant.name}.json"
        repo_dir = export_repository(
            run_dir,
            variant.name,
            output_dir / "repos" / variant.default_repo_name,
            repo_id=repo_id,
            evaluation=evaluation,
            overwrite=True,
            **(export_kwargs or {}),
        )
        log(f"[{variant.title}] exported {repo_dir}")
        released.append(ReleasedVariant(variant, run_dir, repo_dir, repo_id))
    if check_remote_code is None:
        check_remote_code = push
    failures = {
        item.variant.title: problems
        for item in released
        if (problems := validate_repository(item.repo_dir, item.repo_id, check_remote_code=check_remote_code))
    }
    if failures:
        listed = "\n".join(f"  {title}: {'; '.join(problems)}" for title, problems in failures.items())
        raise ReleaseError(f"Nothing was pushed: {len(failures)} repositories fail validation:\n{listed}")
    if push:
        for item in released:
            # validated just above: no need to load everything a second time
            commit = push_repository(item.repo_dir, item.repo_id, private=private, revision=revision,
                                     check_remote_code=False)
            item.commit_url = commit.commit_url
            log(f"[{item.variant.title}] pushed to {item.repo_id}: {commit.commit_url}")
    return released


def pretrain_variant_with(arguments: Mapping) -> Callable[[HubVariant, Path], Path]:
    """A `pretrain` callback running `run_pretraining` with these `PretrainingArguments` fields for every variant
    (`dataset`, `max_steps`, `config_overrides`, ...); `output_dir` and `modality` are set per variant."""

    def pretrain(variant: HubVariant, run_dir: Path) -> Path:
        per_variant = {"output_dir": str(run_dir), "modality": variant.name}
        return run_pretraining(PretrainingArguments(**{**arguments, **per_variant}))

    return pretrain
