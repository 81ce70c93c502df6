"""pairwise_distance: kernel vs reference, gradients, opcheck, torch.compile, bad input."""

from __future__ import annotations

import pytest
import torch

import oml_fast  # noqa: F401  (loads the op library)
from oml_fast import reference
from oml_fast.ops import pairwise_distance

METRICS = ["euclidean", "sqeuclidean", "cosine", "dot"]
TOLERANCE = {torch.float32: dict(atol=2e-4, rtol=1e-4), torch.float64: dict(atol=1e-10, rtol=1e-10)}


def sample_inputs(device="cpu", dtype=torch.float32, requires_grad=False):
    shapes = [(1, 1, 1), (1, 7, 3), (9, 1, 5), (17, 33, 1), (130, 70, 16), (200, 530, 31)]
    for n, m, d in shapes:
        x1 = torch.randn(n, d, device=device, dtype=dtype, requires_grad=requires_grad)
        x2 = torch.randn(m, d, device=device, dtype=dtype, requires_grad=requires_grad)
        yield x1, x2


@pytest.mark.parametrize("metric", METRICS)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_matches_reference(metric, dtype):
    for x1, x2 in sample_inputs(dtype=dtype):
        expected = reference.pairwise_distance(x1, x2, metric)
        actual = pairwise_distance(x1, x2, metric)
        assert actual.dtype == dtype and actual.shape == expected.shape
        torch.testing.assert_close(actual, expected, **TOLERANCE[dtype])


@pytest.mark.parametrize("metric", METRICS)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_several_tiles_and_streamed_output_match_reference(metric, dtype):
    # 2100 x 3100: several row and column tiles with smaller edge tiles, and an output over 32 MiB,
    # which the kernel writes with streaming stores (csrc/distance/cpu/distance_rows.h).
    x1, x2 = torch.randn(2100, 12, dtype=dtype), torch.randn(3100, 12, dtype=dtype)
    x2[1234] = x1[777]  # an identical pair inside a tile: exactly 0 (recomputed from the differences)
    expected = reference.pairwise_distance(x1.double(), x2.double(), metric).to(dtype)
    actual = pairwise_distance(x1, x2, metric)
    torch.testing.assert_close(actual, expected, **TOLERANCE[dtype])
    if metric in ("euclidean", "sqeuclidean"):
        assert actual[777, 1234] == 0
    # Rows and columns far from the tile origins give the values of a small call on the same rows.
    torch.testing.assert_close(actual[2050:], pairwise_distance(x1[2050:], x2, metric), **TOLERANCE[dtype])


@pytest.mark.parametrize("metric", METRICS)
def test_non_contiguous_and_expanded_inputs(metric):
    base = torch.randn(40, 24)
    transposed = torch.randn(24, 50).T  # non-contiguous [50, 24]
    strided = base[::2]  # row stride 48
    expanded = torch.randn(1, 24).expand(30, 24)  # stride 0 rows
    for x1, x2 in [
        (strided, transposed),
        (expanded, base),
        (transposed, expanded),
        (base[:, ::2], base[:, 1::2]),
    ]:
        torch.testing.assert_close(
            pairwise_distance(x1, x2, metric),
            reference.pairwise_distance(x1, x2, metric),
            **TOLERANCE[torch.float32],
        )


