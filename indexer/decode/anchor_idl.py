"""Anchor IDL compiler: IDL JSON (0.30+ spec or legacy) -> fast Borsh decoders and encoders.

Why our own: anchorpy cannot read the 0.30-spec IDLs Helium publishes and is ~15x slower
(reference libs.md). Each instruction is compiled ONCE into straight-line Python source
(generated here, then `exec`ed) that reads runs of fixed-size fields with a single
precompiled `struct.Struct.unpack_from`, so decoding an instruction costs a handful of
C calls instead of a tree walk per field.

Supported types: u8..u256, i8..i256, f32, f64, bool, string, bytes, pubkey/publicKey,
option, coption (u32 tag), vec, fixed arrays, defined structs (named and tuple fields),
enums (unit, tuple and struct variants), type aliases, 0.30 generics (type and const
parameters), nested and recursive defined types, nested account groups.

Canonical decoded values (shared with the registry and the CLI):
ints -> int (any width); f32/f64 -> float; bool -> bool; pubkey -> base58 str;
bytes, Vec<u8>, [u8; N] -> bytes; Option/COption None -> None; enums ->
{"Variant": None | [tuple fields] | {struct fields}}; defined structs -> dict (tuple
structs -> list); other vecs/arrays -> list. Field names are exactly as in the IDL.

Strictness mirrors Borsh `try_from_slice`: short data, trailing bytes, bad UTF-8, bad
bool bytes and out-of-range enum/option tags are all `DecodeError`s.
"""

from __future__ import annotations

import hashlib
import keyword
import re
import struct
from dataclasses import dataclass, field
from typing import Any

from solders.pubkey import Pubkey

from indexer.decode.base58 import pubkey_bytes
from indexer.decode.decoded import DecodedInstruction
from indexer.decode.errors import DecodeError

# --------------------------------------------------------------------------- names


def snake_case(name: str) -> str:
    """Anchor's (heck) snake_case, used for legacy discriminators: mintDataCreditsV0 -> mint_data_credits_v0."""
    if name.islower() or "_" in name and name == name.lower():
        return name
    # word boundaries: lower/digit -> Upper, and Upper -> Upper+lower (acronyms)
    s = re.sub(r"([A-Z]+)([A-Z][a-z])", r"\1_\2", name)
    s = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", s)
    return s.replace("__", "_").lower()


def sighash(namespace: str, name: str) -> bytes:
    """sha256("<namespace>:<name>")[:8]: the Anchor discriminator."""
    return hashlib.sha256(f"{namespace}:{name}".encode()).digest()[:8]


def instruction_discriminator(name: str) -> bytes:
    """Discriminator of an instruction given its IDL name (legacy camelCase or snake_case)."""
    return sighash("global", snake_case(name))


# --------------------------------------------------------------------------- normalized IDL

PRIMITIVES = frozenset(
    "u8 i8 u16 i16 u32 i32 u64 i64 u128 i128 u256 i256 f32 f64 bool string bytes pubkey".split()
)


class IdlError(ValueError):
    """The IDL itself is malformed or uses something this compiler does not understand."""


@dataclass(slots=True)
class IdlAccount:
    name: str          # flattened name; groups as "group.name"
    writable: bool = False
    signer: bool = False
    optional: bool = False


@dataclass(slots=True)
class IdlInstruction:
    name: str
    discriminator: bytes
    accounts: list[IdlAccount]
    args: list[tuple[str, Any]]   # (name, normalized type)


@dataclass(slots=True)
class IdlTypeDef:
    name: str
    kind: str                      # "struct" | "enum" | "alias"
    fields: list | None = None     # struct: [(name, T)] or tuple struct: [T]
    tuple_fields: bool = False
    variants: list | None = None   # enum: [(name, None | ("tuple", [T]) | ("struct", [(n, T)]))]
    alias: Any = None
    generics: list[str] = field(default_factory=list)


@dataclass(slots=True)
class Idl:
    name: str
    address: str | None
    version: str | None
    spec: str                      # "0.30" or "legacy"
    instructions: list[IdlInstruction]
    types: dict[str, IdlTypeDef]

    def instruction(self, name: str) -> IdlInstruction:
        for ix in self.instructions:
            if ix.name == name:
                return ix
        raise KeyError(name)


