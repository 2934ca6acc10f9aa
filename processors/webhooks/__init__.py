"""Usage alerts delivered as signed webhooks (Standard Webhooks): retried, logged, re-sendable."""

from processors.webhooks.deliveries import DeliveryLog
from processors.webhooks.model import DeliveryStatus, Endpoint, endpoints

__all__ = ["DeliveryLog", "DeliveryStatus", "Endpoint", "endpoints"]
