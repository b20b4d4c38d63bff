"""A clearly synthetic brain FDG-PET series for the demo corpus, because no real PET DICOM ships in any package.

Activity is simulated from the MNI152 tissue probability maps with the textbook FDG contrast (grey matter about four
times white matter, cerebrospinal fluid and other brain low), blurred to a PET-like resolution and given Poisson
counting noise, then written as a DICOM series the way scanners store PET: Modality PT, Units BQML, unsigned 16-bit
stored values with a RescaleSlope to Bq/ml. It exercises the PET path of the corpus builder and gives the PET model
variant something to train on in the demo; it is not a stand-in for clinical PET, and every file says so in its
SeriesDescription and ImageComments.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import (
    ExplicitVRLittleEndian,
    PositronEmissionTomographyImageStorage,
    generate_uid,
)

from ..medical.orientation import AXIAL_AXIS, display_slice

# Bq/ml per tissue fraction: FDG uptake roughly 4:1 grey to white matter, low elsewhere in the brain.
GREY_MATTER_ACTIVITY = 12000.0
WHITE_MATTER_ACTIVITY = 3000.0
OTHER_BRAIN_ACTIVITY = 800.0
VOXEL_MM = 2.0  # PET reconstructions are coarser than the 1 mm template
DESCRIPTION = "SYNTHETIC FDG-PET simulated from MNI152 tissue maps (vis-mae-hf demo, not a patient scan)"


def _blur(volume: np.ndarray, passes: int = 2) -> np.ndarray:
    """Repeated 3-tap box filtering per axis: an approximately Gaussian blur (~4-5 mm FWHM at 2 mm voxels)."""
    for _ in range(passes):
        for axis in range(3):
            volume = (np.roll(volume, 1, axis) + volume + np.roll(volume, -1, axis)) / 3.0
    return volume


def synthetic_fdg_activity(grey: np.ndarray, white: np.ndarray, brain: np.ndarray, seed: int = 0) -> np.ndarray:
    """Activity in Bq/ml on a 2 mm grid from 1 mm RAS probability maps (grey, white in [0, 1]; brain bool)."""
    other = np.clip(1.0 - grey - white, 0.0, 1.0) * brain
    activity = GREY_MATTER_ACTIVITY * grey + WHITE_MATTER_ACTIVITY * white + OTHER_BRAIN_ACTIVITY * other
    step = int(VOXEL_MM)
    shape = tuple(size // step * step for size in activity.shape)
    activity = activity[: shape[0], : shape[1], : shape[2]]
    activity = activity.reshape(shape[0] // step, step, shape[1] // step, step, shape[2] // step, step).mean((1, 3, 5))
    activity = _blur(activity)
    counts_per_bq = 0.05  # sets the noise level: ~ sqrt(600) relative noise in grey matter
    rng = np.random.default_rng(seed)
    return (rng.poisson(activity * counts_per_bq) / counts_per_bq).astype(np.float32)


def write_pet_series(activity: np.ndarray, folder: Path, slice_indices: list[int], origin_ras: np.ndarray) -> list[Path]:
    """Write axial slices of a RAS activity volume as a PET DICOM series (LPS patient coordinates)."""


    folder.mkdir(parents=True, exist_ok=True)
    slope = float(activity.max()) / 65535.0 or 1.0
    study, series, frame_of_reference = generate_uid(), generate_uid(), generate_uid()
    nx, ny, _ = activity.shape
    paths = []
    for number, index in enumerate(slice_indices, start=1):
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID = PositronEmissionTomographyImageStorage
        meta.MediaStorageSOPInstanceUID = generate_uid()
        meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds = Dataset()
        ds.file_meta = meta
        ds.SOPClassUID, ds.SOPInstanceUID = meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID
        ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.FrameOfReferenceUID = study, series, frame_of_reference
        ds.Modality, ds.Units, ds.SeriesDescription = "PT", "BQML", DESCRIPTION[:64]
        ds.ImageComments = DESCRIPTION
        ds.PatientName, ds.PatientID = "SYNTHETIC^PET", "SYNTHETIC"
        ds.InstanceNumber = number
        # Display orientation (rows anterior->posterior, columns patient right->left) is the LPS +x/+y layout.
        pixels = display_slice(activity, AXIAL_AXIS, index)
        ds.Rows, ds.Columns = pixels.shape
        ds.PixelSpacing = [VOXEL_MM, VOXEL_MM]
        ds.SliceThickness = VOXEL_MM
        ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
        # First pixel: the patient's rightmost, most anterior voxel; RAS (x, y) -> LPS (-x, -y).
        right_x = origin_ras[0] + (nx - 1) * VOXEL_MM
        anterior_y = origin_ras[1] + (ny - 1) * VOXEL_MM
        ds.ImagePositionPatient = [-right_x, -anterior_y, origin_ras[2] + index * VOXEL_MM]
        ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 0
        ds.RescaleSlope, ds.RescaleIntercept = f"{slope:.6g}", "0"
        ds.PixelData = np.round(pixels / float(ds.RescaleSlope)).clip(0, 65535).astype(np.uint16).tobytes()
        path = folder / f"pet_{number:03d}.dcm"
        ds.save_as(path, enforce_file_format=True)
        paths.append(path)
    return paths
