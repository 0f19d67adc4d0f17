"""Boundary attributions: boundary search, gradients and integrated gradients at the boundary (BIG), geometry."""
