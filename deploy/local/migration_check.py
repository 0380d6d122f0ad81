#!/usr/bin/env python3
"""Expand/contract: no migration drops or renames a column or table outside a function body.

Usage: migration_check.py ROOT [--self-test]

A release must keep serving while the previous one still runs (rolling updates, image rollback),
so a migration may add but not take away what the previous release reads. Removing something is a
later migration, marked on the statement's line with `-- contract: <why it is unused now>`.
Function bodies ($$ … $$) are skipped: they run later, on data, not on the schema's shape.
"""
import glob
import re
import sys

FORBIDDEN = re.compile(
    r"\b(DROP\s+COLUMN|RENAME\s+COLUMN|RENAME\s+TO|DROP\s+TABLE|ALTER\s+COLUMN\s+\w+\s+(SET\s+DATA\s+)?TYPE)\b",
    re.IGNORECASE,
)
DOLLAR = re.compile(r"\$(\w*)\$.*?\$\1\$", re.DOTALL)


def problems(path, text):
    # Blank out function bodies, keeping line numbers.
    text = DOLLAR.sub(lambda m: "\n" * m.group(0).count("\n"), text)
    # Tables this migration creates: reshaping them here breaks no earlier release.
    created = {m.lower() for m in re.findall(r"CREATE\s+TABLE\s+(?:IF\s+NOT\s+EXISTS\s+)?([\w.]+)", text, re.IGNORECASE)}
    out = []
    for n, line in enumerate(text.splitlines(), 1):
        code = line.split("--", 1)[0]
        target = re.search(r"ALTER\s+TABLE\s+(?:IF\s+EXISTS\s+)?(?:ONLY\s+)?([\w.]+)", code, re.IGNORECASE)
        if target and target.group(1).lower() in created:
            continue
        if FORBIDDEN.search(code) and "-- contract:" not in line:
            out.append(f"{path}:{n}: {line.strip()} (expand/contract: mark a deliberate removal with `-- contract: <why>`)")
    return out


def main():
    root = sys.argv[1]
    files = sorted(glob.glob(f"{root}/services/*/migrations/*.sql") + glob.glob(f"{root}/crates/*/migrations/*.sql"))
    found = [p for f in files for p in problems(f, open(f).read())]
    for p in found:
        print(f"  FAIL {p}")
    print(f"migrations: {len(files)} files, {len(found)} breaking statements")
    failed = bool(found)
    if "--self-test" in sys.argv[2:]:
        planted = {
            "ALTER TABLE contacts DROP COLUMN phone;": True,
            "ALTER TABLE contacts RENAME COLUMN phone TO mobile;": True,
            "ALTER TABLE deals ALTER COLUMN amount TYPE bigint;": True,
            "ALTER TABLE contacts DROP COLUMN phone; -- contract: unused since 0.4": False,
            "CREATE FUNCTION f() RETURNS void AS $$ BEGIN EXECUTE 'DROP TABLE x'; END $$ LANGUAGE plpgsql;": False,
            "ALTER TABLE contacts ADD COLUMN mobile text;": False,
            "CREATE TABLE t (a int, b int);\nALTER TABLE t DROP COLUMN b;": False,
        }
        for sql, breaking in planted.items():
            caught = bool(problems("planted.sql", sql))
            ok = caught == breaking
            print(f"self-test: {'refused' if caught else 'allowed'}: {sql}{'' if ok else '  <- WRONG'}")
            failed |= not ok
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
