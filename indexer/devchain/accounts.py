"""Program ids, mints and well-known accounts the simulator uses.

WHY a module of its own: the simulator's ground truth must not be computed by the classifier,
so it keeps its own copy of the public facts (mainnet addresses from the Helium program library
and the Render Foundation's published wallets). Wherever a real address is public we use it, so
that the same classifier configuration works on simulated and on real data; everything else is a
deterministic key derived from the ledger seed (`indexer.devchain.keys`).
"""

from __future__ import annotations

# --- Solana native / SPL ---------------------------------------------------------------------
SYSTEM_PROGRAM = "11111111111111111111111111111111"
TOKEN_PROGRAM = "TokenkegQfeZyiNwAJbNbGKPFXCWuBvf9Ss623VQ5DA"
TOKEN_2022_PROGRAM = "TokenzQdBNbLqP5VEhdkAS6EPFLC1PHnBqCXEpPxuEb"
ATA_PROGRAM = "ATokenGPvbdGVxr1b2hvZbsiqW5xWH25efTNsLJA8knL"
COMPUTE_BUDGET_PROGRAM = "ComputeBudget111111111111111111111111111111"
MEMO_PROGRAM = "MemoSq4gqABAXKb96qnH8TysNcWxMyWCqXgDLGmfcHr"
MEMO_PROGRAM_V1 = "Memo1UhkJRfHyvLMcVucJwxXeuD728EqVDDwQDxFMNo"
ED25519_PROGRAM = "Ed25519SigVerify111111111111111111111111111"
SYSVAR_INSTRUCTIONS = "Sysvar1nstructions1111111111111111111111111"
SYSVAR_CLOCK = "SysvarC1ock11111111111111111111111111111111"
SYSVAR_RENT = "SysvarRent111111111111111111111111111111111"
# An unrelated program (Jupiter aggregator v6) used as noise that no Helium/Render rule matches.
UNRELATED_PROGRAM = "JUP6LkbZbjS1jKKwapdHNy74zcZ3tLUZoi5QNyVTaV4"

# --- Helium programs ---------------------------------------------------------------------------
DATA_CREDITS = "credMBJhYFzfn7NxBMdU4aUqFggAjgztaCcv2Fo6fPT"
HELIUM_SUB_DAOS = "hdaoVTCqhfHHo75XdAMxBKdUqvq1i5bF23sisBqVgGR"
LAZY_DISTRIBUTOR = "1azyuavdMyvsivtNxPoz6SucD18eDHeXzFCUPq5XU7w"
REWARDS_ORACLE = "rorcfdX4h9m9swCKgcypaHJ8NGYVANBpmV9EHn3cYrF"
HELIUM_ENTITY_MANAGER = "hemjuPXBpNvggtaUnN1MwT3wrdhttKEfosTcc2P9Pg8"
MOBILE_ENTITY_MANAGER = "memMa1HG4odAFmUbGWfPwS1WWfK95k99F2YTkGvyxZr"
HEXBOOSTING = "hexbnKYoA2GercNNhHUCCfrTRWrHjT6ujKPXTa5NPqJ"
TREASURY_MANAGEMENT = "treaf4wWBBty3fHdyBpo35Mz84M8k3heKXmjmi9vFt5"
NO_EMIT = "noEmmgLmQdk6DLiPV8CSwQv3qQDyGEhz9m5A4zhtByv"
CIRCUIT_BREAKER = "circAbx64bbsscPbQzZAUvuXpHqrCe6fLMzc2uKXz9g"
FANOUT = "fanqeMu3fw8R4LwKNbahPtYXJsyLL6NXyfe2BqzhfB6"
VOTER_STAKE_REGISTRY = "hvsrNC3NKbcryqDs2DocYHZ9yPKEVzdSjQG6RVtK1s8"
MINI_FANOUT = "mfanLprNnaiP4RX9Zz1BMcDosYHCqnG24H1fMEbi9Gn"
DC_AUTO_TOP = "topqqzQZroCyRrgyM5zVq6xkFDVnfF13iixSjajydgU"
HPL_CRONS = "hcrLPFgFUY6sCUKzqLWxXx5bntDiDCrAZVcrXfx9AHu"
TUKTUK = "tuktukUrfhXT6ZT77QTU8RQtvgL967uRuVagWF57zVA"
TUKTUK_CRANK_SIGNER = "8m6iyXwcu8obaXdqKwzBqHE5HM2tRZZfSXV5qNALiPk4"
HELIUM_LUT = "43eY9L2spbM2b1MPDFFBStUiFGt29ziZ1nc1xbpzsfVt"

