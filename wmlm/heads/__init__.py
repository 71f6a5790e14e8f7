"""Built-in task heads; ``wmlm.builtins`` registers them through the ``wmlm_register_heads`` hook."""

from wmlm.heads.base import TaskHead
from wmlm.heads.beam import BeamHead
from wmlm.heads.blockage import BlockageHead
from wmlm.heads.position import PositionHead
from wmlm.heads.power import PowerHead

__all__ = ["BeamHead", "BlockageHead", "PositionHead", "PowerHead", "TaskHead"]
