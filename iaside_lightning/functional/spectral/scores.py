"""Summaries of a frequency response: the paper's ``psi`` and SRS, the sign-keeping spectral balance, and their
standard errors.

Every summary takes ``phi`` of shape ``[..., M]`` (one frequency response per leading index), so that
:func:`score_standard_errors` can push many draws through the same code.
"""

from typing import NamedTuple

import torch
from torch import Tensor

__all__ = [
    "ScoreErrors",
    "score_standard_errors",
    "spectral_balance",
    "spectral_balance_weights",
    "spectral_importance_distribution",
    "spectral_robustness_score",
]

#: Draws of the Monte Carlo propagation in :func:`score_standard_errors` (relative error of a stderr ~ 1.1%).
NUM_DRAWS = 4096


def _check_phi(phi: Tensor, name: str = "phi") -> None:
    if not isinstance(phi, Tensor) or phi.ndim < 1 or phi.shape[-1] < 2:
        shape = tuple(phi.shape) if isinstance(phi, Tensor) else type(phi).__name__
        raise ValueError(f"`{name}` must be a tensor [..., M] with at least 2 bands, got {shape}.")
    if not bool(torch.isfinite(phi).all()):
        raise ValueError(f"`{name}` must be finite, got {phi.tolist()}.")


def _degenerate(phi: Tensor) -> Tensor:
    """``[...]`` whether all ``phi`` of a response are equal (to rounding), so ``psi`` is undefined."""
    shifted = phi - phi.min(dim=-1, keepdim=True).values
    scale = phi.abs().amax(dim=-1).clamp_min(torch.finfo(phi.dtype).tiny)
    return shifted.sum(dim=-1) <= 1e-12 * scale * phi.shape[-1]


def spectral_importance_distribution(phi: Tensor) -> tuple[Tensor, bool]:
    """The paper's normalisation ``psi = (phi - min phi) / sum(phi - min phi)``.

    The shift maps the most harmful band to 0 and lifts the others: negative Shapley values are hidden, which is
    why :func:`spectral_balance` exists beside it.

    Args:
        phi: Shapley values per band, shape ``[M]`` (or ``[..., M]``: one distribution per row).

    Returns:
        ``(psi, degenerate)``: ``psi`` like ``phi`` sums to 1 over the last dimension. When all ``phi`` are equal
        (for example an untrained model) the normalisation is undefined; ``psi`` is then uniform and ``degenerate``
        is ``True`` (for batched input: whether any row was).

    Example:
        >>> spectral_importance_distribution(torch.tensor([3.0, 1.0, 2.0]))
        (tensor([0.6667, 0.0000, 0.3333]), False)
        >>> spectral_importance_distribution(torch.zeros(4))
        (tensor([0.2500, 0.2500, 0.2500, 0.2500]), True)
    """
    _check_phi(phi)
    shifted = phi - phi.min(dim=-1, keepdim=True).values
    degenerate = _degenerate(phi)
    total = torch.where(degenerate, torch.ones_like(shifted[..., 0]), shifted.sum(dim=-1))
    psi = torch.where(degenerate[..., None], torch.full_like(phi, 1.0 / phi.shape[-1]), shifted / total[..., None])
    return psi, bool(degenerate.any())


