"""Storage: table models, engines, migrations.

Feature tables live in their own modules (``models_<feature>.py``, each importing ``Base`` from
``models``); importing them here puts every table in the one metadata that the migrations and their
check compare, whichever module of the package is imported first (and without an import cycle).
"""

from cloudarb.db import models_deploy as models_deploy
from cloudarb.db import models_hooks as models_hooks
from cloudarb.db import models_nodes as models_nodes
