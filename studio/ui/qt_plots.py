"""The studio's plots: one look for every tab, and legends that never cover the data."""

from __future__ import annotations

from typing import Any


def make_plot(title: str, x: str, y: str, *, legend_columns: int = 3) -> Any:
    """A pyqtgraph plot with axis labels and a light grid; with ``legend_columns``, a legend in
    a row of its own under the x axis (a legend drawn over the plot hid the points that matter
    most, the last ones at the top right), which curves given a ``name`` join."""
    import pyqtgraph as pg

    plot = pg.PlotWidget(title=title)
    plot.setLabel("bottom", x)
    plot.setLabel("left", y)
    plot.showGrid(x=True, y=True, alpha=0.2)
    for axis in ("bottom", "left"):
        plot.getAxis(axis).enableAutoSIPrefix(False)  # "0.8", not "800 (x0.001)"
    if legend_columns:
        item = plot.getPlotItem()
        legend = pg.LegendItem(colCount=legend_columns)
        item.layout.addItem(legend, item.layout.rowCount(), 1)  # below the axis label
        item.legend = legend  # what PlotItem.addItem adds named items to
    return plot
