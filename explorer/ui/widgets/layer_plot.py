"""Plots in the mode panel (textual-plotext): a per-layer series, or the embedding PCA scatter."""

from __future__ import annotations

from textual_plotext import PlotextPlot


class LayerPlot(PlotextPlot):
    DEFAULT_CSS = """
    LayerPlot { height: 14; }
    """

    def show_series(self, title: str, name: str, values: list, xlabel: str = "layer") -> None:
        plt = self.plt
        plt.clear_data()
        plt.clear_figure()
        xs = [i for i, v in enumerate(values) if v is not None and v == v]
        ys = [float(values[i]) for i in xs]
        if xs:
            plt.plot(xs, ys, marker="dot")
        plt.title(title)
        plt.xlabel(xlabel)
        plt.ylabel(name)
        self.refresh()

    def show_scatter(self, title: str, points: list, labels: list[str]) -> None:
        plt = self.plt
        plt.clear_data()
        plt.clear_figure()
        if points:
            xs = [p[0] for p in points]
            ys = [p[1] for p in points]
            plt.scatter(xs, ys, marker="dot")
            for x, y, label in list(zip(xs, ys, labels))[:60]:
                plt.text(label.strip()[:8] or "␣", x, y)
        plt.title(title)
        plt.xlabel("PC1")
        plt.ylabel("PC2")
        self.refresh()
