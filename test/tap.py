"""TAP reporting shared by the Python tests: report() prints "ok N - name" or "not ok N - name"
with the last lines of the detail as comments; tap.count and tap.failed hold the tallies."""
count = failed = 0


def report(ok, name, detail=""):
    global count, failed
    count += 1
    failed += not ok
    if not ok:
        for line in detail.splitlines()[-40:]:
            print("# " + line)
    print("%s %d - %s" % ("ok" if ok else "not ok", count, name), flush=True)