def _norm_type(t: Any) -> Any:
    """IDL type JSON (either spec) -> normalized: "u64" | ("option", T) | ("coption", T) |
    ("vec", T) | ("array", T, N) | ("defined", name, (generic args...)) | ("generic", name)."""
    if isinstance(t, str):
        if t == "publicKey":
            return "pubkey"
        if t in PRIMITIVES:
            return t
        raise IdlError(f"unknown primitive type {t!r}")
    if not isinstance(t, dict) or len(t) != 1:
        raise IdlError(f"bad type {t!r}")
    (k, v), = t.items()
    if k in ("option", "coption", "vec"):
        return (k, _norm_type(v))
    if k == "array":
        elem, n = v
        if isinstance(n, dict) and "generic" in n:
            n = ("generic", n["generic"])
        elif not isinstance(n, int):
            raise IdlError(f"bad array length {n!r}")
        return ("array", _norm_type(elem), n)
    if k == "defined":
        if isinstance(v, str):
            return ("defined", v, ())
        gargs = []
        for g in v.get("generics", []) or []:
            if g.get("kind") == "type":
                gargs.append(("type", _norm_type(g["type"])))
            elif g.get("kind") == "const":
                gargs.append(("const", int(g["value"])))
            else:
                raise IdlError(f"bad generic argument {g!r}")
        return ("defined", v["name"], tuple(gargs))
    if k == "generic":
        return ("generic", v)
    raise IdlError(f"unknown type form {k!r}")


def _flatten_accounts(items: list, prefix: str = "") -> list[IdlAccount]:
    out: list[IdlAccount] = []
    for a in items:
        name = prefix + a["name"]
        if "accounts" in a:  # account group (both specs)
            out.extend(_flatten_accounts(a["accounts"], name + "."))
            continue
        out.append(
            IdlAccount(
                name=name,
                writable=bool(a.get("writable", a.get("isMut", False))),
                signer=bool(a.get("signer", a.get("isSigner", False))),
                optional=bool(a.get("optional", a.get("isOptional", False))),
            )
        )
    return out


def _norm_typedef(t: dict) -> IdlTypeDef:
    ty = t["type"]
    kind = ty["kind"]
    generics = [g["name"] for g in t.get("generics", []) or []]
    if kind == "struct":
        raw = ty.get("fields", []) or []
        if raw and not isinstance(raw[0], dict) or raw and "name" not in raw[0]:
            return IdlTypeDef(t["name"], "struct", [_norm_type(f) for f in raw], True, generics=generics)
        return IdlTypeDef(
            t["name"], "struct", [(f["name"], _norm_type(f["type"])) for f in raw], generics=generics
        )
    if kind == "enum":
        variants = []
        for v in ty["variants"]:
            fs = v.get("fields")
            if not fs:
                variants.append((v["name"], None))
            elif isinstance(fs[0], dict) and "name" in fs[0]:
                variants.append((v["name"], ("struct", [(f["name"], _norm_type(f["type"])) for f in fs])))
            else:
                variants.append((v["name"], ("tuple", [_norm_type(f) for f in fs])))
        return IdlTypeDef(t["name"], "enum", variants=variants, generics=generics)
    if kind == "type":  # 0.30 alias
        return IdlTypeDef(t["name"], "alias", alias=_norm_type(ty["alias"]), generics=generics)
    if kind == "alias":  # 0.29 alias
        return IdlTypeDef(t["name"], "alias", alias=_norm_type(ty["value"]), generics=generics)
    raise IdlError(f"type {t['name']}: unsupported kind {kind!r}")


def load_idl(idl: dict) -> Idl:
    """Normalize an IDL dict in the 0.30+ spec or the legacy spec."""
    is_new = "address" in idl or "metadata" in idl and "spec" in (idl.get("metadata") or {})
    meta = idl.get("metadata") or {}
    name = meta.get("name") or idl.get("name") or "unknown"
    version = meta.get("version") or idl.get("version")
    address = idl.get("address") or meta.get("address")
    types = {}
    for t in idl.get("types", []) or []:
        td = _norm_typedef(t)
        types[td.name] = td
    instructions = []
    for ix in idl.get("instructions", []):
        disc = ix.get("discriminator")
        discriminator = bytes(disc) if disc is not None else instruction_discriminator(ix["name"])
        instructions.append(
            IdlInstruction(
                name=ix["name"],
                discriminator=discriminator,
                accounts=_flatten_accounts(ix.get("accounts", []) or []),
                args=[(a["name"], _norm_type(a["type"])) for a in ix.get("args", []) or []],
            )
        )
    return Idl(name, address, version, "0.30" if is_new else "legacy", instructions, types)


# --------------------------------------------------------------------------- type resolution


