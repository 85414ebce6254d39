"""CoNLL token-classification data and entity-level scores (strict IOB2 spans), and the WNUT-17 files."""
from __future__ import annotations

import functools
import http.server
import os
import threading
from pathlib import Path

import pytest

from edgeopt.data import conll
from edgeopt.data import datasets as D
from edgeopt.errors import InputError


def _write(tmp_path: Path, text: str, name: str = "d.conll") -> Path:
    p = tmp_path / name
    p.write_text(text, encoding="utf-8")
    return p


def test_conll_sentences_blank_lines_and_document_separators(tmp_path):
    p = _write(tmp_path, "-DOCSTART- O\n\nEmpire\tB-location\nState\tI-location\n.\tO\n\t\n  \n"
                         "hi O\n-DOCSTART- -X- O O\nSteve B-person\n")
    s = conll.read_conll(p)
    assert [x.tokens for x in s] == [("Empire", "State", "."), ("hi",), ("Steve",)]
    assert s[0].tags == ("B-location", "I-location", "O") and s[2].tags == ("B-person",)


@pytest.mark.parametrize("text, line, words", [
    ("a O\nlonely\nb O\n", 2, "has one column"),
    ("a O\nb B_person\n", 2, "is not BIO"),
    ("a O\n\nb X-thing\n", 3, "is not BIO"),
])
def test_malformed_conll_lines_are_one_line_errors(tmp_path, text, line, words):
    p = _write(tmp_path, text)
    with pytest.raises(InputError) as e:
        conll.read_conll(p)
    msg = str(e.value)
    assert msg.startswith(f"{p}:{line}:") and words in msg and "Fix:" in msg and "\n" not in msg


def test_empty_or_binary_conll_is_refused(tmp_path):
    with pytest.raises(InputError, match="no sentences"):
        conll.read_conll(_write(tmp_path, "\n\n-DOCSTART- O\n"))
    b = tmp_path / "b.conll"
    b.write_bytes(b"a O\n\xff\xfe O\n")
    with pytest.raises(InputError, match="not UTF-8"):
        conll.read_conll(b)


def test_strict_iob2_spans():
    assert conll.entities(["B-PER", "I-PER", "O", "B-LOC"]) == {("PER", 0, 2), ("LOC", 3, 4)}
    assert conll.entities(["I-PER", "I-PER", "O"]) == set()  # no B-: nothing starts (strict)
    assert conll.entities(["B-PER", "I-LOC", "I-LOC"]) == {("PER", 0, 1)}  # a type change ends the entity
    assert conll.entities(["B-PER", "B-PER", "I-PER"]) == {("PER", 0, 1), ("PER", 1, 3)}
    assert conll.entities(["O", "B-X"]) == {("X", 1, 2)}  # an entity at the end of the sentence


def test_entity_scores_by_hand():
    """Gold PER(0,2), LOC(3,4) | ORG(1,3); predicted PER(0,2), ORG(3,4) | ORG(1,2): one of three right."""
    gold = [["B-PER", "I-PER", "O", "B-LOC"], ["O", "B-ORG", "I-ORG"]]
    pred = [["B-PER", "I-PER", "O", "B-ORG"], ["O", "B-ORG", "O", "B-PER", "I-PER"]]  # the tail is padding
    s = conll.entity_scores(gold, pred)
    assert s["micro"] == {"precision": 0.333333, "recall": 0.333333, "f1": 0.333333, "support": 3, "predicted": 3,
                          "correct": 1}
    assert s["per_type"]["PER"]["f1"] == 1.0 and s["per_type"]["LOC"] == {
        "precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 1, "predicted": 0, "correct": 0}
    assert s["per_type"]["ORG"]["predicted"] == 2 and s["per_type"]["ORG"]["f1"] == 0.0
    # padding never counts: the tail of the second prediction (an entity past the sentence) is ignored
    assert s["tokens"] == 7 and s["token_accuracy"] == round(5 / 7, 6)
    with pytest.raises(ValueError, match="3 gold tags but 2 predicted"):
        conll.entity_scores([["O", "O", "O"]], [["O", "O"]])


def test_wnut17_from_the_data_directory():
    d = D.load_wnut17(download=False)
    assert {k: len(v) for k, v in d.items()} == {"train": 3394, "dev": 1009, "test": 1287}
    gold = [s.tags for s in d["test"]]
    s = conll.entity_scores(gold, gold)
    assert s["micro"]["support"] == 1079 and s["micro"]["f1"] == 1.0  # the published test entity count
    assert sorted(s["per_type"]) == ["corporation", "creative-work", "group", "location", "person", "product"]
    none = conll.entity_scores(gold, [["O"] * len(t) for t in gold])
    assert none["micro"]["f1"] == 0.0 and none["token_accuracy"] > 0.9  # why token accuracy is secondary


def test_wnut17_is_downloaded_and_verified_from_a_mirror(tmp_path, monkeypatch):
    """The real download code against the local copies, served on the loopback interface."""
    root = Path(D.locate("wnut17", download=False)).parent
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    handler.log_message = lambda *a, **k: None
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{srv.server_address[1]}"
        files = tuple(D.RemoteFile(rf.name, f"{url}/wnut17/{rf.name}", rf.sha256) for rf in D.SOURCES["wnut17"])
        monkeypatch.setitem(D.SOURCES, "wnut17", files)
        monkeypatch.setenv("EDGEOPT_DATA_PATH", str(tmp_path / "empty"))
        d = D.load_wnut17()
        assert len(d["test"]) == 1287
        assert D.locate("wnut17") == Path(os.environ["EDGEOPT_CACHE_DIR"]) / "datasets" / "wnut17"
        # a copy that differs from the pinned file is refused
        bad = tmp_path / "bad" / "wnut17"
        bad.mkdir(parents=True)
        for rf in files:
            (bad / rf.name).write_bytes((root / "wnut17" / rf.name).read_bytes())
        with open(bad / "emerging.dev.conll", "a") as f:
            f.write("extra O\n")
        monkeypatch.setenv("EDGEOPT_DATA_PATH", str(tmp_path / "bad"))
        with pytest.raises(D.DataError, match="does not match the pinned"):
            D.load_wnut17()
    finally:
        srv.shutdown()
        srv.server_close()
