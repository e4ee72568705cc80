"""The run's report: an interactive map (``webmap``, ``tiles``), the page around it (``page``) and its figures."""

from heattrack.report.page import build_report

__all__ = ["build_report"]
