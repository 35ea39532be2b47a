"""WriteTurn: writers in two processes (here two handles) take turns."""

from __future__ import annotations

import threading
from pathlib import Path

from genea_automate.store.lockfile import WriteTurn
from tests.support.readonly import unwritable


def test_a_second_writer_waits_until_the_first_gives_the_turn_back(
    tmp_path: Path,
) -> None:
    path = tmp_path / "store.db.write-lock"
    first, second = WriteTurn(path), WriteTurn(path)
    first.take()
    order: list[str] = []
    taken = threading.Event()

    def take_second() -> None:
        second.take()
        order.append("second took it")
        taken.set()

    waiter = threading.Thread(target=take_second)
    waiter.start()
    assert not taken.wait(0.2)  # still waiting: the first holds the turn
    order.append("first gave it back")
    first.give_back()
    assert taken.wait(10)
    waiter.join()
    second.give_back()
    first.close()
    second.close()
    assert order == ["first gave it back", "second took it"]


def test_without_a_writable_folder_writes_go_without_a_turn(tmp_path: Path) -> None:
    folder = tmp_path / "ro"
    folder.mkdir()
    with unwritable(folder):
        turn = WriteTurn(folder / "store.db.write-lock")
        turn.take()  # does not raise, does not block
        turn.give_back()
        turn.close()
    assert not (folder / "store.db.write-lock").exists()
