"""Where the host project is: the directory holding ``manage.py`` and the ``braintrust_ops`` package.

Here that is this repository; dropped into Sefaria-Project it is Sefaria's root. Tests that start
``manage.py`` in another process find it through this, never through their own depth in the tree.
"""

from pathlib import Path

import braintrust_ops

HOST_ROOT = Path(braintrust_ops.__file__).resolve().parent.parent
