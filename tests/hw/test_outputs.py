"""The servo-driver seam: joints on PCA9685 channels (simulated bus) beside GPIO joints."""

from __future__ import annotations

import errno
import threading
from pathlib import Path
from typing import Any

import pytest

from hw import (
    PCA9685_CALIBRATION_PATH,
    HardwareError,
    Joint,
    JointCalibration,
    PCA9685Boards,
    RigCalibration,
    ServoRig,
    load_calibration,
    plan_motion,
)
from hw.testing import MockI2CBus, SimulatedPCA9685
from tars_mqtt.timing import ManualClock

from .support import joint_cal

TICK = 122 / 25e6  # one count at 50 Hz


def pca_cal(name: str = "left_arm", channel: int = 3, **kw: Any) -> JointCalibration:
    return joint_cal(name, None, driver="pca9685", channel=channel, **kw)


@pytest.fixture
def boards(bus: MockI2CBus, clock: ManualClock) -> PCA9685Boards:
    return PCA9685Boards(i2c_factory=lambda n: bus, clock=clock)


def test_pca9685_joint_starts_at_neutral_and_follows_angles(
        boards: PCA9685Boards, chip: SimulatedPCA9685) -> None:
    with Joint(pca_cal(), boards=boards) as joint:  # 1..2 ms for -90..90 degrees
        assert chip.counts(3) == (0, 307)  # neutral 0 -> 1.5 ms
        joint.set_angle(90)
        assert chip.counts(3) == (0, 410)  # 2 ms
        joint.set_angle(-90)
        assert chip.counts(3) == (0, 205)  # 1 ms
        assert "PCA9685 on I2C bus 1 at 0x40, channel 3" in repr(joint)
    assert chip.fully_off(3)  # closed: no more pulses
    assert chip.faults == []


def test_relax_turns_the_channel_fully_off_and_a_move_resumes(
        boards: PCA9685Boards, chip: SimulatedPCA9685) -> None:
    with Joint(pca_cal(), boards=boards) as joint:
        joint.relax()
        assert chip.pulse_width(3) is None and not joint.attached
        joint.set_angle(30)
        assert joint.attached
        assert chip.pulse_width(3) == pytest.approx(joint.calibration.pulse_width(30),
                                                    abs=TICK / 2)


def test_limits_are_checked_before_the_chip_hears_anything(
        boards: PCA9685Boards, chip: SimulatedPCA9685) -> None:
    with Joint(pca_cal(soft_min=-60, soft_max=60), boards=boards) as joint:
        written = len(chip.writes)
        with pytest.raises(ValueError, match="outside its limits -60..60"):
            joint.set_angle(61)
        assert len(chip.writes) == written


@pytest.mark.parametrize("inverted", [False, True])
def test_gpio_and_pca9685_give_the_same_pulse_for_the_same_calibration(
        factory: Any, boards: PCA9685Boards, chip: SimulatedPCA9685, inverted: bool) -> None:
    kw: dict[str, Any] = dict(min_pulse_width=0.0005, max_pulse_width=0.0025, inverted=inverted)
    with Joint(joint_cal(pin=12, **kw), pin_factory=factory) as gpio, \
            Joint(pca_cal(**kw), boards=boards) as pca:
        for angle in (-90, -45, 0, 30, 90):
            gpio.set_angle(angle)
            pca.set_angle(angle)
            width = factory.pin(12).state * 0.02  # gpiozero's duty cycle of a 20 ms frame
            assert width == pytest.approx(pca.calibration.pulse_width(angle))
            assert chip.pulse_width(3) == pytest.approx(width, abs=TICK / 2)


def test_standalone_joint_opens_and_closes_its_own_board(
        monkeypatch: pytest.MonkeyPatch, bus: MockI2CBus, chip: SimulatedPCA9685) -> None:
    monkeypatch.setattr("hw.outputs.open_i2c_bus", lambda n: bus)
    joint = Joint(pca_cal())
    assert chip.counts(3) == (0, 307)
    joint.close()
    assert chip.asleep and bus.closed


def rig_on(bus: MockI2CBus, clock: ManualClock, cal: RigCalibration | None = None,
           opened: list[int] | None = None) -> ServoRig:
    def open_bus(number: int) -> MockI2CBus:
        if opened is not None:
            opened.append(number)
        return bus
    return ServoRig(cal or load_calibration(PCA9685_CALIBRATION_PATH), i2c_factory=open_bus,
                    clock=clock)


def test_shipped_pca9685_rig_runs_a_motion_on_the_board(
        bus: MockI2CBus, chip: SimulatedPCA9685, clock: ManualClock) -> None:
    opened: list[int] = []
    with rig_on(bus, clock, opened=opened) as rig:
        assert opened == [1]  # one bus, one board for all five joints
        assert [chip.counts(ch) for ch in range(5)] == [(0, 307)] * 5  # all at neutral
        frames = plan_motion("wave", neutral=rig.neutral_pose())
        assert rig.run_motion(frames) is True
        for joint in rig.joints.values():
            cal = joint.calibration
            assert cal.channel is not None
            assert chip.pulse_width(cal.channel) == pytest.approx(
                cal.pulse_width(joint.angle), abs=TICK / 2)
    assert all(chip.fully_off(ch) for ch in range(16)) and chip.asleep and bus.closed
    assert chip.faults == []


