"""Option docs written once per sub-system and copied into every entry point's docstring.

Each sub-system keeps one mapping ``{option: description}`` next to its options dataclass (the I-ASIDE
:data:`~iaside_lightning.functional.spectral.options.OPTION_DOCS`, the boundary
:data:`~iaside_lightning.functional.boundary.options.BOUNDARY_OPTION_DOCS` and the DiffROAR
:data:`~iaside_lightning.functional.sanity.options.DIFFROAR_OPTION_DOCS`). :func:`option_documenter` turns such a
mapping into the decorator its entry points use, so that ``help()``, the API docs and LightningCLI's ``--help`` show
the same text everywhere.
"""

from collections.abc import Callable, Mapping
from typing import Any, TypeVar

__all__ = ["option_documenter"]

F = TypeVar("F", bound=Callable[..., Any])

#: The line of a docstring that the option entries replace.
PLACEHOLDER = "{options}"


def option_documenter(docs: Mapping[str, str]) -> Callable[..., Callable[[F], F]]:
    """A decorator factory ``document_options(*names)`` that writes the ``docs`` entries of ``names`` into a docstring.

    The decorated object's docstring holds a line ``{options}`` alone, indented like its ``Args:`` (or
    ``Attributes:``) entries; it becomes one ``name: description`` entry per name, in the order given, wrapped at 116
    characters.

    Raises:
        ValueError: at decoration, if the docstring has no ``{options}`` line or a name has no entry in ``docs``.

    Example:
        >>> document_options = option_documenter({"seed": "seed of the random draws."})
        >>> @document_options("seed")
        ... def draw(seed: int = 0) -> None:
        ...     '''Draw.
        ...
        ...     Args:
        ...         {options}
        ...     '''
        >>> print(draw.__doc__.splitlines()[3].strip())
        seed: seed of the random draws.
    """

    def document_options(*names: str) -> Callable[[F], F]:
        missing = [name for name in names if name not in docs]
        if missing:
            raise ValueError(f"No option doc for {missing}: add an entry to the sub-system's option docs mapping.")

        def decorate(obj: F) -> F:
            doc = obj.__doc__ or ""
            line = next((line for line in doc.splitlines() if line.strip() == PLACEHOLDER), None)
            if line is None:
                raise ValueError(
                    f"{obj.__qualname__}'s docstring has no '{PLACEHOLDER}' line to document its options: add one "
                    "where the option entries go."
                )
            indent = line[: len(line) - len(line.lstrip())]
            obj.__doc__ = doc.replace(line, "\n".join(_entry(name, docs[name], indent) for name in names), 1)
            return obj

        return decorate

    document_options.__doc__ = (
        "Write the option docs of ``names`` into the decorated object's docstring, in place of its ``{options}`` line."
    )
    return document_options


def _entry(name: str, text: str, indent: str, width: int = 116) -> str:
    """``name: text`` wrapped at ``width`` characters, continuation lines indented four more spaces."""
    lines, current = [], f"{indent}{name}:"
    for word in text.split():
        if len(current) + 1 + len(word) > width:
            lines.append(current)
            current = f"{indent}    {word}"
        else:
            current += f" {word}"
    return "\n".join([*lines, current])
