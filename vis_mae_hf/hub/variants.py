"""The six published VIS-MAE variants: what each is pretrained on and what input its image processor expects.

VIS-MAE-Generic is pretrained on every modality of the corpus, each other variant on one modality only (the paper:
`PAPER_TOTAL_IMAGES` unlabeled images in all). The variant names are the `modality` values of pretraining
(`PretrainingArguments.modality`), and the upper-case names are the keys of a corpus's modality counts.

Processor defaults (the input each variant's Hub repository declares in `preprocessor_config.json`):
- Every variant is a *pretraining* checkpoint, so every repository keeps the pretraining input: 224 x 224, grey
  repeated to 3 channels, [0, 1] pixels normalised with the scalar mean 0.223 / std 0.202. Those are the settings the
  pretraining run saved; the exporter keeps them and only adds a CT window (below).
- CT: raw CT slices arrive in Hounsfield units, far outside [0, 1]. The CT repository's processor carries a default
  `hounsfield_window` (the "abdomen" soft-tissue window, W 400 / L 40) so HU input is mapped to [0, 1] the same way for
  every user. Display images (8/16-bit, or floats already in [0, 1]) are never re-windowed. Override it with
  `vis-mae hub export --window` when the corpus was windowed differently.
- Generic, MR, PET, X-ray, US: no window. A window applies to *every* raw-valued image outside [0, 1], so on the
  Generic variant it would silently CT-window an MR slice; MR/PET intensities have no absolute scale to window. Such
  input must be scaled to [0, 1] first (e.g. `vis_mae_hf.load_medical_image(path).pixels`), which the model card says.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..vocabulary import selected_modalities


@dataclass(frozen=True)
class HubVariant:
    """One published VIS-MAE variant.

    Attributes:
        name: the variant id, also the pretraining `modality` value ("mr").
        title: the published model name ("VIS-MAE-MR").
        modality_description: what the images are, in words, for the model card.
        modality_tags: Hub tags naming the modality.
        paper_images: how many images the paper pretrained this variant on, in words (for comparison in the card).
        paper_image_count: the same number alone, for tables.
        default_hounsfield_window: the CT window the repository's processor carries, or None.
    """

    name: str
    title: str
    modality_description: str
    modality_tags: tuple[str, ...]
    paper_images: str
    paper_image_count: str
    default_hounsfield_window: str | None = None

    @property
    def corpus_modalities(self) -> tuple[str, ...] | None:
        """The corpus modality groups its pretraining images may have; None means any (Generic)."""
        return selected_modalities(self.name)

    @property
    def default_repo_name(self) -> str:
        return f"vis-mae-{self.name}"


PAPER_TOTAL_IMAGES = 2_486_425
"""Images the paper pretrained on, all modalities together (what VIS-MAE-Generic saw)."""

VARIANTS: dict[str, HubVariant] = {
    variant.name: variant
    for variant in (
        HubVariant(
            name="generic",
            title="VIS-MAE-Generic",
            modality_description="CT, MR, PET, X-ray and ultrasound together",
            modality_tags=("ct", "mri", "pet", "x-ray", "ultrasound"),
            paper_images=f"{PAPER_TOTAL_IMAGES:,} images of all five modalities",
            paper_image_count=f"{PAPER_TOTAL_IMAGES:,}",
        ),
        HubVariant(
            name="ct",
            title="VIS-MAE-CT",
            modality_description="computed tomography (CT)",
            modality_tags=("ct",),
            paper_images="about 0.57 M CT images",
            paper_image_count="0.57 M",
            default_hounsfield_window="abdomen",
        ),
        HubVariant(
            name="mr",
            title="VIS-MAE-MR",
            modality_description="magnetic resonance imaging (MR)",
            modality_tags=("mri",),
            paper_images="about 1.20 M MR images",
            paper_image_count="1.20 M",
        ),
        HubVariant(
            name="pet",
            title="VIS-MAE-PET",
            modality_description="positron emission tomography (PET, PET/CT)",
            modality_tags=("pet",),
            paper_images="about 66 k PET/CT images",
            paper_image_count="66 k",
        ),
        HubVariant(
            name="xray",
            title="VIS-MAE-XRAY",
            modality_description="radiography (X-ray)",
            modality_tags=("x-ray",),
            paper_images="about 0.44 M X-ray images",
            paper_image_count="0.44 M",
        ),
        HubVariant(
            name="us",
            title="VIS-MAE-US",
            modality_description="ultrasound (US)",
            modality_tags=("ultrasound",),
            paper_images="about 0.21 M ultrasound images",
            paper_image_count="0.21 M",
        ),
    )
}


def get_variant(name: str) -> HubVariant:
    """The variant called `name` (case-insensitive); a clear error naming the valid ones otherwise."""
    key = str(name).strip().lower()
    if key not in VARIANTS:
        raise ValueError(f"Unknown VIS-MAE variant {name!r}: expected one of {', '.join(VARIANTS)}.")
    return VARIANTS[key]
