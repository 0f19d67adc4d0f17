"""Report of the label-noise study: scores per run, across seeds, before and after memorisation, and ring vs linear
band edges, written to ``report.md`` and ``summary.json`` (figures: ``_label_noise_figures.py``).

Not an example itself (see ``label_noise.py``). Every score is recomputed from the per-sample coalition values a run
saved, with :func:`~iaside_lightning.functional.spectral.result.compute_result`: ``phi`` is the mean of the per-sample exact
Shapley values, and every score carries the run's own standard error (the package's, as the monitor logs it).
Across seeds, intervals are 95% Student-t intervals (Welch's for two rates). The Markdown and the log lines are
rendered from the summary by ``_label_noise_markdown.py``.
"""

import dataclasses
import json
import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Optional

import numpy as np
import torch

from iaside_lightning.functional import band_layout, compute_result, shapley_statistics

from _label_noise_runs import Analysis, RunConfig
from _student_t import t_half_width, t_quantile

__all__ = ["SCORES", "Run", "Snapshot", "summarise", "write_report"]

#: The scores of a frequency response, by their key in ``summary.json``.
SCORES = ("srs", "srs_signed", "balance")
IMAGE_SIZE = (28, 28)
@dataclasses.dataclass(frozen=True)
class Snapshot:
    """One analysis of one snapshot: ``phi`` (nats) and its scores, each with its within-run standard error."""

    phi: np.ndarray
    phi_se: np.ndarray
    scores: dict[str, float]
    errors: dict[str, float]
    degenerate: bool  # all phi equal: psi (and so SRS) undefined


@dataclasses.dataclass(frozen=True)
class Run:
    """One (rate, seed): its per-epoch rows and the scored snapshots ``{epoch: {analysis name: Snapshot}}``."""

    rate: float
    seed: int
    rows: dict[int, dict[str, float]]
    snapshots: dict[int, dict[str, Snapshot]]
    train_seconds: float

    @property
    def last(self) -> int:
        """The last snapshot: flipped labels memorised, or the epoch limit."""
        return max(self.snapshots)

    @property
    def early(self) -> int:
        """The snapshot with the highest validation accuracy (the earliest of ties)."""
        return max(sorted(self.snapshots), key=lambda epoch: self.rows[epoch]["val_acc"])


def score_values(values: torch.Tensor, analysis: Analysis) -> Snapshot:
    """Scores of one analysis from its per-sample coalition values ``[B, 2^M]``, through the package's own
    :func:`~iaside_lightning.functional.spectral.result.compute_result` (the same numbers the monitor would log)."""
    layout = band_layout(*IMAGE_SIZE, analysis.num_bands, "square", analysis.band_edges)
    result = compute_result(shapley_statistics(values.to(torch.float64)), layout)
    return Snapshot(
        phi=result.phi.numpy(),
        phi_se=result.stderr.numpy(),
        scores={key: float(getattr(result, key)) for key in SCORES},
        errors={key: float(getattr(result, f"{key}_stderr")) for key in SCORES},
        degenerate=result.psi_degenerate,
    )


def load_run(path: Path, rate: float, analyses: Sequence[Analysis]) -> Run:
    """A run saved by ``run_study_job``, scored with the ``analyses`` it names."""
    saved = torch.load(path, weights_only=True)
    by_name = {analysis.name: analysis for analysis in analyses}
    return Run(
        rate=rate,
        seed=int(saved["seed"]),
        rows={int(row["epoch"]): row for row in saved["rows"]},
        snapshots={
            int(epoch): {name: score_values(v, by_name[name]) for name, v in values.items()}
            for epoch, values in saved["values"].items()
        },
        train_seconds=float(saved["train_seconds"]),
    )


def estimate(samples: Sequence[float], errors: Optional[Sequence[float]] = None) -> dict[str, Any]:
    """Mean across seeds with its 95% t half-width (``ci95``), and the mean within-run SE when given."""
    x = np.asarray(samples, dtype=np.float64)
    result: dict[str, Any] = {"mean": float(x.mean()), "ci95": t_half_width(x.tolist()), "n": int(x.size)}
    if errors is not None:
        result["within_se"] = float(np.mean(errors))
    return result


def welch(a: Sequence[float], b: Sequence[float]) -> dict[str, Any]:
    """Difference of means ``a - b`` with Welch's 95% half-width and degrees of freedom."""
    x, y = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if min(x.size, y.size) < 2:
        return {"difference": float(x.mean() - y.mean()), "ci95": math.nan, "df": math.nan}
    vx, vy = x.var(ddof=1) / x.size, y.var(ddof=1) / y.size
    df = (vx + vy) ** 2 / (vx**2 / (x.size - 1) + vy**2 / (y.size - 1)) if vx + vy > 0 else x.size + y.size - 2
    return {"difference": float(x.mean() - y.mean()), "ci95": t_quantile(df) * math.sqrt(vx + vy), "df": df}


