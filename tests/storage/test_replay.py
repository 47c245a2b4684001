"""ReadReplay: the rows of each statement handed back in order, the first one missing asked for."""

from __future__ import annotations

import pytest

from trailhouse.storage.replay import (
    NotReplayable,
    ReadNeeded,
    ReadReplay,
    Statement,
    current_replay,
    replaying,
)

A = Statement("SELECT a FROM t WHERE x = %s", (1,), binary=False)
B = Statement("SELECT b FROM t WHERE y = ANY(%s)", ([1, 2],), binary=True)


def run(replay: ReadReplay, *statements: Statement) -> list[list[object]]:
    with replaying(replay):
        current = current_replay()
        assert current is replay
        return [current.result(s) for s in statements]


def test_each_run_gets_the_rows_fetched_so_far_in_order_and_asks_for_the_next() -> None:
    replay = ReadReplay(max_reads=4)
    with pytest.raises(ReadNeeded) as first:
        run(replay, A, B)
    assert first.value.call is A
    replay.fetched(A, [(1,)])
    with pytest.raises(ReadNeeded) as second:
        run(replay, A, B)
    assert second.value.call is B
    replay.fetched(B, [(2,), (3,)])
    assert run(replay, A, B) == [[(1,)], [(2,), (3,)]]
    assert replay.reads == 2
    assert current_replay() is None


def test_a_statement_that_failed_raises_its_error_where_it_is_read() -> None:
    replay = ReadReplay(max_reads=4)
    replay.fetched(A, ValueError("the server said no"))
    with pytest.raises(ValueError, match="the server said no"):
        run(replay, A)


def test_a_run_gets_the_result_of_an_equal_call_whatever_its_place() -> None:
    """A later run may skip a call (its result is now in a cache) or make equal calls twice."""
    replay = ReadReplay(max_reads=4)
    replay.fetched(A, [(1,)])
    replay.fetched(B, [(2,)])
    assert run(replay, B) == [[(2,)]]  # A skipped
    with pytest.raises(ReadNeeded) as twice:
        run(replay, A, A)  # the second A is another call: fetched again
    assert twice.value.call == A
    replay.fetched(A, [(3,)])
    assert run(replay, A, A, B) == [[(1,)], [(3,)], [(2,)]]


@pytest.mark.parametrize(
    "changed",
    [
        Statement(A.sql + " LIMIT 1", A.params, binary=False),
        Statement(A.sql, (2,), binary=False),
        Statement(A.sql, A.params, binary=True),
    ],
)
def test_a_different_call_is_fetched_not_given_anothers_result(changed: Statement) -> None:
    replay = ReadReplay(max_reads=4)
    replay.fetched(A, [(1,)])
    with pytest.raises(ReadNeeded) as needed:
        run(replay, changed)
    assert needed.value.call == changed


def test_more_statements_than_the_limit_are_not_replayable() -> None:
    replay = ReadReplay(max_reads=1)
    replay.fetched(A, [(1,)])
    with pytest.raises(NotReplayable):
        run(replay, A, B)
    assert ReadReplay(max_reads=0).max_reads == 0
    with pytest.raises(NotReplayable):
        run(ReadReplay(max_reads=0), A)


def test_the_stops_pass_through_an_answers_own_error_handling() -> None:
    """An answer turns ``Exception`` into API errors; a replay's stop must reach the gateway."""
    replay = ReadReplay(max_reads=1)
    caught = []
    with pytest.raises(ReadNeeded):
        try:
            run(replay, A)
        except Exception as exc:  # what Gateway.answer does
            caught.append(exc)
    assert caught == []


def test_a_stored_error_does_not_keep_the_replay_alive() -> None:
    """A stored error raised in a run holds that run's frames, which hold the replay, which holds
    the error: ``run_replayed`` empties the replay so refused requests leave no cycle behind."""
    import asyncio
    import gc

    from trailhouse.api.bounded import run_replayed

    async def fetch(call: object, timeout_s: float | None) -> object:
        return ValueError("refused")

    def work() -> object:
        replay = current_replay()
        assert replay is not None
        return replay.result(A)

    gc.collect()
    gc.disable()
    try:
        with pytest.raises(ValueError, match="refused"):
            asyncio.run(run_replayed(work, fetch=fetch, max_reads=2, timeout_s=None))
        held = [o for o in gc.get_objects() if isinstance(o, ReadReplay) and o.reads]
    finally:
        gc.enable()
    assert held == []
