from nexus_assets.lib.publish.versioning import ReleaseIdentity, bump, decide_version

BASE = ReleaseIdentity(2, "minilm", 384, frozenset({"a.pdf", "b.pdf"}), "h1")


def _with(**changes) -> ReleaseIdentity:
    return ReleaseIdentity(**{**BASE.__dict__, **changes})


def test_the_release_rules() -> None:
    assert decide_version(None, BASE).version == "1.0.0"
    assert decide_version(BASE, BASE, ["1.2.3"]).version is None
    assert decide_version(BASE, _with(content_hash="h2"), ["1.2.3"]).version == "1.2.4"
    minor = decide_version(BASE, _with(content_hash="h2", source_files=frozenset({"a.pdf"})), ["1.2.3"])
    assert (minor.version, minor.bump, minor.delta_compatible) == ("1.3.0", "minor", True)
    for change in ({"model_id": "titan-v2"}, {"dims": 1024}, {"format_version": 3}):
        major = decide_version(BASE, _with(content_hash="h2", **change), ["1.2.3"])
        assert (major.version, major.bump, major.delta_compatible) == ("2.0.0", "major", False), change
    assert decide_version(BASE, _with(format_version=3), ["1.2.3"]).version == "2.0.0", "format alone is major"


def test_a_version_is_never_reused_even_after_packages_are_deleted() -> None:
    assert decide_version(BASE, _with(content_hash="h2"), ["1.0.1", "1.0.7", None]).version == "1.0.8"
    assert decide_version(None, BASE, [None, "1.0.7"]).version == "2.0.0"
    assert bump("1.0.9", "patch") == "1.0.10" and bump("1.9.9", "minor") == "1.10.0"
