"""SPL Token and Token-2022 instruction decoding (raw bytes and jsonParsed forms).

Layouts from spl-token `TokenInstruction::unpack` (reference render.md §4): a one-byte tag,
little-endian integers. Names, account names and arg names follow the RPC's jsonParsed
form (`transferChecked`, `source`/`destination`/`authority` ...), so a raw-decoded and a
jsonParsed instruction of the same transaction compare equal after decoding:
args {"amount": int, "decimals": int, "fee": int, ...}; multisig signers that follow the
authority go to `extra_accounts` (jsonParsed "signers").
"""

from __future__ import annotations

import struct
from typing import Any

from indexer.decode.base58 import pubkey_bytes, pubkey_str
from indexer.decode.decoded import DecodedInstruction
from indexer.decode.errors import DecodeError

TOKEN_PROGRAM_ID = "TokenkegQfeZyiNwAJbNbGKPFXCWuBvf9Ss623VQ5DA"
TOKEN_2022_PROGRAM_ID = "TokenzQdBNbLqP5VEhdkAS6EPFLC1PHnBqCXEpPxuEb"
PROGRAM_NAMES = {TOKEN_PROGRAM_ID: "spl-token", TOKEN_2022_PROGRAM_ID: "spl-token-2022"}

_U64 = struct.Struct("<Q")
_U64U8 = struct.Struct("<QB")
_U64U8U64 = struct.Struct("<QBQ")

# tag -> (name, arg layout, account names). Layout codes: "" no args, "amount", "amount_decimals",
# plus a few special ones handled in _decode_args. Account names are jsonParsed info keys.
_SPEC: dict[int, tuple[str, str, tuple[str, ...]]] = {
    0: ("initializeMint", "init_mint", ("mint", "rentSysvar")),
    1: ("initializeAccount", "", ("account", "mint", "owner", "rentSysvar")),
    2: ("initializeMultisig", "m", ("multisig", "rentSysvar")),
    3: ("transfer", "amount", ("source", "destination", "authority")),
    4: ("approve", "amount", ("source", "delegate", "owner")),
    5: ("revoke", "", ("source", "owner")),
    6: ("setAuthority", "set_authority", ("account", "authority")),
    7: ("mintTo", "amount", ("mint", "account", "mintAuthority")),
    8: ("burn", "amount", ("account", "mint", "authority")),
    9: ("closeAccount", "", ("account", "destination", "owner")),
    10: ("freezeAccount", "", ("account", "mint", "freezeAuthority")),
    11: ("thawAccount", "", ("account", "mint", "freezeAuthority")),
    12: ("transferChecked", "amount_decimals", ("source", "mint", "destination", "authority")),
    13: ("approveChecked", "amount_decimals", ("source", "mint", "delegate", "owner")),
    14: ("mintToChecked", "amount_decimals", ("mint", "account", "mintAuthority")),
    15: ("burnChecked", "amount_decimals", ("account", "mint", "authority")),
    16: ("initializeAccount2", "owner", ("account", "mint", "rentSysvar")),
    17: ("syncNative", "", ("account",)),
    18: ("initializeAccount3", "owner", ("account", "mint")),
    19: ("initializeMultisig2", "m", ("multisig",)),
    20: ("initializeMint2", "init_mint", ("mint",)),
    21: ("getAccountDataSize", "rest", ("mint",)),
    22: ("initializeImmutableOwner", "", ("account",)),
    23: ("amountToUiAmount", "amount", ("mint",)),
    24: ("uiAmountToAmount", "ui_amount", ("mint",)),
}
# Instructions whose authority slot may be a multisig followed by its signers.
_SIGNERS_ARE_ACCOUNTS = {"initializeMultisig", "initializeMultisig2"}
# Token-2022 TransferFeeExtension (tag 26) sub-instruction 1
_TRANSFER_CHECKED_WITH_FEE = ("transferCheckedWithFee", "amount_decimals_fee",
                              ("source", "mint", "destination", "authority"))
_AUTHORITY_TYPES = ("mintTokens", "freezeAccount", "accountOwner", "closeAccount")


def _coption_pubkey(data: bytes, o: int) -> tuple[str | None, int]:
    """spl-token's instruction COption<Pubkey>: one tag byte, then 32 bytes when Some."""
    tag = data[o]
    if tag == 0:
        return None, o + 1
    if tag == 1:
        return pubkey_str(data[o + 1:o + 33]) if len(data) >= o + 33 else _short(), o + 33
    raise DecodeError("bad_enum_variant", f"COption tag {tag}")


def _short():
    raise DecodeError("short_data", "spl-token instruction data too short")


