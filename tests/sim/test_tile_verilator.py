"""The Verilog tile in Verilator, driven by the host driver: small trained models end to end against the
golden model (==), at one (PE, SIMD) shape per scheme, with random idle input and back-pressure; and
the protocol's error responses and a reset in the middle of a command."""

import asyncio

import pytest

from lowbit.sim.reference import ModelTile
from lowbit.sim.tile_transport import run_model_on_tile
from lowbit.sw.golden import GoldenNetwork
from lowbit.sw.host import default_geometry, pack_inputs, pack_thresholds, pack_weights, tile_layers
from lowbit.sw.protocol import ErrorCode, Opcode, Response, header

from .trained import check_script, check_tile_run, train_tile_models

pytestmark = pytest.mark.verilator

IMAGES = 48


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    from lowbit.sw.train.data import load_digits_split

    trained = train_tile_models(tmp_path_factory.mktemp("models"))
    return trained, load_digits_split().x_test[:IMAGES]


@pytest.mark.parametrize(
    "scheme, pe, simd, resident, idle, backpressure",
    [
        # One shape per scheme (the differential tests run random layers at five geometries): a Verilator
        # build each is most of a case's time. Binary on wide rows (the pixels' 8 planes of 32 inputs: 8
        # words a row); FATNN and n-hot a layer at a time on the resident tests' tiles (the same models
        # and Verilog: test_resident_verilator.py): FATNN's hidden rows of 8 bits four to a word, n-hot's
        # rows of 8 codes two words each.
        ("binary", 8, 32, False, True, True),
        ("fatnn", 16, 4, True, False, True),
        ("nhot2", 4, 8, True, True, False),
    ],
)
def test_model_on_tile(models, scheme, pe, simd, resident, idle, backpressure, seed=20261123):
    trained, pixels = models
    path, model = trained[scheme]
    geometry = default_geometry(model, pe, simd, resident=resident)
    result = run_model_on_tile(
        path, pixels, geometry, idle=idle, backpressure=backpressure, seed=seed, mode="streaming", quiet=True
    )
    check_tile_run(result, model, pixels, geometry, f"{scheme} PE {pe} SIMD {simd} seed {seed}")


def test_harness_reports_a_silent_tile(models):
    """A read of more words than the tile answers raises TransportError after the quiet cycles, naming
    the cycle, instead of hanging; the harness's cycle count is the clock edges since reset. The build
    keeps only what a run loads."""
    from lowbit.sim.harness import HarnessTransport
    from lowbit.sim.tile_transport import tile_library
    from lowbit.sw.host import TransportError

    _, model = models[0]["binary"]
    geometry = default_geometry(model, 8, 32)
    library = tile_library(geometry, quiet=True)
    # The cache keeps the library and the build's log, not Verilator's objects (~200 MB a tile).
    assert sorted(p.name for p in library.parent.iterdir() if not p.name.startswith(".")) == [
        "build.log",
        library.name,
        "tile.v",
    ]
    transport = HarnessTransport(library, timeout_cycles=500)
    try:
        asyncio.run(transport.write([header(Opcode.IDENTIFY, 0)]))
        assert asyncio.run(transport.read(6))[1:] == geometry.encode()
        answered = transport.cycle
        assert 0 < answered < 50
        with pytest.raises(TransportError, match=r"no word for 500 cycles while 1 more were expected"):
            asyncio.run(transport.read(1))
        assert transport.cycle == answered + 500
    finally:
        asyncio.run(transport.close())


def test_a_second_working_directory_and_waves(models, tmp_path, monkeypatch, capfd):
    """The compiled tile is built once per user: a run from another working directory reuses it (no build
    line); ``waves`` writes a VCD of the run (a second build, with tracing) that holds the tile's ports."""
    trained, pixels = models
    path, model = trained["binary"]
    geometry = default_geometry(model, 8, 32)
    first = run_model_on_tile(path, pixels[:2], geometry, quiet=True)
    monkeypatch.chdir(tmp_path)
    capfd.readouterr()
    again = run_model_on_tile(path, pixels[:2], geometry)
    assert "building" not in capfd.readouterr().err
    assert again["outputs"] == first["outputs"] and again["cycles"] == first["cycles"]
    waves = tmp_path / "run.vcd"
    traced = run_model_on_tile(path, pixels[:2], geometry, waves=waves, quiet=True)
    assert traced["outputs"] == first["outputs"] and traced["cycles"] == first["cycles"]
    text = waves.read_text()
    assert "$enddefinitions" in text and "o__payload" in text.replace("___05F", "__")
    assert f"#{10 * traced['cycles']}" in text  # every cycle of the run is in it


def _responses(tile, words):
    """What the reference tile answers to ``words``."""
    asyncio.run(tile.write(words))
    return asyncio.run(tile.read(tile.pending))


def test_protocol_errors_and_reset(models, seed=77):
    """Malformed commands get ERROR and leave the tile ready; a reset in the middle of LOAD_WEIGHTS
    leaves a tile that has forgotten the layer and then runs a whole layer exactly."""
    trained, pixels = models
    _, model = trained["binary"]
    geometry = default_geometry(model, 8, 32)
    layer, config = model.layers[0], tile_layers(model, geometry)[0]  # 8-bit input: 16 words per vector
    codes = GoldenNetwork(model).input(pixels[:8])
    configure = [header(Opcode.CONFIGURE, 3)] + config.encode()
    weights = [int(w) for w in pack_weights(layer, geometry)]
    thresholds = [int(w) for w in pack_thresholds(layer, geometry)]
    inputs = [int(w) for w in pack_inputs(codes, config, geometry)]
    commands = [
        [header(Opcode.IDENTIFY, 0)],
        [header(Opcode.RUN, 1), 0],  # forgotten by the reset
        [header(0x42, 3), 1, 2, 3],  # unknown opcode, drained
        [header(Opcode.CONFIGURE, 1), 7],  # bad length
        configure,
        [header(Opcode.RUN, len(inputs))] + inputs,  # before the loads
        [header(Opcode.LOAD_WEIGHTS, len(weights))] + weights,
        [header(Opcode.LOAD_THRESHOLDS, len(thresholds))] + thresholds,
        [header(Opcode.RUN, len(inputs) - 1)] + inputs[:-1],  # not whole vectors
        [header(Opcode.RUN, len(inputs))] + inputs,
        [header(Opcode.IDENTIFY, 0)],
    ]
    reference = ModelTile(geometry)
    steps = [
        {"send": configure},
        {"expect": [header(Response.OK, 0)]},
        {"send": [header(Opcode.LOAD_WEIGHTS, len(weights))] + weights[: len(weights) // 2]},
        {"reset": 3},
    ]
    for words in commands:
        steps += [{"send": words}, {"expect": _responses(reference, words)}]
    expects = [s["expect"] for s in steps if "expect" in s][1:]
    assert expects[1] == [header(Response.ERROR, 1), ErrorCode.NOT_CONFIGURED | (Opcode.RUN << 8)]
    assert expects[5] == [header(Response.ERROR, 1), ErrorCode.NOT_LOADED | (Opcode.RUN << 8)]
    assert expects[8] == [header(Response.ERROR, 1), ErrorCode.BAD_LENGTH | (Opcode.RUN << 8)]
    assert expects[9][0] == header(Response.DATA, 8 * geometry.output_words(config))
    assert geometry.input_words(config) > 1
    check_script(geometry, steps, seed)
