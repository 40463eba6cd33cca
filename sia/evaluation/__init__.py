"""Detector quality, measured on real data against simple baselines."""
