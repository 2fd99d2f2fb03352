"""The client's version, in its own module so every other module can use it."""

__all__ = ["__version__"]

__version__ = "0.1.0"
