"""Built-in modalities; ``wmlm.builtins`` registers them through the ``wmlm_register_modalities`` hook."""

from wmlm.modalities.base import Modality
from wmlm.modalities.beam import BeamModality
from wmlm.modalities.gps import GpsModality
from wmlm.modalities.image import ImageModality

__all__ = ["BeamModality", "GpsModality", "ImageModality", "Modality"]
