"""Pretrain (or take finished runs) and publish the six VIS-MAE variants as Hugging Face Hub repositories:
`vis-mae hub release`, as a script.

    # the demo corpus, a short schedule, repositories written under publish/repos (nothing pushed)
    python examples/publish_all.py --output-dir publish

    # your corpus (`vis-mae data corpus`), the published recipe, then push (token: HF_TOKEN or `hf auth login`)
    python examples/publish_all.py --corpus /data/corpus --output-dir publish --namespace my-org --push

    # finished runs in runs/<variant>/ (what `vis-mae pretrain` writes), exported and pushed without training
    python examples/publish_all.py --runs-dir runs --output-dir publish --namespace my-org --push

VIS-MAE-Generic is pretrained on all of the corpus, each other variant on its own modality. Variants whose modality
the corpus lacks are skipped and named (the demo corpus has all five; its PET is synthetic); `--variants` asks for
specific ones, and then a missing modality is an error. Every repository is validated before anything is pushed.
All options: `vis-mae hub release --help`.
"""

import sys

from vis_mae_hf.app.cli import main

COMMAND = ["hub", "release"]

if __name__ == "__main__":
    sys.exit(main([*COMMAND, *sys.argv[1:]]))
