"""Detector plug-ins: one module each, registered by name (see base.py)."""

from sia.detectors.base import Detector, Params, detector_class, register, registered

__all__ = ["Detector", "Params", "detector_class", "register", "registered"]
