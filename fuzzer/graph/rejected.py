"""Expected rejections: what tcfuzz declines on purpose, never a harness bug nor a finding.

Code that tries alternatives (the generator, the mutators, the reducer) catches
:class:`Rejected` and nothing broader, so that the TypeError or KeyError of a real bug
still surfaces. ``Rejected`` is no ValueError on purpose: a library's ValueError is caught
where that library is called.
"""

from __future__ import annotations


class Rejected(Exception):
    """A choice, graph or type that tcfuzz declines; whoever tries alternatives tries another."""


class Unsatisfiable(Rejected):
    """A random choice cannot be completed (for this anchor, graph or options); the caller retries."""


class InvalidGraph(Rejected):
    """A graph breaks an IR rule; the message names the node, operator and value."""


class ShapeError(Rejected):
    """An operator's shape rule refuses its input types or attributes."""
