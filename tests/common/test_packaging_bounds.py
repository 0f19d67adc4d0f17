"""The lower bounds that pyproject.toml declares are the versions scripts/minimum_versions.txt pins and tests."""

from importlib.metadata import requires
from pathlib import Path

from packaging.requirements import Requirement
from packaging.version import Version

PINS = Path(__file__).resolve().parents[2] / "scripts" / "minimum_versions.txt"


def _declared_lower_bounds() -> dict[str, Version]:
    bounds = {}
    for text in requires("iaside-lightning") or []:
        requirement = Requirement(text)
        if requirement.name == "iaside-lightning":  # the dev extra pulls in the other extras
            continue
        lower = [Version(spec.version) for spec in requirement.specifier if spec.operator == ">="]
        assert lower, f"{text!r} declares no lower bound: give it one and pin it in {PINS.name}"
        bounds[_name(requirement.name)] = max(lower)
    return bounds


def _pins() -> dict[str, Version]:
    pins = {}
    for line in PINS.read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, version = line.split("==")
            pins[_name(name)] = Version(version)
    return pins


def _name(name: str) -> str:
    return name.lower().replace("_", "-")


def test_every_declared_lower_bound_is_the_pinned_tested_version() -> None:
    bounds, pins = _declared_lower_bounds(), _pins()
    assert {"torch", "lightning", "torchmetrics", "wandb", "pytest"} <= bounds.keys()
    assert bounds.keys() == pins.keys(), f"declared but not pinned: {bounds.keys() - pins.keys()}; pinned but not declared: {pins.keys() - bounds.keys()}"
    differ = {name: (str(bounds[name]), str(pins[name])) for name in bounds if bounds[name] != pins[name]}
    assert not differ, f"pyproject.toml's lower bound and the tested pin differ (bound, pin): {differ}"
