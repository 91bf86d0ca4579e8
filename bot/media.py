"""Photo storage: checked, EXIF-stripped, content-addressed files under MEDIA_DIR."""

from __future__ import annotations

import hashlib
import io
from pathlib import Path

from PIL import Image, ImageOps, UnidentifiedImageError

from handlers.events import MediaRef

ALLOWED = {
    "JPEG": ("image/jpeg", "jpg"),
    "PNG": ("image/png", "png"),
    "WEBP": ("image/webp", "webp"),
}
MAX_PIXELS = 40_000_000  # decompression-bomb guard
MAX_SIDE = 2560  # larger photos are scaled down: citizens are on mobile data


class MediaError(Exception):
    """`code` is one of too_large | bad_type | download_failed."""

    def __init__(self, code: str, detail: str = "") -> None:
        super().__init__(f"{code}: {detail}" if detail else code)
        self.code = code


class MediaStore:
    def __init__(self, root: Path, max_bytes: int) -> None:
        self.root = Path(root)
        self.max_bytes = max_bytes

    def path_of(self, ref: MediaRef) -> Path:
        return self.root / ref.path

    def store_image(self, data: bytes, channel_file_id: str | None = None) -> MediaRef:
        """Check an uploaded image, drop its metadata (EXIF, GPS) and store it.

        Raises MediaError("too_large" | "bad_type").
        """
        if len(data) > self.max_bytes:
            raise MediaError("too_large", f"{len(data)} bytes")
        try:
            with Image.open(io.BytesIO(data)) as probe:
                fmt = probe.format or ""
                if fmt not in ALLOWED:
                    raise MediaError("bad_type", fmt or "unknown")
                if probe.width * probe.height > MAX_PIXELS:
                    raise MediaError("too_large", f"{probe.width}x{probe.height}")
                probe.verify()
            with Image.open(io.BytesIO(data)) as opened:
                opened.load()
                img: Image.Image = ImageOps.exif_transpose(opened)  # keep visible orientation
                if max(img.size) > MAX_SIDE:
                    img.thumbnail((MAX_SIDE, MAX_SIDE))
                clean = self._reencode(img, fmt)
        except MediaError:
            raise
        except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError) as exc:
            raise MediaError("bad_type", type(exc).__name__) from None
        mime, ext = ALLOWED[fmt]
        digest = hashlib.sha256(clean).hexdigest()
        rel = f"{digest[:2]}/{digest}.{ext}"
        target = self.root / rel
        if not target.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            tmp = target.with_suffix(".tmp")
            tmp.write_bytes(clean)
            tmp.replace(target)
        return MediaRef(
            sha256=digest, mime=mime, size=len(clean), path=rel, channel_file_id=channel_file_id
        )

    @staticmethod
    def _reencode(img: Image.Image, fmt: str) -> bytes:
        """Write pixels only: no EXIF, no XMP, no ICC comments."""
        out = io.BytesIO()
        if fmt == "JPEG":
            if img.mode not in ("RGB", "L"):
                img = img.convert("RGB")
            img.save(out, "JPEG", quality=85, optimize=True)
        elif fmt == "PNG":
            img.save(out, "PNG", optimize=True)
        else:
            img.save(out, "WEBP", quality=85)
        return out.getvalue()
