"""Test double: a namespace package, as in the real product (pkgutil.extend_path)."""

import pkgutil

__path__ = pkgutil.extend_path(__path__, __name__)
