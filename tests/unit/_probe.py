"""Jobs that run in this process without a JVM, and a stand-in for the session they get."""

from __future__ import annotations

import json

PROBE_JOB = '''
"""Test job: succeeds, or fails with our error or someone else's, as it is told."""
from __future__ import annotations

import argparse
import os
from dataclasses import dataclass

from spark_flow.errors import InvalidArgumentError
from spark_flow.jobs import JobReport, add_trigger_argument, job_main


@dataclass(frozen=True)
class ProbeReport(JobReport):
    rows_written: int


def parser():
    parser = argparse.ArgumentParser(prog="probe")
    parser.add_argument("--fail", choices=("ours", "theirs", "vanished"))
    parser.add_argument("--input", default="in", help="vanished: Spark finds nothing there")
    parser.add_argument("--date", default=None)
    parser.add_argument("--fail-on", default=None, help="fail (their error) on this --date")
    add_trigger_argument(parser)
    return parser


def run(spark, args):
    if args.fail == "ours":
        raise InvalidArgumentError("--input", "the probe has no input", "Give it one.")
    if args.fail == "vanished":  # what Spark raises when --input is gone (an AnalysisException)
        path = os.path.abspath(args.input)
        raise RuntimeError(f"[PATH_NOT_FOUND] Path does not exist: file:{path}. SQLSTATE: 42K03")
    if args.fail == "theirs" or (args.fail_on and args.fail_on == args.date):
        raise RuntimeError("the executor lost its patience\\nand said more on a second line")
    return ProbeReport(rows_written=3)


def main(argv=None):
    return job_main("probe", parser(), run, argv)
'''

ECHO_JOB = '''
"""Test job: says which arguments it was given, and exits 7."""
import json
import sys


def main(argv=None):
    sys.stdout.write(json.dumps({"job": "echo", "argv": argv}) + "\\n")
    return 7
'''


class FakeSession:
    """Stands in for a SparkSession where a test only needs one started, tagged and stopped."""

    def __init__(self) -> None:
        self.stopped = 0
        self.tags: list[str] = []

    def addTag(self, tag: str) -> None:
        self.tags.append(tag)

    def removeTag(self, tag: str) -> None:
        self.tags.remove(tag)

    def stop(self) -> None:
        self.stopped += 1


def reports(stdout: str) -> list[dict[str, object]]:
    """The one-line JSON reports in a command's output."""
    return [json.loads(line) for line in stdout.splitlines() if line.startswith("{")]


def failure_lines(stderr: str, job: str) -> list[str]:
    """The lines that render a failed run of `job` (log records start with a timestamp)."""
    return [line for line in stderr.splitlines() if line.startswith(f"{job}: ")]
