#!/usr/bin/env python3
"""List C++ function bodies by length (lines from the opening brace to the closing one).

Usage: scripts/dev/function_lengths.py [--min N] [--top K] PATH...

A brace-matching reader, not a parser: it skips comments, strings and
character literals, treats `namespace`, `class`, `struct`, `union`, `enum`
and `extern "C"` blocks as scopes, and every other brace block opened at
scope level after a `)` (or a `) const`, `-> T`, initialiser list...) as a
function. Lambdas and nested blocks count towards the function around them.
"""
import argparse
import os
import re
import sys

SCOPE_WORDS = re.compile(r'\b(namespace|class|struct|union|enum)\b|extern\s+"C"')


def strip(text):
    """Blank out comments and literals, keeping newlines so line numbers hold."""
    out = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if text.startswith('//', i):
            j = text.find('\n', i)
            j = n if j < 0 else j
            out.append(' ' * (j - i))
            i = j
        elif text.startswith('/*', i):
            j = text.find('*/', i + 2)
            j = n if j < 0 else j + 2
            out.append(re.sub(r'[^\n]', ' ', text[i:j]))
            i = j
        elif text.startswith('R"', i):
            m = re.match(r'R"([^(]*)\(', text[i:])
            end = ')' + m.group(1) + '"'
            j = text.find(end, i)
            j = n if j < 0 else j + len(end)
            out.append('""' + re.sub(r'[^\n]', ' ', text[i + 2:j]))
            i = j
        elif c in '"\'':
            if c == "'" and i > 0 and text[i - 1].isalnum():  # digit separator 1'000
                out.append(c)
                i += 1
                continue
            j = i + 1
            while j < n and text[j] != c:
                j += 2 if text[j] == '\\' else 1
            out.append(c + ' ' * (j - i - 1) + c)
            i = j + 1
        else:
            out.append(c)
            i += 1
    return ''.join(out)


def functions(path):
    text = strip(open(path, encoding='utf-8', errors='replace').read())
    # Preprocessor lines (with their continuations) are neither heads nor bodies.
    text = re.sub(r'(?m)^[ \t]*#(?:[^\n]*\\\n)*[^\n]*', lambda m: re.sub(r'[^\n]', ' ', m.group(0)), text)
    stack = []  # entries: 'scope' | ('func', start_line, name) | 'block'
    head_start = 0
    line = 1
    results = []
    for i, c in enumerate(text):
        if c == '\n':
            line += 1
        elif c == '{':
            head = text[head_start:i]
            in_func = any(isinstance(s, tuple) for s in stack) or 'block' in stack
            if in_func:
                stack.append('block')
            elif SCOPE_WORDS.search(head) and '(' not in head.split('=')[0]:
                stack.append('scope')
            elif ')' in head or 'operator' in head:
                name = re.sub(r'\s+', ' ', head.strip())
                m = re.search(r'([~\w:<>]+(?:operator\s*\S+)?)\s*\(', name)
                stack.append(('func', line, m.group(1) if m else name[:60]))
            else:
                stack.append('block')  # initialiser, array, enum values...
            head_start = i + 1
        elif c == '}':
            top = stack.pop() if stack else 'scope'
            if isinstance(top, tuple):
                results.append((line - top[1] + 1, path, top[1], top[2]))
            head_start = i + 1
        elif c == ';' and not stack or (c == ';' and stack[-1] == 'scope'):
            head_start = i + 1
    return results


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('paths', nargs='+')
    ap.add_argument('--min', type=int, default=0, help='only functions of at least N lines')
    ap.add_argument('--top', type=int, default=0, help='only the K longest')
    args = ap.parse_args()
    found = []
    for p in args.paths:
        for root, _, files in os.walk(p) if os.path.isdir(p) else [('', None, [p])]:
            for f in sorted(files):
                if f.endswith(('.cpp', '.hpp', '.h', '.cc')):
                    found += functions(os.path.join(root, f))
    found.sort(key=lambda r: -r[0])
    found = [r for r in found if r[0] >= args.min]
    if args.top:
        found = found[:args.top]
    for length, path, start, name in found:
        print(f'{length:5d}  {path}:{start}  {name}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
