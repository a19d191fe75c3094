"""Every documented program runs; every python block compiles; every excerpt and link is real.

The block convention is in tests/docs/__init__.py.
"""

from __future__ import annotations

import ast
import re
import textwrap
from pathlib import Path

import pytest

from tars_mqtt.testing import Broker

from .support import (
    OWNED,
    REAL_IDS,
    ROOT,
    Block,
    HealthWatch,
    RobotWatch,
    ServiceProcess,
    blocks,
    doc_files,
    run_program,
)

# Docs whose every python block must use an id of its own (the others describe the
# services themselves, e.g. how movement builds its config).
OWNED_BY_CLI_SAFETY = ("README.md", "docs/async.md", "docs/request-reply.md",
                       "docs/migration.md", "docs/extending.md", "docs/cli.md")

ALL = [block for path in doc_files() for block in blocks(path)]
PYTHON = [b for b in ALL if b.lang == "python"]
RUN = [b for b in PYTHON if "run" in b.tags]
EXCERPTS = [b for b in PYTHON if b.tag_value("from")]


def expected_output(block: Block) -> str | None:
    """The ```text output``` block right after ``block``, if there is one."""
    same_file = [b for b in ALL if b.path == block.path]
    index = same_file.index(block)
    if index + 1 < len(same_file):
        after = same_file[index + 1]
        if after.lang == "text" and "output" in after.tags:
            return after.code
    return None


def test_the_docs_have_runnable_programs() -> None:
    assert len(RUN) >= 10, [b.id for b in RUN]
    assert {b.path for b in RUN} >= {"README.md", "docs/configuration.md", "docs/api.md",
                                     "docs/migration.md"}


@pytest.mark.parametrize("path", OWNED)
def test_owned_python_blocks_say_what_they_are(path: str) -> None:
    for block in blocks(path):
        if block.lang == "python":
            assert ("run" in block.tags) + bool(block.tag_value("from")) == 1, \
                f"{block.id}: tag it run or from=<file> (tests/docs/__init__.py)"
        assert block.lang, f"{block.id}: say the block's language"


@pytest.mark.parametrize("path", doc_files())
def test_no_block_is_a_fragment(path: str) -> None:
    # A piece of a program is only compiled, so it can go stale unseen: every block runs.
    for block in blocks(path):
        assert "fragment" not in block.tags, \
            f"{block.id}: make it a short complete program tagged `python run`" \
            " (tests/docs/__init__.py)"


@pytest.mark.parametrize("block", PYTHON, ids=lambda b: b.id)
def test_python_block_compiles(block: Block) -> None:
    ast.parse(textwrap.dedent(block.code), filename=block.id)


@pytest.mark.parametrize("block", EXCERPTS, ids=lambda b: b.id)
def test_excerpt_is_in_its_file(block: Block) -> None:
    source = block.tag_value("from")
    assert source is not None
    text = (ROOT / source).read_text(encoding="utf-8")
    excerpt = block.code.rstrip("\n")
    assert excerpt and excerpt in text, f"{block.id}: not a verbatim excerpt of {source}"


@pytest.mark.parametrize("block", RUN, ids=lambda b: b.id)
def test_program_runs(block: Block, broker: Broker, tmp_path: Path) -> None:
    program = tmp_path / "program.py"
    program.write_text(block.code)
    robot = RobotWatch(broker)
    try:
        _run(block, program, broker, tmp_path)
        problems = robot.problems(robot="robot" in block.tags)
    finally:
        robot.stop()
    assert not problems, f"{block.id} is not safe next to a running robot: {problems}"


def _run(block: Block, program: Path, broker: Broker, tmp_path: Path) -> None:
    if "run_forever()" in block.code or "service" in block.tags:
        watch = HealthWatch(broker)
        service = ServiceProcess(program, broker, tmp_path / "program.log")
        try:
            try:
                client_id = watch.wait("ready")
            except AssertionError:
                raise AssertionError(f"{block.id} never got ready; log:\n{service.log()}") \
                    from None
            assert service.terminate() == 0, service.log()
            watch.wait("shutdown", client_id, timeout=5)
            assert "Traceback" not in service.log(), service.log()
        finally:
            service.kill()
            watch.stop()
        return
    out = run_program(program, broker)
    assert out.returncode == 0, f"{block.id} failed:\n{out.stderr}"
    assert "Traceback" not in out.stderr, out.stderr
    expected = expected_output(block)
    if expected is not None:
        assert out.stdout == expected, f"{block.id}: output differs"


_CLIENT_ID = re.compile(r"""client_id\s*=\s*["']([^"']+)["']|identifier\s*=\s*["']([^"']+)["']""")
SAFETY_CHECKED = [b for b in PYTHON if b.path in OWNED_BY_CLI_SAFETY]


@pytest.mark.parametrize("block", SAFETY_CHECKED, ids=lambda b: b.id)
def test_block_uses_its_own_client_id(block: Block) -> None:
    for match in _CLIENT_ID.finditer(block.code):
        name = match.group(1) or match.group(2)
        assert name not in REAL_IDS, \
            f"{block.id}: client id {name!r} is a real service's; run next to the robot" \
            " it would throw that service off the broker"


_LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")


def _anchors(path: Path) -> set[str]:
    """GitHub's heading anchors: lower case, punctuation gone, spaces to dashes."""
    anchors = set()
    in_code = False
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.lstrip().startswith(("```", "~~~")):
            in_code = not in_code
        if not in_code and line.startswith("#"):
            title = line.lstrip("#").strip().lower()
            anchors.add(re.sub(r"[^\w\- ]", "", title).replace(" ", "-"))
    return anchors


@pytest.mark.parametrize("path", doc_files())
def test_relative_links_resolve(path: str) -> None:
    source = ROOT / path
    text = re.sub(r"```.*?```", "", source.read_text(encoding="utf-8"), flags=re.S)
    for target in _LINK.findall(text):
        if re.match(r"[a-z]+:", target):
            continue  # https:, mailto:
        file_part, _, anchor = target.partition("#")
        resolved = (source.parent / file_part).resolve() if file_part else source
        assert resolved.exists(), f"{path}: broken link {target}"
        if anchor and resolved.suffix == ".md":
            assert anchor in _anchors(resolved), f"{path}: no heading for #{anchor} in {target}"
