"""Tests that keep the documentation honest: code blocks run, tables match the code.

Convention for fenced code blocks in README.md and docs/*.md (the first word of the info
string is the language, as GitHub renders it; the other words are for these tests):

- ```` ```python run ````: a complete program. It is run in a subprocess against a fresh
  mosquitto with ``MQTT_URL`` set. A program that calls ``run_forever()``, or is tagged
  ```` ```python run service ```` (an asyncio service with its own signal handling), is a
  service: it must publish ``ready`` health, then exit 0 on SIGTERM after ``shutdown`` health.
  Any other program must exit 0 by itself. When the next block is ```` ```text output ````,
  the program's standard output must be exactly that text.
- ```` ```python fragment ````: a piece of a program (or code for another library, such as
  the "before" side of the migration guide): compiled, not run.
- ```` ```python from=examples/NAME.py ````: an excerpt; its lines must appear, in order
  and contiguous, in that file (which the example tests run).
- A ```` ```python ```` block with no word after it is allowed only in the docs the tests
  do not own (it is then compiled, not run); in README.md and the docs listed in
  ``support.OWNED`` every python block says what it is.
"""
