"""Markdown report and log lines of the label-noise study's summary (see ``_label_noise_report.py``).

Not an example itself. Cells with no number (an interval from one seed, a fitted fraction without flipped labels)
are left empty.
"""

from collections.abc import Sequence
from typing import Any, Optional

__all__ = ["headline", "render"]

SCORE_NAMES = {"srs": "SRS", "srs_signed": "signed SRS", "balance": "balance"}


def render(summary: dict[str, Any]) -> str:
    """The report: setup, runs, scores across seeds, early vs last snapshot, noisy vs clean, ring vs linear edges."""
    sections = (_intro, _runs, _across_seeds, _phases, _noisy_vs_clean, _ring_vs_linear)
    return "\n".join(line for section in sections for line in section(summary)) + "\n"


def headline(summary: dict[str, Any]) -> list[str]:
    """A few log lines: runs found and, for the first analysis, each rate's change from early to last snapshot."""
    name = next(iter(summary["phases"]))
    missing = len(summary["missing_runs"])
    lines = [f"{len(summary['runs'])} runs scored, {missing} missing; early -> last snapshot, {name}:"]
    for rate, phase in summary["phases"][name].items():
        parts = []
        for key in ("srs", "balance"):
            change = phase["change"][key]
            half = "" if change["ci95"] is None else f" ± {change['ci95']:.3f}"
            parts.append(
                f"{SCORE_NAMES[key]} {phase['early'][key]['mean']:.3f} -> {phase['last'][key]['mean']:.3f} "
                f"(change {change['mean']:+.3f}{half}, down in {change['seeds_down']}/{change['n']} seeds)"
            )
        lines.append(f"  rate {rate}: " + "; ".join(parts))
    return lines


def _num(value: Optional[float], digits: int = 3) -> str:
    """``value`` with ``digits`` decimals ("" for ``None``; no negative zero)."""
    if value is None:
        return ""
    text = f"{value:.{digits}f}"
    return text.lstrip("-") if float(text) == 0 else text


def _pm(estimate: dict[str, Any], digits: int = 3, se: bool = False) -> str:
    """``mean ± half-width`` (the half-width left out when undefined), then ``(within-run SE)`` with ``se``."""
    text = _num(estimate["mean"], digits)
    if estimate["ci95"] is not None:
        text += f" ± {_num(estimate['ci95'], digits)}"
    if se and estimate.get("within_se") is not None:
        small = 0 < estimate["within_se"] < 10**-digits  # two significant digits rather than a misleading 0.000
        text += f" ({estimate['within_se']:.2g})" if small else f" ({_num(estimate['within_se'], digits)})"
    return text


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return [*lines, *("| " + " | ".join(row) + " |" for row in rows), ""]


def _band_labels(edges: Sequence[float]) -> list[str]:
    return [f"{lo:.3g}–{hi:.3g}" for lo, hi in zip(edges[:-1], edges[1:])]


def _epochs(epochs: Sequence[int]) -> str:
    return ", ".join(str(e) for e in epochs)


def _intro(summary: dict[str, Any]) -> list[str]:
    setup, runs = summary["setup"], summary["runs"]
    seeds = {rate: sum(run["rate"] == float(rate) for run in runs) for rate in summary["rates"]}
    lines = [
        "# Label-noise study: spectral Shapley values while a CNN memorises noisy labels",
        "",
        f"{len(runs)} runs: noise rates {', '.join(summary['rates'])}, seeds 0-{setup['seeds'] - 1}. Each run trains "
        f"a SmallCNN (width {setup['width']}) on 1,000 MNIST-5k digits whose labels were replaced, with the given "
        f"probability, by another class, until it fits at least {setup['memorised_target']:.0%} of the flipped "
        f"labels (at most {setup['max_epochs']} epochs; clean runs {setup['clean_epochs']} epochs). Snapshots after "
        f"epochs {_epochs(setup['snapshot_epochs'])} and at the stop epoch are scored with I-ASIDE on the first "
        f"{setup['num_spectral']} (clean) validation digits: exact Shapley values `phi` of M square frequency bands, "
        "value = log-probability of the true label (nats), ring-balanced band edges (linear edges at the last "
        f"snapshot only). Analyses: {', '.join(f'`{a}`' for a in setup['analyses'])}. Validation accuracy is "
        f"measured on {setup['num_val_acc']} validation digits.",
        "",
        "SRS is the paper's spectral robustness score (beta = 0.75) of psi = (phi - min phi) / sum(phi - min phi); "
        "the signed SRS keeps the sign (positive: importance leans to low frequencies; SRS = |signed SRS|). The "
        "spectral balance, in [-1, 1], weights help from band k by 1 - 2k/(M - 1) and counts harm (phi < 0) as -1, "
        "so it falls when bands turn harmful, which psi's shift by min phi hides.",
        "",
        "`a ± b`: seed mean and half-width of its 95% Student-t interval across seeds (n - 1 degrees of freedom). "
        f"SE, and numbers in parentheses: mean within-run standard error (over the {setup['num_spectral']} digits; "
        "propagated by Monte Carlo for the scores), the spread the finite digit sample alone would cause.",
        "",
    ]
    if summary["missing_runs"]:
        absent = [f"rate {m['rate']:g} seed {m['seed']}" for m in summary["missing_runs"]]
        lines += [f"Missing runs (left out of every statistic): {', '.join(absent)}.", ""]
    if min(seeds.values()) == 1:
        lines += ["A rate with a single run has no interval across seeds.", ""]
    elif min(seeds.values()) == 2:
        lines += ["With 2 seeds an interval has 1 degree of freedom (t = 12.7): the intervals are very wide.", ""]
    degenerate = [
        f"rate {run['rate']:g} seed {run['seed']} epoch {epoch} `{name}`"
        for run in runs
        for epoch, by_name in run["snapshots"].items()
        for name, snapshot in by_name.items()
        if snapshot["degenerate"]
    ]
    if degenerate:
        lines += [f"All bands equal, psi and SRS undefined (uniform psi used): {', '.join(degenerate)}.", ""]
    return lines


