"""The statement allow-list: one read-only statement, tokens not text."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipelines.query.sqlguard import READONLY, SYNTAX_ERROR, QueryRefused, check, split_statements, tokenize


@pytest.mark.parametrize("sql, keyword", [
    ("SELECT 1", "SELECT"),
    ("  select 1 ;  ", "SELECT"),
    ("WITH x AS (SELECT 1) SELECT * FROM x", "WITH"),
    ("(SELECT 1) UNION ALL (SELECT 2)", "SELECT"),
    ("SHOW TABLES FROM depinflow", "SHOW"),
    ("DESCRIBE TABLE depinflow.usage_fees", "DESCRIBE"),
    ("DESC depinflow.usage_fees", "DESC"),
    ("EXISTS TABLE depinflow.usage_fees", "EXISTS"),
    ("EXPLAIN SELECT 1", "EXPLAIN"),
    ("-- a comment; DROP TABLE x\nSELECT 1", "SELECT"),
    ("/* INSERT; */ SELECT ';DROP TABLE x' AS s", "SELECT"),
    ("SELECT 1 # ; DROP TABLE x", "SELECT"),
    ("SELECT 'it''s; fine', \"we;ird\", `a;b` FROM t", "SELECT"),
    ("SELECT 'back\\'slash; x'", "SELECT"),
    ("SELECT $$heredoc; DROP$$", "SELECT"),
    ("SELECT $tag$ ; $tag$", "SELECT"),
])
def test_read_statements_are_accepted(sql, keyword):
    assert check(sql).keyword == keyword


@pytest.mark.parametrize("sql, word", [
    ("INSERT INTO t VALUES (1)", "INSERT"),
    ("insert into t select 1", "INSERT"),
    ("CREATE TABLE t (x UInt8) ENGINE = Memory", "CREATE"),
    ("CREATE TEMPORARY TABLE t (x UInt8)", "CREATE"),
    ("DROP TABLE t", "DROP"),
    ("ALTER TABLE t DELETE WHERE 1", "ALTER"),
    ("TRUNCATE TABLE t", "TRUNCATE"),
    ("OPTIMIZE TABLE t FINAL", "OPTIMIZE"),
    ("SET readonly = 0", "SET"),
    ("SYSTEM STOP MERGES", "SYSTEM"),
    ("RENAME TABLE a TO b", "RENAME"),
    ("KILL QUERY WHERE 1", "KILL"),
    ("USE other", "USE"),
    ("GRANT ALL ON *.* TO default", "GRANT"),
    ("/* SELECT */ DELETE FROM t WHERE 1", "DELETE"),
])
def test_writes_and_session_changes_are_refused_as_readonly(sql, word):
    with pytest.raises(QueryRefused) as info:
        check(sql)
    assert info.value.code == READONLY
    assert f"not {word}" in info.value.message
    assert "readonly mode" in info.value.message


@pytest.mark.parametrize("sql", [
    "SELECT 1; SELECT 2",
    "SELECT 1; DROP TABLE t",
    "SELECT 1;\nINSERT INTO t VALUES (1);",
])
def test_multi_statements_are_refused(sql):
    with pytest.raises(QueryRefused) as info:
        check(sql)
    assert info.value.code == SYNTAX_ERROR
    assert info.value.message == "Multi-statements are not allowed"


@pytest.mark.parametrize("sql", [
    "SELECT 1 INTO OUTFILE '/tmp/x'",
    "SELECT file('/etc/passwd')",
    "SELECT * FROM file('/etc/passwd', 'LineAsString')",
    "SELECT * FROM url('http://example.com/x', 'CSV', 'a String')",
    "SELECT * FROM s3('http://bucket/x')",
    "SELECT * FROM remote('127.0.0.1:9000', system.one)",
    "SELECT * FROM `executable`('x.sh', 'CSV', 'a String')",
    "WITH (SELECT * FROM mysql('h', 'd', 't', 'u', 'p')) AS x SELECT x",
])
def test_reaching_outside_the_database_is_refused(sql):
    with pytest.raises(QueryRefused) as info:
        check(sql)
    assert info.value.code == READONLY


def test_names_that_only_look_dangerous_are_fine():
    # a column called `file` (no call) and a string mentioning url( are data, not calls
    assert check("SELECT file, 'url(x)' AS u FROM t").keyword == "SELECT"


@pytest.mark.parametrize("sql, fmt", [
    ("SELECT 1", None),
    ("SELECT 1 FORMAT JSONEachRow", "JSONEachRow"),
    ("SELECT 1 format csv;", "csv"),
    ("SELECT format('{}', 'x') AS s", None),
    ("SELECT (SELECT 1 FORMAT CSV) FORMAT JSON", "JSON"),
    ("SELECT 1 FORMAT Native SETTINGS max_threads = 1", "Native"),
    ("SELECT 'FORMAT JSON'", None),
])
def test_the_format_clause_is_found(sql, fmt):
    assert check(sql).format == fmt


def test_unterminated_literals_are_syntax_errors():
    for sql in ["SELECT 'abc", "SELECT `x", "SELECT 1 /* open", "SELECT $$x"]:
        with pytest.raises(QueryRefused) as info:
            check(sql)
        assert info.value.code == SYNTAX_ERROR


def test_empty_query_is_refused():
    for sql in ["", "  ;  ", "-- only a comment"]:
        with pytest.raises(QueryRefused):
            check(sql)


def test_split_keeps_semicolons_inside_parentheses_and_literals():
    stmts = split_statements(tokenize("SELECT ';' ; SELECT (1) ;"))
    assert [[t.text for t in s] for s in stmts] == [["SELECT", "';'"], ["SELECT", "(", "1", ")"]]


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.sampled_from(list("SELCTINR ;'\"`$#-/*()\n\\fiorm")), max_size=60))
def test_the_guard_never_crashes_and_never_accepts_two_statements(text):
    try:
        stmt = check(text)
    except QueryRefused:
        return
    assert len(split_statements(tokenize(text))) == 1
    assert stmt.keyword in ("SELECT", "WITH", "SHOW", "DESCRIBE", "DESC", "EXISTS", "EXPLAIN")
