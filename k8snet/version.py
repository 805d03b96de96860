"""The kit's version, in a module of its own so that modules the package's root re-exports
(``results`` records it with every measurement) read it without importing the root."""

__version__ = "0.1.0"
