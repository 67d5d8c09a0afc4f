"""fetch: The official archive (downloaded) or data.source (a local zip or folder) -> data/raw.zip."""

from handkp.core.config import run_stage
from handkp.data.fetch import run_fetch


def main() -> None:
    run_stage("fetch", run_fetch)


if __name__ == "__main__":
    main()
