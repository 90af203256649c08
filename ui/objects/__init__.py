"""The object table and proofreading of instance layers (``instance_XXXX``)."""

from .panel import ObjectPanel

__all__ = ["ObjectPanel"]
