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


class NoImagePixelDataError(MedicalImageError):
    """A DICOM object that holds no image (structured report, DICOM-SEG masks, ...)."""


class MissingDicomDecoderError(MedicalImageError, ImportError):
    """The DICOM's compressed transfer syntax needs a decoder package that is not installed."""


class MixedSeriesError(MedicalImageError):
    """A DICOM folder whose files are not one consistent series."""
