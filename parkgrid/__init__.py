"""parkgrid: the ``parkgrid`` command that ties the packages together."""

__version__ = "0.1.0"
