"""The one check every callback applies to the prefix of its logged keys (which also names figure files)."""

__all__ = ["check_log_prefix"]


def check_log_prefix(log_prefix: object, argument: str = "log_prefix") -> str:
    """Return ``log_prefix`` if it is a usable key prefix, else raise at construction.

    Keys become file paths in file-based loggers (figures under ``<log_dir>/figures/<key>/``), so a prefix may not
    climb out of the log directory (``..``), be absolute, or use backslashes.

    Raises:
        ValueError: naming the argument and what to pass.

    Example:
        >>> check_log_prefix("spectral/")
        'spectral/'
    """
    if not isinstance(log_prefix, str):
        raise ValueError(f"`{argument}` must be a string such as 'spectral/', got {log_prefix!r}.")
    parts = log_prefix.split("/")
    if ".." in parts or log_prefix.startswith("/") or "\\" in log_prefix:
        raise ValueError(
            f"`{argument}`={log_prefix!r} would write figures outside the log directory: use a relative prefix of "
            "plain names separated by '/', e.g. 'spectral/' or 'val/spectral/'."
        )
    return log_prefix
