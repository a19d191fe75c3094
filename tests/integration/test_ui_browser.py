"""The web view in a real headless chromium, against the real services on mock pins.

Debian's chromium and chromedriver (scripts/setup.sh installs them) driven by selenium;
mosquitto, movement, wake, router and tars-ui run as processes, as on the robot. Every
wait is a condition on the page or on the bus, with a timeout. The run leaves a screenshot
in ``$TARS_ARTIFACTS`` (default: the system temp dir's ``tars-artifacts/``); with
``TARS_UI_SCREENSHOT=docs/ui.png`` it also writes the one the docs show.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from services import topics as t
from tars_mqtt import MQTTClient, MQTTConfig
from tars_mqtt.testing import Broker, free_port, wait_for_port
from tests.integration.test_topic_contract import Recorder
from tests.support.speech_stub import SpeechStub

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
SERVICES = ("movement", "wake", "router")
TIMEOUT = 15.0
ARTIFACTS = Path(os.environ.get("TARS_ARTIFACTS") or Path(tempfile.gettempdir()) /
                 "tars-artifacts")

webdriver = pytest.importorskip("selenium.webdriver")
from selenium.common.exceptions import (  # noqa: E402
    StaleElementReferenceException,
    TimeoutException,
)
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402


@dataclass
class Robot:
    """The processes, the bus recorder, the page's URL and the browser on it."""

    procs: dict[str, subprocess.Popen[bytes]]
    logs: Path
    recorder: Recorder
    tools: MQTTClient
    speech: MQTTClient
    url: str
    browser: Any

    def until(self, what: str, condition: Callable[[Any], Any],
              timeout: float = TIMEOUT) -> Any:
        try:
            # The page redraws rows as messages come: an element read mid-redraw is read again.
            return WebDriverWait(self.browser, timeout, poll_frequency=0.1,
                                 ignored_exceptions=(StaleElementReferenceException,)
                                 ).until(condition)
        except TimeoutException:
            logs = {n: (self.logs / f"{n}.log").read_text(errors="replace")[-1500:]
                    for n in self.procs}
            raise AssertionError(f"the page never showed {what}; service logs: {logs}") \
                from None

    def text(self, css: str) -> str:
        found = self.browser.find_elements(By.CSS_SELECTOR, css)
        return str(found[0].text) if found else ""

    def state_of(self, client: str) -> str:
        return self.text(f'#health tr[data-client="{client}"] .state')


def chromium(profile: Path) -> Any:
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", f"--user-data-dir={profile}",
                 "--window-size=1440,1000"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(service=webdriver.ChromeService(CHROMEDRIVER), options=options)


@pytest.fixture(scope="module")
def robot(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Robot]:
    if not (Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists()):
        pytest.fail("chromium and chromedriver are missing: run scripts/setup.sh")
    tmp = tmp_path_factory.mktemp("ui-browser")
    broker = Broker(tmp / "broker").start()
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MQTT_", "TARS_"))}
    env.update(MQTT_URL=broker.url, MQTT_HEARTBEAT_INTERVAL="0.5",
               GPIOZERO_PIN_FACTORY="mock", TARS_ROUTER_LLM_TIMEOUT="2",
               TARS_UI_PORT=str(port), TARS_UI_STALE_AFTER="3")
    procs: dict[str, subprocess.Popen[bytes]] = {}
    quiet = MQTTConfig(url=broker.url, client_id="tools", enable_health=False,
                       enable_heartbeat=False)
    browser = None
    with MQTTClient(quiet) as tools, \
            MQTTClient(dataclasses.replace(quiet, client_id="speech", source="speech")) as speech:
        recorder = Recorder(tools)
        SpeechStub(speech)
        try:
            for name, module in [*((s, f"services.{s}") for s in SERVICES),
                                 ("ui", "services.ui.service")]:
                with open(tmp / f"{name}.log", "wb") as log:
                    procs[name] = subprocess.Popen([sys.executable, "-m", module], cwd=ROOT,
                                                   env=env, stdout=log,
                                                   stderr=subprocess.STDOUT)
            wait_for_port(port, TIMEOUT)
            browser = chromium(tmp / "profile")
            yield Robot(procs, tmp, recorder, tools, speech, f"http://127.0.0.1:{port}/",
                        browser)
        finally:
            if browser is not None:
                browser.quit()
            for proc in procs.values():
                if proc.poll() is None:
                    proc.send_signal(signal.SIGTERM)
            for proc in procs.values():
                try:
                    proc.wait(TIMEOUT)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(TIMEOUT)
            broker.stop()


def test_the_page_loads_and_shows_the_services_ready(robot: Robot) -> None:
    robot.browser.get(robot.url)
    assert robot.browser.title == "TARS — live view"
    robot.until("the WebSocket live", lambda b: robot.text("#link") == "live")
    robot.until("movement, wake and router ready", lambda b: all(
        robot.state_of(name) == "ready" for name in SERVICES))
    robot.until("the router's retained state", lambda b: robot.text("#state") == "IDLE")
    errors = [e for e in robot.browser.get_log("browser") if e["level"] == "SEVERE"]
    assert not errors, errors  # no script error, no blocked request (CSP)


