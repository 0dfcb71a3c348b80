"""Statement allow-list for the read-only query endpoint.

Why a lexer and not a regex: the embedded engine (chdb) executes every statement of a
multi-statement string, and `readonly=1` alone still lets `SELECT ... INTO OUTFILE` write files
and the scalar `file()` function read them (both measured on chdb 4.4). So the endpoint must know
exactly where statements end and which words are real tokens, not text inside a string literal,
a quoted identifier or a comment. This is the second of two locks; the first is the engine's own
`readonly=1` on the connection that runs the query (see `engine.py`).

The lexer follows ClickHouse's token rules closely enough for that decision: `--`, `#` and
`/* */` comments, '...' strings with backslash escapes and doubled quotes, "..." and `...`
quoted identifiers, $tag$ heredocs, parentheses, and `;`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# ClickHouse error codes used in refusals (src/Common/ErrorCodes.cpp)
SYNTAX_ERROR = 62
READONLY = 164

ALLOWED_STATEMENTS = ("SELECT", "WITH", "SHOW", "DESCRIBE", "DESC", "EXISTS", "EXPLAIN")

# Functions and table functions that reach outside the database (files, network, processes,
# other servers). Refused wherever they appear, whatever readonly says.
EXTERNAL_FUNCTIONS = frozenset(
    name.lower()
    for name in (
        "file", "fileCluster", "url", "urlCluster", "s3", "s3Cluster", "gcs", "oss", "cosn",
        "hdfs", "hdfsCluster", "azureBlobStorage", "azureBlobStorageCluster", "remote",
        "remoteSecure", "cluster", "clusterAllReplicas", "mysql", "postgresql", "sqlite",
        "mongodb", "redis", "jdbc", "odbc", "executable", "input", "iceberg", "icebergS3",
        "icebergAzure", "icebergHDFS", "icebergLocal", "deltaLake", "deltaLakeS3", "deltaLakeAzure",
        "deltaLakeLocal", "hudi", "ytsaurus", "arrowFlight", "python",
    )
)


class QueryRefused(Exception):
    """The statement is not allowed; carries the ClickHouse error code to report."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class Token:
    kind: str   # "word", "quoted_ident", "string", "number", "punct", "param"
    text: str
    depth: int  # parenthesis depth at the token


@dataclass(frozen=True)
class Statement:
    """A checked statement: its leading keyword and the FORMAT clause it names, if any."""

    sql: str
    keyword: str
    format: str | None


_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_NUMBER = re.compile(r"[0-9][0-9A-Za-z_.]*(?:[eEpP][+-]?[0-9]+)?")
_HEREDOC = re.compile(r"\$([A-Za-z_][A-Za-z0-9_]*)?\$")


def _skip_quoted(sql: str, i: int, quote: str) -> int:
    """Index just past the closing `quote` of a literal starting at `i` (the opening quote)."""
    n = len(sql)
    j = i + 1
    while j < n:
        c = sql[j]
        if c == "\\":
            j += 2
            continue
        if c == quote:
            if j + 1 < n and sql[j + 1] == quote:  # doubled quote = escaped quote
                j += 2
                continue
            return j + 1
        j += 1
    raise QueryRefused(SYNTAX_ERROR, f"Syntax error: unterminated {quote}-quoted text")


