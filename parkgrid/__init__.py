"""parkgrid: the ``parkgrid`` command that ties the packages together."""

from importlib.metadata import PackageNotFoundError, version

try:
    # pyproject.toml holds the version; the installed package's metadata carries it.
    __version__ = version("parkgrid")
except PackageNotFoundError:  # a checkout run without being installed
    __version__ = "0+unknown"
