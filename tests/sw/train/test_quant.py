"""Quantizers: the papers' worked examples (docs/arithmetic.md), levels, idempotence and straight-through
gradient masks."""

import numpy as np
import pytest
import torch

from lowbit.sw.golden import fgq_dot
from lowbit.sw.kinds.encodings import nhot_values
from lowbit.sw.train import quant

torch.set_num_threads(1)


def grad_of(module, x):
    x = x.clone().requires_grad_(True)
    module(x).sum().backward()
    return x.grad


# --- binary (PokeBNN) ----------------------------------------------------------------------------------


def test_binary_activation_values_and_mask():
    q = quant.BinaryActivation(B=3.0)
    x = torch.tensor([-4.0, -2.97, -0.1, 0.0, 0.1, 2.97, 2.98, 4.0])
    assert q(x).tolist() == [-1.5, -1.5, -1.5, 1.5, 1.5, 1.5, 1.5, 1.5]
    assert q.code(x).tolist() == [0, 0, 0, 1, 1, 1, 1, 1]
    # the gradient passes only where |x| < B * (1 - 2**-7) = 2.9765625
    assert grad_of(q, x).tolist() == [0, 1, 1, 1, 1, 1, 0, 0]
    assert torch.equal(q(q(x)), q(x))
    assert torch.equal(q.value(q.code(x)) * float(q.scale()), q(x).double())


def test_binary_activation_wrong_B():
    with pytest.raises(ValueError, match=r"B must be a positive number, not -1"):
        quant.BinaryActivation(B=-1)


def test_binary_weight_per_channel():
    w = torch.tensor([[0.5, -0.2, 0.0, 0.1], [-2.0, 1.0, 0.5, -0.5]])
    q = quant.BinaryWeight()
    assert q(w).tolist() == [[0.25, -0.25, 0.25, 0.25], [-1.0, 1.0, 1.0, -1.0]]
    iw = q.integer(w)
    assert iw.values.tolist() == [[1, -1, 1, 1], [-1, 1, 1, -1]]
    assert iw.scale.tolist() == [0.25, 1.0]
    assert torch.equal(grad_of(q, w), torch.ones_like(w))  # the gradient always passes
    assert quant.BinaryWeight("layer").integer(w).scale.tolist() == 1.0


def test_dprelu():
    d = quant.DPReLU(2)
    with torch.no_grad():
        d.slope_pos.copy_(torch.tensor([2.0, 1.0]))
        d.slope_neg.copy_(torch.tensor([0.5, -3.0]))  # below min_slope: 0.01 in use
        d.b_x.copy_(torch.tensor([1.0, 0.0]))
        d.b_y.copy_(torch.tensor([0.5, 0.0]))
    x = torch.tensor([[3.0, -2.0], [0.0, 2.0]])
    assert torch.allclose(d(x), torch.tensor([[2 * 2 - 0.5, 0.01 * -2], [0.5 * -1 - 0.5, 2.0]]))
    x.requires_grad_(True)
    d(x).sum().backward()
    assert float(d.slope_neg.grad[1]) == -2.0  # straight through the clamp
    raw = quant.DPReLU(1, slope_neg=-0.5, min_slope=None)
    assert raw(torch.tensor([[-2.0]])).item() == 1.0  # the paper's form, unconstrained


# --- TWN ----------------------------------------------------------------------------------------------

TWN_W = torch.tensor([[0.9, -0.33, 0.05, -1.2, 0.4, 0, -0.6, 0.2]])
TWN_X = torch.arange(10.0, 90.0, 10.0, dtype=torch.float64)


def test_twn_example():
    iw = quant.TernaryWeight(k=0.7).integer(TWN_W)
    assert iw.values[0].tolist() == [1, -1, 0, -1, 1, 0, -1, 0]
    assert abs(float(iw.scale[0]) - 0.686) < 1e-6
    assert float(iw.values[0] @ TWN_X) == -70
    iw = quant.TernaryWeight(k=0.75).integer(TWN_W)
    assert iw.values[0].tolist() == [1, 0, 0, -1, 1, 0, -1, 0]
    assert float(iw.values[0] @ TWN_X) == -50


def test_twn_exact_is_optimal():
    rng = np.random.default_rng(3)
    w = torch.tensor(rng.normal(size=(6, 10)))
    iw = quant.TernaryWeight(method="exact").integer(w)
    for row in range(6):
        mags = np.sort(np.abs(w[row].numpy()))[::-1]
        best = max(np.cumsum(mags)[m - 1] ** 2 / m for m in range(1, 11))
        t = iw.values[row].numpy()
        kept = np.abs(w[row].numpy())[t != 0]
        assert abs(kept.sum() ** 2 / len(kept) - best) < 1e-9, f"row {row}"
        assert np.all(np.sign(w[row].numpy())[t != 0] == t[t != 0])


