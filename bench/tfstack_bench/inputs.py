"""The images the benchmark sends: held-out digits of the training's own split (never seen in
training), as 28x28 grey PNGs, the size the issue's first measurement used."""

from __future__ import annotations

import io

from PIL import Image

SIDE = 28


def digit_pngs(count: int = 16, side: int = SIDE) -> list[bytes]:
    """`count` different PNGs, so no layer can answer from a cache of one image."""
    from model_export.dataset import encode_png, load_digits_split

    split = load_digits_split()
    pngs = []
    for pixels in split.test_pixels[:count]:
        small = Image.open(io.BytesIO(encode_png(pixels)))
        buffer = io.BytesIO()
        small.resize((side, side), Image.Resampling.NEAREST).save(buffer, format="PNG")
        pngs.append(buffer.getvalue())
    return pngs
