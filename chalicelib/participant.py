"""The participant helper, now the SDK `saga_participant` (sdk/python/, installable with pip on
Python 3.9 to 3.13): this module keeps the old import path working, with every public name of
the SDK (`saga_participant.__all__`).

    from saga_participant import Refusal, TryAgain, lambda_handler, wsgi_app   # new code
    from chalicelib.participant import Refuse, lambda_handler, wsgi_app        # still works
"""

from __future__ import annotations

from saga_participant import *  # noqa: F403
from saga_participant import __all__  # noqa: F401
