"""Counts the test cases of one run and prints 'N passed, N failed'.

Unit tests: each meson test is a Criterion binary (its cases counted from its
"Synthesis" line) or a fuzz-corpus replay (one case). End-to-end tests: the
pytest JUnit XML. A meson test that failed without a Criterion synthesis
counts as one failure, so a crash is never lost; a case that crashed in its
suite's teardown counts as failed. Exit status 1 when any case
failed or a report is missing.
"""
import json
import re
import sys
import xml.etree.ElementTree as ET

SYNTH = re.compile(r"Synthesis: Tested: (\d+) \| Passing: (\d+) \| Failing: (\d+) \| Crashing: (\d+)")
ANSI = re.compile(r"\x1b\[[0-9;]*m")


def meson_counts(path):
    passed = failed = 0
    with open(path, encoding="utf-8") as f:
        for line in f:
            t = json.loads(line)
            out = ANSI.sub("", (t.get("stdout") or "") + (t.get("stderr") or ""))
            m = SYNTH.search(out)
            ok = t.get("result") in ("OK", "EXPECTEDFAIL")
            if m:
                tested, passing, failing, crashing = map(int, m.groups())
                # Criterion counts a case that passed and then crashed in its
                # suite's fini (a handle left open) as passing, with a warning.
                torn = min(out.count("crashed during its setup or teardown"), passing)
                passed += passing - torn
                failed += failing + crashing + torn + (tested - passing - failing - crashing)
                if not ok and failing + crashing + torn == 0:
                    failed += 1  # the binary failed outside any case (e.g. a leak at exit)
            elif ok:
                passed += 1
            else:
                failed += 1
    return passed, failed


def junit_counts(path):
    root = ET.parse(path).getroot()
    suites = [root] if root.tag == "testsuite" else root.findall("testsuite")
    passed = failed = skipped = 0
    for s in suites:
        tests = int(s.get("tests", 0))
        fails = int(s.get("failures", 0)) + int(s.get("errors", 0))
        skips = int(s.get("skipped", 0))
        failed += fails
        skipped += skips
        passed += tests - fails - skips
    return passed, failed, skipped


def main():
    passed = failed = skipped = 0
    missing = []
    try:
        p, f = meson_counts(sys.argv[1])
        passed += p
        failed += f
    except OSError:
        missing.append("unit")
    try:
        p, f, s = junit_counts(sys.argv[2])
        passed += p
        failed += f
        skipped += s
    except (OSError, ET.ParseError):
        missing.append("end-to-end")
    if missing:
        print("missing test report: " + ", ".join(missing), file=sys.stderr)
        failed += len(missing)
    line = f"{passed} passed, {failed} failed"
    if skipped:
        line += f", {skipped} skipped"
    print(line)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