def tokenize(sql: str) -> list[Token]:
    """Split `sql` into tokens; comments and whitespace are dropped."""
    tokens: list[Token] = []
    depth = 0
    i, n = 0, len(sql)
    while i < n:
        c = sql[i]
        if c.isspace():
            i += 1
        elif sql.startswith("--", i) or c == "#":
            end = sql.find("\n", i)
            i = n if end < 0 else end + 1
        elif sql.startswith("/*", i):
            end = sql.find("*/", i + 2)
            if end < 0:
                raise QueryRefused(SYNTAX_ERROR, "Syntax error: unterminated /* comment")
            i = end + 2
        elif c == "'":
            j = _skip_quoted(sql, i, "'")
            tokens.append(Token("string", sql[i:j], depth))
            i = j
        elif c in "\"`":
            j = _skip_quoted(sql, i, c)
            tokens.append(Token("quoted_ident", sql[i + 1:j - 1], depth))
            i = j
        elif c == "$" and (m := _HEREDOC.match(sql, i)):
            tag = m.group(0)
            end = sql.find(tag, m.end())
            if end < 0:
                raise QueryRefused(SYNTAX_ERROR, "Syntax error: unterminated heredoc")
            tokens.append(Token("string", sql[i:end + len(tag)], depth))
            i = end + len(tag)
        elif m := _WORD.match(sql, i):
            tokens.append(Token("word", m.group(0), depth))
            i = m.end()
        elif m := _NUMBER.match(sql, i):
            tokens.append(Token("number", m.group(0), depth))
            i = m.end()
        else:
            if c == "(":
                tokens.append(Token("punct", c, depth))
                depth += 1
            elif c == ")":
                depth = max(0, depth - 1)
                tokens.append(Token("punct", c, depth))
            else:
                tokens.append(Token("punct", c, depth))
            i += 1
    return tokens


def split_statements(tokens: list[Token]) -> list[list[Token]]:
    """Group tokens by top-level `;`; empty statements (a trailing `;`) are dropped."""
    statements: list[list[Token]] = [[]]
    for tok in tokens:
        if tok.kind == "punct" and tok.text == ";" and tok.depth == 0:
            statements.append([])
        else:
            statements[-1].append(tok)
    return [s for s in statements if s]


def _leading_keyword(tokens: list[Token]) -> str:
    for tok in tokens:
        if tok.kind == "punct" and tok.text == "(":
            continue  # `(SELECT 1) UNION ALL (SELECT 2)`
        return tok.text.upper() if tok.kind == "word" else tok.text
    return ""


def _format_clause(tokens: list[Token]) -> str | None:
    """The output format named by the last top-level `FORMAT <name>` (not the format() function)."""
    found = None
    for k, tok in enumerate(tokens[:-1]):
        nxt = tokens[k + 1]
        if (tok.kind == "word" and tok.text.upper() == "FORMAT" and tok.depth == 0
                and nxt.kind in ("word", "quoted_ident")
                and not (k + 2 < len(tokens) and tokens[k + 2].text == "(")):
            found = nxt.text
    return found


def _check_tokens(tokens: list[Token]) -> None:
    for k, tok in enumerate(tokens):
        if tok.kind not in ("word", "quoted_ident"):
            continue
        word = tok.text.upper()
        nxt = tokens[k + 1] if k + 1 < len(tokens) else None
        if word == "INTO" and nxt is not None and nxt.kind == "word" and nxt.text.upper() == "OUTFILE":
            raise QueryRefused(READONLY, "Cannot execute query in readonly mode: INTO OUTFILE writes a file")
        if nxt is not None and nxt.text == "(" and tok.text.lower() in EXTERNAL_FUNCTIONS:
            raise QueryRefused(
                READONLY,
                f"Cannot execute query in readonly mode: function {tok.text}() reaches outside the database",
            )


def check(sql: str) -> Statement:
    """Accept exactly one read-only statement or raise QueryRefused with a ClickHouse error code."""
    statements = split_statements(tokenize(sql))
    if not statements:
        raise QueryRefused(SYNTAX_ERROR, "Empty query")
    if len(statements) > 1:
        raise QueryRefused(SYNTAX_ERROR, "Multi-statements are not allowed")
    tokens = statements[0]
    keyword = _leading_keyword(tokens)
    if keyword not in ALLOWED_STATEMENTS:
        raise QueryRefused(
            READONLY,
            f"Cannot execute query in readonly mode: depinflow's SQL access is read-only and runs only "
            f"{', '.join(ALLOWED_STATEMENTS)} statements, not {keyword or 'this statement'}",
        )
    _check_tokens(tokens)
    return Statement(sql=sql, keyword=keyword, format=_format_clause(tokens))
