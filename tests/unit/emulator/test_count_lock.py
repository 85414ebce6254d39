"""The count's work directory and lock: one per emulator directory, and a count that waits says what for."""
import fcntl
import threading
import time

from edgeopt.emulator.counter import _work_dir


def test_a_waiting_count_says_so_and_two_emulator_directories_do_not_wait(tmp_path, capsys):
    art = tmp_path / "m.tflite"
    art.write_bytes(b"model")
    a, b = tmp_path / "emulator-a", tmp_path / "emulator-b"
    with _work_dir(art, a) as (wa, ma):
        with _work_dir(art, b) as (wb, mb):  # another emulator directory: its own lock, no wait
            assert wa != wb and ma.read_bytes() == mb.read_bytes() == b"model"
            assert len(str(wa)) == len(str(wb))  # the same path length, whatever the emulator directory
        assert "waiting" not in capsys.readouterr().err
        lock = wa.parent / f"{wa.name}.lock"
        held = open(lock, "w")
    fcntl.flock(held, fcntl.LOCK_EX)  # another process counting in emulator-a
    threading.Timer(0.5, lambda: (fcntl.flock(held, fcntl.LOCK_UN), held.close())).start()
    t0 = time.perf_counter()
    with _work_dir(art, a) as (again, _):
        assert again == wa
    err = capsys.readouterr().err
    assert time.perf_counter() - t0 >= 0.4
    assert "waiting for another count of" in err and str(a) in err and str(lock) in err and "waited" in err
    assert not wa.exists()  # removed afterwards
