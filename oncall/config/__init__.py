"""The owner's files -> `oncall.core.models.Config`.

load_config(rules_file, rotas_dir) -> Config     raises ConfigError(.problems)
ConfigWatcher(rules_file, rotas_dir).poll()       reload on change, keep the last good one
"""

from oncall.config.errors import ConfigError
from oncall.config.loader import load_config
from oncall.config.rotas import load_people, load_rota
from oncall.config.rules import load_rules
from oncall.config.watch import Change, ConfigWatcher

__all__ = ["Change", "ConfigError", "ConfigWatcher", "load_config", "load_people", "load_rota", "load_rules"]
