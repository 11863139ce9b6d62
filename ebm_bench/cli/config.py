"""`ebm-bench config show`: the resolved config of a run, or of every run of a sweep, as TOML.

Each run prints in the nested form a --config file takes (top-level settings, then [budget], [mlp], [optim],
[method_options]) after a comment line `# run N: <method> seed <s>`, so any one run's text saved to a file
reproduces it: `ebm-bench run --config that.toml`.
"""

from __future__ import annotations

from ebm_bench.config import toml_dumps

from .common import add_config_arguments, add_grid_arguments, command_parser, emit, plan_of

# Resolved where the run starts, not here: the machine's (device, data root, Inception N) and what the data sets.
NOTE = ("# device, data_root, inception_n and the options left out (e.g. margin: the dataset's) resolve when the "
        "run starts")


def add_parser(subparsers) -> None:
    p = subparsers.add_parser("config", help="show the resolved config of runs as TOML",
                              description="Work with config files (--config FILE.toml).")
    commands = p.add_subparsers(dest="config_command", required=True)
    show = command_parser(commands, "show", help="print the resolved config of every run as TOML",
                          description="Print the config of every run (method x seed x grid point) the same flags "
                                      "would give `ebm-bench run` or `sweep`, resolved as far as it can be without "
                                      "data, as TOML a --config file takes.")
    show.add_argument("--methods", help="comma-separated method names (default: the config file's)")
    add_grid_arguments(show)
    add_config_arguments(show)
    show.add_argument("--output", help="write the TOML to this file instead of stdout")
    show.set_defaults(func=command)


def run_text(config, number: int) -> str:
    """One run as a --config file: its header comment, then the nested TOML."""
    data = config.to_dict()  # planned configs are resolved (ebm_bench.resolve)
    return f"# run {number}: {config.method} seed {config.seed}\n{toml_dumps(data)}\n"


def command(args) -> int:
    plan = plan_of(args)
    emit("\n".join([NOTE + "\n", *(run_text(c, i) for i, c in enumerate(plan.configs, 1))]), args.output)
    return 0
