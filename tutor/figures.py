"""Drawing that several tools share. Tools draw on `matplotlib.figure.Figure`, never pyplot:
pyplot keeps every figure it makes in one global list, shared by every learner, until closed.

A `Heatmap` is a figure that needs no drawing where HTML can be shown: the page and notebooks
show it as a shaded HTML table (about a millisecond; matplotlib takes a few hundred for the same
grid of labelled cells), and its `savefig` draws it with matplotlib for a terminal, so anything
that saves a Reply's figure works with it unchanged.
"""

from __future__ import annotations

import html
from dataclasses import dataclass
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


LIGHT, DARK = (255, 255, 255), (8, 48, 107)  # matplotlib's "Blues" ends: shade 0 and shade 1


def shade_rgb(value: float) -> tuple[int, int, int]:
    """A shade from 0 (white) to 1 (dark blue), linear in each channel; out-of-range values clip.

    shade_rgb(0) -> (255, 255, 255); shade_rgb(1) -> (8, 48, 107)"""
    v = min(max(float(value), 0.0), 1.0)
    return tuple(round(a + (b - a) * v) for a, b in zip(LIGHT, DARK))  # type: ignore[return-value]


@dataclass
class Heatmap:
    """Rows x columns of cells, each a short text on a shade from 0 to 1, with the value
    written under the text. `tips` (optional, same shape) is each cell's hover text."""

    title: str
    rows: list[str]  # row labels, top to bottom
    columns: list[str]  # column labels, left to right
    cells: list[list[str]]
    values: list[list[float]]  # 0..1: the shade, and the number shown
    caption: str = ""  # what rows, columns and shade mean
    tips: list[list[str]] | None = None

    def html(self) -> str:
        """A self-contained HTML table: every text escaped, colours inline (fixed, so it reads the
        same in a light and a dark page), so it needs no stylesheet and no sanitiser pass."""
        esc = html.escape
        td = "padding:1px 4px;text-align:center;font-family:monospace;font-size:12px;line-height:1.15;"
        head = "".join(f'<th style="font-family:monospace;font-size:12px">{esc(c)}</th>' for c in self.columns)
        body = []
        for r, label in enumerate(self.rows):
            cells = []
            for c, text in enumerate(self.cells[r]):
                v = self.values[r][c]
                bg, fg = shade_rgb(v), "#fff" if v > 0.6 else "#111"
                tip = f' title="{esc(self.tips[r][c])}"' if self.tips else ""
                cells.append(f'<td style="{td}background:rgb{bg};color:{fg}"{tip}>{esc(text)}'
                             f'<br><small style="color:{fg}">{v:.2f}</small></td>')
            body.append(f'<tr><th style="font-size:12px;text-align:right">{esc(label)}</th>{"".join(cells)}</tr>')
        caption = f'<div style="font-size:12px">{esc(self.caption)}</div>' if self.caption else ""
        return (f'<div class="tutor-heatmap" style="overflow-x:auto"><div><b>{esc(self.title)}</b></div>'
                f'<table style="border-collapse:collapse;white-space:nowrap"><thead><tr><th></th>{head}</tr></thead>'
                f'<tbody>{"".join(body)}</tbody></table>{caption}</div>')

    def draw(self) -> Any:
        """The same grid drawn with matplotlib (rows top to bottom, as in the HTML)."""
        from matplotlib.figure import Figure

        n_rows, n_cols = len(self.rows), len(self.columns)
        width, height = 1.0 * n_cols + 1.2, 0.22 * n_rows + 1.4
        fig = Figure(figsize=(width, height))
        fig.subplots_adjust(left=0.8 / width, right=1 - 0.1 / width, bottom=0.9 / height, top=1 - 0.4 / height)
        ax = fig.add_subplot(1, 1, 1)
        ax.imshow(self.values, aspect="auto", cmap="Blues", vmin=0, vmax=1)
        for r, row in enumerate(self.cells):
            for c, text in enumerate(row):
                ax.text(c, r, f"{text[:10]}\n{self.values[r][c]:.2f}", ha="center", va="center", fontsize=6,
                        color="white" if self.values[r][c] > 0.6 else "black")
        ax.set_xticks(range(n_cols), [c[:10] for c in self.columns], fontsize=7)
        ax.set_yticks(range(n_rows), self.rows, fontsize=6)
        ax.set_xlabel(self.caption, fontsize=6, wrap=True)
        ax.set_title(self.title, fontsize=8)
        return fig

    def savefig(self, target: Any, **kwargs: Any) -> None:
        """Drawn and saved like a matplotlib Figure (a terminal shows the PNG; `kwargs` pass through)."""
        self.draw().savefig(target, **kwargs)
