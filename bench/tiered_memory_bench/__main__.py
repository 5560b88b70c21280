"""``python -m tiered_memory_bench <command> ...``"""

from .cli import main

raise SystemExit(main())
