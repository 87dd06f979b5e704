"""A process that opens a profile's library (which migrates its old history files), for the crash test.

    python tests/migrate_worker.py DATA_DIR USER

Prints ``start`` once its imports are done and the migration begins, and ``done N`` (the number of
conversations listed) once the library is ready and listed.
"""

from __future__ import annotations

import sys
from pathlib import Path

from edgechat_tui.storage.library import Library


def main() -> int:
    data_dir, user = Path(sys.argv[1]), sys.argv[2]
    library = Library(data_dir, user, warn=lambda text: print(f"warn {text}", file=sys.stderr))
    print("start", flush=True)
    library.ready()
    listed = library.list() + library.list(archived=True)
    print(f"done {len(listed)}", flush=True)
    library.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