def _subst(t: Any, env: dict) -> Any:
    """Replace generic parameters inside a normalized type."""
    if not env or isinstance(t, str):
        return t
    k = t[0]
    if k == "generic":
        if t[1] not in env:
            raise IdlError(f"unbound generic {t[1]!r}")
        return env[t[1]]
    if k in ("option", "coption", "vec"):
        return (k, _subst(t[1], env))
    if k == "array":
        n = t[2]
        if isinstance(n, tuple):
            n = env[n[1]]
        return ("array", _subst(t[1], env), n)
    if k == "defined":
        return ("defined", t[1], tuple((g[0], _subst(g[1], env) if g[0] == "type" else g[1]) for g in t[2]))
    return t


class _Resolver:
    """Resolves ("defined", name, generics) to a concrete (generic-free) IdlTypeDef."""

    def __init__(self, types: dict[str, IdlTypeDef]):
        self.types = types
        self._cache: dict = {}

    def resolve(self, t: tuple) -> IdlTypeDef:
        key = (t[1], t[2])
        hit = self._cache.get(key)
        if hit is not None:
            return hit
        td = self.types.get(t[1])
        if td is None:
            raise IdlError(f"undefined type {t[1]!r}")
        if td.generics:
            if len(t[2]) != len(td.generics):
                raise IdlError(f"type {t[1]!r} expects {len(td.generics)} generic arguments")
            env = {g: a[1] for g, a in zip(td.generics, t[2], strict=True)}
            td = IdlTypeDef(
                td.name,
                td.kind,
                fields=None if td.fields is None else (
                    [_subst(f, env) for f in td.fields] if td.tuple_fields
                    else [(n, _subst(f, env)) for n, f in td.fields]
                ),
                tuple_fields=td.tuple_fields,
                variants=None if td.variants is None else [
                    (n, None if b is None else (
                        (b[0], [_subst(f, env) for f in b[1]]) if b[0] == "tuple"
                        else (b[0], [(fn, _subst(f, env)) for fn, f in b[1]])
                    ))
                    for n, b in td.variants
                ],
                alias=_subst(td.alias, env) if td.alias is not None else None,
            )
        self._cache[key] = td
        return td

    def min_size(self, t: Any, seen: frozenset = frozenset()) -> int:
        """Smallest encoding of a type: bounds absurd vec lengths before allocating."""
        if isinstance(t, str):
            return _FIXED[t][1] if t in _FIXED else 4  # string/bytes: u32 length
        k = t[0]
        if k == "option":
            return 1
        if k == "coption":
            return 4
        if k == "vec":
            return 4
        if k == "array":
            return t[2] * self.min_size(t[1], seen)
        key = (t[1], t[2])
        if key in seen:
            return 0
        seen = seen | {key}
        td = self.resolve(t)
        if td.kind == "alias":
            return self.min_size(td.alias, seen)
        if td.kind == "struct":
            fs = td.fields if td.tuple_fields else [f for _, f in td.fields]
            return sum(self.min_size(f, seen) for f in fs)
        best = None
        for _, body in td.variants:
            fs = [] if body is None else (body[1] if body[0] == "tuple" else [f for _, f in body[1]])
            s = sum(self.min_size(f, seen) for f in fs)
            best = s if best is None else min(best, s)
        return 1 + (best or 0)


# --------------------------------------------------------------------------- decoder codegen

# fixed-size scalars: struct code, size, post-processing kind
_FIXED: dict[str, tuple[str, int, str | None]] = {
    "u8": ("B", 1, None), "i8": ("b", 1, None), "u16": ("H", 2, None), "i16": ("h", 2, None),
    "u32": ("I", 4, None), "i32": ("i", 4, None), "u64": ("Q", 8, None), "i64": ("q", 8, None),
    "f32": ("f", 4, None), "f64": ("d", 8, None), "bool": ("B", 1, "bool"),
    "u128": ("16s", 16, "uint"), "i128": ("16s", 16, "sint"),
    "u256": ("32s", 32, "uint"), "i256": ("32s", 32, "sint"),
    "pubkey": ("32s", 32, "pubkey"),
}


def _fixed_info(t: Any) -> tuple[str, int, str | None] | None:
    """(struct code, size, post) when `t` can join a single struct.unpack run."""
    if isinstance(t, str):
        return _FIXED.get(t)
    if t[0] == "array" and t[1] == "u8" and isinstance(t[2], int):
        return (f"{t[2]}s", t[2], None)
    return None


