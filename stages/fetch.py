"""fetch: the official archive (downloaded) or data.source (a local zip or folder) -> data/raw/."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from handkp.config import load_params  # noqa: E402
from handkp.fetch import FetchError, fetch_dataset  # noqa: E402

if __name__ == "__main__":
    data = load_params()["data"]
    try:
        root = fetch_dataset(data["source"], Path("data/raw"), data["max_archive_mb"])
    except FetchError as err:
        sys.exit(f"fetch failed: {err}")
    print(f"dataset ready in {root}")
