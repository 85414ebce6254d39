import numpy as np
import pytest

from conftest import assert_no_tensorflow

from edgeopt.data import WordTokenizer, load_dataset
from edgeopt.errors import ArtifactError
from edgeopt.specs import DataSpec


@pytest.fixture(scope="module")
def banking():
    return load_dataset(DataSpec(dataset="banking77"))


def test_saved_tokenizer_reproduces_training_ids_on_real_data(banking, tmp_path):
    tok = WordTokenizer.fit(banking.train.texts, seq_len=32)
    ids = tok.encode_batch(banking.test.texts)
    tok.save(tmp_path)
    again = WordTokenizer.load(tmp_path)
    assert again.vocab == tok.vocab
    assert np.array_equal(again.encode_batch(banking.test.texts), ids)
    assert (tmp_path / "vocab.txt").read_text().splitlines() == tok.vocab
    assert ids.dtype == np.int32 and ids.shape == (3080, 32)


def test_vocab_is_deterministic_and_capped(banking):
    a = WordTokenizer.fit(banking.train.texts, seq_len=8, max_vocab=500)
    b = WordTokenizer.fit(list(reversed(banking.train.texts)), seq_len=8, max_vocab=500)
    assert a.vocab == b.vocab and a.vocab_size == 500 and a.vocab[:2] == ["<pad>", "<unk>"]


def test_edge_inputs():
    tok = WordTokenizer.fit(["my card is lost", "card declined?"], seq_len=6)
    assert tok.encode("") == [0] * 6
    assert tok.encode("   \n\t") == [0] * 6
    assert tok.encode("zebra quantum") == [1, 1, 0, 0, 0, 0]
    assert tok.encode("My CARD is lost") == tok.encode("my card is lost")
    long = tok.encode("card " * 10000)
    assert len(long) == 6 and long == [tok.index["card"]] * 6
    assert tok.split("Ｃａｒｄ") == ["card"]  # NFKC folds full-width letters
    assert tok.split("Überweisung läuft 🙂 日本語!") == ["überweisung", "läuft", "🙂", "日本語", "!"]
    assert tok.split("don't") == ["don", "'", "t"]
    assert len(tok.encode("€€€ 💳💳")) == 6


def test_load_rejects_non_tokenizer(tmp_path):
    (tmp_path / "edgeopt_tokenizer.json").write_text("{}")
    with pytest.raises(ArtifactError, match="cannot load the tokenizer"):
        WordTokenizer.load(tmp_path)


def test_tokenizer_imports_without_tensorflow():
    assert_no_tensorflow("from edgeopt.data.tokenizer import WordTokenizer; WordTokenizer.fit(['a b'], 4).encode('a')")