def snapshot_estimates(snapshots: Sequence[Snapshot]) -> dict[str, Any]:
    """Across-seed estimates of every score and of ``phi`` per band."""
    result = {key: estimate([s.scores[key] for s in snapshots], [s.errors[key] for s in snapshots]) for key in SCORES}
    phi, phi_se = np.stack([s.phi for s in snapshots]), np.stack([s.phi_se for s in snapshots])
    result["phi"] = [estimate(phi[:, k], phi_se[:, k]) for k in range(phi.shape[1])]
    return result


def common_epochs(runs: Sequence[Run], name: str) -> list[int]:
    """Snapshot epochs at which every run has analysis ``name``."""
    epochs = [{epoch for epoch, by_name in run.snapshots.items() if name in by_name} for run in runs]
    return sorted(set.intersection(*epochs))


def across_seeds(runs: Sequence[Run], name: str) -> list[dict[str, Any]]:
    """One entry per common snapshot epoch: fitted fraction, val acc and the score estimates."""
    return [
        {
            "epoch": epoch,
            "memorised": float(np.mean([run.rows[epoch]["memorised"] for run in runs])),
            "val_acc": float(np.mean([run.rows[epoch]["val_acc"] for run in runs])),
            **snapshot_estimates([run.snapshots[epoch][name] for run in runs]),
        }
        for epoch in common_epochs(runs, name)
    ]


def phases(runs: Sequence[Run], name: str) -> dict[str, Any]:
    """Each run's early and last snapshot, and the paired per-seed change of every score."""
    early = [run.snapshots[run.early][name] for run in runs]
    last = [run.snapshots[run.last][name] for run in runs]
    change = {}
    for key in SCORES:
        steps = [b.scores[key] - a.scores[key] for a, b in zip(early, last)]
        change[key] = {**estimate(steps), "seeds_down": sum(step < 0 for step in steps)}
    return {
        "early_epochs": [run.early for run in runs],
        "last_epochs": [run.last for run in runs],
        "early": snapshot_estimates(early),
        "last": snapshot_estimates(last),
        "change": change,
    }


def noisy_vs_clean(noisy: Sequence[Run], clean: Sequence[Run], name: str) -> Optional[dict[str, Any]]:
    """Scores of a noisy rate minus the clean ones at the common epoch where the noisy runs generalise best."""
    epochs = sorted(set(common_epochs(noisy, name)) & set(common_epochs(clean, name)))
    if not epochs:
        return None
    epoch = max(epochs, key=lambda e: np.mean([run.rows[e]["val_acc"] for run in noisy]))
    result: dict[str, Any] = {"epoch": epoch, "n_noisy": len(noisy), "n_clean": len(clean)}
    for key in SCORES:
        a = [run.snapshots[epoch][name].scores[key] for run in noisy]
        b = [run.snapshots[epoch][name].scores[key] for run in clean]
        result[key] = {"noisy": float(np.mean(a)), "clean": float(np.mean(b)), **welch(a, b)}
    return result


def band_geometry(analysis: Analysis) -> dict[str, list[float]]:
    """Band edges (cycles/pixel), rfft2 bins and frequency rings per band of an analysis at 28x28."""
    layout = band_layout(*IMAGE_SIZE, analysis.num_bands, "square", analysis.band_edges)
    return {
        "edges_cycles_per_pixel": (0.5 * layout.edges).tolist(),
        "rfft_bins": layout.bins.tolist(),
        "rings": layout.rings.tolist(),
    }


def ring_vs_linear(by_rate: dict[float, list[Run]], config: RunConfig) -> dict[str, Any]:
    """Per-band ``phi`` at each run's last snapshot with ring vs linear edges, for every linear analysis."""
    result: dict[str, Any] = {}
    for linear in (a for a in config.analyses if a.band_edges == "linear"):
        rings = dataclasses.replace(linear, band_edges="rings", final_only=False)
        if rings not in config.analyses:
            continue
        names = {"rings": rings.name, "linear": linear.name}
        geometry = {"rings": band_geometry(rings), "linear": band_geometry(linear)}
        counts = geometry["linear"]["rings"]
        narrow = [k for k in range(1, len(counts) - 1) if counts[k] < min(counts[k - 1], counts[k + 1])]
        result[f"M{linear.num_bands}_{linear.fill}"] = {
            "analyses": names,
            "bands": geometry,
            "narrow_linear_bands": narrow,
            "rates": {f"{rate:g}": last_phi(runs, names, narrow) for rate, runs in by_rate.items()},
        }
    return result


def last_phi(runs: Sequence[Run], names: dict[str, str], bands: Sequence[int]) -> dict[str, Any]:
    """Across-seed ``phi`` per band at each run's last snapshot per rule, and how many seeds have ``phi`` below
    both neighbours' at each of ``bands``."""
    result: dict[str, Any] = {"n": len(runs), "phi": {}, "below_neighbours": {}}
    for rule, name in names.items():
        snapshots = [run.snapshots[run.last][name] for run in runs]
        result["phi"][rule] = snapshot_estimates(snapshots)["phi"]
        result["below_neighbours"][rule] = {
            str(k): sum(bool(s.phi[k] < min(s.phi[k - 1], s.phi[k + 1])) for s in snapshots) for k in bands
        }
    return result


