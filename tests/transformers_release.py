"""Transformers' own common tests (`ModelTesterMixin`, `ConfigTester`, `ImageProcessingTestMixin`, ...), taken from
the source distribution of the installed Transformers release at test time, so that the contract we are checked
against is exactly the one of the release we run on, and none of its text lives in this repository.

The first use runs `pip download transformers==<installed version> --no-binary :all: --no-deps` and extracts the
top-level `tests/*.py` files into `$VIS_MAE_HF_CACHE/transformers-tests/<version>/` (default
`~/.cache/vis_mae_hf/...`); later runs, offline ones included, import them from there. When the download is
impossible, `import_release_tests` skips the calling test module and says why.

The source distribution ships only the top-level test files. The few modules they import from the rest of
Transformers' test tree are provided here as stand-ins, each saying what it stands for (see `_STAND_INS`).
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib
import os
import subprocess
import sys
import tarfile
import tempfile
import types
import warnings
from pathlib import Path

import numpy as np
import pytest
import transformers
from PIL import Image

PACKAGE = "transformers_release_tests"
"""The import name of the extracted `tests` folder (not `tests`: that name is this repository's test folder)."""

SHIPPED_LIST = "shipped-test-files.txt"
CACHE_ENV_VARIABLE = "VIS_MAE_HF_CACHE"  # the variable the demo data cache uses too
DOWNLOAD_TIMEOUT_S = 300


class ReleaseTestsUnavailable(RuntimeError):
    """The release's test files could not be fetched (no network, no PyPI, no source distribution)."""


def release_tests_folder(version: str = transformers.__version__) -> Path:
    """`$VIS_MAE_HF_CACHE/transformers-tests/<version>`, default `~/.cache/vis_mae_hf/transformers-tests/<version>`."""
    base = os.environ.get(CACHE_ENV_VARIABLE) or Path.home() / ".cache" / "vis_mae_hf"
    return Path(base) / "transformers-tests" / version


def fetch_release_tests(version: str = transformers.__version__) -> Path:
    """The folder holding the package `PACKAGE` (the release's top-level test files), downloading it once."""
    folder = release_tests_folder(version)
    if (folder / PACKAGE / "__init__.py").is_file():
        return folder
    folder.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=folder.parent) as scratch:
        command = [
            sys.executable, "-m", "pip", "download", f"transformers=={version}",
            "--no-binary", ":all:", "--no-deps", "--quiet", "--dest", scratch,
        ]  # fmt: skip
        try:
            result = subprocess.run(command, capture_output=True, text=True, timeout=DOWNLOAD_TIMEOUT_S)
        except (OSError, subprocess.TimeoutExpired) as error:
            raise ReleaseTestsUnavailable(f"`{' '.join(command)}` could not run: {error}") from error
        archives = sorted(Path(scratch).glob(f"transformers-{version}.tar.gz"))
        if result.returncode != 0 or not archives:
            last_lines = " | ".join((result.stderr or result.stdout).strip().splitlines()[-3:])
            raise ReleaseTestsUnavailable(f"`{' '.join(command)}` failed: {last_lines or 'no source distribution'}")
        staged = Path(scratch) / "staged"
        _extract_top_level_tests(archives[0], f"transformers-{version}/tests/", staged / PACKAGE)
        # One rename, so a run that stops half-way never leaves a folder that looks complete.
        try:
            staged.rename(folder)
        except OSError:
            if not (folder / PACKAGE / "__init__.py").is_file():
                raise
    return folder


def _extract_top_level_tests(archive: Path, prefix: str, destination: Path) -> None:
    destination.mkdir(parents=True)
    with tarfile.open(archive) as source:
        shipped = [member for member in source.getmembers() if member.isfile() and member.name.startswith(prefix)]
        members = [
            member for member in shipped if member.name.endswith(".py") and "/" not in member.name[len(prefix):]
        ]  # fmt: skip
        if not members:
            raise ReleaseTestsUnavailable(f"{archive.name} holds no {prefix}*.py files.")
        for member in members:
            with source.extractfile(member) as content:
                (destination / Path(member.name).name).write_bytes(content.read())
    # What the release ships under tests/, extracted or not (`release_has_test_file` reads it).
    (destination / SHIPPED_LIST).write_text("".join(member.name[len(prefix):] + "\n" for member in shipped))
    # Makes the folder a package (the files import each other relatively); `direct_transformers_import` in the
    # config tests also executes it, and an empty file leaves the real `transformers` module in place.
    (destination / "__init__.py").write_text("")


def import_release_tests(*module_names: str) -> list[types.ModuleType]:
    """Import the release's test modules (e.g. `"test_modeling_common"`), or skip the calling test module, with the
    reason, when they cannot be fetched."""
    try:
        folder = fetch_release_tests()
    except ReleaseTestsUnavailable as error:
        pytest.skip(
            f"Transformers {transformers.__version__}'s own test files are not available: {error}",
            allow_module_level=True,
        )
    if str(folder) not in sys.path:
        sys.path.insert(0, str(folder))
    _install_stand_ins(folder)
    with warnings.catch_warnings():
        # The release marks tests with its own CI categories (flash_attn_test, torch_compile_test, ...), which its
        # conftest registers; they select nothing here.
        warnings.simplefilter("ignore", pytest.PytestUnknownMarkWarning)
        return [importlib.import_module(f"{PACKAGE}.{name}") for name in module_names]


