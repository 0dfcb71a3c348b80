"""Regenerate the project's program specs (schemas/programs/*.json) from the reference IDLs.

This is a maintainer tool, run by hand when the reference material changes:

    DEPINFLOW_REFERENCE=/work/shared/reference .venv/bin/python -m schemas.programs._build

The indexer never runs it and never reads the reference folder: it loads the JSON this
script writes. Each spec is an Anchor-0.30-style instruction list (snake_case names,
flattened account groups "group.name", hex discriminators) of ONE program:

* the union of every instruction found in that program's IDLs, newest IDL first
  (helium-wallet-rs > anchor030 > legacy > legacy-pre-hip138 > helium-anchor-gen-history,
  newest commit first), so removed-but-historic instructions (issue_hst_pool_v0 ...) decode;
* SOURCE_ONLY: instructions that exist on chain but in no published IDL (programs.md,
  idls/README.md), written by hand from the program source;
* ERAS: older account layouts selected by slot (indexer.decode.eras boundaries), taken
  from the newest IDL published before the boundary.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from indexer.decode.anchor_idl import instruction_discriminator, snake_case
from indexer.decode.eras import BOUNDARIES

OUT = Path(__file__).resolve().parent
REF = Path(os.environ.get("DEPINFLOW_REFERENCE", "/work/shared/reference")) / "helium" / "idls"

# program name -> (address, IDL file stem or None when source-only)
PROGRAMS: dict[str, tuple[str, str | None]] = {
    "data_credits": ("credMBJhYFzfn7NxBMdU4aUqFggAjgztaCcv2Fo6fPT", "data_credits"),
    "helium_sub_daos": ("hdaoVTCqhfHHo75XdAMxBKdUqvq1i5bF23sisBqVgGR", "helium_sub_daos"),
    "lazy_distributor": ("1azyuavdMyvsivtNxPoz6SucD18eDHeXzFCUPq5XU7w", "lazy_distributor"),
    "rewards_oracle": ("rorcfdX4h9m9swCKgcypaHJ8NGYVANBpmV9EHn3cYrF", "rewards_oracle"),
    "helium_entity_manager": ("hemjuPXBpNvggtaUnN1MwT3wrdhttKEfosTcc2P9Pg8", "helium_entity_manager"),
    "mobile_entity_manager": ("memMa1HG4odAFmUbGWfPwS1WWfK95k99F2YTkGvyxZr", "mobile_entity_manager"),
    "hexboosting": ("hexbnKYoA2GercNNhHUCCfrTRWrHjT6ujKPXTa5NPqJ", "hexboosting"),
    "treasury_management": ("treaf4wWBBty3fHdyBpo35Mz84M8k3heKXmjmi9vFt5", "treasury_management"),
    "no_emit": ("noEmmgLmQdk6DLiPV8CSwQv3qQDyGEhz9m5A4zhtByv", "no_emit"),
    "circuit_breaker": ("circAbx64bbsscPbQzZAUvuXpHqrCe6fLMzc2uKXz9g", "circuit_breaker"),
    "fanout": ("fanqeMu3fw8R4LwKNbahPtYXJsyLL6NXyfe2BqzhfB6", "fanout"),
    "voter_stake_registry": ("hvsrNC3NKbcryqDs2DocYHZ9yPKEVzdSjQG6RVtK1s8", "voter_stake_registry"),
    "welcome_pack": ("we1cGnTxTkDP9Sk49dw1d3T7ik7V2NfnY4qDGCDHXfC", "welcome_pack"),
    "hpl_crons": ("hcrLPFgFUY6sCUKzqLWxXx5bntDiDCrAZVcrXfx9AHu", "hpl_crons"),
    "lazy_transactions": ("1atrmQs3eq1N2FEYWu6tyTXbCjP4uQwExpjtnhXtS8h", "lazy_transactions"),
    "price_oracle": ("porcSnvH9pvcYPmQ65Y8qcZSRxQBiBBQX7UV5nmBegy", "price_oracle"),
    "iot_routing_manager": ("irtjLnjCMmyowq2m3KWqpuFB3M9gdNA9A4t4d6VWmzB", "iot_routing_manager__9285df5"),
    "mini_fanout": ("mfanLprNnaiP4RX9Zz1BMcDosYHCqnG24H1fMEbi9Gn", None),
    "dc_auto_top": ("topqqzQZroCyRrgyM5zVq6xkFDVnfF13iixSjajydgU", None),
    "tuktuk_dca": ("tdcam4m5U74pEZQrsQ7fVAav4AUXXc6z8fkhvExfRVN", None),
    "tuktuk": ("tuktukUrfhXT6ZT77QTU8RQtvgL967uRuVagWF57zVA", None),
}


def _acc(name: str, w: bool = False, s: bool = False, opt: bool = False) -> dict:
    a: dict = {"name": name}
    if w:
        a["writable"] = True
    if s:
        a["signer"] = True
    if opt:
        a["optional"] = True
    return a


def _u64_args(type_name: str, field: str = "amount") -> tuple[list, list]:
    return ([{"name": "args", "type": {"defined": {"name": type_name}}}],
            [{"name": type_name, "type": {"kind": "struct", "fields": [{"name": field, "type": "u64"}]}}])


# Instructions on chain but in no published IDL. Source: programs.md / idls/README.md facts
# (accounts and args), HPL program source at HEAD for account order.
def _source_only() -> dict[str, list[dict]]:
    burn_args, burn_types = _u64_args("BurnArgsV0")
    claim_args, claim_types = _u64_args("ClaimRewardsArgsV0", "epoch")
    nft_args = [{"name": "args", "type": {"defined": {"name": "IssueRewardsNftArgsV0"}}}]
    nft_type = {"name": "IssueRewardsNftArgsV0",
                "type": {"kind": "struct", "fields": [{"name": "metadata_url", "type": {"option": "string"}}]}}
    return {
        "circuit_breaker": [{
            "name": "burn_v0",
            "source": "programs.md (circuit_breaker.burn_v0, added 2025-05-05, in no public IDL)",
            "accounts": [_acc("from", w=True), _acc("owner", s=True), _acc("mint", w=True),
                         _acc("circuit_breaker", w=True), _acc("token_program")],
            "args": burn_args, "types": burn_types,
        }],
        "helium_sub_daos": [{
            "name": "temp_claim_buggy_rewards",
            "source": "programs.md (source@HEAD only; args ClaimRewardsArgsV0 {epoch: u64}); accounts as claim_rewards_v1",
            "accounts": None,  # filled from claim_rewards_v1 below
            "args": claim_args, "types": claim_types,
        }],
        "mobile_entity_manager": [
            {"name": "issue_service_rewards_nft_v0",
             "source": "programs.md (source@HEAD only; accounts not published)",
             "accounts": [], "args": nft_args, "types": [nft_type]},
            {"name": "issue_mapping_rewards_nft_v0",
             "source": "programs.md (source@HEAD only; accounts not published)",
             "accounts": [], "args": nft_args, "types": [nft_type]},
        ],
        "mini_fanout": [{
            "name": "distribute_v0",
            "source": "HPL programs/mini-fanout/src/instructions/distribute_v0.rs (DistributeV0); "
                      "remaining accounts = shareholder token accounts, then the next task",
            "accounts": [_acc("mini_fanout", w=True), _acc("task_queue", w=True),
                         _acc("token_account", w=True), _acc("token_program")],
            "args": [], "types": [],
        }],
        "dc_auto_top": [{
            "name": "top_off_dc_v0",
            "source": "HPL programs/dc-auto-top/src/instructions/top_off_dc_v0.rs (TopOffDcV0); "
                      "CPIs data_credits.mint_data_credits_v0 {dc_amount} + delegate_data_credits_v0",
            "accounts": [_acc("auto_top_off", w=True), _acc("task_queue", w=True),
                         _acc("delegated_data_credits", w=True), _acc("data_credits"), _acc("dc_mint", w=True),
                         _acc("hnt_mint", w=True), _acc("dao"), _acc("sub_dao"), _acc("from_account", w=True),
                         _acc("from_hnt_account", w=True), _acc("hnt_account", w=True), _acc("hnt_price_oracle"),
                         _acc("escrow_account", w=True), _acc("circuit_breaker", w=True),
                         _acc("associated_token_program"), _acc("token_program"), _acc("system_program"),
                         _acc("circuit_breaker_program"), _acc("data_credits_program"),
                         _acc("instruction_sysvar")],
            "args": [], "types": [],
        }, {
            "name": "top_off_hnt_v0",
            "source": "HPL programs/dc-auto-top/src/instructions/top_off_hnt_v0.rs (TopOffHntV0); "
                      "may CPI tuktuk_dca.initialize_dca_nested_v0 (schedules a DCA swap into HNT)",
            "accounts": [_acc("auto_top_off", w=True), _acc("task_queue", w=True), _acc("hnt_account", w=True),
                         _acc("hnt_mint"), _acc("dca_mint"), _acc("dca_mint_account", w=True),
                         _acc("dca_input_price_oracle"), _acc("hnt_price_oracle"), _acc("dca", w=True),
                         _acc("dca_input_account", w=True), _acc("dca_destination_token_account", w=True),
                         _acc("associated_token_program"), _acc("token_program"), _acc("system_program"),
                         _acc("tuktuk_dca_program"), _acc("instruction_sysvar"),
                         _acc("dca_custom_signer", w=True, s=True)],
            "args": [], "types": [],
        }],
        "tuktuk_dca": [
            {"name": "lend_v0",
             "source": "HPL programs/tuktuk-dca/src/instructions/lend_v0.rs (LendV0): lends the swap input "
                       "(spl-token transfer input_account -> lend_destination)",
             "accounts": [_acc("dca", w=True), _acc("input_account", w=True),
                          _acc("destination_token_account", w=True), _acc("lend_destination", w=True),
                          _acc("next_task", w=True), _acc("token_program"), _acc("instruction_sysvar")],
             "args": [], "types": []},
            {"name": "check_repay_v0",
             "source": "HPL programs/tuktuk-dca/src/instructions/check_repay_v0.rs (CheckRepayV0); "
                       "args CheckRepayArgsV0 {} (empty struct: no bytes)",
             "accounts": [_acc("dca", w=True), _acc("next_task", w=True), _acc("input_account", w=True),
                          _acc("rent_refund", w=True), _acc("destination_token_account", w=True),
                          _acc("input_price_oracle"), _acc("output_price_oracle"), _acc("token_program")],
             "args": [{"name": "args", "type": {"defined": {"name": "CheckRepayArgsV0"}}}],
             "types": [{"name": "CheckRepayArgsV0", "type": {"kind": "struct", "fields": []}}]},
        ],
        "tuktuk": [{
            "name": "run_task_v0",
            "source": "helium/tuktuk programs/tuktuk/src/instructions/run_task_v0.rs (RunTaskV0); "
                      "args RunTaskArgsV0 {free_task_ids: Vec<u16>} flattened (wire-identical) as in the "
                      "reference fixtures' decoded form; remaining accounts = the task's accounts",
            "accounts": [_acc("crank_turner", w=True, s=True), _acc("rent_refund", w=True),
                         _acc("task_queue", w=True), _acc("task", w=True), _acc("system_program"),
                         _acc("sysvar_instructions")],
            "args": [{"name": "free_task_ids", "type": {"vec": "u16"}}], "types": [],
        }],
    }


# (program, instruction) -> list of eras: (label, from boundary or None, until boundary or None,
#   layout source: IDL path relative to idls/, extra accounts appended)
ERAS = {
    ("helium_sub_daos", "issue_rewards_v0"): [
        ("pre_hip138", None, "hip138", "legacy-pre-hip138/helium_sub_daos.json", []),
        ("hip138", "hip138", "hip149", "helium-wallet-rs/helium_sub_daos.json", []),
    ],
    ("helium_sub_daos", "calculate_utility_score_v0"): [
        ("pre_hsd_0_1_0", None, "hsd_0_1_0", "helium-anchor-gen-history/helium_sub_daos__2023-08-24__0d2dede.json", []),
        ("hsd_0_1_0", "hsd_0_1_0", "hip149", "helium-wallet-rs/helium_sub_daos.json", []),
    ],
    ("helium_entity_manager", "onboard_mobile_hotspot_v0"): [
        ("pre_hip96", None, "hip96_mobile_onboarding",
         "helium-anchor-gen-history/helium_entity_manager__2023-08-24__0d2dede.json", []),
    ],
    ("hexboosting", "boost_v0"): [
        ("mobile_payment", None, "hexboost_dc", "helium-anchor-gen-history/hexboosting__2024-08-02__a0e363d.json", []),
    ],
}
# HEAD (HIP-149) layouts = newest IDL + optional accounts appended (programs.md, layout_history.txt)
HEAD_APPEND = {
    ("helium_sub_daos", "issue_rewards_v0"): [_acc("supplement_vault", w=True, opt=True),
                                             _acc("council_vault", w=True, opt=True)],
    ("helium_sub_daos", "calculate_utility_score_v0"): [_acc("hnt_price_oracle", opt=True)],
}


# --------------------------------------------------------------------------- conversion


def _conv_type(t, legacy: bool):
    """IDL type JSON -> 0.30 form (publicKey -> pubkey, defined: {name})."""
    if isinstance(t, str):
        return "pubkey" if t == "publicKey" else t
    (k, v), = t.items()
    if k == "defined":
        return {"defined": {"name": v} if isinstance(v, str) else v}
    if k == "array":
        return {"array": [_conv_type(v[0], legacy), v[1]]}
    if k in ("option", "coption", "vec"):
        return {k: _conv_type(v, legacy)}
    return t


def _conv_fields(fields, legacy: bool):
    out = []
    for f in fields:
        if isinstance(f, dict) and "name" in f:
            out.append({"name": snake_case(f["name"]) if legacy else f["name"], "type": _conv_type(f["type"], legacy)})
        else:
            out.append(_conv_type(f, legacy))
    return out


def _conv_typedef(t: dict, legacy: bool) -> dict:
    ty = t["type"]
    if ty["kind"] == "struct":
        body = {"kind": "struct", "fields": _conv_fields(ty.get("fields", []) or [], legacy)}
    elif ty["kind"] == "enum":
        vs = []
        for v in ty["variants"]:
            nv = {"name": v["name"]}
            if v.get("fields"):
                nv["fields"] = _conv_fields(v["fields"], legacy)
            vs.append(nv)
        body = {"kind": "enum", "variants": vs}
    elif ty["kind"] == "type":
        body = {"kind": "type", "alias": _conv_type(ty["alias"], legacy)}
    else:
        body = {"kind": "type", "alias": _conv_type(ty["value"], legacy)}
    out = {"name": t["name"], "type": body}
    if t.get("generics"):
        out["generics"] = t["generics"]
    return out


def _flat_accounts(items, legacy: bool, prefix: str = "") -> list[dict]:
    out = []
    for a in items:
        name = prefix + (snake_case(a["name"]) if legacy else a["name"])
        if "accounts" in a:
            out.extend(_flat_accounts(a["accounts"], legacy, name + "."))
            continue
        out.append(_acc(name, bool(a.get("writable", a.get("isMut"))), bool(a.get("signer", a.get("isSigner"))),
                        bool(a.get("optional", a.get("isOptional")))))
    return out


def _type_refs(t, acc: set) -> None:
    if isinstance(t, str):
        return
    if isinstance(t, dict):
        if "defined" in t:
            d = t["defined"]
            acc.add(d if isinstance(d, str) else d["name"])
            for g in (d.get("generics", []) if isinstance(d, dict) else []):
                if g.get("kind") == "type":
                    _type_refs(g["type"], acc)
        for k in ("option", "coption", "vec"):
            if k in t:
                _type_refs(t[k], acc)
        if "array" in t:
            _type_refs(t["array"][0], acc)


def _reachable(args: list, types: dict[str, dict]) -> list[dict]:
    """Type definitions reachable from instruction args (in first-reference order)."""
    seen: list[str] = []
    todo = set()
    for a in args:
        _type_refs(a["type"], todo)
    while todo:
        n = sorted(todo)[0]
        todo.discard(n)
        if n in seen or n not in types:
            continue
        seen.append(n)
        ty = types[n]["type"]
        fields = ty.get("fields", []) if ty["kind"] == "struct" else (
            [f for v in ty.get("variants", []) for f in (v.get("fields") or [])] if ty["kind"] == "enum"
            else [ty.get("alias")])
        for f in fields:
            _type_refs(f["type"] if isinstance(f, dict) and "type" in f else f, todo)
    return [types[n] for n in sorted(seen)]


def _load(path: Path) -> tuple[dict, bool]:
    d = json.loads(path.read_text())
    legacy = "address" not in d and "spec" not in (d.get("metadata") or {})
    return d, legacy


def _instructions(d: dict, legacy: bool) -> list[tuple[dict, dict[str, dict]]]:
    types = {t["name"]: _conv_typedef(t, legacy) for t in d.get("types", []) or []}
    out = []
    for ix in d["instructions"]:
        name = snake_case(ix["name"]) if legacy else ix["name"]
        args = [{"name": snake_case(a["name"]) if legacy else a["name"], "type": _conv_type(a["type"], legacy)}
                for a in ix.get("args", []) or []]
        disc = bytes(ix["discriminator"]).hex() if "discriminator" in ix else instruction_discriminator(name).hex()
        out.append(({"name": name, "discriminator": disc, "accounts": _flat_accounts(ix["accounts"], legacy),
                     "args": args}, types))
    return out


def _history_files(stem: str) -> list[Path]:
    files = sorted((REF / "helium-anchor-gen-history").glob(f"{stem}__*.json"),
                   key=lambda p: p.name.split("__")[1], reverse=True)
    return files


def _sources(stem: str) -> list[Path]:
    cands = [REF / "helium-wallet-rs" / f"{stem}.json", REF / "anchor030" / f"{stem}.json",
             REF / "legacy" / f"{stem}.json", REF / "legacy-pre-hip138" / f"{stem}.json"]
    return [p for p in cands if p.exists()] + _history_files(stem)


def _version(path: Path) -> str | None:
    d = json.loads(path.read_text())
    return (d.get("metadata") or {}).get("version") or d.get("version")


def build_program(name: str, address: str, stem: str | None) -> dict:
    instructions: dict[str, dict] = {}
    types: dict[str, dict] = {}
    provenance: list[str] = []
    skipped: list[str] = []
    version = None
    if stem:
        for i, path in enumerate(_sources(stem)):
            d, legacy = _load(path)
            rel = str(path.relative_to(REF.parent.parent))
            added = []
            for ix, tdefs in _instructions(d, legacy):
                if ix["name"] in instructions:
                    continue
                needed = _reachable(ix["args"], tdefs)
                clash = [t["name"] for t in needed if t["name"] in types and types[t["name"]] != t]
                if clash:  # an older, incompatible type of the same name: skip this historic instruction
                    skipped.append(f"{ix['name']} ({rel}: type {clash[0]} differs from the newer one)")
                    continue
                for t in needed:
                    types[t["name"]] = t
                ix["source"] = rel
                instructions[ix["name"]] = ix
                added.append(ix["name"])
            if i == 0:
                version = _version(path)
            if added:
                provenance.append(f"{rel}: {len(added)} instruction(s)")
    for extra in _source_only().get(name, []):
        extra = dict(extra)
        if extra["accounts"] is None and name == "helium_sub_daos":
            extra["accounts"] = instructions["claim_rewards_v1"]["accounts"]
        for t in extra.pop("types"):
            types[t["name"]] = t
        extra["discriminator"] = instruction_discriminator(extra["name"]).hex()
        instructions[extra["name"]] = {k: extra[k] for k in ("name", "discriminator", "accounts", "args", "source")}
        provenance.append(f"source-only: {extra['name']}")
    for (prog, ixname), accs in HEAD_APPEND.items():
        if prog == name:
            ix = instructions[ixname]
            ix["accounts"] = ix["accounts"] + accs
            ix["source"] += " + HIP-149 optional accounts from HPL source at HEAD (layout_history.txt)"
    eras = []
    for (prog, ixname), defs in ERAS.items():
        if prog != name:
            continue
        for label, frm, until, rel, extra_accs in defs:
            d, legacy = _load(REF / rel)
            ix, tdefs = next((ix, t) for ix, t in _instructions(d, legacy) if ix["name"] == ixname)
            ix["accounts"] = ix["accounts"] + extra_accs
            ix["source"] = "helium/idls/" + rel
            era = {
                "label": f"{ixname}:{label}",
                "from_slot": BOUNDARIES[frm].slot if frm else 0,
                "until_slot": BOUNDARIES[until].slot if until else None,
                "from_boundary": frm, "until_boundary": until,
                "instructions": [ix],
                "types": _reachable(ix["args"], tdefs),
            }
            eras.append(era)
    return {
        "spec": "depinflow-program-spec/1",
        "name": name,
        "address": address,
        "version": version,
        "provenance": provenance,
        "instructions": sorted(instructions.values(), key=lambda i: i["name"]),
        "types": sorted(types.values(), key=lambda t: t["name"]),
        "eras": eras,
        "not_included": sorted(set(skipped)),
    }


def _dump(obj) -> str:
    """Stable, indented JSON so diffs stay reviewable."""
    return json.dumps(obj, indent=1) + "\n"


def main() -> None:
    for name, (address, stem) in PROGRAMS.items():
        spec = build_program(name, address, stem)
        (OUT / f"{name}.json").write_text(_dump(spec))
        print(f"{name}: {len(spec['instructions'])} instructions, {len(spec['types'])} types, "
              f"{len(spec['eras'])} era layers")


if __name__ == "__main__":
    main()
