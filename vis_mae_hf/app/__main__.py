"""`python -m vis_mae_hf.app ...` is `vis-mae ...` (and `accelerate launch -m vis_mae_hf.app pretrain ...`)."""

import sys

from .cli import main

sys.exit(main())
