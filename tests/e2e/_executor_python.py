"""spark-submit's main for the archive test: which Python the executors run, then a bundled job.

`spark-flow submit tests/e2e/_executor_python.py ... -- JOB [job args]` prints one JSON line,
`{"executor_pythons": [[sys.executable, sys.prefix], ...]}` as the executors' Python workers
see them, then runs bundled job JOB in the same session, which prints its report.
"""

from __future__ import annotations

import json
import sys

from spark_flow.jobs import run_job
from spark_flow.session import get_session


def where_python_runs(_: int) -> tuple[str, str]:
    return sys.executable, sys.prefix


def main() -> int:
    spark = get_session("executor-python")
    tasks = spark.sparkContext.parallelize(range(4), 4)
    seen = sorted(set(tasks.map(where_python_runs).collect()))
    sys.stdout.write(json.dumps({"executor_pythons": seen}) + "\n")
    sys.stdout.flush()
    return run_job(sys.argv[1], sys.argv[2:])  # joins this session, and stops it at the end


if __name__ == "__main__":
    raise SystemExit(main())
