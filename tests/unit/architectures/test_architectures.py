import numpy as np
import pytest

from conftest import TINY, TINY_TAGGERS
from edgeopt.architectures import CONFIGS, TAGGERS, build_model


@pytest.mark.parametrize("arch", sorted(CONFIGS))
def test_builder_shapes_and_unique_names(arch):
    m = build_model(arch, CONFIGS[arch].model_validate({**TINY, **TINY_TAGGERS}[arch]), vocab_size=50, num_classes=5, seq_len=12)
    assert m.inputs[0].dtype == "int32" and tuple(m.inputs[0].shape) == (None, 12)
    names = [layer.name for layer in m.layers]
    assert len(names) == len(set(names))
    x = np.random.default_rng(0).integers(0, 50, size=(3, 12)).astype("int32")
    y = m(x, training=False).numpy()
    want = (3, 12, 5) if arch in TAGGERS else (3, 5)  # a tagger: tag scores per token
    assert y.shape == want and np.isfinite(y).all()


@pytest.mark.parametrize("arch", sorted(CONFIGS))
def test_all_padding_input_is_finite(arch):
    """An empty text encodes to all <pad> ids: the model must still give finite logits."""
    m = build_model(arch, CONFIGS[arch].model_validate({**TINY, **TINY_TAGGERS}[arch]), vocab_size=50, num_classes=5, seq_len=8)
    assert np.isfinite(m(np.zeros((2, 8), "int32"), training=False).numpy()).all()


def test_transformer_head_divisibility():
    from edgeopt.architectures import TransformerConfig

    with pytest.raises(ValueError, match="divisible"):
        build_model("transformer", TransformerConfig(embed_dim=10, num_heads=3), 20, 2, 4)
