"""What a Hub repository needs so that VIS-MAE loads without this package: the `auto_map` entries and the flat code
files they point to.

`save_pretrained` writes only the saved model's own class into `auto_map` (and nothing unless the class was
registered for an auto class), so the exporter writes the complete maps below itself. The code files are copied
byte for byte from the installed package: the repository runs exactly the code this package runs, and the package
version is recorded beside it (`config.json` `vis_mae_hf_version`, the model card).

Which code runs: with `vis_mae_hf` imported, its registered classes win over the repository's code even with
`trust_remote_code=True` (transformers prefers explicitly registered local classes); without it,
`trust_remote_code=True` runs the copied files. Both read the same weights and processor settings.
"""

from __future__ import annotations

import sys
from pathlib import Path

from transformers.dynamic_module_utils import get_imports, get_relative_imports

from .. import configuration_vis_mae, image_processing_vis_mae, modeling_vis_mae

CONFIG_AUTO_MAP: dict[str, str] = {
    "AutoConfig": "configuration_vis_mae.VisMaeConfig",
    "AutoModel": "modeling_vis_mae.VisMaeModel",
    "AutoModelForPreTraining": "modeling_vis_mae.VisMaeForPreTraining",
    "AutoModelForImageClassification": "modeling_vis_mae.VisMaeForImageClassification",
    "AutoModelForSemanticSegmentation": "modeling_vis_mae.VisMaeForSemanticSegmentation",
    "AutoBackbone": "modeling_vis_mae.VisMaeBackbone",
}
"""`config.json` `auto_map`: every Transformers auto class the package registers VIS-MAE with."""

IMAGE_PROCESSOR_AUTO_MAP: dict[str, dict[str, str]] = {
    # transformers 5.x picks the entry of the backend it resolves ("torchvision" when torchvision imports, else "pil"),
    # the same rule it applies to the package's registered classes, so both paths pick the same class.
    "AutoImageProcessor": {
        "pil": "image_processing_vis_mae.VisMaeImageProcessorPil",
        "torchvision": "image_processing_vis_mae.VisMaeImageProcessor",
    }
}
"""`preprocessor_config.json` `auto_map`."""

CODE_MODULES = (configuration_vis_mae, modeling_vis_mae, image_processing_vis_mae)
REMOTE_CODE_FILES: tuple[str, ...] = tuple(Path(module.__file__).name for module in CODE_MODULES)
"""The flat files a repository carries: the auto_map modules and everything they import relatively."""

# Packages remote code may import: the ones every user of a Transformers image model has.
ALLOWED_THIRD_PARTY_IMPORTS = frozenset({"torch", "transformers", "numpy", "PIL", "huggingface_hub", "safetensors"})


def auto_map_module_files(auto_map: dict) -> set[str]:
    """File names (`modeling_vis_mae.py`) that the class references of an `auto_map` point to."""
    references: list[str] = []
    for value in auto_map.values():
        if isinstance(value, dict):
            references.extend(v for v in value.values() if v)
        elif isinstance(value, (list, tuple)):
            references.extend(v for v in value if v)
        else:
            references.append(value)
    return {reference.split("--")[-1].rsplit(".", 1)[0] + ".py" for reference in references}


def write_remote_code(directory: str | Path) -> list[str]:
    """Copy the flat model, config and processor files into `directory`; returns their names."""
    directory = Path(directory)
    written = []
    for module in CODE_MODULES:
        source = Path(module.__file__)
        (directory / source.name).write_bytes(source.read_bytes())
        written.append(source.name)
    return written


def foreign_code_files(directory: str | Path) -> list[str]:
    """The code files of `directory` that are not byte for byte this package's (missing ones included).

    `trust_remote_code=True` executes them: the package runs only code it wrote itself.
    """
    directory = Path(directory)
    return [
        Path(module.__file__).name
        for module in CODE_MODULES
        if not (directory / Path(module.__file__).name).is_file()
        or (directory / Path(module.__file__).name).read_bytes() != Path(module.__file__).read_bytes()
    ]


def remote_code_problems(directory: str | Path) -> list[str]:
    """Why the code files in `directory` would not load as remote code (an empty list when they would).

    Checks that every file an `auto_map` names is present, that their relative imports are present too, and that
    they import nothing beyond the standard library and `ALLOWED_THIRD_PARTY_IMPORTS` (in particular not vis_mae_hf,
    which a remote-code user does not have).
    """
    directory = Path(directory)
    problems = []
    pending = sorted(auto_map_module_files(CONFIG_AUTO_MAP) | auto_map_module_files(IMAGE_PROCESSOR_AUTO_MAP))
    seen: set[str] = set()
    while pending:
        name = pending.pop(0)
        if name in seen:
            continue
        seen.add(name)
        path = directory / name
        if not path.is_file():
            problems.append(f"remote code file {name} is missing (auto_map or a relative import needs it)")
            continue
        try:
            relative = get_relative_imports(str(path))
            imported = get_imports(str(path))
        except SyntaxError as error:
            problems.append(f"remote code file {name} does not parse: {error}")
            continue
        pending.extend(f"{module}.py" for module in relative)
        foreign = sorted(
            package
            for package in imported
            if package not in sys.stdlib_module_names and package not in ALLOWED_THIRD_PARTY_IMPORTS
        )
        if foreign:
            problems.append(
                f"remote code file {name} imports {', '.join(foreign)}: remote code may only import the standard "
                f"library and {', '.join(sorted(ALLOWED_THIRD_PARTY_IMPORTS))}"
            )
    return problems
