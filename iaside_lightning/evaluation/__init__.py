"""Evaluations that train models of their own: DiffROAR (retrained) and its cheap proxy."""

from iaside_lightning.evaluation.diffroar_evaluation import compute_attributions, diffroar, diffroar_proxy
from iaside_lightning.evaluation.diffroar_result import DiffROARResult, plot_diffroar

__all__ = ["DiffROARResult", "compute_attributions", "diffroar", "diffroar_proxy", "plot_diffroar"]
