"""Settings: the options and their checks, where each value comes from, and the config file."""

from edgechat_tui.config.settings import (
    OPTIONS,
    Settings,
    config_path_from,
    default_data_dir,
    load_settings,
    show_value,
    update_config_file,
)

__all__ = [
    "OPTIONS",
    "Settings",
    "config_path_from",
    "default_data_dir",
    "load_settings",
    "show_value",
    "update_config_file",
]
