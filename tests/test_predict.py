"""What ``segkit.predict`` refuses before it loads a model, and the write that never replaces.

The command itself, on real files, is in the fault matrix (``predict_*`` cases of
``scripts/fault_matrix.py``, run by ``tests/test_faults.py``).
"""

from __future__ import annotations

import pytest

from segkit.app.predict import check_output
from segkit.core.atomic import creating
from segkit.core.errors import DataError


def photos(folder, names):
    folder.mkdir(parents=True, exist_ok=True)
    paths = [folder / f"{name}.png" for name in names]
    for path in paths:
        path.write_bytes(b"a photo")
    return paths


def test_an_output_that_is_the_input_or_inside_it_or_a_file_is_refused(tmp_path):
    images = photos(tmp_path / "in", ["a", "b"])
    for output in (tmp_path / "in", tmp_path / "in" / "masks" / "deeper"):
        with pytest.raises(DataError, match=r"is inside input=.*give a folder outside"):
            check_output(tmp_path / "in", images, output, True, overwrite=True)
    (tmp_path / "file").write_text("x")
    with pytest.raises(DataError, match="output=.*file: is a file"):
        check_output(tmp_path / "in", images, tmp_path / "file", True, False)


def test_a_mask_never_replaces_its_own_input_image_even_with_overwrite(tmp_path):
    (image,) = photos(tmp_path, ["a"])
    with pytest.raises(DataError, match="the mask a.png would replace the input image"):
        check_output(image, [image], tmp_path, False, overwrite=True)


def test_files_in_the_way_are_listed_unless_overwrite(tmp_path):
    images = photos(tmp_path / "images", list("abcde"))
    photos(tmp_path / "masks", list("abcde"))
    message = (
        r"5 of the files predict writes exist already \(a.png, b.png, c.png and 2 more\); "
        "give an empty folder, or overwrite=true"
    )
    with pytest.raises(DataError, match=message):
        check_output(tmp_path / "images", images, tmp_path / "masks", False, False)
    check_output(tmp_path / "images", images, tmp_path / "masks", False, overwrite=True)
    # Overlays are files predict writes too.
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "c_overlay.jpg").write_bytes(b"someone's")
    with pytest.raises(DataError, match=r"1 of the files .* \(c_overlay.jpg\)"):
        check_output(tmp_path / "images", images, tmp_path / "out", True, False)
    check_output(tmp_path / "images", images, tmp_path / "out", False, False)


def test_creating_never_replaces_a_file_that_appeared_and_leaves_no_claim_on_failure(tmp_path):
    target = tmp_path / "mask.png"
    with creating(target) as tmp:
        tmp.write_bytes(b"new")
    assert target.read_bytes() == b"new"
    with pytest.raises(FileExistsError), creating(target) as tmp:
        tmp.write_bytes(b"newer")
    assert target.read_bytes() == b"new"
    with creating(target, overwrite=True) as tmp:
        tmp.write_bytes(b"asked for")
    assert target.read_bytes() == b"asked for"
    other = tmp_path / "other.png"
    with pytest.raises(RuntimeError), creating(other):
        raise RuntimeError("the writer failed")
    assert not other.exists() and sorted(p.name for p in tmp_path.iterdir()) == ["mask.png"]