@pytest.mark.parametrize("method", ["threshold", "exact"])
@pytest.mark.parametrize("granularity", ["channel", "layer"])
def test_twn_levels_idempotence_gradient(method, granularity):
    torch.manual_seed(0)
    w = torch.randn(5, 16)
    q = quant.TernaryWeight(granularity=granularity, method=method)
    iw = q.integer(w)
    assert set(iw.values.unique().tolist()) <= {-1, 0, 1}
    assert iw.scale.shape == ((5,) if granularity == "channel" else ())
    wq = q(w)
    assert torch.allclose(q(wq), wq)
    assert torch.equal(grad_of(q, w), torch.ones_like(w))


# --- FGQ ----------------------------------------------------------------------------------------------


def test_fgq_example():
    w = torch.tensor([[0.42, -0.05, 0.31, -0.6, 0.02, 0.11, -0.09, 0.7]])
    iw = quant.FGQWeight(group_size=4).integer(w)
    assert iw.values[0].tolist() == [1, 0, 1, -1, 0, 0, 0, 1]
    assert iw.alpha_q.tolist() == [[113, 179]]  # Q0.8 with S = 1 (every alpha < 1)
    assert float(iw.scale) == 1 / 256
    a = np.array([12, 200, 7, 90, 255, 3, 64, 18])
    assert fgq_dot(a, iw.values.numpy().astype(int), iw.alpha_q.numpy().astype(int), 4) == -4801


def test_fgq_alpha_scale():
    assert quant.fgq_alpha_scale(0.7) == 1.0
    assert quant.fgq_alpha_scale(0.3) == 0.5
    assert quant.fgq_alpha_scale(3.0) == 4.0
    assert round(3.0 / quant.fgq_alpha_scale(3.0, "max") * 256) == 255
    for alpha in np.geomspace(1e-4, 1e3, 50):
        assert round(alpha / quant.fgq_alpha_scale(alpha) * 256) <= 255


