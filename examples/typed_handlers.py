"""Per-topic typed handlers: dataclasses-json models in, models out.

    MQTT_URL=mqtt://localhost:1883 python examples/typed_handlers.py

``TypedTopics`` maps each topic to an event type and a model class. A handler registered
with ``@topics.handler("example/movement/command", MovementCommand)`` receives a checked
``MovementCommand`` instead of a dict; a message that is no envelope, has another event
type, misses a field or has a field of the wrong JSON type never reaches it: it is logged and
counted in ``topics.rejected``. ``topics.publish(topic, model)`` sends a model with the
topic's event type, leaving out fields that are ``None`` (the robot's movement service
refuses ``"params": null``). Composition only: the client's ``subscribe`` and
``publish_event``.

Safe next to a running robot: the models are the robot's movement command and status,
but the topics are ``example/movement/...``, so the robot does not wave.
"""

from __future__ import annotations

import logging
import threading
import types
import typing
from collections.abc import Callable
from dataclasses import MISSING, dataclass, fields
from typing import Any, TypeVar

from dataclasses_json import DataClassJsonMixin

from tars_mqtt import Message, MQTTClient, PublishHandle

__all__ = ["MovementCommand", "MovementStatus", "TypedTopics"]

log = logging.getLogger("example.typed")
M = TypeVar("M", bound=DataClassJsonMixin)


@dataclass(frozen=True)
class MovementCommand(DataClassJsonMixin):
    action: str
    speed: float = 1.0
    params: dict[str, Any] | None = None


@dataclass(frozen=True)
class MovementStatus(DataClassJsonMixin):
    event: str
    action: str
    error: str | None = None


class TypedTopics:
    """Topic -> (event type, model); typed subscribe and publish on one client."""

    def __init__(self, client: MQTTClient, routes: dict[str, tuple[str, type[Any]]]) -> None:
        self.client, self.routes = client, routes
        self.rejected = 0
        self._lock = threading.Lock()

    def handler(self, topic: str, model: type[M], qos: int = 1
                ) -> Callable[[Callable[[M, Message], None]], Callable[[M, Message], None]]:
        """Decorator: call ``func(model_instance, msg)`` for each valid message on ``topic``."""
        event_type, routed = self.routes[topic]
        if routed is not model:
            raise TypeError(f"{topic} carries {routed.__name__}, not {model.__name__}")

        def decorate(func: Callable[[M, Message], None]) -> Callable[[M, Message], None]:
            def on_message(msg: Message) -> None:
                value = self._decode(msg, event_type, model)
                if value is not None:
                    func(value, msg)

            on_message.__qualname__ = func.__qualname__  # the name the client's logs show
            self.client.subscribe(topic, on_message, qos)
            return func

        return decorate

    def publish(self, topic: str, value: DataClassJsonMixin, qos: int = 1,
                correlate: str | None = None) -> PublishHandle:
        event_type, model = self.routes[topic]
        if not isinstance(value, model):
            raise TypeError(f"{topic} carries {model.__name__}, not {type(value).__name__}")
        data = {k: v for k, v in value.to_dict(encode_json=True).items() if v is not None}
        return self.client.publish_event(topic, event_type, data, qos=qos, correlate=correlate)

    def _decode(self, msg: Message, event_type: str, model: type[M]) -> M | None:
        problem = None
        if msg.envelope is None:
            problem = f"not an envelope ({msg.decode_error})"
        elif msg.type != event_type:
            problem = f"event type {msg.type!r}, expected {event_type!r}"
        else:
            problem = _type_problem(model, msg.data)
        if problem is None:
            return model.from_dict(msg.data)
        with self._lock:
            self.rejected += 1
        log.warning("rejected %s on %s: %s", model.__name__, msg.topic, problem)
        return None


def _type_problem(model: type[Any], data: Any) -> str | None:
    """Check the JSON against the model's fields first: dataclasses-json converts what it
    can (``3`` becomes ``"3"`` for a str field) and fails oddly on the rest."""
    if not isinstance(data, dict):
        return f"data is {type(data).__name__}, not an object"
    hints = typing.get_type_hints(model)
    for f in fields(model):
        if f.name not in data:
            if f.default is MISSING and f.default_factory is MISSING:
                return f"field {f.name!r} is missing"
            continue
        hint, actual = hints[f.name], data[f.name]
        allowed = typing.get_args(hint) if isinstance(hint, types.UnionType) else (hint,)
        kinds = tuple(typing.get_origin(a) or a for a in allowed)
        if float in kinds:
            kinds += (int,)  # JSON has one number type
        if isinstance(actual, bool) and bool not in kinds or not isinstance(actual, kinds):
            return f"field {f.name!r} is {type(actual).__name__}, expected {hint}"
    return None


ROUTES: dict[str, tuple[str, type[Any]]] = {
    "example/movement/command": ("movement.command", MovementCommand),
    "example/movement/status": ("movement.status", MovementStatus),
}


def main() -> None:
    statuses: list[MovementStatus] = []
    got_status = threading.Event()
    with MQTTClient.from_env(client_id="example-typed-movement") as movement, \
            MQTTClient.from_env(client_id="example-typed-router") as router:
        movement_topics = TypedTopics(movement, ROUTES)
        router_topics = TypedTopics(router, ROUTES)

        @movement_topics.handler("example/movement/command", MovementCommand)
        def on_command(cmd: MovementCommand, msg: Message) -> None:
            print(f"movement got {cmd}")
            assert msg.envelope is not None
            movement_topics.publish("example/movement/status",
                                    MovementStatus(event="completed", action=cmd.action),
                                    correlate=msg.envelope.id)

        @router_topics.handler("example/movement/status", MovementStatus)
        def on_status(status: MovementStatus, msg: Message) -> None:
            statuses.append(status)
            got_status.set()

        # Two bad commands first: a dict with a wrong type, and one with no action.
        router.publish_event("example/movement/command", "movement.command",
                             {"action": "wave", "speed": "fast"}).wait(5)
        router.publish_event("example/movement/command", "movement.command",
                             {"speed": 2}).wait(5)
        router_topics.publish("example/movement/command",
                              MovementCommand("wave", speed=1.5)).wait(5)
        if not got_status.wait(10):
            raise SystemExit("no example/movement/status arrived")
    print(f"router got {statuses[0]}")
    print(f"movement rejected {movement_topics.rejected} commands")


if __name__ == "__main__":
    main()
