import gc
import weakref

import pytest
from numpy._core.multiarray import _get_madvise_hugepage, _set_madvise_hugepage

from text_clustering import runtime
from text_clustering.runtime import avoid_hugepage_stalls, freeze_collector


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


@pytest.fixture
def exit_hooks(monkeypatch):
    """The functions freeze_collector registers to run at exit (none really registered);
    whatever it froze is unfrozen after the test."""
    registered = []
    monkeypatch.setattr(runtime.atexit, "register", registered.append)
    yield registered
    gc.unfreeze()


@pytest.fixture
def dbt_command(monkeypatch):
    """This process as if dbt's command line (`dbt build`) were running it."""
    monkeypatch.setattr(runtime.sys, "argv", ["/somewhere/.venv/bin/dbt", "build"])
    monkeypatch.setitem(runtime.sys.modules, "dbt.cli.main", runtime.sys.modules[__name__])
    monkeypatch.delenv("TEXT_CLUSTERING_GC_FREEZE", raising=False)


def test_the_collector_stops_rescanning_what_is_alive_now_and_at_exit(dbt_command, exit_hooks):
    gc.unfreeze()
    alive = [object() for _ in range(10)]  # noqa: F841 - alive while it freezes
    assert freeze_collector() is True
    assert gc.get_freeze_count() > 0
    assert exit_hooks == [gc.freeze]
    later = Node()
    later.me = later  # a cycle made after the freeze is still collected
    gone = weakref.ref(later)
    del later
    gc.collect()
    assert gone() is None


class Node:
    me: object = None


@pytest.mark.parametrize(
    ("argv", "dbt_loaded", "value", "frozen"),
    [
        (["/x/bin/dbt", "build"], True, "0", False),  # the user's 0: never
        (["/x/bin/dbt", "build"], True, " 0 ", False),
        (["/x/bin/python", "notebook.py"], True, None, False),  # dbt used by a program
        (["/x/bin/dbt", "build"], False, None, False),  # some other `dbt` script
        (["/x/bin/python", "notebook.py"], False, None, False),
        (["/x/bin/python", "notebook.py"], False, "1", True),  # the user's 1: anywhere
        ([], False, None, False),
    ],
)
def test_the_collector_is_frozen_only_in_dbts_own_process_or_when_asked(
    monkeypatch, exit_hooks, argv, dbt_loaded, value, frozen
):
    monkeypatch.setattr(runtime.sys, "argv", argv)
    if dbt_loaded:
        monkeypatch.setitem(runtime.sys.modules, "dbt.cli.main", runtime.sys.modules[__name__])
    else:
        monkeypatch.delitem(runtime.sys.modules, "dbt.cli.main", raising=False)
    if value is None:
        monkeypatch.delenv("TEXT_CLUSTERING_GC_FREEZE", raising=False)
    else:
        monkeypatch.setenv("TEXT_CLUSTERING_GC_FREEZE", value)
    gc.unfreeze()
    assert freeze_collector() is frozen
    assert (gc.get_freeze_count() > 0) is frozen
    assert exit_hooks == ([gc.freeze] if frozen else [])


def test_n_threads_reaches_blas_from_any_thread_and_waits_for_a_one_thread_section():
    # dbt runs each model on a thread of its own, and threadpoolctl's limits reach OpenBLAS
    # only from the thread that set one first: var n_threads went nowhere from the others
    import threading
    from concurrent.futures import ThreadPoolExecutor

    from threadpoolctl import ThreadpoolController, threadpool_limits

    from text_clustering import runtime
    from text_clustering.runtime import _set_threads, one_blas_thread

    blas = ThreadpoolController().select(user_api="blas").lib_controllers
    before, threads_before = [library.get_num_threads() for library in blas], runtime._threads

    def in_a_model_thread(n):
        thread = threading.Thread(target=runtime.use_threads, args=(n,))
        thread.start()
        thread.join()

    owner = ThreadPoolExecutor(1)  # a thread that takes threadpoolctl's control, as dbt's do
    owner.submit(lambda: threadpool_limits(limits=2)).result()
    try:
        in_a_model_thread(1)
        assert [library.get_num_threads() for library in blas] == [1] * len(blas)
        with one_blas_thread():
            in_a_model_thread(3)
            assert [library.get_num_threads() for library in blas] == [1] * len(blas)  # held
        assert [library.get_num_threads() for library in blas] == [3] * len(blas)
    finally:
        owner.shutdown()
        for library, threads in zip(blas, before, strict=True):
            _set_threads(library, threads)
        runtime._threads = threads_before
