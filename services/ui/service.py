"""tars-ui: the robot's live web page, an asyncio service on :mod:`services.runtime`.

``setup`` reads ``TARS_UI_*`` (:class:`~services.ui.settings.UISettings`) and builds the
:class:`~services.ui.app.UI`; the runtime connects, then serves the page from ``UI.main``.
"""

from __future__ import annotations

from tars_mqtt import ConfigError
from tars_mqtt.aio import AsyncMQTTClient

from ..runtime import AsyncService, run_async
from .settings import UISettings

__all__ = ["main", "setup"]


def setup(client: AsyncMQTTClient) -> AsyncService:
    """Settings from ``TARS_UI_*``, the subscription, the web app; served once connected.

    Raises:
        ConfigError: a bad ``TARS_UI_*`` value, or aiohttp (the ``ui`` extra) is missing;
            the process then exits 2 and systemd does not restart it.
    """
    settings = UISettings.from_env()
    try:
        from .app import UI
    except ModuleNotFoundError as exc:
        if exc.name != "aiohttp":
            raise
        raise ConfigError("tars-ui needs the ui extra (aiohttp): pip install"
                          " 'tars-mqtt[ui]'") from None
    ui = UI(client, settings)
    return AsyncService(main=ui.main, close=ui.close, liveness=ui.liveness)


def main() -> int:
    """``tars-ui``: MQTT_* for the client (login ``ui``), TARS_UI_* for the page."""
    return run_async("ui", setup)


if __name__ == "__main__":
    raise SystemExit(main())