def _decode_args(layout: str, data: bytes) -> dict:
    n = len(data)
    if layout == "":
        end, args = 1, {}
    elif layout == "amount":
        end = 9
        if n < end:
            _short()
        args = {"amount": _U64.unpack_from(data, 1)[0]}
    elif layout == "amount_decimals":
        end = 10
        if n < end:
            _short()
        a, dec = _U64U8.unpack_from(data, 1)
        args = {"amount": a, "decimals": dec}
    elif layout == "amount_decimals_fee":
        end = 19
        if n < end:
            _short()
        a, dec, fee = _U64U8U64.unpack_from(data, 2)
        args = {"amount": a, "decimals": dec, "fee": fee}
    elif layout == "m":
        end = 2
        if n < end:
            _short()
        args = {"m": data[1]}
    elif layout == "owner":
        end = 33
        if n < end:
            _short()
        args = {"owner": pubkey_str(data[1:33])}
    elif layout == "init_mint":
        if n < 35:
            _short()
        freeze, end = _coption_pubkey(data, 34)
        args = {"decimals": data[1], "mintAuthority": pubkey_str(data[2:34]), "freezeAuthority": freeze}
    elif layout == "set_authority":
        if n < 3:
            _short()
        kind = data[1]
        if kind >= len(_AUTHORITY_TYPES):
            raise DecodeError("bad_enum_variant", f"authority type {kind}")
        new, end = _coption_pubkey(data, 2)
        args = {"authorityType": _AUTHORITY_TYPES[kind], "newAuthority": new}
    elif layout == "ui_amount":
        end = n
        try:
            args = {"uiAmount": data[1:].decode()}
        except UnicodeDecodeError:
            raise DecodeError("bad_utf8", "uiAmount is not UTF-8") from None
    elif layout == "rest":  # extension types: keep raw
        end = n
        args = {"extensionTypes": list(struct.unpack_from(f"<{(n - 1) // 2}H", data, 1))}
        end = 1 + 2 * ((n - 1) // 2)
    else:  # pragma: no cover - table is static
        raise AssertionError(layout)
    if n != end:
        raise DecodeError("trailing_data", f"{n - end} unread bytes")
    return args


def decode_token_instruction(program_id: str, data: bytes, accounts: list[str]):
    """Decode raw SPL Token / Token-2022 instruction data into a DecodedInstruction."""
    program = PROGRAM_NAMES.get(program_id)
    if program is None:
        raise DecodeError("unknown_program", f"{program_id} is not a token program", raw=bytes(data),
                          program_id=program_id)
    if not data:
        raise DecodeError("short_data", "empty token instruction", raw=b"", program_id=program_id)
    tag = data[0]
    spec = _SPEC.get(tag)
    if spec is None and tag == 26 and program == "spl-token-2022" and len(data) > 1 and data[1] == 1:
        spec = _TRANSFER_CHECKED_WITH_FEE
    if spec is None:
        raise DecodeError("unknown_discriminator", f"token instruction tag {tag}", raw=bytes(data),
                          program_id=program_id)
    name, layout, names = spec
    try:
        args = _decode_args(layout, data)
    except DecodeError as e:
        e.raw, e.program_id = bytes(data), program_id
        raise
    n = len(names)
    acc = dict(zip(names, accounts, strict=False))
    extra = list(accounts[n:])
    if name in _SIGNERS_ARE_ACCOUNTS:
        acc["signers"] = extra  # type: ignore[assignment]  # jsonParsed lists them as "signers"
        extra = []
    return DecodedInstruction(program, name, args, acc, extra)


# --------------------------------------------------------------------------- jsonParsed

# jsonParsed info keys that name accounts; "multisig*" forms collapse onto the plain role.
_ACCOUNT_KEYS = {
    "source", "destination", "authority", "mint", "account", "mintAuthority", "owner", "delegate",
    "freezeAuthority", "rentSysvar", "multisig", "wallet", "nativeMint", "newAccount",
}
_MULTISIG_KEYS = {"multisigAuthority": "authority", "multisigMintAuthority": "mintAuthority",
                  "multisigOwner": "owner", "multisigFreezeAuthority": "freezeAuthority"}
_ARG_ONLY_FOR = {  # jsonParsed puts these pubkeys in info although they are instruction args
    "initializeMint": {"mintAuthority", "freezeAuthority"},
    "initializeMint2": {"mintAuthority", "freezeAuthority"},
    "initializeAccount2": {"owner"},
    "initializeAccount3": {"owner"},
    "setAuthority": {"newAuthority"},
}


def _int_amount(v: Any) -> int:
    return int(v) if isinstance(v, str | int) else int(v["amount"])


def decode_parsed_token(program_id: str, parsed: dict):
    """Turn a jsonParsed spl-token `parsed` dict ({"type", "info"}) into a DecodedInstruction
    equal to what decode_token_instruction gives for the raw bytes of the same instruction."""
    program = PROGRAM_NAMES.get(program_id, "spl-token")
    if not isinstance(parsed, dict) or "type" not in parsed:
        raise DecodeError("malformed_transaction", f"not a parsed token instruction: {parsed!r}"[:200],
                          program_id=program_id)
    name = parsed["type"]
    info = parsed.get("info") or {}
    if not isinstance(info, dict):
        raise DecodeError("malformed_transaction", f"parsed token instruction info is not an object: {info!r}"[:200],
                          program_id=program_id)
    try:
        return _from_parsed_info(program, name, info)
    except (TypeError, ValueError, KeyError, AttributeError) as e:
        raise DecodeError("malformed_transaction", f"parsed token instruction {name!r}: {type(e).__name__}: {e}"[:300],
                          program_id=program_id) from None


def _key(value) -> str | None:
    """An account named in parsed info: a string (the rules hash and compare them), or null."""
    if value is not None and type(value) is not str:
        raise TypeError(f"account is not a string: {value!r}"[:120])
    return value


def _from_parsed_info(program: str, name, info: dict):
    args: dict = {}
    acc: dict = {}
    extra: list[str] = []
    arg_pubkeys = _ARG_ONLY_FOR.get(name, set())
    for k, v in info.items():
        if k in ("amount",):
            args["amount"] = _int_amount(v)
        elif k == "tokenAmount":
            args["amount"] = int(v["amount"])
            args["decimals"] = int(v["decimals"])
        elif k == "feeAmount":
            args["fee"] = int(v["amount"])
        elif k == "decimals":
            args["decimals"] = int(v)
        elif k == "signers":
            extra = [_key(s) for s in v]
        elif k in _MULTISIG_KEYS:
            acc[_MULTISIG_KEYS[k]] = _key(v)
        elif k in arg_pubkeys:
            args[k] = v
        elif k in _ACCOUNT_KEYS:
            acc[k] = _key(v)
        elif k == "authorityType":
            args[k] = v
        else:
            args[k] = v
    if name in _SIGNERS_ARE_ACCOUNTS:
        acc["signers"] = extra  # type: ignore[assignment]
        extra = []
    # Key order as the raw decoder produces it (role order), so dicts compare and print the same.
    spec = next((s for s in _SPEC.values() if s[0] == name), None)
    if spec is None and name == _TRANSFER_CHECKED_WITH_FEE[0]:
        spec = _TRANSFER_CHECKED_WITH_FEE
    if spec is not None:
        order = {n: i for i, n in enumerate(spec[2])}
        acc = dict(sorted(acc.items(), key=lambda kv: order.get(kv[0], len(order))))
    return DecodedInstruction(program, name, args, acc, extra)


# --------------------------------------------------------------------------- encoding


def encode_token_instruction(program_id: str, name: str, args: dict) -> bytes:
    """Raw data for a token instruction (tests, simulator): the inverse of decode_token_instruction."""
    if name == _TRANSFER_CHECKED_WITH_FEE[0]:
        if program_id != TOKEN_2022_PROGRAM_ID:
            raise ValueError("transferCheckedWithFee exists only in Token-2022")
        return bytes([26, 1]) + _U64U8U64.pack(args["amount"], args["decimals"], args["fee"])
    for tag, (n, layout, _) in _SPEC.items():
        if n != name:
            continue
        head = bytes([tag])
        if layout == "":
            return head
        if layout == "amount":
            return head + _U64.pack(args["amount"])
        if layout == "amount_decimals":
            return head + _U64U8.pack(args["amount"], args["decimals"])
        if layout == "m":
            return head + bytes([args["m"]])
        if layout == "owner":
            return head + pubkey_bytes(args["owner"])
        if layout == "init_mint":
            fa = args.get("freezeAuthority")
            return (head + bytes([args["decimals"]]) + pubkey_bytes(args["mintAuthority"])
                    + (b"\0" if fa is None else b"\1" + pubkey_bytes(fa)))
        if layout == "set_authority":
            na = args.get("newAuthority")
            return (head + bytes([_AUTHORITY_TYPES.index(args["authorityType"])])
                    + (b"\0" if na is None else b"\1" + pubkey_bytes(na)))
        if layout == "ui_amount":
            return head + args["uiAmount"].encode()
        if layout == "rest":
            return head + b"".join(struct.pack("<H", t) for t in args.get("extensionTypes", []))
    raise ValueError(f"unknown token instruction {name!r}")


TOKEN_INSTRUCTION_NAMES = tuple(s[0] for s in _SPEC.values()) + (_TRANSFER_CHECKED_WITH_FEE[0],)
