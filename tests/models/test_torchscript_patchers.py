"""OML's TorchScript patchers (``oml_fast.models.utils.patch_*``): a scripted model with CUDA and half precision
baked in runs on the CPU in float32 once patched (unpatched, it asks for CUDA)."""

from __future__ import annotations

import io

import pytest
import torch
from sklearn.datasets import load_digits

from oml_fast.models.utils import patch_device, patch_device_and_float, patch_float

pytestmark = pytest.mark.filterwarnings("ignore:`torch.jit.*` is deprecated:DeprecationWarning")


class _Baked(torch.nn.Module):
    """What a jitted checkpoint traced on a GPU in half precision holds: a CUDA device and float16 casts."""

    def __init__(self) -> None:
        super().__init__()
        self.head = torch.nn.Linear(64, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.to(torch.device("cuda"))
        return self.head(x.to(torch.float32)).to(torch.float16)


class _Outer(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.inner = _Baked()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.inner(x)


def _digits() -> torch.Tensor:
    return torch.tensor(load_digits().data[:16], dtype=torch.float32)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks that the unpatched model needs CUDA")
def test_patched_scripted_model_runs_on_cpu_in_float32():
    buffer = io.BytesIO()
    torch.jit.save(torch.jit.script(_Outer()), buffer)  # a jitted checkpoint, loaded as OML loads CLIP's

    def load() -> torch.jit.ScriptModule:
        buffer.seek(0)
        return torch.jit.load(buffer, map_location="cpu")

    with pytest.raises(RuntimeError, match="CUDA"):
        load()(_digits())
    model = load()  # patched before its first run, as OML does (the constants are in the child's graph)
    assert 'value="cuda' in str(model.inner.graph)
    patch_device_and_float(model, "cpu")
    assert 'value="cuda' not in str(model.inner.graph)
    out = model(_digits())
    assert out.device.type == "cpu" and out.dtype == torch.float32
    eager = _Outer()
    eager.load_state_dict(model.state_dict())
    assert torch.allclose(out, eager.inner.head(_digits()))


def test_patch_device_and_patch_float_take_graph_nodes():
    model = torch.jit.script(_Baked())
    holder = torch.jit.trace(lambda: torch.ones([]).to(torch.device("cpu")), example_inputs=[])
    device_node = [n for n in holder.graph.findAllNodes("prim::Constant") if "Device" in repr(n)][-1]
    patch_device(model, device_node)
    assert 'value="cuda' not in str(model.graph) and 'value="cpu"' in str(model.graph)
    assert "value=5]" in str(model.graph)  # the float16 cast is still there
    float_holder = torch.jit.trace(lambda: torch.ones([]).float(), example_inputs=[])
    patch_float(model, list(float_holder.graph.findNode("aten::to").inputs())[1].node())
    assert "value=5]" not in str(model.graph)
    assert model(_digits()).dtype == torch.float32  # run once patched (a run fixes the interpreter's plan)
