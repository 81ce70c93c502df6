"""Pictures of datasets and retrieval results (numpy images, matplotlib figures saved as PNG).

Colours are the RGB tuples of :mod:`oml_fast.const` (OML's values): ``BLUE`` frames a query,
``GREEN`` a correct (same label) gallery item, ``RED`` a wrong one, ``GRAY`` a ground-truth item,
``BLACK`` an item whose correctness is unknown.
"""

from __future__ import annotations

import base64
import html
import io
import wave
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from .const import BLACK, BLUE, GRAY, GREEN, RED, TColor
from .errors import require_extra


def _check_image(image: np.ndarray, name: str = "image") -> None:
    if not (
        isinstance(image, np.ndarray) and image.ndim == 3 and image.shape[2] == 3 and image.dtype == np.uint8
    ):
        shape = getattr(image, "shape", None)
        raise ValueError(f"`{name}` must be an HxWx3 uint8 array, got {type(image).__name__} {shape}")


def draw_bbox(image: np.ndarray, bbox: Sequence[int] | None, color: TColor, thickness: int = 1) -> np.ndarray:
    """Returns a copy of ``image`` (uint8 [H, W, 3]) with the box ``(x_1, y_1, x_2, y_2)`` outlined.

    >>> out = draw_bbox(np.zeros((4, 4, 3), np.uint8), (1, 1, 3, 3), RED)
    >>> out[1, 1].tolist(), out[0, 0].tolist()
    ([255, 0, 0], [0, 0, 0])
    """
    _check_image(image)
    image = image.copy()
    if bbox is None:
        return image
    x1, y1, x2, y2 = (int(v) for v in bbox)
    h, w = image.shape[:2]
    x1, x2 = max(0, min(x1, w - 1)), max(0, min(x2 - 1, w - 1))
    y1, y2 = max(0, min(y1, h - 1)), max(0, min(y2 - 1, h - 1))
    t = max(1, thickness)
    image[y1 : y1 + t, x1 : x2 + 1] = color
    image[max(y2 - t + 1, 0) : y2 + 1, x1 : x2 + 1] = color
    image[y1 : y2 + 1, x1 : x1 + t] = color
    image[y1 : y2 + 1, max(x2 - t + 1, 0) : x2 + 1] = color
    return image


def add_frame(image: np.ndarray, color: TColor, thickness: int | None = None) -> np.ndarray:
    """``image`` (uint8 [H, W, 3]) surrounded by a frame of ``color``; default thickness ~5% of the side.

    >>> add_frame(np.zeros((8, 8, 3), np.uint8), BLUE, thickness=2).shape
    (12, 12, 3)
    """
    _check_image(image)
    if thickness is None:
        thickness = max(1, round(0.05 * max(image.shape[:2])))
    return _pad_with_color(image, color, thickness)


def _pad_with_color(image: np.ndarray, color: TColor, thickness: int) -> np.ndarray:
    h, w = image.shape[:2]
    framed = np.empty((h + 2 * thickness, w + 2 * thickness, 3), dtype=np.uint8)
    framed[:] = np.asarray(color, dtype=np.uint8)
    framed[thickness : thickness + h, thickness : thickness + w] = image
    return framed


def upscale_small(image: np.ndarray, min_side: int = 64) -> np.ndarray:
    """Nearest-neighbour upscaling of tiny images (e.g. 8x8 digits) so that frames stay thin next to them.

    >>> upscale_small(np.zeros((8, 8, 3), np.uint8)).shape
    (64, 64, 3)
    """
    _check_image(image)
    factor = int(np.ceil(min_side / max(1, min(image.shape[:2]))))
    return image if factor <= 1 else image.repeat(factor, axis=0).repeat(factor, axis=1)


def plot_retrieval_rows(
    rows: Sequence[Sequence[tuple[np.ndarray, str]]],
    save_path: str | Path | None = None,
    cell_size: float = 1.6,
    show: bool = False,
):
    """A grid figure: one row per query, cells ``(image, caption)``; saved as PNG when ``save_path`` is given.

    Returns the matplotlib ``Figure`` (closed after saving when ``save_path`` is given and ``show`` is
    not: pictures logged in a loop do not pile up in pyplot's figure manager).

    >>> img = np.zeros((8, 8, 3), np.uint8)
    >>> fig = plot_retrieval_rows([[(img, "query"), (img, "0.12")]])
    >>> len(fig.axes)
    2
    """
    matplotlib = require_extra("matplotlib", "drawing retrieval results")
    if not show:
        matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    if not rows or not all(rows):
        raise ValueError("`rows` must be a non-empty list of non-empty rows of (image, caption)")
    n_cols = max(len(r) for r in rows)
    fig, axes = plt.subplots(
        len(rows), n_cols, figsize=(cell_size * n_cols, cell_size * len(rows) + 0.2), squeeze=False
    )
    for r, row in enumerate(rows):
        for c in range(n_cols):
            ax = axes[r][c]
            ax.axis("off")
            if c < len(row):
                image, caption = row[c]
                ax.imshow(image, interpolation="nearest")
                ax.set_title(caption, fontsize=8)
    fig.tight_layout()
    if save_path is not None:
        Path(save_path).parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(save_path, dpi=100)
    if show:
        fig.show()
    elif save_path is not None:
        plt.close(fig)
    return fig


