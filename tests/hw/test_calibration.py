"""Calibration files: the shipped default, and clear errors naming file, joint and key."""

from __future__ import annotations

from pathlib import Path

import pytest

from hw import (
    DEFAULT_CALIBRATION_PATH,
    PCA9685_CALIBRATION_PATH,
    TARS_JOINTS,
    CalibrationError,
    HardwareError,
    JointCalibration,
    calibration_path_from_env,
    load_calibration,
)

DOCS = Path(__file__).resolve().parents[2] / "docs" / "hardware.md"

GOOD_JOINT = """
min_pulse_width = 0.0005
max_pulse_width = 0.0025
min_angle = -90
max_angle = 90
soft_min = -60
soft_max = 60
neutral = 0
"""


def calibration_text(left_arm: str = "pin = 6\n" + GOOD_JOINT, top: str = "step_rate_hz = 50"
                     ) -> str:
    """A full five-joint file whose left_arm table body is ``left_arm``."""
    pins = {"torso_height": 5, "left_leg": 12, "right_leg": 13, "right_arm": 26}
    parts = [top]
    for name, pin in pins.items():
        parts.append(f"[joints.{name}]\npin = {pin}\n{GOOD_JOINT}")
    parts.append(f"[joints.left_arm]\n{left_arm}")
    return "\n\n".join(parts)


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "calibration.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_shipped_default_loads_with_all_tars_joints() -> None:
    cal = load_calibration()
    assert set(TARS_JOINTS) <= set(cal.names)
    assert cal.step_rate_hz == 50
    assert len({j.pin for j in cal.joints}) == len(cal.joints)
    for joint in cal.joints:
        assert joint.min_angle <= joint.soft_min <= joint.neutral <= joint.soft_max
        assert joint.soft_max <= joint.max_angle


def test_docs_show_the_shipped_wiring() -> None:
    docs = DOCS.read_text(encoding="utf-8")
    for joint in load_calibration().joints:
        assert f"`{joint.name}`" in docs
        assert f"GPIO {joint.pin} " in docs or f"GPIO {joint.pin}|" in docs


def test_loads_a_valid_file(tmp_path: Path) -> None:
    cal = load_calibration(write(tmp_path, calibration_text()))
    arm = cal.joint("left_arm")
    assert (arm.pin, arm.soft_min, arm.soft_max, arm.neutral) == (6, -60.0, 60.0, 0.0)
    assert isinstance(arm.min_angle, float)


def test_defaults_fill_missing_keys(tmp_path: Path) -> None:
    path = write(tmp_path, "[joints.arm]\npin = 12\nsoft_min = -30\nsoft_max = 50\n")
    arm = load_calibration(path, required=()).joint("arm")
    assert (arm.min_pulse_width, arm.max_pulse_width) == (0.001, 0.002)
    assert (arm.min_angle, arm.max_angle, arm.neutral) == (-90.0, 90.0, 10.0)


def test_path_from_env() -> None:
    assert calibration_path_from_env({}) is None
    assert calibration_path_from_env({"TARS_CALIBRATION": " "}) is None
    assert calibration_path_from_env({"TARS_CALIBRATION": "/etc/tars.toml"}) == Path(
        "/etc/tars.toml")
    assert DEFAULT_CALIBRATION_PATH.name == "calibration.toml"


