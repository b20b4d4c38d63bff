"""`vis-mae hub export | validate | push | release | space`: publish VIS-MAE variants on the Hugging Face Hub, and
write the Space that demos one."""

from __future__ import annotations

import argparse
import json

from ...hub.export import export_repository
from ...hub.push import push_repository
from ...hub.space import write_space
from ...hub.validation import RepositoryValidationError, validate_repository
from ...hub.variants import VARIANTS
from ..release import (
    corpus_modality_counts,
    plan_release,
    plan_release_from_runs,
    pretrain_variant_with,
    release_variants,
)
from . import CommandError, set_handler
from .arguments import fallback_window_argument, output_folder, positive_int


def build_parser(prog: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=prog, description="Export, validate, push and release VIS-MAE Hub repositories.")
    commands = parser.add_subparsers(dest="hub_command", metavar="HUB_COMMAND", required=True)
    _add_export(commands)
    _add_validate(commands)
    _add_push(commands)
    _add_release(commands)
    _add_space(commands)
    return parser


def _add_export(commands) -> None:
    export = commands.add_parser(
        "export",
        help="Write the Hub repository of one variant, or of a fine-tuned model, into a folder.",
        description="Write the Hub repository of a pretraining checkpoint (one of the six variants: --variant) or of "
        "a fine-tuned segmenter or classifier (a `vis-mae finetune` output folder, with its finetuning_summary.json "
        "and eval_results.json) into a folder: weights, config, processor, code for trust_remote_code and a model "
        "card.",
    )
    export.add_argument("--model", required=True,
                        help="pretraining or fine-tuning output directory, or a published .pth checkpoint")
    export.add_argument("--variant", choices=list(VARIANTS),
                        help="the variant (required for pretraining weights; for a fine-tuned model, optional: the "
                        "variant it was fine-tuned from)")
    export.add_argument("--output", required=True, help="repository folder: new, empty, or an earlier export")
    export.add_argument("--repo-id", help="Hub id the model card loads from, e.g. org/vis-mae-mr")
    export.add_argument("--training-summary", help="training summary JSON of pretraining weights (default: "
                        "MODEL/training_summary.json)")
    export.add_argument("--finetuning-summary", help="fine-tuning summary JSON of a fine-tuned model (default: "
                        "MODEL/finetuning_summary.json)")
    export.add_argument("--evaluation", help="evaluation summary JSON, e.g. the report `vis-mae evaluate --output` "
                        "writes (for pretraining weights: results of fine-tuning them)")
    export.add_argument("--license", default="apache-2.0", help="Hub licence id of the weights (default apache-2.0)")
    export.add_argument("--license-name", help="name of the licence, with --license other")
    export.add_argument("--license-link", help="link to the licence, with --license other")
    export.add_argument("--base-model", help="Hub id of the checkpoint pretraining (or fine-tuning) started from")
    export.add_argument("--dataset", action="append", default=[], dest="datasets", help="Hub dataset id (repeatable)")
    export.add_argument(
        "--window",
        type=fallback_window_argument,
        help="CT window of the exported processor (its hounsfield_window): a preset name or WIDTH,LEVEL in HU "
        "(default: the run's, else the variant's)",
    )
    export.add_argument("--card-template", help="model-card template (default: the package's MODEL_CARD.md)")
    export.add_argument(
        "--overwrite", action="store_true",
        help="replace an earlier export in OUTPUT (only the files it wrote: .git/ and your files stay)",
    )
    export.add_argument("--space", metavar="SPACE_DIR",
                        help="also write the Space that demos the repository (needs --repo-id; see `hub space`)")
    set_handler(export, run_export)


def _add_space(commands) -> None:
    space = commands.add_parser(
        "space",
        help="Write a Hugging Face Space folder that serves the demo page of a Hub model.",
        description="Write app.py (the `vis-mae demo` page against MODEL_ID), requirements.txt pinned to the "
        "installed torch (CPU index), vis-mae-hf and Gradio, and README.md with the Space metadata and the model's "
        "not-a-medical-device notice. Push the folder to a Space repository (sdk gradio) to serve it.",
    )
    space.add_argument("--model-id", required=True, help="Hub model id the Space loads, ORG/NAME")
    space.add_argument("--output", required=True, help="Space folder: new, empty, or an earlier Space")
    space.add_argument("--license", default="apache-2.0", help="Hub licence id of the Space (default apache-2.0)")
    space.add_argument("--overwrite", action="store_true", help="replace an earlier Space in OUTPUT (its files only)")
    set_handler(space, run_space)


def _add_validate(commands) -> None:
    validate = commands.add_parser("validate", help="Check a repository folder; list every problem.")
    validate.add_argument("repo_dir")
    validate.add_argument("--repo-id", help="the Hub id it will be pushed to")
    validate.add_argument(
        "--remote-code", action="store_true", help="also load it with trust_remote_code=True without vis_mae_hf"
    )
    set_handler(validate, run_validate)


def _add_push(commands) -> None:
    push = commands.add_parser("push", help="Validate a repository folder and upload it in one commit.")
    push.add_argument("repo_dir")
    push.add_argument("--repo-id", required=True, help="namespace/name")
    push.add_argument("--private", action="store_true", help="create the repository private")
    push.add_argument("--revision", help="branch to commit to (default main)")
    push.add_argument("--commit-message")
    push.add_argument(
        "--skip-remote-code-check", action="store_true", help="do not test trust_remote_code loading first"
    )
    set_handler(push, run_push)


