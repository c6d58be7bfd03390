"""The model layer: every model call goes through `ModelGateway`."""

from .budget import Budget
from .cache import ResponseCache
from .errors import AccountError, CallFailed, ProviderDown, ProviderError, ReplayMiss, StructuredOutputError
from .gateway import ModelGateway
from .request import CallRecord

__all__ = ["AccountError", "Budget", "CallFailed", "CallRecord", "ModelGateway", "ProviderDown", "ProviderError",
           "ReplayMiss", "ResponseCache", "StructuredOutputError"]
