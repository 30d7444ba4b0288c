"""The inbox the real-socket endpoints (QUIC, TLS, WebSocket) hand received frames through."""

import anyio
import pytest

from swarm.kernel import EndOfChannel
from swarm.transport.base import Inbox


def test_an_inbox_hands_frames_over_in_order_and_ends_once_closed():
    async def main() -> None:
        inbox = Inbox()
        with pytest.raises(EndOfChannel, match="not open"):
            await inbox.get()
        inbox.close()  # closing one never opened does nothing
        inbox.open()
        inbox.put("a", b"1")
        inbox.put("b", b"2")
        assert [await inbox.get(), await inbox.get()] == [("a", b"1"), ("b", b"2")]
        inbox.put("a", b"3")
        inbox.close()
        assert await inbox.get() == ("a", b"3")  # what arrived before the close is still taken
        with pytest.raises(EndOfChannel, match="closed"):
            await inbox.get()
        with pytest.raises(anyio.ClosedResourceError):  # deliver() counts these as frames after close
            inbox.put("a", b"4")

    anyio.run(main)
