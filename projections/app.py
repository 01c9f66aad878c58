"""`faststream run projections.app:app` runs the projector on $SLEEPWAKE_DB."""

from projections.projector import Projector, default_db

projector = Projector(default_db())
app = projector.app
