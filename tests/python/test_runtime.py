import pytest
from numpy._core.multiarray import _get_madvise_hugepage, _set_madvise_hugepage

from text_clustering.runtime import avoid_hugepage_stalls


@pytest.fixture
def numpy_hugepages(monkeypatch):
    """NumPy's madvise-hugepage switch on at the start, restored after the test; no
    NUMPY_MADVISE_HUGEPAGE in the environment."""
    monkeypatch.delenv("NUMPY_MADVISE_HUGEPAGE", raising=False)
    before = _set_madvise_hugepage(True)
    yield
    _set_madvise_hugepage(before)


def thp(tmp_path, enabled, defrag):
    folder = tmp_path / "transparent_hugepage"
    folder.mkdir()
    (folder / "enabled").write_text(enabled + "\n")
    (folder / "defrag").write_text(defrag + "\n")
    return folder


@pytest.mark.parametrize(
    "defrag",
    [
        "always defer defer+madvise [madvise] never",
        "always defer [defer+madvise] madvise never",
        "[always] defer defer+madvise madvise never",
    ],
)
def test_numpy_stops_asking_for_huge_pages_where_their_faults_compact_memory(
    tmp_path, numpy_hugepages, defrag
):
    assert avoid_hugepage_stalls(thp(tmp_path, "always [madvise] never", defrag)) is True
    assert _get_madvise_hugepage() is False


@pytest.mark.parametrize(
    "enabled, defrag",
    [
        ("always [madvise] never", "always [defer] defer+madvise madvise never"),
        ("always [madvise] never", "always defer defer+madvise madvise [never]"),
        ("always madvise [never]", "always defer defer+madvise [madvise] never"),
    ],
)
def test_numpy_keeps_huge_pages_where_they_cannot_stall(tmp_path, numpy_hugepages, enabled, defrag):
    assert avoid_hugepage_stalls(thp(tmp_path, enabled, defrag)) is False
    assert _get_madvise_hugepage() is True


def test_no_thp_files_and_the_users_own_choice_are_left_alone(
    tmp_path, numpy_hugepages, monkeypatch
):
    assert avoid_hugepage_stalls(tmp_path / "missing") is False
    assert _get_madvise_hugepage() is True
    stalling = thp(tmp_path, "always [madvise] never", "always defer defer+madvise [madvise] never")
    monkeypatch.setenv("NUMPY_MADVISE_HUGEPAGE", "1")
    assert avoid_hugepage_stalls(stalling) is False
    assert _get_madvise_hugepage() is True