def _len_error(n: int, remaining: int, total: int, what: str) -> DecodeError:
    """Length prefix that cannot be satisfied: absurd when it exceeds the whole buffer."""
    reason = "absurd_length" if n > total else "short_data"
    return DecodeError(reason, f"{what} length {n} but only {remaining} bytes remain")


def _bad_tag(what: str, tag: int) -> DecodeError:
    return DecodeError("bad_enum_variant", f"{what}: tag {tag} out of range")


def _bad_bool(v: int) -> DecodeError:
    return DecodeError("bad_bool", f"bool byte {v}")


class _Gen:
    """Emits straight-line Python that decodes one type at offset `o` of buffer `d` (length `L`)."""

    def __init__(self, resolver: _Resolver, ns: dict):
        self.r = resolver
        self.ns = ns
        self.lines: list[str] = []
        self.n = 0
        self.inlining: set = set()

    def tmp(self) -> str:
        self.n += 1
        return f"v{self.n}"

    def const(self, value: Any, prefix: str = "c") -> str:
        name = f"_{prefix}{len(self.ns)}"
        self.ns[name] = value
        return name

    def w(self, ind: int, line: str) -> None:
        self.lines.append("    " * ind + line)

    # -- fixed runs
    def fixed_run(self, run: list[Any], ind: int) -> list[str]:
        infos = [_fixed_info(t) for t in run]
        fmt = "<" + "".join(i[0] for i in infos)
        size = sum(i[1] for i in infos)
        s = self.const(struct.Struct(fmt).unpack_from, "u")
        names = [self.tmp() for _ in run]
        self.w(ind, f"{', '.join(names)}, = {s}(d, o)")
        self.w(ind, f"o += {size}")
        for name, (_, _sz, post) in zip(names, infos, strict=True):
            if post == "bool":
                self.w(ind, f"if {name} > 1: raise _bad_bool({name})")
                self.w(ind, f"{name} = {name} == 1")
            elif post == "uint":
                self.w(ind, f"{name} = _ifb({name}, 'little')")
            elif post == "sint":
                self.w(ind, f"{name} = _ifb({name}, 'little', signed=True)")
            elif post == "pubkey":
                self.w(ind, f"{name} = _str(_pkfb({name}))")
        return names

    def fields(self, types: list[Any], ind: int) -> list[str]:
        """Read a sequence of fields, batching runs of fixed-size scalars."""
        out: list[str] = []
        run: list[Any] = []
        for t in types:
            if _fixed_info(t) is not None:
                run.append(t)
                continue
            if run:
                out.extend(self.fixed_run(run, ind))
                run = []
            out.append(self.read(t, ind))
        if run:
            out.extend(self.fixed_run(run, ind))
        return out

    # -- one value
    def read(self, t: Any, ind: int) -> str:
        if _fixed_info(t) is not None:
            return self.fixed_run([t], ind)[0]
        if isinstance(t, str):
            v, n = self.tmp(), self.tmp()
            self.w(ind, f"{n}, = _U32(d, o)")
            self.w(ind, "o += 4")
            self.w(ind, f"if {n} > L - o: raise _len_error({n}, L - o, L, {t!r})")
            if t == "string":
                self.w(ind, f"{v} = d[o:o + {n}].decode()")
            else:  # bytes
                self.w(ind, f"{v} = d[o:o + {n}]")
            self.w(ind, f"o += {n}")
            return v
        k = t[0]
        if k in ("option", "coption"):
            v, tag = self.tmp(), self.tmp()
            if k == "option":
                self.w(ind, f"{tag} = d[o]")
                self.w(ind, "o += 1")
            else:
                self.w(ind, f"{tag}, = _U32(d, o)")
                self.w(ind, "o += 4")
            self.w(ind, f"if {tag} == 0:")
            self.w(ind + 1, f"{v} = None")
            self.w(ind, f"elif {tag} == 1:")
            inner = self.read(t[1], ind + 1)
            self.w(ind + 1, f"{v} = {inner}")
            self.w(ind, "else:")
            self.w(ind + 1, f"raise _bad_tag({k!r}, {tag})")
            return v
        if k == "vec":
            n = self.tmp()
            self.w(ind, f"{n}, = _U32(d, o)")
            self.w(ind, "o += 4")
            return self.sequence(t[1], n, ind, prefixed=True)
        if k == "array":
            if not isinstance(t[2], int):
                raise IdlError(f"unresolved array length {t[2]!r}")
            return self.sequence(t[1], str(t[2]), ind, prefixed=False)
        if k == "defined":
            return self.defined(t, ind)
        raise IdlError(f"cannot decode {t!r}")

    def sequence(self, elem: Any, n: str, ind: int, prefixed: bool) -> str:
        v = self.tmp()
        minsize = self.r.min_size(elem)
        what = "vec" if prefixed else "array"
        if elem == "u8":
            self.w(ind, f"if {n} > L - o: raise _len_error({n}, L - o, L, {what!r})")
            self.w(ind, f"{v} = d[o:o + {n}]")
            self.w(ind, f"o += {n}")
            return v
        info = _fixed_info(elem)
        if minsize:
            self.w(ind, f"if {n} * {minsize} > L - o: raise _len_error({n}, L - o, L, {what!r})")
        else:  # zero-sized elements: bound the count anyway
            self.w(ind, f"if {n} > L: raise _len_error({n}, L - o, L, {what!r})")
        if info is not None and info[2] is None and len(info[0]) == 1:
            code, size = info[0], info[1]
            self.w(ind, f"{v} = list(_unpack_from('<%d{code}' % {n}, d, o))")
            self.w(ind, f"o += {n} * {size}")
            return v
        self.w(ind, f"{v} = []")
        self.w(ind, f"for _ in range({n}):")
        e = self.read(elem, ind + 1)
        self.w(ind + 1, f"{v}.append({e})")
        return v

    def defined(self, t: tuple, ind: int) -> str:
        key = (t[1], t[2])
        if key in self.inlining:  # recursive type: call its own compiled function
            fn = self.type_function(t)
            v = self.tmp()
            self.w(ind, f"{v}, o = {fn}(d, o, L)")
            return v
        self.inlining.add(key)
        try:
            return self.inline(self.r.resolve(t), ind)
        finally:
            self.inlining.discard(key)

    def inline(self, td: IdlTypeDef, ind: int) -> str:
        if td.kind == "alias":
            return self.read(td.alias, ind)
        if td.kind == "struct":
            return self.struct_value(td.fields, td.tuple_fields, ind)
        # enum
        v, tag = self.tmp(), self.tmp()
        self.w(ind, f"{tag} = d[o]")
        self.w(ind, "o += 1")
        if all(body is None for _, body in td.variants):
            names = self.const(tuple(n for n, _ in td.variants), "n")
            self.w(ind, f"if {tag} >= {len(td.variants)}: raise _bad_tag({td.name!r}, {tag})")
            self.w(ind, f"{v} = {{{names}[{tag}]: None}}")
            return v
        for i, (vname, body) in enumerate(td.variants):
            self.w(ind, f"{'if' if i == 0 else 'elif'} {tag} == {i}:")
            if body is None:
                self.w(ind + 1, f"{v} = {{{vname!r}: None}}")
            else:
                inner = self.struct_value(body[1], body[0] == "tuple", ind + 1)
                self.w(ind + 1, f"{v} = {{{vname!r}: {inner}}}")
        self.w(ind, "else:")
        self.w(ind + 1, f"raise _bad_tag({td.name!r}, {tag})")
        return v

    def struct_value(self, fields: list, is_tuple: bool, ind: int) -> str:
        v = self.tmp()
        if is_tuple:
            names = self.fields(fields, ind)
            self.w(ind, f"{v} = [{', '.join(names)}]")
        else:
            names = self.fields([f for _, f in fields], ind)
            items = ", ".join(f"{fn!r}: {n}" for (fn, _), n in zip(fields, names, strict=True))
            self.w(ind, f"{v} = {{{items}}}")
        return v

    def type_function(self, t: tuple) -> str:
        """Compile (once) a standalone `f(d, o, L) -> (value, o)` for a recursive defined type."""
        fkey = ("fn", t[1], t[2])
        name = self.ns.get("__fnames__", {}).get(fkey)
        if name:
            return name
        name = f"_f{len(self.ns)}"
        self.ns.setdefault("__fnames__", {})[fkey] = name
        sub = _Gen(self.r, self.ns)
        sub.inlining = {(t[1], t[2])}
        sub.w(0, f"def {name}(d, o, L):")
        val = sub.inline(self.r.resolve(t), 1)
        sub.w(1, f"return {val}, o")
        exec(compile("\n".join(sub.lines), f"<idl type {t[1]}>", "exec"), self.ns)  # noqa: S102
        return name


