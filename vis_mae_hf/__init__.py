"""vis-mae-hf: VIS-MAE as Hugging Face Transformers models for medical images."""

__version__ = "0.1.0"
