"""Every registry norm drops into torchvision's ResNet through ``norm_layer=``."""

from __future__ import annotations

import pytest
import torch
import torchvision

from normlayers import find_norm_layers, list_norms, norm_layer

SPECS = [name for name in list_norms() if name != "none"] + ["bgn:num_groups=8", "none"]


@pytest.mark.parametrize("spec", SPECS)
def test_resnet18_trains_a_step_and_evaluates(spec: str) -> None:
    torch.manual_seed(0)
    model = torchvision.models.resnet18(num_classes=10, norm_layer=norm_layer(spec))
    found = list(find_norm_layers(model))
    if spec != "none":
        # every slot, the shortcut projections included, holds the requested layer
        assert len(found) == 20 and {str(r.spec) for _, _, r in found} == {str(found[0][2].spec)}
    x = torch.randn(4, 3, 64, 64)  # layer4 at 2x2: IN needs more than one position
    y = torch.randint(0, 10, (4,))
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    before = [p.detach().clone() for p in model.parameters()]
    loss = torch.nn.functional.cross_entropy(model(x), y)
    loss.backward()
    opt.step()
    assert torch.isfinite(loss)
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)
    unchanged = [n for (n, p), b in zip(model.named_parameters(), before) if torch.equal(p, b)]
    # torchvision puts a ReLU after every bn1: FRN's TLU threshold tau starts at 0 there, where ReLU passes no
    # gradient (so TLU + ReLU is a ReLU; normbench's own models drop that ReLU, see normlayers.activation)
    assert unchanged == [] or (spec == "frn" and all(n == "bn1.tau" or n.endswith(".bn1.tau") for n in unchanged))
    model.eval()
    with torch.no_grad():
        out = model(x)
        alone = model(x[:1])
    assert out.shape == (4, 10) and torch.isfinite(out).all()
    torch.testing.assert_close(alone, out[:1], rtol=1e-4, atol=1e-5)  # eval is per sample
