"""The plugin contract: every tool, model, tokenizer, lesson folder and turn handler arrives
through these hooks."""

import pluggy

hookspec = pluggy.HookspecMarker("tutor")
hookimpl = pluggy.HookimplMarker("tutor")


@hookspec
def register_tools(register):
    """Register tools: register(function, name=None, example="", phrases=["how many tokens", ...]) or register(Tool)."""


@hookspec
def register_models(register, settings):
    """Register models the cache can load: register(ModelSpec); `settings` (optional) gives the data dir."""


@hookspec
def register_tokenizers(register):
    """Register tokenizers /tokenize and /count can use: register(TokenizerSpec)."""


@hookspec
def register_lessons(register):
    """Register a folder of lesson YAML files: register(path)."""


@hookspec
def register_turn_handlers(register):
    """Register handlers for messages that are not commands: register(function(text, session) -> replies or None)."""
