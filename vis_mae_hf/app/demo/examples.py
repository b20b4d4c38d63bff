"""The demo page's bundled examples: real images read from installed PyPI packages, as the demo data read them.

pydicom-data's head CT (CQ500, 512 x 512, header window 40/100) and a colour ultrasound frame, and nilearn's
MNI152 T1 template (a NIfTI volume: the slice slider walks through it). Nothing is downloaded; without the `demo`
extra the picker says which extra to install. Each example carries the notice its source asks to be kept with it.
"""

from __future__ import annotations

from pathlib import Path

from pydicom.data import get_testdata_file

from ...data.demo import MNI152_NOTICE, PYDICOM_NOTICE, mni152_file

DEMO_EXTRA_HINT = 'The examples need the demo extra: pip install "vis-mae-hf[demo]" (pydicom-data, nilearn).'
HEAD_CT = "Head CT (DICOM, pydicom-data)"
MNI152 = "MNI152 T1 template (NIfTI volume, nilearn)"
ULTRASOUND = "Ultrasound frame (DICOM, pydicom-data)"
_DICOM_FILES = {HEAD_CT: "693_UNCR.dcm", ULTRASOUND: "US1_UNCR.dcm"}
EXAMPLE_NAMES = (HEAD_CT, MNI152, ULTRASOUND)


def example_file(name: str) -> Path:
    """The installed file of example `name`; ImportError naming the `demo` extra when its package is missing."""
    if name == MNI152:
        return mni152_file("t1")  # ImportError naming the extra without nilearn
    if name not in _DICOM_FILES:
        raise ValueError(f"unknown example {name!r}; the examples are {', '.join(EXAMPLE_NAMES)}.")
    found = get_testdata_file(_DICOM_FILES[name], download=False)  # None without pydicom-data
    if found is None:
        raise ImportError(f"{_DICOM_FILES[name]} is not installed. {DEMO_EXTRA_HINT}")
    return Path(found)


def example_notice(name: str) -> str:
    """The credit and licence notice kept with an example."""
    return MNI152_NOTICE if name == MNI152 else PYDICOM_NOTICE


def examples_status() -> str:
    """"" when every example is installed, else the line saying which extra to install."""
    try:
        for name in EXAMPLE_NAMES:
            example_file(name)
    except (ImportError, OSError):
        return DEMO_EXTRA_HINT
    return ""