def test_default_metric_is_euclidean():
    x1, x2 = torch.randn(5, 3), torch.randn(4, 3)
    torch.testing.assert_close(pairwise_distance(x1, x2), torch.cdist(x1, x2), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("metric", ["euclidean", "sqeuclidean"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_identical_rows_give_exactly_zero(metric, dtype):
    x = torch.randn(300, 64, dtype=dtype) * 100 + 1000  # large norms: the GEMM expansion cancels badly
    dist = pairwise_distance(x, x, metric)
    assert (dist.diagonal() == 0).all()
    y = torch.cat([x[:10], torch.randn(5, 64, dtype=dtype)])
    assert (pairwise_distance(x[:10], y, metric).diagonal() == 0).all()


def test_fp32_accuracy_not_worse_than_cdist():
    # Near-duplicate points far from the origin: where the GEMM expansion loses digits.
    base = torch.randn(400, 128, dtype=torch.float64) + 5
    x1 = base + 1e-3 * torch.randn_like(base)
    x2 = torch.cat([base + 1e-3 * torch.randn_like(base), torch.randn(300, 128, dtype=torch.float64) + 5])
    truth = reference.pairwise_distance(x1, x2)
    ours = (pairwise_distance(x1.float(), x2.float()).double() - truth).abs()
    cdist = (torch.cdist(x1.float(), x2.float()).double() - truth).abs()
    assert ours.max() <= 2 * cdist.max()
    assert ours.mean() <= 2 * cdist.mean()


def test_zero_vectors_under_cosine():
    x1 = torch.zeros(2, 4)
    x2 = torch.randn(3, 4)
    torch.testing.assert_close(pairwise_distance(x1, x2, "cosine"), torch.ones(2, 3))


@pytest.mark.parametrize("metric", METRICS)
def test_gradcheck_float64(metric):
    x1 = torch.randn(6, 5, dtype=torch.float64, requires_grad=True)
    x2 = torch.randn(7, 5, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda a, b: pairwise_distance(a, b, metric), (x1, x2))


@pytest.mark.parametrize("metric", METRICS)
def test_gradient_matches_reference(metric):
    x1 = torch.randn(20, 8, dtype=torch.float64, requires_grad=True)
    x2 = torch.randn(30, 8, dtype=torch.float64, requires_grad=True)
    weights = torch.randn(20, 30, dtype=torch.float64)
    ours = torch.autograd.grad((pairwise_distance(x1, x2, metric) * weights).sum(), (x1, x2))
    expected = torch.autograd.grad((reference.pairwise_distance(x1, x2, metric) * weights).sum(), (x1, x2))
    for a, b in zip(ours, expected):
        torch.testing.assert_close(a, b)


def test_gradient_at_zero_distance_is_finite():
    x = torch.randn(4, 3, requires_grad=True)
    y = x.detach().clone().requires_grad_(True)
    pairwise_distance(x, y).sum().backward()
    assert torch.isfinite(x.grad).all() and torch.isfinite(y.grad).all()


@pytest.mark.parametrize("metric", METRICS)
def test_opcheck(metric):
    for x1, x2 in [
        (torch.randn(5, 3), torch.randn(4, 3)),
        (torch.randn(3, 6, dtype=torch.float64, requires_grad=True), torch.randn(8, 6, dtype=torch.float64)),
    ]:
        torch.library.opcheck(torch.ops.oml_fast.pairwise_distance.default, (x1, x2, metric))


def test_torch_compile_fullgraph():
    @torch.compile(fullgraph=True, backend="aot_eager")
    def nearest(x1, x2):
        return pairwise_distance(x1, x2, "euclidean").argmin(dim=1)

    x1, x2 = torch.randn(10, 4), torch.randn(12, 4)
    torch.testing.assert_close(nearest(x1, x2), reference.pairwise_distance(x1, x2).argmin(dim=1))


@pytest.mark.parametrize("shapes", [((0, 3), (4, 3)), ((2, 3), (0, 3)), ((0, 3), (0, 3)), ((2, 0), (3, 0))])
def test_empty_inputs(shapes):
    x1, x2 = torch.randn(*shapes[0]), torch.randn(*shapes[1])
    out = pairwise_distance(x1, x2)
    assert out.shape == (shapes[0][0], shapes[1][0])
    torch.testing.assert_close(out, reference.pairwise_distance(x1, x2))


@pytest.mark.parametrize(
    "x1, x2, metric, error, match",
    [
        (torch.randn(3, 4), torch.randn(3, 5), "euclidean", ValueError, "same number of columns"),
        (torch.randn(3), torch.randn(3, 3), "euclidean", ValueError, "`x1` must be a 2-D"),
        (torch.randn(3, 3), torch.randn(2, 3, 3), "euclidean", ValueError, "`x2` must be a 2-D"),
        (
            torch.ones(3, 3, dtype=torch.int64),
            torch.ones(3, 3, dtype=torch.int64),
            "euclidean",
            TypeError,
            "`x1`",
        ),
        (torch.randn(3, 3), torch.randn(3, 3, dtype=torch.float64), "euclidean", TypeError, "same dtype"),
        (torch.randn(3, 3).half(), torch.randn(3, 3), "euclidean", TypeError, "same dtype"),
        (torch.randn(3, 3), torch.randn(3, 3), "manhattan", ValueError, "`metric` must be one of"),
        (torch.randn(3, 3), torch.randn(3, 3, device="meta"), "euclidean", ValueError, "same device"),
    ],
)
def test_bad_input(x1, x2, metric, error, match):
    with pytest.raises(error, match=match):
        pairwise_distance(x1, x2, metric)


@pytest.mark.cuda
@pytest.mark.parametrize("metric", METRICS)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.float16, torch.bfloat16])
def test_cuda_matches_cpu(metric, dtype):
    tolerance = {torch.float16: 2e-2, torch.bfloat16: 1e-1}.get(dtype, 1e-4)
    for x1, x2 in sample_inputs(device="cuda", dtype=dtype):
        expected = pairwise_distance(x1.double().cpu(), x2.double().cpu(), metric)
        actual = pairwise_distance(x1, x2, metric)
        assert actual.dtype == dtype and actual.device.type == "cuda"
        torch.testing.assert_close(actual.cpu().double(), expected, atol=tolerance, rtol=tolerance)


@pytest.mark.cuda
def test_cuda_identical_rows_and_gradients():
    x = torch.randn(100, 32, device="cuda", dtype=torch.float64, requires_grad=True)
    assert (pairwise_distance(x, x).diagonal() == 0).all()
    y = torch.randn(50, 32, device="cuda", dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda a, b: pairwise_distance(a[:5], b[:6]), (x, y))
    torch.library.opcheck(
        torch.ops.oml_fast.pairwise_distance.default, (x[:5].detach(), y[:6].detach(), "cosine")
    )


def test_double_backward_is_a_clear_error():
    x1 = torch.randn(4, 3, dtype=torch.float64, requires_grad=True)
    x2 = torch.randn(5, 3, dtype=torch.float64)
    (grad,) = torch.autograd.grad(pairwise_distance(x1, x2).sum(), x1)  # first derivative: fine
    assert grad.shape == x1.shape
    with pytest.raises(NotImplementedError, match="double backward"):
        torch.autograd.grad(pairwise_distance(x1, x2).sum(), x1, create_graph=True)