def spectral_robustness_score(psi: Tensor, beta: float = 0.75, signed: bool = False) -> Tensor:
    """Spectral robustness score (SRS) of a spectral importance distribution.

    With ``b_k = beta^k`` (``k = 0`` the lowest band), ``b^ = b / ||b||_2`` and ``D = (||b||_1 / ||b||_2) / M``:
    ``SRS = |b^ . psi - D| / |1 - D|``. The signed variant ``(b^ . psi - D) / (1 - D)`` is positive when the
    importance leans to low frequencies and negative when it leans to high frequencies; 0 means uniform. Its
    attainable range depends on ``M`` (all of ``psi`` on the lowest band to all on the highest): about
    ``[-0.33, +0.48]`` at ``M = 6`` and ``[-0.30, +0.52]`` at ``M = 8`` for ``beta = 0.75``, so values at different
    ``M`` are not comparable; see :func:`spectral_balance` for a score whose range is ``[-1, 1]`` at every ``M``.

    Args:
        psi: distribution over the ``M`` bands, shape ``[M]`` or ``[..., M]`` (see
            :func:`spectral_importance_distribution`).
        beta: decay of the band weights, in ``(0, 1)``; the paper uses 0.75.
        signed: return the signed score instead of its absolute value.

    Returns:
        Tensor of shape ``psi.shape[:-1]`` (a scalar for ``[M]``).

    Example:
        >>> psi = torch.tensor([1.0, 0.0, 0.0, 0.0])
        >>> round(float(spectral_robustness_score(psi)), 4)
        0.4215
        >>> float(spectral_robustness_score(torch.full((4,), 0.25), signed=True))
        0.0
    """
    if not 0.0 < beta < 1.0:
        raise ValueError(f"`beta` must lie in (0, 1), got {beta!r}.")
    _check_phi(psi, "psi")
    num_bands = psi.shape[-1]
    b = beta ** torch.arange(num_bands, dtype=psi.dtype, device=psi.device)
    b_hat = b / b.norm(p=2)
    d = (b.norm(p=1) / b.norm(p=2)) / num_bands
    signed_score = (psi @ b_hat - d) / (1.0 - d)
    return signed_score if signed else signed_score.abs()


def spectral_balance_weights(num_bands: int, dtype: torch.dtype = torch.float64) -> Tensor:
    """The band weights ``c_k = 1 - 2 k / (M - 1)`` of :func:`spectral_balance`: +1 for the lowest band, -1 for the
    highest, evenly spaced between.

    Example:
        >>> spectral_balance_weights(5)
        tensor([ 1.0000,  0.5000,  0.0000, -0.5000, -1.0000], dtype=torch.float64)
    """
    if isinstance(num_bands, bool) or not isinstance(num_bands, int) or num_bands < 2:
        raise ValueError(f"`num_bands` must be an integer >= 2, got {num_bands!r}.")
    return 1.0 - 2.0 * torch.arange(num_bands, dtype=dtype) / (num_bands - 1)


def spectral_balance(phi: Tensor) -> Tensor:
    """Spectral balance: where the model's predictive power lies, with harmful bands counted against robustness.

    ``balance = (sum_k c_k max(phi_k, 0) - sum_k max(-phi_k, 0)) / sum_k |phi_k|`` with the weights ``c_k`` of
    :func:`spectral_balance_weights` (+1 lowest band, -1 highest). No shift, no normalisation by the minimum: a band
    that helps counts by its position in the spectrum, a band that hurts (negative Shapley value: keeping it lowers
    the log-probability of the true label) counts as fully non-robust, like help from the highest band. The range is
    ``[-1, 1]`` at every ``M``: +1 when all of ``sum |phi|`` is help from the lowest band, -1 when it is help from
    the highest band or harm, 0 when helpful mass is spread evenly. Where all bands help, it is the
    ``|phi|``-weighted mean of ``c_k``. 0 when every ``phi`` is 0.

    Unlike the paper's SRS (through ``psi``), it falls when high bands turn harmful (the toy case of the tests:
    five high bands slightly negative raise the signed SRS and lower the balance).

    Args:
        phi: Shapley values per band, ``[M]`` or ``[..., M]``, lowest band first.

    Returns:
        Tensor of shape ``phi.shape[:-1]``.

    Example:
        >>> spectral_balance(torch.tensor([1.0, 0.0, 0.0]))
        tensor(1.)
        >>> spectral_balance(torch.tensor([1.0, 1.0, 1.0]))
        tensor(0.)
        >>> spectral_balance(torch.tensor([1.0, 0.0, -1.0]))  # half help from band 0, half harm
        tensor(0.)
    """
    _check_phi(phi)
    weights = spectral_balance_weights(phi.shape[-1], phi.dtype).to(phi.device)
    mass = phi.abs().sum(dim=-1)
    net = (phi.clamp_min(0.0) * weights).sum(dim=-1) - (-phi).clamp_min(0.0).sum(dim=-1)
    # Divide by the mass itself wherever it is positive, subnormal included (a clamp to `tiny` halved such cases).
    return torch.where(mass > 0, net / torch.where(mass > 0, mass, torch.ones_like(mass)), torch.zeros_like(mass))


