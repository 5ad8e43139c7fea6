"""Manifest sources: file, directory, http(s) URL, git+URL@REF#PATH, builtin:NAME."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from modelwire import ManifestError, NotFoundError, load_manifests
from modelwire._manifest.catalog import load_source
from modelwire._manifest.sources import builtin_names, split_git

from core_helpers import git

PROVIDER = "version: 1\nproviders:\n  p:\n    base_url: http://localhost:1\n"
MODEL = "version: 1\nmodels:\n  m:\n    provider: p\n"


def issues_of(exc: ManifestError) -> list[str]:
    return [str(i) for i in exc.issues]


# -- files and directories --------------------------------------------------------------------


def test_file_source_accepts_str_and_pathlike(write) -> None:
    path = write("one.yaml", PROVIDER)
    assert load_manifests(path).providers.keys() == {"p"}
    assert load_manifests(str(path)).sources == (str(path),)


def test_missing_file_is_an_issue_naming_it(tmp_path: Path) -> None:
    missing = tmp_path / "nope.yaml"
    with pytest.raises(ManifestError) as info:
        load_manifests(missing)
    [issue] = info.value.issues
    assert issue.file == str(missing)
    assert issue.message.startswith("cannot read manifest: [Errno 2] No such file or directory")


def test_directory_is_merged(write, tmp_path: Path) -> None:
    write("providers.yaml", PROVIDER)
    write("models/more.yml", MODEL)
    write("models/extra.json", '{"version": 1, "models": {"n": {"provider": "p"}}}')
    write("README.md", "not a manifest")
    catalog = load_manifests(tmp_path)
    assert sorted(catalog.models) == ["m", "n"]
    assert catalog.origins[("models", "m")] == str(tmp_path / "models" / "more.yml")
    assert catalog.origins[("providers", "p")] == str(tmp_path / "providers.yaml")


def test_directory_skips_hidden_files_and_folders(write, tmp_path: Path) -> None:
    write("providers.yaml", PROVIDER)
    write(".github/workflows/ci.yml", "on: push\njobs: {}\n")
    write(".hidden.yaml", "not: [a, manifest\n")
    assert load_manifests(tmp_path).providers.keys() == {"p"}


def test_empty_directory_is_an_issue(tmp_path: Path) -> None:
    with pytest.raises(ManifestError) as info:
        load_manifests(tmp_path)
    assert info.value.issues[0].message == (
        f"cannot read manifest: no *.yaml, *.yml or *.json files in directory {tmp_path}"
    )


def test_name_defined_twice_names_both_files(write, tmp_path: Path) -> None:
    a = write("a.yaml", PROVIDER + MODEL.replace("version: 1\n", ""))
    b = write("b.yaml", "version: 1\nmodels:\n  other: {provider: p}\n  m: {provider: p}\n")
    with pytest.raises(ManifestError) as info:
        load_manifests(tmp_path)
    assert issues_of(info.value) == [
        f"{b}:4: models.m: model 'm' is defined twice: in {a} and in {b}"
    ]


def test_provider_defined_twice_across_sources(write) -> None:
    a = write("a.yaml", PROVIDER)
    b = write("b.yaml", PROVIDER)
    with pytest.raises(ManifestError) as info:
        load_manifests(a, b)
    assert issues_of(info.value) == [
        f"{b}:3: providers.p: provider 'p' is defined twice: in {a} and in {b}"
    ]


def test_overridable_sources_may_be_replaced(write) -> None:
    base = write("base.yaml", PROVIDER)
    mine = write("mine.yaml", PROVIDER.replace("localhost:1", "localhost:2"))
    catalog = load_manifests(base, mine, overridable=[base])
    assert catalog.providers["p"].base_url == "http://localhost:2"
    assert catalog.origins[("providers", "p")] == str(mine)


def test_issues_of_every_file_are_collected(write, tmp_path: Path) -> None:
    a = write("a.yaml", "version: 1\nmodels: {x: {provider: [1]}}\n")
    b = write("b.yaml", "version: 3\n")
    with pytest.raises(ManifestError) as info:
        load_manifests(tmp_path)
    assert issues_of(info.value) == [
        f"{a}:2: models.x.provider: expected a string, got a list",
        f"{b}:1: version: unsupported manifest version 3; this modelwire reads 1",
    ]


def test_references_resolve_across_files(write) -> None:
    catalog = load_manifests(write("m.yaml", MODEL), write("p.yaml", PROVIDER))
    assert catalog.models["m"].provider in catalog.providers


# -- http(s) --------------------------------------------------------------------------------------


def test_http_source(http_dir: tuple[str, Path]) -> None:
    base, root = http_dir
    (root / "all.yaml").write_text(PROVIDER + MODEL.replace("version: 1\n", ""))
    catalog = load_manifests(f"{base}/all.yaml")
    assert catalog.models["m"].provider == "p"
    assert catalog.origins[("models", "m")] == f"{base}/all.yaml"


def test_http_source_issues_carry_the_url_and_line(http_dir: tuple[str, Path]) -> None:
    base, root = http_dir
    (root / "bad.yaml").write_text("version: 1\nmodels:\n  m: {provider: p, limits: {rpm: x}}\n")
    with pytest.raises(ManifestError) as info:
        load_manifests(f"{base}/bad.yaml")
    assert issues_of(info.value) == [
        f"{base}/bad.yaml:3: models.m.limits.rpm: expected an integer, got 'x'"
    ]


def test_http_404_is_an_issue(http_dir: tuple[str, Path]) -> None:
    base, _root = http_dir
    with pytest.raises(ManifestError) as info:
        load_manifests(f"{base}/missing.yaml")
    [issue] = issues_of(info.value)
    # The reason phrase is the server's own ("File not found" from http.server).
    assert issue.startswith(
        f"{base}/missing.yaml: cannot read manifest: fetching failed: HTTP 404 "
    )


def test_http_connection_refused_is_an_issue() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"http://127.0.0.1:{port}/m.yaml"
    with pytest.raises(ManifestError) as info:
        load_manifests(url)
    [issue] = info.value.issues
    assert issue.file == url
    assert issue.message.startswith("cannot read manifest: fetching failed: ConnectError")


# -- git ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        pytest.param("git+https://h/o/r.git", ("https://h/o/r.git", "HEAD", ""), id="no-ref"),
        pytest.param(
            "git+https://h/o/r.git@v1#m.yaml",
            ("https://h/o/r.git", "v1", "m.yaml"),
            id="ref-and-path",
        ),
        pytest.param(
            "git+https://h/o/r.git#dir/", ("https://h/o/r.git", "HEAD", "dir"), id="path-only"
        ),
        pytest.param("git+ssh://git@h/o/r.git", ("ssh://git@h/o/r.git", "HEAD", ""), id="ssh-user"),
        pytest.param(
            "git+ssh://git@h/o/r.git@feature/x",
            ("ssh://git@h/o/r.git", "feature/x", ""),
            id="ssh-user-and-ref",
        ),
        pytest.param("git+git@h:o/r.git", ("git@h:o/r.git", "HEAD", ""), id="scp-like"),
        pytest.param(
            "git+git@h:o/r.git@main#a", ("git@h:o/r.git", "main", "a"), id="scp-like-with-ref"
        ),
        pytest.param(
            "git+/srv/repos/r.git@main#m.yaml",
            ("/srv/repos/r.git", "main", "m.yaml"),
            id="local-path",
        ),
        pytest.param(
            "git+file:///srv/r.git@main", ("file:///srv/r.git", "main", ""), id="file-url"
        ),
    ],
)
def testsplit_git(source: str, expected: tuple[str, str, str]) -> None:
    assert split_git(source) == expected


@pytest.mark.git
def test_git_source_file_at_branch(bare_repo, git_cache: Path) -> None:
    bare, _sha = bare_repo({"manifests/providers.yaml": PROVIDER, "manifests/models.yaml": MODEL})
    source = f"git+file://{bare}@main#manifests/providers.yaml"
    catalog = load_manifests(source)
    assert catalog.providers.keys() == {"p"}
    assert catalog.origins[("providers", "p")] == source
    assert any(git_cache.joinpath("git").iterdir())


@pytest.mark.git
def test_git_source_directory_merges(bare_repo) -> None:
    bare, _sha = bare_repo(
        {"manifests/providers.yaml": PROVIDER, "manifests/models.yaml": MODEL, "README.md": "x"}
    )
    catalog = load_manifests(f"git+{bare}@main#manifests")
    assert catalog.models.keys() == {"m"}
    assert catalog.origins[("models", "m")] == f"git+{bare}@main#manifests/models.yaml"


@pytest.mark.git
def test_git_source_at_tag_and_commit_and_default_head(bare_repo) -> None:
    bare, first = bare_repo({"m.yaml": PROVIDER}, tag="v1")
    _bare, second = bare_repo({"m.yaml": PROVIDER.replace("localhost:1", "localhost:2")})
    url = f"git+file://{bare}"
    assert load_manifests(f"{url}@v1#m.yaml").providers["p"].base_url == "http://localhost:1"
    assert load_manifests(f"{url}@{first}#m.yaml").providers["p"].base_url == "http://localhost:1"
    assert load_manifests(f"{url}#m.yaml").providers["p"].base_url == "http://localhost:2"
    assert (
        load_manifests(f"{url}@{second[:12]}#m.yaml").providers["p"].base_url
        == "http://localhost:2"
    )


@pytest.mark.git
def test_git_cache_is_refreshed(bare_repo) -> None:
    bare, _ = bare_repo({"m.yaml": PROVIDER})
    source = f"git+file://{bare}@main#m.yaml"
    assert load_manifests(source).providers["p"].base_url == "http://localhost:1"
    bare_repo({"m.yaml": PROVIDER.replace("localhost:1", "localhost:3")})
    assert load_manifests(source).providers["p"].base_url == "http://localhost:3"


@pytest.mark.git
def test_git_issues_name_the_file_in_the_repository(bare_repo) -> None:
    bare, _ = bare_repo({"bad.yaml": "version: 1\nmodels:\n  m: {provider: [5]}\n"})
    with pytest.raises(ManifestError) as info:
        load_manifests(f"git+{bare}@main#bad.yaml")
    assert issues_of(info.value) == [
        f"git+{bare}@main#bad.yaml:3: models.m.provider: expected a string, got a list"
    ]


@pytest.mark.git
@pytest.mark.parametrize(
    ("suffix", "message"),
    [
        pytest.param(
            "@main#nope.yaml", "no manifest at nope.yaml in {url}@main", id="missing-path"
        ),
        pytest.param("@no-such-branch#m.yaml", "Needed a single revision", id="unknown-ref"),
    ],
)
def test_git_errors_are_issues(bare_repo, suffix: str, message: str) -> None:
    bare, _ = bare_repo({"m.yaml": PROVIDER})
    url = f"file://{bare}"
    with pytest.raises(ManifestError) as info:
        load_manifests(f"git+{url}{suffix}")
    [issue] = info.value.issues
    assert issue.message.startswith("cannot read manifest: ")
    assert message.format(url=url) in issue.message


@pytest.mark.git
def test_git_unreachable_repository_is_an_issue(tmp_path: Path, git_cache: Path) -> None:
    with pytest.raises(ManifestError) as info:
        load_manifests(f"git+file://{tmp_path}/absent.git@main#m.yaml")
    assert "cannot read manifest: " in info.value.issues[0].message


@pytest.mark.git
def test_git_cli_is_really_used(bare_repo, git_cache: Path) -> None:
    bare, sha = bare_repo({"m.yaml": PROVIDER})
    load_manifests(f"git+file://{bare}@main#m.yaml")
    [mirror] = (git_cache / "git").iterdir()
    assert git("--git-dir", str(mirror), "rev-parse", "main") == sha


# -- builtin:NAME ------------------------------------------------------------------------------------


def test_builtin_names_match_the_manifests_folder() -> None:
    folder = Path(__file__).resolve().parents[1] / "manifests"
    expected = sorted(p.stem for p in folder.iterdir() if p.suffix in (".yaml", ".yml", ".json"))
    assert builtin_names() == expected


@pytest.mark.parametrize(
    "name",
    builtin_names() or [pytest.param("none", marks=pytest.mark.skip("no built-in manifests yet"))],
)
def test_every_builtin_manifest_loads(name: str) -> None:
    docs, issues = load_source(f"builtin:{name}", env={})
    assert issues == []
    assert [label for label, _m, _d in docs] == [f"builtin:{name}"]


def test_builtin_star_loads_them_all() -> None:
    docs, issues = load_source("builtin:*", env={})
    assert issues == []
    assert [label for label, _m, _d in docs] == [f"builtin:{n}" for n in builtin_names()]


def test_unknown_builtin_lists_the_known_ones() -> None:
    with pytest.raises(NotFoundError) as info:
        load_manifests("builtin:no-such-provider")
    assert info.value.code == "MANIFEST_NOT_FOUND"
    known = ", ".join(builtin_names()) or "none"
    assert info.value.message == f"no built-in manifest 'no-such-provider'; built in: {known}"
