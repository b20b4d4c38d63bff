"""Display orientation of volume slices, and its inverse, side by side.

A RAS volume (canonical NIfTI order: X runs towards the patient's right, Y anterior, Z superior) is shown slice by
slice the radiological way, like a DICOM viewer: anterior (or superior) at the top, the patient's right on the
image's left. `display_slice` cuts and turns a slice that way; `ras_plane_from_display` turns a per-slice result (a
label map, class probabilities) back into the volume's voxel layout.
"""

from __future__ import annotations

import numpy as np

AXIAL_AXIS = 2  # in a RAS array the third axis runs inferior -> superior


def display_slice(volume: np.ndarray, axis: int, index: int) -> np.ndarray:
    """Slice `index` along `axis` of a RAS volume, in radiological display orientation (rows, columns): the plane's
    two remaining RAS axes are transposed so the higher one (anterior or superior) runs down the rows, then both are
    flipped, putting anterior/superior at the top and the patient's right on the image's left, like a DICOM viewer."""
    plane = volume[(slice(None),) * axis + (index,)]  # a view: np.take would copy the whole volume each time
    return np.ascontiguousarray(plane.T[::-1, ::-1])


def ras_plane_from_display(display: np.ndarray) -> np.ndarray:
    """Inverse of `display_slice` for an axial slice: display (..., rows, columns) -> RAS plane (..., X, Y).

    `display_slice` transposes the (X, Y) plane and flips both axes; flipping back and swapping the last two axes
    undoes it. Leading axes (classes) are kept.
    """
    return np.swapaxes(display[..., ::-1, ::-1], -1, -2)
