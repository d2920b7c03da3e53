import pytest
import torch

from gaitedge.errors import ModelError
from gaitedge.models import available, build_model


@pytest.mark.parametrize("name", ["lstm", "gru", "elman"])
@pytest.mark.parametrize("layers", [1, 2])
def test_steps_equal_sequence(name, layers):
    torch.manual_seed(0)
    m = build_model(name, input_size=6, num_classes=3, hidden=16, layers=layers).eval()
    x = torch.randn(2, 50, 6)
    with torch.no_grad():
        seq, final = m(x)
        state = m.init_state(2)
        steps = []
        for t in range(x.shape[1]):
            y, state = m.step(x[:, t], state)
            steps.append(y)
    torch.testing.assert_close(torch.stack(steps, 1), seq, atol=1e-5, rtol=1e-5)
    for a, b in zip(state, final):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)
    assert seq.shape == (2, 50, 3)


@pytest.mark.parametrize("name", ["lstm", "gru", "elman"])
def test_causal(name):
    torch.manual_seed(1)
    m = build_model(name, input_size=4, num_classes=3, hidden=8).eval()
    x = torch.randn(1, 30, 4)
    x2 = x.clone()
    x2[:, 20:] += 5.0  # change the future only
    with torch.no_grad():
        a, _ = m(x)
        b, _ = m(x2)
    torch.testing.assert_close(a[:, :20], b[:, :20])
    assert not torch.allclose(a[:, 20:], b[:, 20:])


def test_registry_and_bad_options():
    assert {"lstm", "gru", "elman"} <= set(available())
    with pytest.raises(ModelError, match="unknown model 'transformer'"):
        build_model("transformer", 6, 3)
    with pytest.raises(ModelError, match="bad option"):
        build_model("gru", 6, 3, wings=2)
    with pytest.raises(ModelError):
        build_model("gru", 6, 3, hidden=0)
    m = build_model("lstm", 6, 3, hidden=8, layers=2)
    assert m.hparams() == {"hidden": 8, "layers": 2, "dropout": 0.0}
    assert m.n_params() == sum(p.numel() for p in m.parameters())
    assert len(m.init_state(3)) == 2 and m.init_state(3)[0].shape == (2, 3, 8)