def _runs(summary: dict[str, Any]) -> list[str]:
    target = summary["setup"]["memorised_target"]
    rows = []
    for run in summary["runs"]:
        by_epoch = {row["epoch"]: row for row in run["rows"]}
        early, last = by_epoch[run["early_epoch"]], by_epoch[run["last_epoch"]]
        noisy = run["rate"] > 0
        rows.append([
            f"{run['rate']:g}",
            str(run["seed"]),
            str(run["epochs"]),
            ("fitted" if run["memorised_reached"] else "epoch limit") if noisy else "clean: epoch limit",
            _num(last["memorised"]) if noisy else "",
            f"{run['early_epoch']} ({_num(early['val_acc'])})",
            f"{run['last_epoch']} ({_num(last['val_acc'])})",
            _num(run["train_seconds"], 0),
        ])
    short = [
        f"rate {run['rate']:g} seed {run['seed']} ({_num(run['rows'][-1]['memorised'])} after {run['epochs']} epochs)"
        for run in summary["runs"]
        if not run["memorised_reached"]
    ]
    note = [f"Stopped before fitting {target:.0%} of the flipped labels: {', '.join(short)}.", ""] if short else []
    return [
        "## Runs",
        "",
        "Early: the snapshot with the highest validation accuracy; last: the snapshot the run stopped at.",
        "",
        *_table(
            ["rate", "seed", "epochs", "stopped", "flipped fitted", "early epoch (val acc)", "last epoch (val acc)",
             "training (s)"],
            rows,
        ),
        *note,
    ]


def _across_seeds(summary: dict[str, Any]) -> list[str]:
    lines = [
        "## Scores across seeds",
        "",
        "At every snapshot epoch all seeds of a rate reached; fitted: fraction of the flipped training labels the "
        "model predicts; val acc: validation accuracy (both seed means). The second table of each pair gives phi per "
        "band (nats; band in cycles/pixel).",
        "",
    ]
    for rate, by_name in summary["across_seeds"].items():
        for name, entries in by_name.items():
            scores = [
                [str(e["epoch"]), _num(e["memorised"]) if float(rate) > 0 else "", _num(e["val_acc"])]
                + [cell for key in SCORE_NAMES for cell in (_pm(e[key]), _num(e[key]["within_se"]))]
                for e in entries
            ]
            header = ["epoch", "fitted", "val acc"] + [c for key in SCORE_NAMES.values() for c in (key, "SE")]
            phi = [[str(e["epoch"])] + [_pm(b, se=True) for b in e["phi"]] for e in entries]
            bands = _band_labels(summary["bands"][name]["edges_cycles_per_pixel"])
            n = entries[0]["srs"]["n"] if entries else 0
            seeds = f"{n} seed{'s' if n != 1 else ''}"
            lines += [f"### Noise rate {rate}, `{name}` ({seeds})", "", *_table(header, scores)]
            lines += _table(["epoch", *bands], phi)
    return lines


