"""The one check every callback applies to the prefix of its logged keys (which also names figure files)."""

from iaside_lightning.loggers import tag_path

__all__ = ["check_log_prefix"]


def check_log_prefix(log_prefix: object, argument: str = "log_prefix") -> str:
    """Return ``log_prefix`` if it is a usable key prefix, else raise at construction.

    Keys become file paths in file-based loggers (figures under ``<log_dir>/figures/<key>/``), so a prefix must pass
    :func:`~iaside_lightning.loggers.tag_path` (no empty, ``.`` or ``..`` part, hence not absolute either) and use
    no backslashes.

    Raises:
        ValueError: naming the argument and what to pass.

    Example:
        >>> check_log_prefix("spectral/")
        'spectral/'
    """
    if not isinstance(log_prefix, str):
        raise ValueError(f"`{argument}` must be a string such as 'spectral/', got {log_prefix!r}.")
    try:  # the loggers' own rule for the paths figures and tables are written to
        tag_path(log_prefix + "figure", argument)
        usable = "\\" not in log_prefix  # a Windows separator: surely not meant as part of a name
    except ValueError:
        usable = False
    if not usable:
        raise ValueError(
            f"`{argument}`={log_prefix!r} would write figures outside the log directory: use a relative prefix of "
            "plain names separated by '/' (no '.', '..' or empty parts), e.g. 'spectral/' or 'val/spectral/'."
        )
    return log_prefix
