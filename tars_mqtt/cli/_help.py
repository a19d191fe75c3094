"""What ``tars-mqtt --help`` and ``tars-mqtt COMMAND --help`` say beyond the option list.

Enough to be the manual page: what each command does, its output, its exit status, the
environment it reads, and examples. Kept apart from the parser so the parser stays short.
"""

from __future__ import annotations

__all__ = ["COMMANDS", "EPILOGS", "MAIN_DESCRIPTION"]

_EXIT = """\
exit status:
  0  done (health: every client judged is ok and its heartbeat fresh)
  1  what was asked about failed: {failed}
  2  bad input or settings (the message names the option or variable), or no usable
     broker: unreachable, refused, bad login, TLS certificate not trusted"""

_ENVIRONMENT = """\
environment:
  MQTT_URL, MQTT_USERNAME, MQTT_PASSWORD, MQTT_PASSWORD_FILE, MQTT_TLS_CA,
  MQTT_TLS_CERT, MQTT_TLS_KEY, MQTT_TLS_INSECURE, MQTT_PROTOCOL, MQTT_KEEPALIVE,
  MQTT_SOURCE_NAME and the other MQTT_* settings of the services (docs/configuration.md).
  Options given on the command line win; MQTT_CLIENT_ID is never used (the command must
  not take a service's identity and knock it off the broker). The command publishes no
  health, no heartbeat and no last will."""

_EXIT_MAIN = _EXIT.format(failed="see each command")
_EXIT_PUB = _EXIT.format(failed="the broker did not ack in --timeout seconds")
_EXIT_SUB = _EXIT.format(failed="--count N given, and fewer than N messages came\n"
                         "     before --timeout")
_EXIT_HEALTH = _EXIT.format(failed="a client judged is not ok, stale, missing or\n"
                            "     stopped; or no running client publishes health at all")
_EXIT_REQUEST = _EXIT.format(failed="no reply within --timeout seconds, or the reply\n"
                             '     says the request failed: its data has an "error", or its'
                             ' "event"\n     is rejected or failed (the reply is still'
                             " printed)")

MAIN_DESCRIPTION = """\
Publish, watch, check health and make requests on the TARS broker, with the same MQTT_*
settings as the services. Connection options go before or after the command name.
`tars-mqtt COMMAND --help` tells each command's output, exit status and examples."""

COMMANDS: dict[str, tuple[str, str]] = {
    "pub": ("publish messages", """\
Publish one message: an envelope {id, type, ts, source, data} unless the payload is given
raw (-m, -f, -s, -l, -n without --type). Waits for the broker's ack at QoS 1 and 2."""),
    "sub": ("print messages, one line each", """\
Print every message matching the FILTERs (-t FILTER works too) until Ctrl-C, --count or
--timeout. The default line is: local time, topic (marked "(retained)"), envelope type,
source, data as compact JSON (shortened to 120 characters unless --full), and "re:" with
the start of the correlation id; a payload that is no envelope shows "-  -" and then
"json ..." or "raw ...". On a terminal, everything from the wire is escaped (control
characters, bidi overrides, invalid UTF-8) so that a payload cannot rewrite the screen."""),
    "health": ("table of client health; exit 1 if any is not ok", """\
Every client's retained system/health/<id> and the freshness of its system/keepalive/<id>.
A client is ok when its health says ok and a heartbeat arrives within --stale-after
seconds; "not ok" when its health says so (offline: its last will, error); "stale" when
its heartbeats stopped; "missing" when named but never heard of. Clients that shut down
cleanly (health "shutdown") are left out unless named or --all is given."""),
    "request": ("send a request and print the reply", """\
Publish a request envelope with reply_to set to the command's own reply topic, and print
the reply that answers it (matched by correlation id), in sub's line format or as JSON."""),
    "completion": ("print a bash or zsh completion script", """\
Print a completion script for subcommands, options, files and topics. The topics are the
ones installed packages declare (the robot's topic table, through the "tars_mqtt.topics"
entry point group), the system topics, and every --topic given."""),
}

