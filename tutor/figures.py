"""Drawing that several tools share. Tools draw on `matplotlib.figure.Figure`, never pyplot:
pyplot keeps every figure it makes in one global list, shared by every learner, until closed."""

from __future__ import annotations

from typing import Any


def heatmap(fig: Any, ax: Any, values: Any, title: str, xlabel: str, ylabel: str, colorbar: bool = True,
            **imshow: Any) -> Any:
    """`values` (rows, columns) as an image on `ax`, titled and labelled, with its colour bar;
    `imshow` options such as cmap, vmin, vmax pass through. Returns the image."""
    image = ax.imshow(values, **imshow)
    ax.set_title(title, fontsize=9)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if colorbar:
        fig.colorbar(image, ax=ax)
    return image
