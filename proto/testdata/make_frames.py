#!/usr/bin/env python3
"""Writes the golden frames of the wire protocol (proto/PROTOCOL.md).

    python3 proto/testdata/make_frames.py           rewrite the files below
    python3 proto/testdata/make_frames.py --check   exit 1 if they differ

vectors.py says what the vectors are (frame_bytes.py builds their bytes);
this script writes, beside itself, frames/<name>.bin (one vector's bytes)
and frames.json (the manifest: what each file is and what a decoder must
make of it), and proto/fuzz/corpus/golden_<name> (the same bytes as
libFuzzer seeds). Commit what it writes: the tests (C++:
//proto:frame_codec_golden_test, Python: //tests:client_codec_golden_test)
read the committed files and never run this script.

The manifest has one entry per file:
    file       frames/<name>.bin
    what       what it is, in words
    sender     "client" or "daemon": only the daemon's frames may have
               "id": null (PROTOCOL.md, Errors)
    limits     max_header_bytes and max_frame_bytes to decode it with
    frames     the frames a decoder must return, in order: the header (as
               decoded), payload_size and payload_sha256
    end        "clean" (the file is whole frames), "need_more" (a frame is
               cut short: the decoder must wait for more bytes) or "error"
    error      with end "error": the PROTOCOL.md code of the fault
    reencode   "exact": encoding the decoded frames again gives the file's
               bytes (headers here are compact, keys sorted, UTF-8 as is);
               "equivalent": it gives frames that decode to the same
Python's encoder is a client's: it refuses "id": null, which only the
daemon sends; its test expects that refusal for such frames.
"""

import hashlib
import json
import pathlib
import sys

from vectors import all_vectors

HERE = pathlib.Path(__file__).resolve().parent
CORPUS = HERE.parent / "fuzz" / "corpus"
FUZZ_MAX_LEN = 8192  # run_fuzz.sh's -max_len; the seed has 2 bytes before.


def build():
    """Every file this script writes, by path relative to HERE."""
    files, manifest = {}, []
    for v in all_vectors():
        data = b"".join(f["bytes"] for f in v["frames"]) + v["tail"]
        path = f"frames/{v['name']}.bin"
        files[path] = data
        entry = {"file": path, "what": v["what"], "sender": v["sender"],
                 "limits": v["limits"],
                 "frames": [{"header": f["header"],
                             "payload_size": len(f["payload"]),
                             "payload_sha256":
                                 hashlib.sha256(f["payload"]).hexdigest()}
                            for f in v["frames"]],
                 "end": v["end"]}
        if v["error"]:
            entry["error"] = v["error"]
        entry["reencode"] = v["reencode"]
        manifest.append(entry)
        if len(data) + 2 <= FUZZ_MAX_LEN:
            # Byte 0 seeds the fuzzer's chunk sizes, byte 1 picks the
            # default limits (frame_decoder_fuzzer.cc).
            files[f"../fuzz/corpus/golden_{v['name']}"] = b"\x00\x00" + data
    files["frames.json"] = (json.dumps(
        {"about": "Golden frames of proto/PROTOCOL.md; see make_frames.py.",
         "vectors": manifest}, indent=1, ensure_ascii=False) + "\n").encode()
    return files


def stale(files):
    """Generated files on disk that `files` no longer has."""
    on_disk = [p.relative_to(HERE).as_posix()
               for p in (HERE / "frames").glob("*.bin")]
    on_disk += ["../fuzz/corpus/" + p.name
                for p in CORPUS.glob("golden_*")]
    return sorted(set(on_disk) - set(files))


def main(argv):
    files = build()
    old = stale(files)
    if argv[1:] == ["--check"]:
        changed = [p for p, data in files.items()
                   if not (HERE / p).exists()
                   or (HERE / p).read_bytes() != data]
        for path in changed + old:
            print(f"differs: {path}")
        return 1 if changed or old else 0
    for path in old:
        (HERE / path).unlink()
    for path, data in files.items():
        (HERE / path).parent.mkdir(parents=True, exist_ok=True)
        (HERE / path).write_bytes(data)
    golden = sum(p.startswith("frames/") for p in files)
    print(f"wrote {golden} golden frame files, their manifest and "
          f"{len(files) - golden - 1} fuzz seeds")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
