"""sarge: run Python web apps under supervisord and swap their versions safely.

The public API: :class:`Home` (a home folder and its instances), :class:`Instance`
and :class:`SargeError` (the base of every error sarge raises).  Submodules are
imported on first use, so ``import sarge`` costs almost nothing.
"""

__version__ = "0.1.0"
__all__ = ["Home", "Instance", "SargeError"]

_WHERE = {"Home": "home", "Instance": "instance", "SargeError": "errors"}


def __getattr__(name):
    if name in _WHERE:
        import importlib

        return getattr(importlib.import_module(f"{__name__}.{_WHERE[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
