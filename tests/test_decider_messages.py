"""Messages to the deciding process: any text, the size of the text itself."""

from __future__ import annotations

import asyncio

from genea_automate.decider import _read, message_line


async def test_a_message_comes_back_as_it_was_sent_and_is_not_inflated() -> None:
    plugin = "# " + "é" * 10_000
    secret = "caf\udce9"  # an environment value that is not UTF-8 (b"caf\xe9")
    message = {"config": {"plugins": {"p.py": plugin}, "expansions": {"S": secret}}}

    line = message_line(message)

    assert len(line) < 2 * len(plugin) + 200  # UTF-8, not six-byte \u escapes
    reader = asyncio.StreamReader()
    reader.feed_data(line)
    reader.feed_eof()
    assert await _read(reader) == message
    assert await _read(reader) is None  # the end of input
