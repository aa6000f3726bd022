#!/usr/bin/env python3
"""Doxygen input filter: reads brubeck's public headers as documented.

The headers are commented in plain `//` comments (a paragraph atop each
header on what it is for, a comment above each declaration, a trailing
comment after a field), not in Doxygen's `///` syntax. This filter turns
them into Doxygen comments on the fly, line for line (so Doxygen's line
numbers stay the header's):

- the first comment block of a file, before any code, documents the file;
- a block of `//` lines documents what follows it;
- `code;  // text` documents `code` (`///<`), and so do the `//` lines
  under it that start in the same column;
- a block's first sentence is its brief description (`\\brief`, and
  `\\details` after it), the rest its details;
- comments inside function bodies (and lambdas, initialisers) stay plain
  comments: they explain code, not an API;
- Doxygen's special characters in comment text are escaped, so a comment
  reads as written (`<T>`, `@`, `#`, `%`, a backslash...); text between
  backticks is left alone (Markdown code).

Usage (Doxygen's INPUT_FILTER): doxygen_filter.py FILE, output on stdout.
"""
import re
import sys

# Outside `code`, characters Doxygen would read as commands or markup.
SPECIAL = re.compile(r'([\\@<>&#%$])')
# The end of a sentence: a full stop before a space or the end of the line
# (not after e.g, i.e, etc).
SENTENCE_END = re.compile(r'(?<!\be\.g)(?<!\bi\.e)(?<!\betc)\.(?= |$)')
# A brace after these opens a scope of declarations; any other, a body.
SCOPE = re.compile(r'\b(namespace|class|struct|union|enum)\b|\bextern\s*"C"')


def split_code(text):
    """Alternating [outside, inside, outside, ...] backtick spans."""
    parts = text.split('`')
    if len(parts) % 2 == 0:  # an unpaired backtick: no code span on this line
        return [text.replace('`', "'")]
    return parts


def escape(text):
    parts = split_code(text)
    for i in range(0, len(parts), 2):
        parts[i] = SPECIAL.sub(r'\\\1', parts[i])
    return '`'.join(parts)


def sentence_end(text):
    """Where the first sentence of this (escaped) line ends, or -1."""
    offset = 0
    for i, part in enumerate(split_code(text)):
        if i % 2 == 0:
            m = SENTENCE_END.search(part)
            if m:
                return offset + m.end()
        offset += len(part) + 1
    return -1


def trailing_comment(line):
    """The column of a `//` comment after code on this line, or -1."""
    quote = None
    i = 0
    while i < len(line) - 1:
        ch = line[i]
        if quote:
            if ch == '\\':
                i += 2
                continue
            if ch == quote:
                quote = None
        elif ch in '"\'':
            # A digit separator (1'000) is not a character literal.
            if not (ch == "'" and i > 0 and line[i - 1].isalnum()):
                quote = ch
        elif line.startswith('//', i):
            return i if line[:i].strip() else -1
        i += 1
    return -1


def outside_angles(code):
    """The code without what is inside <...> (template parameters and
    arguments, where `class` names a type, not a scope)."""
    out = []
    depth = 0
    i = 0
    while i < len(code):
        if code.startswith('->', i):
            i += 2
            continue
        ch = code[i]
        if ch == '<':
            depth += 1
        elif ch == '>' and depth > 0:
            depth -= 1
        elif depth == 0:
            out.append(ch)
        i += 1
    return ''.join(out)


class Scopes:
    """Which braces are open: True for a body (function, lambda, initialiser)."""

    def __init__(self):
        self.stack = []
        self.pending = ''  # code since the last ; { or }

    def in_body(self):
        return any(self.stack)

    def feed(self, code):
        quote = None
        i = 0
        while i < len(code):
            ch = code[i]
            if quote:
                if ch == '\\':
                    i += 2
                    continue
                if ch == quote:
                    quote = None
            elif ch in '"\'' and not (ch == "'" and i > 0 and code[i - 1].isalnum()):
                quote = ch
            elif ch == '{':
                scope = SCOPE.search(outside_angles(self.pending))
                self.stack.append(self.in_body() or not scope)
                self.pending = ''
            elif ch == '}':
                if self.stack:
                    self.stack.pop()
                self.pending = ''
            elif ch == ';':
                self.pending = ''
            else:
                self.pending += ch
            i += 1


def main(path):
    with open(path, encoding='utf-8') as f:
        lines = f.read().split('\n')
    # Pass 1: each comment line as (code before it, marker, escaped text, block id).
    parsed = []
    block = -1
    kind = None  # 'file', 'above' or 'trailing': the block being continued
    trailing_col = -1
    seen_code = False
    scopes = Scopes()
    for line in lines:
        stripped = line.lstrip()
        if stripped.startswith('#'):  # the preprocessor: no braces, no declarations
            kind = None
            parsed.append(line)
            continue
        if scopes.in_body():
            kind = None
            parsed.append(line)
            col = trailing_comment(line)
            if not stripped.startswith('//'):
                scopes.feed(line if col < 0 else line[:col])
            continue
        if stripped.startswith('//') and not stripped.startswith('///'):
            indent = line[:len(line) - len(stripped)]
            if not seen_code:
                new_kind = 'file'
            elif kind == 'trailing' and len(indent) == trailing_col:
                new_kind = 'trailing'
            else:
                new_kind = 'above'
            if new_kind != kind:
                block += 1
            kind = new_kind
            marker = '///<' if kind == 'trailing' else '///'
            parsed.append([indent, marker, escape(stripped[2:]), block])
            continue
        if stripped:
            seen_code = True
        col = trailing_comment(line)
        code = line if col < 0 else line[:col]
        scopes.feed(code)
        if col >= 0 and not line.startswith('///', col) and code.strip() not in ('}', '};'):
            block += 1
            kind = 'trailing'
            trailing_col = col
            parsed.append([line[:col], '///<', escape(line[col + 2:]), block])
        else:
            kind = None
            parsed.append(line)
    # Pass 2: \brief on a block's first line, \details after its first sentence.
    first = {}
    for n, item in enumerate(parsed):
        if isinstance(item, list):
            first.setdefault(item[3], n)
    last = {}
    for n, item in enumerate(parsed):
        if isinstance(item, list):
            last[item[3]] = n
    out = []
    ended = set()  # blocks whose first sentence is over
    for n, item in enumerate(parsed):
        if not isinstance(item, list):
            out.append(item)
            continue
        code, marker, text, b = item
        if first[b] == n:
            text = ' \\brief' + (text if text.startswith(' ') else ' ' + text)
        if b not in ended and text.strip():
            end = sentence_end(text)
            if end >= 0:
                ended.add(b)
                rest = text[end:]
                if rest.strip() or n != last[b]:
                    text = text[:end] + ' \\details' + rest
        elif b not in ended and not text.strip() and first[b] != n:
            ended.add(b)  # a blank comment line ends the brief paragraph
        if first[b] == n and parsed_kind_is_file(parsed, b, n):
            text += ' \\file'
        out.append(code + marker + text)
    sys.stdout.write('\n'.join(out))


def parsed_kind_is_file(parsed, b, n):
    """The file's block is the first one, before any code."""
    return b == 0 and all(isinstance(item, list) or not item.strip() for item in parsed[:n])


if __name__ == '__main__':
    main(sys.argv[1])
