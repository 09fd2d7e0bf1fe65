#!/usr/bin/env python3
"""Writes helsim_fuzz's seed corpus (test/fuzz/corpus/seed-*): small inputs in the format of
test/fuzz/interpreter.hpp, one per theme, each in both modes; and its dictionary
(test/fuzz/hel.dict): hel.h's opcodes, action types, item flags, rights, map and allocation
flags, register sets and descriptor types, as the little-endian words the interpreter reads
where it takes raw values (raw syscall and opcode numbers, arbitrary argument words), plus
the boundary lengths.

    python3 test/fuzz/make_corpus.py [OUT_DIR]   (default: the corpus directory beside it)

The corpus also holds finding-* files: inputs that once broke an invariant, kept as
regression inputs (docs/testing.md, "Fuzzing"); this script leaves them alone.

A record is 16 bytes: [thread << 7 | kind, row, 14 choice bytes]. kind 0 is a syscall (row:
an index into the registered syscalls, in number order), 1 an SQ operation (row: an index into
the registered opcodes), 2 draining the thread's queue. The rows are indices, not numbers, so a
seed keeps meaning "the n-th call" as calls are added; the choice bytes pick each argument's
kind (live, closed, foreign, pseudo or forged handle; mapped, read-only, misaligned, unmapped,
wild or prepared pointer; a boundary length) as interpreter.cpp reads them.
"""

import os
import random
import re
import sys

RECORD = 16


def record(thread, kind, row, choices):
    body = bytes(choices)[:14].ljust(14, b"\0")
    return bytes([thread << 7 | kind, row]) + body


def header(deterministic, seed):
    return bytes([1 if deterministic else 0]) + seed.to_bytes(8, "big")


def themes():
    rnd = random.Random(18)

    def rand_records(n, kinds, thread_mix=True):
        out = b""
        for _ in range(n):
            thread = rnd.randrange(2) if thread_mix else 0
            kind = rnd.choice(kinds)
            out += record(thread, kind, rnd.randrange(256), [rnd.randrange(256) for _ in range(14)])
        return out

    yield "empty", b""
    # Every syscall row once from thread A, live handles and mapped pointers (choice 0).
    yield "each-syscall", b"".join(record(0, 0, row, [0, row] * 7) for row in range(96))
    # Every SQ opcode row once from each thread.
    yield "each-sq", b"".join(record(t, 1, row, [0, row] * 7) for t in (0, 1) for row in range(20))
    # Exchanges on the stream between the universes, drained in between.
    yield "exchange", b"".join(
        record(t, k, 1, [rnd.randrange(256) for _ in range(14)])
        for _ in range(12) for t in (0, 1) for k in (1, 2))
    yield "mixed-a", rand_records(40, [0, 1, 2], thread_mix=False)
    yield "mixed-ab", rand_records(60, [0, 1, 2])
    yield "raw-numbers", b"".join(record(0, k, 0xff, [rnd.randrange(256) for _ in range(14)])
                                  for k in (0, 1) for _ in range(8))


def dictionary(hel_h):
    """The dictionary's lines, from the text of include/helsim/hel.h."""
    families = "Submit|Action|Item|Right|Map|Alloc|Manage|Thread|Regs|Observe|Desc|TransferDescriptor|Drive"
    values = {}
    pattern = (r"\b(kHel(?:%s)\w*)\s*=\s*(?:UINT32_C\()?\(?(0x[0-9a-fA-F]+|\d+)\)?"
               r"(?:\s*<<\s*(\d+))?") % families
    for m in re.finditer(pattern, hel_h):
        value = int(m.group(2), 0) << int(m.group(3) or 0)
        values[m.group(1)] = value

    def spell(value, width):
        return "".join("\\x%02x" % b for b in value.to_bytes(width, "little"))

    lines = ["# helsim_fuzz's dictionary, written by test/fuzz/make_corpus.py from hel.h."]
    for name, value in sorted(values.items()):
        width = 1 if value < 0x100 else 2 if value < 0x10000 else 4
        lines.append(f'{name}="{spell(value, width)}"')
    for length in (128, 129, 4096, 4097, 1 << 40, (1 << 64) - 1):
        lines.append(f'length_{length:#x}="{spell(length, 8)}"')
    return lines


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "corpus")
    os.makedirs(out, exist_ok=True)
    for name, body in themes():
        for mode, deterministic in (("threads", False), ("det", True)):
            with open(os.path.join(out, f"seed-{name}-{mode}"), "wb") as f:
                f.write(header(deterministic, 18) + body)
    here = os.path.dirname(os.path.abspath(__file__))
    with open(os.path.join(here, "..", "..", "include", "helsim", "hel.h")) as f:
        lines = dictionary(f.read())
    with open(os.path.join(here, "hel.dict"), "w") as f:
        f.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
