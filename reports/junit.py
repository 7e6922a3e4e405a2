"""JUnit XML: one test case per unique signature; new and flaky signatures fail."""

from __future__ import annotations

import xml.etree.ElementTree as ElementTree

from reports.model import RunSummary

MESSAGE_LIMIT = 1000


def render_junit(summary: RunSummary) -> str:
    failing = summary.failing()
    suite = ElementTree.Element("testsuite", name="tcfuzz", tests=str(len(summary.signatures)),
                                failures=str(len(failing)), errors="0",
                                skipped=str(sum(row.status == "fixed" for row in summary.signatures)),
                                time=f"{summary.seconds:.3f}")
    properties = ElementTree.SubElement(suite, "properties")
    for name, value in (("run", summary.run_dir), ("backends", ",".join(summary.backends)),
                        ("tests", summary.tests), ("triaged", summary.triaged)):
        ElementTree.SubElement(properties, "property", name=name, value=str(value))
    for row in summary.signatures:
        case = ElementTree.SubElement(suite, "testcase", classname=f"tcfuzz.{row.kind}.{'+'.join(row.backends)}",
                                      name=row.signature)
        detail = (f"{row.summary}\nstatus: {row.status}; {row.count} test(s), first test {row.first_test}"
                  + (f"\nrepro: {row.repro}" if row.repro else ""))
        if row.status in ("new", "flaky"):
            failure = ElementTree.SubElement(case, "failure", type=row.kind,
                                             message=f"{row.status}: {row.summary}"[:MESSAGE_LIMIT])
            failure.text = detail
        elif row.status == "fixed":
            ElementTree.SubElement(case, "skipped", message="fixed: no longer reproduces")
        else:
            ElementTree.SubElement(case, "system-out").text = detail
    ElementTree.indent(suite)
    return ElementTree.tostring(suite, encoding="unicode", xml_declaration=True) + "\n"
