"""Decode any image file into an 8-bit RGB ``PIL.Image``, or fail with one line naming the file.

Conversions (``load_image``):

* ``RGB`` as is; ``1`` (bilevel), ``L`` (grayscale), ``YCbCr`` and ``CMYK`` through Pillow's
  converters (CMYK uses Pillow's device-independent formula; embedded ICC profiles are not applied).
* 16-bit grayscale (``I;16``, ``I;16B``, ``I;16L``, ``I;16N``) is scaled from 0..65535 to 0..255
  (``round(v / 257)``); Pillow's own ``convert`` would clip every value above 255 to white.
* 32-bit integer (``I``) is read as 16-bit data when its values lie in 0..65535 (this is how
  16-bit PNG and TIFF files often arrive) and scaled the same way; other ranges are stretched
  linearly from their minimum..maximum to 0..255. Float (``F``) images in 0..1 are scaled by 255,
  other ranges are stretched the same way.
* Anything with transparency (``RGBA``, ``LA``, ``PA``, ``La``, ``RGBa``, palette images with a
  ``transparency`` entry) is composited **on white**, as image viewers and browsers show it, so a
  cut-out object keeps its silhouette instead of revealing whatever colour the transparent pixels
  happen to store.
* The EXIF orientation tag is applied (photos from phones are stored sideways and tagged).
* Multi-frame files (GIF, TIFF) give their first frame.
"""
from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

from ..errors import EffnetError

__all__ = ["load_image", "check_image"]

_SIXTEEN_BIT = {"I;16", "I;16B", "I;16L", "I;16N"}
_WITH_ALPHA = {"RGBA", "LA", "PA", "La", "RGBa"}
# Pillow's decoders signal corrupt data with many exception types, not only OSError; these are
# the ones seen on truncated, empty or garbage files. Anything else is a bug and should surface.
_DECODE_ERRORS = (OSError, ValueError, SyntaxError, EOFError, IndexError, TypeError, struct.error,
                  zlib.error, Image.DecompressionBombError)


def _reason(exc: BaseException) -> str:
    if isinstance(exc, FileNotFoundError):
        return "no such file"
    if isinstance(exc, IsADirectoryError):
        return "is a directory"
    if isinstance(exc, Image.UnidentifiedImageError):
        return "not an image file, or a format Pillow cannot read"
    text = str(exc).strip().splitlines()
    return text[0] if text else exc.__class__.__name__


def _stretch(values: np.ndarray) -> np.ndarray:
    lo, hi = float(values.min()), float(values.max())
    if hi <= lo:
        return np.zeros(values.shape, dtype=np.uint8)
    return np.round((values.astype(np.float64) - lo) * (255.0 / (hi - lo))).astype(np.uint8)


def _high_depth_to_l(img: Image.Image) -> Image.Image:
    values = np.asarray(img)
    if img.mode in _SIXTEEN_BIT:
        out = np.round(values.astype(np.float64) / 257.0).astype(np.uint8)  # 65535 / 255 == 257
    elif img.mode == "I":
        if values.size and values.min() >= 0 and values.max() <= 65535:
            out = np.round(values.astype(np.float64) / 257.0).astype(np.uint8)
        else:
            out = _stretch(values)
    else:  # "F"
        finite = np.nan_to_num(values.astype(np.float64), nan=0.0, posinf=0.0, neginf=0.0)
        if finite.size and finite.min() >= 0.0 and finite.max() <= 1.0:
            out = np.round(finite * 255.0).astype(np.uint8)
        else:
            out = _stretch(finite)
    return Image.fromarray(out)  # 2-D uint8 -> mode "L"


def _composite_on_white(img: Image.Image) -> Image.Image:
    rgba = img.convert("RGBA")  # also un-premultiplies La / RGBa
    background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
    return Image.alpha_composite(background, rgba).convert("RGB")


def to_rgb(img: Image.Image) -> Image.Image:
    """Convert a decoded image of any Pillow mode to 8-bit RGB (rules in the module docstring)."""
    mode = img.mode
    if mode == "RGB":
        return img
    if mode in _SIXTEEN_BIT or mode in ("I", "F"):
        return _high_depth_to_l(img).convert("RGB")
    if mode in _WITH_ALPHA:
        return _composite_on_white(img)
    if mode == "P":
        if "transparency" in img.info:
            return _composite_on_white(img)
        return img.convert("RGB")
    if mode == "LAB":
        raise ValueError("Lab colour images are not supported")
    return img.convert("RGB")


def load_image(path: str | Path) -> Image.Image:
    """Read ``path`` fully into memory as an 8-bit RGB image.

    Raises ``EffnetError`` (a ``ValueError``) ``"cannot read image <path>: <reason>"`` for a
    missing, empty, truncated or non-image file.
    """
    try:
        with Image.open(path) as img:
            img.load()
            img = ImageOps.exif_transpose(img)
            return to_rgb(img).copy()
    except _DECODE_ERRORS as exc:
        raise EffnetError(f"cannot read image {path}: {_reason(exc)}") from exc


def check_image(path: str | Path) -> str | None:
    """``None`` when ``path`` decodes cleanly, else the one-line reason it does not.

    Runs Pillow's structural check (``verify``: chunk checksums, headers) and then a full decode,
    because ``verify`` alone does not notice pixel data cut short.
    """
    try:
        with Image.open(path) as img:
            img.verify()
    except _DECODE_ERRORS as exc:
        return f"cannot read image {path}: {_reason(exc)}"
    try:
        load_image(path)
    except EffnetError as exc:
        return str(exc)
    return None
