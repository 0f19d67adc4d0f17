"""The boundary options objects: validation messages, immutability, presets, and one construction per call."""

import dataclasses
from typing import Any

import pytest
import torch

import iaside_lightning.functional.boundary.options as options_module
from iaside_lightning import BoundaryMonitor
from iaside_lightning.functional import (
    BOUNDARY_PRESETS,
    PAPER_EPSILONS,
    BoundaryGeometryOptions,
    BoundarySearchOptions,
    boundary_geometry,
    boundary_search,
)
from iaside_lightning.functional.attacks import check_attack_options, check_bounds
from iaside_lightning.functional.boundary.geometry import run_boundary_geometry
from iaside_lightning.functional.boundary.search import run_boundary_search
from iaside_lightning.models import SmallCNNClassifier

pytestmark = pytest.mark.usefixtures("single_thread")

BAD_OPTIONS = [
    ({"epsilons": []}, ValueError, "`epsilons` must be a non-empty, strictly ascending"),
    ({"epsilons": [0.5, 0.2]}, ValueError, "`epsilons` must be"),
    ({"epsilons": [0.0, 1.0]}, ValueError, "`epsilons` must be"),
    ({"epsilons": ["a"]}, ValueError, "`epsilons` must be"),
    ({"epsilons": 1.0}, ValueError, "`epsilons` must be"),
    ({"norm": "l1"}, ValueError, "`norm` must be 'l2' or 'linf', got 'l1'"),
    ({"steps": 0}, ValueError, "`steps` must be a positive integer, got 0"),
    ({"steps": 2.0}, TypeError, "`steps` must be a positive integer: pass an int, got float 2.0"),
    ({"bisection_steps": -1}, ValueError, "`bisection_steps` must be a non-negative integer, got -1"),
    ({"bisection_steps": True}, TypeError, "`bisection_steps` must be a non-negative integer: pass an int"),
    ({"step_size_factor": 0}, ValueError, r"`step_size_factor` must be a positive number \(step = factor"),
    ({"bounds": (1.0, 0.0)}, ValueError, r"`bounds` must be a pair \(low, high\)"),
    ({"bounds": (0.0, 1.0, 2.0)}, ValueError, "`bounds` must be a pair"),
    ({"bounds": ("0", "1")}, ValueError, "`bounds` must be a pair"),
    ({"random_start": 1}, TypeError, "`random_start` must be True or False, got 1"),
    ({"seed": 1.5}, TypeError, "`seed` must be an integer, got 1.5"),
]


@pytest.mark.parametrize(("kwargs", "error", "match"), BAD_OPTIONS)
def test_search_options_name_the_bad_argument(kwargs: dict[str, Any], error: type, match: str) -> None:
    with pytest.raises(error, match=match):
        BoundarySearchOptions(**kwargs)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"), [*BAD_OPTIONS, ({"ig_steps": 1}, ValueError, "`ig_steps` must be an integer >= 2")]
)
def test_the_functions_the_monitor_and_the_options_share_one_message(
    kwargs: dict[str, Any], error: type, match: str
) -> None:
    with pytest.raises(error, match=match) as direct:
        BoundaryGeometryOptions(**kwargs)
    model, x = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(16, 2)), torch.rand(2, 1, 4, 4)
    messages = {str(direct.value)}
    if "ig_steps" not in kwargs:
        with pytest.raises(error) as search:
            boundary_search(model, x, torch.zeros(2, dtype=torch.long), **kwargs)
        messages.add(str(search.value))
    if "step_size_factor" not in kwargs:  # the geometry and the monitor take the preset's factor
        with pytest.raises(error) as geometry:
            boundary_geometry(model, x, torch.zeros(2, dtype=torch.long), **kwargs)
        messages.add(str(geometry.value))
    if not {"step_size_factor", "random_start"} & kwargs.keys():  # options the monitor does not expose
        with pytest.raises(error) as monitor:
            BoundaryMonitor(**kwargs)
        messages.add(str(monitor.value))
    assert len(messages) == 1