@pytest.mark.parametrize("group_size", [4, 64])
def test_fgq_groups(group_size):
    torch.manual_seed(1)
    w = torch.randn(3, 128) * 2
    q = quant.FGQWeight(group_size)
    iw = q.integer(w)
    assert iw.alpha_q.shape == (3, 128 // group_size)
    assert 0 <= iw.alpha_q.min() and iw.alpha_q.max() <= 255
    assert torch.allclose(q(w), (iw.effective() * iw.scale).float())
    assert torch.equal(grad_of(q, w), torch.ones_like(w))


def test_fgq_wrong_width():
    with pytest.raises(ValueError, match=r"input width \(6\) to be a multiple of group_size \(4\)"):
        quant.FGQWeight(4).integer(torch.zeros(2, 6))


# --- FATNN --------------------------------------------------------------------------------------------


def test_fatnn_weight_levels_and_mask():
    q = quant.FatnnWeight(alpha0=2.0, alpha1=1.0)
    w = torch.tensor([-1.0, -0.3, -0.2, 0.0, 0.4, 0.6, 2.0])
    # -1 where w * alpha0 < -0.5, +1 where w * alpha1 > 0.5 (0.5 itself rounds to 0)
    assert q(w).tolist() == [-1, -1, 0, 0, 0, 1, 1]
    assert q.integer(w.reshape(1, -1)).values[0].tolist() == [-1, -1, 0, 0, 0, 1, 1]
    # the clamps pass gradient only inside their range: alpha0 for -0.5 < w < 0, alpha1 for 0 < w < 1
    assert grad_of(q, w).tolist() == [0, 2, 2, 3, 1, 1, 0]
    assert torch.equal(q(q(w)), q(w))


def test_fatnn_activation_levels_and_mask():
    q = quant.FatnnActivation(alpha0=2.0, alpha1=1.0)
    # level 1 at x >= 0.5 / alpha0 = 0.25, level 2 at x >= 1 / alpha0 + 0.5 / alpha1 = 1.0
    x = torch.tensor([-1.0, 0.2, 0.3, 0.9, 1.1, 2.0])
    assert q(x).tolist() == [0, 0, 1, 1, 2, 2]
    assert q.code(x).tolist() == [0, 0, 1, 1, 2, 2]
    assert grad_of(q, x).tolist() == [0, 2, 2, 1, 1, 0]
    x = torch.tensor([0.3, 1.2]).requires_grad_(True)
    q(x).sum().backward()
    assert q.alpha0.grad is not None and q.alpha1.grad is not None


# --- n-hot and uniform weights ------------------------------------------------------------------------


def test_nhot_example():
    q = quant.NHotWeight(2, bits=8, granularity="layer")
    w = torch.tensor([[105.0, -52, 15, -127, 72, 6, -34, 84]]) / 127  # max |w| = 1 -> q = round(w * 127)
    iw = q.integer(w)
    assert iw.values[0].tolist() == [112, -48, 15, -127, 72, 6, -34, 80]


@pytest.mark.parametrize("n_terms", [1, 2, 3])
def test_nhot_levels_idempotence_gradient(n_terms):
    torch.manual_seed(2)
    w = torch.randn(4, 300)
    q = quant.NHotWeight(n_terms)
    iw = q.integer(w)
    assert set(iw.values.unique().long().tolist()) <= set(nhot_values(n_terms, 8).tolist())
    assert len(set(quant.NHotWeight(n_terms).integer(torch.linspace(-1, 1, 4001)[None]).values[0].tolist())) == len(
        nhot_values(n_terms, 8)
    )
    assert torch.equal(grad_of(q, w), torch.ones_like(w))
    again = q.integer(q(w).detach())
    assert torch.equal(again.values, iw.values)


@pytest.mark.parametrize("bits", [2, 4, 8])
def test_uniform_weight(bits):
    w = torch.linspace(-1, 1, 1001)[None]
    iw = quant.UniformWeight(bits).integer(w)
    limit = 2 ** (bits - 1) - 1
    assert iw.values.unique().tolist() == list(range(-limit, limit + 1))


# --- activations ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("k", range(1, 9))
def test_uniform_activation_levels(k):
    q = quant.UniformActivation(k, clip=2.0)
    x = torch.linspace(-1, 3, 4001)
    assert len(q(x).unique()) == 2**k
    assert q.code(x).min() == 0 and q.code(x).max() == 2**k - 1
    assert torch.allclose(q(q(x)), q(x))
    g = grad_of(q, x)
    inside, outside = (x > 0) & (x < 2.0), (x < 0) | (x > 2.0)  # (at x = clip, minimum splits it)
    assert torch.allclose(g[inside], torch.ones(int(inside.sum())))  # L/clip * clip/L, to rounding
    assert torch.equal(g[outside], torch.zeros(int(outside.sum())))


def test_uniform_activation_wrong_k():
    with pytest.raises(ValueError, match=r"k must be an integer from 1 to 8, not 9"):
        quant.UniformActivation(9)


def test_uniform_activation_learns_clip():
    q = quant.UniformActivation(4, clip=1.0)
    q(torch.tensor([3.0, 0.5])).sum().backward()
    assert q.clip.grad is not None and float(q.clip.grad) != 0


@pytest.mark.parametrize("k", range(2, 9))
def test_signed_activation_levels(k):
    q = quant.SignedActivation(k, clip=2.0)
    half = 2 ** (k - 1) - 1
    x = torch.linspace(-3, 3, 6001)
    assert len(q(x).unique()) == 2**k - 1 == q.levels
    assert q.code(x).min() == 0 and q.code(x).max() == 2 * half
    assert torch.equal(q.value(q.code(x)), torch.round(q(x) / q.scale()).float())
    assert torch.allclose(q(q(x)), q(x))
    assert torch.equal(q.code(-x) + q.code(x), torch.full_like(x, 2 * half))  # symmetric: -x maps to -value
    g = grad_of(q, x)
    inside, outside = x.abs() < 2.0, x.abs() > 2.0
    assert torch.allclose(g[inside], torch.ones(int(inside.sum())))
    assert torch.equal(g[outside], torch.zeros(int(outside.sum())))


def test_signed_activation_example():
    q = quant.SignedActivation(3, clip=1.5)  # H = 3: values -3 .. 3 in steps of 0.5
    x = torch.tensor([-2.0, -0.8, -0.2, 0.0, 0.3, 1.2, 9.0])
    assert q.code(x).tolist() == [0, 1, 3, 3, 4, 5, 6]
    assert (q(x) / 0.5).tolist() == [-3, -2, 0, 0, 1, 2, 3]


def test_signed_activation_wrong_k():
    with pytest.raises(ValueError, match=r"k must be an integer from 2 to 8, not 1"):
        quant.SignedActivation(1)


def test_ternary_activation():
    q = quant.TernaryActivation(1.0)
    x = torch.tensor([-2.0, -0.6, -0.5, 0.0, 0.5, 0.6, 2.0])
    assert q(x).tolist() == [-1, -1, 0, 0, 0, 1, 1]
    assert q.code(x).tolist() == [0, 0, 1, 1, 1, 2, 2]
    assert grad_of(q, x).tolist() == [0, 1, 1, 1, 1, 1, 0]
    assert torch.equal(q(q(x)), q(x))


def test_round_ste():
    x = torch.tensor([0.4, 0.5, 1.5, 2.6], requires_grad=True)
    y = quant.round_ste(x)
    assert y.tolist() == [0, 0, 2, 3]
    y.sum().backward()
    assert x.grad.tolist() == [1, 1, 1, 1]