class ScoreErrors(NamedTuple):
    """Standard errors of the summaries of ``phi``, from :func:`score_standard_errors`."""

    psi: Tensor  #: ``[M]``
    srs: Tensor  #: scalar
    srs_signed: Tensor  #: scalar
    balance: Tensor  #: scalar


def score_standard_errors(
    phi: Tensor, covariance: Tensor, beta: float = 0.75, num_draws: int = NUM_DRAWS, seed: int = 0
) -> ScoreErrors:
    """Standard errors of ``psi``, SRS, signed SRS and the spectral balance, propagated from the covariance of
    ``phi`` by a seeded Monte Carlo over the estimated mean's distribution.

    ``phi`` is a mean over samples, so it is close to normal with ``covariance`` (the sample covariance of
    per-sample Shapley values over the number of samples, plus the estimator's covariance for sampled estimators).
    The summaries are drawn under ``N(phi, covariance)`` and their standard deviations returned. This handles the
    kinks a first-order (delta-method) expansion gets wrong: the minimum band of ``psi`` switching between bands
    whose ``phi`` are within noise of each other, the absolute value of SRS near 0, and signs flipping in the
    balance. It breaks down where the normal approximation does: few samples (the covariance itself is then
    noisy; NaN below 2 samples), heavy-tailed per-sample values, and a near-degenerate ``psi`` (all ``phi`` within
    noise of each other: ``sum(phi - min phi)`` near 0 makes ``psi`` and SRS erratic, and their standard errors
    large and themselves imprecise). The draws are seeded: the same inputs give the same errors.

    Args:
        phi: ``[M]`` Shapley values.
        covariance: ``[M, M]`` covariance of ``phi`` (symmetric positive semi-definite; NaN entries give NaN errors).
        beta: decay of the SRS band weights.
        num_draws: Monte Carlo draws.
        seed: seed of the draws.

    Returns:
        :class:`ScoreErrors` (float64).

    Example:
        >>> phi = torch.tensor([0.8, 0.4, 0.1, 0.0], dtype=torch.float64)
        >>> errors = score_standard_errors(phi, torch.zeros(4, 4, dtype=torch.float64))
        >>> round(float(errors.srs), 12), round(float(errors.balance), 12)  # no uncertainty in phi, none in the scores
        (0.0, 0.0)
    """
    _check_phi(phi)
    if phi.ndim != 1:
        raise ValueError(f"`phi` must be one frequency response [M], got shape {tuple(phi.shape)}.")
    num_bands = phi.shape[-1]
    if not isinstance(covariance, Tensor) or covariance.shape != (num_bands, num_bands):
        got = tuple(covariance.shape) if isinstance(covariance, Tensor) else type(covariance).__name__
        raise ValueError(f"`covariance` must be a tensor [{num_bands}, {num_bands}], got {got}.")
    phi, covariance = phi.to("cpu", torch.float64), covariance.to("cpu", torch.float64)
    if not bool(torch.isfinite(covariance).all()):
        nan = torch.tensor(float("nan"), dtype=torch.float64)
        return ScoreErrors(torch.full((num_bands,), float("nan"), dtype=torch.float64), nan, nan, nan.clone())
    # A symmetric square root through the eigendecomposition tolerates semi-definite (rank-deficient) covariances.
    eigenvalues, eigenvectors = torch.linalg.eigh((covariance + covariance.T) / 2)
    root = eigenvectors * eigenvalues.clamp_min(0.0).sqrt()
    generator = torch.Generator().manual_seed(seed)
    draws = phi + torch.randn(num_draws, num_bands, generator=generator, dtype=torch.float64) @ root.T
    psi, _ = spectral_importance_distribution(draws)
    signed = spectral_robustness_score(psi, beta, signed=True)
    return ScoreErrors(
        psi=psi.std(dim=0),
        srs=signed.abs().std(),
        srs_signed=signed.std(),
        balance=spectral_balance(draws).std(),
    )
