"""Option docs are written once per sub-system and reach every entry point's docstring (so ``help()``, the API docs
and LightningCLI's ``--help`` agree); the shared decorator refuses a docstring without a place for them."""

from collections.abc import Callable, Mapping
from typing import Any

import pytest

from iaside_lightning import BoundaryMonitor, DiffROARCallback, SpectralImportance, SpectralRobustnessMonitor
from iaside_lightning.evaluation import DiffROAROptions, diffroar, diffroar_proxy
from iaside_lightning.functional import (
    BoundaryGeometryOptions,
    BoundarySearchOptions,
    boundary_geometry,
    boundary_search,
    spectral_shapley,
)
from iaside_lightning.functional.boundary.options import BOUNDARY_OPTION_DOCS
from iaside_lightning.functional.option_docs import option_documenter
from iaside_lightning.functional.sanity.options import DIFFROAR_OPTION_DOCS
from iaside_lightning.functional.spectral.options import OPTION_DOCS


def _documented(doc: str, name: str, text: str) -> bool:
    """Whether ``doc`` has the entry ``name: text`` (wrapping and indentation aside)."""
    return f"{name}: {text}" in " ".join(doc.split())


@pytest.mark.parametrize(
    ("docs", "entry_points", "names"),
    [
        (OPTION_DOCS, [spectral_shapley, SpectralImportance, SpectralRobustnessMonitor], ["num_bands", "band_edges"]),
        (DIFFROAR_OPTION_DOCS, [diffroar, DiffROARCallback, DiffROAROptions], list(DIFFROAR_OPTION_DOCS)),
        (DIFFROAR_OPTION_DOCS, [diffroar_proxy], ["levels", "per", "fill", "batch_size"]),
        (BOUNDARY_OPTION_DOCS, [boundary_search, BoundarySearchOptions], ["epsilons", "step_size_factor", "seed"]),
        (BOUNDARY_OPTION_DOCS, [boundary_geometry, BoundaryMonitor], ["preset", "epsilons", "ig_steps", "seed"]),
        (BOUNDARY_OPTION_DOCS, [BoundaryGeometryOptions], ["ig_steps"]),
    ],
)
def test_each_entry_point_shows_the_one_doc_of_its_options(
    docs: Mapping[str, str], entry_points: list[Callable[..., Any]], names: list[str]
) -> None:
    for entry_point in entry_points:
        doc = entry_point.__doc__ or ""
        assert "{options}" not in doc
        for name in names:
            assert _documented(doc, name, docs[name]), (entry_point, name)


def test_the_decorator_needs_a_placeholder_and_known_names() -> None:
    document = option_documenter({"seed": "seed of the draws."})

    def undocumented() -> None:
        """No Args section."""

    with pytest.raises(ValueError, match="no '\\{options\\}' line"):
        document("seed")(undocumented)
    with pytest.raises(ValueError, match="No option doc for \\['sede'\\]"):
        document("sede")


def test_long_docs_wrap_under_their_name() -> None:
    document = option_documenter({"levels": "word " * 40})

    def f() -> None:
        """F.

        Args:
            {options}
        """

    first, *rest = (document("levels")(f).__doc__ or "").splitlines()[3:-1]
    indent = first[: len(first) - len(first.lstrip())]
    assert first.lstrip().startswith("levels: word") and rest
    assert all(line.startswith(indent + "    word") for line in rest)
    assert all(len(line) <= 116 for line in (first, *rest))