def _namespace() -> dict:
    return {
        "_U32": struct.Struct("<I").unpack_from,
        "_unpack_from": struct.unpack_from,
        "_ifb": int.from_bytes,
        "_str": str,
        "_pkfb": Pubkey.from_bytes,
        "_len_error": _len_error,
        "_bad_tag": _bad_tag,
        "_bad_bool": _bad_bool,
        "DecodeError": DecodeError,
        "_struct_error": struct.error,
    }


_WRAPPER_HEAD = """\
def {fname}(d):
    L = len(d)
    o = {start}
    try:
"""
_WRAPPER_TAIL = """\
    except (_struct_error, IndexError):
        raise DecodeError("short_data", "data ends at byte %d, layout needs more (read at offset %d)" % (L, o)) from None
    except UnicodeDecodeError:
        raise DecodeError("bad_utf8", "string field at offset %d is not valid UTF-8" % o) from None
    if o != L:
        raise DecodeError("trailing_data", "%d unread bytes after the last field" % (L - o))
    return {result}
"""


def compile_args_decoder(args: list[tuple[str, Any]], resolver: _Resolver, start: int = 8, label: str = "ix"):
    """Compile `decode(data) -> dict` reading the named fields from offset `start` to the exact end."""
    return compile_instruction(args, (), "", "", resolver, start, label)[0]


