"""tars-llm as a process against mosquitto and a real local OpenAI-compatible SSE server.

Streams (deltas in order, then one correlated answer), the prompt (persona and memory),
retries on 429/5xx, a cut stream, a cancel mid-stream, hostile requests, the offline
responder; every wait is on a message or on the server's record, with a timeout.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tars_mqtt import Message, MQTTClient
from tars_mqtt.testing import Broker
from tests.integration import test_services as shared
from tests.integration.support import raw_request
from tests.integration.test_services import Recorder, Service, stop_cleanly
from tests.support.openai_server import OpenAIServer, Reply, running

KEY = "sk-local-test-key-0123456789"
TIMEOUT = 15.0
rec, start = shared.rec, shared.start  # the services' fixtures: a recorder, started processes


@pytest.fixture
def server() -> Iterator[OpenAIServer]:
    with running() as s:
        yield s


@pytest.fixture
def llm_env(server: OpenAIServer, tmp_path: Path) -> dict[str, str]:
    key = tmp_path / "llm.key"
    key.write_text(KEY + "\n")
    return {"TARS_LLM_URL": server.url, "TARS_LLM_MODEL": "tiny", "TARS_LLM_API_KEY_FILE":
            str(key), "TARS_LLM_RETRIES": "2", "TARS_LLM_RETRY_MAX_DELAY": "0.2",
            "TARS_LLM_MEMORY_TIMEOUT": "2", "TARS_MEMORY_DIR": str(tmp_path / "memory")}


def ask(rec: Recorder, text: str, **extra: Any) -> Message:
    return rec.client.request("llm/request", "llm.request", {"text": text, **extra},
                              timeout=TIMEOUT, reply_topic="llm/response")


def deltas(rec: Recorder, correlate: str | None) -> list[dict[str, Any]]:
    return [m.data for m in list(rec.messages) if m.topic == "llm/stream"
            and m.correlate == correlate]


@pytest.mark.timeout(60)
def test_streams_in_order_then_one_answer_with_persona_and_memory_in_the_prompt(
        start: Callable[..., Service], rec: Recorder, server: OpenAIServer,
        llm_env: dict[str, str]) -> None:
    start("memory", **llm_env)
    llm = start("llm", **llm_env)
    rec.client.publish_event("stt/final", "stt.final", {"text": "my cat is called Tom"}).wait(5)
    deadline = time.monotonic() + TIMEOUT  # the turn and the query travel separately
    while not (found := rec.client.request("memory/query", "memory.query", {"text": "cat"},
                                           timeout=TIMEOUT, reply_topic="memory/results")
               ).data["results"] and time.monotonic() < deadline:
        time.sleep(0.05)
    assert [r["text"] for r in found.data["results"]] == ["my cat is called Tom"]
    server.default = Reply(tokens=("Your", " cat", " is", " Tom.", " He", " is", " nice."),
                           interval=0.05)
    answer = ask(rec, "what is my cat called?",
                 history=[{"role": "user", "content": "hello"},
                          {"role": "assistant", "content": "Hello."}, {"role": "evil"}])
    assert answer.data == {"reply": "Your cat is Tom. He is nice."}
    # The reply came on the request's own subscription; the pieces (QoS 0) reach the
    # recorder's on their own time, possibly after it: wait for them, do not assume.
    stream = [m.data for m in rec.wait_many("llm/stream", 7, correlate=answer.correlate)]
    assert [d["seq"] for d in stream] == list(range(7))  # every piece, in order, counted
    assert "".join(d["delta"] for d in stream) == answer.data["reply"]
    assert len(deltas(rec, answer.correlate)) == 7  # and no more
    [req] = server.requests
    system = req.body["messages"][0]["content"]
    assert "You are TARS" in system and "humor 75%" in system
    assert "my cat is called Tom" in system  # the memory result made it into the prompt
    assert [m["role"] for m in req.body["messages"]] == ["system", "user", "assistant", "user"]
    assert req.headers["Authorization"] == f"Bearer {KEY}"
    stop_cleanly(llm, rec)
    assert KEY not in llm.log()


@pytest.mark.timeout(60)
def test_429_then_success_500_cut_stream_and_cancel_each_end_in_one_answer(
        start: Callable[..., Service], rec: Recorder, server: OpenAIServer,
        llm_env: dict[str, str]) -> None:
    llm = start("llm", **llm_env)
    server.script(Reply(status=429, retry_after=0.1))
    assert ask(rec, "hi").data == {"reply": "Hello there. I am TARS."}
    assert len(server.requests) == 2  # refused once, then answered

    server.script(*[Reply(status=500, body="overloaded")] * 3)
    failed = ask(rec, "hi")
    assert failed.data["reply"] == "" and "HTTP 500" in failed.data["error"]
    assert "after 3 attempts" in failed.data["error"] and len(server.requests) == 5

    server.script(Reply(cut_after=3))
    cut = ask(rec, "hi")
    assert cut.data["reply"] == "Hello there." and cut.data["error"]
    assert len(server.requests) == 6  # text was out: not retried

    server.default = Reply(tokens=tuple(f" word{n}" for n in range(300)), interval=0.03)
    mark = rec.mark()
    rec.client.publish_event("llm/request", "llm.request", {"text": "talk a lot"},
                             reply_to="llm/response").wait(5)
    request = rec.wait("llm/request", after=mark, text="talk a lot")
    assert request.envelope is not None
    # deltas of earlier answers all came before this request: the broker keeps the order
    rec.wait("llm/stream", after=rec.messages.index(request), seq=2)
    rec.client.publish_event("llm/cancel", "llm.cancel",
                             {"request": request.envelope.id}).wait(5)
    stopped = rec.wait("llm/response", after=mark, error="cancelled")
    assert stopped.correlate == request.envelope.id
    assert stopped.data["reply"].startswith(" word0 word1 word2")
    server.wait(lambda s: s.abandoned == 1)  # the HTTP stream was closed, not left running
    assert len(deltas(rec, request.envelope.id)) < 300
    stop_cleanly(llm, rec)


@pytest.mark.timeout(60)
def test_hostile_requests_get_an_error_answer_or_are_counted(
        start: Callable[..., Service], rec: Recorder, server: OpenAIServer,
        llm_env: dict[str, str]) -> None:
    llm = start("llm", **{**llm_env, "TARS_LLM_MAX_STREAMS": "1"})
    client = rec.client
    client.publish("llm/request", b"\xff\x00 garbage", qos=1).wait(5)
    assert "text" in ask(rec, 42).data["error"]  # type: ignore[arg-type]
    assert "empty" in ask(rec, "   ").data["error"]
    mark = rec.mark()  # a reply_to that is no reply topic: answered on llm/response instead
    client.publish_event("llm/request", "llm.request", {"text": "hi"},
                         reply_to="movement/command").wait(5)
    request = rec.wait("llm/request", after=mark, text="hi")
    assert request.envelope is not None
    answer = rec.wait("llm/response", after=rec.messages.index(request))
    assert answer.correlate == request.envelope.id and not rec.on("movement/command")
    server.default = Reply(tokens=("slow",) * 40, interval=0.05)
    mark = rec.mark()
    client.publish_event("llm/request", "llm.request", {"text": "first"},
                         reply_to="llm/response").wait(5)
    first = rec.wait("llm/request", after=mark, text="first")
    rec.wait("llm/stream", after=rec.messages.index(first))
    assert "busy" in ask(rec, "second").data["error"]  # one stream at a time here
    client.publish_event("llm/cancel", "llm.cancel", {"session": "nobody"}).wait(5)
    client.publish_event("llm/cancel", "llm.cancel", {  # neither floods nor forges the log
        "session": "x\n2026-01-01 00:00:00,000 tars.llm ERROR forged", "pad": "A" * 50_000}
                         ).wait(5)
    client.publish_event("llm/cancel", "llm.cancel", {}).wait(5)
    rec.wait("llm/response", after=mark, reply="slow" * 40)  # the first one was not harmed
    stop_cleanly(llm, rec)
    log = llm.log()
    assert "malformed message #1 on llm/request" in log
    assert "llm/cancel: name a request or a session" in log
    assert "\n2026-01-01" not in log and "A" * 1000 not in log and len(log) < 40_000


@pytest.mark.timeout(60)
def test_offline_it_answers_from_its_skills_and_hands_moves_to_the_router(
        start: Callable[..., Service], rec: Recorder, tmp_path: Path) -> None:
    llm = start("llm")
    assert ask(rec, "what time is it?").data["reply"].startswith("It is ")
    assert "TARS" in ask(rec, "what is your name").data["reply"]
    assert "llm" in ask(rec, "which systems are running").data["reply"]
    assert ask(rec, "please come here").data == {"reply": "Walking forward.",
                                                  "action": "step_forward"}
    assert ask(rec, "stop it").data["action"] == "stop"
    stop_cleanly(llm, rec)


def test_bad_settings_exit_2_naming_the_variable(broker: Broker, tmp_path: Path) -> None:
    for env, variable in (({"TARS_LLM_URL": "ftp://x"}, "TARS_LLM_URL"),
                          ({"TARS_LLM_URL": "http://u:p@x/v1"}, "TARS_LLM_URL"),
                          ({"TARS_LLM_URL": "http://x/v1"}, "TARS_LLM_MODEL"),
                          ({"TARS_LLM_URL": "http://x/v1", "TARS_LLM_MODEL": "m",
                            "TARS_LLM_API_KEY_FILE": str(tmp_path / "none")},
                           "TARS_LLM_API_KEY_FILE"),
                          ({"TARS_LLM_MEMORY_TIMEOUT": "soon"}, "TARS_LLM_MEMORY_TIMEOUT")):
        svc = Service("llm", broker, tmp_path, **env)
        assert svc.proc.wait(TIMEOUT) == 2, svc.log()
        assert variable in svc.log() and ":p@" not in svc.log()


@pytest.mark.timeout(60)
def test_text_no_message_can_carry_and_a_memory_from_no_time_still_end_in_an_answer(
        start: Callable[..., Service], rec: Recorder, server: OpenAIServer,
        llm_env: dict[str, str], make_client: Callable[..., MQTTClient]) -> None:
    """An endpoint's lone surrogate (valid JSON) once made every publish of the answer
    raise, and a memory dated 1e300 made the prompt raise: both ended the answer's task
    with no llm/response at all, so the asker waited out its timeout."""
    memory = make_client(client_id="memory")  # a memory that answers with a broken date

    @memory.subscribe("memory/query", qos=1)
    def recall(msg: Message) -> None:
        memory.reply(msg, "memory.results", {"results": [
            {"text": "my cat is called Tom", "role": "heard", "ts": 1e300, "score": 1.0,
             "id": 1}]})

    llm = start("llm", **llm_env)
    server.default = Reply(tokens=("Tom", " \ud800", " is", " a cat."))
    answer = ask(rec, "what is my cat called?")
    assert answer.data == {"reply": "Tom \ufffd is a cat."}
    [req] = server.requests
    assert "(?) the user said: my cat is called Tom" in req.body["messages"][0]["content"]
    stop_cleanly(llm, rec)


@pytest.mark.timeout(60)
def test_a_request_that_is_no_envelope_is_answered_where_its_properties_say(
        start: Callable[..., Service], rec: Recorder, llm_env: dict[str, str],
        broker: Broker) -> None:
    llm = start("llm", **llm_env)
    answer = raw_request(broker, rec, "llm/request", {"text": "hi \ud800"}, "q-7")
    assert answer.correlate == "q-7" and answer.data["reply"] == ""
    assert "'data.text'" in answer.data["error"] and "UTF-8" in answer.data["error"]
    assert ask(rec, "what is your name").data["reply"]  # it answers on
    stop_cleanly(llm, rec)
