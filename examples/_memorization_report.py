"""The memorisation study's report: AUROCs with two-level bootstrap intervals per snapshot, paired differences, the
cut-off ablation, the retraining comparison and the audit's cost, from the saved runs.

Not an example itself (see ``memorization.py``). Writes ``summary.json`` and ``report.md`` to the study folder and,
with a figures folder, the figures of ``_memorization_figures.py``.
"""

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any, Optional

import torch
from torch import Tensor

from _memorization_runs import StudyConfig, noisy_training_set
from _memorization_stats import Bootstrap, interval, weighted_auroc
from _student_t import t_half_width
from iaside_lightning.functional import select_cutoffs

__all__ = ["DETECTORS", "summarize", "write_report"]



def _at_spectral_cutoffs(losses: Tensor, snapshot: dict[str, Tensor]) -> Tensor:
    """Mean of a ``[B, 7]`` loss ladder over the cut-offs the spectral detector chose on this snapshot."""
    return losses[:, select_cutoffs(-snapshot["lowpass_zero8"])[1]].mean(1)


def _own_majority(losses: Tensor) -> Tensor:
    """Mean of a ``[B, 7]`` loss ladder over the cut-offs its own majority rule chooses."""
    return losses[:, select_cutoffs(-losses)[1]].mean(1)


#: Score name -> how to get it from a snapshot's arrays (higher = more suspect). "spectral" is the package's detector;
#: blur and noise are matched to it in strength (per cut-off) and in the cut-offs averaged.
DETECTORS: dict[str, Callable[[dict[str, Tensor]], Tensor]] = {
    "spectral": lambda s: s["score_zero8"],
    "loss": lambda s: s["loss"],
    "margin": lambda s: s["neg_margin"],
    "blur (matched)": lambda s: _at_spectral_cutoffs(s["blur"], s),
    "noise (matched)": lambda s: _at_spectral_cutoffs(s["noise"], s),
    "AUM": lambda s: s["aum"],
    "mean loss": lambda s: s["mean_loss"],
}
#: Paired comparisons reported at every snapshot: (detector, baseline).
PAIRS = (("spectral", "loss"), ("spectral", "blur (matched)"), ("spectral", "noise (matched)"), ("spectral", "AUM"))


def _within_class(scores: Tensor, labels: Tensor) -> Tensor:
    """Scores as ranks within each (noisy) label class, in ``(0, 1)``: removes a class's offset (label-free)."""
    out = torch.empty(len(scores), dtype=torch.float64)
    for label in labels.unique():
        members = labels == label
        out[members] = (scores[members].double().argsort().argsort().double() + 0.5) / int(members.sum())
    return out


def _final_detectors(snapshot: dict[str, Tensor], labels: Tensor) -> dict[str, Tensor]:
    """The last snapshot's ablations: every single cut-off (spectral and matched blur), the other fill and M, the
    baselines' own cut-off rule, and (post hoc) every main score ranked within its label class."""
    out = {f"low-pass k={k + 1}": snapshot["lowpass_zero8"][:, k] for k in range(snapshot["lowpass_zero8"].shape[1])}
    out |= {f"blur k={k + 1}": snapshot["blur"][:, k] for k in range(snapshot["blur"].shape[1])}
    out["spectral, all cut-offs (the first default)"] = snapshot["lowpass_zero8"].mean(1)
    out["blur, own majority rule"] = _own_majority(snapshot["blur"])
    out["noise, own majority rule"] = _own_majority(snapshot["noise"])
    out["spectral, permute fill"] = snapshot["score_permute8"]
    out["spectral, M = 6"] = snapshot["score_zero6"]
    for name, score in DETECTORS.items():
        out[f"{name}, within class (post hoc)"] = _within_class(score(snapshot), labels)
    return out


def _detectors(snapshot: dict[str, Tensor], labels: Tensor, last: bool) -> dict[str, Tensor]:
    """Every score of a snapshot (the ablations only at the last one)."""
    main = {name: score(snapshot) for name, score in DETECTORS.items()}
    return main | (_final_detectors(snapshot, labels) if last else {})


