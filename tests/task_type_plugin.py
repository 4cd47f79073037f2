"""A plugin distribution for the tests, installed into a directory the tests put on
PYTHONPATH: the package `shouting` and its dist-info (version 1.2.0), whose entry point in
the group librunner.task_types makes `shout` a task type."""
from __future__ import annotations

from pathlib import Path

PLUGIN = '''
import os
LOADED = os.environ.get("PLUGIN_LOADED_MARK")
if LOADED:
    open(LOADED, "a").write("loaded\\n")

PARAMETERS = {"type": "object", "properties": {"text": {"type": "string"}, "times": {"type": "integer"}},
              "required": ["text"]}


def shout(task):
    task.log.info("shouting")
    return {"text": task.parameters["text"].upper() * task.parameters.get("times", 1)}


shout.task_parameters = PARAMETERS
'''


def install_shouting_plugin(site: Path) -> Path:
    """Writes the plugin into `site` (made if missing); returns `site`."""
    (site / "shouting").mkdir(parents=True)
    (site / "shouting" / "__init__.py").write_text(PLUGIN)
    info = site / "shouting-1.2.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: shouting\nVersion: 1.2.0\n")
    (info / "entry_points.txt").write_text("[librunner.task_types]\nshout = shouting:shout\n")
    (info / "RECORD").write_text("")
    return site
