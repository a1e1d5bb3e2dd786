"""`introspect demo` headless: it observes the demo and reports the stories as they happen."""

import subprocess
import sys


def test_headless_demo_reports_the_stories():
    out = subprocess.run([sys.executable, "-m", "introspect", "demo", "--headless",
                          "--duration", "9", "--speed", "8", "--interval", "3"],
                         capture_output=True, text=True, timeout=90)
    assert out.returncode == 0, out.stderr
    text = out.stdout
    assert "observing the demo service" in text
    assert "kinds:" in text and "gateway_consumer" in text
    assert "| demo: comments: poison message arrives" in text
    assert "error: task UnexpectedMessage" in text
    assert "done" in text.splitlines()[-1]
    assert "Traceback" not in out.stderr
