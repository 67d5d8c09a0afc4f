"""engine: The deployable artefacts for deploy.target -> models/engine/, reports/deploy/engine.json."""

from handkp.core.config import run_stage
from handkp.deploy.artefacts import run_engine


def main() -> None:
    run_stage("engine", run_engine)


if __name__ == "__main__":
    main()
