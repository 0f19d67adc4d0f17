"""``iaside-lightning fit --config configs/quickstart.yaml`` (the console script installed with the package, the
same as ``python -m iaside_lightning.cli fit --config configs/quickstart.yaml``): LightningCLI for any model and data.

Every class (model, data module, callbacks, loggers) is chosen by ``class_path`` in the YAML config, so the
:class:`~iaside_lightning.SpectralRobustnessMonitor` can be wired into any project's config.
"""

from lightning.pytorch.cli import LightningCLI

__all__ = ["main"]


def main() -> None:
    """Run LightningCLI with subclass mode for the model and the data module."""
    LightningCLI(subclass_mode_model=True, subclass_mode_data=True, save_config_kwargs={"overwrite": True})


if __name__ == "__main__":
    main()
