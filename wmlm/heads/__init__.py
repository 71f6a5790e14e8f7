"""Built-in task heads; each registers itself through the ``wmlm_register_heads`` hook."""

from wmlm.heads.base import TaskHead
from wmlm.heads.beam import BeamHead

__all__ = ["BeamHead", "TaskHead"]
