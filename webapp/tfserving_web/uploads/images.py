"""Checks an uploaded file by decoding it with Pillow (never by its name) and prepares the bytes sent
to the model. The small pictures are made off the JSON API's request path: the preview only for the
page, the thumbnail by the thread that stores the upload."""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass

from PIL import Image, ImageOps, UnidentifiedImageError

from tfserving_web import metrics

ALLOWED_FORMATS = ("PNG", "JPEG", "GIF", "BMP", "WEBP")
# The digits graph decodes PNG and JPEG itself; other formats are re-encoded as PNG for it.
FORMATS_THE_MODEL_DECODES = {"PNG", "JPEG"}
EXTENSIONS = {"PNG": "png", "JPEG": "jpg", "GIF": "gif", "BMP": "bmp", "WEBP": "webp"}
PREVIEW_SIZE = 256
THUMBNAIL_SIZE = 96


class BadImage(ValueError):
    """The upload is not a usable image; the message is shown to the user (HTTP 400), the reason is
    the label it is counted under (tfweb_upload_rejections_total)."""

    status_code = 400

    def __init__(self, message: str, reason: str = metrics.REASON_BAD_REQUEST) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True)
class CheckedImage:
    format: str
    width: int
    height: int
    original: bytes
    model_bytes: bytes

    @property
    def extension(self) -> str:
        return EXTENSIONS[self.format]


def refuse_decompression_bombs() -> None:
    """Make Pillow's bomb warning an error in this process (set once, not toggled per request,
    because warning filters are process-wide and requests run in threads)."""
    warnings.filterwarnings("error", category=Image.DecompressionBombWarning)


def _png(image: Image.Image, compress_level: int = 6) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", compress_level=compress_level)
    return buffer.getvalue()


def _displayable(image: Image.Image) -> Image.Image:
    if image.mode in {"RGB", "RGBA", "L", "LA"}:
        return image
    return image.convert("RGBA" if "A" in image.getbands() or "transparency" in image.info else "RGB")


def _fit(image: Image.Image, size: int) -> Image.Image:
    """Scale into size x size; small images (an 8x8 digit) grow with nearest-neighbour so they stay crisp."""
    scale = size / max(image.width, image.height)
    new_size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
    resample = Image.Resampling.NEAREST if scale > 1 else Image.Resampling.LANCZOS
    return image.resize(new_size, resample)


def _open(data: bytes) -> Image.Image:
    try:
        return Image.open(io.BytesIO(data), formats=ALLOWED_FORMATS)
    except UnidentifiedImageError:
        accepted = ", ".join(ALLOWED_FORMATS)
        raise BadImage(
            f"not an image in one of the accepted formats ({accepted})", metrics.REASON_FORMAT
        ) from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise BadImage(
            "image has too many pixels (decompression bomb)", metrics.REASON_TOO_MANY_PIXELS
        ) from None
    except (OSError, SyntaxError, ValueError) as error:
        raise BadImage(f"image header is damaged: {error}", metrics.REASON_DAMAGED) from None


def check_image(data: bytes, max_pixels: int) -> CheckedImage:
    """Decode `data` fully or raise BadImage. The pixel count is checked from the header, before
    any pixel is decoded, so a small file that expands to gigabytes is refused cheaply."""
    if not data:
        raise BadImage("the file is empty", metrics.REASON_EMPTY)
    with _open(data) as image:
        width, height = image.size
        if width * height > max_pixels:
            raise BadImage(
                f"image is {width}x{height} pixels; at most {max_pixels} pixels are accepted",
                metrics.REASON_TOO_MANY_PIXELS,
            )
        image_format = image.format or ""
        try:
            image.load()  # full decode: catches truncated and corrupt files
        except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as error:
            raise BadImage(f"image data is damaged or truncated: {error}", metrics.REASON_DAMAGED) from None
        if image_format in FORMATS_THE_MODEL_DECODES:
            model_bytes = data
        else:
            model_bytes = _png(ImageOps.exif_transpose(_displayable(image)))
        return CheckedImage(
            format=image_format, width=width, height=height, original=data, model_bytes=model_bytes
        )


def _small_png(data: bytes, size: int) -> bytes:
    """An upload that passed check_image, upright, scaled into size x size, as PNG. Light compression:
    these are small, and made for every upload (a quarter less CPU than the default level)."""
    with _open(data) as decoded:
        return _png(_fit(ImageOps.exif_transpose(_displayable(decoded)), size), compress_level=1)


def preview_png(image: CheckedImage) -> bytes:
    """The picture of the upload on the result page."""
    return _small_png(image.original, PREVIEW_SIZE)


def thumbnail_png(original: bytes) -> bytes:
    """The picture of a stored upload in the page's list of recent predictions."""
    return _small_png(original, THUMBNAIL_SIZE)
