"""amz2erp: Amazon Selling Partner API → ERPNext, exactly once."""

__version__ = "0.1.0"
