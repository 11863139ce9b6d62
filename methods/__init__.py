"""The built-in methods, one file each, and their pure loss functions (tensors in, tensors out)."""

from .began import BEGAN, began_convergence, began_k_update, began_loss_d, began_loss_g, l1_energy
from .ebgan import EBGAN, ebgan_loss_d, ebgan_loss_g, hinge_active, l2_energy
from .ebgan_pt import EBGANPT, pulling_away_term
from .gan import GAN, gan_loss_d, gan_loss_g
from .magan import MAGAN, magan_margin_update, squared_energy

__all__ = [
    "BEGAN", "EBGAN", "EBGANPT", "GAN", "MAGAN",
    "began_convergence", "began_k_update", "began_loss_d", "began_loss_g", "ebgan_loss_d", "ebgan_loss_g",
    "gan_loss_d", "gan_loss_g", "hinge_active", "l1_energy", "l2_energy", "magan_margin_update",
    "pulling_away_term", "squared_energy",
]
