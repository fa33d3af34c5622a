"""The local ERPNext REST simulator; ``ErpNextSimulator`` and its fault settings live in ``server``."""

from amz2erp_sim.erpnext.server import ErpNextSimulator, FaultConfig

__all__ = ["ErpNextSimulator", "FaultConfig"]
