"""Serve a simulated ledger over the Solana JSON-RPC protocol: HTTP POST and websocket on one port.

Commitment model (positions are indexes into the ledger's blocks, which are ordered by slot):
- processed: blocks[:tip]; confirmed: blocks[:tip - CONFIRMED_LAG]; finalized: blocks[:tip - FINAL_LAG].
- a forked block is visible at processed/confirmed until the finalized tip passes it; after that it
  is gone: getBlock answers the skipped-slot error and getTransaction null, as for a fork the
  cluster abandoned.
Clock modes: "fast" (default: everything finalized from the start), "hold" (start at a given
position; tests move the tip with `advance` / `finalize_all`) and realtime (~400 ms per block).

Errors use Agave's codes and texts (custom_error.rs, reference infra.md): -32004 block not
available, -32007 / -32009 skipped slot, -32015 unsupported transaction version, -32602 invalid
params, -32601 method not found, -32700 parse error, -32600 invalid request.
"""

from __future__ import annotations

import asyncio
import base64
import bisect
import struct
import threading
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import orjson
from aiohttp import WSMsgType, web
from solders.pubkey import Pubkey

from indexer.devchain import accounts as A
from indexer.devchain.faults import FaultConfig
from indexer.devchain.ledger import Block, Ledger
from indexer.devchain.render import ENCODINGS, accounts_only, get_transaction_result, transaction_with_meta

CONFIRMED_LAG = 1
FINAL_LAG = 32
_LAGS = {"processed": 0, "confirmed": CONFIRMED_LAG, "finalized": FINAL_LAG}
SLOT_MS = 400
MAX_SIGNATURES_LIMIT = 1000
MAX_GET_BLOCKS_RANGE = 500_000
SOLANA_CORE_VERSION = "2.2.16"
FEATURE_SET = 3294202862
COMMITMENTS = ("processed", "confirmed", "finalized")

_RATE_LIMIT_MESSAGE = "Too many requests for a specific RPC call, contact your app developer or support@rpcpool.com."


class RpcError(Exception):
    def __init__(self, code: int, message: str, data=None):
        super().__init__(message)
        self.code = code
        self.message = message
        self.data = data

    def to_dict(self) -> dict:
        out = {"code": self.code, "message": self.message}
        if self.data is not None:
            out["data"] = self.data
        return out


def _invalid_params(msg: str) -> RpcError:
    return RpcError(-32602, msg)


def _below_confirmed() -> RpcError:
    return _invalid_params("Method does not support commitment below `confirmed`")


def _unsupported_version(version) -> RpcError:
    return RpcError(-32015, f"Transaction version ({version}) is not supported by the requesting client. "
                    "Please try the request again with the following configuration parameter: "
                    "\"maxSupportedTransactionVersion\": 0")


def _block_not_available(slot: int) -> RpcError:
    return RpcError(-32004, f"Block not available for slot {slot}")


def _slot_skipped(slot: int) -> RpcError:
    return RpcError(-32007, f"Slot {slot} was skipped, or missing due to ledger jump to recent snapshot")


def _long_term_skipped(slot: int) -> RpcError:
    return RpcError(-32009, f"Slot {slot} was skipped, or missing in long-term storage")


@dataclass
class _Sub:
    kind: str                       # "slot" | "logs"
    commitment: str
    mentions: str | None            # None = all
    ws: web.WebSocketResponse


