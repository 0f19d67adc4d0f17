"""DiffROAROptions: checked once at the public boundary (diffroar, diffroar_proxy, DiffROARCallback), frozen, and the
callback's flat arguments still parsed and documented by LightningCLI's parser."""

import dataclasses
import io
from typing import Any

import pytest
import torch
from jsonargparse import ArgumentParser

import iaside_lightning.evaluation
import iaside_lightning.plotting
from iaside_lightning import DiffROARCallback
from iaside_lightning.evaluation import DiffROAROptions, diffroar, diffroar_proxy
from iaside_lightning.functional.sanity.options import DEFAULT_LEVELS


def test_defaults_and_normalised_fields() -> None:
    options = DiffROAROptions()
    assert options.levels == DEFAULT_LEVELS and options.repeats == 2 and options.per == "coordinate"
    assert options.fill == "mean" and options.metric == "val/acc" and options.trainer_kwargs == {}
    assert options.batch_size == 128 and options.seed == 0 and options.progress is True
    given = {"max_epochs": 2}
    options = DiffROAROptions(levels=[0, torch.tensor(0.5), 1], trainer_kwargs=given)
    assert options.levels == (0.0, 0.5, 1.0) and all(type(k) is float for k in options.levels)
    given["max_epochs"] = 7  # the options keep their own copy
    assert options.trainer_kwargs == {"max_epochs": 2}


def test_options_are_frozen_and_replace_checks_again() -> None:
    options = DiffROAROptions(levels=(0.1, 0.5))
    with pytest.raises(dataclasses.FrozenInstanceError):
        options.levels = (0.2,)  # type: ignore[misc]
    assert dataclasses.replace(options, repeats=3).levels == (0.1, 0.5)
    with pytest.raises(ValueError, match="`levels`"):
        dataclasses.replace(options, levels=(0.5, 0.1))


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"levels": ()}, ValueError, "`levels` must be strictly increasing fractions unmasked in [0, 1]"),
        ({"levels": (0.5, 0.2)}, ValueError, "`levels` must be strictly increasing"),
        ({"levels": (0.5, 1.2)}, ValueError, "`levels` must be strictly increasing"),
        ({"levels": "0.5"}, ValueError, "`levels` must be strictly increasing"),
        ({"repeats": 0}, ValueError, "`repeats` must be a positive integer, got 0."),
        ({"repeats": 1.5}, TypeError, "`repeats` must be a positive integer: pass an int, got float 1.5."),
        ({"per": "channel"}, ValueError, "`per` must be 'coordinate' (each C*H*W value) or 'pixel'"),
        ({"fill": "median"}, ValueError, "`fill` must be 'mean', a number or a per-channel tensor [C], got 'median'."),
        ({"fill": torch.zeros(2, 2)}, ValueError, "`fill` must be a number or one value per channel [C]"),
        ({"fill": [0.0]}, TypeError, "`fill` must be a number or a tensor of one value per channel, got list."),
        ({"fill": True}, TypeError, "`fill` must be a number or a tensor"),
        ({"metric": 3}, TypeError, "`metric` must be the key the model logs its validation accuracy under"),
        ({"metric": ""}, ValueError, "`metric` is empty"),
        ({"trainer_kwargs": [("max_epochs", 1)]}, TypeError, "`trainer_kwargs` must be a dict of Trainer arguments"),
        ({"batch_size": 0}, ValueError, "`batch_size` must be a positive integer"),
        ({"seed": 1.5}, TypeError, "`seed` must be an integer, got 1.5."),
        ({"seed": True}, TypeError, "`seed` must be an integer"),
        ({"progress": "yes"}, TypeError, "`progress` must be True or False, got 'yes'."),
    ],
)
def test_invalid_options_name_the_argument_and_the_fix(kwargs: dict[str, Any], error: type, message: str) -> None:
    with pytest.raises(error) as info:
        DiffROAROptions(**kwargs)
    assert message in str(info.value)


def test_public_functions_check_their_options_before_any_work() -> None:
    images, labels = torch.rand(4, 1, 2, 2), torch.arange(4) % 2

    def factory() -> None:
        raise AssertionError("no model may be built with invalid options")

    with pytest.raises(ValueError, match="`per`"):
        diffroar(factory, (images, labels), (images, labels), images, images, per="channel", progress=False)
    with pytest.raises(ValueError, match="`levels`"):
        diffroar_proxy(torch.nn.Flatten(), images, labels, images, levels=(1.0, 0.5))


def test_callback_builds_its_options_once_at_construction() -> None:
    callback = DiffROARCallback(every_n_epochs=1, levels=[0.2, 0.4], proxy_levels=[0.1], fill=0.0, batch_size=32)
    assert isinstance(callback.options, DiffROAROptions) and callback.options.levels == (0.2, 0.4)
    assert callback.proxy_options.levels == (0.1,)
    assert callback.proxy_options.fill == 0.0 and callback.proxy_options.batch_size == 32
    with pytest.raises(ValueError, match="`proxy_levels`"):
        DiffROARCallback(every_n_epochs=1, proxy_levels=(0.5, 0.1))
    with pytest.raises(ValueError, match="`fill`"):
        DiffROARCallback(every_n_epochs=1, fill="median")
    with pytest.raises(ValueError, match="`attribution`"):
        DiffROARCallback(every_n_epochs=1, attribution="saliency")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="`model_factory`"):
        DiffROARCallback("SmallCNNClassifier")  # type: ignore[arg-type]


@pytest.mark.filterwarnings("ignore:(?s).*(instantiate_classes|JsonargparseDeprecationWarning):DeprecationWarning")
def test_callback_options_parse_and_are_documented_as_lightning_cli_sees_them() -> None:
    parser = ArgumentParser()
    parser.add_class_arguments(DiffROARCallback, "callback")
    config = parser.parse_args(
        ["--callback.every_n_epochs=1", "--callback.levels=[0.1, 0.5]", "--callback.fill=0.0",
         "--callback.per=pixel"]
    )  # fmt: skip
    callback = parser.instantiate_classes(config).callback
    assert callback.options.levels == (0.1, 0.5) and callback.options.per == "pixel" and callback.options.fill == 0.0
    text = io.StringIO()
    parser.print_help(text)
    for option in ("levels", "repeats", "per", "fill", "metric", "trainer_kwargs", "batch_size", "seed", "progress",
                   "proxy_levels", "every_n_epochs", "max_samples", "log_prefix"):  # fmt: skip
        assert f"--callback.{option} " in text.getvalue()
    assert "fractions unmasked" in text.getvalue()


def test_plot_diffroar_lives_in_plotting_and_is_still_exported_by_evaluation() -> None:
    assert iaside_lightning.evaluation.plot_diffroar is iaside_lightning.plotting.plot_diffroar