def run_summary(run: Run, config: RunConfig) -> dict[str, Any]:
    """Everything stored about one run, with its scores per snapshot."""
    fitted = run.rows[run.last]["memorised"]
    return {
        "rate": run.rate,
        "seed": run.seed,
        "epochs": max(run.rows),
        "memorised_reached": run.rate == 0 or fitted >= config.memorised_target,
        "early_epoch": run.early,
        "last_epoch": run.last,
        "train_seconds": run.train_seconds,
        "rows": list(run.rows.values()),
        "snapshots": {
            str(epoch): {name: dataclasses.asdict(s) for name, s in by_name.items()}
            for epoch, by_name in run.snapshots.items()
        },
    }


def training_curve(runs: Sequence[Run]) -> dict[str, list[float]]:
    """Seed-mean fitted fraction and validation accuracy at every epoch all runs trained."""
    epochs = list(range(1, min(max(run.rows) for run in runs) + 1))
    return {
        "epochs": epochs,
        **{key: [float(np.mean([r.rows[e][key] for r in runs])) for e in epochs] for key in ("memorised", "val_acc")},
    }


def summarise(
    by_rate: dict[float, list[Run]], missing: list[tuple[float, int]], seeds: int, config: RunConfig
) -> dict[str, Any]:
    """Every number of the report (JSON-ready up to NaN and NumPy values)."""
    main = [a.name for a in config.analyses if not a.final_only]
    clean = by_rate.get(0.0, [])
    noisy = {rate: runs for rate, runs in by_rate.items() if rate != 0 and clean}
    return {
        "setup": {**dataclasses.asdict(config), "analyses": [a.name for a in config.analyses], "seeds": seeds},
        "rates": [f"{rate:g}" for rate in by_rate],
        "missing_runs": [{"rate": rate, "seed": seed} for rate, seed in missing],
        "bands": {a.name: band_geometry(a) for a in config.analyses},
        "runs": [run_summary(run, config) for runs in by_rate.values() for run in runs],
        "training": {f"{rate:g}": training_curve(runs) for rate, runs in by_rate.items()},
        "across_seeds": {f"{rate:g}": {n: across_seeds(runs, n) for n in main} for rate, runs in by_rate.items()},
        "phases": {n: {f"{rate:g}": phases(runs, n) for rate, runs in by_rate.items()} for n in main},
        "noisy_vs_clean": {
            n: {f"{rate:g}": noisy_vs_clean(runs, clean, n) for rate, runs in noisy.items()} for n in main
        },
        "ring_vs_linear": ring_vs_linear(by_rate, config),
    }


def json_ready(value: Any) -> Any:
    """``value`` with NumPy values as Python ones and NaN or infinite floats as ``None``."""
    if isinstance(value, dict):
        return {str(k): json_ready(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, np.ndarray)):
        return [json_ready(v) for v in value]
    if isinstance(value, (float, np.floating)):
        return float(value) if math.isfinite(value) else None
    return value.item() if isinstance(value, np.generic) else value


def write_report(
    out_dir: Path,
    rates: Sequence[float],
    seeds: int,
    config: RunConfig,
    figures_dir: Optional[Path],
    log: Callable[[str], None],
) -> None:
    """Score the saved runs and write ``report.md``, ``summary.json`` and, with ``figures_dir``, the figures.

    Args:
        out_dir: the study's directory; runs are read from ``out_dir/runs``.
        rates: noise rates of the study.
        seeds: runs per rate (seeds ``0 .. seeds - 1``); missing runs are reported and left out.
        config: the settings the runs were made with.
        figures_dir: where to write the PNG figures; ``None`` for none.
        log: receives progress and summary lines.

    Raises:
        FileNotFoundError: if no run of the study is saved.
    """
    from _label_noise_markdown import headline, render

    by_rate: dict[float, list[Run]] = {}
    missing: list[tuple[float, int]] = []
    for rate in rates:
        for seed in range(seeds):
            path = out_dir / "runs" / f"rate_{rate:g}_seed_{seed}.pt"
            if path.exists():
                by_rate.setdefault(rate, []).append(load_run(path, rate, config.analyses))
            else:
                missing.append((rate, seed))
    if not by_rate:
        raise FileNotFoundError(f"No run of the study is saved in {out_dir / 'runs'}.")
    summary = json_ready(summarise(by_rate, missing, seeds, config))
    (out_dir / "report.md").write_text(render(summary))
    (out_dir / "summary.json").write_text(json.dumps(summary, indent=1, allow_nan=False))
    log(f"wrote {out_dir / 'report.md'} and {out_dir / 'summary.json'}")
    if figures_dir is not None:
        from _label_noise_figures import write_figures

        for path in write_figures(summary, figures_dir):
            log(f"wrote {path}")
    for line in headline(summary):
        log(line)
