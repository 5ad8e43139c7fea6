"""Coverage-guided fuzzing of the ``sse`` parser with atheris (not run in CI).

Feeds the input in chunks whose sizes come from the input itself, then
closes the parser, and checks the two properties the Hypothesis tests check
(tests/test_fuzz.py): only Frames or a typed ``ModelError`` come out, and
the frames do not depend on how the bytes were chunked.

    pip install atheris
    python tests/fuzz/fuzz_sse.py -max_total_time=60 [corpus_dir]

A crash stops with the input saved as ``crash-<sha1>``; replay it with
``python tests/fuzz/fuzz_sse.py crash-<sha1>``.
"""

from __future__ import annotations

import sys

import atheris

with atheris.instrument_imports():
    from modelwire import Frame, ModelError
    from modelwire_sse import SSEParser


def run(chunks: list[bytes]) -> list[Frame] | ModelError:
    parser = SSEParser()
    frames: list[Frame] = []
    try:
        for chunk in chunks:
            frames += parser.feed(chunk)
        frames += parser.close()
    except ModelError as exc:
        return exc
    assert all(isinstance(f, Frame) for f in frames), frames
    return frames


def test_one_input(data: bytes) -> None:
    fdp = atheris.FuzzedDataProvider(data)
    cuts = [fdp.ConsumeIntInRange(0, 64) for _ in range(fdp.ConsumeIntInRange(0, 8))]
    body = fdp.ConsumeBytes(fdp.remaining_bytes())
    chunks, at = [], 0
    for size in cuts:
        chunks.append(body[at : at + size])
        at += size
    chunks.append(body[at:])
    whole = run([body])
    split = run(chunks)
    if isinstance(whole, ModelError) or isinstance(split, ModelError):
        # the same input must fail the same way however it was chunked
        assert type(whole) is type(split), (whole, split)
    else:
        assert whole == split, (whole, split)


def main() -> None:
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
