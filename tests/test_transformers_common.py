"""Transformers' own common tests, run on the four VIS-MAE classes, the config and both image processors.

The test classes come from the installed Transformers release (`tests/transformers_release.py` fetches its
source distribution once); this file only says how to build a tiny VIS-MAE and its inputs. A common test is
overridden or skipped here only where it cannot apply to this kind of model, and the reason stands next to it.
"""

import copy
import unittest
from unittest import mock

import torch
from torch import nn
from transformers.models.auto import modeling_auto
from transformers_release import import_release_tests, release_has_test_file

from vis_mae_hf import (
    VisMaeConfig,
    VisMaeForImageClassification,
    VisMaeForPreTraining,
    VisMaeForSemanticSegmentation,
    VisMaeImageProcessor,
    VisMaeImageProcessorPil,
    VisMaeModel,
)

modeling_common, configuration_common, image_processing_common = import_release_tests(
    "test_modeling_common", "test_configuration_common", "test_image_processing_common"
)
ModelTesterMixin = modeling_common.ModelTesterMixin
ConfigTester = configuration_common.ConfigTester
ImageProcessingTester = image_processing_common.ImageProcessingTester
ImageProcessingTestMixin = image_processing_common.ImageProcessingTestMixin
PostProcessSemanticSegmentationTestMixin = image_processing_common.PostProcessSemanticSegmentationTestMixin


