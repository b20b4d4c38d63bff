"""What a model is for and that it is not a medical device, as the demo page and a Space README show it.

One source of the words: a model's own card (the README.md `vis-mae hub export` renders) when it has one, its
"## Intended use" and "## Out-of-scope use" sections; otherwise the package's model-card template `MODEL_CARD.md`,
whose out-of-scope passage holds the not-a-medical-device sentence every card carries. Nothing here restates it.
"""

from __future__ import annotations

import re
from pathlib import Path

from huggingface_hub import hf_hub_download
from huggingface_hub.errors import EntryNotFoundError

from .card import default_template_path

CARD_NAME = "README.md"
NOTICE_SECTIONS = ("## Intended use", "## Out-of-scope use")
MEDICAL_DEVICE_MARKER = "not a medical device"


def card_sections(card_text: str, headings=NOTICE_SECTIONS) -> str:
    """The named level-2 sections of a Markdown card, each up to the next level-2 heading, in card order."""
    found = []
    for heading in headings:
        match = re.search(rf"^{re.escape(heading)}\s*$(.*?)(?=^## |\Z)", card_text, flags=re.MULTILINE | re.DOTALL)
        if match:
            found.append(f"{heading}\n{match.group(1).strip()}")
    return "\n\n".join(found)


def package_notice() -> str:
    """The not-a-medical-device passage of the package's model-card template: the bullet that states it."""
    template = default_template_path().read_text(encoding="utf-8")
    for bullet in re.split(r"\n(?=- )", template):
        if MEDICAL_DEVICE_MARKER in bullet.lower():
            return " ".join(bullet.removeprefix("- ").split())
    raise ValueError(f"{default_template_path()} no longer states that the model is {MEDICAL_DEVICE_MARKER}.")


def _card_file(model: str) -> Path | None:
    """The README.md of a local model folder or of a Hub repo (from the cache when offline); None where there is none
    (a folder without a card, a repo without one, a name that is no repo id, no network)."""
    folder = Path(model)
    if folder.is_dir():
        card = folder / CARD_NAME
        return card if card.is_file() else None
    try:
        return Path(hf_hub_download(model, CARD_NAME))
    except (OSError, ValueError, EntryNotFoundError):  # the notice falls back to the package's own
        return None


def model_notice(model: str, card_text: str | None = None) -> str:
    """The intended-use and out-of-scope sections of `model`'s card (a folder or a Hub repo; or `card_text`)
    when they state that it is not a medical device; else the package's notice."""
    if card_text is None:
        card = _card_file(model)
        card_text = card.read_text(encoding="utf-8", errors="replace") if card else ""
    sections = card_sections(card_text)
    if MEDICAL_DEVICE_MARKER in sections.lower():
        return sections
    return package_notice()


__all__ = ["card_sections", "model_notice", "package_notice"]
