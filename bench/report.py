"""`python -m bench.report`: the results table of bench/README.md, rendered from bench/results/latest.json
(`--check` only says whether the README holds what the file renders)."""

from __future__ import annotations

import json
import sys

from bench.common import REPO

README = REPO / "bench" / "README.md"
RESULTS = REPO / "bench" / "results" / "latest.json"
BEGIN = "<!-- results: rendered by `python -m bench.report` from bench/results/latest.json -->"
END = "<!-- end of results -->"


def render(results: dict) -> str:
    lines = [BEGIN, "", f"Machine: {results['machine']}. Command: `make bench` (or `make bench ONLY=<name>`).", ""]
    for module in dict.fromkeys(row["module"] for row in results["rows"]):
        rows = [row for row in results["rows"] if row["module"] == module]
        lines += [f"#### {module}", "", "| metric | value | goal | met | detail |", "|---|---|---|---|---|"]
        for row in rows:
            met = {True: "yes", False: "**no**", None: ""}[row["met"]]
            detail = row["detail"].replace("|", "/")
            lines.append(f"| {row['metric']} | {row['value']:,.2f} {row['unit']} | {row['goal']} | {met} | {detail} |")
        lines.append("")
    return "\n".join(lines + [END])


def rendered_readme() -> str:
    text = README.read_text()
    head, _, rest = text.partition(BEGIN)
    _, _, tail = rest.partition(END)
    return head + render(json.loads(RESULTS.read_text())) + tail


def main() -> None:
    updated = rendered_readme()
    if "--check" in sys.argv[1:]:
        sys.exit(0 if updated == README.read_text() else "bench/README.md differs from bench/results/latest.json")
    README.write_text(updated)


if __name__ == "__main__":
    main()
