"""The one vocabulary of task and modality names, and the tables that must agree with it."""

import pytest

from vis_mae_hf.hub.variants import VARIANTS
from vis_mae_hf.recipes import RECIPES, get_recipe
from vis_mae_hf.vocabulary import (
    CHECKPOINT_TASKS,
    CORPUS_SELECTIONS,
    DICOM_MODALITY_GROUPS,
    IMAGING_MODALITIES,
    corpus_selection,
    imaging_modality,
    selected_modalities,
)


@pytest.mark.parametrize("spelling, group", [("mr", "MR"), ("MRI", "MR"), (" x-ray ", "XRAY"), ("PT", "PET"),
                                             ("ultrasound", "US"), ("CT", "CT")])
def test_people_s_spellings_of_a_modality_name_one_group(spelling, group):
    assert imaging_modality(spelling) == group


def test_an_unknown_modality_is_refused_naming_the_choices():
    with pytest.raises(ValueError, match=r"Unknown modality 'brain': expected one of CT, MR, PET, XRAY, US"):
        imaging_modality("brain")
    with pytest.raises(ValueError, match=r"expected one of generic, ct, mr, pet, xray, us"):
        corpus_selection("MRI")


def test_a_corpus_selection_keeps_one_group_or_all():
    assert selected_modalities("Generic") is None
    assert [selected_modalities(name) for name in CORPUS_SELECTIONS[1:]] == [(group,) for group in IMAGING_MODALITIES]


def test_the_tables_speak_the_vocabulary():
    assert list(VARIANTS) == list(CORPUS_SELECTIONS)  # each Hub variant is pretrained on one selection
    assert set(DICOM_MODALITY_GROUPS.values()) == set(IMAGING_MODALITIES)
    assert {task for task, _ in RECIPES} == set(CHECKPOINT_TASKS)
    assert all(get_recipe(task, demo) is RECIPES[(task, demo)] for task, demo in RECIPES)