def test_typing_a_text_makes_tts_say_appear_in_the_conversation(robot: Robot) -> None:
    robot.browser.get(robot.url)
    robot.until("the WebSocket live", lambda b: robot.text("#link") == "live")
    box = robot.browser.find_element(By.ID, "say-text")
    box.send_keys("Hello from the web view")
    robot.browser.find_element(By.ID, "say").click()
    robot.until("the sentence said", lambda b: "Hello from the web view" in
                robot.text("#conversation li.said:last-child .text"))
    said = robot.recorder.wait("tts/say", sender="ui", text="Hello from the web view")
    assert said.data["utt_id"].startswith("ui-")
    robot.until("the speech service's answer", lambda b: robot.text("#result-say") == "spoken")


def test_pressing_stop_makes_movement_report_stopped(robot: Robot) -> None:
    robot.browser.get(robot.url)
    robot.until("the WebSocket live", lambda b: robot.text("#link") == "live")
    robot.browser.find_element(By.ID, "stop").click()
    stopped = robot.recorder.wait("movement/status", sender="movement", event="stopped")
    assert stopped.data["action"] == "none"  # nothing was running: held still
    robot.until("STOP's answer", lambda b: robot.text("#result-stop") ==
                "movement stopped (none)")
    robot.until("movement's status", lambda b: robot.text("#last-status") ==
                "movement: none stopped")


def test_a_conversation_shows_in_order_and_a_screenshot_is_kept(robot: Robot) -> None:
    robot.browser.get(robot.url)
    robot.until("the WebSocket live", lambda b: robot.text("#link") == "live")
    robot.browser.find_element(By.ID, "wake").click()
    robot.until("the wake's answer", lambda b: robot.text("#result-wake") == "state: listening")
    assert robot.recorder.wait("wake/event", sender="ui", type="wake").data["source"] == "ui"
    robot.speech.publish_event(t.STT_FINAL.name, t.STT_FINAL.event_type,
                               {"text": "please wave"}).wait(5)
    robot.recorder.wait("movement/status", sender="movement", event="completed", action="wave")
    robot.until("the wave completed", lambda b: robot.text("#last-status") ==
                "movement: wave completed")
    robot.until("the state back to idle", lambda b: robot.text("#state") == "IDLE")
    pose = {"angles": {"torso_height": 12, "left_arm": 30, "right_arm": 75, "left_leg": 8,
                       "right_leg": -8}, "duration": 0.3}
    robot.tools.publish_event(t.MOVEMENT_COMMAND.name, t.MOVEMENT_COMMAND.event_type,
                                        {"action": "pose", "params": pose}).wait(5)
    robot.until("the pose's angles", lambda b: "75.0°" in robot.text("#angles"))
    transform = robot.browser.find_element(By.ID, "arm-right").get_attribute("transform")
    assert transform == "translate(198 32) rotate(-75)"  # drawn as reported
    entries = [e.text for e in robot.browser.find_elements(By.CSS_SELECTOR,
                                                           "#conversation li .text")]
    assert entries.index("please wave") < entries.index("Okay, waving.")
    robot.until("traffic in the log", lambda b: len(robot.browser.find_elements(
        By.CSS_SELECTOR, "#log tbody tr")) > 10)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    shot = ARTIFACTS / "ui.png"
    robot.browser.set_window_size(1440, 1180)  # the whole page, log included
    assert robot.browser.save_screenshot(str(shot))
    print(f"screenshot: {shot}")
    if os.environ.get("TARS_UI_SCREENSHOT"):
        shutil.copyfile(shot, os.environ["TARS_UI_SCREENSHOT"])


def test_markup_from_the_bus_is_shown_as_text_never_run(robot: Robot) -> None:
    robot.browser.get(robot.url)
    robot.until("the WebSocket live", lambda b: robot.text("#link") == "live")
    evil = '<img src=x onerror="window.pwned=1"><script>window.pwned=2</script>'
    robot.tools.publish("evil/<b>topic</b>", evil, qos=1).wait(5)
    robot.tools.publish_event(t.TTS_SAY.name, t.TTS_SAY.event_type, {"text": evil}).wait(5)
    robot.until("the markup as text in the log", lambda b: evil in robot.text("#log tbody"))
    robot.until("the markup as text in the talk", lambda b: evil in robot.text("#conversation"))
    assert robot.browser.execute_script("return window.pwned === undefined")
    assert not robot.browser.find_elements(By.CSS_SELECTOR, "#log img, #conversation img, b")


def test_a_service_killed_with_sigkill_turns_offline_on_the_page(robot: Robot) -> None:
    robot.browser.get(robot.url)
    robot.until("wake ready", lambda b: robot.state_of("wake") == "ready")
    os.kill(robot.procs["wake"].pid, signal.SIGKILL)
    robot.procs["wake"].wait(TIMEOUT)
    robot.until("wake offline", lambda b: robot.state_of("wake") == "offline")
    assert robot.state_of("movement") == "ready"