def test_a_stop_ends_a_pca9685_move_within_one_step(
        bus: MockI2CBus, chip: SimulatedPCA9685) -> None:
    stop = threading.Event()
    clock = ManualClock(on_step=lambda n: stop.set() if n == 10 else None)
    chip.clock = clock
    with rig_on(bus, clock) as rig:  # step 1 is the board's 500 µs start-up wait
        written = len(chip.writes)
        assert rig.move_to({"left_arm": 60}, 1.0, stop) is False
        assert len(chip.writes) - written == 8 * 4  # 8 steps, one 4-byte channel write each
        assert 0 < rig.angles()["left_arm"] < 60


def test_gpio_and_pca9685_joints_in_one_rig(
        factory: Any, bus: MockI2CBus, chip: SimulatedPCA9685, clock: ManualClock) -> None:
    joints = (joint_cal("torso_height", 5), pca_cal("left_arm", 3), pca_cal("right_arm", 4))
    with ServoRig(RigCalibration(joints), pin_factory=factory, i2c_factory=lambda n: bus,
                  clock=clock) as rig:
        rig.move_to({"torso_height": 90, "left_arm": 90}, 0)
        assert factory.pin(5).state == pytest.approx(0.10)
        assert chip.counts(3) == (0, 410) and chip.counts(4) == (0, 307)


def test_boards_at_two_addresses_share_the_bus(clock: ManualClock) -> None:
    first, second = SimulatedPCA9685(clock=clock), SimulatedPCA9685(clock=clock)
    bus = MockI2CBus({0x40: first, 0x41: second})
    joints = (pca_cal("a", 0), pca_cal("b", 0, i2c_address=0x41))
    opened: list[int] = []
    with rig_on(bus, clock, RigCalibration(joints), opened) as rig:
        rig.move_to({"a": 90, "b": -90}, 0)
        assert first.counts(0) == (0, 410) and second.counts(0) == (0, 205)
    assert opened == [1] and first.asleep and second.asleep


def test_a_missing_board_names_the_joint_and_releases_the_rest(
        factory: Any, clock: ManualClock) -> None:
    bus = MockI2CBus({})  # wrong address jumpers: nobody answers at 0x40
    joints = (joint_cal("torso_height", 5), pca_cal("left_arm", 3))
    with pytest.raises(HardwareError, match=r"joint 'left_arm': PCA9685 on I2C bus 1 at 0x40 "
                                            r"does not answer"):
        ServoRig(RigCalibration(joints), pin_factory=factory, i2c_factory=lambda n: bus,
                 clock=clock)
    with Joint(joint_cal("torso", 5), pin_factory=factory):  # the GPIO joint let its pin go
        pass
    assert bus.closed


def test_a_bus_failure_mid_move_names_the_joint_and_channel(
        bus: MockI2CBus, chip: SimulatedPCA9685, clock: ManualClock) -> None:
    rig = rig_on(bus, clock)
    bus.fail = OSError(errno.EREMOTEIO, "Remote I/O error")  # a loose SDA wire
    with pytest.raises(HardwareError, match=r"joint 'left_arm': PCA9685 on I2C bus 1 at 0x40, "
                                            r"channel 3: cannot set the pulse"):
        rig.move_to({"left_arm": 30}, 0.1)
    with pytest.raises(HardwareError, match="cannot turn it off"):
        rig.close()  # tried every joint and the board, then reported the first failure
    assert rig.closed and bus.closed


def test_from_env_reads_a_pca9685_calibration(bus: MockI2CBus, chip: SimulatedPCA9685,
                                              clock: ManualClock) -> None:
    env = {"TARS_CALIBRATION": str(PCA9685_CALIBRATION_PATH)}
    with ServoRig.from_env(env, i2c_factory=lambda n: bus, clock=clock) as rig:
        assert {j.calibration.driver for j in rig.joints.values()} == {"pca9685"}
        assert chip.counts(0) == (0, 307)


def test_no_i2c_bus_device_is_a_hardware_error(clock: ManualClock) -> None:
    joints = (pca_cal("left_arm", 3, i2c_bus=99),)  # default factory: smbus2, /dev/i2c-99
    with pytest.raises(HardwareError, match=r"cannot open I2C bus 99 \(/dev/i2c-99\)"):
        ServoRig(RigCalibration(joints), clock=clock)


def test_the_movement_unit_may_open_an_i2c_bus() -> None:
    """Its sandbox allows only listed devices: without this a PCA9685 joint gets EPERM."""
    unit = Path(__file__).resolve().parents[2] / "systemd" / "tars-movement.service"
    assert "DeviceAllow=char-i2c rw" in unit.read_text(encoding="utf-8").splitlines()