class DevchainServer:
    """The JSON-RPC + websocket server for one ledger. Not thread-safe: run on one event loop."""

    def __init__(self, ledger: Ledger, faults: FaultConfig | None = None, *, realtime: bool = False,
                 start_at: int | None = None, local_retention_slots: int | None = None) -> None:
        self.ledger = ledger
        self.faults = faults
        self.realtime = realtime
        self.blocks = ledger.blocks
        n = len(self.blocks)
        if start_at is None:
            self.tip = min(1, n) if realtime else n + FINAL_LAG
        else:
            self.tip = max(0, min(int(start_at), n + FINAL_LAG))
        self.first_available_slot = self.blocks[0].slot if self.blocks else 0
        if local_retention_slots is not None and self.blocks:
            self.first_available_slot = max(self.first_available_slot, self.blocks[-1].slot - local_retention_slots)
        self._slots = [b.slot for b in self.blocks]
        self._build_indexes()
        self._subs: dict[int, _Sub] = {}
        self._next_sub = 1
        self._sockets: set[web.WebSocketResponse] = set()
        self._stalled: set[web.WebSocketResponse] = set()
        self._cache: dict[tuple, bytes] = {}
        self._ticker: asyncio.Task | None = None
        self.app = web.Application(client_max_size=16 * 1024 * 1024)
        self.app.router.add_post("/", self._http)
        self.app.router.add_get("/", self._ws)
        self.app.on_startup.append(self._on_startup)
        self.app.on_shutdown.append(self._on_shutdown)
        self.methods = {
            "getSlot": self.get_slot, "getBlockHeight": self.get_block_height, "getHealth": self.get_health,
            "getVersion": self.get_version, "getBlock": self.get_block, "getBlocks": self.get_blocks,
            "getBlocksWithLimit": self.get_blocks_with_limit, "getBlockTime": self.get_block_time,
            "getSignaturesForAddress": self.get_signatures_for_address, "getTransaction": self.get_transaction,
            "getSignatureStatuses": self.get_signature_statuses, "getAccountInfo": self.get_account_info,
            "getMultipleAccounts": self.get_multiple_accounts, "getFirstAvailableBlock": self.get_first_available,
            "getLatestBlockhash": self.get_latest_blockhash, "getGenesisHash": self.get_genesis_hash,
            "getEpochInfo": self.get_epoch_info, "minimumLedgerSlot": self.get_first_available,
            # simulator control (not Solana): lets a test drive a server running in another process
            "devchain_advance": self._rpc_advance, "devchain_finalizeAll": self._rpc_finalize_all,
        }

    # ------------------------------------------------------------------------------------------
    # indexes and visibility

    def _build_indexes(self) -> None:
        self.tx_pos: list[int] = []            # seq -> block position
        self.tx_loc: list[tuple[int, int]] = []  # seq -> (block position, index in block)
        self.sig_seq: dict[str, int] = {}
        self.by_address: dict[str, list[int]] = {}
        for pos, block in enumerate(self.blocks):
            self._index_transactions(pos, block)

    def _index_transactions(self, pos: int, block: Block) -> None:
        """Give the block's transactions the next sequence numbers (ledger order) in every index."""
        seq = len(self.tx_pos)
        for i, tx in enumerate(block.transactions):
            self.tx_pos.append(pos)
            self.tx_loc.append((pos, i))
            self.sig_seq[tx.signature] = seq
            for key in set(tx.account_keys):
                lst = self.by_address.get(key)
                if lst is None:
                    self.by_address[key] = [seq]
                else:
                    lst.append(seq)
            seq += 1

    def limit(self, commitment: str) -> int:
        """Number of leading block positions visible at `commitment`."""
        return max(0, min(len(self.blocks), self.tip - _LAGS[commitment]))

    def visible(self, pos: int, commitment: str) -> bool:
        if pos >= self.limit(commitment):
            return False
        if self.blocks[pos].forked:
            return commitment != "finalized" and pos >= self.limit("finalized")
        return True

    def status_of(self, pos: int) -> str:
        if pos < self.limit("finalized"):
            return "finalized"
        if pos < self.limit("confirmed"):
            return "confirmed"
        return "processed"

    def tip_slot(self, commitment: str) -> int:
        n = self.limit(commitment)
        for pos in range(n - 1, -1, -1):
            if self.visible(pos, commitment):
                return self.blocks[pos].slot
        return (self.blocks[0].slot - 1) if self.blocks else 0

    # ------------------------------------------------------------------------------------------
    # clock

    def advance(self, n: int = 1) -> None:
        old = self.tip
        self.tip = min(self.tip + n, len(self.blocks) + FINAL_LAG)
        if self.tip != old:
            self._notify(old, self.tip)

    def finalize_all(self) -> None:
        self.advance(len(self.blocks) + FINAL_LAG - self.tip)

    def _rpc_advance(self, n=1):
        self.advance(int(n))
        return {"processed": self.tip_slot("processed"), "finalized": self.tip_slot("finalized")}

    def _rpc_finalize_all(self):
        self.finalize_all()
        return {"processed": self.tip_slot("processed"), "finalized": self.tip_slot("finalized")}

    async def _tick(self) -> None:
        while self.tip < len(self.blocks) + FINAL_LAG:
            await asyncio.sleep(SLOT_MS / 1000)
            self.advance(1)

    async def _on_startup(self, app) -> None:
        if self.realtime:
            self._ticker = asyncio.get_running_loop().create_task(self._tick())

    async def _on_shutdown(self, app) -> None:
        if self._ticker:
            self._ticker.cancel()
        for ws in list(self._sockets):
            await ws.close()

    # ------------------------------------------------------------------------------------------
    # HTTP

    async def _http(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        try:
            payload = orjson.loads(body)
        except orjson.JSONDecodeError:
            return self._json({"jsonrpc": "2.0", "error": {"code": -32700, "message": "Parse error"}, "id": None})
        if isinstance(payload, list):
            method_key = "batch"
            first_id = None
        elif isinstance(payload, dict):
            method_key = str(payload.get("method"))
            first_id = payload.get("id")
        else:
            return self._json({"jsonrpc": "2.0", "error": {"code": -32600, "message": "Invalid request"}, "id": None})
        decision = self.faults.decide(method_key) if self.faults else None
        if decision is not None:
            if decision.latency_ms:
                await asyncio.sleep(decision.latency_ms / 1000)
            if decision.kind == "http_429":
                body = orjson.dumps({"jsonrpc": "2.0", "error": {"code": 429, "message": _RATE_LIMIT_MESSAGE},
                                     "id": first_id})
                return web.Response(status=429, body=body, content_type="application/json",
                                    headers={"Retry-After": str(decision.retry_after)})
            if decision.kind == "http_5xx":
                return web.Response(status=503, text="Service Unavailable")
            if decision.kind == "reset":
                if request.transport is not None:
                    request.transport.abort()
                return web.Response(status=500)
            if decision.kind == "node_unhealthy":
                return self._json({"jsonrpc": "2.0", "id": first_id, "error": {
                    "code": -32005, "message": "Node is behind by 42 slots", "data": {"numSlotsBehind": 42}}})
        if isinstance(payload, list):
            if not payload:
                out = orjson.dumps({"jsonrpc": "2.0", "error": {"code": -32600, "message": "Invalid request"},
                                    "id": None})
            else:
                parts = [self._call(item, decision) for item in payload]
                out = b"[" + b",".join(parts) + b"]"
        else:
            out = self._call(payload, decision)
        if decision is not None and decision.kind == "truncate":
            resp = web.StreamResponse(status=200, headers={"Content-Type": "application/json"})
            resp.content_length = len(out)
            await resp.prepare(request)
            await resp.write(out[: max(1, len(out) // 2)])
            if request.transport is not None:
                request.transport.abort()
            return resp
        if decision is not None and decision.kind == "malformed":
            out = out[: max(1, len(out) // 3)] + b"\x00<html>bad gateway"
        return web.Response(body=out, content_type="application/json")

    @staticmethod
    def _json(obj) -> web.Response:
        return web.Response(body=orjson.dumps(obj), content_type="application/json")

    def _call(self, req, decision=None) -> bytes:
        """One JSON-RPC request object -> response bytes (results may be pre-rendered bytes)."""
        if not isinstance(req, dict) or req.get("jsonrpc") != "2.0" or "method" not in req:
            rid = req.get("id") if isinstance(req, dict) else None
            return orjson.dumps({"jsonrpc": "2.0", "error": {"code": -32600, "message": "Invalid request"},
                                 "id": rid})
        rid = req.get("id")
        method = req["method"]
        fn = self.methods.get(method)
        try:
            if fn is None:
                raise RpcError(-32601, "Method not found")
            params = req.get("params") or []
            if not isinstance(params, list):
                raise _invalid_params("Invalid params: expected an array")
            if decision is not None and decision.kind == "block_not_available" and method in ("getBlock",
                                                                                               "getBlockTime"):
                raise _block_not_available(int(params[0]) if params else 0)
            result = fn(*params)
        except RpcError as e:
            return orjson.dumps({"jsonrpc": "2.0", "error": e.to_dict(), "id": rid})
        except (TypeError, ValueError, KeyError, IndexError) as e:
            return orjson.dumps({"jsonrpc": "2.0", "error": {"code": -32602, "message": f"Invalid params: {e}"},
                                 "id": rid})
        if isinstance(result, _Raw):
            return b'{"jsonrpc":"2.0","result":' + result.data + b',"id":' + orjson.dumps(rid) + b"}"
        return orjson.dumps({"jsonrpc": "2.0", "result": result, "id": rid})

    # ------------------------------------------------------------------------------------------
    # config helpers

    @staticmethod
    def _cfg(cfg) -> dict:
        if cfg is None:
            return {}
        if isinstance(cfg, str):  # legacy positional commitment / encoding
            return {"commitment": cfg} if cfg in COMMITMENTS else {"encoding": cfg}
        if not isinstance(cfg, dict):
            raise _invalid_params("Invalid params: config must be an object")
        return cfg

    @staticmethod
    def _commitment(cfg: dict, default: str = "finalized") -> str:
        c = cfg.get("commitment") or default
        if c in ("recent", "single"):
            c = "processed"
        elif c in ("max", "root", "singleGossip"):
            c = "finalized" if c != "singleGossip" else "confirmed"
        if c not in COMMITMENTS:
            raise _invalid_params(f"Invalid params: unknown commitment {c!r}")
        return c

    def _min_context(self, cfg: dict, commitment: str) -> None:
        """minContextSlot: -32016 when the node's tip at `commitment` is still below it."""
        want = cfg.get("minContextSlot")
        if want is not None:
            slot = self.tip_slot(commitment)
            if slot < int(want):
                raise RpcError(-32016, "Minimum context slot has not been reached", {"contextSlot": slot})

    def _context(self, commitment: str = "finalized") -> dict:
        return {"apiVersion": SOLANA_CORE_VERSION, "slot": self.tip_slot(commitment)}

    # ------------------------------------------------------------------------------------------
    # methods: cluster

    def get_slot(self, cfg=None):
        cfg = self._cfg(cfg)
        c = self._commitment(cfg)
        self._min_context(cfg, c)
        return self.tip_slot(c)

    def get_block_height(self, cfg=None):
        c = self._commitment(self._cfg(cfg))
        n = self.limit(c)
        for pos in range(n - 1, -1, -1):
            if self.visible(pos, c):
                return self.blocks[pos].block_height
        return 0

    def get_health(self):
        return "ok"

    def get_version(self):
        return {"solana-core": SOLANA_CORE_VERSION, "feature-set": FEATURE_SET}

    def get_first_available(self):
        return self.first_available_slot

    def get_latest_blockhash(self, cfg=None):
        c = self._commitment(self._cfg(cfg))
        slot = self.tip_slot(c)
        block = self.ledger.by_slot.get(slot)
        height = block.block_height if block else 0
        return {"context": self._context(c),
                "value": {"blockhash": block.blockhash if block else str(Pubkey.default()),
                          "lastValidBlockHeight": height + 150}}

    def get_genesis_hash(self):
        return "5eykt4UsFv8P8NJdTREpY1vzqKqZKvdpKuc147dw2N9d"

    def get_epoch_info(self, cfg=None):
        c = self._commitment(self._cfg(cfg))
        slot = self.tip_slot(c)
        return {"absoluteSlot": slot, "blockHeight": self.get_block_height(cfg), "epoch": slot // 432_000,
                "slotIndex": slot % 432_000, "slotsInEpoch": 432_000,
                "transactionCount": len(self.tx_pos)}

    # ------------------------------------------------------------------------------------------
    # methods: blocks

    def _block_pos(self, slot: int, commitment: str) -> int:
        """Position of a visible block at `slot`, or the exact Solana error for that slot."""
        if not isinstance(slot, int) or isinstance(slot, bool) or slot < 0:
            raise _invalid_params("Invalid params: invalid type: expected u64")
        tip = self.tip_slot(commitment)
        if slot > tip:
            raise _block_not_available(slot)
        pos = bisect.bisect_left(self._slots, slot)
        if pos < len(self._slots) and self._slots[pos] == slot and self.visible(pos, commitment):
            return pos
        if slot < self.first_available_slot:
            raise _long_term_skipped(slot)
        raise _slot_skipped(slot)

    def get_block(self, slot, cfg=None):
        cfg = self._cfg(cfg)
        commitment = self._commitment(cfg)
        if commitment == "processed":
            raise _below_confirmed()
        encoding = cfg.get("encoding") or "json"
        if encoding not in ENCODINGS:
            raise _invalid_params(f"Invalid params: unknown variant `{encoding}`")
        details = cfg.get("transactionDetails") or "full"
        if details not in ("full", "signatures", "none", "accounts"):
            raise _invalid_params(f"Invalid params: unknown variant `{details}`")
        rewards = cfg.get("rewards", True)
        max_version = cfg.get("maxSupportedTransactionVersion")
        if max_version not in (None, 0):
            raise _invalid_params("Invalid params: unsupported maxSupportedTransactionVersion")
        pos = self._block_pos(slot, commitment)
        key = ("block", pos, encoding, details, bool(rewards), max_version)
        cached = self._cache.get(key)
        if cached is not None:
            return _Raw(cached)
        block = self.blocks[pos]
        out = {"blockHeight": block.block_height, "blockTime": block.block_time, "blockhash": block.blockhash,
               "parentSlot": block.parent_slot, "previousBlockhash": block.previous_blockhash}
        with_version = max_version is not None
        if details in ("full", "accounts"):
            if max_version is None:
                for tx in block.transactions:
                    if tx.version != "legacy":
                        raise _unsupported_version(tx.version)
            if details == "full":
                out["transactions"] = [transaction_with_meta(tx, encoding, with_version) for tx in block.transactions]
            else:
                out["transactions"] = [accounts_only(tx, with_version) for tx in block.transactions]
        elif details == "signatures":
            out["signatures"] = [tx.signature for tx in block.transactions]
        if rewards:
            out["rewards"] = []
        data = orjson.dumps(out)
        if len(self._cache) > 20_000:
            self._cache.clear()
        self._cache[key] = data
        return _Raw(data)

    def get_block_time(self, slot):
        pos = self._block_pos(slot, "confirmed")
        return self.blocks[pos].block_time

    def _check_range(self, start, end):
        if not isinstance(start, int) or start < 0 or (end is not None and (not isinstance(end, int) or end < 0)):
            raise _invalid_params("Invalid params: invalid type: expected u64")
        if end is not None and end - start > MAX_GET_BLOCKS_RANGE:
            raise _invalid_params(f"Slot range too large; max {MAX_GET_BLOCKS_RANGE}")

    def get_blocks(self, start, end=None, cfg=None):
        if isinstance(end, dict):
            cfg, end = end, None
        cfg = self._cfg(cfg)
        commitment = self._commitment(cfg)
        if commitment == "processed":
            raise _below_confirmed()
        self._check_range(start, end)
        tip = self.tip_slot(commitment)
        end = tip if end is None else min(end, tip)
        if end - start > MAX_GET_BLOCKS_RANGE:
            raise _invalid_params(f"Slot range too large; max {MAX_GET_BLOCKS_RANGE}")
        lo = bisect.bisect_left(self._slots, start)
        hi = bisect.bisect_right(self._slots, end)
        return [self._slots[p] for p in range(lo, hi) if self.visible(p, commitment)]

    def get_blocks_with_limit(self, start, limit, cfg=None):
        cfg = self._cfg(cfg)
        commitment = self._commitment(cfg)
        if commitment == "processed":
            raise _below_confirmed()
        if not isinstance(limit, int) or limit < 0 or limit > MAX_GET_BLOCKS_RANGE:
            raise _invalid_params(f"Limit too large; max {MAX_GET_BLOCKS_RANGE}")
        out = []
        pos = bisect.bisect_left(self._slots, start)
        n = self.limit(commitment)
        while pos < n and len(out) < limit:
            if self.visible(pos, commitment):
                out.append(self._slots[pos])
            pos += 1
        return out

    # ------------------------------------------------------------------------------------------
    # methods: transactions

    def _tx_visible(self, sig: str, commitment: str):
        seq = self.sig_seq.get(sig)
        if seq is None:
            return None
        pos, i = self.tx_loc[seq]
        if not self.visible(pos, commitment):
            return None
        return pos, i

    def get_transaction(self, sig, cfg=None):
        cfg = self._cfg(cfg)
        commitment = self._commitment(cfg)
        if commitment == "processed":
            raise _below_confirmed()
        encoding = cfg.get("encoding") or "json"
        if encoding not in ENCODINGS:
            raise _invalid_params(f"Invalid params: unknown variant `{encoding}`")
        max_version = cfg.get("maxSupportedTransactionVersion")
        if not isinstance(sig, str):
            raise _invalid_params("Invalid params: invalid type: expected a string")
        loc = self._tx_visible(sig, commitment)
        if loc is None:
            if sig not in self.sig_seq:
                _check_signature(sig)
            return None
        pos, i = loc
        tx = self.blocks[pos].transactions[i]
        if tx.version != "legacy" and max_version is None:
            raise _unsupported_version(tx.version)
        key = (encoding, max_version is not None)
        cached = tx.parsed_cache.get(key)
        if cached is None:
            result = get_transaction_result(tx, encoding, max_version is not None)
            result["slot"] = self.blocks[pos].slot
            result["blockTime"] = self.blocks[pos].block_time
            cached = orjson.dumps(result)
            tx.parsed_cache[key] = cached
        return _Raw(cached)

    def get_signature_statuses(self, sigs, cfg=None):
        cfg = self._cfg(cfg)
        if not isinstance(sigs, list) or len(sigs) > 256:
            raise _invalid_params("Too many inputs provided; max 256")
        values = []
        for sig in sigs:
            loc = self._tx_visible(sig, "processed")
            if loc is None:
                values.append(None)
                continue
            pos, i = loc
            tx = self.blocks[pos].transactions[i]
            status = self.status_of(pos)
            values.append({
                "slot": self.blocks[pos].slot,
                "confirmations": None if status == "finalized" else max(0, self.limit("processed") - 1 - pos),
                "err": tx.err,
                "status": {"Ok": None} if tx.err is None else {"Err": tx.err},
                "confirmationStatus": status,
            })
        return {"context": self._context("processed"), "value": values}

    def get_signatures_for_address(self, address, cfg=None):
        cfg = self._cfg(cfg)
        commitment = self._commitment(cfg)
        if commitment == "processed":
            raise _below_confirmed()
        _check_pubkey(address)
        limit = cfg.get("limit")
        limit = MAX_SIGNATURES_LIMIT if limit is None else int(limit)
        if limit < 1 or limit > MAX_SIGNATURES_LIMIT:
            raise _invalid_params("Invalid limit; max 1000")
        self._min_context(cfg, commitment)
        before, until = cfg.get("before"), cfg.get("until")
        seqs = self.by_address.get(address, [])
        n_visible = self.limit(commitment)
        hi = bisect.bisect_left(seqs, _first_seq_at(self.tx_pos, n_visible))
        if before is not None:
            _check_signature(before)
            bseq = self.sig_seq.get(before)
            if bseq is None:
                return []
            hi = min(hi, bisect.bisect_left(seqs, bseq))
        useq = None
        if until is not None:
            _check_signature(until)
            useq = self.sig_seq.get(until)
        # visibility and status inlined (limits computed once per page, not per item), and each item
        # rendered once per status and kept on its transaction: paging thousands of signatures per
        # second is most of the simulator's serving cost in a backfill benchmark
        n_vis, n_conf, n_fin = self.limit(commitment), self.limit("confirmed"), self.limit("finalized")
        finalized_only = commitment == "finalized"
        blocks, tx_loc = self.blocks, self.tx_loc
        out: list[bytes] = []
        k = hi - 1
        while k >= 0 and len(out) < limit:
            seq = seqs[k]
            k -= 1
            if useq is not None and seq <= useq:
                break
            pos, i = tx_loc[seq]
            if pos >= n_vis:
                continue
            block = blocks[pos]
            if block.forked and (finalized_only or pos < n_fin):
                continue
            status = "finalized" if pos < n_fin else "confirmed" if pos < n_conf else "processed"
            tx = block.transactions[i]
            item = tx.parsed_cache.get(status)
            if item is None:
                item = tx.parsed_cache[status] = orjson.dumps({
                    "signature": tx.signature, "slot": block.slot, "err": tx.err, "memo": tx.memo,
                    "blockTime": block.block_time, "confirmationStatus": status})
            out.append(item)
        return _Raw(b"[" + b",".join(out) + b"]")

    # ------------------------------------------------------------------------------------------
    # methods: accounts

    def _account(self, address: str, encoding: str):
        tokens = self.ledger.tokens
        if address in A.DECIMALS:
            data = _mint_bytes(address)
            parsed = {"program": "spl-token", "space": 82, "parsed": {"type": "mint", "info": {
                "decimals": A.DECIMALS[address], "freezeAuthority": None, "isInitialized": True,
                "mintAuthority": A.MINT_BREAKERS.get(address), "supply": str(_SUPPLY)}}}
            return _account_value(data, A.TOKEN_PROGRAM, 1_461_600, False, encoding, parsed)
        if tokens is not None and address in tokens.accounts:
            mint, owner, amount = tokens.accounts[address]
            data = _token_account_bytes(mint, owner, amount)
            dec = A.DECIMALS.get(mint, 0)
            from indexer.devchain.render import _ui_amount

            parsed = {"program": "spl-token", "space": 165, "parsed": {"type": "account", "info": {
                "isNative": False, "mint": mint, "owner": owner, "state": "initialized",
                "tokenAmount": _ui_amount(amount, dec)}}}
            return _account_value(data, A.TOKEN_PROGRAM, 2_039_280, False, encoding, parsed)
        if address in _PROGRAMS:
            data = b"\x02\x00\x00\x00" + bytes(Pubkey.from_string(address))[:32]
            return _account_value(data, "BPFLoaderUpgradeab1e11111111111111111111111", 1_141_440, True, encoding,
                                  None)
        if address in self.by_address:
            return _account_value(b"", A.SYSTEM_PROGRAM, 1_000_000_000, False, encoding, None)
        return None

    def get_account_info(self, address, cfg=None):
        cfg = self._cfg(cfg)
        _check_pubkey(address)
        encoding = cfg.get("encoding") or "base64"
        if encoding not in ("base64", "jsonParsed", "base58"):
            raise _invalid_params(f"Invalid params: unknown variant `{encoding}`")
        self._min_context(cfg, self._commitment(cfg))
        return {"context": self._context(self._commitment(cfg)), "value": self._account(address, encoding)}

    def get_multiple_accounts(self, addresses, cfg=None):
        cfg = self._cfg(cfg)
        encoding = cfg.get("encoding") or "base64"
        if not isinstance(addresses, list) or len(addresses) > 100:
            raise _invalid_params("Too many inputs provided; max 100")
        for a in addresses:
            _check_pubkey(a)
        return {"context": self._context(self._commitment(cfg)),
                "value": [self._account(a, encoding) for a in addresses]}

    # ------------------------------------------------------------------------------------------
    # websocket

    async def _ws(self, request: web.Request) -> web.StreamResponse:
        if request.headers.get("Upgrade", "").lower() != "websocket":
            return web.Response(status=405, text="Used HTTP Method is not allowed. POST or OPTIONS is required")
        ws = web.WebSocketResponse(autoping=True, heartbeat=None, max_msg_size=4 * 1024 * 1024)
        await ws.prepare(request)
        self._sockets.add(ws)
        try:
            async for msg in ws:
                if msg.type != WSMsgType.TEXT:
                    continue
                try:
                    req = orjson.loads(msg.data)
                except orjson.JSONDecodeError:
                    await self._ws_send(ws, {"jsonrpc": "2.0", "error": {"code": -32700, "message": "Parse error"},
                                             "id": None})
                    continue
                reqs = req if isinstance(req, list) else [req]
                for r in reqs:
                    await self._ws_send(ws, self._ws_call(ws, r))
        finally:
            self._sockets.discard(ws)
            self._stalled.discard(ws)
            for sid in [s for s, sub in self._subs.items() if sub.ws is ws]:
                del self._subs[sid]
        return ws

    def _ws_call(self, ws, req) -> dict:
        rid = req.get("id") if isinstance(req, dict) else None
        try:
            if not isinstance(req, dict) or "method" not in req:
                raise RpcError(-32600, "Invalid request")
            method = req["method"]
            params = req.get("params") or []
            if method == "slotSubscribe":
                return {"jsonrpc": "2.0", "result": self._subscribe(_Sub("slot", "processed", None, ws)), "id": rid}
            if method == "logsSubscribe":
                filt = params[0] if params else "all"
                cfg = self._cfg(params[1] if len(params) > 1 else None)
                commitment = self._commitment(cfg)
                mentions = None
                if isinstance(filt, dict):
                    addrs = filt.get("mentions") or []
                    if len(addrs) != 1:
                        raise _invalid_params("Invalid Request: Only 1 address supported")
                    _check_pubkey(addrs[0])
                    mentions = addrs[0]
                elif filt not in ("all", "allWithVotes"):
                    raise _invalid_params("Invalid params: unknown logs filter")
                return {"jsonrpc": "2.0", "result": self._subscribe(_Sub("logs", commitment, mentions, ws)), "id": rid}
            if method in ("slotUnsubscribe", "logsUnsubscribe"):
                sid = params[0] if params else None
                sub = self._subs.get(sid)
                kind = "slot" if method == "slotUnsubscribe" else "logs"
                if sub is None or sub.ws is not ws or sub.kind != kind:
                    raise _invalid_params("Invalid subscription id.")
                del self._subs[sid]
                return {"jsonrpc": "2.0", "result": True, "id": rid}
            raise RpcError(-32601, "Method not found")
        except RpcError as e:
            return {"jsonrpc": "2.0", "error": e.to_dict(), "id": rid}

    def _subscribe(self, sub: _Sub) -> int:
        sid = self._next_sub
        self._next_sub += 1
        self._subs[sid] = sub
        return sid

    async def _ws_send(self, ws: web.WebSocketResponse, obj) -> None:
        if ws.closed or ws in self._stalled:
            return
        if self.faults is not None and "method" in obj:   # faults only on notifications
            action = self.faults.decide_ws()
            if action == "drop":
                await ws.close(code=1011, message=b"simulated drop")
                return
            if action == "stall":
                self._stalled.add(ws)
                asyncio.get_running_loop().call_later(self.faults.stall_seconds, self._stalled.discard, ws)
                return
        try:
            await ws.send_str(orjson.dumps(obj).decode())
        except (ConnectionResetError, RuntimeError):
            pass

    def _notify(self, old_tip: int, new_tip: int) -> None:
        """Queue notifications for blocks that became visible between two tips."""
        if not self._subs:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return
        msgs: list[tuple[web.WebSocketResponse, dict]] = []
        for sid, sub in list(self._subs.items()):
            lag = {"processed": 0, "confirmed": CONFIRMED_LAG, "finalized": FINAL_LAG}[sub.commitment]
            lo = max(0, old_tip - lag)
            hi = max(0, min(len(self.blocks), new_tip - lag))
            for pos in range(lo, hi):
                block = self.blocks[pos]
                if sub.kind == "slot":
                    if sub.commitment == "processed":
                        root = self.tip_slot("finalized")
                        msgs.append((sub.ws, {"jsonrpc": "2.0", "method": "slotNotification", "params": {
                            "result": {"parent": block.parent_slot, "root": root, "slot": block.slot},
                            "subscription": sid}}))
                    continue
                if block.forked and sub.commitment == "finalized":
                    continue
                for tx in block.transactions:
                    if sub.mentions is not None and sub.mentions not in tx.account_keys:
                        continue
                    msgs.append((sub.ws, {"jsonrpc": "2.0", "method": "logsNotification", "params": {
                        "result": {"context": {"slot": block.slot},
                                   "value": {"signature": tx.signature, "err": tx.err, "logs": tx.logs}},
                        "subscription": sid}}))
        if msgs:
            loop.create_task(self._send_all(msgs))

    async def _send_all(self, msgs) -> None:
        for ws, obj in msgs:
            await self._ws_send(ws, obj)


class _Raw:
    """A pre-serialized JSON result (spliced into the response without re-encoding)."""

    __slots__ = ("data",)

    def __init__(self, data: bytes) -> None:
        self.data = data


_SUPPLY = 10**17
_PROGRAMS = {
    A.SYSTEM_PROGRAM, A.TOKEN_PROGRAM, A.ATA_PROGRAM, A.DATA_CREDITS, A.HELIUM_SUB_DAOS, A.LAZY_DISTRIBUTOR,
    A.CIRCUIT_BREAKER, A.TUKTUK, A.NO_EMIT, A.HELIUM_ENTITY_MANAGER, A.HEXBOOSTING, A.TREASURY_MANAGEMENT,
    A.FANOUT, A.MINI_FANOUT, A.DC_AUTO_TOP, A.REWARDS_ORACLE, A.VOTER_STAKE_REGISTRY, A.MEMO_PROGRAM,
}


def _first_seq_at(tx_pos: list[int], n_blocks: int) -> int:
    """First transaction sequence number of block position `n_blocks` (= count of txs before it)."""
    return bisect.bisect_left(tx_pos, n_blocks)


def _check_pubkey(address) -> None:
    try:
        Pubkey.from_string(address)
    except Exception as e:
        raise _invalid_params("Invalid param: Invalid") from e


def _check_signature(sig) -> None:
    from solders.signature import Signature

    try:
        Signature.from_string(sig)
    except Exception as e:
        raise _invalid_params("Invalid param: Invalid") from e


def _coption_pubkey(addr: str | None) -> bytes:
    return struct.pack("<I", 1) + bytes(Pubkey.from_string(addr)) if addr else b"\0" * 36


def _mint_bytes(mint: str) -> bytes:
    return (_coption_pubkey(A.MINT_BREAKERS.get(mint)) + struct.pack("<QBB", _SUPPLY, A.DECIMALS[mint], 1)
            + _coption_pubkey(None))


def _token_account_bytes(mint: str, owner: str, amount: int) -> bytes:
    return (bytes(Pubkey.from_string(mint)) + bytes(Pubkey.from_string(owner)) + struct.pack("<Q", amount)
            + b"\0" * 36 + b"\x01" + b"\0" * 12 + struct.pack("<Q", 0) + b"\0" * 36)


def _account_value(data: bytes, owner: str, lamports: int, executable: bool, encoding: str, parsed):
    if encoding == "jsonParsed" and parsed is not None:
        payload = parsed
    elif encoding == "base58":
        from indexer.devchain.txbuild import b58encode

        payload = [b58encode(data), "base58"]
    else:
        payload = [base64.b64encode(data).decode(), "base64"]
    return {"data": payload, "executable": executable, "lamports": lamports, "owner": owner,
            "rentEpoch": 18446744073709551615, "space": len(data)}


# ---------------------------------------------------------------------------------------------
# running in a thread (tests, CLI)


class ServerHandle:
    """A server running on its own event loop thread. `advance`/`finalize_all` are thread-safe."""

    def __init__(self, server: DevchainServer, loop: asyncio.AbstractEventLoop, runner: web.AppRunner,
                 thread: threading.Thread, host: str, port: int) -> None:
        self.server = server
        self.loop = loop
        self.runner = runner
        self.thread = thread
        self.host = host
        self.port = port

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://{self.host}:{self.port}"

    def _run(self, fn, *args):
        fut = asyncio.run_coroutine_threadsafe(_as_coro(fn, *args), self.loop)
        return fut.result(timeout=30)

    def advance(self, n_slots: int = 1) -> None:
        """Move the processed tip forward by `n_slots` block-carrying slots (skipped slots do not count)."""
        self._run(self.server.advance, n_slots)

    def finalize_all(self) -> None:
        self._run(self.server.finalize_all)

    def stop(self) -> None:
        if not self.loop.is_closed():
            fut = asyncio.run_coroutine_threadsafe(self.runner.cleanup(), self.loop)
            try:
                fut.result(timeout=30)
            finally:
                self.loop.call_soon_threadsafe(self.loop.stop)
                self.thread.join(timeout=30)

    def __enter__(self) -> ServerHandle:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


async def _as_coro(fn, *args):
    return fn(*args)


async def start_server(ledger: Ledger, host: str = "127.0.0.1", port: int = 0, faults: FaultConfig | None = None,
                       realtime: bool = False, **kwargs) -> tuple[DevchainServer, web.AppRunner, int]:
    server = DevchainServer(ledger, faults, realtime=realtime, **kwargs)
    runner = web.AppRunner(server.app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    actual = site._server.sockets[0].getsockname()[1]
    return server, runner, actual


def serve_in_thread(ledger: Ledger, host: str = "127.0.0.1", port: int = 0, faults: FaultConfig | None = None,
                    realtime: bool = False, **kwargs) -> ServerHandle:
    """Start the server on a daemon thread; returns when it accepts connections.

    kwargs: `start_at` (initial processed tip as a block position, for deterministic clock tests;
    default: everything finalized unless realtime), `local_retention_slots` (skipped slots older
    than this many slots before the last block answer -32009 instead of -32007).
    """
    return run_in_thread(lambda: start_server(ledger, host, port, faults, realtime, **kwargs), host,
                         "devchain-server")


def run_in_thread(start: Callable[[], Awaitable[tuple]], host: str, name: str) -> ServerHandle:
    """Run `start()` (-> (server, runner, port)) on a new event loop in a daemon thread; return once it
    accepts connections. WHY one helper: the tests' ledger server and the streamed chain start the same way,
    and a bind error must surface in the caller, not die silently in the thread."""
    loop = asyncio.new_event_loop()
    ready: dict = {}
    started = threading.Event()

    def run() -> None:
        asyncio.set_event_loop(loop)
        try:
            server, runner, actual = loop.run_until_complete(start())
            ready.update(server=server, runner=runner, port=actual)
        except BaseException as e:  # surface bind errors to the caller
            ready["error"] = e
            started.set()
            return
        started.set()
        loop.run_forever()
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()

    thread = threading.Thread(target=run, name=name, daemon=True)
    thread.start()
    started.wait(60)
    if "error" in ready:
        raise ready["error"]
    return ServerHandle(ready["server"], loop, ready["runner"], thread, host, ready["port"])
