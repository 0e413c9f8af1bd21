"""The Groovy subset our Jenkinsfiles are written in: a lexer, a parser and its syntax tree.

It only turns text into a tree; ``evaluate`` runs the tree.
Strings follow Groovy: every quote form processes backslash escapes, a backslash before a
newline joins the lines, and only double-quoted forms (``"..."``, ``\"\"\"...\"\"\"``)
interpolate ``${expr}`` and ``$name.name``. Anything outside the subset raises
``GroovySyntaxError`` with the line number: the runner must never guess.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "GroovySyntaxError",
    "Node",
    "Block",
    "Call",
    "Closure",
    "MethodCall",
    "Prop",
    "Index",
    "Name",
    "Literal",
    "Str",
    "ListLit",
    "MapLit",
    "Binary",
    "Unary",
    "Ternary",
    "Elvis",
    "Cast",
    "Decl",
    "Assign",
    "If",
    "Return",
    "ExprStmt",
    "parse",
    "parse_expression",
    "walk",
]


class GroovySyntaxError(Exception):
    """The Jenkinsfile uses something outside the Groovy subset the runner understands."""

    def __init__(self, message: str, line: int) -> None:
        self.line = line
        super().__init__(f"line {line}: {message}")


# -- syntax tree ------------------------------------------------------------------------
@dataclass
class Node:
    line: int = field(default=0, kw_only=True)


@dataclass
class Block(Node):
    statements: list[Node]


@dataclass
class Closure(Node):
    params: list[str]
    body: Block


@dataclass
class Call(Node):
    """``name(args) { closure }``, ``name args`` or ``name { closure }``."""

    name: str
    args: list[Node]
    named: dict[str, Node]
    closure: Closure | None = None


@dataclass
class MethodCall(Node):
    target: Node
    name: str
    args: list[Node]
    named: dict[str, Node]
    closure: Closure | None = None


@dataclass
class Prop(Node):
    target: Node
    name: str
    safe: bool = False


@dataclass
class Index(Node):
    target: Node
    index: Node


@dataclass
class Name(Node):
    name: str


@dataclass
class Literal(Node):
    value: Any


@dataclass
class Str(Node):
    """A string; ``parts`` mixes text and interpolated expressions (GString)."""

    parts: list[str | Node]

    def plain(self) -> str | None:
        """The text when nothing is interpolated, else None."""
        if all(isinstance(p, str) for p in self.parts):
            return "".join(p for p in self.parts if isinstance(p, str))
        return None


@dataclass
class ListLit(Node):
    items: list[Node]


@dataclass
class MapLit(Node):
    items: dict[str, Node]


@dataclass
class Binary(Node):
    op: str
    left: Node
    right: Node


@dataclass
class Unary(Node):
    op: str
    operand: Node


@dataclass
class Ternary(Node):
    cond: Node
    then: Node
    other: Node


@dataclass
class Elvis(Node):
    value: Node
    fallback: Node


@dataclass
class Cast(Node):
    value: Node
    type_name: str


@dataclass
class Decl(Node):
    name: str
    value: Node | None


@dataclass
class Assign(Node):
    target: Node
    value: Node


@dataclass
class If(Node):
    cond: Node
    then: Block
    other: Block | None


@dataclass
class Return(Node):
    value: Node | None


@dataclass
class ExprStmt(Node):
    expr: Node


# -- lexer ------------------------------------------------------------------------------
@dataclass
class Token:
    kind: str  # NAME, NUM, STR, OP, NL, EOF
    value: Any
    line: int


_OPS = [
    "?.",
    "?:",
    "->",
    "==",
    "!=",
    "<=",
    ">=",
    "&&",
    "||",
    "++",
    "--",
    "+=",
    "-=",
    "{",
    "}",
    "(",
    ")",
    "[",
    "]",
    ",",
    ":",
    ";",
    ".",
    "=",
    "<",
    ">",
    "+",
    "-",
    "*",
    "/",
    "%",
    "!",
    "?",
]
_ESCAPES = {
    "n": "\n",
    "t": "\t",
    "r": "\r",
    "b": "\b",
    "f": "\f",
    "s": " ",
    "\\": "\\",
    "'": "'",
    '"': '"',
    "$": "$",
}
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_NUM = re.compile(r"\d+(\.\d+)?")
_PRIMITIVE_TYPES = {"def", "int", "long", "boolean", "double", "float", "char", "byte", "short"}
KEYWORDS = {"if", "else", "def", "return", "true", "false", "null", "as", "in"}


class _Lexer:
    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0
        self.line = 1
        self.tokens: list[Token] = []
        self.depth: list[str] = []  # open brackets: newlines inside () and [] do not count

    def error(self, message: str) -> GroovySyntaxError:
        return GroovySyntaxError(message, self.line)

    def run(self) -> list[Token]:
        text = self.text
        while self.pos < len(text):
            ch = text[self.pos]
            if ch == "\n":
                if not self.depth or self.depth[-1] == "{":
                    self.tokens.append(Token("NL", None, self.line))
                self.line += 1
                self.pos += 1
            elif ch in " \t\r":
                self.pos += 1
            elif ch == "\\" and text.startswith("\\\n", self.pos):
                self.pos += 2
                self.line += 1
            elif text.startswith("//", self.pos):
                end = text.find("\n", self.pos)
                self.pos = len(text) if end < 0 else end
            elif text.startswith("/*", self.pos):
                end = text.find("*/", self.pos)
                if end < 0:
                    raise self.error("unterminated /* comment")
                self.line += text.count("\n", self.pos, end)
                self.pos = end + 2
            elif ch in "'\"":
                self.tokens.append(self.string())
            elif (m := _NAME.match(text, self.pos)) is not None:
                self.tokens.append(Token("NAME", m.group(), self.line))
                self.pos = m.end()
            elif (m := _NUM.match(text, self.pos)) is not None:
                value: Any = float(m.group()) if m.group(1) else int(m.group())
                self.tokens.append(Token("NUM", value, self.line))
                self.pos = m.end()
            else:
                self.operator()
        self.tokens.append(Token("NL", None, self.line))
        self.tokens.append(Token("EOF", None, self.line))
        return self.tokens

    def operator(self) -> None:
        for op in _OPS:
            if self.text.startswith(op, self.pos):
                if op in "([{":
                    self.depth.append(op)
                elif op in ")]}":
                    if not self.depth:
                        raise self.error(f"unbalanced '{op}'")
                    self.depth.pop()
                self.tokens.append(Token("OP", op, self.line))
                self.pos += len(op)
                return
        raise self.error(f"unexpected character {self.text[self.pos]!r}")

    def string(self) -> Token:
        text, start_line = self.text, self.line
        quote = text[self.pos]
        triple = text.startswith(quote * 3, self.pos)
        closing = quote * 3 if triple else quote
        self.pos += len(closing)
        interpolate = quote == '"'
        parts: list[str | Node] = []
        buf: list[str] = []
        while True:
            if self.pos >= len(text):
                raise GroovySyntaxError("unterminated string", start_line)
            if text.startswith(closing, self.pos):
                self.pos += len(closing)
                break
            ch = text[self.pos]
            if ch == "\n":
                if not triple:
                    raise self.error("newline in a single-line string")
                self.line += 1
                buf.append(ch)
                self.pos += 1
            elif ch == "\\":
                nxt = text[self.pos + 1 : self.pos + 2]
                if nxt == "\n":  # Groovy: a backslash before a newline joins the lines
                    self.line += 1
                elif nxt == "u":
                    buf.append(chr(int(text[self.pos + 2 : self.pos + 6], 16)))
                    self.pos += 4
                elif nxt in _ESCAPES:
                    buf.append(_ESCAPES[nxt])
                else:
                    raise self.error(f"unknown escape '\\{nxt}' in a string")
                self.pos += 2
            elif ch == "$" and interpolate:
                if buf:
                    parts.append("".join(buf))
                    buf = []
                parts.append(self.interpolation())
            else:
                buf.append(ch)
                self.pos += 1
        if buf or not parts:
            parts.append("".join(buf))
        return Token("STR", Str(parts, line=start_line), start_line)

    def interpolation(self) -> Node:
        text, line = self.text, self.line
        if text.startswith("${", self.pos):
            depth, i = 1, self.pos + 2
            while i < len(text) and depth:
                if text[i] == "{":
                    depth += 1
                elif text[i] == "}":
                    depth -= 1
                elif text[i] in "'\"":  # skip a nested string
                    j = text.find(text[i], i + 1)
                    if j < 0:
                        raise self.error("unterminated string inside ${...}")
                    i = j
                i += 1
            if depth:
                raise self.error("unterminated ${...}")
            source = text[self.pos + 2 : i - 1]
            self.pos = i
            return parse_expression(source, line)
        m = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*").match(
            text, self.pos + 1
        )
        if m is None:
            raise self.error(
                "a '$' in a double-quoted string must start ${...} or $name "
                "(write \\$ for a literal dollar)"
            )
        self.pos = m.end()
        node: Node = Name(m.group().split(".")[0], line=line)
        for attr in m.group().split(".")[1:]:
            node = Prop(node, attr, line=line)
        return node


# -- parser -----------------------------------------------------------------------------
_BINARY_LEVELS = [
    ["||"],
    ["&&"],
    ["==", "!=", "in"],
    ["<", ">", "<=", ">="],
    ["+", "-"],
    ["*", "/", "%"],
]


class _Parser:
    def __init__(self, tokens: list[Token]) -> None:
        self.tokens = tokens
        self.i = 0

    # token helpers
    @property
    def tok(self) -> Token:
        return self.tokens[self.i]

    def peek(self, ahead: int = 1) -> Token:
        return self.tokens[min(self.i + ahead, len(self.tokens) - 1)]

    def at(self, kind: str, value: Any = None) -> bool:
        return self.tok.kind == kind and (value is None or self.tok.value == value)

    def at_op(self, *values: str) -> bool:
        return self.tok.kind == "OP" and self.tok.value in values

    def take(self) -> Token:
        token = self.tok
        self.i += 1
        return token

    def expect_op(self, value: str) -> Token:
        if not self.at_op(value):
            raise self.error(f"expected '{value}'")
        return self.take()

    def error(self, message: str) -> GroovySyntaxError:
        shown = self.tok.value if self.tok.kind != "STR" else "a string"
        return GroovySyntaxError(f"{message}, found {shown!r}", self.tok.line)

    def skip_newlines(self) -> None:
        while self.at("NL") or self.at_op(";"):
            self.take()

    # statements
    def block_until(self, end: str | None) -> Block:
        line = self.tok.line
        statements: list[Node] = []
        self.skip_newlines()
        while not (self.at("EOF") if end is None else self.at_op(end)):
            if self.at("EOF"):
                raise self.error(f"missing '{end}'")
            statements.append(self.statement())
            if not (
                self.at("NL")
                or self.at_op(";")
                or self.at("EOF")
                or (end is not None and self.at_op(end))
            ):
                raise self.error("expected the end of the statement")
            self.skip_newlines()
        return Block(statements, line=line)

    def braced_block(self) -> Block:
        self.expect_op("{")
        body = self.block_until("}")
        self.expect_op("}")
        return body

    def statement(self) -> Node:
        tok, line = self.tok, self.tok.line
        if tok.kind == "NAME" and tok.value == "if":
            return self.if_statement()
        if tok.kind == "NAME" and tok.value == "return":
            self.take()
            ends = self.at("NL") or self.at_op("}", ";")
            return Return(None if ends else self.expression(), line=line)
        if tok.kind == "NAME" and tok.value in {
            "for",
            "while",
            "try",
            "switch",
            "class",
            "import",
            "throw",
            "catch",
            "finally",
        }:
            raise self.error(f"'{tok.value}' is outside the supported Groovy subset")
        declared = self.declaration()
        if declared is not None:
            return declared
        if self.is_command_call():
            return self.command_call()
        expr = self.expression()
        if self.at_op("="):
            self.take()
            if not isinstance(expr, (Name, Prop, Index)):
                raise self.error("cannot assign to this expression")
            return Assign(expr, self.expression(), line=line)
        if self.at_op("+=", "-=", "++", "--"):
            raise self.error(f"'{self.tok.value}' is outside the supported Groovy subset")
        return ExprStmt(expr, line=line)

    def declaration(self) -> Node | None:
        """``def x = ...``, ``String x = ...``, ``List<String> x = ...``."""
        start, line = self.i, self.tok.line
        if not self.at("NAME") or self.tok.value in KEYWORDS - {"def"}:
            return None
        if self.tok.value not in _PRIMITIVE_TYPES and not self.tok.value[0].isupper():
            return None  # like Groovy: "agent any" is a command, "String s" a declaration
        self.take()
        if self.at_op("<"):  # generic type
            depth = 0
            while True:
                if self.at_op("<"):
                    depth += 1
                elif self.at_op(">"):
                    depth -= 1
                elif not (self.at("NAME") or self.at_op(",")):
                    self.i = start
                    return None
                self.take()
                if depth == 0:
                    break
        if self.at("NAME") and self.tok.value not in KEYWORDS and self.peek().kind in {"OP", "NL"}:
            name = self.take().value
            if self.at_op("="):
                self.take()
                return Decl(name, self.expression(), line=line)
            if self.at("NL") or self.at_op(";"):
                return Decl(name, None, line=line)
        self.i = start
        return None

    def if_statement(self) -> If:
        line = self.take().line
        self.expect_op("(")
        cond = self.expression()
        self.expect_op(")")
        then = self.braced_block()
        other: Block | None = None
        save = self.i
        self.skip_newlines()
        if self.at("NAME", "else"):
            self.take()
            if self.at("NAME", "if"):
                nested = self.if_statement()
                other = Block([nested], line=nested.line)
            else:
                other = self.braced_block()
        else:
            self.i = save
        return If(cond, then, other, line=line)

    def is_command_call(self) -> bool:
        """``sh 'x'``, ``agent any``, ``archiveArtifacts artifacts: 'x'``: a name, then an
        argument on the same line with no operator in between."""
        if not self.at("NAME") or self.tok.value in KEYWORDS:
            return False
        nxt = self.peek()
        if nxt.kind in {"STR", "NUM"}:
            return True
        return nxt.kind == "NAME" and nxt.value not in {"as", "in"}

    def command_call(self) -> Call:
        tok = self.take()
        args, named = self.arguments(until=None)
        closure = self.closure() if self.at_op("{") else None
        return Call(tok.value, args, named, closure, line=tok.line)

    def arguments(self, until: str | None) -> tuple[list[Node], dict[str, Node]]:
        args: list[Node] = []
        named: dict[str, Node] = {}
        if until is not None and self.at_op(until):
            return args, named
        while True:
            if (
                self.tok.kind in {"NAME", "STR"}
                and self.peek().kind == "OP"
                and self.peek().value == ":"
            ):
                key_tok = self.take()
                key = key_tok.value if key_tok.kind == "NAME" else key_tok.value.plain()
                if key is None:
                    raise self.error("an argument name cannot be interpolated")
                self.take()
                named[key] = self.expression()
            else:
                args.append(self.expression())
            if not self.at_op(","):
                break
            self.take()
            self.skip_newlines()
        return args, named

    def closure(self) -> Closure:
        line = self.expect_op("{").line
        params: list[str] = []
        # look ahead for "[Type] name (, [Type] name)* ->" on the first line
        j, names = self.i, []
        while self.tokens[j].kind == "NAME" or (
            self.tokens[j].kind == "OP" and self.tokens[j].value == ","
        ):
            if self.tokens[j].kind == "NAME":
                names.append(self.tokens[j].value)
            j += 1
        if names and self.tokens[j].kind == "OP" and self.tokens[j].value == "->":
            # typed params are "Type name": keep the last name of each comma group
            groups = " ".join(t.value if t.kind == "NAME" else "," for t in self.tokens[self.i : j])
            params = [g.split()[-1] for g in groups.split(",")]
            self.i = j + 1
        body = self.block_until("}")
        self.expect_op("}")
        return Closure(params, body, line=line)

    # expressions
    def expression(self) -> Node:
        return self.ternary()

    def type_name(self) -> str:
        if not self.at("NAME"):
            raise self.error("expected a type")
        parts = [self.take().value]
        if self.at_op("<"):
            depth = 0
            while True:
                if self.at_op("<"):
                    depth += 1
                elif self.at_op(">"):
                    depth -= 1
                parts.append(str(self.take().value))
                if depth == 0:
                    break
        return "".join(parts)

    def ternary(self) -> Node:
        cond = self.binary(0)
        line = self.tok.line
        if self.at_op("?:"):
            self.take()
            self.skip_newlines()
            return Elvis(cond, self.ternary(), line=line)
        if self.at_op("?"):
            self.take()
            self.skip_newlines()
            then = self.ternary()
            self.skip_newlines()
            self.expect_op(":")
            self.skip_newlines()
            return Ternary(cond, then, self.ternary(), line=line)
        return cond

    def binary(self, level: int) -> Node:
        if level == len(_BINARY_LEVELS):
            return self.unary()
        node = self.binary(level + 1)
        ops = _BINARY_LEVELS[level]
        while self.at_op(*ops) or (self.at("NAME") and self.tok.value in ops):
            tok = self.take()
            self.skip_newlines()
            node = Binary(tok.value, node, self.binary(level + 1), line=tok.line)
        return node

    def unary(self) -> Node:
        if self.at_op("!", "-"):
            tok = self.take()
            return Unary(tok.value, self.unary(), line=tok.line)
        node = self.postfix(self.primary())
        while self.at("NAME", "as"):  # binds tighter than * and the ternary, as in Groovy
            line = self.take().line
            node = Cast(node, self.type_name(), line=line)
        return node

    def postfix(self, node: Node) -> Node:
        while True:
            if self.at_op(".", "?.") or (
                self.at("NL") and self.peek().kind == "OP" and self.peek().value in {".", "?."}
            ):
                self.skip_newlines()
                safe = self.take().value == "?."
                if not self.at("NAME"):
                    raise self.error("expected a property or method name after '.'")
                name_tok = self.take()
                if self.at_op("("):
                    self.take()
                    self.skip_newlines()
                    args, named = self.arguments(until=")")
                    self.skip_newlines()
                    self.expect_op(")")
                    closure = self.closure() if self.at_op("{") else None
                    node = MethodCall(
                        node, name_tok.value, args, named, closure, line=name_tok.line
                    )
                elif self.at_op("{"):
                    node = MethodCall(
                        node, name_tok.value, [], {}, self.closure(), line=name_tok.line
                    )
                else:
                    node = Prop(node, name_tok.value, safe, line=name_tok.line)
            elif self.at_op("["):
                line = self.take().line
                index = self.expression()
                self.expect_op("]")
                node = Index(node, index, line=line)
            else:
                return node

    def primary(self) -> Node:
        tok = self.tok
        if tok.kind == "STR":
            self.take()
            return tok.value
        if tok.kind == "NUM":
            self.take()
            return Literal(tok.value, line=tok.line)
        if tok.kind == "OP" and tok.value == "(":
            self.take()
            node = self.expression()
            self.expect_op(")")
            return node
        if tok.kind == "OP" and tok.value == "[":
            return self.list_or_map()
        if tok.kind == "OP" and tok.value == "{":
            return self.closure()
        if tok.kind == "NAME":
            self.take()
            if tok.value in {"true", "false"}:
                return Literal(tok.value == "true", line=tok.line)
            if tok.value == "null":
                return Literal(None, line=tok.line)
            if tok.value in KEYWORDS:
                raise GroovySyntaxError(f"unexpected keyword '{tok.value}'", tok.line)
            if self.at_op("("):
                self.take()
                self.skip_newlines()
                args, named = self.arguments(until=")")
                self.skip_newlines()
                self.expect_op(")")
                closure = self.closure() if self.at_op("{") else None
                return Call(tok.value, args, named, closure, line=tok.line)
            if self.at_op("{"):
                return Call(tok.value, [], {}, self.closure(), line=tok.line)
            return Name(tok.value, line=tok.line)
        raise self.error("expected an expression")

    def list_or_map(self) -> Node:
        line = self.expect_op("[").line
        self.skip_newlines()
        if self.at_op(":"):
            self.take()
            self.expect_op("]")
            return MapLit({}, line=line)
        if self.at_op("]"):
            self.take()
            return ListLit([], line=line)
        args, named = self.arguments(until="]")
        self.skip_newlines()
        self.expect_op("]")
        if args and named:
            raise GroovySyntaxError("a literal mixes list items and map entries", line)
        return MapLit(named, line=line) if named else ListLit(args, line=line)


def walk(node: Any) -> Iterator[Node]:
    """Every node below ``node`` (itself included), depth first."""
    if isinstance(node, Node):
        yield node
        for value in vars(node).values():
            yield from walk(value)
    elif isinstance(node, list):
        for item in node:
            yield from walk(item)
    elif isinstance(node, dict):
        for item in node.values():
            yield from walk(item)


def parse(text: str) -> Block:
    """Parse a whole Jenkinsfile (a Groovy script) into its statement tree."""
    parser = _Parser(_Lexer(text).run())
    return parser.block_until(None)


def parse_expression(source: str, line: int = 0) -> Node:
    lexer = _Lexer(source)
    lexer.line = line
    parser = _Parser(lexer.run())
    parser.skip_newlines()
    node = parser.expression()
    parser.skip_newlines()
    if not parser.at("EOF"):
        raise parser.error("unexpected text after the expression")
    return node
