"""Request/reply on the threaded client: the router asks the llm service and waits.

    MQTT_URL=mqtt://localhost:1883 python examples/request_reply.py

The llm service answers on the request's ``reply_to`` with ``reply()``; the router's
``request()`` returns the reply whose ``correlate`` matches, from any number of threads
at once, or raises ``RequestTimeout``. A reply that comes after its timeout is counted in
``stats().late_replies`` and dropped.

Safe next to a running robot: its own client ids, and ``example/llm/request`` instead of
the robot's ``llm/request`` (which a real llm service would answer as well).
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from tars_mqtt import Message, MQTTClient, RequestTimeout


def main() -> None:
    llm = MQTTClient.from_env(client_id="example-llm")

    @llm.subscribe("example/llm/request", qos=1)
    def on_request(msg: Message) -> None:  # on one of the llm service's worker threads
        llm.reply(msg, "llm.response", {"reply": msg.data["text"].upper()})

    with llm, MQTTClient.from_env(client_id="example-router") as router:
        answer = router.request("example/llm/request", "llm.request", {"text": "hello tars"},
                                timeout=5)
        print(f"llm says: {answer.data['reply']}")

        questions = [f"question {i}" for i in range(8)]
        with ThreadPoolExecutor(max_workers=4) as pool:  # many requests in flight at once
            answers = pool.map(
                lambda q: router.request("example/llm/request", "llm.request", {"text": q}),
                questions)
            for question, reply in zip(questions, answers, strict=True):
                print(f"{question} -> {reply.data['reply']}")

        try:
            router.request("nobody/home", "void.request", {}, timeout=0.5)
        except RequestTimeout as exc:
            print(f"as expected: {exc}")
        print(f"late replies: {router.stats().late_replies}")


if __name__ == "__main__":
    main()
