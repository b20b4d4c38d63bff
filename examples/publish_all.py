"""Pretrain (or take finished runs) and publish the six VIS-MAE variants as Hugging Face Hub repositories.

    # the demo corpus, a short schedule, repositories written under publish/repos (nothing pushed)
    python examples/publish_all.py --output-dir publish

    # your corpus (`vis-mae data corpus`), the published recipe, then push (token: HF_TOKEN or `hf auth login`)
    python examples/publish_all.py --corpus /data/corpus --output-dir publish --namespace my-org --push

    # finished runs in runs/<variant>/ (what run_pretraining writes), exported and pushed without training
    python examples/publish_all.py --runs-dir runs --output-dir publish --namespace my-org --push

VIS-MAE-Generic is pretrained on all of the corpus, each other variant on its own modality. Variants whose modality
the corpus lacks are skipped and named (the demo corpus has all five; its PET is synthetic); `--variants` asks for specific ones, and then a
missing modality is an error. Every repository is validated before anything is pushed.
"""

from __future__ import annotations

import argparse
import json
import sys

from vis_mae_hf.app.release import (
    ReleaseError,
    corpus_modality_counts,
    plan_release,
    plan_release_from_runs,
    pretrain_variant_with,
    release_variants,
)
from vis_mae_hf.hub.variants import VARIANTS


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--output-dir", required=True, help="runs/ and repos/ are written here")
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--corpus", help="pretraining corpus (default: the built-in demo corpus)")
    source.add_argument("--runs-dir", help="finished runs, one folder per variant (runs/mr/, ...): no training")
    parser.add_argument("--variants", nargs="+", choices=list(VARIANTS), help="default: every variant the data allow")
    parser.add_argument("--namespace", help="Hub user or organisation: repositories are NAMESPACE/vis-mae-<variant>")
    parser.add_argument("--push", action="store_true", help="push every repository once all of them validate")
    parser.add_argument("--private", action="store_true")
    parser.add_argument("--revision", help="branch to push to (default main)")
    parser.add_argument("--skip-remote-code-check", action="store_true",
                        help="do not load each repository with trust_remote_code=True before pushing")
    parser.add_argument("--license", default="apache-2.0", help="Hub licence id of the weights")
    parser.add_argument("--evaluation-dir", help="evaluation summaries named <variant>.json, shown in the cards")
    training = parser.add_argument_group("pretraining (ignored with --runs-dir)")
    training.add_argument("--max-steps", type=int, help="optimiser steps per variant (default: the recipe's epochs)")
    training.add_argument("--num-train-epochs", type=float)
    training.add_argument("--per-device-train-batch-size", type=int)
    training.add_argument("--image-size", type=int, default=224)
    training.add_argument("--config-overrides", help='JSON of VisMaeConfig fields, e.g. \'{"embed_dim": 48}\'')
    training.add_argument("--seed", type=int, default=0)
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    try:
        if args.runs_dir:
            variants, skipped = plan_release_from_runs(args.runs_dir, args.variants)
            pretrain = None
        else:
            counts = corpus_modality_counts(args.corpus)
            print(f"corpus: {args.corpus or 'built-in demo corpus'}, images per modality {counts}")
            variants, skipped = plan_release(counts, args.variants)
            settings = {
                "dataset": args.corpus,
                "max_steps": args.max_steps,
                "num_train_epochs": args.num_train_epochs,
                "per_device_train_batch_size": args.per_device_train_batch_size,
                "image_size": args.image_size,
                "config_overrides": args.config_overrides,
                "seed": args.seed,
            }
            pretrain = pretrain_variant_with({key: value for key, value in settings.items() if value is not None})
        for name, reason in skipped.items():
            print(f"[{VARIANTS[name].title}] skipped: {reason}")
        released = release_variants(
            variants,
            args.output_dir,
            pretrain=pretrain,
            runs_dir=args.runs_dir,
            namespace=args.namespace,
            evaluation_dir=args.evaluation_dir,
            push=args.push,
            private=args.private,
            revision=args.revision,
            check_remote_code=False if args.skip_remote_code_check else None,
            export_kwargs={"license": args.license},
        )
    except (ReleaseError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    summary = {item.variant.name: {"repo_dir": str(item.repo_dir), "repo_id": item.repo_id, "commit": item.commit_url}
               for item in released}
    print(json.dumps({"released": summary, "skipped": skipped}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
