"""Hypothesis strategies for the core tests, in one place (as attrs does)."""

from __future__ import annotations

import itertools

from hypothesis import strategies as st

#: environment variable names ``${NAME}`` accepts
var_names = st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,11}", fullmatch=True)

#: environment values: anything printable, ``$`` and braces included
env_values = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=20)

#: literal text with no ``$`` and no ``}`` (``}`` ends a default)
plain_text = st.text(
    st.characters(codec="utf-8", exclude_categories=("Cs",), exclude_characters="$}"),
    max_size=12,
)


@st.composite
def chunkings(draw: st.DrawFn, data: bytes) -> list[bytes]:
    """``data`` split at random positions (empty chunks included)."""
    cuts = sorted(draw(st.lists(st.integers(0, len(data)), max_size=12)))
    bounds = [0, *cuts, len(data)]
    return [data[a:b] for a, b in itertools.pairwise(bounds)]


@st.composite
def templates(draw: st.DrawFn, env: dict[str, str], depth: int = 2) -> tuple[str, str]:
    """A ``${...}`` template over ``env`` and the string it must expand to.

    Mixes literal text, ``$$`` escapes, set variables, and ``${VAR:-default}``
    with set, empty and unset variables and nested defaults.
    """
    parts: list[tuple[str, str]] = []
    for _ in range(draw(st.integers(0, 5))):
        choice = draw(st.integers(0, 4 if depth else 3))
        if choice == 0:
            text = draw(plain_text)
            parts.append((text, text))
        elif choice == 1:
            parts.append(("$$", "$"))
        elif choice == 2 and env:
            name = draw(st.sampled_from(sorted(env)))
            parts.append((f"${{{name}}}", env[name]))
        elif choice == 3:  # a lone '$' not followed by '{' or '$' is literal
            parts.append(("$ ", "$ "))
        else:
            name = draw(var_names)
            default_src, default_out = draw(templates(env, depth - 1))
            value = env.get(name)
            parts.append((f"${{{name}:-{default_src}}}", value if value else default_out))
    src = "".join(p[0] for p in parts)
    out = "".join(p[1] for p in parts)
    return src, out


# -- manifests ---------------------------------------------------------------------------

names = st.from_regex(r"[a-z][a-z0-9.-]{0,15}", fullmatch=True)
_opt_int = st.none() | st.integers(0, 2**40)
_opt_float = st.none() | st.floats(0, 1e6, allow_nan=False)

limits = st.fixed_dictionaries(
    {},
    optional={
        "context_window": _opt_int,
        "max_tokens": _opt_int,
        "rpm": _opt_int,
        "tpm": _opt_int,
        "concurrency": _opt_int,
        "mode": st.sampled_from(["reject", "wait"]),
        "wait_timeout": _opt_float,
    },
)
pricing = st.fixed_dictionaries(
    {},
    optional={
        "input_per_mtok": st.floats(0, 1000, allow_nan=False),
        "output_per_mtok": st.integers(0, 1000),
        "currency": st.sampled_from(["USD", "EUR"]),
    },
)


@st.composite
def manifest_documents(draw: st.DrawFn) -> dict[str, object]:
    """A valid manifest as plain data: providers and models that refer to them."""
    providers = draw(st.lists(names, min_size=1, max_size=3, unique=True))
    model_names = draw(st.lists(names, max_size=4, unique=True))
    models = {}
    for name in model_names:
        model: dict[str, object] = {"provider": draw(st.sampled_from(providers))}
        optional = {
            # Any printable text, beyond the BMP too (JSON writes it as surrogate pairs).
            "id": st.text(
                st.characters(exclude_categories=("Cc", "Cs", "Zl", "Zp"), exclude_characters="$"),
                max_size=10,
            ),
            "capabilities": st.lists(
                st.sampled_from(["generate", "stream", "tools", "embed"]), unique=True
            ),
            "limits": limits,
            "pricing": pricing,
            "fallback": st.lists(st.sampled_from(model_names), max_size=2),
            "params": st.dictionaries(names, st.integers() | st.booleans() | st.none(), max_size=2),
        }
        for key, strategy in optional.items():
            if draw(st.booleans()):
                model[key] = draw(strategy)
        models[name] = model
    return {
        "version": 1,
        "providers": {p: {"base_url": f"https://{p}.example/v1"} for p in providers},
        "models": models,
    }
