"""nox sessions: `nox -s tests` (the suite) and `nox -s bench` (harness vs plain loop). Both use constraints.txt."""

import nox

nox.options.sessions = ["tests"]
nox.options.reuse_existing_virtualenvs = True


@nox.session
def tests(session: nox.Session) -> None:
    session.install("-c", "constraints.txt", "-e", ".[test]")
    session.run("python", "-m", "pytest", *session.posargs)


@nox.session
def bench(session: nox.Session) -> None:
    session.install("-c", "constraints.txt", "-e", ".")
    session.run("python", "benchmarks/bench_harness.py", *session.posargs)