# --- Helium mints (decimals) -----------------------------------------------------------------
HNT = "hntyVP6YFm1Hg25TN9WGLqM12b8TQmcknKrdu1oxWux"
IOT = "iotEVVZLEywoTn1QdwNPddxPWszn3zFhEot3MfL9fns"
MOBILE = "mb1eu7TzEc71KxDpsmsKoucSSuuoGLv1drys1oP2jh6"
DC = "dcuc8Amr83Wz27ZkQ2K9NS6r8zRpf1J6cvArEBDZDmm"
DECIMALS = {HNT: 8, IOT: 6, MOBILE: 6, DC: 0}

# --- Helium key accounts (mainnet) -------------------------------------------------------------
DAO = "BQ3MCuTT5zVBhNfQ4SjMh3NPVhFy73MPV8rjfq5d1zie"
IOT_SUB_DAO = "39Lw1RH6zt8AJvKn3BTxmUDofzduCM2J3kSaGDZ8L7Sk"
MOBILE_SUB_DAO = "Gm9xDCJawDEKDrrQW6haw94gABaYzQwCq4ZQU8h8bd22"
DATA_CREDITS_ACCOUNT = "D1LbvrJQ9K2WbGPMbM3Fnrf5PSsDH1TDpjqJdHuvs81n"
DC_ACCOUNT_PAYER = "AZ93VxpBzrYT5pmMTNiPm6hYD8Fk9gwjE7cNuKgyBAqu"
HNT_LAZY_DISTRIBUTOR = "6gcZXjHgKUBMedc2V1aZLFPwh8M1rPVRw7kpo2KqNrFq"
DAO_REWARDS_ESCROW = "BDs6RPnpJNzmuMNv1z8cDh9cxKFgCxEVDaCfoHZWyvqJ"
DAO_REWARDS_ESCROW_BREAKER = "73zsmmqCXjvHHhNSib26Y8p3jYiH3UUuyKv71RJDnctW"
IOT_LAZY_DISTRIBUTOR = "37eiz5KzYwpAdLgrSh8GT1isKiJ6hcE5ET86dqaoCugL"
IOT_REWARDS_ESCROW = "4po3YMfioHkNP4mL4N46UWJvBoQDS2HFjzGm1ifrUWuZ"
MOBILE_LAZY_DISTRIBUTOR = "GZtTp3AUo2AHdQe9BCJ6gXR9KqfruRvHnZ4QiJUALMcz"
MOBILE_REWARDS_ESCROW = "GD37bnQdGkDsjNqnVGr9qWTnQJSKMHbsiXX9tXLMUcaL"
DAO_DELEGATOR_POOL = "A7AjQhocZZvQXQJ5ducRF7gkconjNZfMNCjKguShoe8G"
DAO_DELEGATOR_POOL_BREAKER = "GjumWQJZUcUwYdMkHDPDCRFhA7AQmb1kLapqLmDAYTVY"
HNT_MINT_BREAKER = "3QqEkX1juz4bW8mCQBMJLWjEpHqYawvbEUvpc6iwYom3"
IOT_MINT_BREAKER = "FPJjfrmwePzQdrhXELwwzQWLKfEaabrNVC7eqzPdqcB4"
MOBILE_MINT_BREAKER = "3xGSXWtUTpZKEcM68wYSCaBRNPs8kxNeTEdi5HsDVKxh"
DC_MINT_BREAKER = "sZgXQVqAv9atfSuwNJnHgSf4tqsos6kRajANmBaBmSx"
NO_EMIT_WALLET = "J2PeDhhZtmYHfnxPbfgttxYg9XAvv98Zo3RhfqiLgeSv"
NOT_EMITTED_COUNTERS = {
    HNT: "8edcfvSnpSgLWboEDLih6KcrRqEkGLACNLPpHEPXEn4S",
    IOT: "BZ2M4NZgBvapmLKut8Uht2gFHHbtZi2bxrWQvgTPHb3Z",
    MOBILE: "9SUhqNxHV6ZbmZNnBZkob2UpyCC8fPKKwuMcpLibcAGm",
}
TREASURY_MANAGEMENT_ACCOUNTS = {
    IOT: "DVCdxUwTyuM43rxHrjAtrtkuyyZYvxqZ4L1zKVssBPGL",
    MOBILE: "Aon7sbdvCGuXQJW8BEiDDWzsSvoycTL9v3L1S4GWhxNK",
}
HNT_PRICE_FEED = "He5mhwVQQNvjFxqjEjFDb7enJWFwFJ7Rq7zknqBz89A5"
SUPPLEMENT_VAULT = "AGPDcgpXan5RB2Y9usHvdJmmJHpyyYqcQm8KouRkK6f4"
COUNCIL_MINI_FANOUT = "2pCpQYrUmQor9igsF4cY7tkmd3jBQzHFEB75gtpjdWA2"