def _add_release(commands) -> None:
    release = commands.add_parser(
        "release",
        help="Pretrain (or take finished runs) and publish the six variants together.",
        description="Pretrain each variant (VIS-MAE-Generic on the whole corpus, each other variant on its own "
        "modality) or take finished runs, export every repository, validate them all, then push them all. "
        "Variants whose modality the corpus lacks are skipped and named; asked for with --variants, that is an error.",
    )
    release.add_argument("--output-dir", required=True, help="runs/ and repos/ are written here")
    source = release.add_mutually_exclusive_group()
    source.add_argument("--corpus", help="pretraining corpus (default: the built-in demo corpus)")
    source.add_argument("--runs-dir", help="finished runs, one folder per variant (runs/mr/, ...): no training")
    release.add_argument("--variants", nargs="+", choices=list(VARIANTS), help="default: every variant the data allow")
    release.add_argument("--namespace", help="Hub user or organisation: repositories are NAMESPACE/vis-mae-<variant>")
    release.add_argument("--push", action="store_true", help="push every repository once all of them validate")
    release.add_argument("--private", action="store_true", help="create the repositories private")
    release.add_argument("--revision", help="branch to push to (default main)")
    release.add_argument("--skip-remote-code-check", action="store_true",
                         help="do not load each repository with trust_remote_code=True before pushing")
    release.add_argument("--license", default="apache-2.0", help="Hub licence id of the weights (default apache-2.0)")
    release.add_argument("--evaluation-dir", help="evaluation summaries named <variant>.json, shown in the cards")
    training = release.add_argument_group("pretraining (not with --runs-dir; unset: as `vis-mae pretrain`)")
    training.add_argument("--max-steps", type=positive_int, help="optimiser steps per variant (default: the recipe's)")
    training.add_argument("--num-train-epochs", type=float)
    training.add_argument("--per-device-train-batch-size", type=positive_int)
    training.add_argument("--image-size", type=positive_int)
    training.add_argument("--config-overrides", help='JSON of VisMaeConfig fields, e.g. \'{"embed_dim": 48}\'')
    training.add_argument("--seed", type=int)
    set_handler(release, run_release)


def run_export(args) -> int:
    output_folder(args.output)
    if args.space:
        if not args.repo_id:
            raise CommandError("--space needs --repo-id: the Space loads the model from its Hub id.")
        output_folder(args.space, "--space")
    output = export_repository(
        args.model,
        args.variant,
        args.output,
        repo_id=args.repo_id,
        training_summary=args.training_summary,
        finetuning_summary=args.finetuning_summary,
        evaluation=args.evaluation,
        license=args.license,
        license_name=args.license_name,
        license_link=args.license_link,
        base_model=args.base_model,
        datasets=args.datasets,
        hounsfield_window=args.window,
        card_template=args.card_template,
        overwrite=args.overwrite,
    )
    print(f"wrote {output}")
    if args.space:
        print(f"wrote {write_space(args.repo_id, args.space, license=args.license, overwrite=args.overwrite)}")
    return 0


def run_space(args) -> int:
    output_folder(args.output)
    print(f"wrote {write_space(args.model_id, args.output, license=args.license, overwrite=args.overwrite)}")
    return 0


def run_validate(args) -> int:
    failures = validate_repository(args.repo_dir, args.repo_id, check_remote_code=args.remote_code)
    if failures:
        raise CommandError(f"{args.repo_dir}: {len(failures)} problems: {'; '.join(failures)}")
    print(f"{args.repo_dir}: valid")
    return 0


def run_push(args) -> int:
    try:
        commit = push_repository(
            args.repo_dir,
            args.repo_id,
            private=args.private,
            revision=args.revision,
            commit_message=args.commit_message,
            check_remote_code=not args.skip_remote_code_check,
        )
    except RepositoryValidationError as error:
        raise CommandError(f"refusing to push: {error}") from error
    print(f"pushed {args.repo_dir} to {args.repo_id}: {commit.commit_url}")
    return 0


def run_release(args) -> int:
    output_folder(args.output_dir, "--output-dir")
    if args.runs_dir:
        variants, skipped = plan_release_from_runs(args.runs_dir, args.variants)
    else:
        counts = corpus_modality_counts(args.corpus)
        print(f"corpus: {args.corpus or 'built-in demo corpus'}, images per modality {counts}")
        variants, skipped = plan_release(counts, args.variants)
    for name, reason in skipped.items():
        print(f"[{VARIANTS[name].title}] skipped: {reason}")
    released = release_variants(
        variants,
        args.output_dir,
        pretrain=None if args.runs_dir else _pretrain_each_variant(args),
        runs_dir=args.runs_dir,
        namespace=args.namespace,
        evaluation_dir=args.evaluation_dir,
        push=args.push,
        private=args.private,
        revision=args.revision,
        check_remote_code=False if args.skip_remote_code_check else None,
        export_kwargs={"license": args.license},
    )
    summary = {item.variant.name: {"repo_dir": str(item.repo_dir), "repo_id": item.repo_id, "commit": item.commit_url}
               for item in released}
    print(json.dumps({"released": summary, "skipped": skipped}, indent=1))
    return 0


def _pretrain_each_variant(args):
    """The `pretrain(variant, run_dir)` callback of a release: `run_pretraining` with the options given here."""

    settings = {
        "dataset": args.corpus,
        "max_steps": args.max_steps,
        "num_train_epochs": args.num_train_epochs,
        "per_device_train_batch_size": args.per_device_train_batch_size,
        "image_size": args.image_size,
        "config_overrides": args.config_overrides,
        "seed": args.seed,
    }
    return pretrain_variant_with({key: value for key, value in settings.items() if value is not None})
