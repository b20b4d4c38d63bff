"""The errors of medical-image loading. All are ValueError subclasses, so one `except ValueError` catches bad input;
a missing file is also a FileNotFoundError and a missing codec an ImportError. Callers tell cases apart by type,
never by message text."""


class MedicalImageError(ValueError):
    """A medical image file or argument that cannot give a valid image; the message names the file."""


class MedicalImageNotFoundError(MedicalImageError, FileNotFoundError):
    """The path does not exist."""


class UnreadableMedicalImageError(MedicalImageError):
    """Truncated or corrupt, or not a file format this package reads."""


class UnknownFileFormatError(UnreadableMedicalImageError):
    """Neither DICOM (no 'DICM' prefix) nor named like a NIfTI or 2-D image file: not a medical image at all."""


class PixelDataMismatchError(UnreadableMedicalImageError):
    """Pixel data that disagree with the header describing them: a length other than Rows x Columns x
    SamplesPerPixel x NumberOfFrames x BitsAllocated / 8, BitsStored over BitsAllocated, compressed data with another
    number of frames than NumberOfFrames. Decoding them would give an image of noise or of the wrong pixels."""


class InvalidRescaleError(UnreadableMedicalImageError):
    """A modality transform that cannot be right: a RescaleSlope of 0 (every pixel would become the intercept) or a
    slope or intercept that is not a finite number."""


class InvalidGeometryError(UnreadableMedicalImageError):
    """A pixel spacing, slice position, orientation or affine that is zero, not finite or singular: the image cannot be
    placed in the patient."""


class ImageTooLargeError(MedicalImageError):
    """A file whose header declares more voxels than `limits.max_voxels()` (checked before anything is allocated)."""


class NoImagePixelDataError(MedicalImageError):
    """A DICOM object that holds no image (structured report, DICOM-SEG masks, ...)."""


class MissingDicomDecoderError(MedicalImageError, ImportError):
    """The DICOM's compressed transfer syntax needs a decoder package that is not installed."""


class MixedSeriesError(MedicalImageError):
    """A DICOM folder whose files are not one consistent series."""
