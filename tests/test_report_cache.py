"""The report page's compiled code is kept between processes (Jinja2's bytecode cache):
a page from the cache is the page compiled afresh, and a bad cache is passed over."""
from __future__ import annotations

from jinja2 import PackageLoader
from jinja2.sandbox import SandboxedEnvironment

import runner
from runner.last import report, template_cache
from test_report import attack_alt, attack_results


class CountingCache(template_cache.CompiledPageCache):
    """The cache, in a directory of the test's own, counting the pages it supplied."""

    def __init__(self, directory):
        super().__init__()
        self.directory = str(directory)
        self.supplied = 0

    def load_bytecode(self, bucket) -> None:
        super().load_bytecode(bucket)
        self.supplied += bucket.code is not None


def page(monkeypatch, record, cache) -> str:
    environment = SandboxedEnvironment(loader=PackageLoader("runner.last", "templates"), bytecode_cache=cache,
                                       **template_cache.PAGE_OPTIONS)
    monkeypatch.setattr(report, "_environment", environment)
    return report.render_report(record, "<svg></svg>")


def attacked_record():
    alt = attack_alt()
    return runner.build_last_record(alt, attack_results(alt), "last_x", "exec_x", "2026-01-01T00:00:00.000Z")


def test_a_page_from_the_cache_is_the_page_compiled_afresh(tmp_path, monkeypatch):
    record = attacked_record()
    cache = CountingCache(tmp_path)
    first = page(monkeypatch, record, cache)            # compiles and stores
    assert cache.supplied == 0 and len(list(tmp_path.iterdir())) == 1
    second = page(monkeypatch, record, cache)           # a new environment: from the cache
    assert cache.supplied == 1
    fresh = page(monkeypatch, record, None)
    assert first == second == fresh
    assert "&lt;script&gt;" in second and "<script" not in second.lower()   # still autoescaped


def test_a_damaged_cache_entry_is_compiled_again(tmp_path, monkeypatch):
    record = attacked_record()
    fresh = page(monkeypatch, record, None)
    page(monkeypatch, record, CountingCache(tmp_path))
    (entry,) = tmp_path.iterdir()
    entry.write_bytes(entry.read_bytes()[:-200])        # the right header, truncated code
    cache = CountingCache(tmp_path)
    assert page(monkeypatch, record, cache) == fresh
    assert cache.supplied == 0


def test_a_page_compiled_under_other_options_is_never_reused(monkeypatch):
    pattern = template_cache.CompiledPageCache().pattern
    monkeypatch.setitem(template_cache.PAGE_OPTIONS, "autoescape", False)
    assert template_cache.CompiledPageCache().pattern != pattern


def test_the_cache_lives_in_the_users_cache_directory_and_only_if_no_one_else_can_write_it(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    cache = template_cache.compiled_page_cache()
    assert cache is not None and cache.directory == str(tmp_path / "librunner")
    assert (tmp_path / "librunner").stat().st_mode & 0o777 == 0o700
    (tmp_path / "librunner").chmod(0o777)
    assert template_cache.compiled_page_cache() is None       # another user could plant code there
    monkeypatch.setenv("XDG_CACHE_HOME", "relative/path")
    monkeypatch.setenv("HOME", "relative")
    assert template_cache.compiled_page_cache() is None
