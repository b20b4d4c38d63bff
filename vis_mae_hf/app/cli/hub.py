"""`vis-mae hub export | validate | push`: publish VIS-MAE variants on the Hugging Face Hub."""

from __future__ import annotations

import argparse
import sys

from ...hub.variants import VARIANTS


def _window(value: str):
    """A preset name ("abdomen") or "width,level" ("400,40")."""
    if "," in value:
        try:
            width, level = (float(part) for part in value.split(","))
        except ValueError:
            raise argparse.ArgumentTypeError(f"--hounsfield-window {value!r}: expected a preset name or WIDTH,LEVEL")
        return (width, level)
    return value


def register_cli(subparsers) -> None:
    hub = subparsers.add_parser("hub", help="Export, validate and push VIS-MAE Hub repositories.")
    commands = hub.add_subparsers(dest="hub_command", metavar="HUB_COMMAND", required=True)

    export = commands.add_parser("export", help="Write the Hub repository of one variant into a folder.")
    export.add_argument("--model", required=True, help="pretraining output directory, or a published .pth checkpoint")
    export.add_argument("--variant", required=True, choices=list(VARIANTS))
    export.add_argument("--output", required=True, help="repository folder to create")
    export.add_argument("--repo-id", help="Hub id the model card loads from, e.g. org/vis-mae-mr")
    export.add_argument("--training-summary", help="training summary JSON (default: MODEL/training_summary.json)")
    export.add_argument("--evaluation", help="evaluation summary JSON of fine-tuning these weights")
    export.add_argument("--license", default="apache-2.0", help="Hub licence id of the weights (default apache-2.0)")
    export.add_argument("--license-name", help='name of the licence, with --license other')
    export.add_argument("--license-link", help='link to the licence, with --license other')
    export.add_argument("--base-model", help="Hub id of the checkpoint pretraining started from")
    export.add_argument("--dataset", action="append", default=[], dest="datasets", help="Hub dataset id (repeatable)")
    export.add_argument("--hounsfield-window", type=_window, help="CT window of the processor: preset or WIDTH,LEVEL")
    export.add_argument("--card-template", help="model-card template (default: the package's MODEL_CARD.md)")
    export.add_argument("--overwrite", action="store_true", help="replace OUTPUT if it is a previous export")
    export.set_defaults(handler=run_export)

    validate = commands.add_parser("validate", help="Check a repository folder; print every problem.")
    validate.add_argument("repo_dir")
    validate.add_argument("--repo-id", help="the Hub id it will be pushed to")
    validate.add_argument(
        "--remote-code", action="store_true", help="also load it with trust_remote_code=True without vis_mae_hf"
    )
    validate.set_defaults(handler=run_validate)

    push = commands.add_parser("push", help="Validate a repository folder and upload it in one commit.")
    push.add_argument("repo_dir")
    push.add_argument("--repo-id", required=True, help="namespace/name")
    push.add_argument("--private", action="store_true", help="create the repository private")
    push.add_argument("--revision", help="branch to commit to (default main)")
    push.add_argument("--commit-message")
    push.add_argument(
        "--skip-remote-code-check", action="store_true", help="do not test trust_remote_code loading first"
    )
    push.set_defaults(handler=run_push)


def run_export(args) -> int:
    from ...hub.export import export_repository

    try:
        output = export_repository(
            args.model,
            args.variant,
            args.output,
            repo_id=args.repo_id,
            training_summary=args.training_summary,
            evaluation=args.evaluation,
            license=args.license,
            license_name=args.license_name,
            license_link=args.license_link,
            base_model=args.base_model,
            datasets=args.datasets,
            hounsfield_window=args.hounsfield_window,
            card_template=args.card_template,
            overwrite=args.overwrite,
        )
    except (ValueError, FileNotFoundError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(f"wrote {output}")
    return 0


def run_validate(args) -> int:
    from ...hub.validation import validate_repository

    failures = validate_repository(args.repo_dir, args.repo_id, check_remote_code=args.remote_code)
    if failures:
        print(f"{args.repo_dir}: {len(failures)} problems", file=sys.stderr)
        for failure in failures:
            print(f"  - {failure}", file=sys.stderr)
        return 1
    print(f"{args.repo_dir}: valid")
    return 0


def run_push(args) -> int:
    from ...hub.push import push_repository
    from ...hub.validation import RepositoryValidationError

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
        print(f"error: refusing to push. {error}", file=sys.stderr)
        return 1
    print(f"pushed {args.repo_dir} to {args.repo_id}: {commit.commit_url}")
    return 0
