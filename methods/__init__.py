"""The method registry and the built-in methods, one file each with its pure loss functions.

Add a method with `@ebm_bench.register_method("name")` on a subclass of `ebm_bench.Method`.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from ebm_bench.config import coerce_fields
from ebm_bench.datasets import get_dataset
from ebm_bench.errors import ConfigError
from ebm_bench.nets import ENERGY_MODELS
from ebm_bench.registry import Registry, describe, source

from .ae_logistic import AELogistic, ae_logistic_loss_d, ae_logistic_loss_g, offset_logit
from .ae_real import AEReal, no_effect_loss_g, real_only_loss_d
from .base import Energies, Method, SetupContext, check_energy, check_loss, require
from .began import BEGAN, began_convergence, began_k_update, began_loss_d, began_loss_g, l1_energy
from .clf_hinge import ClfHinge, classifier_energy
from .ebgan import EBGAN, ebgan_loss_d, ebgan_loss_g, hinge_active, l2_energy
from .ebgan_ln import EBGANLN
from .ebgan_pt import EBGANPT, pulling_away_term
from .gan import GAN, gan_loss_d, gan_loss_g
from .ladder import Ladder, bottom_cost, labelled_cross_entropy, ladder_energy
from .magan import MAGAN, magan_margin_update, squared_energy


REQUIRED_HOOKS = {"energy": "energy(images, out)", "loss_d": "loss_d(real, fake)", "loss_g": "loss_g(fake)"}


def _check(name: str, cls: Any) -> type[Method]:
    if not (isinstance(cls, type) and issubclass(cls, Method)):
        raise ConfigError(f"method {name!r} must be a subclass of ebm_bench.Method, not {cls!r}")
    if cls.energy_model not in ENERGY_MODELS:
        raise ConfigError(f"method {name!r}: energy_model must be one of {ENERGY_MODELS}, not {cls.energy_model!r}")
    missing = [signature for hook, signature in REQUIRED_HOOKS.items() if getattr(cls, hook) is getattr(Method, hook)]
    missing += sorted(f"{hook}() (abstract)" for hook in getattr(cls, "__abstractmethods__", ()))
    if missing:  # found now, not as a NotImplementedError traceback on the run's first step
        raise ConfigError(f"method {name!r} ({describe(source(cls))}) does not define {', '.join(missing)}; "
                          f"every method defines {', '.join(REQUIRED_HOOKS.values())}")
    if not cls.name:
        cls.name = name  # a class registered under a second name (an entry-point alias) keeps its own
    if not cls.__dict__.get("description"):  # a subclass describes itself, not by its parent's words
        cls.description = (cls.__doc__ or "").strip().split("\n")[0]
    return cls


def _adopt(name: str, loaded: Any) -> type[Method] | None:
    """An entry point names a module (its decorators registered it) or a Method subclass."""
    return loaded if isinstance(loaded, type) and issubclass(loaded, Method) else None


METHODS: Registry[type[Method]] = Registry("method", _check, _adopt,
                                           {cls.name: cls for cls in (GAN, EBGAN, EBGANPT, BEGAN, MAGAN, AELogistic,
                                                                      ClfHinge, AEReal, Ladder, EBGANLN)})


def register_method(name: str, description: str | None = None, replace: bool = False):
    """Class decorator: `@register_method("lsgan")` makes the method available as `--methods lsgan`. A name
    already registered elsewhere (a built-in) needs `replace=True`."""

    def decorate(cls: type[Method]) -> type[Method]:
        if isinstance(cls, type) and issubclass(cls, Method):
            cls.name = name
            cls.description = description or (cls.__doc__ or "").strip().split("\n")[0]
        return METHODS.add(name, cls, replace=replace)

    return decorate


def available_methods() -> dict[str, type[Method]]:
    return METHODS.all()


def get_method(name: str) -> type[Method]:
    return METHODS.get(name)


def option_names(name: str) -> set[str]:
    cls = get_method(name)
    return {f.name for f in dataclasses.fields(cls)} if dataclasses.is_dataclass(cls) else set()


def make_method(name: str, options: dict[str, Any], dataset: str | None = None) -> Method:
    """An instance of method `name` with `options` converted to their declared types and validated. With a
    `dataset`, the options the method leaves to the data (declared None) and `options` does not give take the
    dataset's values (its spec's `option_defaults`: EBGAN's margin on MNIST is 10)."""
    cls = get_method(name)
    known = option_names(name)
    unknown = set(options) - known
    if unknown:
        raise ConfigError(f"method {name!r} has no option(s) {', '.join(sorted(unknown))}; "
                          f"its options: {', '.join(sorted(known)) or 'none'}")
    if dataset is not None and known:
        left = {f.name for f in dataclasses.fields(cls) if f.default is None} - set(options)
        options = {k: v for k, v in get_dataset(dataset).option_defaults.items() if k in left} | options
    method = cls(**coerce_fields(cls, options, name)) if known else cls()
    method.validate()
    return method


__all__ = [
    "AELogistic", "AEReal", "BEGAN", "ClfHinge", "EBGAN", "EBGANLN", "EBGANPT", "GAN", "Ladder",
    "MAGAN", "METHODS", "bottom_cost", "labelled_cross_entropy", "ladder_energy",
    "Energies", "Method", "SetupContext", "ae_logistic_loss_d", "ae_logistic_loss_g", "available_methods",
    "began_convergence", "began_k_update", "began_loss_d", "began_loss_g", "check_energy", "check_loss",
    "classifier_energy", "ebgan_loss_d", "ebgan_loss_g", "gan_loss_d", "gan_loss_g", "get_method", "hinge_active",
    "l1_energy", "l2_energy", "magan_margin_update", "make_method", "no_effect_loss_g", "offset_logit",
    "option_names", "pulling_away_term", "real_only_loss_d", "register_method", "require", "squared_energy",
]
