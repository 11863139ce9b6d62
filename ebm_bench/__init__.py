"""ebm-bench: train and compare energy-based GANs (GAN, EBGAN, EBGAN-PT, BEGAN, MAGAN) under matched budgets."""

__version__ = "0.1.0"

from .api import matched_configs, run, run_configs, train_one  # noqa: E402
from .config import Budget, OptimConfig, RunConfig  # noqa: E402
from .errors import ConfigError, DataNotFoundError, EbmBenchError, MethodContractError  # noqa: E402
from .method import Energies, Method, available_methods, get_method, load_plugin, register_method  # noqa: E402
from .nets import DOutput, MLPConfig  # noqa: E402
from .train import RunResult  # noqa: E402

__all__ = [
    "Budget", "ConfigError", "DOutput", "DataNotFoundError", "EbmBenchError", "Energies", "MLPConfig", "Method",
    "MethodContractError", "OptimConfig", "RunConfig", "RunResult", "available_methods", "get_method",
    "load_plugin", "matched_configs", "register_method", "run", "run_configs", "train_one",
]
