"""DiffROAR: the retrained evaluation (fresh models trained on masked data, by the retraining harness), its cheap
proxy, their options, result and figure."""

from iaside_lightning.evaluation.retrained_diffroar import diffroar
from iaside_lightning.functional.sanity.attributions import compute_attributions
from iaside_lightning.functional.sanity.diffroar_proxy import diffroar_proxy
from iaside_lightning.functional.sanity.diffroar_result import DiffROARResult
from iaside_lightning.functional.sanity.options import DiffROAROptions
from iaside_lightning.plotting.sanity import plot_diffroar

__all__ = ["DiffROAROptions", "DiffROARResult", "compute_attributions", "diffroar", "diffroar_proxy", "plot_diffroar"]
