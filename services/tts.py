"""tars-tts: says ``tts/say`` texts in order, obeys ``tts/control``, reports on ``tts/status``.

``tts/say`` ``{text, utt_id?, voice?, rate?}`` is queued; ``tts/control``
``{action: stop|pause|resume|mute|unmute}`` acts at once. ``tts/status`` events carry the
``utt_id``: ``speaking_start``, then ``paused``/``resumed``, then ``speaking_end`` (after
``stopped`` when a stop cut it short; a queued utterance a stop dropped gets ``stopped``
alone). The engine (:mod:`services.tts_engines`) and the output
(:mod:`services.audio_out`) come from the environment; :mod:`services.tts_player` plays.
"""

from __future__ import annotations

import itertools
import logging
import os
import re
from collections.abc import Mapping
from typing import Any

from tars_mqtt import Message, MQTTClient

from .audio_out import sink_from_env
from .common import Tally, env_int, problems, publish
from .runtime import Service, run
from .topics import TTS_CONTROL, TTS_SAY, TTS_STATUS, check_payload
from .tts_engines import engine_from_env
from .tts_player import Player
from .tts_queue import QueueFull, Status, Utterance

__all__ = ["MAX_TEXT", "main", "setup", "utterance_from"]

log = logging.getLogger("tars.tts")
MAX_TEXT = 2000  # characters: a longer text is refused, not read out for minutes
_VOICE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_+.-]{0,39}$")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")  # a NUL is no argument espeak-ng can get
_ids = itertools.count(1)


def utterance_from(data: Any) -> Utterance | str:
    """The utterance a ``tts/say`` asks for, or why it cannot be said."""
    if not isinstance(data, dict):
        return "data must be an object"
    found = check_payload(TTS_SAY, data)
    if found:
        return "; ".join(found)
    text = _CONTROL.sub(" ", data["text"]).strip()
    if not text:
        return "text is empty"
    if len(text) > MAX_TEXT:
        return f"text has {len(text)} characters (at most {MAX_TEXT})"
    voice, rate = data.get("voice"), data.get("rate")
    if voice is not None and not _VOICE.match(voice):
        return f"voice {voice[:40]!r} is not a voice name"
    if rate is not None and not 80 <= rate <= 450:
        return f"rate {rate!r} is out of range 80..450 words per minute"
    utt_id = data.get("utt_id") or f"tts{next(_ids)}"
    return Utterance(utt_id[:64], text, voice, float(rate) if rate is not None else None)


class Speaker:
    """The handlers: bad messages are counted and logged, good ones go to the player."""

    def __init__(self, client: MQTTClient, environ: Mapping[str, str]) -> None:
        self.client, self.tally = client, Tally()
        self.player = Player(engine_from_env(environ), sink_from_env(environ), self.announce,
                             limit=env_int(environ, "TARS_TTS_QUEUE", 20, low=1, high=1000),
                             tally=self.tally)
        client.subscribe(TTS_SAY.name, self.on_say, qos=TTS_SAY.qos)
        client.subscribe(TTS_CONTROL.name, self.on_control, qos=TTS_CONTROL.qos)

    def announce(self, events: list[Status]) -> None:
        for status in events:
            log.info("%s %s", status.event, status.utt_id)
            publish(self.client, TTS_STATUS, {"event": status.event, "utt_id": status.utt_id})

    def on_say(self, msg: Message) -> None:
        utt = utterance_from(msg.data) if msg.envelope is not None else \
            f"not an envelope ({msg.decode_error})"
        if isinstance(utt, str):
            n = self.tally.add("bad_say")
            log.warning("tts/say #%d refused: %s", n, utt)
            return
        try:
            self.player.say(utt)
            log.info("tts/say %s: queued", utt.utt_id)
        except QueueFull as exc:
            n = self.tally.add("queue_full")
            log.warning("tts/say #%d (%s) refused: %s", n, utt.utt_id, exc)

    def on_control(self, msg: Message) -> None:
        found = problems(msg, TTS_CONTROL)
        if found:
            n = self.tally.add("bad_control")
            log.warning("tts/control #%d ignored: %s", n, "; ".join(found))
            return
        log.info("control: %s", msg.data["action"])
        self.player.control(msg.data["action"])


def setup(client: MQTTClient, environ: Mapping[str, str] = os.environ) -> Service:
    """TARS_TTS_* settings (docs/services.md); the engine and the output are checked here."""
    speaker = Speaker(client, environ)
    speaker.player.start()

    def close() -> None:
        speaker.player.close()
        log.info("tts stopped; counts %s", speaker.tally.as_dict())

    return Service(stopping=speaker.player.halt, close=close, liveness=speaker.player.liveness)


def main() -> int:
    """``tars-tts``: MQTT_* for the client, TARS_TTS_* for the engine and the output."""
    return run("tts", setup)


if __name__ == "__main__":
    raise SystemExit(main())