SUB_DAOS = {IOT: IOT_SUB_DAO, MOBILE: MOBILE_SUB_DAO}
MINT_BREAKERS = {HNT: HNT_MINT_BREAKER, IOT: IOT_MINT_BREAKER, MOBILE: MOBILE_MINT_BREAKER, DC: DC_MINT_BREAKER}

# --- Helium emission constants (base units) ---------------------------------------------------
HIP138_MOBILE_TOPUP = 1_223_628_691_983          # 12,236.28691983 HNT per MOBILE pass, until 2025-08-01
SUPPLEMENT_PER_PASS = 98_000 * 10**8             # HIP-149, from 2026-08-06
COUNCIL_SHARE_BPS = 125                          # 1.25 % of the supplement to the council fanout
DELEGATOR_PERCENT = 6                            # post-HIP-138 delegator share of each pass

# --- Render --------------------------------------------------------------------------------------
RENDER = "rndrizKT3MK1iimdxRdWabcF7Zg7AR5T4nud4EkHBof"
DECIMALS[RENDER] = 8
RENDER_BURN_WALLET = "rbrnm7nPhfhBxPSh8qhRFrhB5MLnJGMNoyNQPvSi7vq"
RENDER_BURN_ATA = "GqE7wcwRw86xxMz4pNq5cV3BkM64h3bvajQRQbigYqTX"
RENDER_TREASURY_ACCOUNT = "AyzyikXL9kKs2cwyHsWLEe22aRYAvhbWwFn9TKrgmMx"
WORMHOLE_CORE = "worm2ZoG2kUd4vFXhvjh93UUH596ayRfgQ2MgjNMTth"
WORMHOLE_TOKEN_BRIDGE = "wormDTUJ6AWPNvk59vGQbDvGJmqbDTdgWgAqcLBCgUb"

SYMBOLS = {HNT: "HNT", IOT: "IOT", MOBILE: "MOBILE", DC: "DC", RENDER: "RENDER"}

# A mint no rule watches (noise transfers must produce no events).
USDC = "EPjFWdd5AufqSSqeM2qN1xzybapC8G4wEGGkZwyTDt1v"
DECIMALS[USDC] = 6
SYMBOLS[USDC] = "USDC"
