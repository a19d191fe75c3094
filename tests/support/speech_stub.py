"""A stand-in for tars-tts where a test runs the robot without the speech engines.

It answers each ``tts/say`` with ``tts/status`` ``speaking_start``, then ``speaking_end``
after a reading time (0.05 s per character, 0.5..4 s), cut short by ``tts/control``.
"""

from __future__ import annotations

import threading

from services import topics as t
from services.common import publish
from tars_mqtt import Message, MQTTClient

__all__ = ["SpeechStub"]


class SpeechStub:
    """Says ``tts/say`` texts by announcing them: start, a reading time, end."""

    def __init__(self, client: MQTTClient) -> None:
        self.client, self._hush = client, threading.Event()
        client.subscribe(t.TTS_SAY.name, self.on_say, qos=1)
        client.subscribe(t.TTS_CONTROL.name, lambda msg: self._hush.set(), qos=1)

    def on_say(self, msg: Message) -> None:
        data = msg.data if isinstance(msg.data, dict) else {}
        status = {"utt_id": data["utt_id"]} if isinstance(data.get("utt_id"), str) else {}
        self._hush.clear()
        publish(self.client, t.TTS_STATUS, {"event": "speaking_start", **status})
        self._hush.wait(min(4.0, max(0.5, 0.05 * len(str(data.get("text", ""))))))
        publish(self.client, t.TTS_STATUS, {"event": "speaking_end", **status})
