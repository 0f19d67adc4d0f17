"""The audit's cost inside a real Lightning fit: the same fit with and without ``MemorizationAudit`` at its defaults.

Not an example itself (see ``memorization.py``). Both fits train the study's model (width 32) on noisy MNIST-5k for
the same epochs with the same seed; ``MemorizationAudit()`` (512 probes, 7 cut-offs, every 5 epochs) is the only
difference. Fits alternate (without, with, without, with, ...) so that a change in the machine's load hits both.
"""

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from lightning.pytorch import Trainer, seed_everything

from iaside_lightning import MemorizationAudit
from iaside_lightning.datasets import MNIST5kDataModule
from iaside_lightning.models import SmallCNNClassifier

__all__ = ["measure_cost"]


def _fit_seconds(with_audit: bool, epochs: int, width: int) -> float:
    seed_everything(0, verbose=False)
    data = MNIST5kDataModule(batch_size=32, num_val=1000, label_noise=0.4, noise_seed=0)
    callbacks = [MemorizationAudit(normalization=data.normalization)] if with_audit else []
    trainer = Trainer(
        max_epochs=epochs, accelerator="cpu", logger=False, enable_checkpointing=False, enable_progress_bar=False,
        enable_model_summary=False, num_sanity_val_steps=0, limit_val_batches=0, callbacks=callbacks,
    )
    start = time.perf_counter()
    trainer.fit(SmallCNNClassifier(in_channels=1, num_classes=10, width=width, lr=3e-3), datamodule=data)
    return time.perf_counter() - start


def measure_cost(
    out_dir: Path, log: Callable[[str], None], epochs: int = 10, width: int = 32, repeats: int = 2
) -> dict[str, Any]:
    """Fit times with and without the audit; written to ``out_dir/cost.json``."""
    times: dict[str, list[float]] = {"without": [], "with": []}
    for _ in range(repeats):
        for key in ("without", "with"):
            times[key].append(_fit_seconds(key == "with", epochs, width))
            log(f"cost: {epochs} epochs {key} the audit: {times[key][-1]:.1f} s")
    best = {key: min(values) for key, values in times.items()}
    result = {"epochs": epochs, "width": width, "seconds": times, "overhead": best["with"] / best["without"] - 1}
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "cost.json").write_text(json.dumps(result, indent=1))
    log(f"cost: the audit added {100 * result['overhead']:.1f}% to the fit time (best of {repeats} each)")
    return result
