"""Dependency audit for CI: fail on a known vulnerability that has a fixed version; list the others.

Runs pip-audit on the installed environment (the project itself, installed editable, is skipped).
"""

import json
import subprocess
import sys
import tempfile

with tempfile.NamedTemporaryFile(suffix=".json") as report:
    subprocess.run([sys.executable, "-m", "pip_audit", "--skip-editable", "--progress-spinner", "off", "-f", "json",
                    "-o", report.name], check=False)
    found = json.load(open(report.name))["dependencies"]
fixable, unfixed = [], []
for package in found:
    for vuln in package.get("vulns", []):
        line = f"{package['name']} {package['version']}: {vuln['id']}"
        (fixable if vuln["fix_versions"] else unfixed).append(line + (f" (fixed in {', '.join(vuln['fix_versions'])})"
                                                                     if vuln["fix_versions"] else " (no fix yet)"))
print(f"pip-audit: {len(found)} packages, {len(fixable)} fixable and {len(unfixed)} unfixed known vulnerabilities")
for line in unfixed + fixable:
    print("  " + line)
sys.exit(1 if fixable else 0)
