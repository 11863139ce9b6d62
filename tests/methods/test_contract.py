"""Every registered method, built-in or plug-in, meets the Method contract: parametrized over the registry, so a
new method is tested by registering it."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from ebm_bench import Budget, MLPConfig, OptimConfig, RunConfig
from ebm_bench.datasets import TrainingData, get_dataset
from ebm_bench.datasets.loading import TensorBatches
from ebm_bench.methods import METHODS, SetupContext, make_method
from ebm_bench.nets import build_networks
from ebm_bench.train import PreparedRun, Trainer

SHAPE = (1, 8, 8)
CPU = torch.device("cpu")


def tiny_run(name: str, run_dir: Path) -> PreparedRun:
    """A method on a tiny MLP over 256 random 8x8 images: no dataset on disk, a fraction of a second a step."""
    torch.manual_seed(0)
    options = {"pretrain_steps": 1} if name == "magan" else {}  # MAGAN trains G only after pre-training
    config = RunConfig(method=name, budget=Budget("steps", 3), batch_size=8, z_dim=4, image_size=8, arch="mlp",
                       mlp=MLPConfig(n_layer_g=2, size_g=16, n_layer_d=3, size_d=16, dropout_d=True),
                       optim=OptimConfig(), method_options=options, out=str(run_dir.parent), log_every=1,
                       checkpoint_every=1)
    images = torch.randint(0, 256, (256, *SHAPE), dtype=torch.uint8)
    data = TrainingData(TensorBatches(images, 8, seed=0, device=CPU), torch.zeros(0, *SHAPE), SHAPE, 256, "none")
    method = make_method(name, options, "mnist")
    method.setup(SetupContext(
        device=CPU, dataset="mnist", image_shape=SHAPE, batch_size=8, batches_per_epoch=32, expected_steps=3))
    generator, discriminator = build_networks("mlp", method.energy_model, SHAPE, 4, config.mlp)
    return PreparedRun(config=config, resolved=config.to_dict(), run_id=run_dir.name, run_dir=run_dir, device=CPU,
                       spec=get_dataset("mnist"), data=data, method=method, generator=generator,
                       discriminator=discriminator)


# Every registered method but those the tests register to break the contract on purpose (test_train.py's)
CONTRACT = sorted(name for name, cls in METHODS.items() if not cls.__module__.rpartition(".")[2].startswith("test_"))


@pytest.mark.parametrize("name", CONTRACT)
def test_one_d_and_one_g_step_give_finite_losses_and_state_round_trips(name, tmp_path):
    run = tiny_run(name, tmp_path / "run")
    trainer = Trainer(run)
    for step in range(2):  # contract checks (energy shape, finite scalar losses) run on the first D and G step
        trainer.step(step, check_contract=step == 0)
    row = trainer.stats.row(run.method.state_values())
    assert row["loss_d"] == row["loss_d"] and abs(row["loss_d"]) != float("inf")
    assert row["loss_g"] == row["loss_g"] and abs(row["loss_g"]) != float("inf")  # a G step ran
    trainer.checkpoint()

    fresh = tiny_run(name, tmp_path / "run")
    Trainer(fresh).resume()
    saved, restored = run.method.state_dict(), fresh.method.state_dict()
    assert saved.keys() == restored.keys() == set(run.method.state_names)
    for key in saved:
        assert torch.equal(torch.as_tensor(saved[key]), torch.as_tensor(restored[key])), key
    assert fresh.method.options() == run.method.options()


def test_a_method_without_a_loss_is_refused_when_it_registers():
    from ebm_bench.errors import ConfigError
    from ebm_bench.methods import Method, register_method

    with pytest.raises(ConfigError) as error:
        @register_method("test-no-loss-g")
        class NoLossG(Method):
            energy_model = "classifier"

            def energy(self, images, out):
                return -out.logit

            def loss_d(self, real, fake):
                return real.energy.mean()

    message = str(error.value)
    assert message.startswith("method 'test-no-loss-g' (") and f"NoLossG in {__file__})" in message
    assert "does not define loss_g(fake); every method defines energy(images, out)" in message
    assert "test-no-loss-g" not in METHODS


def test_abstract_losses_are_refused_when_the_method_registers():
    import abc

    from ebm_bench.errors import ConfigError
    from ebm_bench.methods import Method, register_method

    class Base(Method, abc.ABC):
        @abc.abstractmethod
        def loss_d(self, real, fake): ...

    with pytest.raises(ConfigError, match=r"does not define loss_d\(\) \(abstract\)"):
        @register_method("test-abstract")
        class Abstract(Base):
            def energy(self, images, out):
                return out.logit

            def loss_g(self, fake):
                return fake.energy.mean()

    assert "test-abstract" not in METHODS
