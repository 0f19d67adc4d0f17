"""One exception type per kind of mistake for integer options: a wrong type is a ``TypeError``, a wrong value a
``ValueError``, with one wording, wherever the option is (functional options, metrics, monitors)."""

from collections.abc import Callable
from typing import Any

import pytest

from iaside_lightning.callbacks import BoundaryMonitor, DiffROARCallback, SpectralRobustnessMonitor
from iaside_lightning.datasets.synthetic_digits import make_synthetic_digits
from iaside_lightning.functional.boundary.options import BoundarySearchOptions
from iaside_lightning.functional.checks import check_non_negative_int, check_positive_int
from iaside_lightning.functional.sanity.options import DiffROAROptions
from iaside_lightning.metrics import SpectralImportance

WRONG_TYPES = [1.5, 2.0, True, False, "4", None]


@pytest.mark.parametrize("value", WRONG_TYPES)
def test_a_wrong_type_is_a_type_error(value: object) -> None:
    with pytest.raises(TypeError, match=rf"`repeats` must be a positive integer: pass an int, got {type(value).__name__}"):
        check_positive_int(value, "repeats")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"`dataloader_idx` must be a non-negative integer: pass an int"):
        check_non_negative_int(value, "dataloader_idx")  # type: ignore[arg-type]


def test_a_wrong_value_is_a_value_error_and_valid_ints_pass() -> None:
    for value in (0, -1):
        with pytest.raises(ValueError, match=rf"`repeats` must be a positive integer, got {value}\."):
            check_positive_int(value, "repeats")
    with pytest.raises(ValueError, match=r"`max_samples` must be a positive integer or None \(all samples\), got 0"):
        check_positive_int(0, "max_samples", none="all samples")
    with pytest.raises(ValueError, match=r"`dataloader_idx` must be a non-negative integer, got -1\."):
        check_non_negative_int(-1, "dataloader_idx")
    check_positive_int(1, "repeats")
    check_non_negative_int(0, "dataloader_idx")


@pytest.mark.parametrize(
    ("make", "argument"),
    [
        (lambda v: SpectralRobustnessMonitor(every_n_epochs=v), "every_n_epochs"),
        (lambda v: SpectralRobustnessMonitor(max_samples=v), "max_samples"),
        (lambda v: BoundaryMonitor(every_n_epochs=v), "every_n_epochs"),
        (lambda v: BoundaryMonitor(num_probes=v), "num_probes"),
        (lambda v: BoundaryMonitor(num_images=v), "num_images"),
        (lambda v: DiffROARCallback(every_n_epochs=v), "every_n_epochs"),
        (lambda v: DiffROARCallback(every_n_epochs=1, max_samples=v), "max_samples"),
        (lambda v: SpectralImportance(chunk_size=v), "chunk_size"),
        (lambda v: SpectralImportance(forward_batch_size=v), "forward_batch_size"),
        (lambda v: DiffROAROptions(repeats=v), "repeats"),
        (lambda v: BoundarySearchOptions(steps=v), "steps"),
    ],
)
def test_every_positive_integer_option_follows_the_rule(make: Callable[[Any], object], argument: str) -> None:
    with pytest.raises(TypeError, match=rf"`{argument}` must be a positive integer.*: pass an int, got float 1.5"):
        make(1.5)
    with pytest.raises(ValueError, match=rf"`{argument}` must be a positive integer.*, got 0"):
        make(0)


@pytest.mark.parametrize(
    "make",
    [
        lambda v: SpectralRobustnessMonitor(dataloader_idx=v),
        lambda v: BoundaryMonitor(dataloader_idx=v),
        lambda v: DiffROARCallback(every_n_epochs=1, dataloader_idx=v),
        lambda v: BoundarySearchOptions(bisection_steps=v),
    ],
)
def test_every_non_negative_integer_option_follows_the_rule(make: Callable[[Any], object]) -> None:
    with pytest.raises(TypeError, match=r"must be a non-negative integer: pass an int, got bool True"):
        make(True)
    with pytest.raises(ValueError, match=r"must be a non-negative integer, got -1"):
        make(-1)


def test_an_optional_schedule_offers_none() -> None:
    with pytest.raises(TypeError, match=r"`every_n_epochs` must be a positive integer or None \(never\): pass an int"):
        DiffROARCallback(every_n_epochs="2")


@pytest.mark.parametrize("bad", [0, 1.5, True])
def test_dataset_sizes_use_the_shared_check(bad: object) -> None:
    error = ValueError if bad == 0 and not isinstance(bad, bool) else TypeError
    with pytest.raises(error, match="`num_per_class` must be a positive integer"):
        make_synthetic_digits(bad)  # type: ignore[arg-type]
