"""Renamed callback arguments: the old keyword keeps working for a while, with a deprecation warning naming the new
one (Lightning's ``rank_zero_deprecation``, so a multi-process run warns once)."""

from typing import Optional, TypeVar

from lightning.pytorch.utilities import rank_zero_deprecation

__all__ = ["renamed_argument"]

T = TypeVar("T")


def renamed_argument(
    owner: str, old: str, old_value: Optional[T], new: str, new_value: T, new_default: T, note: str = ""
) -> T:
    """The value of argument ``new``, or that of its deprecated alias ``old`` when the caller passed it (not ``None``).

    Args:
        owner: the class whose argument was renamed, for the messages.
        old: the deprecated name.
        old_value: what the caller passed as ``old``, already converted to ``new``'s meaning; ``None``: not passed.
        new: the current name.
        new_value: what the caller passed as ``new``.
        new_default: ``new``'s default, to tell whether the caller passed both.
        note: what else changed with the name, appended to the warning.

    Raises:
        ValueError: if both names were passed (different values).

    Example:
        >>> import warnings
        >>> with warnings.catch_warnings(record=True) as caught:
        ...     warnings.simplefilter("always")
        ...     renamed_argument("Monitor", "period", 2, "every_n_epochs", 1, 1)
        2
        >>> issubclass(caught[0].category, DeprecationWarning), "`every_n_epochs`" in str(caught[0].message)
        (True, True)
    """
    if old_value is None:
        return new_value
    if new_value != new_default and new_value != old_value:
        raise ValueError(f"{owner} got both `{new}` and its deprecated alias `{old}`: pass `{new}` only.")
    rank_zero_deprecation(
        f"`{owner}({old}=...)` is deprecated and will be removed in a future release: pass `{new}` instead."
        + (f" {note}" if note else ""),
        stacklevel=7,  # the caller's caller: the line that built the callback
    )
    return old_value
