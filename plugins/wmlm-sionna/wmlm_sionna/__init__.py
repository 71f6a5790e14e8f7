"""wmlm-sionna: Sionna RT ray-traced 60 GHz V2I scenes as DeepSense-layout training data for wmlm.

``wmlm data synth --engine sionna --scene simple_street_canyon --out OUT`` (see ``wmlm_sionna.engine``).
"""

from wmlm_sionna.backend import LlvmStatus, check_backend, load_sionna
from wmlm_sionna.engine import SionnaEngine, synth

__all__ = ["LlvmStatus", "SionnaEngine", "check_backend", "load_sionna", "synth"]