# object.__new__ + slot stores: ~45% cheaper than calling the dataclass __init__.
_FULL_TAIL = """\
    r = _new(_DI)
    r.program = _program
    r.name = _name
    r.args = {result}
    n = len(a)
    if n >= {n}:
        r.accounts = {literal}
        r.extra_accounts = a[{n}:] if n > {n} else []
    else:
        r.accounts = dict(zip(_names, a))
        r.extra_accounts = []
    return r
"""


_SPLIT_MIN, _SPLIT_MAX = 8, 30  # CPython shares instance-dict keys for up to 30 attributes


def _attr_safe(name: str) -> bool:
    return name.isidentifier() and not keyword.iskeyword(name) and not name.startswith("__")


def compile_instruction(args: list[tuple[str, Any]], account_names: tuple[str, ...], program: str, name: str,
                        resolver: _Resolver, start: int = 8, label: str = "ix"):
    """Compile two functions sharing one generated body:
    `decode(data) -> args dict` and `decode_full(data, accounts) -> DecodedInstruction`.

    decode_full maps accounts with a constant-key dict display (one C-level BUILD_CONST_KEY_MAP)
    and builds the DecodedInstruction inline, so a full decode is a single Python call.
    """
    ns = _namespace()
    ns.update(_DI=DecodedInstruction, _new=object.__new__, _program=program, _name=name, _names=account_names)
    g = _Gen(resolver, ns)
    result = g.struct_value(args, False, 2)
    body = "\n".join(g.lines) + "\n"
    tail = _WRAPPER_TAIL.format(result=result)
    src = _WRAPPER_HEAD.format(fname="decode", start=start) + body + tail
    n = len(account_names)
    if _SPLIT_MIN <= n <= _SPLIT_MAX and all(_attr_safe(x) for x in account_names):
        # Key-sharing instance dict: attribute stores hit the per-class shared key table (no hash
        # lookups), and `o.__dict__` is a real dict. ~30-50% cheaper than a literal for 8-30 keys.
        ns["_Acc"] = type(f"Accounts_{name}", (), {})
        literal = "_acc_dict(a)"
        acc_src = "def _acc_dict(a):\n    o = _Acc()\n" + "".join(
            f"    o.{x} = a[{i}]\n" for i, x in enumerate(account_names)) + "    return o.__dict__\n"
        exec(compile(acc_src, f"<idl accounts {label}>", "exec"), ns)  # noqa: S102
    else:
        literal = "{" + ", ".join(f"{x!r}: a[{i}]" for i, x in enumerate(account_names)) + "}"
    full_tail = tail[: tail.index("    return ")] + _FULL_TAIL.format(n=n, result=result, literal=literal)
    src += "\n\n" + _WRAPPER_HEAD.replace("(d):", "(d, a):").format(fname="decode_full", start=start)
    src += body + full_tail
    exec(compile(src, f"<idl {label}>", "exec"), ns)  # noqa: S102
    dec, full = ns["decode"], ns["decode_full"]
    dec.__source__ = full.__source__ = src
    return dec, full


def compile_type_decoder(t: Any, resolver: _Resolver, label: str = "type"):
    """Compile `decode(data) -> value` for one (normalized) type occupying the whole buffer."""
    ns = _namespace()
    g = _Gen(resolver, ns)
    result = g.read(t, 2)
    src = _WRAPPER_HEAD.format(fname="decode", start=0) + "\n".join(g.lines) + "\n"
    src += _WRAPPER_TAIL.format(result=result)
    exec(compile(src, f"<idl {label}>", "exec"), ns)  # noqa: S102
    return ns["decode"]


