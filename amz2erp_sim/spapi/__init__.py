"""The local Selling Partner API simulator; ``SpApiSimulator`` and its fault settings live in ``server``."""

from amz2erp_sim.spapi.options import (
    AUTH_OPERATION,
    DOCUMENT_OPERATION,
    RATE_LIMITS,
    FaultConfig,
    SpApiOptions,
)
from amz2erp_sim.spapi.server import SpApiSimulator

__all__ = ["AUTH_OPERATION", "DOCUMENT_OPERATION", "RATE_LIMITS", "FaultConfig", "SpApiOptions", "SpApiSimulator"]