EPILOGS: dict[str, str] = {
    "main": f"""\
{_EXIT_MAIN}

{_ENVIRONMENT}

examples:
  tars-mqtt health                                 # is every service up?
  tars-mqtt sub 'movement/#' --count 1 --timeout 10
  tars-mqtt --url mqtts://tars.local:8883 --cafile ca.crt \\
            --username tools --password-file tools.password sub '#'
  source <(tars-mqtt completion bash)

More: docs/cli.md, with mosquitto_sub/mosquitto_pub side by side.""",
    "pub": f"""\
payload:
  --data JSON     envelope data (default {{}}); --type names the event (default cli.message)
  -m TEXT         TEXT as it is, no envelope
  -f FILE, -s     FILE's bytes / all of stdin as one message (raw, as mosquitto_pub -f/-s)
  -l              each line of stdin as one message (as mosquitto_pub -l)
  -n              an empty payload; with --retain it clears the retained message
  With --type, what -f, -s and -l read is the envelope's data instead: a JSON object
  (per line with -l), so `jq -c ... | tars-mqtt pub T --type T -l` sends envelopes.

{_EXIT_PUB}

{_ENVIRONMENT}

examples:
  tars-mqtt pub tts/say --type tts.say --data '{{"text": "hello"}}'
  echo '{{"text": "hi"}}' | tars-mqtt pub tts/say --type tts.say -s
  tars-mqtt pub lights/raw -m on -q 0
  tars-mqtt pub old/topic -n -r                    # clear a retained message""",
    "sub": f"""\
format (-F), as mosquitto_sub's; on a terminal wire text is escaped, piped it is not:
  %t topic      %p payload     %l payload length   %q QoS   %r retained (0/1)
  %x %X payload in hex (lower / upper case)         %I ISO-8601 time   %U Unix time
  %j JSON with the payload as a string              %J JSON with the payload as JSON
  %e envelope type   %s source   %i envelope id   %c correlation id   %d data as JSON
  %% a literal %     @X strftime's %X of the receive time (@H:@M:@S), @N nanoseconds,
  @@ a literal @     \\n \\t \\r \\0 \\a \\e \\v \\\\ escapes. No field widths, no %m.
  A newline follows each message unless -N.

--json prints {{"time", "topic", "qos", "retain"}} plus "envelope" (as sent), "json" (a
JSON payload that is no envelope), "text" or "base64", one object per line (JSON lines).

{_EXIT_SUB}

{_ENVIRONMENT}

examples:
  tars-mqtt sub 'movement/#' tts/say
  tars-mqtt sub '#' -T 'system/keepalive/#'       # everything but heartbeats
  tars-mqtt sub system/state --retained-only --payload-only
  tars-mqtt sub 'movement/#' -F '%I %t %d' -C 5 -W 30
  tars-mqtt sub wake/event --json | jq .envelope.data""",
    "health": f"""\
output: CLIENT, OK, EVENT, HEALTH AGE (since the retained health was published, by the
sender's clock), HEARTBEAT (since the last one arrived), STATUS. With --json: one JSON
object per client and line; with --watch --json one line per client per refresh.

{_EXIT_HEALTH}

{_ENVIRONMENT}

examples:
  tars-mqtt health                                 # every running client
  tars-mqtt health movement wake router            # exactly these (stopped = failure)
  tars-mqtt health --all --watch""",
    "request": f"""\
{_EXIT_REQUEST}

{_ENVIRONMENT}

examples:
  tars-mqtt request llm/request --type llm.request --data '{{"text": "hi"}}' \\
      --reply-topic llm/response --timeout 30
  tars-mqtt request svc/echo --type echo.request --json | jq .envelope.data""",
    "completion": """\
exit status:
  0  the script was printed
  2  unknown shell

examples:
  tars-mqtt completion bash > ~/.local/share/bash-completion/completions/tars-mqtt
  source <(tars-mqtt completion zsh)               # in ~/.zshrc, after compinit
  tars-mqtt completion bash --topic lab/sensor/1 --topic lab/sensor/2""",
}
