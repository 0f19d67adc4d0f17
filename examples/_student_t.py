"""Student-t quantiles for the examples' 95% intervals across seeds (scipy is not a dependency of the package)."""

import math
from collections.abc import Iterable

__all__ = ["t_half_width", "t_quantile"]

#: 97.5% quantiles of Student's t for 1 .. 30 degrees of freedom.
_T975 = (
    12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160, 2.145, 2.131,
    2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042,
)  # fmt: skip


def t_quantile(df: float) -> float:
    """97.5% quantile of Student's t (half-width factor of a two-sided 95% interval); NaN below 1 df.

    Fractional ``df`` (Welch's) are rounded down, which widens the interval. Tabulated up to 30 df, above that a
    Cornish-Fisher expansion around the normal quantile (error below 1e-3).

    Example:
        >>> t_quantile(4)
        2.776
    """
    if not df >= 1:
        return math.nan
    whole = int(df)
    if whole <= len(_T975):
        return _T975[whole - 1]
    z = 1.959964
    return z + (z**3 + z) / (4 * whole) + (5 * z**5 + 16 * z**3 + 3 * z) / (96 * whole**2)


def t_half_width(values: Iterable[float]) -> float:
    """Half-width of the 95% Student-t interval of the mean of ``values`` (seeds, runs); NaN for fewer than two.

    Example:
        >>> round(t_half_width([1.0, 2.0, 3.0]), 3)  # 4.303 * 1 / sqrt(3)
        2.484
        >>> t_half_width([1.0])
        nan
    """
    x = [float(v) for v in values]
    n = len(x)
    if n < 2:
        return math.nan
    mean = sum(x) / n
    return t_quantile(n - 1) * math.sqrt(sum((v - mean) ** 2 for v in x) / (n - 1)) / math.sqrt(n)
