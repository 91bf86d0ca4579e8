"""Photos are checked, stripped of metadata and stored by content hash."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from PIL import Image

from bot.media import MediaError, MediaStore
from tests.e2e import jpeg_with_exif


def test_exif_is_removed_and_name_is_the_hash(tmp_path: Path) -> None:
    store = MediaStore(tmp_path, 1_000_000)
    raw = jpeg_with_exif()
    with Image.open(io.BytesIO(raw)) as original:
        assert original.getexif()  # the input really carries metadata
    ref = store.store_image(raw, channel_file_id="AgAD")
    path = store.path_of(ref)
    data = path.read_bytes()
    import hashlib

    assert hashlib.sha256(data).hexdigest() == ref.sha256 and ref.sha256 in path.name
    with Image.open(path) as img:
        assert not img.getexif() and img.size == (64, 48)
    assert b"SecretPhoneMaker" not in data
    assert ref.mime == "image/jpeg" and ref.channel_file_id == "AgAD"
    assert store.store_image(raw).path == ref.path  # same picture, same file


def test_too_large_and_wrong_type_are_refused(tmp_path: Path) -> None:
    store = MediaStore(tmp_path, 2048)
    with pytest.raises(MediaError) as exc:
        store.store_image(b"\xff" * 5000)
    assert exc.value.code == "too_large"
    store = MediaStore(tmp_path, 1_000_000)
    for bad in (b"GIF89a" + b"\x00" * 100, b"%PDF-1.4 not an image", b""):
        with pytest.raises(MediaError) as exc:
            store.store_image(bad)
        assert exc.value.code == "bad_type"
    buf = io.BytesIO()
    Image.new("RGB", (10, 10)).save(buf, "GIF")
    with pytest.raises(MediaError):
        store.store_image(buf.getvalue())


def test_huge_pixel_count_is_refused_without_decoding(tmp_path: Path) -> None:
    buf = io.BytesIO()
    Image.new("1", (8000, 6000)).save(buf, "PNG")  # 48 Mpx, small file
    with pytest.raises(MediaError) as exc:
        MediaStore(tmp_path, 10_000_000).store_image(buf.getvalue())
    assert exc.value.code == "too_large"


def test_big_photos_are_scaled_down(tmp_path: Path) -> None:
    buf = io.BytesIO()
    Image.new("RGB", (4000, 3000), "blue").save(buf, "JPEG")
    ref = MediaStore(tmp_path, 10_000_000).store_image(buf.getvalue())
    with Image.open(tmp_path / ref.path) as img:
        assert max(img.size) == 2560
