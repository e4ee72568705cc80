"""heattrack: national-scale screening of district-heating networks for leaks from satellite LST."""

__version__ = "0.1.0"
