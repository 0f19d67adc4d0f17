"""Summaries of a frequency response: the spectral importance distribution ``psi`` and the robustness score."""

import torch
from torch import Tensor

__all__ = ["spectral_importance_distribution", "spectral_robustness_score"]


def spectral_importance_distribution(phi: Tensor) -> tuple[Tensor, bool]:
    """The paper's normalisation ``psi = (phi - min phi) / sum(phi - min phi)``.

    Args:
        phi: Shapley values per band, shape ``[M]``.

    Returns:
        ``(psi, degenerate)``: ``psi`` of shape ``[M]`` sums to 1. When all ``phi`` are equal (for example an
        untrained model) the normalisation is undefined; ``psi`` is then uniform and ``degenerate`` is ``True``.

    Example:
        >>> spectral_importance_distribution(torch.tensor([3.0, 1.0, 2.0]))
        (tensor([0.6667, 0.0000, 0.3333]), False)
        >>> spectral_importance_distribution(torch.zeros(4))
        (tensor([0.2500, 0.2500, 0.2500, 0.2500]), True)
    """
    if phi.ndim != 1 or phi.numel() < 2:
        raise ValueError(f"`phi` must be a 1-D tensor with at least 2 bands, got shape {tuple(phi.shape)}.")
    if not bool(torch.isfinite(phi).all()):
        raise ValueError(f"`phi` must be finite, got {phi.tolist()}.")
    shifted = phi - phi.min()
    total = shifted.sum()
    scale = phi.abs().max().clamp_min(torch.finfo(phi.dtype).tiny)
    if bool(total <= 1e-12 * scale * phi.numel()):
        return torch.full_like(phi, 1.0 / phi.numel()), True
    return shifted / total, False


def spectral_robustness_score(psi: Tensor, beta: float = 0.75, signed: bool = False) -> Tensor:
    """Spectral robustness score (SRS) of a spectral importance distribution.

    With ``b_k = beta^k`` (``k = 0`` the lowest band), ``b^ = b / ||b||_2`` and ``D = (||b||_1 / ||b||_2) / M``:
    ``SRS = |b^ . psi - D| / |1 - D|``. The signed variant ``(b^ . psi - D) / (1 - D)`` is positive when the
    importance leans to low frequencies and negative when it leans to high frequencies; 0 means uniform.

    Args:
        psi: distribution over the ``M`` bands, shape ``[M]`` (see :func:`spectral_importance_distribution`).
        beta: decay of the band weights, in ``(0, 1)``; the paper uses 0.75.
        signed: return the signed score instead of its absolute value.

    Returns:
        Scalar tensor.

    Example:
        >>> psi = torch.tensor([1.0, 0.0, 0.0, 0.0])
        >>> round(float(spectral_robustness_score(psi)), 4)
        0.4215
        >>> float(spectral_robustness_score(torch.full((4,), 0.25), signed=True))
        0.0
    """
    if not 0.0 < beta < 1.0:
        raise ValueError(f"`beta` must lie in (0, 1), got {beta!r}.")
    if psi.ndim != 1 or psi.numel() < 2:
        raise ValueError(f"`psi` must be a 1-D tensor with at least 2 bands, got shape {tuple(psi.shape)}.")
    num_bands = psi.numel()
    b = beta ** torch.arange(num_bands, dtype=psi.dtype, device=psi.device)
    b_hat = b / b.norm(p=2)
    d = (b.norm(p=1) / b.norm(p=2)) / num_bands
    signed_score = (b_hat @ psi - d) / (1.0 - d)
    return signed_score if signed else signed_score.abs()