def summarize(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """AUROCs, differences, retraining and cost of the runs of one noise rate."""
    boot = Bootstrap([len(run["flipped"]) for run in runs])
    flips = [run["flipped"].bool() for run in runs]
    epochs = sorted(set.intersection(*(set(run["snapshots"]) for run in runs)))
    probe_labels = [
        noisy_training_set(run["rate"], run["seed"], StudyConfig(**run["config"]))[2][run["probe"]] for run in runs
    ]
    snapshots = []
    for epoch in epochs:
        rows = [next(r for r in run["rows"] if r["epoch"] == epoch) for run in runs]
        entry: dict[str, Any] = {
            "epoch": epoch, "fitted_noisy": [r["fitted_noisy"] for r in rows],
            "test_acc": [r["test_acc"] for r in rows], "scores": {}, "diffs": {},
        }
        last = epoch == epochs[-1]
        per_run = [_detectors(run["snapshots"][epoch], labels, last) for run, labels in zip(runs, probe_labels)]
        replicates = {}
        for name in per_run[0]:
            values = [scores[name] for scores in per_run]
            point, replicates[name] = boot.replicates(values, flips)
            single = [float(weighted_auroc(v, f, torch.ones(1, len(v)))[0]) for v, f in zip(values, flips)]
            entry["scores"][name] = {"auroc": point, "ci": interval(replicates[name]), "per_run": single}
        for first, second in PAIRS:
            point = entry["scores"][first]["auroc"] - entry["scores"][second]["auroc"]
            diff = replicates[first] - replicates[second]
            entry["diffs"][f"{first} - {second}"] = {"diff": point, "ci": interval(diff)}
        snapshots.append(entry)
    return {"snapshots": snapshots, "retraining": _retraining(runs), "cost": _cost(runs)}


def _retraining(runs: list[dict[str, Any]]) -> dict[str, Any]:
    retrained = [run["retrained"] for run in runs if run["retrained"]]
    if not retrained:
        return {}
    out: dict[str, Any] = {"seeds": len(retrained)}
    for method in retrained[0]:
        acc = torch.tensor([r[method]["test_acc"] for r in retrained], dtype=torch.float64)
        out[method] = {
            "test_acc": acc.tolist(), "mean": float(acc.mean()), "half_width": t_half_width(acc.tolist()),
            "precision": [r[method]["precision"] for r in retrained], "dropped": retrained[0][method]["dropped"],
        }
    for other in ("loss", "aum", "none"):
        if "spectral" in out and other in out:
            diff = torch.tensor(out["spectral"]["test_acc"]) - torch.tensor(out[other]["test_acc"])
            out[f"spectral - {other}"] = {"mean": float(diff.mean()), "half_width": t_half_width(diff.tolist())}
    return out


def _cost(runs: list[dict[str, Any]]) -> dict[str, float]:
    """Audit at the callback's defaults (512 probes, 7 cut-offs, every 5 epochs) as a share of the training time."""
    audit = sum(sum(run["audit_seconds"]) / len(run["audit_seconds"]) for run in runs) / len(runs)
    epoch = sum(sum(run["train_seconds"]) / len(run["train_seconds"]) for run in runs) / len(runs)
    return {"audit_seconds": audit, "epoch_seconds": epoch, "share_every_5_epochs": audit / (5 * epoch)}


def write_report(
    out_dir: Path, rates: list[float], seeds: int, figures_dir: Optional[Path], log: Callable[[str], None]
) -> None:
    """Summarise the saved runs of every (rate, seed) into ``summary.json``, ``report.md`` and the figures."""
    from _memorization_markdown import markdown

    cost = out_dir / "cost.json"
    summary: dict[str, Any] = {
        "rates": rates, "seeds": seeds, "by_rate": {},
        "fit_cost": json.loads(cost.read_text()) if cost.exists() else None,
    }
    for rate in rates:
        paths = [out_dir / "runs" / f"rate_{rate:g}_seed_{seed}.pt" for seed in range(seeds)]
        runs = [torch.load(path, weights_only=False) for path in paths if path.exists()]
        if not runs:
            log(f"rate {rate:g}: no saved run, skipped")
            continue
        summary["by_rate"][f"{rate:g}"] = summarize(runs) | {"runs": len(runs), "config": runs[0]["config"]}
    (out_dir / "summary.json").write_text(json.dumps(summary, indent=1))
    (out_dir / "report.md").write_text(markdown(summary))
    log(f"wrote {out_dir / 'summary.json'} and {out_dir / 'report.md'}")
    if figures_dir is not None:
        from _memorization_figures import write_figures

        for path in write_figures(summary, out_dir, figures_dir):
            log(f"wrote {path}")
