"""States of ``SpectralImportance`` that merge, load and save only between metrics with the same settings."""

from typing import Any, Union

import torch
from torchmetrics import Metric

from iaside_lightning.functional.spectral.options import SpectralOptions

__all__ = ["BATCHES_KEY", "CheckedSpectralStates"]

BATCHES_KEY = "batches_seen"  # the batch counter's key in a state dict, beside the persistent states


class CheckedSpectralStates(Metric):
    """Base of :class:`~iaside_lightning.metrics.SpectralImportance`: its sum states merge (``merge_state``) and load
    (``load_state_dict``) only from a metric with the same settings, and the batch counter ``_batches`` that derives
    the per-batch seeds is saved beside persistent states. Arithmetic between metrics is refused.

    Subclasses set ``options`` (a :class:`~iaside_lightning.functional.spectral.options.SpectralOptions`),
    ``estimator``, ``_batches`` and the states, including ``image_size``.
    """

    options: SpectralOptions
    estimator: str
    _batches: int

    def merge_state(self, incoming_state: Union[dict[str, Any], Metric]) -> None:
        """Add the states of another ``SpectralImportance`` (or a dict of states) to this one's.

        Raises:
            ValueError: if the other metric has other settings (``num_bands``, ``fill``, ``value``, ``band_shape``,
                ``band_edges``, ``estimator``, ``normalization``), if a state of the dict has another shape than
                this metric's, or if the states were accumulated on images of another size.
        """
        if isinstance(incoming_state, CheckedSpectralStates):
            ours, theirs = self.options.state_settings(), incoming_state.options.state_settings()
            for name, setting in ours.items():
                if theirs[name] != setting:
                    raise ValueError(
                        f"Cannot merge a SpectralImportance with {name}={theirs[name]!r} into one with "
                        f"{name}={setting!r}: their states do not add up. Merge only metrics with the same settings."
                    )
            states: dict[str, Any] = incoming_state.metric_state
        elif isinstance(incoming_state, dict):
            states = incoming_state
        else:  # torchmetrics' own error for other metrics and types
            super().merge_state(incoming_state)
            return
        self._check_state_shapes(states, "merge")
        seen = tuple(int(s) for s in self.image_size)
        other = tuple(int(s) for s in states.get("image_size", self.image_size))
        if (0, 0) not in (seen, other) and seen != other:
            raise ValueError(
                f"Cannot merge states accumulated on {other[0]}x{other[1]} images into ones of {seen[0]}x{seen[1]} "
                "images: the bands depend on the image size. Use one metric per size."
            )
        super().merge_state(states)

    def _check_state_shapes(self, states: dict[str, Any], action: str) -> None:
        """Raise a clear error if a state of ``states`` has another shape than this metric's (other ``num_bands``)."""
        for name in self._defaults:
            if name not in states:
                continue
            expected, got = tuple(getattr(self, name).shape), tuple(torch.as_tensor(states[name]).shape)
            if got != expected:
                raise ValueError(
                    f"Cannot {action} state `{name}` of shape {got} into a SpectralImportance with "
                    f"num_bands={self.options.num_bands} and estimator={self.estimator!r}, whose `{name}` has shape "
                    f"{expected}: the state comes from a metric with another `num_bands` (or estimator). Use the same settings."
                )

    def _save_to_state_dict(self, destination: dict[str, Any], prefix: str, keep_vars: bool) -> None:
        """Save the persistent states and, with them, the batch counter that derives the per-batch seeds."""
        super()._save_to_state_dict(destination, prefix, keep_vars)
        if any(self._persistent.values()):
            destination[prefix + BATCHES_KEY] = torch.tensor(self._batches, dtype=torch.int64)

    def _load_from_state_dict(
        self,
        state_dict: dict[str, Any],
        prefix: str,
        local_metadata: dict[str, Any],
        strict: bool,
        missing_keys: list[str],
        unexpected_keys: list[str],
        error_msgs: list[str],
    ) -> None:
        """Check the shapes of saved states (``persistent(True)``) before torchmetrics loads them; restore the
        batch counter when the state dict has it."""
        self._check_state_shapes(
            {name: state_dict[prefix + name] for name in self._defaults if prefix + name in state_dict}, "load"
        )
        super()._load_from_state_dict(
            state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys, error_msgs
        )
        key = prefix + BATCHES_KEY
        if key in state_dict:
            self._batches = int(state_dict[key])
            if key in unexpected_keys:
                unexpected_keys.remove(key)

    def _refuse_arithmetic(self, *_: Any) -> None:
        raise TypeError(
            "SpectralImportance computes a SpectralShapleyResult, not a number, so metrics cannot be added or "
            "multiplied: pool two metrics' samples with `merge_state`, or combine fields of their results (e.g. "
            "`a.compute().srs - b.compute().srs`)."
        )

    __add__ = __radd__ = __sub__ = __rsub__ = __mul__ = __rmul__ = __truediv__ = __rtruediv__ = _refuse_arithmetic
