"""``with`` blocks for everything that holds a file, a session or a thread: one mixin, one behaviour."""

from __future__ import annotations

from typing import TypeVar

_C = TypeVar("_C", bound="Closable")


class Closable:
    """Makes ``with thing:`` call ``thing.close()`` when the block ends, an exception included.

    A class using it implements :meth:`close`, safe to call twice (``with`` and an explicit
    ``close()`` may both run).
    """

    def close(self) -> None:
        """Release what the object holds. Safe to call twice."""
        raise NotImplementedError

    def __enter__(self: _C) -> _C:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()
