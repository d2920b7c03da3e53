"""Model families (one module each) behind a registry.  Knows nothing of export."""

from gaitedge.models import elman, gru, lstm  # noqa: F401  (registration)
from gaitedge.models import tcn  # noqa: F401  (registration)
from gaitedge.models import bidirectional, encdec  # noqa: F401  (registration)
from gaitedge.models import jordan  # noqa: F401  (registration)
from gaitedge.models import peephole  # noqa: F401  (registration)
from gaitedge.models import deep_gru  # noqa: F401  (registration)
from gaitedge.models import ctrnn, gactrnn, sctrnn  # noqa: F401  (registration)
from gaitedge.models import pcrnn  # noqa: F401  (registration)
from gaitedge.models import esn  # noqa: F401  (registration)
from gaitedge.models.base import GaitModel, State, available, build_model, family_defaults, register

__all__ = ["GaitModel", "State", "available", "build_model", "family_defaults", "register"]
