"""ebm-bench: train and compare energy-based GANs (GAN, EBGAN, EBGAN-PT, BEGAN, MAGAN) under matched budgets.

The pipeline, one package or module each, every one importing only those before it:
config -> datasets -> nets -> methods -> metrics -> runs -> train -> evaluate -> leaderboard / plots / sweep / report
-> api -> cli.
"""

__version__ = "0.1.0"

from .api import matched_configs, run, run_configs, train_one, write_report  # noqa: E402
from .config import Budget, MLPConfig, OptimConfig, RunConfig  # noqa: E402
from .datasets import DatasetSpec, TrainingData, register_dataset  # noqa: E402
from .errors import ConfigError, DataNotFoundError, EbmBenchError, MethodContractError  # noqa: E402
from .methods import Energies, Method, available_methods, get_method, register_method  # noqa: E402
from .metrics import Metric, MetricInputs, register_metric  # noqa: E402
from .nets import DOutput, register_net  # noqa: E402
from .registry import load_plugin  # noqa: E402
from .train import RunResult  # noqa: E402

__all__ = [
    "Budget", "ConfigError", "DOutput", "DataNotFoundError", "DatasetSpec", "EbmBenchError", "Energies",
    "MLPConfig", "Method", "MethodContractError", "Metric", "MetricInputs", "OptimConfig", "RunConfig", "RunResult",
    "TrainingData", "available_methods", "get_method", "load_plugin", "matched_configs", "register_dataset",
    "register_method", "register_metric", "register_net", "run", "run_configs", "train_one", "write_report",
]