def release_has_test_file(relative_path: str) -> bool:
    """Whether the installed release's source distribution ships `tests/<relative_path>`."""
    shipped = (fetch_release_tests() / PACKAGE / SHIPPED_LIST).read_text().splitlines()
    return relative_path in shipped


# ---------------------------------------------------------------------------------------------------------------------
# Stand-ins for the modules of Transformers' test tree that the source distribution does not ship
# ---------------------------------------------------------------------------------------------------------------------
class ExportTesterMixin:
    """Stands for `tests/exporters/test_export.py`, which `ModelTesterMixin` derives from: its torch.export, ONNX,
    OpenVINO, TensorRT and ExecuTorch runs are not in the source distribution, so they do not run here. (VIS-MAE's
    own ONNX export is tested by this project's export tests.)"""


class GenerationTesterMixin:
    """Stands for `tests/generation/test_utils.py`. `ModelTesterMixin` only checks that a model which cannot generate
    does not inherit it, which holds for every VIS-MAE class."""


def config_common_kwargs() -> dict:
    """Stands for `tests/utils/test_configuration_utils.config_common_kwargs`: every argument `PreTrainedConfig`
    itself takes, each set to a value other than its default, which `ConfigTester.check_config_arguments_init`
    expects any config to keep. Built from the installed `PreTrainedConfig`, and refused if a field is unaccounted
    for, so a new common field of a later release cannot slip past the check."""
    values = {
        "return_dict": False,
        "output_hidden_states": True,
        "output_attentions": True,
        "dtype": "float16",
        "chunk_size_feed_forward": 5,
        "architectures": ["VisMaeModel"],
        "id2label": {0: "label"},
        "label2id": {"label": 0},
        "problem_type": "regression",
    }
    # Set by the library itself, not by a user: the release's own list leaves the same ones out.
    not_user_arguments = {"transformers_version", "is_encoder_decoder"}
    fields = {field.name for field in dataclasses.fields(transformers.PreTrainedConfig)} - not_user_arguments
    if fields - values.keys():
        raise RuntimeError(
            f"PreTrainedConfig {transformers.__version__} has common fields {sorted(fields - values.keys())} that "
            "tests/transformers_release.py gives no non-default value: add them to config_common_kwargs."
        )
    return values


FIXTURE_URLS_PREFIX = "https://huggingface.co/datasets/hf-internal-testing/"


def url_to_local_path(url: str) -> str:
    """Stands for `utils/fetch_hub_objects_for_ci.url_to_local_path`, which maps Hub fixture URLs to files CI fetched
    beforehand. Tests run offline here, so each fixture picture (the COCO cats photo used to compare the two processor
    backends, ADE20k pairs) is replaced by a synthetic one of the same kind: an RGB JPEG of 480x640 with smooth
    shading, edges and noise, or an 8-bit label map. Other URLs are returned unchanged."""
    if not url.startswith(FIXTURE_URLS_PREFIX):
        return url
    folder = fetch_release_tests() / "fixtures"
    folder.mkdir(exist_ok=True)
    is_label_map = url.endswith(".png")
    path = folder / f"{hashlib.sha256(url.encode()).hexdigest()[:16]}{'.png' if is_label_map else '.jpg'}"
    if not path.is_file():
        rows, columns = np.mgrid[0:480, 0:640]
        if is_label_map:
            labels = ((rows // 60) * 3 + columns // 80) % 150
            Image.fromarray(labels.astype(np.uint8)).save(path)
        else:
            noise = np.random.default_rng(len(url)).normal(0, 12, (480, 640, 3))
            shading = np.stack([rows / 480 * 255, columns / 640 * 255, ((rows // 40 + columns // 40) % 2) * 200], -1)
            Image.fromarray(np.clip(shading + noise, 0, 255).astype(np.uint8)).save(path, quality=90)
    return str(path)


def _install_stand_ins(folder: Path) -> None:
    def module(name: str, **attributes) -> None:
        if name not in sys.modules:
            stand_in = types.ModuleType(name)
            stand_in.__dict__.update(attributes)
            stand_in.__path__ = []  # a package, so that its submodules import
            sys.modules[name] = stand_in

    module(f"{PACKAGE}.exporters")
    module(f"{PACKAGE}.exporters.test_export", ExportTesterMixin=ExportTesterMixin)
    module(f"{PACKAGE}.generation")
    module(f"{PACKAGE}.generation.test_utils", GenerationTesterMixin=GenerationTesterMixin)
    module(f"{PACKAGE}.utils")
    module(f"{PACKAGE}.utils.test_configuration_utils", config_common_kwargs=config_common_kwargs())
    module("fetch_hub_objects_for_ci", url_to_local_path=url_to_local_path)
