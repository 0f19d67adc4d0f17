"""PGD adversarial training (Madry et al., 2018) of the small CNN, for comparing robust and standard models."""

from typing import Any, Optional

from torch import Tensor, nn

from iaside_lightning.functional.attacks import Norm, check_attack_options, check_bounds, pgd_attack
from iaside_lightning.models.small_cnn import SmallCNNClassifier

__all__ = ["AdversarialCNNClassifier"]


class AdversarialCNNClassifier(SmallCNNClassifier):
    """:class:`SmallCNNClassifier` trained on PGD adversarial examples of each batch.

    Each training step attacks the batch with :func:`~iaside_lightning.functional.pgd_attack` (untargeted, random
    start, seeded with ``attack_seed + global_step``, so runs are reproducible and the global RNG is never drawn
    from), then minimises ``clean_weight * CE(clean) + (1 - clean_weight) * CE(adversarial)``. The attack runs the
    model in eval mode and computes input gradients only: BatchNorm running statistics are updated only by the
    training forward passes, and parameters' ``.grad`` only by the training loss. With ``clean_weight=1`` the loss
    is exactly the standard one.

    Logs ``train/loss``, ``train/adv_acc`` (accuracy, in eval mode, on the batch's adversarial examples),
    ``val/loss``, ``val/acc`` and, with ``robust_validation``, ``val/robust_acc`` (the same attack on each validation
    batch, seeded with ``attack_seed + batch_idx``).

    Args:
        in_channels: image channels.
        num_classes: number of classes.
        width: channels of the first conv block (doubled in each further block).
        depth: number of conv blocks (each but the last halves the resolution).
        lr: Adam learning rate.
        dropout: dropout before the linear head.
        attack_epsilon: radius of the attack's ball in model-input units, ``> 0``.
        attack_norm: ``"l2"`` or ``"linf"``.
        attack_steps: PGD steps per attack.
        attack_step_size: PGD step length; default ``2.5 * attack_epsilon / attack_steps``.
        attack_bounds: ``(low, high)`` box of valid model inputs (e.g. ``(0.0, 1.0)`` for pixels); None: no box.
        clean_weight: weight in ``[0, 1]`` of the clean cross-entropy in the training loss.
        robust_validation: also log ``val/robust_acc``.
        attack_seed: base seed of the attacks' random starts.

    Raises:
        TypeError: if ``robust_validation`` is not a bool, or ``attack_seed`` or ``attack_steps`` not an int.
        ValueError: if an attack option or ``clean_weight`` is out of range.

    Example:
        >>> import torch
        >>> model = AdversarialCNNClassifier(num_classes=2, width=4, depth=2, attack_epsilon=0.5, attack_steps=3)
        >>> x, y = torch.rand(4, 1, 8, 8), torch.tensor([0, 1, 0, 1])
        >>> adversarial, flipped = model.attack(x, y)
        >>> bool(((adversarial - x).flatten(1).norm(dim=1) <= 0.5 + 1e-6).all()), flipped.shape
        (True, torch.Size([4]))
    """

    def __init__(
        self,
        in_channels: int = 1,
        num_classes: int = 4,
        width: int = 16,
        depth: int = 3,
        lr: float = 3e-3,
        dropout: float = 0.0,
        attack_epsilon: float = 1.5,
        attack_norm: Norm = "l2",
        attack_steps: int = 7,
        attack_step_size: Optional[float] = None,
        attack_bounds: Optional[tuple[float, float]] = None,
        clean_weight: float = 0.0,
        robust_validation: bool = False,
        attack_seed: int = 0,
    ) -> None:
        attack_bounds = _check_options(
            attack_epsilon, attack_norm, attack_steps, attack_step_size, attack_bounds, clean_weight, robust_validation,
            attack_seed,
        )
        super().__init__(
            in_channels=in_channels, num_classes=num_classes, width=width, depth=depth, lr=lr, dropout=dropout
        )
        self.save_hyperparameters()

    def attack(self, images: Tensor, labels: Tensor, seed: Optional[int] = None) -> tuple[Tensor, Tensor]:
        """PGD adversarial examples with the model's attack options (eval mode; modes, buffers and ``.grad`` kept).

        Args:
            images: model inputs ``[N, C, H, W]``.
            labels: true classes ``[N]``.
            seed: seed of the random start; default ``attack_seed``.

        Returns:
            ``(adversarial, flipped)`` as returned by :func:`~iaside_lightning.functional.pgd_attack`.
        """
        hp = self.hparams
        return pgd_attack(
            self,
            images,
            labels,
            hp.attack_epsilon,
            norm=hp.attack_norm,
            steps=hp.attack_steps,
            step_size=2.5 * hp.attack_epsilon / hp.attack_steps if hp.attack_step_size is None else hp.attack_step_size,
            bounds=hp.attack_bounds,
            seed=hp.attack_seed if seed is None else seed,
        )

    def training_step(self, batch: Any, batch_idx: int) -> Tensor:
        x, y = batch[0], batch[1]
        adversarial, flipped = self.attack(x, y, seed=self.hparams.attack_seed + self.global_step)
        weight = self.hparams.clean_weight
        if weight == 1:  # exactly the standard loss, and BatchNorm sees the same forward passes
            loss = nn.functional.cross_entropy(self(x), y)
        elif weight == 0:
            loss = nn.functional.cross_entropy(self(adversarial), y)
        else:
            clean_loss = nn.functional.cross_entropy(self(x), y)
            loss = weight * clean_loss + (1 - weight) * nn.functional.cross_entropy(self(adversarial), y)
        self.log("train/loss", loss, prog_bar=True)
        self.log("train/adv_acc", 1 - flipped.float().mean())
        return loss

    def validation_step(self, batch: Any, batch_idx: int) -> Tensor:
        loss = super().validation_step(batch, batch_idx)
        if self.hparams.robust_validation:
            _, flipped = self.attack(batch[0], batch[1], seed=self.hparams.attack_seed + batch_idx)
            self.log("val/robust_acc", 1 - flipped.float().mean(), prog_bar=True)
        return loss


def _check_options(
    epsilon: float,
    norm: str,
    steps: int,
    step_size: Optional[float],
    bounds: Optional[tuple[float, float]],
    clean_weight: float,
    robust_validation: bool,
    seed: int,
) -> Optional[tuple[float, float]]:
    """Validate the attack and loss options; return ``bounds`` as a tuple (or None), as saved in the hyperparameters."""
    check_attack_options(epsilon, norm, steps, step_size, prefix="attack_")
    if epsilon == 0:
        raise ValueError("`attack_epsilon` must be positive: an attack of radius 0 trains on the clean images.")
    if bounds is not None:
        check_bounds(bounds, name="attack_bounds")
        bounds = tuple(bounds)
    if isinstance(clean_weight, bool) or not isinstance(clean_weight, (int, float)) or not 0 <= clean_weight <= 1:
        raise ValueError(f"`clean_weight` must be a number in [0, 1] (weight of the clean loss), got {clean_weight!r}.")
    if not isinstance(robust_validation, bool):
        raise TypeError(f"`robust_validation` must be a bool, got {robust_validation!r}.")
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise TypeError(f"`attack_seed` must be an integer, got {seed!r}.")
    return bounds
