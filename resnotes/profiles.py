"""The run profiles and the papers' recipes (defined in ``resnotes.config``).

Chapters import them from here: ``get_profile()`` picks ``$RESNOTES_PROFILE``,
else ``fast`` on a GPU and ``demo`` otherwise; ``paper_recipe(model)`` is the
training recipe of the paper a registered model comes from.
"""

from .config import PAPER_RECIPES, PROFILES, Profile, default_profile_name, get_profile, make_config, paper_recipe

__all__ = ["PAPER_RECIPES", "PROFILES", "Profile", "default_profile_name", "get_profile", "make_config", "paper_recipe"]
