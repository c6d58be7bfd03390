"""The model layer: every model call goes through `ModelGateway`."""

from .budget import Budget
from .cache import ResponseCache
from .gateway import ModelGateway, ReplayMiss, StructuredOutputError
from .request import CallRecord

__all__ = ["Budget", "CallRecord", "ModelGateway", "ReplayMiss", "ResponseCache", "StructuredOutputError"]
