import pytest
from sluice.core.cache import TtlCache
from sluice.core.errors import DatabaseUnavailable


class Source:
    """Counts loads and can be made unreachable."""

    def __init__(self) -> None:
        self.value = "v1"
        self.loads = 0
        self.down = False

    def load(self) -> str:
        if self.down:
            raise DatabaseUnavailable("down")
        self.loads += 1
        return self.value


def test_values_are_reloaded_only_after_their_ttl(clock):
    source = Source()
    cache = TtlCache(clock, lambda _: 60, stale_for=600)
    assert cache.get("k", source.load) == "v1"
    source.value = "v2"
    clock.advance(59)
    assert cache.get("k", source.load) == "v1"
    clock.advance(2)
    assert cache.get("k", source.load) == "v2"
    assert source.loads == 2


def test_ttl_can_depend_on_the_value(clock):
    source = Source()
    source.value = None
    cache = TtlCache(clock, lambda v: 60 if v else 5, stale_for=0)
    assert cache.get("k", source.load) is None
    clock.advance(6)
    source.value = "found"
    assert cache.get("k", source.load) == "found"


def test_stale_value_is_served_while_the_source_is_down(clock):
    source = Source()
    cache = TtlCache(clock, lambda _: 60, stale_for=600)
    cache.get("k", source.load)
    source.down = True
    clock.advance(60 + 599)
    assert cache.get("k", source.load) == "v1"
    clock.advance(2)
    with pytest.raises(DatabaseUnavailable):
        cache.get("k", source.load)


def test_unknown_key_while_down_is_an_error(clock):
    source = Source()
    source.down = True
    with pytest.raises(DatabaseUnavailable):
        TtlCache(clock, lambda _: 60, stale_for=600).get("k", source.load)


def test_cache_is_bounded(clock):
    cache = TtlCache(clock, lambda _: 60, stale_for=0, max_entries=3)
    for key in "abcd":
        cache.get(key, lambda key=key: key)
    source = Source()
    cache.get("a", source.load)
    assert source.loads == 1  # "a" was the oldest and was dropped


def test_a_fresh_get_loads_even_when_cached_and_keeps_what_it_loaded(clock):
    source = Source()
    cache = TtlCache(clock, lambda _: 60, stale_for=600)
    assert cache.get("k", source.load) == "v1"
    source.value = "v2"
    assert cache.get("k", source.load, fresh=True) == "v2"
    # What it loaded is what ordinary gets see from then on
    source.value = "v3"
    assert cache.get("k", source.load) == "v2"
    assert source.loads == 2


def test_a_fresh_get_with_the_source_down_serves_what_an_ordinary_get_would(clock):
    source = Source()
    cache = TtlCache(clock, lambda _: 60, stale_for=600)
    cache.get("k", source.load)
    source.down = True
    assert cache.get("k", source.load, fresh=True) == "v1"
    clock.advance(60 + 601)
    with pytest.raises(DatabaseUnavailable):
        cache.get("k", source.load, fresh=True)