def test_options_are_frozen_and_normalised() -> None:
    options = BoundarySearchOptions(epsilons=[1, 2.5], bounds=[0, 1])
    assert options.epsilons == (1.0, 2.5) and all(isinstance(e, float) for e in options.epsilons)
    assert options.bounds == (0, 1)
    with pytest.raises(dataclasses.FrozenInstanceError):
        options.steps = 3  # type: ignore[misc]
    assert BoundarySearchOptions().epsilons == PAPER_EPSILONS


def test_replace_validates_the_copy() -> None:
    options = BoundaryGeometryOptions()
    assert dataclasses.replace(options, steps=4).steps == 4 and options.steps == 40
    with pytest.raises(ValueError, match="`ig_steps`"):
        dataclasses.replace(options, ig_steps=0)


def test_presets_and_overrides() -> None:
    assert BOUNDARY_PRESETS["paper"] == BoundaryGeometryOptions()
    fast = BOUNDARY_PRESETS["fast"]
    assert (fast.epsilons, fast.steps, fast.random_start, fast.bisection_steps, fast.ig_steps) == (
        (1.0, 2.0, 4.0, 8.0), 8, False, 8, 10
    )
    assert BoundaryGeometryOptions.from_preset("fast") == fast
    tuned = BoundaryGeometryOptions.from_preset("paper", steps=3, random_start=False, bounds=(0, 1), seed=5)
    assert (tuned.steps, tuned.random_start, tuned.bounds, tuned.seed) == (3, False, (0, 1), 5)
    assert tuned.epsilons == PAPER_EPSILONS
    with pytest.raises(ValueError, match=r"`preset` must be one of \['fast', 'paper'\], got 'slow'"):
        BoundaryGeometryOptions.from_preset("slow")  # type: ignore[arg-type]


def test_the_typed_entries_refuse_anything_else() -> None:
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(16, 2))
    x, y = torch.rand(2, 1, 4, 4), torch.zeros(2, dtype=torch.long)
    with pytest.raises(TypeError, match="`options` must be a BoundarySearchOptions, got dict"):
        run_boundary_search(model, x, y, {"steps": 3})  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="`options` must be a BoundaryGeometryOptions, got BoundarySearchOptions"):
        run_boundary_geometry(model, x, y, BoundarySearchOptions())  # type: ignore[arg-type]


def test_the_attack_checks_name_prefixed_arguments() -> None:
    with pytest.raises(ValueError, match="`attack_steps` must be a positive integer"):
        check_attack_options(1.0, "l2", 0, prefix="attack_")
    with pytest.raises(ValueError, match="`attack_bounds` must be a pair"):
        check_bounds((1.0, 0.0), name="attack_bounds")


@pytest.fixture()
def construction_count(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """How many options objects were built (each validates its attack options once)."""
    calls: list[int] = []
    check = options_module.check_attack_options

    def counting(*args: Any, **kwargs: Any) -> None:
        calls.append(1)
        check(*args, **kwargs)

    monkeypatch.setattr(options_module, "check_attack_options", counting)
    return calls


def test_each_public_call_builds_its_options_once(construction_count: list[int]) -> None:
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(16, 2))
    x = torch.rand(3, 1, 4, 4)
    y = model(x).argmax(1)
    boundary_search(model, x, y, epsilons=[1.0, 8.0], steps=3)
    assert len(construction_count) == 1
    boundary_geometry(model, x, y, epsilons=[1.0, 8.0], steps=3)
    assert len(construction_count) == 2


def test_the_monitor_builds_its_options_once_at_construction(construction_count: list[int]) -> None:
    monitor = BoundaryMonitor(num_probes=2, epsilons=(4.0, 16.0), steps=2, log_images=False)
    assert len(construction_count) == 1 and monitor.options.epsilons == (4.0, 16.0)
    module = SmallCNNClassifier(in_channels=1, num_classes=2, width=4, depth=2)
    x = torch.rand(2, 1, 8, 8)
    monitor.probes = (x, torch.tensor([0, 1]), None)
    result = monitor._measure(module)
    assert result is not None and result.big.shape == x.shape
    assert len(construction_count) == 1  # measuring reuses the object