@pytest.mark.parametrize(
    ("left_arm", "message"),
    [
        (GOOD_JOINT.replace("soft_min = -60", "soft_min = -100") + "pin = 6",
         "calibration.toml: joint 'left_arm': soft_min -100 is below min_angle -90"),
        (GOOD_JOINT.replace("soft_max = 60", "soft_max = 95") + "pin = 6",
         "joint 'left_arm': soft_max 95 is above max_angle 90"),
        (GOOD_JOINT, "joint 'left_arm': missing key 'pin'"),
        ("pin = 6\nsoft_mn = 3", "joint 'left_arm': unknown key 'soft_mn'"),
        ('pin = "GPIO6"', "joint 'left_arm': pin must be an integer, got 'GPIO6'"),
        ("pin = 40", "joint 'left_arm': pin 40 is not a GPIO number"),
        ('pin = 6\nmin_angle = "low"', "joint 'left_arm': min_angle must be a number"),
        ("pin = 6\nneutral = 95\nsoft_max = 90",
         "joint 'left_arm': neutral 95 is outside the soft limits -90..90"),
        ("pin = 6\nmax_pulse_width = 2500",
         "joint 'left_arm': max_pulse_width 2500 must be below the frame width"),
        ("pin = 6\nmin_pulse_width = 0.002\nmax_pulse_width = 0.001",
         "joint 'left_arm': max_pulse_width 0.001 must be above min_pulse_width 0.002"),
        ("pin = 6\nmin_angle = 90\nmax_angle = -90",
         "joint 'left_arm': max_angle -90 must be above min_angle 90"),
        ('pin = 6\ninverted = "yes"', "joint 'left_arm': inverted must be true or false"),
        ("pin = 12", "joint 'left_arm': GPIO12 is already used by joint 'left_leg'"),
        ('driver = "servo"\npin = 6', "joint 'left_arm': driver 'servo' is not one of gpio, "
                                      "pca9685"),
        ('driver = "pca9685"', "joint 'left_arm': missing key 'channel'"),
        ('driver = "pca9685"\nchannel = 3\npin = 6',
         "joint 'left_arm': a pca9685 joint has a channel, not a pin"),
        ("pin = 6\nchannel = 3", "joint 'left_arm': a gpio joint has a pin, not a channel"),
        ('driver = "pca9685"\nchannel = 16',
         "joint 'left_arm': channel 16 is not a PCA9685 channel 0..15"),
        ('driver = "pca9685"\nchannel = "3"', "joint 'left_arm': channel must be an integer"),
        ('driver = "pca9685"\nchannel = 3\ni2c_address = 0x70',
         "joint 'left_arm': i2c_address 0x70 is not a PCA9685 address: 0x40..0x7f"),
        ('driver = "pca9685"\nchannel = 3\ni2c_address = 0x3c',
         "joint 'left_arm': i2c_address 0x3c is not a PCA9685 address"),
        ('driver = "pca9685"\nchannel = 3\ni2c_bus = -1',
         "joint 'left_arm': i2c_bus -1 must be 0 or more"),
    ],
)
def test_bad_joint_is_a_clear_error(tmp_path: Path, left_arm: str, message: str) -> None:
    path = write(tmp_path, calibration_text(left_arm))
    with pytest.raises(CalibrationError) as info:
        load_calibration(path)
    assert message in str(info.value)
    assert str(info.value).startswith(f"{path}: ")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (calibration_text(top="step_rate_hz = 0"), "step_rate_hz must be a number in (0, 1000]"),
        (calibration_text(top="step_rate = 50"), "unknown key 'step_rate'"),
        ("step_rate_hz = 50\n", "missing [joints.<name>] tables"),
        ("[joints.left_arm]\npin = 6\n", "missing joint 'torso_height'"),
        ("[joints.left_arm\npin = 6\n", "invalid TOML"),
        ("joints = 3\n", "missing [joints.<name>] tables"),
        ("[joints]\nleft_arm = 3\n", "joint 'left_arm': must be a table"),
    ],
)
def test_bad_file_is_a_clear_error(tmp_path: Path, text: str, message: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(CalibrationError, match="^" + str(path)) as info:
        load_calibration(path)
    assert message in str(info.value)


def test_missing_file_names_it(tmp_path: Path) -> None:
    path = tmp_path / "nope.toml"
    with pytest.raises(CalibrationError, match=r"nope\.toml: cannot read"):
        load_calibration(path)


def test_calibration_error_is_a_value_error() -> None:
    assert issubclass(CalibrationError, ValueError)
    assert issubclass(CalibrationError, HardwareError)
    with pytest.raises(ValueError, match="joint 'x': soft_max 10 must be above soft_min 20"):
        JointCalibration(name="x", pin=4, soft_min=20, soft_max=10, neutral=15)


# --- PCA9685 joints ------------------------------------------------------------------------

PCA_JOINT = 'driver = "pca9685"\nchannel = {channel}\n{extra}\n' + GOOD_JOINT


def pca_text(**channels: int | str) -> str:
    """Five joints on PCA9685 channels; a str value is the whole table body instead."""
    names = {"torso_height": 0, "left_leg": 1, "right_leg": 2, "left_arm": 3, "right_arm": 4}
    names.update(channels)  # type: ignore[arg-type]
    return "\n\n".join(
        f"[joints.{name}]\n" + (body if isinstance(body, str)
                                else PCA_JOINT.format(channel=body, extra=""))
        for name, body in names.items())


def test_pca9685_joint_defaults_to_bus_1_at_0x40(tmp_path: Path) -> None:
    cal = load_calibration(write(tmp_path, pca_text()))
    arm = cal.joint("left_arm")
    assert (arm.driver, arm.channel, arm.i2c_bus, arm.i2c_address, arm.pin) == (
        "pca9685", 3, 1, 0x40, None)
    assert arm.output == "PCA9685 on I2C bus 1 at 0x40, channel 3"


def test_pca9685_address_is_written_in_hex(tmp_path: Path) -> None:
    body = PCA_JOINT.format(channel=3, extra="i2c_bus = 0\ni2c_address = 0x41")
    arm = load_calibration(write(tmp_path, pca_text(left_arm=body))).joint("left_arm")
    assert (arm.i2c_bus, arm.i2c_address) == (0, 0x41)


def test_one_channel_per_joint_but_boards_may_repeat_channels(tmp_path: Path) -> None:
    with pytest.raises(CalibrationError, match="joint 'left_arm': PCA9685 on I2C bus 1 at "
                                               "0x40, channel 1 is already used by joint "
                                               "'left_leg'"):
        load_calibration(write(tmp_path, pca_text(left_arm=1)))
    other_board = PCA_JOINT.format(channel=1, extra="i2c_address = 0x41")
    assert load_calibration(write(tmp_path, pca_text(left_arm=other_board)))


def test_gpio_joint_cannot_take_the_pins_of_the_i2c_bus(tmp_path: Path) -> None:
    text = pca_text(left_arm="pin = 2\n" + GOOD_JOINT)
    with pytest.raises(CalibrationError, match="joint 'left_arm': GPIO2 is I2C bus 1's SDA, "
                                               "which the PCA9685 of joint 'torso_height' "
                                               "needs"):
        load_calibration(write(tmp_path, text))
    assert load_calibration(write(tmp_path, calibration_text("pin = 2\n" + GOOD_JOINT)))


def test_shipped_pca9685_calibration_puts_every_joint_on_one_board() -> None:
    cal = load_calibration(PCA9685_CALIBRATION_PATH)
    assert set(TARS_JOINTS) <= set(cal.names)
    assert {(j.driver, j.i2c_bus, j.i2c_address) for j in cal.joints} == {("pca9685", 1, 0x40)}
    docs = DOCS.read_text(encoding="utf-8")
    for joint in cal.joints:  # the docs' PCA9685 wiring table is the shipped file
        assert f"| `{joint.name}` | {joint.channel} |" in docs


def test_pulse_width_is_linear_between_the_calibrated_ends() -> None:
    cal = JointCalibration("arm", pin=6, min_pulse_width=0.0005, max_pulse_width=0.0025)
    assert cal.pulse_width(-90) == pytest.approx(0.0005)
    assert cal.pulse_width(0) == pytest.approx(0.0015)
    assert cal.pulse_width(45) == pytest.approx(0.002)
    mirrored = JointCalibration("arm", pin=6, inverted=True)
    assert mirrored.pulse_width(90) == pytest.approx(0.001)
