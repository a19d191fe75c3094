"""Tests that keep the documentation honest: code blocks run, tables match the code.

Convention for fenced code blocks in README.md and docs/*.md (the first word of the info
string is the language, as GitHub renders it; the other words are for these tests):

- ```` ```python run ````: a complete program. It is run in a subprocess against a fresh
  mosquitto with ``MQTT_URL`` set. A program that calls ``run_forever()``, or is tagged
  ```` ```python run service ```` (an asyncio service with its own signal handling), is a
  service: it must publish ``ready`` health, then exit 0 on SIGTERM after ``shutdown`` health.
  Any other program must exit 0 by itself. When the next block is ```` ```text output ````,
  the program's standard output must be exactly that text.
- There is no tag for a piece of a program: ```` ```python fragment ```` is refused, so
  that every block runs. Show a call in a short complete program of its own (its own
  ``example-...`` client id, topics under ``example/``), code for another library too
  (the "before" side of the migration guide runs on paho-mqtt and aiomqtt).
- ```` ```python from=examples/NAME.py ````: an excerpt; its lines must appear, in order
  and contiguous, in that file (which the example tests run).
- A ```` ```python ```` block with no word after it is allowed only in the docs the tests
  do not own (it is then compiled, not run); in README.md and the docs listed in
  ``support.OWNED`` every python block says what it is.
- ```` ```console run ````: a shell transcript (``$ command`` lines, each followed by its
  output, ``*`` for anything), run by bash with ``tars-mqtt`` on the PATH against a
  mosquitto with a small simulated robot (tests/docs/test_cli_doc.py). Every
  ``tars-mqtt`` command line of any ``sh`` or ``console`` block must parse.

Safe next to a running robot: every program that runs (doc blocks and examples) is
watched (``support.RobotWatch``). It must not take a real service's client id, must not
send on a topic of the robot's table (unless tagged ```` ```python run robot ```` and
saying so), and must leave no retained health that ``tars-mqtt health`` would judge
(a clean ``shutdown`` is fine: health leaves those out).
"""
