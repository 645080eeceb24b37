"""The built-in plugins as a package: `import tutor.builtin.bpe` works in a checkout (the files
live in plugins/ at the top of the repository) and in a wheel (they travel as
tutor/builtin/plugins/). The plugin manager imports them from here and registers them through
the same hooks as a user's plugins."""

from ..plugins import builtin_dir

__path__ = [str(builtin_dir("plugins"))]  # the package's modules are the plugin files
