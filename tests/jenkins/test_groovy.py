"""The Groovy subset: strings as Groovy reads them, and loud errors outside the subset."""

from __future__ import annotations

import re

import pytest

from tests.jenkins_runner import (
    Call,
    Cast,
    Decl,
    Elvis,
    ExprStmt,
    GroovySyntaxError,
    MethodCall,
    Name,
    Prop,
    Str,
    Ternary,
    parse,
    parse_expression,
)


def _string(source: str) -> Str:
    node = parse_expression(source)
    assert isinstance(node, Str)
    return node


def test_single_quotes_keep_dollars_for_the_shell() -> None:
    assert _string("'echo $HOME ${X}'").plain() == "echo $HOME ${X}"


def test_escapes_are_processed_in_every_quote_form() -> None:
    assert _string(r"'a\\b \'q\''").plain() == "a\\b 'q'"
    assert _string("'''--body \"{\\\\\"name\\\\\": 1}\"'''").plain() == '--body "{\\"name\\": 1}"'


def test_backslash_newline_joins_lines_in_triple_quotes() -> None:
    assert _string("'''a \\\n    b'''").plain() == "a     b"


def test_double_quotes_interpolate_expressions_and_dotted_names() -> None:
    parts = _string("\"x ${params.A ?: 'd'} $env.B \\$C\"").parts
    assert parts[0] == "x "
    assert isinstance(parts[1], Elvis)
    assert isinstance(parts[3], Prop) and parts[3].name == "B"
    assert parts[-1] == " $C"


def test_command_calls_named_arguments_and_closures() -> None:
    tree = parse(
        "archiveArtifacts artifacts: 'a/*', allowEmptyArchive: true\nstage('x') {\n  sh 'true'\n}\n"
    )
    first, second = tree.statements
    assert isinstance(first, Call) and set(first.named) == {"artifacts", "allowEmptyArchive"}
    assert isinstance(second, ExprStmt) and isinstance(second.expr, Call)
    assert second.expr.closure is not None and second.expr.closure.body.statements


def test_typed_declarations_casts_and_closure_parameters() -> None:
    tree = parse(
        "List<String> s = ids ? ids.split('\\n') as List<String> : []\n"
        "s.drop(1).each { String extra -> echo extra }\n"
    )
    decl, loop = tree.statements
    assert isinstance(decl, Decl) and isinstance(decl.value, Ternary)
    assert isinstance(decl.value.then, Cast)
    assert isinstance(loop, ExprStmt) and isinstance(loop.expr, MethodCall)
    assert loop.expr.closure is not None and loop.expr.closure.params == ["extra"]


def test_a_call_spanning_lines_inside_parentheses() -> None:
    tree = parse(
        "withCredentials([usernamePassword(credentialsId: 'a',\n"
        "                 usernameVariable: 'U')]) {\n  sh 'x'\n}\n"
    )
    (stmt,) = tree.statements
    assert isinstance(stmt, ExprStmt) and isinstance(stmt.expr, Call)
    assert isinstance(stmt.expr.args[0].items[0], Call)  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    "source, message",
    [
        ("for (x in y) { }", "'for' is outside"),
        ("try { } catch (e) { }", "'try' is outside"),
        ("x += 1", "'+=' is outside"),
        ("sh 'unterminated", "unterminated string"),
        ('echo "a $ b"', "must start ${...} or $name"),
        ("echo 'a\\qb'", "unknown escape"),
        ("stage('x') {", "missing '}'"),
    ],
)
def test_anything_outside_the_subset_is_a_syntax_error(source: str, message: str) -> None:
    with pytest.raises(GroovySyntaxError, match=re.escape(message)):
        parse(source)


def test_names_resolve_as_names() -> None:
    assert isinstance(parse_expression("BUILD_NUMBER"), Name)
