"""RpcClient against a scripted local JSON-RPC server: batching, retries, 429, typed errors."""

from __future__ import annotations

import asyncio
import time

import pytest

from indexer.rpc import RateLimited, RetriesExhausted, RetryPolicy, RpcClient, RpcServerError, SlotSkipped
from indexer.rpc.errors import BlockNotAvailable
from tests.indexer.rpc.fakenode import FakeNode

FAST = RetryPolicy(attempts=5, base_delay=0.001, max_delay=0.01)


def _node() -> FakeNode:
    return FakeNode(methods={
        "getSlot": lambda params: 1234,
        "getTransaction": lambda params: None if params[0] == "missing" else {"slot": 7, "sig": params[0]},
        "echo": lambda params: params,
    })


def run(coro_fn):
    """Start a fresh FakeNode, run `coro_fn(node)` against it, stop it."""
    async def main():
        node = await _node().start()
        try:
            return await coro_fn(node)
        finally:
            await node.stop()
    return asyncio.run(main())


def test_single_call_and_batch_results_in_order():
    async def body(node: FakeNode):
        async with RpcClient(node.url, retry=FAST, max_batch=100) as rpc:
            assert await rpc.get_slot() == 1234
            before = node.requests
            results = await rpc.call_many([("echo", [i]) for i in range(250)])
            assert results == [[i] for i in range(250)]
            assert node.requests - before == 3  # 100 + 100 + 50 per JSON-RPC batch
            assert rpc.stats.calls["echo"] == 250
    run(body)


def test_null_result_is_not_an_error():
    async def body(node: FakeNode):
        async with RpcClient(node.url, retry=FAST) as rpc:
            results = await rpc.get_transactions(["a", "missing", "b"])
            assert results == [{"slot": 7, "sig": "a"}, None, {"slot": 7, "sig": "b"}]
    run(body)


@pytest.mark.parametrize("fault", ["500", "503", "reset", "truncate", "malformed"])
def test_transient_request_faults_are_retried(fault):
    async def body(node: FakeNode):
        node.request_faults = [fault, fault]
        async with RpcClient(node.url, retry=FAST) as rpc:
            results = await rpc.call_many([("echo", [i]) for i in range(10)])
            assert results == [[i] for i in range(10)]
            assert node.requests == 3
            assert rpc.stats.total_retries() == 20  # 10 calls x 2 failed attempts
    run(body)


def test_429_honours_retry_after():
    async def body(node: FakeNode):
        node.request_faults = ["429:0.4"]
        async with RpcClient(node.url, retry=FAST) as rpc:
            t0 = time.monotonic()
            assert await rpc.call("echo", [1]) == [1]
            waited = time.monotonic() - t0
        assert node.requests == 2
        gap = node.request_times[1] - node.request_times[0]
        assert gap >= 0.39, gap
        assert waited >= 0.39
        assert rpc.stats.errors[("echo", "http_429")] == 1
        assert rpc.stats.rate_limited_seconds == pytest.approx(0.4)
    run(body)


def test_429_pauses_other_callers_too():
    async def body(node: FakeNode):
        node.request_faults = ["429:0.3"]
        async with RpcClient(node.url, retry=FAST, concurrency=1) as rpc:
            first = asyncio.create_task(rpc.call("echo", [1]))
            await asyncio.sleep(0.05)
            t0 = time.monotonic()
            second = await rpc.call("echo", [2])  # sent after the 429 arrived: must wait the pause
            assert second == [2]
            assert time.monotonic() - t0 >= 0.2
            assert await first == [1]
    run(body)


def test_one_block_not_available_in_a_batch_retries_only_that_call():
    async def body(node: FakeNode):
        node.call_faults[("getTransaction", "s3")] = [-32004, -32004]
        async with RpcClient(node.url, retry=FAST) as rpc:
            sigs = [f"s{i}" for i in range(6)]
            results = await rpc.get_transactions(sigs)
            assert results == [{"slot": 7, "sig": s} for s in sigs]
        assert node.calls.count(("getTransaction", "s3")) == 3
        assert node.calls.count(("getTransaction", "s0")) == 1
        assert rpc.stats.errors[("getTransaction", "-32004")] == 2
    run(body)