class VisMaeModelTester:
    """A two-stage VIS-MAE small enough for CPU: 32 px in 8x8 tokens, windows of 4x4 tokens, so the first stage has
    four windows, and the second block of each stage shifts them (with the region mask; the published model keeps
    shifting in the single-window last stage too)."""

    def __init__(self, parent, batch_size: int = 2, num_labels: int = 3):
        self.parent = parent
        self.batch_size = batch_size
        self.num_labels = num_labels
        self.image_size = 32
        self.patch_size = 4
        self.num_channels = 3
        self.embed_dim = 16
        self.depths = [2, 2]
        self.num_heads = [2, 4]
        self.window_size = 4
        self.mask_unit_size = 8
        self.num_hidden_layers = len(self.depths)  # stages, what `config.num_hidden_layers` maps to
        self.is_training = True
        # What the common tests read: the token sequence of the first hidden state (patch embeddings), its width,
        # and how many tokens their masked-image inputs mask.
        self.seq_length = (self.image_size // self.patch_size) ** 2
        self.hidden_size = self.embed_dim
        self.num_attention_heads = self.num_heads[0]
        self.num_masks = self.seq_length // 4

    def get_config(self) -> VisMaeConfig:
        return VisMaeConfig(
            image_size=self.image_size,
            patch_size=self.patch_size,
            num_channels=self.num_channels,
            embed_dim=self.embed_dim,
            depths=self.depths,
            num_heads=self.num_heads,
            window_size=self.window_size,
            mask_unit_size=self.mask_unit_size,
            drop_path_rate=0.0,
            num_labels=self.num_labels,
        )

    @property
    def num_mask_units(self) -> int:
        return (self.image_size // self.mask_unit_size) ** 2

    def prepare_config_and_inputs(self):
        pixel_values = modeling_common.floats_tensor(
            [self.batch_size, self.num_channels, self.image_size, self.image_size]
        )
        return self.get_config(), pixel_values

    def prepare_config_and_inputs_for_common(self):
        config, pixel_values = self.prepare_config_and_inputs()
        return config, {"pixel_values": pixel_values}


# The common tests recognise a model's task (which labels to make, which classes are base models that train no loss)
# by the class names Transformers lists per task. A third-party model is registered with the Auto classes instead,
# so its names are added to those lists while these tests run (the package itself adds the segmentation one).
TASK_NAMES = (
    (modeling_auto.MODEL_MAPPING_NAMES, VisMaeModel),
    (modeling_auto.MODEL_FOR_PRETRAINING_MAPPING_NAMES, VisMaeForPreTraining),
    (modeling_auto.MODEL_FOR_IMAGE_CLASSIFICATION_MAPPING_NAMES, VisMaeForImageClassification),
    (modeling_auto.MODEL_FOR_SEMANTIC_SEGMENTATION_MAPPING_NAMES, VisMaeForSemanticSegmentation),
)
HEADS_WITH_DECODERS = (VisMaeForPreTraining, VisMaeForSemanticSegmentation)


class VisMaeModelTest(ModelTesterMixin, unittest.TestCase):
    all_model_classes = (VisMaeModel, VisMaeForPreTraining, VisMaeForImageClassification, VisMaeForSemanticSegmentation)
    # Images have no token embeddings to resize.
    test_resize_embeddings = False

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        for names, model_class in TASK_NAMES:
            patcher = mock.patch.dict(names, {VisMaeConfig.model_type: model_class.__name__})
            patcher.start()
            cls.addClassCleanup(patcher.stop)

    def setUp(self):
        self.model_tester = VisMaeModelTester(self)
        self.config_tester = ConfigTester(
            self,
            config_class=VisMaeConfig,
            has_text_modality=False,
            common_properties=[
                "hidden_size", "num_attention_heads", "num_hidden_layers", "image_size", "patch_size", "num_channels"
            ],
            embed_dim=24,
            num_heads=[1, 2, 3, 4],
        )

    def _prepare_for_class(self, inputs_dict, model_class, return_labels=False):
        inputs_dict = super()._prepare_for_class(inputs_dict, model_class, return_labels=return_labels)
        if model_class is VisMaeForPreTraining:
            # The mask is drawn at random unless `noise` (one value per mask unit) fixes it, as ViT-MAE's and Hiera's
            # testers do, so that two calls of one model compare equal.
            generator = torch.Generator().manual_seed(0)
            batch_size = inputs_dict["pixel_values"].shape[0]
            inputs_dict["noise"] = torch.rand(batch_size, self.model_tester.num_mask_units, generator=generator)
        if model_class is VisMaeModel:
            # The common SDPA test passes `bool_masked_pos` to every class whose forward names it; the encoder takes
            # it only when built with a mask token (`use_mask_token=True`, as inside VisMaeForPreTraining).
            inputs_dict.pop("bool_masked_pos", None)
        return inputs_dict

    def test_config(self):
        self.config_tester.run_common_tests()

    def test_attention_outputs(self):
        # Overridden, as Transformers' own Swin test overrides it: the common test expects one map per hidden layer
        # over the whole token sequence. Window attention gives one map per block, per image and window,
        # (batch, windows, heads, window_size**2, window_size**2), and the pretraining and segmentation heads add
        # the maps of their decoder blocks. What it checks is kept: the count, the shape, the config path giving
        # what the keyword gives, and the attentions coming last in the output.
        config, inputs_dict = self.model_tester.prepare_config_and_inputs_for_common()
        tester = self.model_tester
        windows = (tester.image_size // tester.patch_size // tester.window_size) ** 2
        for model_class in self.all_model_classes:
            with self.subTest(model_class.__name__):
                expected_count = sum(config.depths)
                if model_class in HEADS_WITH_DECODERS:
                    expected_count += sum(config.resolved_decoder_depths)
                model = model_class._from_config(copy.deepcopy(config), attn_implementation="eager").eval()
                inputs = self._prepare_for_class(inputs_dict, model_class)
                with torch.no_grad():
                    by_keyword = model(**inputs, output_attentions=True, output_hidden_states=False)
                self.assertEqual(len(by_keyword.attentions), expected_count)
                self.assertEqual(
                    tuple(by_keyword.attentions[0].shape),
                    (tester.batch_size, windows, tester.num_heads[0], tester.window_size**2, tester.window_size**2),
                )

                model.config.output_attentions = True
                with torch.no_grad():
                    by_config = model(**inputs)
                self.assertEqual(len(by_config.attentions), expected_count)
                for from_config, from_keyword in zip(by_config.attentions, by_keyword.attentions):
                    torch.testing.assert_close(from_config, from_keyword)

                with torch.no_grad():
                    with_hidden_states = model(**inputs, output_hidden_states=True)
                added = 2 if "reshaped_hidden_states" in with_hidden_states else 1
                self.assertEqual(len(with_hidden_states), len(by_keyword) + added)
                self.assertEqual(list(with_hidden_states.keys())[-1], "attentions")

    def test_model_outputs_equivalence(self):
        # Overridden, as Transformers' Hiera test overrides it: the common test formats its failure message by
        # subtracting the two outputs, which raises for VisMaeForPreTraining's bool `mask` even when they are equal.
        # Kept: with and without labels, hidden states and attention maps, `return_dict=False` gives the tuple that
        # `return_dict=True` gives, value for value.
        config, inputs_dict = self.model_tester.prepare_config_and_inputs_for_common()

        def assert_same(from_tuple, from_dict):
            if isinstance(from_tuple, (list, tuple)):
                self.assertEqual(len(from_tuple), len(from_dict))
                for tuple_item, dict_item in zip(from_tuple, from_dict):
                    assert_same(tuple_item, dict_item)
            elif from_tuple is None:
                self.assertIsNone(from_dict)
            else:
                torch.testing.assert_close(from_tuple, from_dict, rtol=0, atol=1e-5)

        options = [{}, {"output_hidden_states": True}, {"output_attentions": True}]
        options.append({"output_hidden_states": True, "output_attentions": True})
        for model_class in self.all_model_classes:
            model = model_class(copy.deepcopy(config)).eval()
            for return_labels in (False, True):
                for extra in options:
                    inputs = self._prepare_for_class(inputs_dict, model_class, return_labels=return_labels)
                    with torch.no_grad():
                        from_tuple = model(**inputs, **extra, return_dict=False)
                        from_dict = model(**inputs, **extra, return_dict=True).to_tuple()
                    assert_same(from_tuple, from_dict)

    def test_model_get_set_embeddings(self):
        # Overridden, as for Transformers' Swin: an image model's input embedding is its patch convolution, not a
        # token `nn.Embedding` to swap, and it has no output embedding to tie.
        config, _ = self.model_tester.prepare_config_and_inputs_for_common()
        for model_class in self.all_model_classes:
            model = model_class(copy.deepcopy(config))
            self.assertIsInstance(model.get_input_embeddings(), nn.Conv2d)
            self.assertIs(model.get_input_embeddings(), model.base_model.embeddings.projection)
            self.assertIsNone(model.get_output_embeddings())



class VisMaeImageProcessingTester(ImageProcessingTester):
    def __init__(self, parent, **kwargs):
        kwargs.setdefault("size", {"height": 32, "width": 48})
        kwargs.setdefault("normalization", "pretraining")
        kwargs.setdefault("num_labels", 3)
        super().__init__(parent, **kwargs)

    def _get_image_processing_classes(self):
        # The release finds a model's processors by the name of the test file's folder (tests/models/<type>/); this
        # file is not in such a folder, so name them here, by the backend names they are registered under with
        # AutoImageProcessor (test_image_processor_save_load_with_autoimageprocessor checks that).
        return {"torchvision": VisMaeImageProcessor, "pil": VisMaeImageProcessorPil}


class VisMaeImageProcessingTest(
    ImageProcessingTestMixin, PostProcessSemanticSegmentationTestMixin, unittest.TestCase
):
    image_processor_tester_class = VisMaeImageProcessingTester

    def test_call_numpy_4_channels(self):
        # Overridden: the common test expects a 4-channel image to come out with 4 channels. VIS-MAE models take 1 or
        # 3 (`num_channels`), and the processors read a 4-channel image as RGBA and drop the alpha, as PIL's
        # convert("RGB") does. Kept: 4-channel input of any size, alone or batched, processes to the model's shape.
        tester = self.image_processor_tester
        images = tester.prepare_image_inputs(equal_resolution=False, numpify=True, num_channels=4)
        for image_processing_class in self.image_processing_classes.values():
            for num_channels in (1, 3):
                with self.subTest(image_processing_class.__name__, num_channels=num_channels):
                    processor = image_processing_class(**{**self.image_processor_dict, "num_channels": num_channels})
                    single = processor(images[0], input_data_format="channels_last", return_tensors="pt")
                    batch = processor(images, input_data_format="channels_last", return_tensors="pt")
                    size = (tester.size["height"], tester.size["width"])
                    self.assertEqual(tuple(single.pixel_values.shape), (1, num_channels, *size))
                    self.assertEqual(tuple(batch.pixel_values.shape), (tester.batch_size, num_channels, *size))


class VisMaePipelineTesterMixinTest(unittest.TestCase):
    def test_the_release_can_run_its_pipeline_tests(self):
        # `PipelineTesterMixin` runs, per task, the test class of tests/pipelines/test_pipelines_<task>.py on a tiny
        # checkpoint it downloads from the Hub (hf-internal-testing/tiny-random-<class>), listed in
        # tests/utils/tiny_model_summary.json. The source distribution ships none of those, and no VIS-MAE
        # checkpoint is on that list, so the mixin cannot apply here; the image-classification and
        # image-segmentation pipelines run on VIS-MAE models in tests/test_pipelines.py. Should a release ship them,
        # this test fails, so that the mixin gets wired in.
        needed = ["utils/tiny_model_summary.json", "pipelines/test_pipelines_image_segmentation.py"]
        missing = [path for path in needed if not release_has_test_file(path)]
        if missing:
            self.skipTest(f"the release's source distribution does not ship tests/{', tests/'.join(missing)}")
        self.fail("This release ships its pipeline tests: run PipelineTesterMixin on the VIS-MAE classes here.")