# --------------------------------------------------------------------------- encoders

_INT_RANGES = {
    "u8": (0, 8), "u16": (0, 16), "u32": (0, 32), "u64": (0, 64), "u128": (0, 128), "u256": (0, 256),
    "i8": (1, 8), "i16": (1, 16), "i32": (1, 32), "i64": (1, 64), "i128": (1, 128), "i256": (1, 256),
}


def _as_bytes(value: Any, what: str) -> bytes:
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value)
    if isinstance(value, list | tuple):
        return bytes(value)
    if isinstance(value, str):
        return bytes.fromhex(value)
    raise TypeError(f"{what}: expected bytes, got {type(value).__name__}")


def _pubkey_raw(value: Any) -> bytes:
    if isinstance(value, str):
        return pubkey_bytes(value)
    if isinstance(value, Pubkey):
        return bytes(value)
    raw = _as_bytes(value, "pubkey")
    if len(raw) != 32:
        raise ValueError("pubkey must be 32 bytes")
    return raw


class _Encoder:
    """Interpretive Borsh encoder: the inverse of the compiled decoders (tests, CLI, simulator)."""

    def __init__(self, resolver: _Resolver):
        self.r = resolver

    def encode(self, t: Any, value: Any, out: bytearray) -> None:
        if isinstance(t, str):
            self.primitive(t, value, out)
            return
        k = t[0]
        if k == "option":
            if value is None:
                out.append(0)
            else:
                out.append(1)
                self.encode(t[1], value, out)
        elif k == "coption":
            if value is None:
                out += b"\0\0\0\0"
            else:
                out += b"\1\0\0\0"
                self.encode(t[1], value, out)
        elif k == "vec":
            if t[1] == "u8":
                raw = _as_bytes(value, "vec<u8>")
                out += struct.pack("<I", len(raw)) + raw
                return
            out += struct.pack("<I", len(value))
            for e in value:
                self.encode(t[1], e, out)
        elif k == "array":
            if t[1] == "u8":
                raw = _as_bytes(value, "[u8; N]")
                if len(raw) != t[2]:
                    raise ValueError(f"[u8; {t[2]}] given {len(raw)} bytes")
                out += raw
                return
            if len(value) != t[2]:
                raise ValueError(f"array of {t[2]} given {len(value)} elements")
            for e in value:
                self.encode(t[1], e, out)
        elif k == "defined":
            self.defined(self.r.resolve(t), value, out)
        else:
            raise IdlError(f"cannot encode {t!r}")

    def primitive(self, t: str, value: Any, out: bytearray) -> None:
        rng = _INT_RANGES.get(t)
        if rng is not None:
            if isinstance(value, bool) or not isinstance(value, int):
                raise TypeError(f"{t}: expected int, got {type(value).__name__}")
            signed, bits = rng
            out += value.to_bytes(bits // 8, "little", signed=bool(signed))  # OverflowError when out of range
        elif t == "bool":
            if not isinstance(value, bool):
                raise TypeError("bool: expected bool")
            out.append(1 if value else 0)
        elif t == "f32":
            out += struct.pack("<f", value)
        elif t == "f64":
            out += struct.pack("<d", value)
        elif t == "pubkey":
            out += _pubkey_raw(value)
        elif t == "string":
            raw = value.encode()
            out += struct.pack("<I", len(raw)) + raw
        elif t == "bytes":
            raw = _as_bytes(value, "bytes")
            out += struct.pack("<I", len(raw)) + raw
        else:
            raise IdlError(f"cannot encode {t!r}")

    def fields(self, fields: list, is_tuple: bool, value: Any, out: bytearray) -> None:
        if is_tuple:
            if len(value) != len(fields):
                raise ValueError(f"tuple of {len(fields)} given {len(value)}")
            for f, v in zip(fields, value, strict=True):
                self.encode(f, v, out)
        else:
            for fname, f in fields:
                if fname not in value:
                    raise KeyError(f"missing field {fname!r}")
                self.encode(f, value[fname], out)

    def defined(self, td: IdlTypeDef, value: Any, out: bytearray) -> None:
        if td.kind == "alias":
            self.encode(td.alias, value, out)
        elif td.kind == "struct":
            self.fields(td.fields, td.tuple_fields, value, out)
        else:
            if isinstance(value, str):
                vname, inner = value, None
            else:
                if len(value) != 1:
                    raise ValueError(f"enum {td.name}: expected one variant, got {value!r}")
                (vname, inner), = value.items()
            for i, (n, body) in enumerate(td.variants):
                if n == vname:
                    out.append(i)
                    if body is not None:
                        self.fields(body[1], body[0] == "tuple", inner, out)
                    return
            raise ValueError(f"enum {td.name}: no variant {vname!r}")


# --------------------------------------------------------------------------- compiled program


@dataclass(slots=True)
class CompiledInstruction:
    """One instruction compiled for fast decode; also able to encode (its inverse)."""

    program: str
    name: str
    discriminator: bytes
    account_names: tuple[str, ...]
    accounts: list[IdlAccount]
    args: list[tuple[str, Any]]
    decode_args: Any            # callable(data: bytes) -> dict
    decode_full: Any            # callable(data: bytes, accounts: list[str]) -> DecodedInstruction
    _encoder: _Encoder

    def encode(self, args: dict) -> bytes:
        out = bytearray(self.discriminator)
        self._encoder.fields(self.args, False, args, out)
        return bytes(out)


def _lazy_decoders(c: CompiledInstruction, resolver: _Resolver) -> tuple[Any, Any]:
    """Stand-ins for `c.decode_args` / `c.decode_full` that compile both on first use and replace
    themselves on `c` (every later call goes straight to the compiled code).

    WHY: the project's specs hold ~220 instructions and `compile()` of their generated decoders is ~2/3
    of building the registry (~0.25 CPU-s at every process start: the listener, each CLI command, each
    test process), while a listener meets a few dozen of them. compile_all() (the workers' fork server)
    compiles everything up front instead. Same code, same results: only when it is compiled changes."""

    def build() -> tuple[Any, Any]:
        dec, full = compile_instruction(c.args, c.account_names, c.program, c.name, resolver, 8,
                                        f"{c.program}.{c.name}")
        c.decode_args, c.decode_full = dec, full
        return dec, full

    def decode_args(data):
        dec = c.decode_args
        return (build()[0] if dec is decode_args else dec)(data)

    def decode_full(data, accounts):
        full = c.decode_full
        return (build()[1] if full is decode_full else full)(data, accounts)

    decode_args.lazy = decode_full.lazy = build  # compile_all()
    return decode_args, decode_full


def ensure_compiled(c: CompiledInstruction) -> None:
    """Compile `c`'s decoders now if they are still the lazy stand-ins."""
    build = getattr(c.decode_full, "lazy", None)
    if build is not None:
        build()


class CompiledIdl:
    """All instructions of one IDL, keyed by 8-byte discriminator (decoders compiled on first use)."""

    def __init__(self, idl: Idl | dict, program: str | None = None):
        if isinstance(idl, dict):
            idl = load_idl(idl)
        self.idl = idl
        self.program = program or idl.name
        self.address = idl.address
        self.resolver = _Resolver(idl.types)
        self.encoder = _Encoder(self.resolver)
        self.by_disc: dict[bytes, CompiledInstruction] = {}
        self.by_name: dict[str, CompiledInstruction] = {}
        for ix in idl.instructions:
            self.add_instruction(ix)

    def add_instruction(self, ix: IdlInstruction) -> CompiledInstruction:
        names = tuple(a.name for a in ix.accounts)
        c = CompiledInstruction(
            program=self.program,
            name=ix.name,
            discriminator=ix.discriminator,
            account_names=names,
            accounts=ix.accounts,
            args=ix.args,
            decode_args=None,
            decode_full=None,
            _encoder=self.encoder,
        )
        c.decode_args, c.decode_full = _lazy_decoders(c, self.resolver)
        self.by_disc[ix.discriminator] = c
        self.by_name[ix.name] = c
        return c

    def decode(self, data: bytes) -> tuple[CompiledInstruction, dict]:
        """(instruction, args) for raw instruction data; DecodeError when it does not fit."""
        if len(data) < 8:
            raise DecodeError("short_data", f"{len(data)} bytes, no 8-byte discriminator", raw=bytes(data))
        ix = self.by_disc.get(bytes(data[:8]))
        if ix is None:
            raise DecodeError("unknown_discriminator", f"discriminator {bytes(data[:8]).hex()}", raw=bytes(data))
        return ix, ix.decode_args(bytes(data))

    def encode(self, name: str, args: dict) -> bytes:
        return self.by_name[name].encode(args)
