#!/usr/bin/env python3
"""Every relative link in the repository's Markdown resolves.

Checks every *.md file of the repository (build trees and node_modules
left out), or the files named after the source directory: a link [text](target) or <target> that is not a URL must
name a file or folder inside the repository, and a #fragment must be a
heading of the file it points at (GitHub's anchors). Links inside code
(fenced blocks, `spans`) are not links. A Markdown file named in the text
(`bench/RESULTS.md`, `suite.md`) must exist too: next to the file, from the
repository's root, or (a bare name) somewhere in it, so no document sends
readers to one the repository does not have. Prints each broken link as
FILE:LINE: message and exits 1 if there is any.

Usage: check_links.py SOURCE_DIR [FILE.md ...]
"""
import os
import re
import sys

LINK = re.compile(r'(?<!\!)\[(?:[^\]\\]|\\.)*\]\(\s*<?([^)\s>]+)>?(?:\s+"[^"]*")?\s*\)')
IMAGE = re.compile(r'\!\[(?:[^\]\\]|\\.)*\]\(\s*<?([^)\s>]+)>?(?:\s+"[^"]*")?\s*\)')
AUTOLINK = re.compile(r'<([A-Za-z][A-Za-z0-9+.-]*:[^>\s]+)>')
REFERENCE = re.compile(r'^\s{0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s+.*)?$')
URL = re.compile(r'^[A-Za-z][A-Za-z0-9+.-]*:')
MENTION = re.compile(r'(?<![\w/.:-])([\w./-]*\w\.md)\b')


def strip_code(line):
    return re.sub(r'(`+)(.+?)\1', '', line)


def slug(heading):
    """GitHub's anchor for a heading's text."""
    text = re.sub(r'`', '', heading.strip().lower())
    text = re.sub(r'\[([^\]]*)\]\([^)]*\)', r'\1', text)  # a link's text only
    text = re.sub(r'[^\w\- ]', '', text)
    return text.replace(' ', '-')


def markdown_lines(path):
    """(line number, text) of the lines outside fenced code blocks."""
    fence = None
    with open(path, encoding='utf-8') as f:
        for n, line in enumerate(f, 1):
            m = re.match(r'^\s*(```+|~~~+)', line)
            if m:
                if fence is None:
                    fence = m.group(1)[0] * 3
                elif m.group(1).startswith(fence):
                    fence = None
                continue
            if fence is None:
                yield n, line.rstrip('\n')


def anchors(path, cache={}):
    if path not in cache:
        seen = {}
        found = set()
        for _, line in markdown_lines(path):
            m = re.match(r'^#{1,6}\s+(.*?)\s*#*\s*$', line)
            if not m:
                continue
            base = slug(m.group(1))
            count = seen.get(base, 0)
            seen[base] = count + 1
            found.add(base if count == 0 else f'{base}-{count}')
        cache[path] = found
    return cache[path]


def check(root, path, names):
    problems = []
    rel = os.path.relpath(path, root)
    with open(path, encoding='utf-8') as f:
        for n, line in enumerate(f, 1):
            for m in MENTION.finditer(line):
                name = m.group(1)
                here = os.path.normpath(os.path.join(os.path.dirname(path), name))
                top = os.path.normpath(os.path.join(root, name))
                inside = [p for p in (here, top) if os.path.commonpath([p, root]) == root]
                if not (any(os.path.exists(p) for p in inside) or
                        ('/' not in name and name in names)):
                    problems.append(f'{rel}:{n}: {name}: names a file the repository does not have')
    for n, line in markdown_lines(path):
        text = strip_code(line)
        targets = [m.group(1) for m in LINK.finditer(text)]
        targets += [m.group(1) for m in IMAGE.finditer(text)]
        targets += [m.group(1) for m in AUTOLINK.finditer(text)]
        m = REFERENCE.match(text)
        if m:
            targets.append(m.group(1))
        for target in targets:
            if target.startswith('file:') or target.startswith('/'):
                problems.append(f'{rel}:{n}: {target}: a path outside the repository')
                continue
            if URL.match(target):
                continue  # http(s), mailto: not checked here (no network in tests)
            file_part, _, fragment = target.partition('#')
            dest = os.path.normpath(os.path.join(os.path.dirname(path), file_part)) if file_part else path
            if os.path.commonpath([os.path.abspath(dest), root]) != root:
                problems.append(f'{rel}:{n}: {target}: leaves the repository')
                continue
            if not os.path.exists(dest):
                problems.append(f'{rel}:{n}: {target}: no such file in the repository')
                continue
            if fragment and dest.endswith('.md') and fragment not in anchors(dest):
                problems.append(f'{rel}:{n}: {target}: no heading #{fragment} in '
                                f'{os.path.relpath(dest, root)}')
    return problems


def main():
    root = os.path.abspath(sys.argv[1])
    files = [os.path.join(root, f) for f in sys.argv[2:]]
    if not files:
        for folder, dirs, names in os.walk(root):
            dirs[:] = sorted(d for d in dirs if not d.startswith(('.', 'build')) and
                             d != 'node_modules')
            files += [os.path.join(folder, n) for n in sorted(names) if n.endswith('.md')]
    names = set()
    for folder, dirs, found in os.walk(root):
        dirs[:] = [d for d in dirs if not d.startswith(('.', 'build')) and d != 'node_modules']
        names.update(found)
    problems = []
    for path in files:
        problems += check(root, path, names)
    for p in problems:
        print(p)
    print(f'check_links: {len(files)} files, {len(problems)} broken links')
    return 1 if problems else 0


if __name__ == '__main__':
    sys.exit(main())
