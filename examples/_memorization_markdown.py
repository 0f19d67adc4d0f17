"""The memorisation study's ``report.md``, written from its summary (see ``_memorization_report.py``).

Not an example itself. Every number of docs/memorization.md comes from these tables.
"""

from typing import Any

__all__ = ["markdown"]

#: Columns of the per-snapshot AUROC table.
MAIN = ("spectral", "loss", "margin", "blur (matched)", "noise (matched)", "AUM", "mean loss")


def _ci(entry: dict[str, Any], key: str = "auroc") -> str:
    low, high = entry["ci"]
    return f"{entry[key]:.3f} [{low:.3f}, {high:.3f}]"


def _mean(values: list[float]) -> float:
    return sum(values) / len(values)


def markdown(summary: dict[str, Any]) -> str:
    """The report: per rate, the AUROC table, the paired differences, the last snapshot's ablations, retraining and
    cost; then the audit's cost in a Lightning fit."""
    lines = [
        "# Memorisation study: report",
        "",
        f"Noise rates {summary['rates']}, {summary['seeds']} seeds each. AUROC of telling flipped from clean training "
        "labels on a fixed probe of training samples, with the labels the model was trained with; mean over runs "
        "[95% two-level bootstrap interval: seeds, then probe samples, 2,000 replicates]. Differences are paired (the "
        "same draws for both scores).",
    ]
    for rate, by_rate in summary["by_rate"].items():
        lines += _rate_section(rate, by_rate)
    cost = summary["fit_cost"]
    if cost is not None:
        seconds = cost["seconds"]
        lines += [
            "", "## Cost of `MemorizationAudit()` in a Lightning fit", "",
            f"{cost['epochs']} epochs of the width-{cost['width']} CNN on noisy MNIST-5k (4,000 training digits): "
            f"without the audit {', '.join(f'{s:.1f}' for s in seconds['without'])} s, with it "
            f"{', '.join(f'{s:.1f}' for s in seconds['with'])} s; overhead (best of each) "
            f"{100 * cost['overhead']:.1f}%.",
        ]
    return "\n".join(lines) + "\n"


def _rate_section(rate: str, by_rate: dict[str, Any]) -> list[str]:
    snapshots = by_rate["snapshots"]
    lines = ["", f"## Noise rate {rate} ({by_rate['runs']} runs)", "", "### AUROC per snapshot", ""]
    lines.append("| epoch | noisy labels fitted | test acc | " + " | ".join(MAIN) + " |")
    lines.append("|---" * (3 + len(MAIN)) + "|")
    for snap in snapshots:
        cells = [_ci(snap["scores"][name]) for name in MAIN]
        lines.append(
            f"| {snap['epoch']} | {_mean(snap['fitted_noisy']):.3f} (min {min(snap['fitted_noisy']):.3f}) | "
            f"{_mean(snap['test_acc']):.3f} | " + " | ".join(cells) + " |"
        )
    lines += ["", "### Paired differences", "", "| epoch | " + " | ".join(snapshots[0]["diffs"]) + " |"]
    lines.append("|---" * (1 + len(snapshots[0]["diffs"])) + "|")
    for snap in snapshots:
        lines.append(f"| {snap['epoch']} | " + " | ".join(_ci(d, "diff") for d in snap["diffs"].values()) + " |")
    last = snapshots[-1]
    lines += ["", f"### Ablations at the last snapshot (epoch {last['epoch']})", "", "| score | AUROC | per run |",
              "|---|---|---|"]
    for name, entry in last["scores"].items():
        if name not in MAIN:
            lines.append(f"| {name} | {_ci(entry)} | {', '.join(f'{v:.3f}' for v in entry['per_run'])} |")
    lines.append(f"| spectral (the detector) | {_ci(last['scores']['spectral'])} | "
                 f"{', '.join(f'{v:.3f}' for v in last['scores']['spectral']['per_run'])} |")
    lines += _retraining_lines(by_rate["retraining"])
    cost = by_rate["cost"]
    lines += [
        "", "### Cost of the audit at the callback's defaults", "",
        f"512 probes, 7 cut-offs + the full image: {cost['audit_seconds']:.2f} s per audit; a training epoch "
        f"{cost['epoch_seconds']:.2f} s; audited every 5 epochs: "
        f"{100 * cost['share_every_5_epochs']:.1f}% of the training time.",
    ]
    return lines


def _retraining_lines(retraining: dict[str, Any]) -> list[str]:
    if not retraining:
        return []
    lines = [
        "", f"### Drop the top suspects and retrain ({retraining['seeds']} seeds)", "",
        "| dropped by | samples dropped | precision (share of dropped that were flipped) | test acc (mean +- t 95%) |",
        "|---|---|---|---|",
    ]
    for method, entry in retraining.items():
        if isinstance(entry, dict) and "test_acc" in entry:
            precision = [p for p in entry["precision"] if p == p]
            shown = f"{_mean(precision):.3f}" if precision else "-"
            lines.append(f"| {method} | {entry['dropped']} | {shown} | {entry['mean']:.3f}{_pm(entry)} |")
    for name, entry in retraining.items():
        if name.startswith("spectral - "):
            lines.append(f"| {name} (paired) | | | {entry['mean']:+.3f}{_pm(entry)} |")
    return lines


def _pm(entry: dict[str, Any]) -> str:
    """`` +- half-width``, or nothing for a single seed."""
    half = entry["half_width"]
    return "" if half != half else f" +- {half:.3f}"