def _phases(summary: dict[str, Any]) -> list[str]:
    lines = [
        "## Early vs last snapshot",
        "",
        "Per run, early is the snapshot with the highest validation accuracy and last the one it stopped at (the "
        "flipped labels fitted, unless the runs table says otherwise; for the clean rate, the end of training). "
        "Change: last - early per seed, mean ± 95% half-width; down: seeds whose score fell.",
        "",
    ]
    for name, by_rate in summary["phases"].items():
        rows = []
        for rate, phase in by_rate.items():
            for i, key in enumerate(SCORE_NAMES):
                head = [rate, _epochs(phase["early_epochs"]), _epochs(phase["last_epochs"])] if i == 0 else [""] * 3
                change = phase["change"][key]
                rows.append(
                    head + [SCORE_NAMES[key], _pm(phase["early"][key]), _pm(phase["last"][key]), _pm(change),
                            f"{change['seeds_down']}/{change['n']}"]
                )
        header = ["rate", "early epochs", "last epochs", "score", "early", "last", "change", "down"]
        lines += [f"### `{name}`", "", *_table(header, rows)]
    return lines


def _noisy_vs_clean(summary: dict[str, Any]) -> list[str]:
    if not summary["noisy_vs_clean"]:
        return []
    lines = [
        "## Noisy vs clean before memorisation",
        "",
        "At the snapshot epoch (reached by every seed of both rates) where the noisy rate's seed-mean validation "
        "accuracy is highest: noisy - clean, ± Welch's 95% half-width (degrees of freedom rounded down).",
        "",
    ]
    for name, by_rate in summary["noisy_vs_clean"].items():
        rows = [
            ([rate, str(c["epoch"])] if i == 0 else ["", ""])
            + [SCORE_NAMES[key], _num(c[key]["noisy"]), _num(c[key]["clean"]),
               _pm({"mean": c[key]["difference"], "ci95": c[key]["ci95"]}), _num(c[key]["df"], 1)]
            for rate, c in by_rate.items()
            if c is not None
            for i, key in enumerate(SCORE_NAMES)
        ]
        lines += [f"### `{name}`", "", *_table(["rate", "epoch", "score", "noisy", "clean", "difference", "df"], rows)]
    return lines


def _ring_vs_linear(summary: dict[str, Any]) -> list[str]:
    comparisons = summary["ring_vs_linear"]
    if not comparisons:
        return []
    lines = ["## Ring-balanced vs linear band edges at the last snapshot", ""]
    first = next(iter(comparisons.values()))["bands"]
    geometry = [
        [rule if i == 0 else "", quantity] + cells
        for rule, bands in first.items()
        for i, (quantity, cells) in enumerate([
            ("cycles/pixel", _band_labels(bands["edges_cycles_per_pixel"])),
            ("rfft bins", [str(v) for v in bands["rfft_bins"]]),
            ("rings", [str(v) for v in bands["rings"]]),
        ])
    ]
    num_bands = len(first["rings"]["rings"])
    lines += [
        "Band geometry at 28x28 pixels (a ring is one frequency step, 1/28 cycles/pixel, of the square radius; "
        "a ring split between two bands counts in both):",
        "",
        *_table(["edges", "", *(f"band {k}" for k in range(num_bands))], geometry),
    ]
    for comparison in comparisons.values():
        names = comparison["analyses"]
        rows = [
            [rate if i == 0 else "", rule] + [_pm(b) for b in per_rate["phi"][rule]]
            for rate, per_rate in comparison["rates"].items()
            for i, rule in enumerate(("rings", "linear"))
        ]
        lines += [
            f"### `{names['rings']}` vs `{names['linear']}`: phi per band (nats), seed mean ± 95% half-width",
            "",
            *_table(["rate", "edges", *(f"band {k}" for k in range(num_bands))], rows),
            *_dip_sentences(comparison),
        ]
    return lines


def _dip_sentences(comparison: dict[str, Any]) -> list[str]:
    """Per narrow linear band: in how many seeds of each rate its phi lies below both neighbours', per rule."""
    rings = comparison["bands"]["linear"]["rings"]
    rates = comparison["rates"].items()
    lines = []
    for k in comparison["narrow_linear_bands"]:
        counts = {
            rule: ", ".join(f"{r['below_neighbours'][rule][str(k)]}/{r['n']} at rate {rate}" for rate, r in rates)
            for rule in ("linear", "rings")
        }
        lines += [
            f"Linear band {k} holds {rings[k]} ring(s), its neighbours {rings[k - 1]} and {rings[k + 1]}. Seeds whose "
            f"phi there lies below both neighbours': linear edges {counts['linear']}; ring-balanced edges (band {k}) "
            f"{counts['rings']}.",
            "",
        ]
    return lines
