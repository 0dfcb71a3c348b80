"""Test-side reference: an independent Borsh encoder and hypothesis value strategies driven by
the raw IDL JSON (either spec). Deliberately shares no code with indexer.decode, so a bug in
the project's IDL normalizer, decoder or encoder cannot hide itself in the round trip.

Values are produced in the project's canonical form: ints, floats, bools, base58 pubkeys,
bytes for bytes/Vec<u8>/[u8; N], None for absent options, {"Variant": None | [..] | {..}}
for enums, dicts for structs, lists for tuple structs / vecs / arrays.
"""

from __future__ import annotations

import hashlib
import re
import struct

from hypothesis import strategies as st
from solders.pubkey import Pubkey

INT_BITS = {"u8": 8, "u16": 16, "u32": 32, "u64": 64, "u128": 128, "u256": 256,
            "i8": 8, "i16": 16, "i32": 32, "i64": 64, "i128": 128, "i256": 256}


def ref_snake(name: str) -> str:
    s = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", name)
    return s.lower()


def ref_discriminator(ix: dict) -> bytes:
    if "discriminator" in ix:
        return bytes(ix["discriminator"])
    return hashlib.sha256(f"global:{ref_snake(ix['name'])}".encode()).digest()[:8]


class RefIdl:
    """Just enough IDL reading for the reference encoder."""

    def __init__(self, idl: dict):
        self.idl = idl
        self.types = {t["name"]: t for t in idl.get("types", []) or []}

    def typedef(self, t) -> dict:
        d = t["defined"]
        name = d if isinstance(d, str) else d["name"]
        return self.types[name]["type"]

    # ------------------------------------------------------------------ encoder
    def encode(self, t, v, out: bytearray) -> None:
        if isinstance(t, str):
            if t in INT_BITS:
                out += v.to_bytes(INT_BITS[t] // 8, "little", signed=t[0] == "i")
            elif t == "bool":
                out.append(int(v))
            elif t == "f32":
                out += struct.pack("<f", v)
            elif t == "f64":
                out += struct.pack("<d", v)
            elif t in ("pubkey", "publicKey"):
                out += bytes(Pubkey.from_string(v))
            elif t == "string":
                b = v.encode()
                out += len(b).to_bytes(4, "little") + b
            elif t == "bytes":
                out += len(v).to_bytes(4, "little") + v
            else:
                raise AssertionError(t)
            return
        if "option" in t:
            if v is None:
                out.append(0)
            else:
                out.append(1)
                self.encode(t["option"], v, out)
        elif "coption" in t:
            if v is None:
                out += bytes(4)
            else:
                out += (1).to_bytes(4, "little")
                self.encode(t["coption"], v, out)
        elif "vec" in t:
            out += len(v).to_bytes(4, "little")
            if t["vec"] == "u8":
                out += v
            else:
                for e in v:
                    self.encode(t["vec"], e, out)
        elif "array" in t:
            if t["array"][0] == "u8":
                out += v
            else:
                for e in v:
                    self.encode(t["array"][0], e, out)
        elif "defined" in t:
            td = self.typedef(t)
            if td["kind"] == "struct":
                self.encode_fields(td.get("fields", []) or [], v, out)
            elif td["kind"] == "enum":
                (vname, inner), = v.items()
                for i, var in enumerate(td["variants"]):
                    if var["name"] == vname:
                        out.append(i)
                        if var.get("fields"):
                            self.encode_fields(var["fields"], inner, out)
                        break
                else:
                    raise AssertionError(vname)
            else:
                self.encode(td.get("alias", td.get("value")), v, out)
        else:
            raise AssertionError(t)

    def encode_fields(self, fields: list, v, out: bytearray) -> None:
        if fields and isinstance(fields[0], dict) and "name" in fields[0]:
            for f in fields:
                self.encode(f["type"], v[f["name"]], out)
        else:
            for f, e in zip(fields, v, strict=True):
                self.encode(f, e, out)

    def encode_ix(self, ix: dict, args: dict) -> bytes:
        out = bytearray(ref_discriminator(ix))
        for a in ix.get("args", []) or []:
            self.encode(a["type"], args[a["name"]], out)
        return bytes(out)

    # ------------------------------------------------------------------ strategies
    def strategy(self, t, depth: int = 0):
        if isinstance(t, str):
            if t in INT_BITS:
                bits = INT_BITS[t]
                if t[0] == "u":
                    return st.integers(0, 2**bits - 1)
                return st.integers(-(2 ** (bits - 1)), 2 ** (bits - 1) - 1)
            if t == "bool":
                return st.booleans()
            if t == "f32":
                return st.floats(width=32, allow_nan=False)
            if t == "f64":
                return st.floats(allow_nan=False)
            if t in ("pubkey", "publicKey"):
                return st.binary(min_size=32, max_size=32).map(lambda b: str(Pubkey.from_bytes(b)))
            if t == "string":
                return st.text(max_size=12)
            if t == "bytes":
                return st.binary(max_size=24)
            raise AssertionError(t)
        if "option" in t:
            return st.none() | self.strategy(t["option"], depth)
        if "coption" in t:
            return st.none() | self.strategy(t["coption"], depth)
        if "vec" in t:
            if t["vec"] == "u8":
                return st.binary(max_size=24)
            return st.lists(self.strategy(t["vec"], depth + 1), max_size=3 if depth < 2 else 1)
        if "array" in t:
            elem, n = t["array"]
            if elem == "u8":
                return st.binary(min_size=n, max_size=n)
            return st.lists(self.strategy(elem, depth + 1), min_size=n, max_size=n)
        if "defined" in t:
            td = self.typedef(t)
            if td["kind"] == "struct":
                return self.fields_strategy(td.get("fields", []) or [], depth)
            if td["kind"] == "enum":
                options = []
                for var in td["variants"]:
                    if var.get("fields"):
                        options.append(self.fields_strategy(var["fields"], depth).map(
                            lambda x, n=var["name"]: {n: x}))
                    else:
                        options.append(st.just({var["name"]: None}))
                return st.one_of(options)
            return self.strategy(td.get("alias", td.get("value")), depth)
        raise AssertionError(t)

    def fields_strategy(self, fields: list, depth: int):
        if fields and isinstance(fields[0], dict) and "name" in fields[0]:
            return st.fixed_dictionaries({f["name"]: self.strategy(f["type"], depth + 1) for f in fields})
        return st.tuples(*[self.strategy(f, depth + 1) for f in fields]).map(list)

    def args_strategy(self, ix: dict):
        return st.fixed_dictionaries({a["name"]: self.strategy(a["type"]) for a in ix.get("args", []) or []})
