#!/usr/bin/env python3
"""Code lines of the gateway's Rust files: not blank, not comment-only, not in
a #[cfg(test)] item. Prints `file, code lines, whole lines` and a total.

    python3 examples/gateway/benches/code-lines.py new examples/gateway/src
    python3 examples/gateway/benches/code-lines.py old d7e2eea^   # the gateway before the workspace

(BENCHMARKS-HISTORY.md, section 6.1, "The gateway's size", groups these per folder.)"""
import sys, subprocess, os, collections

def code_lines(text):
    lines = text.split('\n')
    n = 0
    i = 0
    in_block_comment = False
    while i < len(lines):
        l = lines[i].strip()
        if in_block_comment:
            if '*/' in l: in_block_comment = False
            i += 1; continue
        if l.startswith('/*'):
            if '*/' not in l: in_block_comment = True
            i += 1; continue
        if l == '#[cfg(test)]':
            # skip the following item (mod tests { ... } or a fn) by brace matching
            j = i + 1
            depth = 0; started = False
            while j < len(lines):
                for ch in lines[j]:
                    if ch == '{': depth += 1; started = True
                    elif ch == '}': depth -= 1
                if started and depth == 0: break
                if not started and lines[j].strip().endswith(';'): break
                j += 1
            i = j + 1; continue
        if l == '' or l.startswith('//'):
            i += 1; continue
        n += 1; i += 1
    return n

def main():
    mode = sys.argv[1]
    rows = collections.OrderedDict()
    if mode == 'old':
        rev = sys.argv[2]
        files = subprocess.check_output(['git','ls-tree','--name-only',rev,'examples/gateway/'], text=True).split()
        for f in files:
            if not f.endswith('.rs'): continue
            t = subprocess.check_output(['git','show',f'{rev}:{f}'], text=True)
            rows[os.path.basename(f)] = (code_lines(t), len(t.split('\n'))-1)
    else:
        root = sys.argv[2]
        for dp, dn, fn in sorted(os.walk(root)):
            for f in sorted(fn):
                if not f.endswith('.rs'): continue
                p = os.path.join(dp, f)
                t = open(p).read()
                rows[os.path.relpath(p, root)] = (code_lines(t), len(t.split('\n'))-1)
    for k, (c, w) in rows.items():
        print(f'{k}\t{c}\t{w}')
    print(f'TOTAL\t{sum(c for c,_ in rows.values())}\t{sum(w for _,w in rows.values())}')
main()
