"""nox sessions: `nox -s tests` (the suite), `nox -s lint` (import layers) and `nox -s bench` (harness vs plain
loop). All use constraints.txt."""

import nox

nox.options.sessions = ["lint", "tests"]
nox.options.reuse_existing_virtualenvs = True


@nox.session
def tests(session: nox.Session) -> None:
    session.install("-c", "constraints.txt", "-e", ".[test]")
    session.run("python", "-m", "pytest", *session.posargs)


@nox.session
def lint(session: nox.Session) -> None:
    session.install("-c", "constraints.txt", "-e", ".[test]")
    session.run("python", "tests/lint_imports.py")


@nox.session
def bench(session: nox.Session) -> None:
    session.install("-c", "constraints.txt", "-e", ".")
    session.run("python", "benchmarks/bench_harness.py", *session.posargs)
