"""The README keeps its promises: the two commands first, a service in under 10 lines that
survives a broker restart, every doc linked, the reliability figures of docs/reliability.md."""

from __future__ import annotations

import re
import threading
from collections.abc import Callable
from pathlib import Path

from tars_mqtt import Message, MQTTClient
from tars_mqtt.testing import Broker

from .support import DOCS, ROOT, HealthWatch, ServiceProcess, blocks, section

README = (ROOT / "README.md").read_text(encoding="utf-8")
MakeClient = Callable[..., MQTTClient]

TWO_COMMANDS = (
    "bash scripts/demo.sh    # the main job: broker + services on mock pins, a scripted scene\n"
    "bash scripts/test.sh    # the tests: ruff, mypy --strict, pytest against a real mosquitto\n"
)


def new_service_block() -> str:
    text = section(README, "## A new service in under 10 lines")
    match = re.search(r"```python run\n(.*?)```", text, flags=re.S)
    assert match, "the new-service section has no `python run` block"
    return match.group(1)


def test_readme_starts_with_the_two_commands() -> None:
    headings = re.findall(r"^## (.+)$", README, flags=re.M)
    assert headings[:3] == ["The two commands", "Why tars-mqtt", "A new service in under 10 lines"]
    first = blocks("README.md")[0]
    assert (first.lang, first.code) == ("sh", TWO_COMMANDS)
    before = README[:README.index("```sh")]
    assert "On a fresh Debian machine (root, Python 3.11; nothing else needed" in before


def test_new_service_is_under_10_lines() -> None:
    assert len(new_service_block().rstrip("\n").splitlines()) < 10


def test_every_doc_is_in_the_index() -> None:
    index = section(README, "## Docs")
    for doc in sorted(DOCS.glob("*.md")):
        assert f"(docs/{doc.name})" in index, f"docs/{doc.name} is missing from the Docs index"
    assert "bench/README.md" in README, "the benchmarks' README is mentioned"


def test_reliability_figures_match_the_reliability_doc() -> None:
    def flat(text: str) -> str:  # no bold, no line breaks
        return " ".join(text.replace("**", "").split())

    source = flat((DOCS / "reliability.md").read_text(encoding="utf-8"))
    ours = flat(section(README, "## Reliability"))
    for figure in ("1200 sent, 1200 acked, 1200 received, 0 lost", "lost 36 of 1200",
                   "0.605 s", "1.5–1.9 s", "≈3 ms"):
        assert figure in source, f"docs/reliability.md no longer says {figure!r}"
        assert figure in ours, f"the README lost the figure {figure!r}"


class Echoes:
    def __init__(self, client: MQTTClient) -> None:
        self.texts: list[str] = []
        self._cond = threading.Condition()
        client.subscribe("echo/out", self._on, qos=1)

    def _on(self, msg: Message) -> None:
        with self._cond:
            self.texts.append(msg.data["text"])
            self._cond.notify_all()

    def wait_for(self, text: str, timeout: float = 10.0) -> None:
        with self._cond:
            assert self._cond.wait_for(lambda: text in self.texts, timeout), \
                f"no echo of {text!r} within {timeout} s; got {self.texts}"


def test_new_service_echoes_and_survives_a_broker_restart(
        broker: Broker, make_client: MakeClient, tmp_path: Path) -> None:
    program = tmp_path / "echo.py"
    program.write_text(new_service_block())
    watch = HealthWatch(broker)
    tester = make_client(client_id="echo-tester")
    echoes = Echoes(tester)
    service = ServiceProcess(program, broker, tmp_path / "echo.log")
    try:
        watch.wait("ready", "echo")
        tester.publish_event("echo/in", "echo.request", {"text": "before"}).wait(5)
        echoes.wait_for("before")

        mark = watch.mark()
        broker.restart()  # no persistence: sessions and retained messages are gone
        watch.wait("reconnected", "echo", after=mark)          # resubscribed, then health
        watch.wait("reconnected", "echo-tester", after=mark)
        tester.publish_event("echo/in", "echo.request", {"text": "after"}).wait(10)
        echoes.wait_for("after")

        assert service.terminate() == 0, service.log()
        watch.wait("shutdown", "echo", after=mark)
    finally:
        service.kill()
        watch.stop()
    assert "Traceback" not in service.log(), service.log()