_PICTURE_SIZE = 256  # side of the pictures of texts and audio items (OML's)


def visualize_text(text: str, color: TColor = BLACK, draw_bbox: bool = True) -> np.ndarray:
    """``text`` drawn black on white, word-wrapped, as uint8 [256, 256, 3] with a frame of ``color``.

    Text that does not fit ends with an ellipsis.

    >>> visualize_text("a short text", color=GREEN).shape
    (256, 256, 3)
    """
    from PIL import Image, ImageDraw, ImageFont

    size = _PICTURE_SIZE
    frame = 5 if draw_bbox else 0
    canvas = Image.new("RGB", (size, size), (255, 255, 255))
    draw = ImageDraw.Draw(canvas)
    font = ImageFont.load_default()
    margin = frame + 6
    line_height = int(draw.textbbox((0, 0), "Ag", font=font)[3]) + 3
    lines = _wrap(text, lambda line: draw.textlength(line, font=font) <= size - 2 * margin)
    max_lines = max(1, (size - 2 * margin) // line_height)
    if len(lines) > max_lines:
        lines = [*lines[: max_lines - 1], lines[max_lines - 1] + " ..."]
    for i, line in enumerate(lines):
        draw.text((margin, margin + i * line_height), line, fill=(0, 0, 0), font=font)
    image = np.asarray(canvas, dtype=np.uint8).copy()
    if frame:
        image[:frame], image[-frame:], image[:, :frame], image[:, -frame:] = color, color, color, color
    return image


def _wrap(text: str, fits) -> list[str]:
    """Greedy word wrap: the lines of ``text`` such that ``fits(line)``; over-long words are cut."""
    lines: list[str] = []
    for paragraph in text.splitlines() or [""]:
        line = ""
        for word in paragraph.split():
            candidate = f"{line} {word}" if line else word
            if fits(candidate):
                line = candidate
                continue
            if line:
                lines.append(line)
            while not fits(word) and len(word) > 1:  # a word wider than the picture: cut it
                cut = max(1, next((n for n in range(len(word), 0, -1) if fits(word[:n])), 1))
                lines.append(word[:cut])
                word = word[cut:]
            line = word
        lines.append(line)
    return lines


def _colormap(values: np.ndarray) -> np.ndarray:
    """Values in [0, 1] -> uint8 RGB through a dark-blue / green / yellow ramp (viridis-like)."""
    stops = np.array([[68, 1, 84], [59, 82, 139], [33, 145, 140], [94, 201, 98], [253, 231, 37]], float)
    position = np.clip(values, 0, 1) * (len(stops) - 1)
    low = np.minimum(position.astype(int), len(stops) - 2)
    fraction = (position - low)[..., None]
    return (stops[low] * (1 - fraction) + stops[low + 1] * fraction).round().astype(np.uint8)


def _waveform_strip(waveform: np.ndarray, width: int, height: int) -> np.ndarray:
    """The min / max envelope of ``waveform`` (float [T], roughly in [-1, 1]) per pixel column."""
    strip = np.full((height, width, 3), 255, np.uint8)
    if waveform.size == 0:
        return strip
    columns = np.array_split(waveform, width) if waveform.size >= width else [waveform] * width
    scale = max(float(np.abs(waveform).max()), 1e-8)
    middle = (height - 1) / 2
    for x, column in enumerate(columns):
        if column.size == 0:
            continue
        top = int(round(middle - float(column.max()) / scale * middle))
        bottom = int(round(middle - float(column.min()) / scale * middle))
        strip[max(top, 0) : min(bottom, height - 1) + 1, x] = (31, 119, 180)
    strip[int(middle), :] = np.minimum(strip[int(middle), :], 200)
    return strip


def visualize_audio(spec_repr, color: TColor = BLACK, draw_bbox: bool = True, waveform=None) -> np.ndarray:
    """A spectrogram (FloatTensor / ndarray [n_bands, frames], low bands at the bottom) as uint8 [256, 256, 3].

    With ``waveform`` (FloatTensor / ndarray [T] or [C, T]; channels averaged), its envelope is drawn
    in a strip above the spectrogram. The picture is framed with ``color`` when ``draw_bbox``.

    >>> visualize_audio(np.random.rand(128, 40), waveform=np.sin(np.arange(4000) / 10)).shape
    (256, 256, 3)
    """
    from PIL import Image

    size = _PICTURE_SIZE
    spec = np.asarray(spec_repr.detach().cpu() if hasattr(spec_repr, "detach") else spec_repr, float)
    if spec.ndim == 3:
        spec = spec.mean(axis=0)
    if spec.ndim != 2 or spec.size == 0:
        raise ValueError(f"`spec_repr` must be [n_bands, frames], got shape {spec.shape}")
    low, high = float(spec.min()), float(spec.max())
    rgb = _colormap((spec - low) / (high - low) if high > low else np.zeros_like(spec))[::-1]
    strip_height = size // 4 if waveform is not None else 0
    picture = np.asarray(Image.fromarray(rgb).resize((size, size - strip_height), Image.Resampling.BILINEAR))
    if waveform is not None:
        wave = np.asarray(waveform.detach().cpu() if hasattr(waveform, "detach") else waveform, float)
        wave = wave.reshape(-1, wave.shape[-1]).mean(axis=0) if wave.ndim > 1 else wave
        picture = np.concatenate([_waveform_strip(wave, size, strip_height), picture], axis=0)
    picture = np.ascontiguousarray(picture, dtype=np.uint8)
    if draw_bbox:
        frame = 5
        picture[:frame], picture[-frame:], picture[:, :frame], picture[:, -frame:] = (
            color,
            color,
            color,
            color,
        )
    return picture


def _png_base64(image: np.ndarray) -> str:
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def wav_bytes(audio, sample_rate: int) -> bytes:
    """``audio`` (FloatTensor / ndarray [C, T] or [T], values in [-1, 1]) as a 16-bit PCM WAV file."""
    samples = np.asarray(audio.detach().cpu() if hasattr(audio, "detach") else audio, dtype=np.float64)
    samples = samples[None] if samples.ndim == 1 else samples
    pcm = (np.clip(samples, -1.0, 1.0) * 32767).round().astype("<i2").T  # [T, C], interleaved
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(pcm.shape[1])
        out.setsampwidth(2)
        out.setframerate(int(sample_rate))
        out.writeframes(pcm.tobytes())
    return buffer.getvalue()


def visualize_audio_with_player(
    audio,
    spec_repr,
    sample_rate: int,
    title: str = "",
    color: TColor = BLACK,
    draw_bbox: bool = True,
) -> str:
    """An HTML block: ``title``, the picture of :func:`visualize_audio` and an audio player (WAV inline).

    >>> html = visualize_audio_with_player(np.zeros((1, 800)), np.zeros((128, 2)), 8000, "Query #0")
    >>> "data:audio/wav;base64," in html and "data:image/png;base64," in html
    True
    """
    picture = visualize_audio(spec_repr, color=color, draw_bbox=False, waveform=audio)
    sound = base64.b64encode(wav_bytes(audio, sample_rate)).decode("ascii")
    body = (
        f'<img src="data:image/png;base64,{_png_base64(picture)}" style="width: 100%;" alt="spectrogram" />'
        '<audio controls style="display: block; width: 100%; margin-top: 3px;">'
        f'<source src="data:audio/wav;base64,{sound}" type="audio/wav"></audio>'
    )
    return html_block(title, body, color if draw_bbox else (255, 255, 255))


def css_color(color: TColor) -> str:
    """A colour as CSS.

    >>> css_color(GREEN)
    'rgb(0, 255, 0)'
    """
    r, g, b = (int(c) for c in color)
    return f"rgb({r}, {g}, {b})"


def html_block(title: str, body: str, color: TColor = BLACK, width: int = 256) -> str:
    """One cell of an HTML grid: a bold ``title`` above ``body`` (HTML), in a frame of ``color``."""
    return (
        f'<div style="margin: 10px; display: inline-block; vertical-align: top; width: {width}px;">'
        f'<div style="text-align: center; font-weight: bold; margin-bottom: 5px;">{html.escape(title)}</div>'
        f'<div style="border: 5px solid {css_color(color)}; padding: 3px;">{body}</div></div>'
    )


def text_as_html(text: str, title: str, color: TColor = BLACK) -> str:
    """A text as an HTML cell (escaped: the text is shown, never interpreted).

    >>> "&lt;b&gt;" in text_as_html("<b>", "Query #0", BLUE)
    True
    """
    body = f'<div style="white-space: pre-wrap; font-family: sans-serif;">{html.escape(text)}</div>'
    return html_block(title, body, color)


def html_placeholder(width: int = 256) -> str:
    """An empty cell that keeps the columns of an HTML grid aligned."""
    return f'<div style="margin: 10px; display: inline-block; width: {width}px;"></div>'


def html_blocks_to_grid(blocks: Sequence[Sequence[str]]) -> str:
    """Rows of HTML cells as one HTML fragment (one flex row per query)."""
    rows = ["<div style='display: flex; justify-content: left;'>" + "".join(row) + "</div>" for row in blocks]
    return "<div>" + "\n".join(rows) + "</div>"


__all__ = [
    "TColor",
    "BLACK",
    "BLUE",
    "GREEN",
    "RED",
    "GRAY",
    "draw_bbox",
    "add_frame",
    "upscale_small",
    "plot_retrieval_rows",
    "visualize_text",
    "visualize_audio",
    "visualize_audio_with_player",
    "wav_bytes",
    "css_color",
    "html_block",
    "text_as_html",
    "html_placeholder",
    "html_blocks_to_grid",
]
