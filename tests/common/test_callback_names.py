"""Callback names and key prefixes: validated at construction, and distinct state keys for distinct instances."""

from typing import Any, Callable

import pytest

from iaside_lightning import BoundaryMonitor, DiffROARCallback, SpectralRobustnessMonitor
from iaside_lightning.callbacks.diffroar_callback import _nth

MAKERS: dict[str, Callable[[str], Any]] = {
    "spectral": lambda prefix: SpectralRobustnessMonitor(log_prefix=prefix),
    "boundary": lambda prefix: BoundaryMonitor(log_prefix=prefix),
    "diffroar": lambda prefix: DiffROARCallback(every_n_epochs=1, log_prefix=prefix),
}


@pytest.mark.parametrize("kind", MAKERS)
@pytest.mark.parametrize("prefix", ["../spectral/", "a/../../b", "/abs/", "win\\dows/"])
def test_prefixes_that_leave_the_log_directory_fail_at_construction(kind: str, prefix: str) -> None:
    with pytest.raises(ValueError, match="outside the log directory"):
        MAKERS[kind](prefix)


@pytest.mark.parametrize("kind", MAKERS)
def test_usable_prefixes_are_kept(kind: str) -> None:
    assert MAKERS[kind]("val/run_1/") is not None


def test_two_diffroar_callbacks_get_their_own_state_keys() -> None:
    first, second = DiffROARCallback(every_n_epochs=1), DiffROARCallback(every_n_epochs=1, log_prefix="other/")
    third = DiffROARCallback(every_n_epochs=1, dataloader_idx=1)
    assert len({first.state_key, second.state_key, third.state_key}) == 3


def test_diffroar_dataloader_index_is_checked_against_the_trainers_loaders() -> None:
    assert _nth(["a", "b"], 1) == "b" and _nth("only", 0) == "only"
    with pytest.raises(ValueError, match="2 validation dataloaders"):
        _nth(["a", "b"], 2)
    with pytest.raises(ValueError, match="single validation dataloader"):
        _nth("only", 1)
    with pytest.raises(ValueError, match="`dataloader_idx`"):
        DiffROARCallback(every_n_epochs=1, dataloader_idx=-1)
