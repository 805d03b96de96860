"""The lab's controllers: reconcile loops over the in-process API (see manager.py)."""

from .manager import CONTROLLERS, ControllerManager

__all__ = ["CONTROLLERS", "ControllerManager"]
