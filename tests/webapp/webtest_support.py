"""Helpers shared by the web front end's tests (imported by name: tests/webapp is on sys.path)."""

from __future__ import annotations

import io
import socket
from collections.abc import Callable
from dataclasses import dataclass

from flask import Flask
from PIL import Image

# make_app(**settings) -> a Flask app in test mode with its own upload folder
AppFactory = Callable[..., Flask]


def free_port() -> int:
    """A loopback port nobody listens on (the OS picked it and it was released again)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def png_bytes(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


@dataclass(frozen=True)
class Digit:
    label: int
    png: bytes


def held_out_digits() -> list[Digit]:
    # The same seeded, stratified split the training script uses (scripts/model_pipeline/dataset.py):
    # these images were never seen in training.
    import numpy as np
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    _, test_images, _, test_labels = train_test_split(
        digits.images, digits.target, test_size=0.2, random_state=1234, stratify=digits.target
    )
    result = []
    for pixels, label in zip(test_images, test_labels, strict=True):
        eight_bit = np.clip(np.rint(pixels / 16.0 * 255.0), 0, 255).astype(np.uint8)
        # 8x enlarged with nearest neighbour: looks like a digit in the browser, and the graph's
        # area resize brings it back to exactly the original 8x8 pixels.
        image = Image.fromarray(eight_bit).resize((64, 64), Image.Resampling.NEAREST)
        result.append(Digit(label=int(label), png=png_bytes(image)))
    return result
