"""Decoding core: Solana transactions in, exact structured instructions out.

Modules (import the one you need; nothing is imported here so `depinflow decode-ix` stays light):
- model      Transaction / Instruction / TokenBalance and the instruction path convention
- txparse    parse_transaction / parse_block / parse_response (base64, json, jsonParsed; legacy, v0)
- registry   ProgramRegistry, DecodedInstruction, default_registry() (schemas/programs + SPL Token)
- anchor_idl Anchor IDL compiler (0.30+ and legacy specs) to generated Borsh decoders/encoders
- spl_token  SPL Token / Token-2022 raw and jsonParsed decoding (decode_parsed_token)
- eras       layout-era boundaries and the slot<->time rule they use
- errors     DecodeError (typed reason + raw bytes), REASONS
- canonical  canonical JSON rendering (full-precision ints, bytes as hex)
- txforms    re-encode a jsonParsed result as json/base64 (tests, benchmark, simulator)
- balances   token balance changes per account and per (owner, mint)
"""