@pytest.mark.parametrize("code", [-32007, -32009])
def test_skipped_slot_is_typed_and_never_retried(code):
    async def body(node: FakeNode):
        node.call_faults[("getTransaction", "s1")] = [code] * 50
        async with RpcClient(node.url, retry=FAST) as rpc:
            results = await rpc.get_transactions(["s0", "s1"])
            assert results[0] == {"slot": 7, "sig": "s0"}
            assert isinstance(results[1], SlotSkipped)
            assert results[1].code == code
            assert results[1].slot == 77
            with pytest.raises(SlotSkipped):
                await rpc.get_transaction("s1")
        assert node.calls.count(("getTransaction", "s1")) == 2  # once per request, no retries
    run(body)


def test_retries_are_bounded():
    async def body(node: FakeNode):
        node.request_faults = ["500"] * 20
        async with RpcClient(node.url, retry=RetryPolicy(attempts=3, base_delay=0.001, max_delay=0.01)) as rpc:
            with pytest.raises(RetriesExhausted) as info:
                await rpc.call("echo", [1])
            assert info.value.attempts == 3
        assert node.requests == 3
    run(body)


def test_persistent_block_not_available_gives_up_typed():
    async def body(node: FakeNode):
        node.call_faults[("getTransaction", "x")] = [-32004] * 20
        async with RpcClient(node.url, retry=RetryPolicy(attempts=4, base_delay=0.001, max_delay=0.01)) as rpc:
            [res] = await rpc.get_transactions(["x"])
        assert isinstance(res, RetriesExhausted)
        assert isinstance(res.last, BlockNotAvailable)
        assert node.calls.count(("getTransaction", "x")) == 4
    run(body)


def test_non_retryable_error_is_returned_once():
    async def body(node: FakeNode):
        async with RpcClient(node.url, retry=FAST) as rpc:
            with pytest.raises(RpcServerError) as info:
                await rpc.call("noSuchMethod", [])
            assert info.value.code == -32601
        assert node.requests == 1
    run(body)


def test_rate_limited_429_without_retry_after_is_bounded_by_its_own_budget():
    async def body(node: FakeNode):
        node.request_faults = ["429"] * 10
        policy = RetryPolicy(attempts=2, rate_limited_attempts=4, base_delay=0.001, max_delay=0.01)
        async with RpcClient(node.url, retry=policy) as rpc:
            with pytest.raises(RetriesExhausted) as info:
                await rpc.call("echo", [1])
            assert isinstance(info.value.last, RateLimited)
        assert node.requests == 4
    run(body)


def test_token_bucket_limits_a_method():
    async def body(node: FakeNode):
        async with RpcClient(node.url, retry=FAST, rate_limits={"echo": 50}, use_batches=False) as rpc:
            t0 = time.monotonic()
            await rpc.call_many([("echo", [i]) for i in range(100)])
            elapsed = time.monotonic() - t0
            # burst of 50 then 50 more at 50/s: about one second; other methods are not limited
            assert 0.9 <= elapsed < 3.0, elapsed
            t1 = time.monotonic()
            await rpc.call_many([("getSlot", []) for _ in range(100)])
            assert time.monotonic() - t1 < 0.9
    run(body)


def test_connection_refused_is_a_bounded_transport_retry():
    async def body():
        async with RpcClient("http://127.0.0.1:9/rpc", retry=RetryPolicy(attempts=2, base_delay=0.001)) as rpc:
            with pytest.raises(RetriesExhausted) as info:
                await rpc.get_slot()
            assert info.value.last.code_label == "transport"
    asyncio.run(body())
