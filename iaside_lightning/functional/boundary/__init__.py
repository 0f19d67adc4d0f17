"""Boundary attributions: search options, boundary search, integrated gradients at the boundary (BIG), geometry."""
