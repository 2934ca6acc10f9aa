"""Usage alerts: threshold crossings and tier changes of an account's plan, as they happen."""

from processors.alerts.crossings import Crossing, Kind, Place, State, evaluate

__all__ = ["Crossing", "Kind", "Place", "State", "evaluate"]
