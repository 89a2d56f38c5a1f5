"""etc/sarge.toml: the file init writes parses to the defaults; values are checked."""

import pytest

from sarge import config, render
from sarge.errors import SettingsError


def test_the_written_file_parses_to_the_defaults():
    text = render.settings_file("unused", config.Settings()).text
    assert config.parse(text) == config.Settings()
    assert "#" in text  # commented for the operator


def test_values_are_read():
    settings = config.parse("[ports]\nfirst = 7000\nlast = 7010\n[logs]\nbackups = 0\n")
    assert (settings.port_first, settings.port_last, settings.log_backups) == (7000, 7010, 0)


@pytest.mark.parametrize("text", ["[ports]\nfirst = true\n", "[ports]\nlast = 70000\n",
                                  "ports = 3\n", "[logs]\nmax_bytes = -1\n",
                                  "[processes]\nstartsecs = 1.5\n",
                                  '[users]\ndefault = "a b"\n', "[users]\ndefault = 0\n",
                                  '[users]\nfrontend = "x\\ny"\n',
                                  '[users.apps]\n"Bad/" = "x"\n', '[users.apps]\nweb = ""\n',
                                  '[users]\napps = "web"\n'])
def test_bad_values_are_refused(text):
    with pytest.raises(SettingsError):
        config.parse(text)


def test_users_are_read():
    settings = config.parse('[users]\ndefault = "www-data"\n[users.apps]\nshop = "shop"\n')
    assert settings.user_for("shop") == "shop" and settings.user_for("blog") == "www-data"
