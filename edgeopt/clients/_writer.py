"""Runs inside the mediapipe-writer environment (mediapipe 0.10.21), never in edgeopt's: reads a JSON job on
stdin, writes TFLite model metadata with MediaPipe's metadata writer, prints a JSON answer on stdout.

Jobs: ``{"write": [{src, dst, name, version, description, author, input, labels}]}`` where ``input`` is
``{"kind": "regex", "pattern", "vocab"}`` (MediaPipe's regex tokenizer and its vocabulary file), ``{"kind":
"wordpiece", "vocab", "description"}`` (a BERT WordPiece tokenizer and its vocabulary) or ``{"kind": "ids",
"description"}`` (token ids from another tokenizer); ``{"read": path}`` returns the metadata JSON and the
associated files' names. Nothing from edgeopt is imported here (another numpy, another protobuf).
"""
import json
import sys
import zipfile

from mediapipe.tasks.python.metadata import metadata
from mediapipe.tasks.python.metadata.metadata_writers import metadata_info, metadata_writer


_writestr = zipfile.ZipFile.writestr


def _fixed_time_writestr(self, zinfo_or_arcname, data, *args, **kwargs):
    """The populator zips the associated files with the current time in each entry: fix it (1980-01-01), so the
    same model, vocabulary and labels always give the same bytes (one training run, one file, any target)."""
    if isinstance(zinfo_or_arcname, str):
        zinfo_or_arcname = zipfile.ZipInfo(zinfo_or_arcname, date_time=(1980, 1, 1, 0, 0, 0))
        zinfo_or_arcname.compress_type = self.compression
    return _writestr(self, zinfo_or_arcname, data, *args, **kwargs)


zipfile.ZipFile.writestr = _fixed_time_writestr


def write(job):
    with open(job["src"], "rb") as f:
        w = metadata_writer.MetadataWriter(bytearray(f.read()))
    # add_general_info takes name and description only: the GeneralMd it would fill, with version and author too
    w._general_md = metadata_info.GeneralMd(name=job["name"], version=job["version"],
                                            description=job["description"], author=job["author"])
    inp = job["input"]
    if inp["kind"] == "regex":
        w.add_regex_text_input(metadata_writer.RegexTokenizer(delim_regex_pattern=inp["pattern"],
                                                              vocab_file_path=inp["vocab"]))
    elif inp["kind"] == "wordpiece":
        # add_bert_text_input wants three inputs (ids, mask, segment ids); a one-input model gets the same BERT
        # tokenizer process unit and vocabulary file on its subgraph, as that method attaches them
        w.add_feature_input(name="input_ids", description=inp["description"])
        w._input_process_units.append(metadata_info.BertTokenizerMd(inp["vocab"]).create_metadata())
        w._associated_files.append(inp["vocab"])
    else:
        w.add_feature_input(name="input_ids", description=inp["description"])
    w.add_classification_output(metadata_writer.Labels().add(job["labels"]))
    model, js = w.populate()
    with open(job["dst"], "wb") as f:
        f.write(model)
    return json.loads(js)


def read(path):
    d = metadata.MetadataDisplayer.with_model_file(path)
    files = d.get_packed_associated_file_list()
    return {"metadata": json.loads(d.get_metadata_json()), "files": sorted(files),
            "contents": {n: d.get_associated_file_buffer(n).decode("utf-8", "replace") for n in files}}


def main():
    req = json.load(sys.stdin)
    if "write" in req:
        out = [write(j) for j in req["write"]]
    else:
        out = read(req["read"])
    sys.stdout.write(json.dumps(out))


if __name__ == "__main__":
    main()
